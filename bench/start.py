"""Start-up benchmark: how long a gateway process takes to bring its clearing core back.

Builds a ledger of several working days of single-item credits (A100) across 50 direct
participants through the clearing service (each day ends with the day switch, which stores a
checkpoint; the last day stops half-way), timing the command that retires a day's items (the
first after a day switch once the days kept have passed: it writes their record) against the
one after it, then opens it:
  * from the newest checkpoint (what a start does): restore, then replay the rest of the log;
  * from the genesis (the checkpoints deleted in a copy): replay the whole log;
each against the baseline measured in the same run: reading the whole command log with plain
``sqlite3`` (no decoding, no clearing). Last, the operator's queries of the record of retired
items (``core transactions --participant``, ``--date``).

Usage: .venv/bin/python bench/start.py [--days 10] [--per-day 10000]
"""

from __future__ import annotations

import argparse
import asyncio
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
from gateway.service.clearing_service import ClearingService  # noqa: E402
from gateway.store.database import DATABASE_FILE, create_engine, sqlite_url  # noqa: E402
from gateway.store.retired_items import find_retired_items  # noqa: E402

CONCURRENT = 256
"""Commands handed to the service at once while building the ledger (one group commit)."""


def day_commands(
    day: int, opening: datetime, count: int, banks: list[str], generator: random.Random
) -> list:
    """``count`` credits during business day ``day`` (from ``opening`` on, for 7 hours)."""
    commands: list = []
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
    return commands


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


async def build(
    folder: Path, days: int, per_day: int
) -> tuple[int, list[tuple[int, float, float]]]:
    """The commands written, and for each day whose first command retired items: how many,
    that command's seconds and the next one's (each alone)."""
    banks = [entry.code for entry in directory().participants.direct]
    generator = random.Random(20022)
    ledger = service(folder)
    await ledger.open()
    written = 0
    retirements: list[tuple[int, float, float]] = []
    openings = working_days(days)
    for day, opening in enumerate(openings):
        last = day == days - 1
        commands = day_commands(day, opening, per_day // 2 if last else per_day, banks, generator)
        if not last:
            switch = datetime.combine(opening.date(), SETTINGS.sessions.day_switch, SETTINGS.zone)
            commands.append(AdvanceClock(command_id=f"switch-{day}", at=switch + timedelta(1 / 24)))
        held = len(ledger.core.items) if day else 0
        seconds = []
        for command in commands[:2]:
            started = time.perf_counter()
            await ledger.execute(command)
            seconds.append(time.perf_counter() - started)
        if day and len(ledger.core.items) < held:
            retirements.append((held + 2 - len(ledger.core.items), seconds[0], seconds[1]))
        for first in range(2, len(commands), CONCURRENT):
            await asyncio.gather(*(ledger.execute(c) for c in commands[first : first + CONCURRENT]))
        written += len(commands)
    await ledger.close()
    return written, retirements


async def query_record(folder: Path) -> list[tuple[str, int, float]]:
    """The record's queries an operator runs: what, rows found, seconds."""
    ledger = service(folder)
    await ledger.open()
    some_bank = directory().participants.direct[7].code
    day = working_days(1)[0].date()
    figures = []
    async with ledger.engine.connect() as connection:
        for what, filters in (
            (f"--participant {some_bank} --limit 1000", {"participant": some_bank}),
            (f"--date {day} --limit 10000", {"business_date": day}),
            (
                f"--participant {some_bank} --state settled --limit 10000",
                {"participant": some_bank, "state": "settled"},
            ),
        ):
            limit = int(what.rpartition(" ")[2])
            started = time.perf_counter()
            found = await find_retired_items(connection, limit, **filters)
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--per-day", type=int, default=10_000)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name) / "ledger"
        folder.mkdir()
        started = time.perf_counter()
        written, retirements = asyncio.run(build(folder, arguments.days, arguments.per_day))
        print(
            f"ledger: {written:,} commands over {arguments.days} working days (the core keeps "
            f"{SETTINGS.retention.business_days} days after their end of day), built in "
            f"{time.perf_counter() - started:.1f} s"
        )
        for items, retiring, after in retirements:
            print(
                f"  the command that retired {items:,} items and wrote their record: "
                f"{retiring * 1000:.0f} ms; the command after it: {after * 1000:.1f} ms"
            )
        with sqlite3.connect(folder / DATABASE_FILE) as connection:
            sequence, size = connection.execute(
                "SELECT sequence, length(state) FROM clearing_checkpoint "
                "ORDER BY sequence DESC LIMIT 1"
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


if __name__ == "__main__":
    main()
