"""Gateway processes killed (SIGKILL) under load: nothing answered is lost or half-applied.

Starts ``isogw serve`` (its processes as the configuration says) on a fresh state folder, then
simulated banks send real-time debits (ICBC's pacs.003, then CCB's pacs.002 for it), real-time
credits (BOCOM's pacs.008) and batch packages (ICBC to BOC, ``--batch`` credits each: over
``encoding.sign_after_commit_entries``, so their receipts are signed after the commit), while
processes are killed with SIGKILL: one gateway process at a time (the first restarts it) or all
of them (this script starts ``isogw serve`` again). ``--during-batches`` kills all of them while
each batch package is under way instead, so some kills fall between a package's commit and its
receipt's signing. A bank whose request fails (connection reset, 503) sends the same message
again until it has an answer, as the README tells banks to.

Then, after a last kill and start, it checks the ledger:
- every message answered 200 is in the ledger with that answer;
- no outbox message is left to sign, none is there twice, every one verifies (the gateway's
  signature);
- every debit whose pacs.002 was accepted has its receipts in both banks' outboxes, every batch
  package accepted was forwarded once;
- the net positions and the settlement debits queued sum to zero, and ``isogw core
  verify-checkpoints`` passes.
``--sessions`` closes a netting session every minute and switches the day half-way (the real
clock), so kills also fall during closes, settlement and the day switch.
It prints what happened and each problem found, and exits 1 if there is one (keeping the state
folder and the gateway's log for a look).

Usage: .venv/bin/python bench/crash.py [--seconds 90] [--seed 1] [--batch 2000]
       [--during-batches] [--sessions]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from package_generator import write_package  # noqa: E402
from realtime import (  # noqa: E402
    BOCOM,
    CCB,
    CENTRE,
    ICBC,
    Banks,
    check_running,
    config_folder,
    wait_ready,
    wait_started,
)

from gateway.security.keys import KeyStore  # noqa: E402
from gateway.security.signatures import SignatureVerifier  # noqa: E402

BOC = "104100000004"
ATTEMPTS = 200
"""Tries of one message before the bank gives up on it (reported as never answered)."""
WORKER_KILLS_A_MINUTE = 4
"""At most this many single-process kills a minute: the first process stops restarting one
that stops more often than ``http.worker_restarts`` (5) a minute."""


class Gateway:
    """``isogw serve`` in a session of its own, so that all its processes can be killed."""

    def __init__(self, config: Path, state: Path, log: Path) -> None:
        self.config, self.state, self.log = config, state, log
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gateway", "--config", str(self.config), "serve"],
                env={**os.environ, "GATEWAY_STATE_DIR": str(self.state)},
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=out,
                start_new_session=True,
            )
        self.starts += 1

    def others(self) -> list[int]:
        """The process ids of the gateway processes the first one started."""
        assert self.process is not None
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid:
                found.append(int(entry.name))
        return found

    def still_starting(self) -> None:
        """Stops the benchmark with the end of the log if ``isogw serve`` has exited."""
        assert self.process is not None
        check_running(self.process, self.log)

    def kill(self) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):  # all gone already
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def command(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gateway", "--config", str(self.config), *arguments],
            env={**os.environ, "GATEWAY_STATE_DIR": str(self.state)},
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )


@dataclass
class Run:
    """What the banks sent and were answered, by (sender, message id)."""

    answers: dict[tuple[str, str], int | None] = field(default_factory=dict)
    kinds: dict[tuple[str, str], str] = field(default_factory=dict)
    debit_transactions: dict[tuple[str, str], str] = field(default_factory=dict)
    """CCB's pacs.002 by key: the transaction it confirms."""
    counts: collections.Counter[str] = field(default_factory=collections.Counter)


