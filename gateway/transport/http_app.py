"""The HTTPS application (aiohttp behind mutual TLS 1.3).

| route | what |
|---|---|
| ``POST /v1/messages`` | submit a signed message; answer: admi.007 (200) or admi.002 |
| ``GET /v1/outbox?after=N&wait=S`` | signed messages after sequence N, waiting up to S seconds |
| ``POST /v1/outbox/ack`` | ``{"through": N}`` acknowledges up to N; kept until then |
| ``POST /v1/validate`` | the validator's verdict as JSON (no clearing) |
| ``GET /healthz``, ``/readyz``, ``/metrics`` | liveness, readiness, Prometheus text |

The participant is the owner of the pinned client certificate; a certificate without a pin is
refused (403). Several consecutive authentication failures from one source raise an alarm
(log line and metric). Each participant has a token-bucket rate limit (429 above it), one for
all the gateway processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import os
import time
import weakref
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.typedefs import Handler
from cryptography import x509
from sqlalchemy import text

from gateway.iso.input_source import InputSource
from gateway.iso.problems import Problem, Verdict
from gateway.log_text import sender_text
from gateway.security.certificate_validity import CertificateWatch, KnownCertificate
from gateway.service.clearing_service import ClearingService
from gateway.service.message_gateway import Answer, MessageGateway, RefusedRequest
from gateway.store import messages
from gateway.store.database import storage_unavailable
from gateway.transport.authentication_alarm import AuthenticationMonitor
from gateway.transport.metrics_text import LATENCY_BUCKETS, process_lines
from gateway.transport.process_figures import FiguresBoard, ProcessFigures, WorkerFigures
from gateway.transport.push import Pusher
from gateway.transport.shared_rate_limit import SharedRateLimit
from gateway.transport.tls import GatewayContexts, peer_pin
from gateway.transport.tls_site import RefusedHandshake, TlsSite
from gateway.transport.worker_processes import WorkerSupervisor

if TYPE_CHECKING:
    from gateway.composition import Gateway

LOG = logging.getLogger("isogw.http")
XML_TYPES = frozenset({"application/xml", "text/xml"})


@dataclass
class Metrics:
    messages: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    latency_counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    latency_sum: float = 0.0
    tls_refused: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    """Refused TLS handshakes by kind: ``certificate`` (an authentication failure) or
    ``protocol`` (a TLS 1.2 client, plain HTTP on the TLS port)."""

    def observe(self, message: str, outcome: str, seconds: float) -> None:
        self.messages[(message, outcome)] += 1
        self.latency_sum += seconds
        for index, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                self.latency_counts[index] += 1
                break
        else:
            self.latency_counts[-1] += 1


@dataclass
class Runtime:
    gateway: Gateway
    clearing: ClearingService
    messages: MessageGateway
    pins: Mapping[str, str]
    """Certificate pin (SHA-256 hex) → participant code."""
    rate_limit: SharedRateLimit
    """Each participant's token bucket, shared by the gateway processes."""
    run_ticker: bool = True
    metrics: Metrics = field(default_factory=Metrics)
    waiters: dict[str, asyncio.Event] = field(default_factory=dict)
    outbox_requests: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    """Open GET /v1/outbox requests per participant."""
    pushers: dict[str, Pusher] = field(default_factory=dict)
    monotonic: Callable[[], float] = time.monotonic
    """Seconds on a clock that only moves forward, the same in every process on the host: for
    the rate limit's tokens and the outbox long poll's wait (transport timings, not business
    time, which is the message clock's). Passed in, so tests move it rather than sleep."""
    limiter: asyncio.Semaphore = field(init=False)
    """Validations running at once (``http.max_concurrent_validations``)."""
    submissions_in_flight: int = 0
    stopping: bool = False
    """Set when a graceful shutdown starts: outbox long polls answer at once with what they
    have, instead of holding the shutdown for their whole wait."""

    workers: WorkerSupervisor | None = None
    """The other gateway processes, in the first one (it starts and restarts them)."""
    slot: int = 0
    """This process's number among the gateway processes: 0 for the first, 1… for the others
    it starts (a restarted process takes the slot of the one it replaces)."""
    figures_board: FiguresBoard | None = None
    """Where the processes publish their figures for /metrics (None: this process alone)."""
    certificate_authorities: tuple[x509.Certificate, ...] = ()
    """The CAs the gateway trusts (``ca.pem``: one, or two while the centre rolls its CA
    over), as loaded at start or by the last reload: the participants' certificates and the
    gateway's must be issued by one of them."""
    tls: GatewayContexts | None = None
    """The listener's and the pushes' TLS contexts (``open_runtime`` builds them), replaced
    when a reload changes the gateway's certificate or the CAs."""
    certificates: list[KnownCertificate] = field(default_factory=list)
    """The CAs', the gateway's and the participants' certificates as loaded at start or by
    the last reload (for /metrics, and the first process's log of those that need
    attention)."""
    authentication: AuthenticationMonitor = field(init=False)
    connections_seen: weakref.WeakSet[asyncio.BaseTransport] = field(
        default_factory=weakref.WeakSet
    )
    """TLS connections that have carried an authenticated request (the first one from a new
    connection may end a run of failures another process counted)."""

    def __post_init__(self) -> None:
        self.limiter = asyncio.Semaphore(self.gateway.settings.http.max_concurrent_validations)
        self.authentication = AuthenticationMonitor(
            self.clearing, self.gateway.settings.http, self.messages.now
        )

    def figures(self, now: datetime) -> ProcessFigures:
        """What this process has counted, as of ``now``."""
        messages: dict[str, dict[str, int]] = defaultdict(dict)
        for (message, outcome), count in self.metrics.messages.items():
            messages[message][outcome] = count
        authentication = self.authentication.counts
        writer = self.clearing.writer_statistics
        workers = self.workers
        return ProcessFigures(
            slot=self.slot,
            pid=os.getpid(),
            published_at=now,
            messages=dict(messages),
            latency_counts=list(self.metrics.latency_counts),
            latency_sum=self.metrics.latency_sum,
            submissions_in_flight=self.submissions_in_flight,
            authentication_failures=authentication.failures,
            authentication_not_shared=authentication.not_shared,
            authentication_alarms=authentication.alarms,
            tls_refused=dict(self.metrics.tls_refused),
            writer_transactions=writer.transactions,
            writer_commands=writer.commands,
            writer_lock_wait_seconds=writer.lock_wait_seconds,
            writer_lock_held_seconds=writer.lock_held_seconds,
            pushed={code: pusher.pushed for code, pusher in self.pushers.items()},
            push_failures={code: pusher.failures for code, pusher in self.pushers.items()},
            workers=(
                WorkerFigures(workers.running, workers.counts.restarts, workers.counts.abandoned)
                if workers is not None
                else None
            ),
        )

    def stop_waiting(self) -> None:
        """A graceful shutdown has started: wake every waiting outbox poll to answer now."""
        self.stopping = True
        for event in self.waiters.values():
            event.set()

    def handshake_refused(self, refused: RefusedHandshake) -> None:
        """A TLS handshake the listener refused. One about the client certificate (none, an
        unknown CA, expired) is an authentication failure, logged as such with the reason and
        counted towards the alarm; others (a TLS 1.2 client, plain HTTP) are logged."""
        kind = "certificate" if refused.authentication else "protocol"
        self.metrics.tls_refused[kind] += 1
        if refused.authentication:
            self.authentication.failed(refused.source, f"TLS handshake refused: {refused.reason}")
        else:
            LOG.warning("event=tls-refused source=%s reason=%s", refused.source, refused.reason)

    def notify(self, participants: set[str]) -> None:
        for participant in participants:
            event = self.waiters.get(participant)
            if event is not None:
                event.set()
            pusher = self.pushers.get(participant)
            if pusher is not None:
                pusher.wake.set()


