"""Real-time payments through HTTPS, end to end, on this machine (issue 4 targets).

Starts ``isogw serve`` in its own process on a fresh state folder, then simulated banks (this
process; their messages are signed before the clock starts) run real-time debits (D100): the
payee's bank (ICBC) submits a signed pacs.003, the payer's bank (CCB) answers a signed pacs.002
(ACSP); the gateway verifies, validates, nets, commits and writes signed pacs.002 receipts for
both banks before answering. A payment is complete when the second answer arrives. Also
measures signed inbound messages accepted per second (C100 submissions), and, as the baseline
in the same run, a bare aiohttp server with the same mutual TLS echoing the same bodies, laid
out as the gateway is: as many server processes as gateway processes sharing the port, the
clients in this process. The baseline's requests/s halved is what the machine allows for
payments (two requests each) when the gateway's own work costs nothing.

Usage: .venv/bin/python bench/realtime.py [--payments 2000] [--concurrency 32] [--workers N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.commands.inbound import BusinessHeader  # noqa: E402
from gateway.commands.outbound import ReportedTransaction, StatusReport  # noqa: E402
from gateway.composition import build_gateway  # noqa: E402
from gateway.security.keys import KeyStore  # noqa: E402
from gateway.security.signatures import XmlDsigSigner  # noqa: E402
from gateway.transport.tls import client_context, server_context  # noqa: E402

ICBC, CCB, BOCOM, CENTRE = "102100099996", "105100000017", "301290000007", "999999999999"
D100 = (ROOT / "samples/pacs.003.001.08/valid-D100-realtime-debit.xml").read_text()
C100 = (ROOT / "samples/pacs.008.001.08/valid-C100-realtime-credit.xml").read_text()
D100_ID, D100_TX = "B102100099996202611230057", "1021000999962026112300000801"
C100_ID, C100_TX = "B301290000007202611230042", "3012900000072026112300000301"


def config_folder(base: Path, port: int) -> Path:
    """A copy of config/ with the benchmark's port and a rate limit it will not reach."""
    folder = base / "config"
    shutil.copytree(ROOT / "config", folder)
    settings = folder / "gateway.toml"
    text = settings.read_text()
    text = text.replace("port = 8443", f"port = {port}")
    text = text.replace("requests_per_second = 200.0", "requests_per_second = 1000000.0")
    text = text.replace("burst = 400", "burst = 1000000")
    text = text.replace('schemas = "../xsd"', f'schemas = "{ROOT / "xsd"}"')
    text = text.replace('codecs = "../codecs"', f'codecs = "{ROOT / "codecs"}"')
    text = text.replace('samples = "../samples"', f'samples = "{ROOT / "samples"}"')
    settings.write_text(text)
    return folder


class Banks:
    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys
        self.gateway = build_gateway(ROOT / "config" / "gateway.toml", check_sample_files=False)
        self.signers = {
            code: XmlDsigSigner(
                keys.participant(code).key_path.read_bytes(),
                keys.participant(code).certificate_path.read_bytes(),
            )
            for code in (ICBC, CCB, BOCOM)
        }
        self.contexts = {
            code: client_context(keys, keys.participant(code)) for code in (ICBC, CCB, BOCOM)
        }

    def debit(self, number: int) -> tuple[bytes, str, str]:
        message_id = f"B102100099996{number:012d}"
        transaction = f"{number:028d}"
        text = D100.replace(D100_ID, message_id).replace(D100_TX, transaction)
        return self.signers[ICBC].sign(text.encode()), message_id, transaction

    def credit(self, number: int) -> bytes:
        message_id = f"B301290000007{number:012d}"
        text = C100.replace(C100_ID, message_id).replace(C100_TX, f"{number:028d}")
        return self.signers[BOCOM].sign(text.encode())

    def receipt(self, number: int, original: str, transaction: str) -> bytes:
        report = StatusReport(
            message_id=f"R105100000017{number:012d}",
            created_at=datetime.now(UTC),
            instructing_agent=CCB,
            original_message_id=original,
            original_message_type="pacs.003.001.08",
            transactions=(ReportedTransaction(original_transaction_id=transaction, status="ACSP"),),
        )
        header = BusinessHeader(
            sender=CCB,
            receiver=CENTRE,
            business_message_id=report.message_id,
            message_definition="pacs.002.001.10",
            created_at=report.created_at,
        )
        return self.signers[CCB].sign(self.gateway.encoder.message(header, report))


async def post(
    session: aiohttp.ClientSession, url: str, body: bytes, context: ssl.SSLContext
) -> int:
    async with session.post(
        url, data=body, headers={"Content-Type": "application/xml"}, ssl=context
    ) as response:
        await response.read()
        return response.status


async def run_payments(
    banks: Banks, url: str, payments: int, concurrency: int, offset: int
) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    failures = 0
    # The banks sign their messages before the clock starts: their signing is not the
    # gateway's work (the HTTP clients still share the cores with the gateway).
    prepared = []
    for number in range(offset, offset + payments):
        debit, message_id, transaction = banks.debit(number)
        prepared.append((debit, banks.receipt(number, message_id, transaction)))
    work = iter(prepared)
    connector = aiohttp.TCPConnector(limit=concurrency * 2)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal failures
            for debit, receipt in work:
                started = time.perf_counter()
                first = await post(session, url + "/v1/messages", debit, banks.contexts[ICBC])
                second = await post(session, url + "/v1/messages", receipt, banks.contexts[CCB])
                latencies.append(time.perf_counter() - started)
                if first != 200 or second != 200:
                    failures += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return payments / elapsed, latencies, failures


