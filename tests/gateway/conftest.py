"""The HTTPS gateway harness: a real server on loopback with mutual TLS, simulated banks."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import re
import shutil
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from lxml import etree

from gateway.clearing.commands import SetCap
from gateway.commands.inbound import BusinessHeader
from gateway.commands.outbound import ReportedTransaction, StatusReport
from gateway.composition import open_runtime
from gateway.security.keys import KeyPair, KeyStore
from gateway.security.signatures import SignatureVerifier, XmlDsigSigner
from gateway.service.clock import ManualClock
from gateway.start_errors import KeyFileError
from gateway.transport.http_app import Runtime, build_app, listen
from gateway.transport.tls import client_context
from gateway.transport.tls_site import TlsSite
from tests.conftest import CONFIG, PROJECT, SAMPLES

ZONE = __import__("zoneinfo").ZoneInfo("Asia/Shanghai")
START = datetime(2026, 11, 23, 9, 0, tzinfo=ZONE)
BOCOM, CCB, ICBC = "301290000007", "105100000017", "102100099996"
CENTRE = "999999999999"
C100 = (SAMPLES / "pacs.008.001.08" / "valid-C100-realtime-credit.xml").read_bytes()
D100 = (SAMPLES / "pacs.003.001.08" / "valid-D100-realtime-debit.xml").read_bytes()
C100_ID, C100_TX = "B301290000007202611230042", "3012900000072026112300000301"
D100_ID, D100_TX = "B102100099996202611230057", "1021000999962026112300000801"
DS = "{http://www.w3.org/2000/09/xmldsig#}"


@dataclass
class Harness:
    runtime: Runtime
    keys: KeyStore
    clock: ManualClock
    url: str
    site: TlsSite

    def context(self, code: str) -> ssl.SSLContext:
        return client_context(self.keys, self.keys.participant(code))

    def sign(self, code: str, message: bytes) -> bytes:
        pair = self.keys.participant(code)
        return XmlDsigSigner(pair.key_path.read_bytes(), pair.certificate_path.read_bytes()).sign(
            message
        )

    async def post(self, code: str, body: bytes, path: str = "/v1/messages") -> tuple[int, bytes]:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                self.url + path,
                data=body,
                headers={"Content-Type": "application/xml"},
                ssl=self.context(code),
            ) as response,
        ):
            return response.status, await response.read()

    async def get(self, code: str, path: str) -> tuple[int, dict[str, str], str]:
        """Status, headers and text of a GET as participant ``code``."""
        async with (
            aiohttp.ClientSession() as session,
            session.get(self.url + path, ssl=self.context(code)) as response,
        ):
            return response.status, dict(response.headers), await response.text()

    async def outbox(self, code: str, after: int = 0, wait: float = 0) -> dict[str, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"{self.url}/v1/outbox?after={after}&wait={wait}", ssl=self.context(code)
            ) as response,
        ):
            assert response.status == 200
            return await response.json()  # type: ignore[no-any-return]

    async def ack(self, code: str, through: int) -> int:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{self.url}/v1/outbox/ack", json={"through": through}, ssl=self.context(code)
            ) as response,
        ):
            return int((await response.json())["acknowledged"])

    def receipt(
        self, code: str, original: str, transaction: str, status: str, reason: str | None = None
    ) -> bytes:
        report = StatusReport(
            message_id=f"R{code}{transaction[-8:]}",
            created_at=self.clock.now(),
            instructing_agent=code,
            original_message_id=original,
            original_message_type="pacs.008.001.08",
            transactions=(
                ReportedTransaction(
                    original_transaction_id=transaction, status=status, reason_code=reason
                ),
            ),
        )
        header = BusinessHeader(
            sender=code,
            receiver=CENTRE,
            business_message_id=report.message_id,
            message_definition="pacs.002.001.10",
            created_at=self.clock.now(),
        )
        return self.sign(code, self.runtime.gateway.encoder.message(header, report))

    async def remove_cap(self, code: str) -> None:
        """No collateral, credit line or ring-fenced funds: the bank's net debit cap is zero."""
        await self.runtime.clearing.execute(
            SetCap(
                command_id=f"no-cap-{code}",
                at=START,
                participant=code,
                collateral=0,
                credit_line=0,
                ring_fenced=0,
            )
        )

    def verify_from_centre(self, payload: bytes) -> etree._Element:
        gateway_certificate = self.keys.gateway.certificate()
        return SignatureVerifier({CENTRE: gateway_certificate}).verify(
            payload, CENTRE, self.clock.now()
        )


def copy_pair(source: KeyPair, target: KeyPair) -> KeyPair:
    """``source``'s key and certificate copied over ``target``'s files; ``target``."""
    shutil.copy(source.key_path, target.key_path)
    shutil.copy(source.certificate_path, target.certificate_path)
    return target


def statuses(xml: str) -> list[str]:
    """The transaction statuses (TxSts) of a pacs.002, in order."""
    return [element.text or "" for element in etree.fromstring(xml.encode()).iter("{*}TxSts")]