RUNTIME = web.AppKey("runtime", Runtime)


def _runtime(request: web.Request) -> Runtime:
    return request.app[RUNTIME]


def _certificate_pin(request: web.Request) -> str:
    """SHA-256 (hex) of the client certificate the request came with ("" without one)."""
    transport = request.transport
    return peer_pin(transport.get_extra_info("ssl_object") if transport else None) or ""


def _authenticate(request: web.Request) -> tuple[str, str]:
    """The participant the client certificate is pinned to, and that pin."""
    runtime = _runtime(request)
    source = request.remote or "unknown"
    pin = _certificate_pin(request)
    participant = runtime.pins.get(pin)
    if participant is None:
        runtime.authentication.failed(source, "client certificate is not pinned to a participant")
        # Text, not a signed admi.002: there is no participant to address one to.
        raise web.HTTPForbidden(
            text=f"DS0E the client certificate (SHA-256 {pin}) is not pinned to a participant: "
            "the centre pins each bank's certificate (certificate_sha256 in the participants "
            "file); nothing was read or applied\n"
        )
    return participant, pin


def _authenticated(request: web.Request) -> None:
    """The request proved who sent it (the pinned certificate, and for a submission its
    signature): this ends its source's run of authentication failures."""
    runtime = _runtime(request)
    transport = request.transport
    new_connection = transport is not None and transport not in runtime.connections_seen
    if transport is not None and new_connection:
        runtime.connections_seen.add(transport)
    runtime.authentication.succeeded(request.remote or "unknown", new_connection)


