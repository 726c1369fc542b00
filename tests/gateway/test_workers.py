"""Two gateway processes on one port and one database: a payment submitted to one is answered
by the bank through either, and receipts reach both banks' outboxes; Ctrl-C stops both
cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from gateway.security.keys import KeyStore
from gateway.security.signatures import XmlDsigSigner
from gateway.transport.tls import client_context
from tests.conftest import PROJECT, SAMPLES, config_copy
from tests.gateway.conftest import C100_ID, C100_TX, serve_bank_endpoint, wait_until

BOCOM, CCB = "301290000007", "105100000017"


def serve_two_processes(settings: Path, state: Path, stderr: Any) -> subprocess.Popen[bytes]:
    """``isogw serve --workers 2`` with ``settings`` and the state folder ``state``, in a
    process group of its own (as in a terminal)."""
    return subprocess.Popen(
        [sys.executable, "-m", "gateway", "--config", str(settings), "serve", "--workers", "2"],
        env={**os.environ, "GATEWAY_STATE_DIR": str(state)},
        cwd=PROJECT,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        start_new_session=True,
    )


@contextlib.contextmanager
def two_processes(
    tmp_path: Path, port: int, replacements: dict[str, str]
) -> Iterator[tuple[str, KeyStore]]:
    """``isogw serve --workers 2`` on ``port`` with the sample settings edited by
    ``replacements`` (text → text); its URL and keys, killed at the end."""
    settings = config_copy(tmp_path, port)
    text = settings.read_text()
    for old, new in replacements.items():
        text = text.replace(old, new)
    settings.write_text(text)
    server = serve_two_processes(settings, tmp_path / "state", subprocess.DEVNULL)
    try:
        yield f"https://127.0.0.1:{port}", KeyStore(tmp_path / "state")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=60)


async def exchange(
    url: str, keys: KeyStore
) -> tuple[list[int], list[str], list[str], dict[str, str]]:
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
        return (
            statuses,
            await outbox(session, BOCOM),
            await outbox(session, CCB),
            await positions_by_process(session, url, keys),
        )


async def positions_by_process(
    session: aiohttp.ClientSession, url: str, keys: KeyStore
) -> dict[str, str]:
    """Bank of Communications' net position as each of the two processes reports it."""
    reported: dict[str, str] = {}
    for _ in range(1_000):
        async with session.get(
            url + "/metrics", ssl=client_context(keys, keys.participant(CCB))
        ) as response:
            text = await response.text()
        # Every process's figures are reported; the positions are those of the one answering.
        process = re.search(r'isogw_clearing_caught_up\{process="(\d+)"\}', text)
        position = re.search(rf'isogw_net_position_minor\{{participant="{BOCOM}"\}} (-?\d+)', text)
        assert process is not None and position is not None, text
        reported[process.group(1)] = position.group(1)
        if len(reported) == 2:
            break
    return reported


def test_two_processes_share_one_ledger(tmp_path: Path) -> None:
    port = 20000 + os.getpid() % 10000
    settings = config_copy(tmp_path, port)
    log = (tmp_path / "serve.log").open("w+")
    server = serve_two_processes(settings, tmp_path / "state", log)
    try:
        keys = KeyStore(tmp_path / "state")
        url = f"https://127.0.0.1:{port}"

        async def once_both_answer() -> tuple[list[int], list[str], list[str], dict[str, str]]:
            await both_processes_answer(url, keys)
            answers = await exchange(url, keys)
            await refused_by_both(port, keys, tmp_path / "serve.log")
            return answers

        statuses, bocom, ccb, positions = asyncio.run(once_both_answer())
        assert statuses == [200, 200, 200]
        # The netted credit (2,000.00) in BOCOM's position, whichever process is asked.
        assert list(positions.values()) == ["-200000", "-200000"], positions
        assert bocom == ["pacs.002.001.10"]
        assert ccb == ["pacs.008.001.08", "pacs.002.001.10"]
        # Ctrl-C reaches both processes, and the first one also tells the other to stop: the
        # second signal must not cut the other's graceful shutdown short (it closed its
        # database connections while being cancelled, and logged the error).
        os.killpg(server.pid, signal.SIGINT)
        assert server.wait(timeout=60) == 0
        log.seek(0)
        output = log.read()
        # One source's failures, whichever process refused each, are counted in one run: the
        # third raises the only alarm (and the only ERROR line).
        failures = re.findall(
            r"authentication-failure source=127\.0\.0\.1 count=(\d+) process=(\d+)", output
        )
        assert [int(count) for count, _ in failures] == list(range(1, len(failures) + 1)), output
        assert len({process for _, process in failures}) == 2, output
        # Each line says which process wrote it: each process's shutdown line has its own id,
        # the one its failures named.
        stopping = re.findall(r"INFO isogw\.http \[(\d+)\] event=stopping ", output)
        assert sorted(stopping) == sorted({process for _, process in failures}), output
        assert all(
            re.match(r"\d{4}-\d\d-\d\d [\d:,]+ [A-Z]+ [\w.]+ \[\d+\] ", line)
            for line in output.splitlines()
            if " event=" in line
        ), output
        # Each process restores the ledger once (the first one used to restore it twice: once
        # to create the tables before starting the other, then again to serve).
        restored = re.findall(r"\[(\d+)\] event=ledger-restored ", output)
        assert sorted(restored) == sorted(stopping), output
        errors = [line for line in output.splitlines() if " ERROR " in line]
        assert (
            len(errors) == 1
            and "event=authentication-alarm source=127.0.0.1 consecutive_failures=3" in errors[0]
        ), output
        assert "Traceback" not in output, output
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, 0)
            raise AssertionError("a gateway process outlived the first")
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=60)
        log.close()


