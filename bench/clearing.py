"""Clearing core benchmark (issue 3 targets).

1,000,000 random credit items (A100) across 50 direct participants, in packages of 1,000:
  * netting decisions per second in the pure domain (``ClearingCore.execute``: item creation,
    cap check, bilateral netting or queueing, events);
  * items per second persisted through the service layer (SQLite, WAL, synchronous=FULL,
    one transaction per package command);
  * closing a session holding every netted item: trial balance recomputed from the detail
    records, and settlement;
each with the ratio against plain ``sqlite3`` ``executemany`` of the same rows (one row per
item, one transaction), measured in the same run on the same disk.

Usage: .venv/bin/python bench/clearing.py [--items 1000000] [--package 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.clearing.commands import CloseSession, PackageItem, SubmitPackage  # noqa: E402
from gateway.clearing.core import ClearingCore  # noqa: E402
from gateway.configuration.clearing_settings import ClearingSettings  # noqa: E402
from gateway.configuration.participants import (  # noqa: E402
    ParticipantDirectory,
    ParticipantsFile,
)
from gateway.service.clearing_service import ClearingService  # noqa: E402
from gateway.store.database import create_engine, sqlite_url  # noqa: E402

PARTICIPANTS = 50
SETTINGS = ClearingSettings()
START = datetime(2026, 11, 23, 9, 0, tzinfo=SETTINGS.zone)


def directory() -> ParticipantDirectory:
    banks = [f"{100000000000 + index * 1013:012d}" for index in range(PARTICIPANTS)]
    return ParticipantDirectory(
        ParticipantsFile.model_validate(
            {
                "centre": {"member_id": "999999999999", "name": "centre"},
                "direct": [
                    {
                        "code": code,
                        "name": code,
                        "settlement_balance": "900000000.00",
                        "collateral": "50000000.00",
                        "credit_line": "20000000.00",
                        "ring_fenced": "10000000.00",
                    }
                    for code in banks
                ],
            }
        )
    )


def packages(items: int, size: int, banks: list[str]) -> list[SubmitPackage]:
    generator = random.Random(20022)
    result = []
    for number in range(items // size):
        sender = banks[number % len(banks)]
        receiver = banks[(number * 7 + 3) % len(banks)]
        if receiver == sender:
            receiver = banks[(number + 1) % len(banks)]
        result.append(
            SubmitPackage(
                command_id=f"submit-{number}",
                at=START,
                package_id=f"{sender}:{number:08d}",
                sender=sender,
                receiver=receiver,
                business_type="A100",
                items=tuple(
                    PackageItem(
                        transaction_id=f"T{index:06d}",
                        debtor_agent=sender,
                        creditor_agent=receiver,
                        amount=generator.randint(100, 5_000_000),
                    )
                    for index in range(size)
                ),
            )
        )
    return result


def executemany_baseline(commands: list[SubmitPackage], folder: Path) -> float:
    """Rows per second: the same items as plain rows, one transaction, synchronous=FULL."""
    connection = sqlite3.connect(folder / "baseline.sqlite3", isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute(
        "CREATE TABLE item (item_id TEXT PRIMARY KEY, package_id TEXT, payer TEXT, payee TEXT,"
        " amount INTEGER, state TEXT)"
    )
    rows = [
        (
            f"{command.package_id}/{item.transaction_id}",
            command.package_id,
            item.debtor_agent,
            item.creditor_agent,
            item.amount,
            "netted",
        )
        for command in commands
        for item in command.items
    ]
    started = time.perf_counter()
    connection.execute("BEGIN IMMEDIATE")
    connection.executemany("INSERT INTO item VALUES (?, ?, ?, ?, ?, ?)", rows)
    connection.execute("COMMIT")
    seconds = time.perf_counter() - started
    connection.close()
    return len(rows) / seconds


def pure_domain(commands: list[SubmitPackage]) -> tuple[float, ClearingCore, int]:
    core = ClearingCore(directory(), SETTINGS, START)
    started = time.perf_counter()
    for command in commands:
        core.execute(command)
    seconds = time.perf_counter() - started
    items = sum(len(command.items) for command in commands)
    netted = sum(1 for item in core.items.values() if item.state == "netted")
    return items / seconds, core, netted


async def persisted(commands: list[SubmitPackage], folder: Path) -> float:
    engine = create_engine(sqlite_url(folder))
    service = ClearingService(engine, directory(), SETTINGS, lambda: START)
    await service.open()
    started = time.perf_counter()
    for command in commands:
        await service.execute(command)
    seconds = time.perf_counter() - started
    await service.close()
    return sum(len(command.items) for command in commands) / seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--package", type=int, default=1_000)
    arguments = parser.parse_args()
    banks = [entry.code for entry in directory().participants.direct]
    commands = packages(arguments.items, arguments.package, banks)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        baseline = executemany_baseline(commands, folder)
        print(f"SQLite executemany of the same rows: {baseline:,.0f} rows/s (baseline)")

        rate, core, netted = pure_domain(commands)
        print(
            f"pure domain: {rate:,.0f} netting decisions/s "
            f"({netted:,} netted, {len(core.items) - netted:,} queued); "
            f"ratio to executemany {rate / baseline:.2f}"
        )

        started = time.perf_counter()
        events = core.execute(CloseSession(command_id="close", at=START))
        close_seconds = time.perf_counter() - started
        closed = events[0]
        baseline_seconds = netted / baseline
        print(
            f"session close + trial balance + settlement with {netted:,} netted items: "
            f"{close_seconds:.2f} s (executemany of as many rows: {baseline_seconds:.2f} s, "
            f"ratio {close_seconds / baseline_seconds:.2f}); "
            f"{len(events)} events, recomputed={getattr(closed, 'recomputed', None)}"
        )

        stored = asyncio.run(persisted(commands, folder))
        print(
            f"persisted through the service layer: {stored:,.0f} items/s "
            f"(packages of {arguments.package}, one transaction each); "
            f"ratio to executemany {stored / baseline:.2f}"
        )


if __name__ == "__main__":
    main()