def _rate_limited(runtime: Runtime, participant: str) -> bool:
    return not runtime.rate_limit.take(participant, runtime.monotonic())


def _admit(request: web.Request) -> tuple[str, str]:
    """For outbox, acknowledgement and validation requests: the participant behind the client
    certificate and the certificate's pin, within the participant's rate limit (every request
    counts, submissions too). A submission is authenticated only once its signature has been
    checked, and its refusals are signed messages (``submit``)."""
    participant, pin = _authenticate(request)
    _authenticated(request)
    if _rate_limited(_runtime(request), participant):
        raise web.HTTPTooManyRequests(
            text="rate limit reached (setting http.requests_per_second)\n",
            headers={"Retry-After": _retry_after(_runtime(request))},
        )
    return participant, pin


def _retry_after(runtime: Runtime) -> str:
    """Whole seconds until the participant's bucket holds a token again (at least 1)."""
    return str(max(1, math.ceil(1 / runtime.gateway.settings.http.requests_per_second)))


class _RequestRefusedError(Exception):
    def __init__(self, refused: RefusedRequest) -> None:
        super().__init__(refused.text)
        self.refused = refused


async def _submission_body(request: web.Request, participant: str) -> bytes:
    """The submitted bytes, within the participant's rate limit (429), the body cap (413) and
    an XML content type (415); a refusal is raised as ``_RequestRefusedError``."""
    runtime = _runtime(request)
    settings = runtime.gateway.settings.http
    declared = request.content_length or 0
    if _rate_limited(runtime, participant):
        raise _RequestRefusedError(
            RefusedRequest(
                429,
                "TA01",
                f"rate limit of {settings.requests_per_second:g} requests a second reached "
                f"(settings http.requests_per_second, http.burst): the message was not read "
                "and nothing was applied; send the same message again after Retry-After "
                "seconds",
                declared,
                recorded=False,
            )
        )
    return await _bounded_body(request, "send the signed message as application/xml")


async def _bounded_body(request: web.Request, advice: str) -> bytes:
    """The request's bytes, within the body cap (413) and of an XML content type (415); a
    refusal is raised as ``_RequestRefusedError``. The body is read in chunks and counted as it
    comes, so one sent without a length, or compressed, is stopped at the cap too."""
    declared = request.content_length or 0
    limit = _runtime(request).gateway.settings.http.max_body_bytes
    if declared > limit:
        raise _RequestRefusedError(_too_large(limit, declared))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise _RequestRefusedError(_too_large(limit, size))
        chunks.append(chunk)
    body = b"".join(chunks)
    if request.content_type not in XML_TYPES:
        raise _RequestRefusedError(
            RefusedRequest(
                415,
                "FF01",
                f"content type {request.content_type!r} is not accepted: {advice} (nothing "
                "was applied)",
                len(body),
                hashlib.sha256(body).hexdigest(),
            )
        )
    return body