class RecordingBank:
    """A bank's push endpoint that takes its time answering (so two pushers would overlap)."""

    def __init__(self) -> None:
        self.sequences: list[int] = []
        self.message_ids: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.sequences.append(int(request.headers["X-Isogw-Sequence"]))
        body = await request.read()
        self.message_ids.append(body.split(b"<BizMsgIdr>")[1].split(b"</BizMsgIdr>")[0].decode())
        await asyncio.sleep(0.05)
        return web.Response(status=200)


async def both_processes_answer(url: str, keys: KeyStore) -> None:
    """Until two processes have answered /healthz (each says which it is), the second may
    still be starting, and everything would go to the first."""
    seen: set[int] = set()

    async def two_seen() -> bool:
        seen.update(await processes_answering(url, keys, attempts=1))
        return len(seen) == 2

    await wait_until(two_seen, "both gateway processes to answer")


async def refused_by_both(port: int, keys: KeyStore, log: Path) -> None:
    """Connections without a client certificate, one at a time, until both processes have
    refused one (the kernel picks the process for each connection)."""
    plain = ssl.create_default_context(cafile=str(keys.ca_path))
    for attempt in range(1, 41):
        with contextlib.suppress(OSError):
            reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=plain)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
            with contextlib.suppress(OSError):
                await reader.read()
            writer.close()

        async def counted(attempt: int = attempt) -> bool:
            return f"source=127.0.0.1 count={attempt} " in log.read_text()

        try:
            await wait_until(counted, f"failure {attempt} to be counted", seconds=30)
        except AssertionError as waited:
            raise AssertionError(f"{waited}; the gateway log:\n{log.read_text()}") from None
        processes = re.findall(
            r"authentication-failure source=127\.0\.0\.1 count=\d+ process=(\d+)", log.read_text()
        )
        if len(set(processes)) == 2 and attempt >= 3:
            return
    raise AssertionError("40 connections all reached the same gateway process")


def signed_credit(keys: KeyStore, number: int) -> bytes:
    """Bank of Communications' real-time credit number ``number``, signed."""
    pair = keys.participant(BOCOM)
    signer = XmlDsigSigner(pair.key_path.read_bytes(), pair.certificate_path.read_bytes())
    sample = (SAMPLES / "pacs.008.001.08" / "valid-C100-realtime-credit.xml").read_text()
    text = sample.replace(C100_ID, f"B301290000007{number:012d}")
    return signer.sign(text.replace(C100_TX, f"{number:028d}").encode())


async def push_scenario(
    url: str, keys: KeyStore, bank: RecordingBank, credits: int
) -> list[tuple[int, bytes]]:
    """Each credit's status and the gateway's message id in its answer."""
    await both_processes_answer(url, keys)
    statuses = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
        for number in range(1, credits + 1):
            async with session.post(
                url + "/v1/messages",
                data=signed_credit(keys, number),
                headers={"Content-Type": "application/xml"},
                ssl=client_context(keys, keys.participant(BOCOM)),
            ) as response:
                answer = await response.read()
                identifier = answer.split(b"<BizMsgIdr>")[1].split(b"</BizMsgIdr>")[0]
                statuses.append((response.status, identifier))

    async def all_pushed() -> bool:
        return len(set(bank.message_ids)) >= credits

    await wait_until(all_pushed, "every forward to be pushed", seconds=30)
    return statuses


