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

It also measures the library floor: the CPU of only the lxml, OpenSSL and SQLite calls that a
signed inbound message (parse, C14N and digest, ECDSA verification, XSD validation, a row) and
a signed outbound one (parse, C14N and digest, ECDSA signing, a row) cannot do without, one
after another in this process. With the echo server's cost of a request, that gives the most
this machine allows with these libraries, and what the targets leave for the gateway's own
Python.

Last, real-time debits one at a time while one batch package (``--batch`` credits, 15,000 by
default, about 13 MB) is submitted: how long the batch takes to its answer and how long the
debits under way meanwhile wait.

Usage: .venv/bin/python bench/realtime.py [--payments 2000] [--concurrency 32] [--workers N]
       [--batch 15000]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import shutil
import sqlite3
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from lxml import etree

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from package_generator import write_package  # noqa: E402

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

    def payments(self, offset: int, count: int) -> list[tuple[bytes, bytes]]:
        """``count`` real-time debits, each the payee bank's pacs.003 and the payer bank's
        pacs.002 for it, signed."""
        prepared = []
        for number in range(offset, offset + count):
            debit, message_id, transaction = self.debit(number)
            prepared.append((debit, self.receipt(number, message_id, transaction)))
        return prepared

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
    work = iter(banks.payments(offset, payments))
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


WRITER_FIGURES = (
    "isogw_writer_transactions_total",
    "isogw_writer_commands_total",
    "isogw_writer_lock_held_seconds_total",
    "isogw_writer_lock_wait_seconds_total",
)


