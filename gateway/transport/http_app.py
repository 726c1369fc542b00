"""The HTTP application: message validation over HTTP, health.

``POST /v1/validate`` takes a message (envelope or bare Document) as the body and answers
the verdict as JSON, the same shape as ``isogw validate --json`` gives for one file.
Validation is CPU work, so it runs in a worker thread, at most
``http.max_concurrent_validations`` at once.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from gateway.composition import Gateway
from gateway.iso.input_source import InputSource

GATEWAY_KEY = web.AppKey("gateway", Gateway)
LIMITER_KEY = web.AppKey("limiter", asyncio.Semaphore)
XML_TYPES = frozenset({"application/xml", "text/xml"})


async def validate(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY_KEY]
    if request.content_type not in XML_TYPES:
        return web.json_response(
            {"error": f"content type {request.content_type!r}; send application/xml"}, status=415
        )
    limit = gateway.settings.http.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        return web.json_response({"error": f"body larger than {limit} bytes"}, status=413)
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return web.json_response({"error": f"body larger than {limit} bytes"}, status=413)
    source = InputSource.from_bytes(body, "request")
    async with request.app[LIMITER_KEY]:
        verdict = await asyncio.to_thread(gateway.validator.validate, source)
    return web.json_response(verdict.as_dict(), status=200 if verdict.valid else 400)


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def build_app(gateway: Gateway) -> web.Application:
    app = web.Application(client_max_size=gateway.settings.http.max_body_bytes)
    app[GATEWAY_KEY] = gateway
    app[LIMITER_KEY] = asyncio.Semaphore(gateway.settings.http.max_concurrent_validations)
    app.router.add_post("/v1/validate", validate)
    app.router.add_get("/healthz", health)
    return app
