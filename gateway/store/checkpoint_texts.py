"""Reading a stored checkpoint's text back (portable SQL)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.clearing.snapshots import SnapshotError
from gateway.store.tables import checkpoint, checkpoint_part


async def checkpoint_text(connection: AsyncConnection, sequence: int) -> tuple[str, str]:
    """The text of the checkpoint of ``sequence`` (its parts joined) and the SHA-256 stored
    with it. Raises SnapshotError when a part is missing."""
    state, digest, parts = (
        await connection.execute(
            select(checkpoint.c.state, checkpoint.c.state_sha256, checkpoint.c.parts).where(
                checkpoint.c.sequence == sequence
            )
        )
    ).one()
    if parts is None:  # stored before checkpoints were stored in parts
        return str(state), str(digest)
    rows = (
        await connection.execute(
            select(checkpoint_part.c.part, checkpoint_part.c.text)
            .where(checkpoint_part.c.sequence == sequence)
            .order_by(checkpoint_part.c.part)
        )
    ).all()
    found = [int(part) for part, _ in rows]
    if found != list(range(parts)):
        missing = sorted(set(range(parts)) - set(found))
        raise SnapshotError(f"parts {', '.join(map(str, missing))} of its {parts} are missing")
    return "".join(text for _, text in rows), str(digest)
