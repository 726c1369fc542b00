"""The clearing writer's transactions, each phase in one hop to a thread of its own.

Through aiosqlite every DBAPI call (cursor, execute, fetch, close, begin, commit, the pool's
reset) is a separate hop to its thread and back to the event loop: about twenty for one group
commit, which cost more than the clearing itself. The writer instead holds one synchronous
SQLAlchemy connection on one dedicated thread and runs each phase there at once: begin (``BEGIN
IMMEDIATE``) and read what other processes logged; then, on the event loop, apply the commands
and build what they cause; then insert everything and commit. Two or three hops a transaction.

Several gateway processes on one SQLite file take turns through an exclusive ``flock`` on a
lock file beside it, taken before ``BEGIN IMMEDIATE``: the kernel wakes the next writer the
moment the lock is free, where SQLite's busy handler would poll in growing sleeps (measured:
a p99 of 3 s with two processes).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import URL, Connection, Engine, Select, delete, func, insert, select

from gateway.store.database import create_writer_engine
from gateway.store.tables import checkpoint, checkpoint_part, command_log, retired_item
from gateway.store.write_batch import WriteBatch

Result = TypeVar("Result")


@dataclass
class WriterStatistics:
    """What the writer has done in this process (for /metrics): how long it waited for the
    lock other processes share, and how long it held it."""

    transactions: int = 0
    commands: int = 0
    lock_wait_seconds: float = 0.0
    lock_held_seconds: float = 0.0


def log_after(sequence: int, limit: int) -> Select[int, str]:
    """The command log rows after ``sequence``, oldest first, at most ``limit``."""
    return (
        select(command_log.c.sequence, command_log.c.payload)
        .where(command_log.c.sequence > sequence)
        .order_by(command_log.c.sequence)
        .limit(limit)
    )


class WriterTransaction:
    """One open write transaction; every method runs on the writer thread."""

    def __init__(
        self, engine: Engine, lock: int | None, statistics: WriterStatistics | None = None
    ) -> None:
        self._lock = lock
        self._statistics = statistics or WriterStatistics()
        asked = time.monotonic()
        if lock is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        self._locked_at: float | None = time.monotonic()
        self._statistics.lock_wait_seconds += self._locked_at - asked
        connection: Connection | None = None
        try:
            connection = engine.connect()
            self._transaction = connection.begin()
        except BaseException:
            if connection is not None:
                with contextlib.suppress(Exception):
                    connection.close()  # rolls back whatever began
            self._unlock()
            raise
        self.connection: Connection = connection

    def read_log(self, after: int, limit: int) -> list[tuple[int, str]]:
        return [
            (int(row[0]), str(row[1])) for row in self.connection.execute(log_after(after, limit))
        ]

    def save_checkpoint(self, row: dict[str, object], kept: int) -> None:
        """Add a checkpoint (unless one of its sequence is there; its parts are written
        already) and delete all but the ``kept`` newest (their parts: ``delete_unkept_part``)."""
        sequence = row["sequence"]
        present = self.connection.execute(
            select(checkpoint.c.sequence).where(checkpoint.c.sequence == sequence)
        ).first()
        if present is None:
            self.connection.execute(insert(checkpoint).values(**row))
        newest = select(checkpoint.c.sequence).order_by(checkpoint.c.sequence.desc()).limit(kept)
        kept_sequences = [value for (value,) in self.connection.execute(newest)]
        self.connection.execute(
            delete(checkpoint).where(checkpoint.c.sequence.not_in(kept_sequences))
        )

    def delete_unkept_part(self) -> bool:
        """Delete one part of a checkpoint no longer kept, or of an older one whose storing
        stopped before its row was written (parts above the newest checkpoint may be another
        process's, being stored); False when there is none."""
        newest = select(func.max(checkpoint.c.sequence)).scalar_subquery()
        found = self.connection.execute(
            select(checkpoint_part.c.sequence, checkpoint_part.c.part)
            .where(
                checkpoint_part.c.sequence.not_in(select(checkpoint.c.sequence)),
                checkpoint_part.c.sequence < newest,
            )
            .limit(1)
        ).first()
        if found is None:
            return False
        self.connection.execute(
            delete(checkpoint_part).where(
                (checkpoint_part.c.sequence == found.sequence)
                & (checkpoint_part.c.part == found.part)
            )
        )
        return True

    def save_checkpoint_part(self, sequence: int, part: int, text: str) -> None:
        """Write one part of a checkpoint's text (again, if a storing that stopped wrote it)."""
        key = (checkpoint_part.c.sequence == sequence) & (checkpoint_part.c.part == part)
        self.connection.execute(delete(checkpoint_part).where(key))
        self.connection.execute(
            insert(checkpoint_part).values(sequence=sequence, part=part, text=text)
        )

    def commit(self, writes: WriteBatch | None = None) -> int | None:
        """Insert the batch and commit; the last command log sequence written. On failure
        the transaction is rolled back before the lock is let go."""
        try:
            last = None if writes is None else writes.flush(self.connection)
            self._transaction.commit()
        except BaseException:
            self.abort()
            raise
        self.connection.close()
        self._unlock()
        return last

    def abort(self) -> None:
        # A commit that failed part-way has already ended the transaction (closing the
        # connection then rolls back whatever is left).
        with contextlib.suppress(Exception):
            if self._transaction.is_active:
                self._transaction.rollback()
        with contextlib.suppress(Exception):
            self.connection.close()
        self._unlock()

    def _unlock(self) -> None:
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock = None
        if self._locked_at is not None:
            self._statistics.transactions += 1
            self._statistics.lock_held_seconds += time.monotonic() - self._locked_at
            self._locked_at = None


def _abort_begun(begun: Future[tuple[WriterTransaction, list[tuple[int, str]]]]) -> None:
    if not begun.cancelled() and begun.exception() is None:
        begun.result()[0].abort()


class WriterThread:
    def __init__(self, url: str | URL) -> None:
        self._engine = create_writer_engine(url)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clearing-writer")
        self.statistics = WriterStatistics()
        database = self._engine.url.database
        self._lock: int | None = None
        if self._engine.dialect.name == "sqlite" and database and database != ":memory:":
            self._lock = os.open(f"{database}.writer-lock", os.O_RDWR | os.O_CREAT, 0o600)

    async def run(self, function: Callable[[], Result]) -> Result:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function)

    async def begin(
        self, after: int, limit: int
    ) -> tuple[WriterTransaction, list[tuple[int, str]]]:
        """Begin and read the log after ``after`` in one hop to the writer thread (the first
        catch-up read costs no hop of its own)."""

        def begin_and_read() -> tuple[WriterTransaction, list[tuple[int, str]]]:
            transaction = WriterTransaction(self._engine, self._lock, self.statistics)
            try:
                return transaction, transaction.read_log(after, limit)
            except BaseException:
                transaction.abort()
                raise

        begun = self._executor.submit(begin_and_read)
        try:
            return await asyncio.wrap_future(begun)
        except asyncio.CancelledError:
            # Nobody will use this transaction: end it as soon as it has begun (a writer
            # waiting for the lock is cancelled at shutdown), so the lock is let go.
            begun.add_done_callback(_abort_begun)
            raise

    async def save_checkpoint(self, row: dict[str, object], kept: int) -> None:
        """Write a checkpoint's row (after its parts) in a transaction of its own, under the
        lock the processes share."""
        await self._alone(lambda transaction: transaction.save_checkpoint(row, kept))

    async def save_checkpoint_part(self, sequence: int, part: int, text: str) -> None:
        """Write one part of a checkpoint's text in a transaction of its own, under the lock
        the processes share: the writer's transactions go between two parts."""
        await self._alone(
            lambda transaction: transaction.save_checkpoint_part(sequence, part, text)
        )

    async def delete_unkept_part(self) -> bool:
        """Delete one part of a checkpoint no longer kept, in a transaction of its own under
        the lock the processes share; False when there is none."""
        return await self._alone(lambda transaction: transaction.delete_unkept_part())

    async def alone(self, work: Callable[[Connection], Result]) -> Result:
        """``work``, a function of a connection, in a transaction of its own under the lock
        the processes share."""
        return await self._alone(lambda transaction: work(transaction.connection))

    async def _alone(self, work: Callable[[WriterTransaction], Result]) -> Result:
        def run() -> Result:
            transaction = WriterTransaction(self._engine, self._lock, self.statistics)
            try:
                result = work(transaction)
            except BaseException:
                transaction.abort()
                raise
            transaction.commit()
            return result

        return await self.run(run)

    async def record_retired_items(self, rows: list[dict[str, Any]], after: int) -> bool:
        """Add ``rows`` to the record of retired items if it holds ``after`` rows, in a
        transaction of its own under the lock the processes share; False (nothing written)
        when it holds another number: another process is recording them."""

        def record(connection: Connection) -> bool:
            present = connection.execute(select(func.count()).select_from(retired_item))
            if present.scalar_one() != after:
                return False
            if rows:
                connection.execute(insert(retired_item), rows)
            return True

        return await self.alone(record)

    async def close(self) -> None:
        await asyncio.to_thread(self._executor.shutdown, wait=True)
        self._engine.dispose()
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None
