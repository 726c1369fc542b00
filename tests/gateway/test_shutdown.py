"""Ctrl-C on a running gateway: a submission in flight is committed and answered before the
process ends, and an outbox long poll is answered at once instead of holding the shutdown
for its whole wait."""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from gateway.composition import open_runtime
from gateway.security.keys import KeyStore
from gateway.security.signatures import SignatureVerifier, XmlDsigSigner
from gateway.service.clock import SystemClock
from gateway.store import messages
from gateway.store.database import DATABASE_FILE
from gateway.transport.tls import client_context
from tests.conftest import SAMPLES, config_copy
from tests.gateway.conftest import (
    BOCOM,
    C100_ID,
    CCB,
    CENTRE,
    ICBC,
    serve_process,
    wait_until,
    wait_until_serving,
)


def someone_waits_for_lock(path: Path) -> bool:
    """Whether a process is blocked on a ``flock`` of ``path`` (a ``->`` line in
    /proc/locks naming the file's device and inode)."""
    status = os.stat(path)
    file_id = f"{os.major(status.st_dev):02x}:{os.minor(status.st_dev):02x}:{status.st_ino}"
    return any(
        "->" in fields and file_id in fields
        for fields in (line.split() for line in Path("/proc/locks").read_text().splitlines())
    )


def test_ctrl_c_finishes_the_submission_in_flight_and_answers_waiting_polls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = 20000 + (os.getpid() + 7) % 10000
    settings = config_copy(tmp_path, port)
    text = settings.read_text()
    # One process; and a long poll allowed to wait longer than the shutdown lets requests
    # run, so only the shutdown's wake-up can answer it in time.
    text = text.replace("workers = 2", "workers = 1")
    text = text.replace("outbox_max_wait_seconds = 30.0", "outbox_max_wait_seconds = 300.0")
    settings.write_text(text)
    state = tmp_path / "state"
    monkeypatch.setenv("GATEWAY_STATE_DIR", str(state))
    with serve_process(settings, tmp_path) as server:
        statuses = asyncio.run(
            _scenario(f"https://127.0.0.1:{port}", state, server.process, server.said)
        )
        assert server.process.wait(timeout=60) == 0
    output = server.log.read_text()
    assert "Traceback" not in output and " ERROR " not in output, output
    assert "event=stopping submissions_in_flight=1 outbox_polls_open=1" in output, output
    assert statuses == {"poll": 200, "submission": 200, "metrics": 200}
    # What was answered was committed: the forward waits in CCB's outbox after the restart.
    assert asyncio.run(_forwarded_after_restart(settings)) == [("pacs.008.001.08", C100_ID)]


async def _scenario(
    url: str, state: Path, server: subprocess.Popen[bytes], said: Path
) -> dict[str, int]:
    keys = KeyStore(state)
    await wait_until_serving(url, keys, said)
    pair = keys.participant(BOCOM)
    credit = XmlDsigSigner(pair.key_path.read_bytes(), pair.certificate_path.read_bytes()).sign(
        (SAMPLES / "pacs.008.001.08" / "valid-C100-realtime-credit.xml").read_bytes()
    )
    statuses: dict[str, int] = {}
    # The test takes the clearing writer's turn (the lock the gateway processes share), so
    # the submission stays in flight, waiting to commit, until the test lets go.
    lock_path = state / f"{DATABASE_FILE}.writer-lock"
    lock = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        async with aiohttp.ClientSession() as session:

            async def poll() -> dict[str, object]:
                async with session.get(
                    url + "/v1/outbox?wait=300", ssl=client_context(keys, keys.participant(ICBC))
                ) as answer:
                    statuses["poll"] = answer.status
                    return await answer.json()  # type: ignore[no-any-return]

            async def submit() -> bytes:
                async with session.post(
                    url + "/v1/messages",
                    data=credit,
                    headers={"Content-Type": "application/xml"},
                    ssl=client_context(keys, keys.participant(BOCOM)),
                ) as answer:
                    statuses["submission"] = answer.status
                    return await answer.read()

            polling = asyncio.create_task(poll())
            submission = asyncio.create_task(submit())

            async def submission_waits() -> bool:
                return someone_waits_for_lock(lock_path)

            await wait_until(submission_waits, "the submission to wait for its commit")
            async with session.get(
                url + "/metrics", ssl=client_context(keys, keys.participant(CCB))
            ) as answer:
                statuses["metrics"] = answer.status
                text = await answer.text()
            # The writer is held, so the positions are as of the last write, and said so.
            assert f'isogw_process_info{{process="0",pid="{server.pid}"}} 1\n' in text
            assert 'isogw_submissions_in_flight{process="0"} 1\n' in text
            assert 'isogw_clearing_caught_up{process="0"} 0\n' in text
            server.send_signal(signal.SIGINT)
            # Answered now, empty, while the submission still waits (a bank polls again
            # after the restart, from the same cursor).
            assert await polling == {"messages": [], "next": 0}
            assert not submission.done()
            fcntl.flock(lock, fcntl.LOCK_UN)
            answer_body = await submission
    finally:
        os.close(lock)
    answer = SignatureVerifier({CENTRE: keys.gateway.certificate()}).verify(
        answer_body, CENTRE, datetime.now(UTC)
    )
    assert answer.findtext(".//{*}RctAck/{*}Rpt/{*}RltdRef/{*}Ref") == C100_ID
    return statuses


async def _forwarded_after_restart(settings: Path) -> list[tuple[str, str]]:
    runtime = await open_runtime(settings, SystemClock(), run_ticker=False)
    try:
        async with runtime.clearing.engine.connect() as connection:
            kept = await messages.read_outbox(connection, CCB, 0, 10)
        return [(message.message_type, message.message_id) for message in kept]
    finally:
        await runtime.clearing.close()
