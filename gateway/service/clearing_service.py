"""The clearing service: one unit of work per command, persisted before it is answered.

Each write runs in one transaction that starts with ``BEGIN IMMEDIATE``: catch up with any
commands other processes logged since (so several gateway processes can share one database),
skip a command id already in the log (idempotent), apply the command to the in-memory core,
append it to the log, commit. If the commit fails the in-memory core is rebuilt from the log,
so memory never runs ahead of what is on disk. The writer's transactions run on a thread of
their own (``gateway.store.writer``); reads and replay use the reading engine, whose
transactions keep no writer waiting (``gateway.store.database``).

Checkpoints: at every day switch, and after every ``checkpoint_every_commands`` commands, the
writer takes a snapshot of the core (``gateway.clearing.snapshots``) and a task stores it beside
the log: made into JSON a slice at a time and written in parts of ``checkpoint_part_bytes``,
each in a transaction of its own between the writer's, so that payments go on meanwhile. A start
restores the newest checkpoint that is whole (its SHA-256 matches, it is of this release's
layout and the ledger's rules) and replays only the commands logged after it; one that is not
is logged and passed over for the one before, down to the genesis.

Retirement: the items a command's application retires from the core are recorded (table
``clearing_retired_item``) in that command's transaction, so the operator's transaction
queries still find them; a replay retires the same items and writes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import Connection, Row, func, insert, inspect, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.clearing.commands import ClearingCommand
from gateway.clearing.core import RULES_VERSION, ClearingCore
from gateway.clearing.events import BusinessRetired, DaySwitched, Event
from gateway.clearing.snapshots import SNAPSHOT_FORMAT, SnapshotError, capture, restore
from gateway.configuration.clearing_settings import ClearingSettings
from gateway.configuration.participants import ParticipantDirectory, ParticipantsFile
from gateway.service.snapshot_text import serialized
from gateway.start_errors import StorageError
from gateway.store.checkpoint_texts import checkpoint_text
from gateway.store.database import create_reading_engine
from gateway.store.retired_items import retired_item_rows
from gateway.store.tables import (
    add_missing_columns_and_indexes,
    checkpoint,
    command_log,
    genesis,
    metadata,
    retired_item,
)
from gateway.store.write_batch import WriteBatch
from gateway.store.writer import (
    Result,
    WriterStatistics,
    WriterThread,
    WriterTransaction,
    log_after,
)

COMMANDS: TypeAdapter[ClearingCommand] = TypeAdapter(ClearingCommand)
LOG = logging.getLogger("isogw.clearing")


@dataclass(frozen=True)
class Applied:
    """What one command did: ``passed``, what the time passing up to the command caused
    (items expired at their deadline, sessions closed, the day switched), then ``own``, the
    command's own events. A command refused (``CommandRefused`` in ``own``) still lets the
    time pass: the banks are owed what ``passed`` caused either way."""

    passed: list[Event] = field(default_factory=list)
    own: list[Event] = field(default_factory=list)

    @property
    def events(self) -> list[Event]:
        return [*self.passed, *self.own]


AfterCommand = Callable[[WriteBatch, Applied], Awaitable[None]]
CommandSource = ClearingCommand | Callable[[ClearingCore], ClearingCommand | None]
Pending = tuple[CommandSource, AfterCommand | None, "asyncio.Future[list[Event]]"]
GROUP_COMMIT_LIMIT = 256
"""Commands applied in one transaction at most."""
PENDING_LIMIT = 4_096
"""Commands waiting for the writer at most; callers wait beyond that."""
CATCH_UP_BATCH = 1_000
"""Log rows read per query while catching up or replaying."""


@contextlib.contextmanager
def cyclic_collection_paused() -> Iterator[None]:
    """Restoring or replaying creates an object per item, package and session, none of them
    garbage: Python's cyclic collector, triggered by the allocations, would scan the growing
    heap again and again (measured: three quarters of a restore's time). Reference counting
    still frees what is dropped meanwhile."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


MAX_PARTS_DELETED = 100_000
"""Parts of checkpoints no longer kept deleted after a checkpoint is stored, one per
transaction, at most (what is left goes after the next)."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ClearingService:
    def __init__(
        self,
        engine: AsyncEngine,
        directory: ParticipantDirectory,
        settings: ClearingSettings,
        start: Callable[[], datetime],
        *,
        checkpoint_every_commands: int = 100_000,
        checkpoints_kept: int = 3,
        checkpoint_part_bytes: int = 1_000_000,
    ) -> None:
        self._engine = engine
        self._reader = create_reading_engine(engine.url)
        self._thread = WriterThread(engine.url)
        self._directory = directory
        self._settings = settings
        self._start = start
        self._core: ClearingCore | None = None
        self._sequence = 0
        self._pending: asyncio.Queue[Pending] = asyncio.Queue(PENDING_LIMIT)
        self._writer: asyncio.Task[None] | None = None
        self.genesis_differs = False
        """The configuration changed since the ledger started: the ledger keeps its genesis."""
        self._checkpoint_every = checkpoint_every_commands
        self._checkpoints_kept = checkpoints_kept
        self._checkpoint_part = checkpoint_part_bytes
        self._transactions = asyncio.Lock()
        """One write transaction at a time in this process: a checkpoint's parts are written
        between the writer's transactions (the lock file the processes share does not keep two
        of one process apart, and SQLite would refuse the second while the first is open)."""
        self._since_checkpoint = 0
        self._storing: asyncio.Task[int] | None = None
        self._checkpoint_due = False
        self.restored_from = 0
        """The log sequence of the checkpoint the core was last restored from (0: genesis)."""
        self.replayed = 0
        """Commands replayed on top of it at that restore."""
        self._restored_date: date | None = None
        """The business date of the core as restored, before the replay."""

    @property
    def core(self) -> ClearingCore:
        assert self._core is not None, "call open() first"
        return self._core

    async def open(self, replay: bool = True, create: bool = True) -> bool:
        """Create the tables if needed, record the genesis once, replay the log (without
        ``replay``: the ledger made ready for other processes to open, its core not built).
        Without ``create``, a database that holds no ledger yet is left as it is: False."""
        async with self._engine.begin() as connection:
            if not create:
                started_before = await connection.run_sync(
                    lambda sync: inspect(sync).has_table(genesis.name)
                )
                if (
                    not started_before
                    or (await connection.execute(select(genesis))).first() is None
                ):
                    return False
            recorded_retirements = await connection.run_sync(
                lambda sync: inspect(sync).has_table(retired_item.name)
            )
            await connection.run_sync(metadata.create_all)
            await connection.run_sync(add_missing_columns_and_indexes)
            row = (await connection.execute(select(genesis))).first()
            if row is None:
                started = self._start()
                participants = self._directory.participants.model_dump_json()
                settings = self._settings.model_dump_json()
                rules = RULES_VERSION
                await connection.execute(
                    insert(genesis).values(
                        id=1,
                        started_at=started.isoformat(),
                        participants=participants,
                        settings=settings,
                        rules=rules,
                    )
                )
            else:
                started = datetime.fromisoformat(row.started_at)
                participants, settings = row.participants, row.settings
                rules = row.rules or 1
        if rules > RULES_VERSION:
            raise StorageError(
                f"the ledger {self._engine.url.database} was written by a later release, with "
                f"clearing rules version {rules}; this release replays versions 1 to "
                f"{RULES_VERSION} (start the release that wrote it)"
            )
        # Compared as settings, not as text: a setting added by a later release (with its
        # default) is no difference.
        self.genesis_differs = (
            ParticipantsFile.model_validate_json(participants) != self._directory.participants
            or ClearingSettings.model_validate_json(settings) != self._settings
        )
        self._genesis = (started, participants, settings, rules)
        if not replay:
            return True
        await self._rebuild()
        if not recorded_retirements and self.core.retired_through is not None:
            await self._record_earlier_retirements()
        return True

    async def _record_earlier_retirements(self) -> None:
        """A ledger whose core retired business before this release recorded retired items:
        replay the log from its genesis once and record every item it retired, as the replay
        goes (each part under the writer's lock, and only onto what this process recorded, so
        that of processes starting together one records them)."""
        began = time.monotonic()
        rows: list[dict[str, Any]] = []
        recorded = 0

        async def record() -> bool:
            nonlocal recorded
            if not await self._thread.record_retired_items(rows, recorded):
                LOG.info("event=retired-items-recorded-by-another-process")
                return False
            recorded += len(rows)
            rows.clear()
            return True

        position = 0
        with cyclic_collection_paused():
            # Up to what this process restored: the rest is logged (and recorded) by others.
            async for sequence, passed in self.replay(self.genesis_core(), until=self._sequence):
                position = sequence
                for event in passed:
                    if isinstance(event, BusinessRetired):
                        rows.extend(retired_item_rows(event))
                if len(rows) >= CATCH_UP_BATCH and not await record():
                    return
        if not await record():
            return
        LOG.info(
            "event=retired-items-recorded items=%d replayed=%d seconds=%.3f",
            recorded,
            position,
            time.monotonic() - began,
        )

    async def replay(
        self, core: ClearingCore, after: int = 0, until: int | None = None
    ) -> AsyncIterator[tuple[int, list[Event]]]:
        """Apply to ``core`` the commands logged after ``after``, up to ``until`` (None: the
        log's end), in order; yield each one's sequence and what the time passing up to it
        caused. Each batch is read in a transaction of its own, so that a long replay (of a
        ledger verified while a gateway serves it) does not keep one snapshot of the database
        from being checkpointed meanwhile."""
        position = after
        while until is None or position < until:
            limit = CATCH_UP_BATCH if until is None else min(CATCH_UP_BATCH, until - position)
            async with self._reader.connect() as connection:
                rows = (await connection.execute(log_after(position, limit))).all()
            if not rows:
                return
            for sequence, payload in rows:
                if until is not None and sequence > until:
                    return
                passed, _ = core.apply(COMMANDS.validate_json(payload))
                position = sequence
                yield sequence, passed

    @property
    def rules(self) -> int:
        """The clearing rules version the ledger replays with (``RULES_VERSION``)."""
        return self._genesis[3]

    def genesis_core(self) -> ClearingCore:
        """A core as the ledger started: its genesis participants, settings and rules."""
        started, participants, settings, rules = self._genesis
        return ClearingCore(
            ParticipantDirectory(ParticipantsFile.model_validate_json(participants)),
            ClearingSettings.model_validate_json(settings),
            started,
            rules,
        )

    async def _rebuild(self) -> None:
        """The core from the newest whole checkpoint, then the log after it. Read with the
        reading engine: the other gateway processes go on writing while this one starts (a
        process restarted while the others serve), and what they write meanwhile is caught up
        by the writer's next transaction."""
        began = time.monotonic()
        with cyclic_collection_paused():
            async with self._reader.connect() as connection:
                self._core, self._sequence = await self._restored(connection)
            self.restored_from = self._sequence
            self._restored_date = self._core.business_date
            async for sequence, _ in self.replay(self._core, after=self._sequence):
                self._sequence = sequence
        self.replayed = self._sequence - self.restored_from
        self._since_checkpoint = 0
        LOG.info(
            "event=ledger-restored checkpoint=%d replayed=%d sequence=%d seconds=%.3f",
            self.restored_from,
            self.replayed,
            self._sequence,
            time.monotonic() - began,
        )

    async def _restored(self, connection: AsyncConnection) -> tuple[ClearingCore, int]:
        candidates = (
            await connection.execute(
                select(checkpoint.c.sequence, checkpoint.c.format, checkpoint.c.rules)
                .order_by(checkpoint.c.sequence.desc())
                .limit(self._checkpoints_kept)
            )
        ).all()
        for sequence, layout, rules in candidates:
            if layout != SNAPSHOT_FORMAT or rules != self.rules:
                LOG.info(
                    "event=checkpoint-passed-over sequence=%d reason=layout %d rules %d, "
                    "this release restores layout %d of rules %d",
                    sequence,
                    layout,
                    rules,
                    SNAPSHOT_FORMAT,
                    self.rules,
                )
                continue
            core = self.genesis_core()
            try:
                text, digest = await checkpoint_text(connection, sequence)
                if hashlib.sha256(text.encode()).hexdigest() != digest:
                    raise SnapshotError("its SHA-256 does not match its text")
                restore(core, json.loads(text))
            except (SnapshotError, ValueError) as error:
                LOG.warning(
                    "event=checkpoint-unusable sequence=%d reason=%s; the one before it "
                    "or the log is used",
                    sequence,
                    error,
                )
                continue
            return core, int(sequence)
        return self.genesis_core(), 0

    async def _catch_up_in(
        self, transaction: WriterTransaction, rows: list[tuple[int, str]]
    ) -> None:
        """What other processes logged since, read inside the writer's transaction (the
        first rows come with the begin)."""
        while self._replay(rows) == CATCH_UP_BATCH:
            rows = await self._thread.run(
                partial(transaction.read_log, self._sequence, CATCH_UP_BATCH)
            )

    def _replay(self, rows: Sequence[tuple[int, str] | Row[int, str]]) -> int:
        core = self.core
        for sequence, payload in rows:
            core.execute(COMMANDS.validate_json(payload))
            self._sequence = sequence
        return len(rows)

    async def execute(
        self, command: CommandSource, after: AfterCommand | None = None
    ) -> list[Event]:
        """Apply and persist one command; return its events (none for a repeated id).

        ``command`` may be a function of the (caught-up) core that returns the command, or
        None when there is nothing to clear. ``after`` runs inside the same transaction with
        the events, as ``Applied`` (to write what the command causes: deliveries, the sender's
        answer), so all of it commits or none does; it is not called for a repeated command
        id.

        Commands wait in a bounded queue for the one writer, which applies everything waiting
        in one transaction and one commit (group commit); each caller gets its answer only
        after that commit."""
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_forever())
        future: asyncio.Future[list[Event]] = asyncio.get_running_loop().create_future()
        await self._pending.put((command, after, future))
        return await future

    async def _write_forever(self) -> None:
        carried: list[Pending] = []
        while True:
            batch = carried or [await self._pending.get()]
            carried = []
            while len(batch) < GROUP_COMMIT_LIMIT and not self._pending.empty():
                batch.append(self._pending.get_nowait())
            try:
                results = await self._write(batch)
            except BaseException as error:
                await self._rebuild()
                if len(batch) == 1 or isinstance(error, asyncio.CancelledError):
                    for _, _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    if isinstance(error, asyncio.CancelledError):
                        raise
                    continue
                # One bad command must not sink the others: retry them one by one.
                for entry in batch:
                    try:
                        (events,) = await self._write([entry])
                        entry[2].set_result(events)
                    except Exception as single:
                        await self._rebuild()
                        entry[2].set_exception(single)
                continue
            # A transaction that retired business ends with the command that did (its record
            # is written with it): the commands after it go in the next transaction.
            batch, carried = batch[: len(results)], batch[len(results) :]
            for (_, _, future), events in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(events)
            self._since_checkpoint += len(batch)
            if self._since_checkpoint >= self._checkpoint_every or any(
                isinstance(event, DaySwitched) for events in results for event in events
            ):
                self._checkpoint_due = True
            if self._checkpoint_due and (self._storing is None or self._storing.done()):
                # One stored at a time; one due meanwhile is taken after the batch that
                # follows the end of the storing (the writer never waits for a storing).
                self._checkpoint()

    def store_owed_checkpoint(self) -> str | None:
        """At a gateway's start: store a checkpoint of the core as restored when one is owed,
        in a task of its own (``close`` lets it finish); why, or None. One is owed when the
        day switched after the newest checkpoint stored (the process that switched it stopped
        before its checkpoint was stored, or failed to store it), or when the replay covered
        ``checkpoint_every_commands`` commands or more: otherwise each later start would replay
        the same commands again until the next day switch."""
        if self._restored_date is None or self._storing is not None:
            return None
        if self.core.business_date != self._restored_date:
            reason = f"day-switched from {self._restored_date} to {self.core.business_date}"
        elif self.replayed >= self._checkpoint_every:
            reason = f"replayed {self.replayed} commands"
        else:
            return None
        LOG.info(
            "event=checkpoint-owed sequence=%d restored_from=%d reason=%s",
            self._sequence,
            self.restored_from,
            reason,
        )
        self._checkpoint()
        return reason

    def _checkpoint(self) -> None:
        """Take a snapshot of the core as it is now, between two of the writer's transactions
        (nothing changes the core meanwhile), and store it in a task of its own: the writer
        goes on, and ``close`` lets the task finish."""
        self._checkpoint_due = False
        self._since_checkpoint = 0
        with cyclic_collection_paused():
            state = capture(self.core)
        self._storing = asyncio.create_task(self._store_checkpoint(self._sequence, state))

    async def _store_checkpoint(self, sequence: int, state: dict[str, Any]) -> int:
        """Store a snapshot; the log sequence it covers. A failure to store it is logged: it
        costs the next start time, nothing else."""
        try:
            text = await serialized(state)
            digest = await asyncio.to_thread(_sha256, text.encode())  # hashlib lets go of the GIL
            # ASCII (json.dumps escapes the rest): a part of so many characters is as many bytes.
            size = self._checkpoint_part
            parts = [text[start : start + size] for start in range(0, len(text), size)]
            for number, part in enumerate(parts):
                async with self._transactions:
                    await self._thread.save_checkpoint_part(sequence, number, part)
            row = {
                "sequence": sequence,
                "format": SNAPSHOT_FORMAT,
                "rules": self.rules,
                "clock": state["clock"],
                "business_date": state["business_date"],
                "state": "",
                "state_sha256": digest,
                "parts": len(parts),
            }
            async with self._transactions:
                await self._thread.save_checkpoint(row, self._checkpoints_kept)
            for _ in range(MAX_PARTS_DELETED):
                async with self._transactions:
                    if not await self._thread.delete_unkept_part():
                        break
        except Exception as error:
            LOG.warning("event=checkpoint-failed sequence=%d reason=%s", sequence, error)
            return 0
        LOG.info(
            "event=checkpoint sequence=%d business_date=%s bytes=%d",
            sequence,
            state["business_date"],
            len(text),
        )
        return sequence

    async def _write(self, batch: list[Pending]) -> list[list[Event]]:
        async with self._transactions:
            return await self._write_alone(batch)

    async def _write_alone(self, batch: list[Pending]) -> list[list[Event]]:
        results: list[list[Event]] = []
        retirements: list[BusinessRetired] = []
        transaction, rows = await self._thread.begin(self._sequence, CATCH_UP_BATCH)
        try:
            await self._catch_up_in(transaction, rows)
            writes = WriteBatch(
                lambda work: self._thread.run(partial(work, transaction.connection))
            )
            for source, after, _ in batch:
                command = source(self.core) if callable(source) else source
                if command is None:
                    if after is not None:
                        await after(writes, Applied())
                    results.append([])
                    continue
                if command.command_id in self.core.seen:
                    results.append([])
                    continue
                applied = Applied(*self.core.apply(command))
                retiring = [event for event in applied.passed if isinstance(event, BusinessRetired)]
                for event in retiring:
                    writes.retired.extend(retired_item_rows(event))
                retirements += retiring
                writes.log.append(
                    {
                        "command_id": command.command_id,
                        "kind": command.kind,
                        "issued_at": command.at.isoformat(),
                        "payload": command.model_dump_json(),
                    }
                )
                if after is not None:
                    await after(writes, applied)
                results.append(applied.events)
                if retiring:
                    # The core retires at most retention.items_per_tick items at a tick; ticks
                    # waiting together would retire in one transaction what they each may.
                    break
            last = await self._thread.run(partial(transaction.commit, writes))
            self._thread.statistics.commands += len(results)
        except BaseException:
            await self._thread.run(transaction.abort)
            raise
        if last is not None:
            self._sequence = last
        for retired in retirements:
            LOG.info(
                "event=business-retired through=%s items=%d packages=%d sessions=%d "
                "command_ids=%d complete=%s",
                retired.through,
                len(retired.items),
                retired.packages,
                retired.sessions,
                retired.command_ids,
                "yes" if retired.complete else "no",
            )
        return results

    async def write_apart(self, work: Callable[[Connection], Result]) -> Result:
        """``work``, a function of a connection run on the writer's thread, in a transaction
        of its own between the writer's, under the lock the gateway processes share (a write
        outside the clearing that should not wait in SQLite's busy handler)."""
        async with self._transactions:
            return await self._thread.alone(work)

    async def catch_up(self) -> None:
        """Bring the in-memory core up to date with what every gateway process committed
        (through the writer, which replays the log under the lock the processes share)."""
        await self.execute(lambda core: None)

    async def checkpoint_stored(self) -> None:
        """Wait until the checkpoint being stored, if any, is stored (or has failed)."""
        if self._storing is not None:
            await self._storing

    @property
    def sequence(self) -> int:
        """The last command of the log the core has applied."""
        return self._sequence

    async def newest_checkpoint(self) -> int:
        """The log sequence of the newest checkpoint stored (0: none)."""
        async with self._reader.connect() as connection:
            newest = (await connection.execute(select(func.max(checkpoint.c.sequence)))).scalar()
        return int(newest or 0)

    @property
    def writer_statistics(self) -> WriterStatistics:
        return self._thread.statistics

    @property
    def engine(self) -> AsyncEngine:
        """For writes outside the clearing writer (each transaction an immediate one)."""
        return self._engine

    @property
    def reader(self) -> AsyncEngine:
        """For reads: deferred transactions, which keep no writer waiting."""
        return self._reader

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
        if self._storing is not None:
            await self._storing  # a checkpoint being stored is finished (it catches its errors)
            self._storing = None
        await self._thread.close()
        await self._engine.dispose()
        await self._reader.dispose()

    async def logged_commands(self) -> int:
        async with self._reader.connect() as connection:
            return int(
                (
                    await connection.execute(select(func.count()).select_from(command_log))
                ).scalar_one()
            )