def test_two_processes_push_each_message_once_in_order(tmp_path: Path) -> None:
    """With two processes, one pushes: CCB gets every forward once, in outbox order, whichever
    process took the payment."""
    port = 20000 + (os.getpid() + 3) % 10000
    settings = config_copy(tmp_path, port)
    settings.write_text(settings.read_text().replace("idle_seconds = 1.0", "idle_seconds = 0.1"))
    bank = RecordingBank()
    credits = 6

    async def run() -> list[tuple[int, bytes]]:
        runner, bank_url = await serve_bank_endpoint(bank.handle)
        participants = settings.parent / "participants.toml"
        participants.write_text(
            participants.read_text().replace(
                f'code = "{CCB}"\n',
                f'code = "{CCB}"\npush_url = "{bank_url}"\n',
            )
        )
        server = serve_two_processes(settings, tmp_path / "state", subprocess.DEVNULL)
        try:
            keys = KeyStore(tmp_path / "state")
            return await push_scenario(f"https://127.0.0.1:{port}", keys, bank, credits)
        finally:
            os.killpg(server.pid, signal.SIGINT)
            server.wait(timeout=60)
            await runner.cleanup()

    answers = asyncio.run(run())
    assert [status for status, _ in answers] == [200] * credits
    # Both processes answered, each numbering its messages from 1: the ids still differ.
    assert len({identifier for _, identifier in answers}) == credits
    forwards = [f"B301290000007{number:012d}" for number in range(1, credits + 1)]
    assert [message for message in bank.message_ids if message in forwards] == forwards
    # Each message once, in the order of the outbox (later expiry receipts may follow).
    assert bank.sequences == sorted(set(bank.sequences))


async def processes_answering(url: str, keys: KeyStore, attempts: int = 40) -> set[int]:
    """The gateway processes that answer /healthz on fresh connections (each says which)."""
    seen: set[int] = set()
    for _ in range(attempts):
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session,
            session.get(
                url + "/healthz", ssl=client_context(keys, keys.participant(CCB))
            ) as response,
        ):
            seen.add((await response.json())["process"])
    return seen


def test_a_killed_process_is_replaced_and_the_others_stop_with_the_first(tmp_path: Path) -> None:
    """kill -9 of the second process: the first starts another in its place (and says so);
    kill -9 of the first: the other notices and stops gracefully, freeing the port."""
    port = 20000 + (os.getpid() + 7) % 10000
    settings = config_copy(tmp_path, port)
    log = (tmp_path / "serve.log").open("w+")
    server = serve_two_processes(settings, tmp_path / "state", log)
    url = f"https://127.0.0.1:{port}"
    keys = KeyStore(tmp_path / "state")

    async def scenario() -> tuple[int, int]:
        await both_processes_answer(url, keys)
        [second] = await processes_answering(url, keys) - {server.pid}
        os.kill(second, signal.SIGKILL)
        replacements: set[int] = set()

        async def replaced() -> bool:
            replacements.update(await processes_answering(url, keys, 10) - {server.pid, second})
            return bool(replacements)

        await wait_until(replaced, "a new second process to answer", seconds=60)
        [third] = replacements

        async def restart_reported() -> bool:
            """Whichever process answers: the first one's count of restarts (published), and
            slot 1 now the new process."""
            async with (
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session,
                session.get(
                    url + "/metrics", ssl=client_context(keys, keys.participant(CCB))
                ) as response,
            ):
                text = await response.text()
            if f'isogw_process_info{{process="1",pid="{third}"}} 1\n' not in text:
                return False  # the new process has not published yet
            assert f'isogw_process_info{{process="0",pid="{server.pid}"}} 1\n' in text, text
            assert f'pid="{second}"' not in text, text
            assert 'isogw_worker_processes{process="0"} 1\n' in text, text
            assert 'isogw_worker_restarts_total{process="0"} 1\n' in text, text
            assert 'isogw_worker_abandoned_total{process="0"} 0\n' in text, text
            return True

        await wait_until(restart_reported, "/metrics to report the restart")
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=30)

        async def port_closed() -> bool:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except ConnectionRefusedError:
                return True
            writer.close()
            return False

        await wait_until(port_closed, "the remaining process to stop", seconds=60)
        return second, third

    try:
        second, third = asyncio.run(scenario())
        log.seek(0)
        output = log.read()
        # The first process (the one started) says so.
        assert (
            f"ERROR isogw.serve [{server.pid}] event=worker-exited slot=1 process={second} "
            "signal=SIGKILL"
        ) in output, output
        assert f"event=worker-restarted slot=1 process={third} replacing={second}" in output
        assert f"event=parent-gone process={third} " in output, output
        assert "Traceback" not in output, output
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=60)
        log.close()


