"""Checking the stored checkpoints against the log they were taken from.

A checkpoint is derived data: the log is the record. ``verify_checkpoints`` replays the whole
log from the genesis, and when the replay reaches a checkpoint's sequence it compares the
state the log gives with the stored one, part by part, so an operator (or an auditor) can show
that a start from a checkpoint is a start from the log.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from gateway.clearing.core import ClearingCore
from gateway.clearing.snapshots import SNAPSHOT_FORMAT, capture
from gateway.service.clearing_service import COMMANDS, ClearingService, cyclic_collection_paused
from gateway.store.tables import checkpoint
from gateway.store.writer import log_after

REPLAY_BATCH = 1_000
"""Log rows read per query while replaying."""


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


async def verify_checkpoints(service: ClearingService) -> list[CheckpointVerdict]:
    """Every stored checkpoint, oldest first, with its verdict."""
    async with service.engine.connect() as connection:
        stored = (
            await connection.execute(
                select(
                    checkpoint.c.sequence,
                    checkpoint.c.business_date,
                    checkpoint.c.format,
                    checkpoint.c.state,
                    checkpoint.c.state_sha256,
                ).order_by(checkpoint.c.sequence)
            )
        ).all()
        verdicts: list[CheckpointVerdict] = []
        core = service.genesis_core()
        position = 0
        with cyclic_collection_paused():
            for sequence, business_date, layout, text, digest in stored:
                while position < sequence:
                    rows = (
                        await connection.execute(
                            log_after(position, min(REPLAY_BATCH, sequence - position))
                        )
                    ).all()
                    if not rows:
                        break
                    for row_sequence, payload in rows:
                        core.execute(COMMANDS.validate_json(payload))
                        position = row_sequence
                verdicts.append(
                    CheckpointVerdict(
                        sequence,
                        business_date,
                        _verdict(sequence, position, layout, text, digest, core),
                    )
                )
    return verdicts


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
