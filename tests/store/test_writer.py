"""The clearing writer's transactions on their own thread, and the lock that makes several
gateway processes on one SQLite file take turns."""

from __future__ import annotations

import asyncio
import fcntl
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gateway.store.database import create_writer_engine, sqlite_url
from gateway.store.tables import command_log, retired_item
from gateway.store.write_batch import WriteBatch
from gateway.store.writer import WriterThread


async def not_in_transaction(work: object) -> None:
    raise AssertionError("these batches only insert")


def batch(command_id: str) -> WriteBatch:
    writes = WriteBatch(not_in_transaction)
    writes.log.append(
        {"command_id": command_id, "kind": "test", "issued_at": "2026-11-23", "payload": "{}"}
    )
    return writes


def logged(folder: Path) -> int:
    engine = create_writer_engine(sqlite_url(folder))
    with engine.connect() as connection:
        count = int(connection.execute(select(func.count()).select_from(command_log)).scalar_one())
    engine.dispose()
    return count


def test_a_second_writer_waits_until_the_first_commits(folder: Path) -> None:
    async def scenario() -> None:
        first, second = WriterThread(sqlite_url(folder)), WriterThread(sqlite_url(folder))
        held, _ = await first.begin(0, 10)
        waiting = asyncio.create_task(second.begin(0, 10))
        await asyncio.sleep(0.2)  # a real other writer: only time tells it is blocked
        assert not waiting.done()
        assert await first.run(lambda: held.commit(batch("one"))) == 1
        other, rows = await asyncio.wait_for(waiting, timeout=10)
        assert rows == [(1, "{}")]  # what the first writer logged, read with the begin
        assert await second.run(lambda: other.read_log(0, 10)) == [(1, "{}")]
        assert await second.run(lambda: other.commit(batch("two"))) == 2
        await first.close()
        await second.close()

    asyncio.run(scenario())
    assert logged(folder) == 2
    assert (folder / "gateway.sqlite3.writer-lock").is_file()


def test_an_aborted_transaction_writes_nothing_and_frees_the_lock(folder: Path) -> None:
    async def scenario() -> None:
        first, second = WriterThread(sqlite_url(folder)), WriterThread(sqlite_url(folder))
        held, _ = await first.begin(0, 10)
        await first.run(held.abort)
        other, _ = await asyncio.wait_for(second.begin(0, 10), timeout=10)
        assert await second.run(lambda: other.commit(batch("after-abort"))) == 1
        await first.close()
        await second.close()

    asyncio.run(scenario())
    assert logged(folder) == 1


def test_a_failed_insert_rolls_back_and_frees_the_lock(folder: Path) -> None:
    async def scenario() -> None:
        writer = WriterThread(sqlite_url(folder))
        transaction, _ = await writer.begin(0, 10)
        await writer.run(lambda: transaction.commit(batch("same")))
        again, _ = await writer.begin(1, 10)
        with pytest.raises(Exception, match="UNIQUE"):
            await writer.run(lambda: again.commit(batch("same")))  # command ids are unique
        last, _ = await asyncio.wait_for(writer.begin(1, 10), timeout=10)
        assert await writer.run(lambda: last.commit(batch("next"))) == 2
        await writer.close()

    asyncio.run(scenario())
    assert logged(folder) == 2


def test_a_writer_cancelled_while_waiting_lets_the_lock_go_once_it_has_it(folder: Path) -> None:
    """At shutdown the writer may be waiting for the lock; when it gets it, it must end that
    transaction at once instead of holding the lock for good."""

    async def scenario() -> None:
        holder, waiter, third = (WriterThread(sqlite_url(folder)) for _ in range(3))
        held, _ = await holder.begin(0, 10)
        waiting = asyncio.create_task(waiter.begin(0, 10))
        await asyncio.sleep(0.2)  # the waiter is blocked on the lock
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await holder.run(lambda: held.commit(batch("first")))
        latest, _ = await asyncio.wait_for(third.begin(1, 10), timeout=10)
        assert await third.run(lambda: latest.commit(batch("second"))) == 2
        for writer in (holder, waiter, third):
            await writer.close()

    asyncio.run(scenario())
    assert logged(folder) == 2


def test_the_writer_uses_the_synchronous_driver_of_the_same_database(tmp_path: Path) -> None:
    engine = create_writer_engine(sqlite_url(tmp_path))
    assert engine.dialect.driver == "pysqlite"
    assert engine.url.database == str((tmp_path / "gateway.sqlite3").resolve())
    engine.dispose()
    with pytest.raises(ValueError, match="no synchronous driver known for mysql"):
        create_writer_engine("mysql+aiomysql://gateway@db/gateway")


def test_a_transaction_that_cannot_begin_lets_the_lock_go(tmp_path: Path) -> None:
    (tmp_path / "gateway.sqlite3").mkdir()  # no database can be opened there

    async def scenario() -> None:
        writer = WriterThread(sqlite_url(tmp_path))
        with pytest.raises(Exception, match="unable to open database file"):
            await writer.begin(0, 10)
        # Another open of the lock file conflicts with a lock still held by the writer.
        with (tmp_path / "gateway.sqlite3.writer-lock").open("rb") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        await writer.close()

    asyncio.run(scenario())


def test_retired_items_are_recorded_only_onto_the_record_the_recorder_expects(
    folder: Path,
) -> None:
    """Processes starting together each replay a ledger that retired before its record
    existed: the first part written decides which one records the rest."""
    row = {
        "item_id": "102100099996:B1/T1",
        "package_id": "102100099996:B1",
        "sender": "102100099996",
        "transaction_id": "T1",
        "business_type": "A100",
        "real_time": False,
        "payer": "102100099996",
        "payee": "104100000004",
        "amount": 10000,
        "business_date": "2026-11-23",
        "state": "settled",
        "session_id": "20261123-01",
        "reason_code": None,
        "return_of": None,
        "returned_by": None,
        "retired_through": "2026-11-23",
    }
    second = {**row, "item_id": "102100099996:B1/T2", "transaction_id": "T2"}

    async def flow() -> list[bool]:
        writer = WriterThread(sqlite_url(folder))
        outcomes = [
            await writer.record_retired_items([row], 0),  # the first process's first part
            await writer.record_retired_items([row], 0),  # another's: it finds one row there
            await writer.record_retired_items([second], 1),  # the first's next part
        ]
        await writer.close()
        return outcomes

    assert asyncio.run(flow()) == [True, False, True]
    engine = create_writer_engine(sqlite_url(folder))
    with engine.connect() as connection:
        items = [value for (value,) in connection.execute(select(retired_item.c.item_id))]
    engine.dispose()
    assert items == ["102100099996:B1/T1", "102100099996:B1/T2"]
