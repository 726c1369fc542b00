"""POST /v1/validate answers the same verdict as the CLI; bounds give 413 and 415."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from gateway.composition import Gateway
from gateway.transport.http_app import build_app
from tests.conftest import sample


def call(gateway: Gateway, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    async def scenario() -> tuple[int, Any]:
        async with TestClient(TestServer(build_app(gateway))) as client:
            response = await client.request(method, path, **kwargs)
            return response.status, await response.json()

    return asyncio.run(scenario())


def test_valid_message(gateway: Gateway) -> None:
    data = sample("pacs.008.001.08/valid-C100-realtime-credit.xml")
    status, body = call(
        gateway, "POST", "/v1/validate", data=data, headers={"Content-Type": "application/xml"}
    )
    assert status == 200 and body["valid"] and body["message_type"] == "pacs.008.001.08"


def test_invalid_message_lists_its_problems(gateway: Gateway) -> None:
    data = sample("pacs.008.001.08/invalid-AM02-credit-over-cap.xml")
    status, body = call(
        gateway, "POST", "/v1/validate", data=data, headers={"Content-Type": "application/xml"}
    )
    assert status == 400 and [error["code"] for error in body["errors"]] == ["AM02"]


def test_wrong_content_type(gateway: Gateway) -> None:
    status, _ = call(
        gateway, "POST", "/v1/validate", data=b"{}", headers={"Content-Type": "application/json"}
    )
    assert status == 415


def test_body_over_the_limit(gateway: Gateway) -> None:
    data = b"<a>" + b"x" * (gateway.settings.http.max_body_bytes + 1) + b"</a>"
    status, _ = call(
        gateway, "POST", "/v1/validate", data=data, headers={"Content-Type": "application/xml"}
    )
    assert status == 413


def test_health(gateway: Gateway) -> None:
    assert call(gateway, "GET", "/healthz") == (200, {"status": "ok"})