async def writer_figures(banks: Banks, url: str) -> dict[str, float]:
    """The clearing writers' figures summed over the gateway processes (``/metrics``; a
    process's figures are as it last published them, every ``http.metrics_publish_seconds``)."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(url + "/metrics", ssl=banks.contexts[CCB]) as response,
    ):
        text = await response.text()
    totals = dict.fromkeys(WRITER_FIGURES, 0.0)
    for line in text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in totals:
            totals[name] += float(line.rsplit(" ", 1)[1])
    return totals


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


async def run_beside_batch(
    banks: Banks, url: str, folder: Path, transactions: int, offset: int
) -> tuple[float, list[float]]:
    """Real-time debits one after another (a light load) while one batch package of
    ``transactions`` credits (ICBC to BOC, signed before the clock starts) is submitted: the
    batch's time to its answer, and the debits' times while it was under way."""
    path = write_package(folder / "batch.xml", transactions)
    batch = banks.signers[ICBC].sign(path.read_bytes())
    prepared = banks.payments(offset, 2_000)
    connector = aiohttp.TCPConnector(limit=8)
    async with aiohttp.ClientSession(connector=connector) as session:
        under_way = asyncio.Event()
        finished = asyncio.Event()
        latencies: list[float] = []

        async def payments() -> None:
            for debit, receipt in prepared:
                if finished.is_set():
                    return
                started = time.perf_counter()
                await post(session, url + "/v1/messages", debit, banks.contexts[ICBC])
                await post(session, url + "/v1/messages", receipt, banks.contexts[CCB])
                if under_way.is_set():
                    latencies.append(time.perf_counter() - started)
                await asyncio.sleep(0.005)

        async def submit_batch() -> float:
            await asyncio.sleep(0.5)
            under_way.set()
            started = time.perf_counter()
            status = await post(session, url + "/v1/messages", batch, banks.contexts[ICBC])
            elapsed = time.perf_counter() - started
            finished.set()
            if status != 200:
                raise SystemExit(f"the batch package was answered {status}")
            return elapsed

        _, elapsed = await asyncio.gather(payments(), submit_batch())
    return elapsed, latencies


@dataclass(frozen=True)
class Floor:
    """CPU seconds of the library calls that a message cannot do without, measured in this
    process one message after another."""

    inbound: float
    """A signed submission: parse, exclusive C14N of the message and SHA-256, C14N of the
    SignedInfo and ECDSA verification, XSD validation, its row in a group commit."""
    outbound: float
    """A signed message the gateway sends (an answer, a forward, a receipt): parse of its
    text, exclusive C14N and SHA-256, ECDSA signing, its text, its row."""


def library_floor(banks: Banks, state: Path, count: int = 2000, group: int = 4) -> Floor:
    """What the issue's targets leave for the gateway's own Python: the cost of only the lxml,
    OpenSSL and SQLite calls each message needs (``group`` rows a commit, as the gateway's
    writer takes about that many under load), without anything in between."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=False)
    schema = banks.gateway.schemas.catalogue
    sender = banks.keys.participant(BOCOM).certificate().public_key()
    assert isinstance(sender, ec.EllipticCurvePublicKey)
    centre = serialization.load_pem_private_key(
        banks.keys.gateway.key_path.read_bytes(), password=None
    )
    assert isinstance(centre, ec.EllipticCurvePrivateKey)
    bodies = [banks.credit(20_000_000 + number) for number in range(count)]
    answer = banks.receipt(0, "B1", "1")  # a signed message of an answer's size and shape
    database = sqlite3.connect(state / "floor.sqlite3", isolation_level=None)
    database.execute("PRAGMA journal_mode=WAL")
    database.execute("PRAGMA synchronous=FULL")
    database.execute("CREATE TABLE message (id INTEGER PRIMARY KEY, body TEXT, answer TEXT)")
    signature_tag = "{http://www.w3.org/2000/09/xmldsig#}Signature"

    def inbound(body: bytes, number: int) -> None:
        root = etree.fromstring(body, parser)
        signature = next(root.iter(signature_tag))
        holder = signature.getparent()
        assert holder is not None
        holder.remove(signature)  # the enveloped-signature transform
        hashlib.sha256(etree.tostring(root, method="c14n", exclusive=True)).digest()
        holder.append(signature)
        info, value = signature[0], base64.b64decode(signature.findtext("{*}SignatureValue") or "")
        sender.verify(
            encode_dss_signature(int.from_bytes(value[:32]), int.from_bytes(value[32:])),
            etree.tostring(info, method="c14n", exclusive=True),
            ec.ECDSA(hashes.SHA256()),
        )
        schema.assertValid(root)
        row(number, body)

    def outbound(number: int) -> None:
        root = etree.fromstring(answer, parser)
        digest = hashlib.sha256(etree.tostring(root, method="c14n", exclusive=True)).digest()
        centre.sign(digest, ec.ECDSA(hashes.SHA256()))
        row(number, etree.tostring(root))

    def row(number: int, text: bytes) -> None:
        if number % group == 0:
            database.execute("BEGIN IMMEDIATE")
        database.execute("INSERT INTO message (body) VALUES (?)", (text.decode(),))
        if number % group == group - 1:
            database.execute("COMMIT")

    def cpu_per_message(step: Callable[[int], None]) -> float:
        started = time.process_time()
        for number in range(count):
            step(number)
        return (time.process_time() - started) / count

    try:
        return Floor(
            cpu_per_message(lambda number: inbound(bodies[number], number)),
            cpu_per_message(outbound),
        )
    finally:
        database.close()


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
    request: Callable[[], Awaitable[object]],
    what: str,
    still_starting: Callable[[], None] = lambda: None,
    timeout: float = 60,
) -> None:
    """Until ``request`` succeeds: a server that is starting refuses connections or, like the
    gateway's /readyz, answers an error status. ``still_starting`` raises if the server has
    stopped meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            asyncio.run(request())
            return
        except (aiohttp.ClientError, OSError):
            still_starting()
            if time.monotonic() > deadline:
                raise SystemExit(f"{what} did not become ready in {timeout:.0f} s") from None
            time.sleep(0.2)


def check_running(server: subprocess.Popen[bytes], log: Path, lines: int = 20) -> None:
    """Stops the benchmark, with the end of the gateway's log, if the gateway has exited (a
    port still held by an earlier run, say), rather than waiting for it forever."""
    code = server.poll()
    if code is not None:
        tail = log.read_text(errors="replace").splitlines()[-lines:]
        raise SystemExit(
            f"the gateway exited with status {code} while starting; the end of {log.name}:\n"
            + "\n".join(tail)
        )


def wait_started(url: str, state: Path, still_starting: Callable[[], None]) -> KeyStore:
    """Until the gateway started on the empty ``state`` folder has made its keys (its first
    start does) and is ready; its keys. ``still_starting`` raises if it has stopped."""
    deadline = time.monotonic() + 60
    while not (state / "keys" / "ca.pem").is_file():
        still_starting()
        if time.monotonic() > deadline:
            raise SystemExit("the gateway made no keys in 60 s")
        time.sleep(0.2)
    keys = KeyStore(state)
    wait_ready(url, keys, still_starting)
    return keys


def wait_ready(url: str, keys: KeyStore, still_starting: Callable[[], None]) -> None:
    async def probe() -> None:
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                url + "/readyz", ssl=client_context(keys, keys.participant(ICBC))
            ) as response,
        ):
            response.raise_for_status()

    wait_until_answered(probe, "the gateway", still_starting)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--payments", type=int, default=2000)
    parser.add_argument("--inbound", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--batch",
        type=int,
        default=15_000,
        help="credits in the batch package submitted beside real-time debits (0: none)",
    )
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
        log = base / "gateway.log"
        with log.open("wb") as log_file:
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
                stderr=log_file,
            )
        try:
            url = f"https://127.0.0.1:{arguments.port}"
            keys = wait_started(url, state, lambda: check_running(server, log))
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
            cores = os.cpu_count() or 1
            request = cores / baseline  # the machine's seconds for one echoed request
            floor = library_floor(banks, base)
            payment_floor = 2 * (request + floor.inbound) + 5 * floor.outbound
            print(
                "library floor (this process, one message after another): a signed inbound "
                "message's parse, exclusive C14N and SHA-256, ECDSA verification, XSD validation "
                f"and group-committed row take {floor.inbound * 1000:.3f} ms of CPU, a signed "
                f"outbound message {floor.outbound * 1000:.3f} ms. With the echo server's HTTP "
                f"and TLS ({request * 1000:.3f} ms of the {cores} cores a request), these alone "
                f"allow at most {cores / (request + floor.inbound):,.0f} inbound messages/s and "
                f"{cores / payment_floor:,.0f} payments/s; at the targets (3,000 and 1,000/s) "
                "the gateway's own code would have "
                f"{(cores / 3000 - request - floor.inbound) * 1000:.3f} ms a message and "
                f"{(cores / 1000 - payment_floor) * 1000:.3f} ms a payment"
            )
            publish = banks.gateway.settings.http.metrics_publish_seconds
            before = asyncio.run(writer_figures(banks, url))
            started = time.perf_counter()
            rate, latencies, failures = asyncio.run(
                run_payments(banks, url, arguments.payments, arguments.concurrency, 1)
            )
            time.sleep(publish + 0.5)  # every process has published its figures since
            after = asyncio.run(writer_figures(banks, url))
            run_seconds = time.perf_counter() - started
            quantiles = statistics.quantiles(latencies, n=100)
            print(
                f"real-time debits end to end: {rate:,.0f} completed payments/s "
                f"(2 signed submissions + 2 signed receipts each; {failures} failed), "
                f"p50 {quantiles[49] * 1000:.1f} ms, p99 {quantiles[98] * 1000:.1f} ms; "
                f"ratio {rate * 2 / baseline:.2f} of the echo server's requests/s"
            )
            spent = {name: after[name] - before[name] for name in WRITER_FIGURES}
            transactions = spent["isogw_writer_transactions_total"] or 1
            print(
                "the clearing writers meanwhile (all processes; the run and the wait for their "
                f"figures, {run_seconds:.1f} s): {transactions:,.0f} transactions of "
                f"{spent['isogw_writer_commands_total'] / transactions:.1f} commands on "
                "average; the lock the processes share held "
                f"{spent['isogw_writer_lock_held_seconds_total'] / run_seconds:.0%} of the "
                f"time ({spent['isogw_writer_lock_held_seconds_total'] / transactions * 1000:.2f}"
                " ms a transaction), waited for "
                f"{spent['isogw_writer_lock_wait_seconds_total'] / transactions * 1000:.2f} ms a "
                "transaction"
            )
            inbound, failed = asyncio.run(
                run_inbound(banks, url, arguments.inbound, arguments.concurrency, 10_000_000)
            )
            print(
                "signed inbound messages accepted (C100: verified, validated, committed, "
                f"answered): {inbound:,.0f}/s ({failed} failed); "
                f"ratio {inbound / baseline:.2f} of the echo server"
            )
            if arguments.batch:
                elapsed, waits = asyncio.run(
                    run_beside_batch(banks, url, base, arguments.batch, 20_000_000)
                )
                print(
                    f"a batch package of {arguments.batch:,} credits beside real-time debits "
                    f"(one at a time): answered in {elapsed:.2f} s; the {len(waits)} debits "
                    f"under way meanwhile took at most {max(waits, default=0) * 1000:.0f} ms "
                    f"(p50 {statistics.median(waits or [0]) * 1000:.0f} ms)"
                )
            print(
                "beyond the library floor and the echo server's HTTP, the gateway spent "
                f"{(cores / rate - payment_floor) * 1000:.2f} ms of the machine a payment and "
                f"{(cores / inbound - request - floor.inbound) * 1000:.2f} ms an inbound message "
                "(its own code, and any time the cores were idle)"
            )
        finally:
            server.terminate()
            server.wait(timeout=60)


if __name__ == "__main__":
    main()