class Senders:
    """The banks' systems: each sends its next message when the last one was answered."""

    def __init__(self, banks: Banks, url: str, run: Run, stop: asyncio.Event) -> None:
        self.banks, self.url, self.run, self.stop = banks, url, run, stop

    async def send(
        self, session: aiohttp.ClientSession, sender: str, message_id: str, kind: str, body: bytes
    ) -> int | None:
        """Until answered (the same message again after a failure, as banks are told to);
        the status, None if never."""
        key = (sender, message_id)
        self.run.kinds[key] = kind
        for attempt in range(ATTEMPTS):
            try:
                async with session.post(
                    self.url + "/v1/messages",
                    data=body,
                    headers={"Content-Type": "application/xml"},
                    ssl=self.banks.contexts[sender],
                    timeout=aiohttp.ClientTimeout(total=60),
                ) as response:
                    await response.read()
                    if response.status != 503:
                        self.run.answers[key] = response.status
                        self.run.counts["answered after a retry"] += bool(attempt)
                        return response.status
                    self.run.counts["503 (sent again)"] += 1
            except (aiohttp.ClientError, OSError, TimeoutError):
                self.run.counts["connection failures (sent again)"] += 1
            await asyncio.sleep(0.3)
        self.run.answers[key] = None
        return None

    async def debits(self, first: int) -> None:
        async with aiohttp.ClientSession() as session:
            number = first
            while not self.stop.is_set():
                [(debit, receipt)] = self.banks.payments(number, 1)
                if (
                    await self.send(session, ICBC, f"B102100099996{number:012d}", "D100", debit)
                    == 200
                ):
                    key = (CCB, f"R105100000017{number:012d}")
                    self.run.debit_transactions[key] = f"{number:028d}"
                    await self.send(session, *key, "pacs.002", receipt)
                number += 1

    async def credits(self, first: int) -> None:
        async with aiohttp.ClientSession() as session:
            number = first
            while not self.stop.is_set():
                message_id = f"B301290000007{number:012d}"
                await self.send(session, BOCOM, message_id, "C100", self.banks.credit(number))
                number += 1


def package(banks: Banks, folder: Path, credits: int) -> tuple[str, bytes]:
    """A signed batch package of ``credits`` credits (its id depends on the count)."""
    path = write_package(folder / "batch.xml", credits)
    return f"B102100099996202611{credits:012d}", banks.signers[ICBC].sign(path.read_bytes())


async def batches(
    sender: Senders,
    folder: Path,
    credits: int,
    gateway: Gateway,
    during: bool,
    randomness: random.Random,
) -> None:
    async with aiohttp.ClientSession() as session:
        count = credits
        while not sender.stop.is_set():
            message_id, body = package(sender.banks, folder, count)
            strike = (
                asyncio.create_task(kill_all(gateway, sender.run, randomness, 0.3, 2.5))
                if during
                else None
            )
            await sender.send(session, ICBC, message_id, "batch", body)
            if strike is not None:
                await strike
            count += 1
            await asyncio.sleep(randomness.uniform(1, 4))


async def kill_all(
    gateway: Gateway, run: Run, randomness: random.Random, earliest: float, latest: float
) -> None:
    await asyncio.sleep(randomness.uniform(earliest, latest))
    gateway.kill()
    run.counts["all processes killed"] += 1
    await asyncio.sleep(randomness.uniform(0, 1))
    gateway.start()


async def kills(gateway: Gateway, run: Run, stop: asyncio.Event, randomness: random.Random) -> None:
    """One process or all of them, every 2 to 5 s."""
    recent: list[float] = []
    while not stop.is_set():
        await asyncio.sleep(randomness.uniform(2, 5))
        now = time.monotonic()
        recent = [at for at in recent if now - at < 60]
        others = gateway.others()
        if others and len(recent) < WORKER_KILLS_A_MINUTE and randomness.random() < 0.6:
            with contextlib.suppress(ProcessLookupError):  # it had just stopped
                os.kill(randomness.choice(others), signal.SIGKILL)
            recent.append(now)
            run.counts["one process killed"] += 1
        else:
            await kill_all(gateway, run, randomness, 0, 0)