def _too_large(limit: int, size: int) -> RefusedRequest:
    text = (
        f"the message is larger than the limit of {limit:,} bytes (setting "
        "http.max_body_bytes): nothing was applied"
    )
    return RefusedRequest(413, "FF01", text, size)


async def submit(request: web.Request) -> web.Response:
    """Every answer to a submission from a pinned certificate is a signed admi.007 or
    admi.002, whatever refused it; only a certificate without a pin gets text (403): there is
    no participant to address a message to."""
    runtime = _runtime(request)
    started = time.perf_counter()
    participant, pin = _authenticate(request)
    address = request.remote or "unknown"
    message = "unknown"
    size = request.content_length or 0
    runtime.submissions_in_flight += 1
    try:
        try:
            body = await _submission_body(request, participant)
            message, size = _message_type(runtime, body), len(body)
            async with runtime.limiter:
                answer = await runtime.messages.submit(participant, body, address, pin)
        except _RequestRefusedError as refusal:
            answer = await runtime.messages.refuse_request(
                participant, refusal.refused, address, pin
            )
    except Exception as error:  # nothing was committed
        if storage_unavailable(error):
            LOG.exception("event=storage-unavailable participant=%s", participant)
            answer = await _unavailable_answer(runtime, participant, size)
        else:
            runtime.metrics.observe(message, "internal-error", time.perf_counter() - started)
            # The signed MS03 answer could not be built either (the signer is failing).
            LOG.exception("event=internal-error participant=%s", participant)
            raise web.HTTPInternalServerError(
                text="internal error in the gateway: nothing was applied; sending the same "
                "message again will fail the same way until the clearing centre has fixed the "
                "fault\n"
            ) from None
    finally:
        runtime.submissions_in_flight -= 1
    if (answer.code is not None and answer.code.startswith("DS")) or answer.status == 403:
        runtime.authentication.failed(address, f"{answer.code} from {participant}")
    elif answer.signature_checked:
        _authenticated(request)
    outcome = _outcome(answer)
    runtime.metrics.observe(message, outcome, time.perf_counter() - started)
    if answer.status != 429:  # counted, not logged: a flood writes no line per request
        LOG.info(
            "event=submit participant=%s message_id=%s message=%s status=%d outcome=%s",
            participant,
            sender_text(answer.message_id or "-"),
            message,
            answer.status,
            outcome,
        )
    retry = {429: _retry_after(runtime), 503: "1"}.get(answer.status)
    headers = {"Retry-After": retry} if retry is not None else {}
    return web.Response(
        status=answer.status, body=answer.body, content_type="application/xml", headers=headers
    )


def _outcome(answer: Answer) -> str:
    if answer.accepted:
        return "accepted"
    return {500: "internal-error", 503: "unavailable", 429: "rate-limited"}.get(
        answer.status, f"rejected-{answer.code}"
    )


async def _unavailable_answer(runtime: Runtime, participant: str, size: int) -> Answer:
    """503, signed (TA01): the storage could not take the submission for now; nothing was
    applied and the same message may be sent again as it is."""
    refused = RefusedRequest(
        503,
        "TA01",
        "storage temporarily unavailable: nothing was applied; send the same message again "
        "after Retry-After seconds",
        size,
        recorded=False,
    )
    try:
        return await runtime.messages.refuse_request(participant, refused)
    except Exception:  # the signer failing as well: the same answer in plain text
        LOG.exception("event=internal-error participant=%s", participant)
        raise _unavailable("nothing was applied, send the same message again") from None


def _unavailable(consequence: str) -> web.HTTPServiceUnavailable:
    return web.HTTPServiceUnavailable(
        text=f"storage temporarily unavailable; {consequence}\n",
        headers={"Retry-After": "1"},
    )