async def receipt_outcomes(harness: Harness, code: str) -> dict[str, tuple[str, str | None]]:
    """The pacs.002 receipts in ``code``'s outbox, each verified as the centre's: original
    transaction id → (status, reason code or None), the latest receipt's for each."""
    outcomes: dict[str, tuple[str, str | None]] = {}
    for message in (await harness.outbox(code))["messages"]:
        if message["message_type"] != "pacs.002.001.10":
            continue
        root = harness.verify_from_centre(message["xml"].encode())
        for transaction in root.iter("{*}TxInfAndSts"):
            outcomes[transaction.findtext("{*}OrgnlTxId") or ""] = (
                transaction.findtext("{*}TxSts") or "",
                transaction.findtext("{*}StsRsnInf/{*}Rsn/{*}Cd"),
            )
    return outcomes


async def operator(harness: Harness, action: str, **options: Any) -> str:
    """``isogw core ACTION`` on the harness's ledger and clock (it must succeed); its output."""
    from gateway.operator_cli import _run

    out = io.StringIO()
    arguments = argparse.Namespace(action=action, json=False, **options)
    assert await _run(CONFIG, arguments, out, harness.clock) == 0, out.getvalue()
    return out.getvalue()


class SteadyClock:
    """The runtime's monotonic seconds, moved by the test."""

    def __init__(self) -> None:
        self.seconds = 1000.0

    def __call__(self) -> float:
        return self.seconds


def exhaust_rate_limit(harness: Harness, participant: str) -> None:
    """Take every token left in ``participant``'s bucket (at most the burst), with the
    runtime's clock standing still."""
    harness.runtime.monotonic = SteadyClock()
    now = harness.runtime.monotonic()
    for _ in range(harness.runtime.gateway.settings.http.burst):
        harness.runtime.rate_limit.take(participant, now)
    assert not harness.runtime.rate_limit.take(participant, now)


async def wait_until(
    condition: Callable[[], Awaitable[bool]], what: str, seconds: float = 60
) -> None:
    """Look again every 50 ms until ``condition`` holds (a gateway process not listening yet,
    or its keys not written yet, counts as not yet); after ``seconds``, fail naming ``what``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if await condition():
                return
        except (aiohttp.ClientError, OSError, KeyFileError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting for {what}")
        await asyncio.sleep(0.05)


@dataclass
class ServeProcess:
    process: subprocess.Popen[bytes]
    log: Path
    """Its standard error: the log."""
    said: Path
    """Its standard output: what it tells the person who started it."""


@contextlib.contextmanager
def serve_process(settings: Path, folder: Path) -> Iterator[ServeProcess]:
    """``isogw serve`` with ``settings`` (the state folder from ``GATEWAY_STATE_DIR``), its
    output in ``folder``; killed at the end if it is still running."""
    log, said = folder / "serve.log", folder / "serve.out"
    with log.open("w") as log_file, said.open("w") as said_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "--config", str(settings), "serve"],
            env=dict(os.environ),
            cwd=PROJECT,
            stdout=said_file,
            stderr=log_file,
        )
    try:
        yield ServeProcess(process, log, said)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=60)


async def wait_until_serving(url: str, keys: KeyStore, said: Path) -> None:
    """Until the first process says it serves and answers /readyz (CCB's certificate)."""

    async def ready() -> bool:
        if "isogw: serving" not in said.read_text():
            return False  # still writing its keys or replaying its ledger
        async with (
            aiohttp.ClientSession() as session,
            session.get(url + "/readyz", ssl=client_context(keys, keys.participant(CCB))) as answer,
        ):
            return answer.status == 200

    await wait_until(ready, "the gateway to start")


async def serve_bank_endpoint(
    handle: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> tuple[web.AppRunner, str]:
    """A bank's plain-HTTP push endpoint on loopback: its runner (to clean up) and its URL."""
    app = web.Application()
    app.router.add_post("/inbound", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/inbound"


@contextlib.asynccontextmanager
async def listening(runtime: Runtime) -> AsyncIterator[TlsSite]:
    """``runtime`` behind the listener isogw serve runs (mutual TLS, handshakes reported), on
    a free loopback port; the runtime is closed at the end."""
    runner = web.AppRunner(build_app(runtime))
    await runner.setup()
    try:
        yield await listen(runner, runtime, port=0)
    finally:
        await runner.cleanup()
        await runtime.clearing.close()


@contextlib.asynccontextmanager
async def serving(config: Path, state: Path, clock: ManualClock) -> AsyncIterator[Harness]:
    """The gateway of ``config`` on ``clock`` (its state folder ``state``, which
    GATEWAY_STATE_DIR names), listening, and the harness to reach it."""
    runtime = await open_runtime(config, clock, run_ticker=False)
    async with listening(runtime) as site:
        yield Harness(runtime, KeyStore(state), clock, f"https://127.0.0.1:{site.port}", site)


@pytest.fixture
async def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Harness]:
    monkeypatch.setenv("GATEWAY_STATE_DIR", str(tmp_path))
    async with serving(CONFIG, tmp_path, ManualClock(START)) as harness:
        yield harness


def assert_prometheus_text(text: str) -> None:
    """The Prometheus text format: each family declared once (``# TYPE``), before its
    samples, which come together (a histogram's _bucket, _sum and _count with it)."""
    declared: list[str] = []
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            assert line.split()[2] not in declared, line
            declared.append(line.split()[2])
            continue
        name = re.split(r"[{ ]", line)[0]
        family = re.sub(r"_(bucket|sum|count)$", "", name) if "_seconds_" in name else name
        assert declared and family == declared[-1], line