def check(database: sqlite3.Connection, keys: KeyStore, run: Run) -> list[str]:
    problems = []
    stored = {
        (sender, message_id): status
        for sender, message_id, status in database.execute(
            "SELECT sender, message_id, status FROM inbound_message"
        )
    }
    for key, status in run.answers.items():
        if status is None:
            problems.append(f"{run.kinds[key]} {key[1]} from {key[0]}: never answered")
        elif status == 200 and stored.get(key) != 200:
            problems.append(
                f"{run.kinds[key]} {key[1]} answered 200; the ledger has {stored.get(key)}"
            )
    left = database.execute("SELECT count(*) FROM outbox WHERE document_to_sign IS NOT NULL")
    if (waiting := left.fetchone()[0]) != 0:
        problems.append(f"{waiting} outbox messages still to sign")
    for participant, message_id, copies in database.execute(
        "SELECT participant, message_id, count(*) FROM outbox GROUP BY participant, message_id "
        "HAVING count(*) > 1"
    ):
        problems.append(f"{message_id} is {copies} times in {participant}'s outbox")
    verifier = SignatureVerifier({CENTRE: keys.gateway.certificate()})
    receipts: dict[str, set[str]] = collections.defaultdict(set)
    rows = database.execute("SELECT participant, message_id, payload FROM outbox").fetchall()
    for participant, message_id, payload in rows:
        try:
            verifier.verify(payload.encode(), CENTRE, datetime.now(UTC))
        except Exception as error:  # reported, whatever it is
            problems.append(f"{message_id} in {participant}'s outbox does not verify: {error}")
        receipts[participant].update(re.findall(r"<OrgnlTxId>([^<]*)</OrgnlTxId>", payload))
    for key, transaction in run.debit_transactions.items():
        if run.answers.get(key) == 200:
            problems += [
                f"no receipt of debit {transaction} in {bank}'s outbox"
                for bank in (ICBC, CCB)
                if transaction not in receipts[bank]
            ]
    forwards = collections.Counter(
        message_id for participant, message_id, _ in rows if participant == BOC
    )
    for key, status in run.answers.items():
        if run.kinds[key] == "batch" and status == 200 and forwards[key[1]] != 1:
            problems.append(f"batch {key[1]} forwarded {forwards[key[1]]} times")
    print(f"ledger: {len(stored)} messages, {len(rows)} outbox messages")
    return problems


