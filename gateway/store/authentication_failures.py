"""Consecutive authentication failures per source, kept in the ledger's database so that every
gateway process adds to the same count (the kernel spreads one source's connections over the
processes). Counted inside the clearing writer's transaction: processes take turns, so each
count is exact and the alarm is raised once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store.tables import authentication_failure as table


def count_failure(
    connection: Connection, source: str, at: datetime, reason: str, max_sources: int
) -> int:
    """One more failure for ``source`` (inside the open write transaction); its new count.
    At most ``max_sources`` sources are kept: a new one pushes out the one that failed least
    recently, so a flood of new addresses cannot wipe the count of one that keeps failing."""
    values = {"last_at": at.isoformat(), "last_reason": reason[:500]}
    changed = connection.execute(
        update(table)
        .where(table.c.source == source)
        .values(consecutive=table.c.consecutive + 1, **values)
    ).rowcount
    if not changed:
        kept = connection.execute(select(func.count()).select_from(table)).scalar_one()
        if kept >= max_sources:
            oldest = select(table.c.source).order_by(table.c.last_at).limit(kept - max_sources + 1)
            connection.execute(delete(table).where(table.c.source.in_(oldest)))
        connection.execute(insert(table).values(source=source, consecutive=1, **values))
    return int(
        connection.execute(select(table.c.consecutive).where(table.c.source == source)).scalar_one()
    )


def clear_failures(connection: Connection, source: str) -> None:
    connection.execute(delete(table).where(table.c.source == source))


async def failing(connection: AsyncConnection, source: str) -> int:
    """The consecutive failures counted for ``source`` (0 when none)."""
    found = await connection.execute(select(table.c.consecutive).where(table.c.source == source))
    return int(found.scalar_one_or_none() or 0)
