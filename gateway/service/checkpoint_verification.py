"""Checking what the ledger derives from its log against the log.

Checkpoints and the record of retired items are derived data: the log is the record.
``verify_ledger`` replays the whole log from the genesis. When the replay reaches a
checkpoint's sequence it compares the state the log gives with the stored one, part by part,
so an operator (or an auditor) can show that a start from a checkpoint is a start from the
log; and each time the replay retires items it compares them, in order, with the rows the
writer recorded, so the transaction records of retired items are those the log gives.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.clearing.core import ClearingCore
from gateway.clearing.events import BusinessRetired
from gateway.clearing.snapshots import SNAPSHOT_FORMAT, SnapshotError, capture
from gateway.service.clearing_service import ClearingService, cyclic_collection_paused
from gateway.store.checkpoint_texts import checkpoint_text
from gateway.store.retired_items import retired_item_rows
from gateway.store.tables import checkpoint, retired_item


@dataclass(frozen=True)
class CheckpointVerdict:
    sequence: int
    business_date: str
    verdict: str
    """``matches``, or what is wrong with it."""

    @property
    def matches(self) -> bool:
        return self.verdict == "matches"


def _differences(stored: dict[str, Any], replayed: dict[str, Any]) -> list[str]:
    return [
        key for key in sorted(set(stored) | set(replayed)) if stored.get(key) != replayed.get(key)
    ]


@dataclass(frozen=True)
class RecordVerdict:
    """The record of retired items against the items the log retires, in order."""

    recorded: int
    retired: int
    """Items the replay of the log retired."""
    verdict: str
    """``matches``, or the first difference."""

    @property
    def matches(self) -> bool:
        return self.verdict == "matches"


@dataclass(frozen=True)
class LedgerVerdicts:
    checkpoints: list[CheckpointVerdict]
    retired_items: RecordVerdict

    @property
    def matches(self) -> bool:
        return self.retired_items.matches and all(verdict.matches for verdict in self.checkpoints)


class _RecordCheck:
    """Compares the rows of ``clearing_retired_item``, read in the order they were written,
    with the items the replay retires, as the replay reports them (one retirement's rows
    read at a time, through the reading engine: see ``ClearingService.replay``)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._after = 0
        self.recorded = 0
        self.retired = 0
        self.difference: str | None = None

    async def compare(self, retired: BusinessRetired) -> None:
        expected = retired_item_rows(retired)
        self.retired += len(expected)
        if self.difference is not None:
            return
        async with self._engine.connect() as connection:
            rows = (
                await connection.execute(
                    select(retired_item)
                    .where(retired_item.c.sequence > self._after)
                    .order_by(retired_item.c.sequence)
                    .limit(len(expected))
                )
            ).all()
        self.recorded += len(rows)
        for row, wanted in zip(rows, expected, strict=False):
            self._after = row.sequence
            found = {key: value for key, value in row._asdict().items() if key != "sequence"}
            if found != wanted:
                if found["item_id"] != wanted["item_id"]:
                    self.difference = (
                        f"the log retires {wanted['item_id']} where the record has "
                        f"{found['item_id']} (row {row.sequence})"
                    )
                else:
                    fields = ", ".join(_differences(found, wanted))
                    self.difference = (
                        f"{wanted['item_id']} (row {row.sequence}) differs from how the log "
                        f"ends it in {fields}"
                    )
                return
        if len(rows) < len(expected):
            self.difference = (
                f"the log retires {expected[len(rows)]['item_id']} (through "
                f"{retired.through}), which the record does not have"
            )

    async def finish(self) -> RecordVerdict:
        if self.difference is None:
            async with self._engine.connect() as connection:
                more = (
                    await connection.execute(
                        select(func.count())
                        .select_from(retired_item)
                        .where(retired_item.c.sequence > self._after)
                    )
                ).scalar_one()
            self.recorded += int(more)
            if more:
                self.difference = f"the record has {more} items more than the log retires"
        return RecordVerdict(self.recorded, self.retired, self.difference or "matches")


async def verify_ledger(service: ClearingService) -> LedgerVerdicts:
    """Replay the whole log from the genesis: every stored checkpoint, oldest first, with its
    verdict, and the verdict on the record of retired items. Everything is read through the
    reading engine, so a serving gateway goes on writing meanwhile."""
    async with service.reader.connect() as connection:
        stored = (
            await connection.execute(
                select(
                    checkpoint.c.sequence, checkpoint.c.business_date, checkpoint.c.format
                ).order_by(checkpoint.c.sequence)
            )
        ).all()
    verdicts: list[CheckpointVerdict] = []
    record = _RecordCheck(service.reader)
    core = service.genesis_core()
    position = 0

    async def replay(until: int | None) -> None:
        nonlocal position
        async for sequence, passed in service.replay(core, position, until):
            position = sequence
            for event in passed:
                if isinstance(event, BusinessRetired):
                    await record.compare(event)

    with cyclic_collection_paused():
        for sequence, business_date, layout in stored:
            await replay(sequence)
            try:
                async with service.reader.connect() as connection:
                    text, digest = await checkpoint_text(connection, sequence)
                verdict = _verdict(sequence, position, layout, text, digest, core)
            except SnapshotError as error:
                verdict = str(error)
            verdicts.append(CheckpointVerdict(sequence, business_date, verdict))
        await replay(None)
    return LedgerVerdicts(verdicts, await record.finish())


def _verdict(
    sequence: int, position: int, layout: int, text: str, digest: str, core: ClearingCore
) -> str:
    if position != sequence:
        return f"the log ends at {position}, before the checkpoint's sequence"
    if layout != SNAPSHOT_FORMAT:
        return f"layout {layout}; this release reads layout {SNAPSHOT_FORMAT}"
    if hashlib.sha256(text.encode()).hexdigest() != digest:
        return "its SHA-256 does not match its text"
    replayed = json.loads(json.dumps(capture(core)))
    differing = _differences(json.loads(text), replayed)
    if differing:
        return "differs from the log's state in " + ", ".join(differing)
    return "matches"
