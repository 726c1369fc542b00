"""The reading engine: its transactions read a snapshot of the database, keep no writer
waiting however long they stay open, and cannot write."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import OperationalError

from gateway.store.database import create_reading_engine, create_writer_engine, sqlite_url
from gateway.store.tables import command_log

ROW = {"command_id": "one", "kind": "test", "issued_at": "2026-11-23", "payload": "{}"}


def test_a_writer_commits_while_a_read_is_open_and_the_read_keeps_its_snapshot(
    folder: Path,
) -> None:
    writer = create_writer_engine(sqlite_url(folder))
    count = select(func.count()).select_from(command_log)

    async def scenario() -> tuple[int, int, int]:
        reader = create_reading_engine(sqlite_url(folder))
        try:
            async with reader.connect() as reading:
                before = (await reading.execute(count)).scalar_one()
                # The writer's BEGIN IMMEDIATE would wait (and time out) behind a held lock.
                with writer.begin() as writing:
                    writing.execute(insert(command_log).values(**ROW))
                during = (await reading.execute(count)).scalar_one()
            async with reader.connect() as reading:
                after = (await reading.execute(count)).scalar_one()
        finally:
            await reader.dispose()
        return before, during, after

    try:
        assert asyncio.run(asyncio.wait_for(scenario(), 5)) == (0, 0, 1)
    finally:
        writer.dispose()


def test_a_write_through_the_reading_engine_is_refused(folder: Path) -> None:
    async def scenario() -> None:
        reader = create_reading_engine(sqlite_url(folder))
        try:
            async with reader.connect() as reading:
                await reading.execute(insert(command_log).values(**ROW))
        finally:
            await reader.dispose()

    with pytest.raises(OperationalError, match="readonly database"):
        asyncio.run(scenario())
