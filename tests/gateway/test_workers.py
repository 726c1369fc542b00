"""Two gateway processes on one port and one database: a payment submitted to one is answered
by the bank through either, and receipts reach both banks' outboxes; Ctrl-C stops both
cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from gateway.security.keys import KeyStore
from gateway.security.signatures import XmlDsigSigner
from gateway.transport.tls import client_context
from tests.conftest import PROJECT, SAMPLES, config_copy

BOCOM, CCB = "301290000007", "105100000017"


async def exchange(url: str, keys: KeyStore) -> tuple[list[int], list[str], list[str]]:
    def signed(code: str, path: Path) -> bytes:
        pair = keys.participant(code)
        return XmlDsigSigner(pair.key_path.read_bytes(), pair.certificate_path.read_bytes()).sign(
            path.read_bytes()
        )

    async def post(session: aiohttp.ClientSession, code: str, body: bytes) -> int:
        async with session.post(
            url + "/v1/messages",
            data=body,
            headers={"Content-Type": "application/xml"},
            ssl=client_context(keys, keys.participant(code)),
        ) as response:
            return response.status

    async def outbox(session: aiohttp.ClientSession, code: str) -> list[str]:
        async with session.get(
            url + "/v1/outbox?wait=5", ssl=client_context(keys, keys.participant(code))
        ) as response:
            return [message["message_type"] for message in (await response.json())["messages"]]

    credit = SAMPLES / "pacs.008.001.08" / "valid-C100-realtime-credit.xml"
    receipt = SAMPLES / "pacs.002.001.10" / "valid-realtime-credit-receipt-for-the-c100-sample.xml"
    statuses = []
    # Several connections, so both processes take part.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
        statuses.append(await post(session, BOCOM, signed(BOCOM, credit)))
        statuses.append(await post(session, CCB, signed(CCB, receipt)))
        statuses.append(await post(session, BOCOM, signed(BOCOM, credit)))  # a repeat
        return statuses, await outbox(session, BOCOM), await outbox(session, CCB)


def test_two_processes_share_one_ledger(tmp_path: Path) -> None:
    port = 20000 + os.getpid() % 10000
    settings = config_copy(tmp_path, port)
    environment = {**os.environ, "GATEWAY_STATE_DIR": str(tmp_path / "state")}
    log = (tmp_path / "serve.log").open("w+")
    server = subprocess.Popen(
        [sys.executable, "-m", "gateway", "--config", str(settings), "serve", "--workers", "2"],
        env=environment,
        cwd=PROJECT,
        stdout=subprocess.DEVNULL,
        stderr=log,
        start_new_session=True,  # its own process group, as in a terminal
    )
    try:
        keys = KeyStore(tmp_path / "state")
        deadline = time.monotonic() + 60
        url = f"https://127.0.0.1:{port}"
        while True:
            try:
                result = asyncio.run(exchange(url, keys))
                break
            except (aiohttp.ClientError, OSError, FileNotFoundError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        statuses, bocom, ccb = result
        assert statuses == [200, 200, 200]
        assert bocom == ["pacs.002.001.10"]
        assert ccb == ["pacs.008.001.08", "pacs.002.001.10"]
        # Ctrl-C reaches both processes, and the first one also tells the other to stop: the
        # second signal must not cut the other's graceful shutdown short (it closed its
        # database connections while being cancelled, and logged the error).
        os.killpg(server.pid, signal.SIGINT)
        assert server.wait(timeout=60) == 0
        log.seek(0)
        output = log.read()
        assert "Traceback" not in output and " ERROR " not in output, output
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, 0)
            raise AssertionError("a gateway process outlived the first")
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=60)
        log.close()