def session_every_minute(clearing: Path, seconds: float) -> None:
    """Session closes every minute from the second minute of the run on, and the day switch
    half-way through it (the clock is the real one: kills fall during closes, statements and
    the day switch's checkpoint; after the switch the samples' settlement date is refused)."""
    text = clearing.read_text()
    zone = ZoneInfo(re.search(r'^time_zone = "([^"]+)"', text, re.MULTILINE).group(1))  # type: ignore[union-attr]
    now = datetime.now(zone).replace(second=0, microsecond=0)
    minutes = max(int(seconds // 60), 3)
    switch = now + timedelta(minutes=2 + minutes // 2)
    closes = [now + timedelta(minutes=2 + minute) for minute in range(minutes)]
    if now.date() != switch.date():
        raise SystemExit("--sessions needs the run to end before midnight, local time")
    times = ", ".join(f'"{at:%H:%M}"' for at in closes if at < switch)
    text = re.sub(r"^times = .*$", f"times = [{times}]", text, count=1, flags=re.MULTILINE)
    text = re.sub(
        r"^day_switch = .*$", f'day_switch = "{switch:%H:%M}"', text, count=1, flags=re.MULTILINE
    )
    clearing.write_text(text)


def positions_balance(gateway: Gateway) -> tuple[Decimal, str]:
    """The net positions ``isogw core positions`` prints plus the settlement debits queued
    (``core status``: a session's creditors are paid at once, a debtor short of funds keeps its
    debit in its position while it waits), in CNY: zero when every item's two sides are there;
    and the positions' text."""
    text = gateway.command("core", "positions").stdout
    rows = [line.split() for line in text.splitlines()[1:]]
    positions = sum((Decimal(columns[2]) for columns in rows if len(columns) > 2), Decimal(0))
    status = json.loads(gateway.command("core", "status", "--json").stdout)
    queued = sum((Decimal(entry["amount"]) for entry in status["settlement_queue"]), Decimal(0))
    return positions + queued, text


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=90)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch", type=int, default=2_000)
    parser.add_argument("--during-batches", action="store_true")
    parser.add_argument(
        "--sessions",
        action="store_true",
        help="a netting session closes every minute of the run, and the day switches half-way",
    )
    parser.add_argument("--port", type=int, default=19443)
    arguments = parser.parse_args()
    randomness = random.Random(arguments.seed)
    base = Path(tempfile.mkdtemp(prefix="isogw-crash-"))
    config = config_folder(base, arguments.port) / "gateway.toml"
    if arguments.sessions:
        session_every_minute(config.parent / "clearing.toml", arguments.seconds)
    state = base / "state"
    gateway = Gateway(config, state, base / "gateway.log")
    gateway.start()
    url = f"https://127.0.0.1:{arguments.port}"
    keys = await asyncio.to_thread(wait_started, url, state, gateway.still_starting)
    run, stop = Run(), asyncio.Event()
    sender = Senders(Banks(keys), url, run, stop)
    load = [asyncio.create_task(sender.debits(1_000_000 * index)) for index in (1, 2, 3)]
    load += [asyncio.create_task(sender.credits(5_000_000 * index)) for index in (1, 2)]
    load.append(
        asyncio.create_task(
            batches(sender, base, arguments.batch, gateway, arguments.during_batches, randomness)
        )
    )
    killing = (
        None
        if arguments.during_batches
        else asyncio.create_task(kills(gateway, run, stop, randomness))
    )
    await asyncio.sleep(arguments.seconds)
    stop.set()
    if killing is not None:
        await killing
    await asyncio.wait_for(asyncio.gather(*load), 300)
    gateway.kill()  # once more, whatever was under way
    gateway.start()
    await asyncio.to_thread(wait_ready, url, keys, gateway.still_starting)
    await asyncio.sleep(2)  # the start's sweep of messages left to sign
    database = sqlite3.connect(state / "gateway.sqlite3")
    try:
        problems = check(database, keys, run)
    finally:
        database.close()
    gateway.kill()
    verified = gateway.command("core", "verify-checkpoints")
    if verified.returncode != 0:
        problems.append(f"isogw core verify-checkpoints: {verified.stdout}{verified.stderr}")
    print(f"isogw core verify-checkpoints: {verified.stdout.splitlines()[0]}")
    sessions = gateway.command("core", "sessions").stdout.splitlines()[1:]
    status = json.loads(gateway.command("core", "status", "--json").stdout)
    print(
        f"business date {status['business_date']}; sessions: "
        + ", ".join(f"{line.split()[0]} {line.split()[2]}" for line in sessions if line.strip())
    )
    total, positions = positions_balance(gateway)
    if total != 0:
        problems.append(
            f"the net positions and queued settlement debits sum to {total} CNY:\n{positions}"
        )
    print(
        f"{arguments.seconds:.0f} s of load, {gateway.starts} starts of isogw serve; "
        + ", ".join(f"{what}: {count}" for what, count in sorted(run.counts.items()))
    )
    outcomes = collections.Counter((run.kinds[key], status) for key, status in run.answers.items())
    print(
        "answers: "
        + ", ".join(
            f"{kind} {status}: {count}"
            for (kind, status), count in sorted(outcomes.items(), key=str)
        )
    )
    log = gateway.log.read_text(errors="replace")
    print(
        f"{log.count('event=left-unsigned-signed')} receipts left unsigned by a kill and signed "
        f"at a start or by a sweep; checkpoints stored {log.count('event=checkpoint ')}, failed "
        f"{log.count('event=checkpoint-failed')}; {log.count('Traceback')} tracebacks in the "
        "gateway's log"
    )
    print(f"{len(problems)} problems")
    for problem in problems:
        print(f"  {problem}")
    if problems:
        print(f"the state folder and the gateway's log are kept in {base}")
    else:
        shutil.rmtree(base)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