async def run_inbound(
    banks: Banks, url: str, count: int, concurrency: int, offset: int
) -> tuple[float, int]:
    messages = iter([banks.credit(number) for number in range(offset, offset + count)])
    failures = 0
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency * 2)
    ) as session:

        async def worker() -> None:
            nonlocal failures
            for message in messages:
                status = await post(session, url + "/v1/messages", message, banks.contexts[BOCOM])
                if status != 200:
                    failures += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return count / (time.perf_counter() - started), failures


def serve_echo(state: Path, port: int) -> None:
    """The baseline server (one process of it): aiohttp, the gateway's TLS context, echoing
    the body, on a port shared with the other echo processes."""

    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read(), content_type="application/xml")

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_post("/echo", echo)
    web.run_app(
        app,
        host="127.0.0.1",
        port=port,
        ssl_context=server_context(KeyStore(state)),
        reuse_port=True,
        print=None,
        access_log=None,
    )


async def echo_rate(banks: Banks, url: str, body: bytes, requests: int, concurrency: int) -> float:
    numbers = iter(range(requests))
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency * 2)
    ) as session:

        async def worker() -> None:
            for _ in numbers:
                await post(session, url, body, banks.contexts[ICBC])

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return requests / (time.perf_counter() - started)


def echo_baseline(
    state: Path, banks: Banks, port: int, workers: int, requests: int, concurrency: int
) -> float:
    """Requests/s of ``workers`` echo processes, started for the measurement and stopped."""
    command = [sys.executable, __file__, "--serve-echo", str(state), "--port", str(port)]
    servers = [subprocess.Popen(command, cwd=ROOT) for _ in range(workers)]
    try:
        url = f"https://127.0.0.1:{port}/echo"
        body, _, _ = banks.debit(0)
        wait_until_answered(lambda: echo_rate(banks, url, body, 1, 1), "the echo server")
        return asyncio.run(echo_rate(banks, url, body, requests, concurrency))
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=30)


def wait_until_answered(
    request: Callable[[], Awaitable[object]], what: str, timeout: float = 60
) -> None:
    """Until ``request`` succeeds: a server that is starting refuses connections or, like the
    gateway's /readyz, answers an error status."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            asyncio.run(request())
            return
        except (aiohttp.ClientError, OSError):
            if time.monotonic() > deadline:
                raise SystemExit(f"{what} did not become ready") from None
            time.sleep(0.2)


def wait_ready(url: str, keys: KeyStore) -> None:
    async def probe() -> None:
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                url + "/readyz", ssl=client_context(keys, keys.participant(ICBC))
            ) as response,
        ):
            response.raise_for_status()

    wait_until_answered(probe, "the gateway")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--payments", type=int, default=2000)
    parser.add_argument("--inbound", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--port", type=int, default=18443)
    parser.add_argument(
        "--workers", type=int, help="gateway processes (default: http.workers in the config)"
    )
    parser.add_argument("--serve-echo", type=Path, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve_echo:
        serve_echo(arguments.serve_echo, arguments.port)
        return
    with tempfile.TemporaryDirectory() as name:
        base = Path(name)
        config = config_folder(base, arguments.port)
        state = base / "state"
        environment = {**os.environ, "GATEWAY_STATE_DIR": str(state)}
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway",
                "--config",
                str(config / "gateway.toml"),
                "serve",
                *(["--workers", str(arguments.workers)] if arguments.workers else []),
            ],
            env=environment,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"https://127.0.0.1:{arguments.port}"
            while not (state / "keys" / "ca.pem").is_file():
                time.sleep(0.2)
            keys = KeyStore(state)
            wait_ready(url, keys)
            banks = Banks(keys)
            workers = arguments.workers or banks.gateway.settings.http.workers
            print(
                f"gateway: {workers} process{'es' if workers > 1 else ''}, "
                f"{arguments.concurrency} concurrent requests"
            )
            baseline = echo_baseline(
                state,
                banks,
                arguments.port + 1,
                workers,
                arguments.payments * 2,
                arguments.concurrency,
            )
            print(
                f"baseline: bare aiohttp mutual-TLS echo, same bodies, {workers} server "
                f"process{'es' if workers > 1 else ''}: {baseline:,.0f} requests/s (so at most "
                f"{baseline / 2:,.0f} payments/s of two requests each if the gateway's work "
                "cost nothing)"
            )
            rate, latencies, failures = asyncio.run(
                run_payments(banks, url, arguments.payments, arguments.concurrency, 1)
            )
            quantiles = statistics.quantiles(latencies, n=100)
            print(
                f"real-time debits end to end: {rate:,.0f} completed payments/s "
                f"(2 signed submissions + 2 signed receipts each; {failures} failed), "
                f"p50 {quantiles[49] * 1000:.1f} ms, p99 {quantiles[98] * 1000:.1f} ms; "
                f"ratio {rate * 2 / baseline:.2f} of the echo server's requests/s"
            )
            inbound, failed = asyncio.run(
                run_inbound(banks, url, arguments.inbound, arguments.concurrency, 10_000_000)
            )
            print(
                "signed inbound messages accepted (C100: verified, validated, committed, "
                f"answered): {inbound:,.0f}/s ({failed} failed); "
                f"ratio {inbound / baseline:.2f} of the echo server"
            )
        finally:
            server.terminate()
            server.wait(timeout=60)


if __name__ == "__main__":
    main()
