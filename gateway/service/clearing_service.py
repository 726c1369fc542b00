"""The clearing service: one unit of work per command, persisted before it is answered.

Each write runs in one transaction that starts with ``BEGIN IMMEDIATE``: catch up with any
commands other processes logged since (so several gateway processes can share one database),
skip a command id already in the log (idempotent), apply the command to the in-memory core,
append it to the log, commit. If the commit fails the in-memory core is rebuilt from the log,
so memory never runs ahead of what is on disk.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime

from pydantic import TypeAdapter
from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.clearing.commands import ClearingCommand
from gateway.clearing.core import ClearingCore
from gateway.clearing.events import Event
from gateway.configuration.clearing_settings import ClearingSettings
from gateway.configuration.participants import ParticipantDirectory, ParticipantsFile
from gateway.store.tables import command_log, genesis, metadata

COMMANDS: TypeAdapter[ClearingCommand] = TypeAdapter(ClearingCommand)
AfterCommand = Callable[[AsyncConnection, list[Event]], Awaitable[None]]
CATCH_UP_BATCH = 1_000
"""Log rows read per query while catching up or replaying."""


class ClearingService:
    def __init__(
        self,
        engine: AsyncEngine,
        directory: ParticipantDirectory,
        settings: ClearingSettings,
        start: Callable[[], datetime],
    ) -> None:
        self._engine = engine
        self._directory = directory
        self._settings = settings
        self._start = start
        self._core: ClearingCore | None = None
        self._sequence = 0
        self.genesis_differs = False
        """The configuration changed since the ledger started: the ledger keeps its genesis."""

    @property
    def core(self) -> ClearingCore:
        assert self._core is not None, "call open() first"
        return self._core

    async def open(self) -> None:
        """Create the tables if needed, record the genesis once, replay the log."""
        async with self._engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
            row = (await connection.execute(select(genesis))).first()
            if row is None:
                started = self._start()
                participants = self._directory.participants.model_dump_json()
                settings = self._settings.model_dump_json()
                await connection.execute(
                    insert(genesis).values(
                        id=1,
                        started_at=started.isoformat(),
                        participants=participants,
                        settings=settings,
                    )
                )
            else:
                started = datetime.fromisoformat(row.started_at)
                participants, settings = row.participants, row.settings
        self.genesis_differs = (
            participants != self._directory.participants.model_dump_json()
            or settings != self._settings.model_dump_json()
        )
        self._genesis = (started, participants, settings)
        await self._rebuild()

    async def _rebuild(self) -> None:
        started, participants, settings = self._genesis
        self._core = ClearingCore(
            ParticipantDirectory(ParticipantsFile.model_validate_json(participants)),
            ClearingSettings.model_validate_json(settings),
            started,
        )
        self._sequence = 0
        async with self._engine.connect() as connection:
            await self._catch_up(connection)

    async def _catch_up(self, connection: AsyncConnection) -> None:
        core = self.core
        while True:
            rows = (
                await connection.execute(
                    select(command_log.c.sequence, command_log.c.payload)
                    .where(command_log.c.sequence > self._sequence)
                    .order_by(command_log.c.sequence)
                    .limit(CATCH_UP_BATCH)
                )
            ).all()
            for sequence, payload in rows:
                core.execute(COMMANDS.validate_json(payload))
                self._sequence = sequence
            if len(rows) < CATCH_UP_BATCH:
                return

    async def execute(
        self, command: ClearingCommand, after: AfterCommand | None = None
    ) -> list[Event]:
        """Apply and persist one command; return its events (none for a repeated id).

        ``after`` runs inside the same transaction with the events (to write what the command
        causes: deliveries, the sender's answer), so all of it commits or none does."""
        try:
            async with self._engine.begin() as connection:
                if connection.dialect.name == "postgresql":
                    # Serialize writers as BEGIN IMMEDIATE does on SQLite.
                    await connection.execute(text("SELECT pg_advisory_xact_lock(20022)"))
                await self._catch_up(connection)
                if command.command_id in self.core.seen:
                    return []
                events = self.core.execute(command)
                result = await connection.execute(
                    insert(command_log).values(
                        command_id=command.command_id,
                        kind=command.kind,
                        issued_at=command.at.isoformat(),
                        payload=command.model_dump_json(),
                    )
                )
                sequence = result.inserted_primary_key
                if sequence is not None:
                    self._sequence = int(sequence[0])
                if after is not None:
                    await after(connection, events)
            return events
        except BaseException:
            await self._rebuild()
            raise

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def refresh(self) -> None:
        """Catch up with commands other processes logged (before a query)."""
        async with self._engine.connect() as connection:
            await self._catch_up(connection)

    async def close(self) -> None:
        await self._engine.dispose()

    async def logged_commands(self) -> int:
        async with self._engine.connect() as connection:
            return int(
                (
                    await connection.execute(select(func.count()).select_from(command_log))
                ).scalar_one()
            )


def dump_events(events: list[Event]) -> str:
    return json.dumps([event.as_dict() for event in events], default=str)