async def sessions_on_both_processes(
    url: str, context: ssl.SSLContext, each: int = 1
) -> list[aiohttp.ClientSession]:
    """``each`` sessions to each of the two gateway processes, each session keeping one
    connection open (for requests with this ``context``), in turn: one to a process, then one
    to the other (each connection's process told by /healthz; new ones are tried until both
    have ``each``)."""
    sessions: dict[int, list[aiohttp.ClientSession]] = {}
    for _ in range(40 * each):
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1))
        async with session.get(url + "/healthz", ssl=context) as response:
            process = (await response.json())["process"]
        if len(sessions.setdefault(process, [])) == each:
            await session.close()
            continue
        sessions[process].append(session)
        if len(sessions) == 2 and all(len(found) == each for found in sessions.values()):
            first, second = sessions.values()
            return [session for pair in zip(first, second, strict=True) for session in pair]
    for found in sessions.values():
        for session in found:
            await session.close()
    raise AssertionError(
        f"{40 * each} connections did not reach both gateway processes {each} times each"
    )


def test_a_participants_rate_limit_holds_across_both_processes(tmp_path: Path) -> None:
    """A burst of 6 and no refill to speak of: 12 outbox requests from one bank, alternating
    over a connection to each process, get 6 answers and 6 refusals in all (a bucket per
    process would have answered all 12)."""
    port = 20000 + (os.getpid() + 5) % 10000
    limited = {"requests_per_second = 200.0": "requests_per_second = 0.001"}
    limited["burst = 400"] = "burst = 6"

    async def scenario(url: str, keys: KeyStore) -> tuple[list[int], list[int]]:
        await both_processes_answer(url, keys)
        context = client_context(keys, keys.participant(CCB))
        sessions = await sessions_on_both_processes(url, context)
        statuses = []
        try:
            for number in range(12):
                async with sessions[number % 2].get(url + "/v1/outbox", ssl=context) as response:
                    statuses.append(response.status)
            processes = []
            for session in sessions:  # still the same two connections
                async with session.get(url + "/healthz", ssl=context) as response:
                    processes.append((await response.json())["process"])
        finally:
            for session in sessions:
                await session.close()
        return statuses, processes

    with two_processes(tmp_path, port, limited) as (url, keys):
        statuses, processes = asyncio.run(scenario(url, keys))
    assert sorted(statuses) == [200] * 6 + [429] * 6, statuses
    assert len(set(processes)) == 2


def test_every_process_is_reported_whichever_answers_the_scrape(tmp_path: Path) -> None:
    """One credit through one process and two through the other: a scrape of either process
    reports both, each under its slot, with what that process counted (before, each scrape
    reported only the process it reached, so the counts jumped between scrapes)."""
    port = 20000 + (os.getpid() + 6) % 10000
    often = {"metrics_publish_seconds = 1.0": "metrics_publish_seconds = 0.1"}

    async def scenario(url: str, keys: KeyStore) -> tuple[list[int], list[str]]:
        await both_processes_answer(url, keys)
        context = client_context(keys, keys.participant(BOCOM))
        sessions = await sessions_on_both_processes(url, context)
        try:
            slots = []
            for session, credits in zip(sessions, ([1], [2, 3]), strict=True):
                for number in credits:
                    async with session.post(
                        url + "/v1/messages",
                        data=signed_credit(keys, number),
                        headers={"Content-Type": "application/xml"},
                        ssl=context,
                    ) as response:
                        assert response.status == 200, await response.text()
                async with session.get(url + "/healthz", ssl=context) as response:
                    slots.append((await response.json())["slot"])
            assert sorted(slots) == [0, 1]
            expected = [
                f'isogw_messages_total{{process="{slot}",message="pacs.008.001.08",'
                f'outcome="accepted"}} {count}\n'
                for slot, count in zip(slots, (1, 2), strict=True)
            ]
            scrapes: list[str] = []

            async def both_report_both() -> bool:
                scrapes.clear()
                for session in sessions:
                    async with session.get(url + "/metrics", ssl=context) as response:
                        scrapes.append(await response.text())
                return all(line in scrape for scrape in scrapes for line in expected)

            await wait_until(both_report_both, "both processes to report both processes")
            return slots, scrapes
        finally:
            for session in sessions:
                await session.close()

    with two_processes(tmp_path, port, often) as (url, keys):
        slots, scrapes = asyncio.run(scenario(url, keys))
    for answering, scrape in zip(slots, scrapes, strict=True):
        # The positions are the answering process's (caught up); the figures are all.
        assert f'isogw_clearing_caught_up{{process="{answering}"}} 1\n' in scrape
        assert scrape.count("# TYPE isogw_messages_total counter\n") == 1
        for slot in ("0", "1"):
            assert f'isogw_process_info{{process="{slot}",pid="' in scrape
            assert f'isogw_process_figures_age_seconds{{process="{slot}"}} ' in scrape