@web.middleware
async def _storage_failures(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A request that failed because the storage is unavailable for now (locked past the busy
    timeout, an I/O error, a full disk) is answered 503 with Retry-After: its transaction was
    rolled back. Any other failure stays a 500 (aiohttp logs it with the traceback)."""
    try:
        return await handler(request)
    except Exception as error:
        if not storage_unavailable(error):
            raise
        LOG.exception("event=storage-unavailable path=%s", request.path)
        raise _unavailable("nothing was changed, try again") from None


def _message_type(runtime: Runtime, body: bytes) -> str:
    """The message definition the business header names if the gateway has a codec for it,
    else ``unknown``: a metrics label and a log field never take text a sender chose (no
    series without bound, no broken Prometheus text, no forged log lines)."""
    start = body.find(b"<MsgDefIdr>")
    end = body.find(b"</MsgDefIdr>", start)
    if not 0 <= start < end < start + 60:
        return "unknown"
    named = body[start + 11 : end].decode("ascii", "replace")
    return named if runtime.gateway.codecs.for_message(named) is not None else "unknown"


async def outbox(request: web.Request) -> web.Response:
    runtime = _runtime(request)
    participant, _ = _admit(request)
    settings = runtime.gateway.settings.http
    if runtime.outbox_requests[participant] >= settings.outbox_requests_per_participant:
        raise web.HTTPTooManyRequests(
            text=f"{settings.outbox_requests_per_participant} outbox requests of {participant} "
            "are open already (setting http.outbox_requests_per_participant)\n"
        )
    runtime.outbox_requests[participant] += 1
    try:
        return await _read_outbox(request, runtime, participant)
    finally:
        runtime.outbox_requests[participant] -= 1


async def _read_outbox(request: web.Request, runtime: Runtime, participant: str) -> web.Response:
    settings = runtime.gateway.settings.http
    after = _sequence(request.query.get("after", "0"), "after")
    try:
        wait = float(request.query.get("wait", "0"))
    except ValueError:
        wait = math.nan
    if math.isnan(wait) or wait == -math.inf:
        raise web.HTTPBadRequest(text="wait is a number of seconds\n")
    # Negative means do not wait; longer than the setting waits as long as the setting.
    wait = min(max(wait, 0.0), settings.outbox_max_wait_seconds)
    deadline = runtime.monotonic() + wait
    waiter = runtime.waiters.setdefault(participant, asyncio.Event())
    while True:
        waiter.clear()
        async with runtime.clearing.reader.connect() as connection:
            found = await messages.read_outbox(
                connection, participant, after, settings.outbox_batch
            )
        remaining = deadline - runtime.monotonic()
        if found or remaining <= 0 or runtime.stopping:
            break
        try:
            # Woken by a delivery in this process; looks again now and then for deliveries
            # made by other gateway processes.
            await asyncio.wait_for(
                waiter.wait(), timeout=min(remaining, settings.outbox_poll_seconds)
            )
        except TimeoutError:
            continue
    payload = {
        "messages": [
            {
                "sequence": message.sequence,
                "message_id": message.message_id,
                "message_type": message.message_type,
                "xml": message.payload.decode("utf-8"),
            }
            for message in found
        ],
        "next": found[-1].sequence if found else after,
    }
    return web.json_response(payload)


MAXIMUM_SEQUENCE = 2**63 - 1
"""The largest outbox sequence the database holds (a 64-bit integer)."""


def _sequence(value: int | str, name: str) -> int:
    """An outbox sequence from a request (query text or a JSON integer): an integer from 0 to
    ``MAXIMUM_SEQUENCE``."""
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            value = -1
    if not 0 <= value <= MAXIMUM_SEQUENCE:
        raise web.HTTPBadRequest(
            text=f"{name} is an outbox sequence: an integer from 0 to {MAXIMUM_SEQUENCE}\n"
        )
    return value


async def acknowledge(request: web.Request) -> web.Response:
    runtime = _runtime(request)
    participant, _ = _admit(request)
    try:
        through = (await request.json())["through"]
    except (ValueError, KeyError, TypeError, json.JSONDecodeError) as error:
        raise web.HTTPBadRequest(text='send {"through": SEQUENCE}\n') from error
    if isinstance(through, bool) or not isinstance(through, int):
        raise web.HTTPBadRequest(text='send {"through": SEQUENCE}; SEQUENCE is an integer\n')
    through = _sequence(through, "through")
    async with runtime.clearing.engine.begin() as connection:
        count = await messages.acknowledge(connection, participant, through, runtime.messages.now())
    return web.json_response({"acknowledged": count})


async def validate(request: web.Request) -> web.Response:
    runtime = _runtime(request)
    _admit(request)
    try:
        body = await _bounded_body(request, "send the message as application/xml")
    except _RequestRefusedError as refusal:
        problem = Problem(refusal.refused.code, refusal.refused.text)
        verdict = Verdict("request", problems=[problem])
        return web.json_response(verdict.as_dict(), status=refusal.refused.status)
    source = InputSource.from_bytes(body, "request")
    async with runtime.limiter:
        if len(body) <= runtime.gateway.settings.parser.tree_max_bytes:
            verdict = runtime.gateway.validator.validate(source)  # small: no thread switch
        else:
            verdict = await asyncio.to_thread(runtime.gateway.validator.validate, source)
    return web.json_response(verdict.as_dict(), status=200 if verdict.valid else 400)


async def health(request: web.Request) -> web.Response:
    # Which gateway process answered (several share the port): for operators and tests.
    runtime = _runtime(request)
    return web.json_response({"status": "ok", "process": os.getpid(), "slot": runtime.slot})


async def ready(request: web.Request) -> web.Response:
    try:
        async with _runtime(request).clearing.reader.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as error:
        return web.json_response({"status": "not ready", "reason": str(error)}, status=503)
    return web.json_response({"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text. Several gateway processes share the port, so a scrape reaches one of
    them; it reports what every process counts (its own figures live, the others' last
    published ones, each under its ``process`` slot label: gateway.transport.process_figures).
    The outbox depths come from the database, and the positions and queues from the clearing
    core after it has caught up with every process's commands, so those are the same
    whichever process answers."""
    runtime = _runtime(request)
    try:
        await asyncio.wait_for(
            runtime.clearing.catch_up(), runtime.gateway.settings.http.metrics_catch_up_seconds
        )
        caught_up = 1
    except Exception:  # writer busy or storage failing: figures as of this process's last write
        caught_up = 0
    now = runtime.messages.now()
    others = runtime.figures_board.others() if runtime.figures_board is not None else []
    lines = process_lines([runtime.figures(now), *others], now)
    lines += _certificate_lines(runtime.certificates)
    process = f'process="{runtime.slot}"'
    clearing = runtime.clearing
    lines += [
        "# TYPE isogw_clearing_caught_up gauge",
        f"isogw_clearing_caught_up{{{process}}} {caught_up}",
        # The log, the newest checkpoint (a start replays the commands between them) and what
        # the core holds in memory (bounded by retirement).
        "# TYPE isogw_clearing_log_sequence gauge",
        f"isogw_clearing_log_sequence{{{process}}} {clearing.sequence}",
        "# TYPE isogw_clearing_checkpoint_sequence gauge",
        f"isogw_clearing_checkpoint_sequence {await clearing.newest_checkpoint()}",
        "# TYPE isogw_clearing_items_in_memory gauge",
        f"isogw_clearing_items_in_memory{{{process}}} {len(clearing.core.items)}",
        "# TYPE isogw_outbox_depth gauge",
    ]
    async with runtime.clearing.reader.connect() as connection:
        depths = await messages.outbox_depths(connection)
        to_sign = await messages.count_documents_to_sign(connection)
    lines += [
        f'isogw_outbox_depth{{participant="{code}"}} {depth}'
        for code, depth in sorted(depths.items())
    ]
    # Long messages committed and not signed yet: each process signs its own at once, so a
    # figure that stays above zero means signing fails (the log says why).
    lines += ["# TYPE isogw_outbox_to_sign gauge", f"isogw_outbox_to_sign {to_sign}"]
    core = clearing.core
    accounts = sorted(core.accounts.items())
    queued = {code: core.netting.queued(code) for code, _ in accounts}
    for family, values in (
        ("isogw_queue_items", {code: queued[code][0] for code, _ in accounts}),
        ("isogw_queue_amount_minor", {code: queued[code][1] for code, _ in accounts}),
        ("isogw_available_minor", {code: account.available for code, account in accounts}),
        ("isogw_net_position_minor", {code: account.net_position for code, account in accounts}),
    ):
        lines.append(f"# TYPE {family} gauge")
        lines += [f'{family}{{participant="{code}"}} {value}' for code, value in values.items()]
    return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")


def _certificate_lines(certificates: list[KnownCertificate]) -> list[str]:
    """When each certificate stops being valid (Unix seconds), for an alert on how far off
    that is: ``isogw_certificate_expiry_timestamp_seconds - time() < 30 * 86400``. A CA's
    series also has its SHA-256 (``ca.pem`` holds two while the centre rolls its CA over)."""
    family = "isogw_certificate_expiry_timestamp_seconds"
    lines = [f"# TYPE {family} gauge"]
    for certificate in certificates:
        if certificate.not_after is None:
            continue
        owner = f',owner="{certificate.owner}"' if certificate.owner else ""
        authority = f',sha256="{certificate.sha256}"' if certificate.role == "ca" else ""
        labels = f'certificate="{certificate.role}"{owner}{authority}'
        lines.append(f"{family}{{{labels}}} {int(certificate.not_after.timestamp())}")
    return lines


async def _stopped(*tasks: asyncio.Task[None] | None) -> None:
    """Cancel the background tasks (those running: None is none) and wait until each ends."""
    running = [task for task in tasks if task is not None]
    for task in running:
        task.cancel()
    for task in running:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _watching_certificates(app: web.Application) -> AsyncIterator[None]:
    """The first process logs the certificates that need attention, at start and then every
    ``http.certificate_check_seconds`` (each again when its days left change)."""
    runtime = app[RUNTIME]
    settings = runtime.gateway.settings.http
    watch = CertificateWatch(
        runtime.certificates, timedelta(days=settings.certificate_warning_days)
    )

    async def watch_forever() -> None:
        while True:
            watch.follow(runtime.certificates)  # a reload may have changed them
            watch.check(runtime.messages.now())
            await asyncio.sleep(settings.certificate_check_seconds)

    task = asyncio.create_task(watch_forever()) if runtime.slot == 0 else None
    yield
    await _stopped(task)


async def _publishing_figures(app: web.Application) -> AsyncIterator[None]:
    """Publish this process's figures for the others to report (every
    ``http.metrics_publish_seconds``, and a last time once its requests are over)."""
    runtime = app[RUNTIME]
    board = runtime.figures_board
    if board is None:
        yield
        return

    failing = False

    def publish() -> None:
        """Logs the first failure of a run of them, and the recovery (not every second)."""
        nonlocal failing
        try:
            board.publish(runtime.figures(runtime.messages.now()))
        except OSError as error:
            if not failing:
                LOG.warning("event=metrics-not-published folder=%s reason=%s", board.folder, error)
            failing = True
            return
        if failing:
            LOG.info("event=metrics-published-again folder=%s", board.folder)
        failing = False

    async def publish_forever() -> None:
        while True:
            publish()
            await asyncio.sleep(runtime.gateway.settings.http.metrics_publish_seconds)

    task = asyncio.create_task(publish_forever())
    yield
    await _stopped(task)
    publish()


async def _authentication_counting(app: web.Application) -> AsyncIterator[None]:
    """Counts authentication failures in the shared ledger, in order (see
    gateway.transport.authentication_alarm)."""
    runtime = app[RUNTIME]
    task = asyncio.create_task(runtime.authentication.run_forever())
    yield
    # The requests are over: failures they saw are counted before the ledger closes.
    await runtime.authentication.finish(runtime.gateway.settings.http.shutdown_seconds)
    await _stopped(task)


async def _pushers(app: web.Application) -> AsyncIterator[None]:
    """One push task per participant with a push_url."""
    runtime = app[RUNTIME]
    tasks = [asyncio.create_task(pusher.run_forever()) for pusher in runtime.pushers.values()]
    yield
    await _stopped(*tasks)


async def _signing_sweeps(app: web.Application) -> AsyncIterator[None]:
    """Sign the long outbox messages a stopped process left as documents: all of them at the
    start, then every ``encoding.signing_sweep_seconds`` (``gateway.service.notice_delivery``)."""
    task = asyncio.create_task(_sweep_forever(app[RUNTIME]))
    yield
    await _stopped(task)


async def _sweep_forever(runtime: Runtime) -> None:
    pause = runtime.gateway.settings.encoding.signing_sweep_seconds
    everything = True
    while True:
        try:
            runtime.notify(await runtime.messages.notices.sweep(everything))
            everything = False
        except Exception:
            LOG.exception("event=signing-sweep-failed")
        await asyncio.sleep(pause)


async def _ticker(app: web.Application) -> AsyncIterator[None]:
    """Let clearing time pass: wake when a deadline, session close or day switch is due."""
    runtime = app[RUNTIME]
    task = asyncio.create_task(_tick_forever(runtime)) if runtime.run_ticker else None
    yield
    await _stopped(task)


async def _tick_forever(runtime: Runtime) -> None:
    longest = runtime.gateway.settings.http.tick_max_seconds
    while True:
        core = runtime.clearing.core
        due = [core.next_switch_time()]
        if core.next_session_time() is not None:
            due.append(core.next_session_time())  # type: ignore[arg-type]
        if core.deadlines:
            due.append(core.deadlines[0][0])
        wait = (min(due) - runtime.messages.now()).total_seconds()
        if wait <= 0:
            try:
                await runtime.messages.tick()
            except Exception:
                LOG.exception("event=tick-failed")
                await asyncio.sleep(longest)
            continue
        await asyncio.sleep(min(wait, longest))


async def _stop_waiting(app: web.Application) -> None:
    """First step of a graceful shutdown (the port is closed already): open outbox long polls
    answer now with what they have (a bank polls again after the restart, from its cursor);
    submissions in flight go on to their commit and answer."""
    runtime = app[RUNTIME]
    LOG.info(
        "event=stopping submissions_in_flight=%d outbox_polls_open=%d finish_within_seconds=%s",
        runtime.submissions_in_flight,
        sum(runtime.outbox_requests.values()),
        runtime.gateway.settings.http.shutdown_seconds,
    )
    runtime.stop_waiting()


async def _close_storage(app: web.Application) -> None:
    """Last step of a graceful shutdown: in-flight requests have finished (aiohttp waits for
    them up to its shutdown timeout), so the clearing writer has nothing left to commit."""
    await app[RUNTIME].clearing.close()
    app[RUNTIME].rate_limit.close()


def build_app(runtime: Runtime) -> web.Application:
    app = web.Application(
        client_max_size=runtime.gateway.settings.http.max_body_bytes,
        middlewares=[_storage_failures],
    )
    app[RUNTIME] = runtime
    app.router.add_post("/v1/messages", submit)
    app.router.add_get("/v1/outbox", outbox)
    app.router.add_post("/v1/outbox/ack", acknowledge)
    app.router.add_post("/v1/validate", validate)
    app.router.add_get("/healthz", health)
    app.router.add_get("/readyz", ready)
    app.router.add_get("/metrics", metrics)
    app.cleanup_ctx.append(_ticker)
    app.cleanup_ctx.append(_pushers)
    app.cleanup_ctx.append(_signing_sweeps)
    app.cleanup_ctx.append(_authentication_counting)
    app.cleanup_ctx.append(_publishing_figures)
    app.cleanup_ctx.append(_watching_certificates)
    app.on_shutdown.append(_stop_waiting)
    app.on_cleanup.append(_close_storage)
    return app


async def listen(
    runner: web.AppRunner,
    runtime: Runtime,
    port: int | None = None,
    reuse_port: bool = False,
) -> TlsSite:
    """Start the HTTPS listener for ``runner`` (set up) on ``http.host`` and ``http.port``
    (or ``port``), with the runtime's server context of the moment for each connection;
    refused TLS handshakes are reported to ``runtime``."""
    http = runtime.gateway.settings.http
    contexts = runtime.tls
    assert contexts is not None, "open_runtime builds the TLS contexts"
    site = TlsSite(
        runner,
        http.host,
        http.port if port is None else port,
        ssl_context=lambda: contexts.server,
        on_refused=runtime.handshake_refused,
        handshake_seconds=http.tls_handshake_seconds,
        max_handshakes=http.max_tls_handshakes,
        reuse_port=reuse_port,
    )
    await site.start()
    return site
