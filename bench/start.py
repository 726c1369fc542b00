"""Start-up benchmark: how long a gateway process takes to bring its clearing core back.

Builds a ledger of several working days of single-item credits (A100) across 50 direct
participants through the clearing service (each day ends with the day switch, which stores a
checkpoint; the last day stops half-way), with the clock's ticks among the payments. Commands
are sent together up to 256 with at most one tick, and each one's wait is timed: once the days
kept have passed, the first ticks of a day retire an earlier day (and write its record), and
the waits of the commands sent with them are set against the others'. Then it opens the
ledger:
  * from the newest checkpoint (what a start does): restore, then replay the rest of the log;
  * from the genesis (the checkpoints deleted in a copy): replay the whole log;
each against the baseline measured in the same run: reading the whole command log with plain
``sqlite3`` (no decoding, no clearing). Last, the operator's queries of the record of retired
items (``core transactions --participant``, ``--date``), and what a process serving the ledger
waits for while another process starts on it (a worker restarted, say), from the checkpoint and
from the genesis: the serving process's commands, one after another, timed until each commit.

Usage: .venv/bin/python bench/start.py [--days 10] [--per-day 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.clearing import SETTINGS, START, directory  # noqa: E402
from gateway.clearing.calendar import BusinessCalendar  # noqa: E402
from gateway.clearing.commands import AdvanceClock, PackageItem, SubmitPackage  # noqa: E402
from gateway.clearing.events import BusinessRetired  # noqa: E402
from gateway.service.clearing_service import ClearingService  # noqa: E402
from gateway.store.database import DATABASE_FILE, create_engine, sqlite_url  # noqa: E402
from gateway.store.retired_items import ItemFilter, find_retired_items  # noqa: E402

CONCURRENT = 256
"""Commands handed to the service at once while building the ledger (one group commit) at
most."""
TICK_SECONDS = 60
"""The clock's ticks among a day's payments (the gateway ticks each second: this is 60 times
fewer, and still retires a day in its first half hour)."""


def day_commands(
    day: int, opening: datetime, count: int, banks: list[str], generator: random.Random
) -> list:
    """``count`` credits during business day ``day`` (from ``opening`` on, for 7 hours), and
    the clock's ticks among them, one each ``TICK_SECONDS``."""
    commands: list = [
        AdvanceClock(command_id=f"tick-{day}-{second}", at=opening + timedelta(seconds=second))
        for second in range(0, 7 * 3600, TICK_SECONDS)
    ]
    for number in range(count):
        sender, receiver = generator.sample(banks, 2)
        commands.append(
            SubmitPackage(
                command_id=f"submit-{day}-{number}",
                at=opening + timedelta(seconds=number * 7 * 3600 // count),
                package_id=f"{sender}:D{day:03d}{number:08d}",
                sender=sender,
                receiver=receiver,
                business_type="A100",
                items=(
                    PackageItem(
                        transaction_id="T1",
                        debtor_agent=sender,
                        creditor_agent=receiver,
                        amount=generator.randint(100, 500_000),
                    ),
                ),
            )
        )
    return sorted(commands, key=lambda command: command.at)


def service(folder: Path) -> ClearingService:
    return ClearingService(
        create_engine(sqlite_url(folder)),
        directory(),
        SETTINGS,
        lambda: START,
        checkpoint_every_commands=100_000_000,
    )


def working_days(count: int) -> list[datetime]:
    """09:00 on each of the first ``count`` working days from START on."""
    calendar = BusinessCalendar(SETTINGS.calendar)
    days: list[datetime] = []
    moment = START
    while len(days) < count:
        if calendar.is_working_day(moment.date()):
            days.append(moment)
        moment += timedelta(days=1)
    return days


async def timed(ledger: ClearingService, command: object) -> tuple[float, bool]:
    """How long ``command`` waited for its commit, and whether it retired business."""
    started = time.perf_counter()
    events = await ledger.execute(command)  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    return seconds, any(isinstance(event, BusinessRetired) for event in events)


async def build(folder: Path, days: int, per_day: int) -> tuple[int, dict[str, list[float]]]:
    """The commands written, and the waits of each command: those sent together with a tick
    that retired business, those sent first after a day switch, and the others."""
    banks = [entry.code for entry in directory().participants.direct]
    generator = random.Random(20022)
    ledger = service(folder)
    await ledger.open()
    written = 0
    retiring: list[float] = []
    checkpointing: list[float] = []
    others: list[float] = []
    for day, opening in enumerate(working_days(days)):
        last = day == days - 1
        commands = day_commands(day, opening, per_day // 2 if last else per_day, banks, generator)
        if not last:
            switch = datetime.combine(opening.date(), SETTINGS.sessions.day_switch, SETTINGS.zone)
            commands.append(AdvanceClock(command_id=f"switch-{day}", at=switch + timedelta(1 / 24)))
        for number, group in enumerate(groups(commands)):
            results = await asyncio.gather(*(timed(ledger, command) for command in group))
            waits = [seconds for seconds, _ in results]
            if day and not number:
                checkpointing.extend(waits)  # behind the checkpoint of the day switch
            elif any(retired for _, retired in results):
                retiring.extend(waits)
            else:
                others.extend(waits)
        written += len(commands)
    await ledger.close()
    return written, {
        "sent with a tick that retired": retiring,
        "sent first after a day switch (its checkpoint)": checkpointing,
        "the others": others,
    }


def groups(commands: list) -> list[list]:
    """The commands sent together: at most ``CONCURRENT``, and at most one tick (as from a
    gateway that ticks each second)."""
    sent: list[list] = [[]]
    for command in commands:
        if len(sent[-1]) == CONCURRENT or (
            isinstance(command, AdvanceClock) and any(isinstance(c, AdvanceClock) for c in sent[-1])
        ):
            sent.append([])
        sent[-1].append(command)
    return sent


def percentiles(waits: list[float]) -> str:
    ordered = sorted(waits)
    if not ordered:
        return "none"
    return (
        f"p50 {ordered[len(ordered) // 2] * 1000:.0f} ms, p99 "
        f"{ordered[min(len(ordered) - 1, len(ordered) * 99 // 100)] * 1000:.0f} ms, max "
        f"{ordered[-1] * 1000:.0f} ms ({len(ordered):,} commands)"
    )


async def query_record(folder: Path) -> list[tuple[str, int, float]]:
    """The record's queries an operator runs: what, rows found, seconds."""
    ledger = service(folder)
    await ledger.open()
    some_bank = directory().participants.direct[7].code
    day = working_days(1)[0].date()
    figures = []
    async with ledger.engine.connect() as connection:
        [sample] = await find_retired_items(connection, 1, ItemFilter(participant=some_bank))
        package = sample.package_id
        for what, wanted in (
            (f"--participant {some_bank} --limit 1000", ItemFilter(participant=some_bank)),
            (f"--date {day} --limit 10000", ItemFilter(business_date=day)),
            (
                f"--participant {some_bank} --state settled --limit 10000",
                ItemFilter(participant=some_bank, state="settled"),
            ),
            (f"--message {package.replace(':', ' ')} --limit 50", ItemFilter(package=package)),
        ):
            limit = int(what.rpartition(" ")[2])
            started = time.perf_counter()
            found = await find_retired_items(connection, limit, wanted)
            figures.append((what, len(found), time.perf_counter() - started))
    await ledger.close()
    return figures


def read_log(folder: Path) -> float:
    started = time.perf_counter()
    with sqlite3.connect(folder / DATABASE_FILE) as connection:
        rows = connection.execute(
            "SELECT sequence, payload FROM clearing_command_log ORDER BY sequence"
        ).fetchall()
    assert rows
    return time.perf_counter() - started


async def open_timed(folder: Path) -> tuple[float, ClearingService]:
    ledger = service(folder)
    started = time.perf_counter()
    await ledger.open()
    seconds = time.perf_counter() - started
    await ledger.close()
    return seconds, ledger


async def open_alone(folder: Path) -> None:
    """The other process of ``serving_while_another_starts``: open the ledger, print seconds."""
    seconds, _ = await open_timed(folder)
    print(f"{seconds:.3f}")


async def serving_while_another_starts(folder: Path, days: int) -> tuple[float, list[float]]:
    """The seconds another process took to open the ledger in ``folder``, and the waits of
    the commands this process committed meanwhile (one at a time, every 5 ms)."""
    banks = [entry.code for entry in directory().participants.direct]
    at = working_days(days)[-1] + timedelta(hours=4)
    ledger = service(folder)
    await ledger.open()
    await ledger.execute(AdvanceClock(command_id="serving-tick", at=at))
    other = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--open-alone", str(folder), stdout=asyncio.subprocess.PIPE
    )
    waits: list[float] = []
    number = 0
    while other.returncode is None:
        number += 1
        credit = SubmitPackage(
            command_id=f"serving-{number}",
            at=at,
            package_id=f"{banks[0]}:SERVING{number:08d}",
            sender=banks[0],
            receiver=banks[1],
            business_type="A100",
            items=(
                PackageItem(
                    transaction_id="T1", debtor_agent=banks[0], creditor_agent=banks[1], amount=100
                ),
            ),
        )
        seconds, _ = await timed(ledger, credit)
        waits.append(seconds)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(other.wait(), 0.005)
    output, _ = await other.communicate()
    await ledger.close()
    if other.returncode:
        raise SystemExit("the other process failed to open the ledger")
    return float(output.decode().strip()), waits


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--per-day", type=int, default=10_000)
    parser.add_argument("--open-alone", type=Path, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.open_alone:
        asyncio.run(open_alone(arguments.open_alone))
        return
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name) / "ledger"
        folder.mkdir()
        started = time.perf_counter()
        written, waits = asyncio.run(build(folder, arguments.days, arguments.per_day))
        print(
            f"ledger: {written:,} commands over {arguments.days} working days (the core keeps "
            f"{SETTINGS.retention.business_days} days after their end of day, retires at most "
            f"{SETTINGS.retention.items_per_tick:,} items at a tick), built in "
            f"{time.perf_counter() - started:.1f} s; commands sent together, up to {CONCURRENT} "
            "with at most one tick"
        )
        for what, seconds in waits.items():
            print(f"  waits of the commands {what}: {percentiles(seconds)}")
        with sqlite3.connect(folder / DATABASE_FILE) as connection:
            sequence, size = connection.execute(
                "SELECT c.sequence, (SELECT sum(length(p.text)) FROM clearing_checkpoint_part p "
                "WHERE p.sequence = c.sequence) FROM clearing_checkpoint c "
                "ORDER BY c.sequence DESC LIMIT 1"
            ).fetchone()
        baseline = read_log(folder)
        print(f"plain sqlite3 read of the whole log: {baseline:.2f} s (baseline)")

        from_checkpoint, ledger = asyncio.run(open_timed(folder))
        seconds = from_checkpoint
        print(
            f"start from the newest checkpoint (sequence {sequence:,}, {size / 1e6:.1f} MB, "
            f"{len(ledger.core.items):,} items in memory) + replay of {ledger.replayed:,} "
            f"commands: {seconds:.2f} s, ratio {seconds / baseline:.2f}"
        )

        bare = Path(name) / "genesis"
        shutil.copytree(folder, bare)
        with sqlite3.connect(bare / DATABASE_FILE) as connection:
            connection.execute("DELETE FROM clearing_checkpoint")
        seconds, ledger = asyncio.run(open_timed(bare))
        print(
            f"start from the genesis (replay of {ledger.replayed:,} commands): "
            f"{seconds:.2f} s, ratio {seconds / baseline:.2f}; the checkpoint start takes "
            f"{from_checkpoint / seconds:.2f} of it"
        )
        with sqlite3.connect(folder / DATABASE_FILE) as connection:
            (recorded,) = connection.execute(
                "SELECT count(*) FROM clearing_retired_item"
            ).fetchone()
        print(f"record of retired items: {recorded:,} items")
        for what, found, seconds in asyncio.run(query_record(folder)):
            print(f"  core transactions {what}: {found:,} retired items in {seconds * 1000:.0f} ms")
        for what, ledger_folder in (("the newest checkpoint", folder), ("the genesis", bare)):
            opened, waits = asyncio.run(serving_while_another_starts(ledger_folder, arguments.days))
            print(
                f"a process serving while another starts from {what} ({opened:.2f} s): "
                f"its commands waited {percentiles(waits)}"
            )


if __name__ == "__main__":
    main()