def signed_text(keys: KeyStore, code: str, text: str) -> bytes:
    pair = keys.participant(code)
    signer = XmlDsigSigner(pair.key_path.read_bytes(), pair.certificate_path.read_bytes())
    return signer.sign(text.encode())


def test_one_message_id_raced_through_both_processes_is_applied_once(tmp_path: Path) -> None:
    """Two contents under one message id, each posted nine times at once over three connections
    to each process (a bank retrying after a timeout reaches either): one content wins; every
    copy of it gets the same answer, every copy of the other DU01; one payment, forwarded once,
    in both processes' positions."""
    port = 20000 + (os.getpid() + 13) % 10000
    sample = (SAMPLES / "pacs.008.001.08" / "valid-C100-realtime-credit.xml").read_text()
    texts = {b"first": sample, b"second": sample.replace("<Ustrd>", "<Ustrd>X", 1)}
    receipt = SAMPLES / "pacs.002.001.10" / "valid-realtime-credit-receipt-for-the-c100-sample.xml"

    async def scenario(
        url: str, keys: KeyStore
    ) -> tuple[list[tuple[bytes, int, bytes]], list[str], dict[str, str]]:
        await both_processes_answer(url, keys)
        context = client_context(keys, keys.participant(BOCOM))
        sessions = await sessions_on_both_processes(url, context, each=3)
        bodies = {name: signed_text(keys, BOCOM, text) for name, text in texts.items()}

        async def post_three(
            session: aiohttp.ClientSession, order: list[bytes]
        ) -> list[tuple[bytes, int, bytes]]:
            answers = []
            for name in order:
                async with session.post(
                    url + "/v1/messages",
                    data=bodies[name],
                    headers={"Content-Type": "application/xml"},
                    ssl=context,
                ) as response:
                    answers.append((name, response.status, await response.read()))
            return answers

        try:
            orders = [[b"first", b"second", b"first"], [b"second", b"first", b"second"]] * 3
            results = await asyncio.gather(
                *(
                    post_three(session, order)
                    for session, order in zip(sessions, orders, strict=True)
                )
            )
            async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(force_close=True)
            ) as session:
                async with session.get(
                    url + "/v1/outbox", ssl=client_context(keys, keys.participant(CCB))
                ) as response:
                    forwarded = [
                        message["message_id"] for message in (await response.json())["messages"]
                    ]
                # CCB accepts it: the payment nets, once, whichever content won.
                async with session.post(
                    url + "/v1/messages",
                    data=signed_text(keys, CCB, receipt.read_text()),
                    headers={"Content-Type": "application/xml"},
                    ssl=client_context(keys, keys.participant(CCB)),
                ) as response:
                    assert response.status == 200, await response.text()
                positions = await positions_by_process(session, url, keys)
        finally:
            for session in sessions:
                await session.close()
        return [answer for answers in results for answer in answers], forwarded, positions

    with two_processes(tmp_path, port, {}) as (url, keys):
        answers, forwarded, positions = asyncio.run(scenario(url, keys))
    assert len(answers) == 18
    winners = {name for name, status, _ in answers if status == 200}
    assert len(winners) == 1, answers
    accepted = [body for _, status, body in answers if status == 200]
    assert len(accepted) == 9 and len(set(accepted)) == 1
    assert b"admi.007.001.01" in accepted[0] and C100_ID.encode() in accepted[0]
    refused = [body for name, status, body in answers if name not in winners]
    assert [status for name, status, _ in answers if name not in winners] == [409] * 9
    assert all(b"<RjctgPtyRsn>DU01</RjctgPtyRsn>" in body for body in refused)
    assert forwarded == [C100_ID]
    assert list(positions.values()) == ["-200000", "-200000"], positions
