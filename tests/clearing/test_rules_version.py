"""A ledger replays with the rules version it started with: an upgrade that changes a rule
never rewrites the history an existing ledger reported to the banks."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import update

from gateway.clearing.commands import AdvanceClock
from gateway.clearing.core import RULES_VERSION, ClearingCore
from gateway.service.clearing_service import ClearingService
from gateway.start_errors import StorageError
from gateway.store.database import create_engine, sqlite_url
from gateway.store.tables import genesis
from tests.clearing.scenario import BOC, ICBC, MONDAY, SETTINGS, Scenario, participants


def overnight(core: ClearingCore) -> Scenario:
    """Monday evening, an item, then the time passes to Tuesday midday in one step."""
    scenario = Scenario()
    scenario.core = core
    scenario.advance(to=scenario.at(20))
    scenario.credit(ICBC, BOC, "100.00")
    scenario.advance(to=scenario.at(12, day=1))
    return scenario


def test_version_2_closes_the_next_mornings_sessions_and_version_1_did_not() -> None:
    # 3 and 4: retirement, then in parts (tests/clearing/test_retention.py); 5: every message
    # logged (tests/gateway/test_https_gateway.py, ids first taken by a message that clears
    # nothing)
    assert RULES_VERSION == 5
    current = overnight(ClearingCore(participants(), SETTINGS, MONDAY))
    assert current.core.open_session.session_id == "20261124-03"
    second = overnight(ClearingCore(participants(), SETTINGS, MONDAY, rules=2))
    assert second.core.open_session.session_id == "20261124-03"
    first = overnight(ClearingCore(participants(), SETTINGS, MONDAY, rules=1))
    # Under version 1 the session stayed open until the next close that day (13:00).
    assert first.core.open_session.session_id == "20261124-01"
    with pytest.raises(ValueError, match="rules version 6 is not 1 to 5"):
        ClearingCore(participants(), SETTINGS, MONDAY, rules=6)


def test_a_ledger_keeps_its_rules_version_across_restarts(tmp_path: Path) -> None:
    commands = overnight(ClearingCore(participants(), SETTINGS, MONDAY)).log

    async def open_service() -> ClearingService:
        service = ClearingService(
            create_engine(sqlite_url(tmp_path)), participants(), SETTINGS, lambda: MONDAY
        )
        await service.open()
        return service

    async def scenario() -> None:
        service = await open_service()
        assert service.rules == RULES_VERSION
        for command in commands:
            await service.execute(command)
        assert service.core.open_session.session_id == "20261124-03"
        # A ledger started before versions has no version in its genesis: it replays as 1.
        async with service.engine.begin() as connection:
            await connection.execute(update(genesis).values(rules=None))
        await service.close()
        service = await open_service()
        assert service.rules == 1 and service.core.rules == 1
        assert service.core.open_session.session_id == "20261124-01"
        # Commands after the upgrade keep the ledger's version too.
        await service.execute(AdvanceClock(command_id="later", at=commands[-1].at))
        assert service.core.rules == 1
        # A ledger from a later release is refused, not replayed with rules it does not know.
        async with service.engine.begin() as connection:
            await connection.execute(update(genesis).values(rules=RULES_VERSION + 1))
        await service.close()
        with pytest.raises(StorageError) as refused:
            await open_service()
        assert str(refused.value) == (
            f"the ledger {tmp_path / 'gateway.sqlite3'} was written by a later release, with "
            f"clearing rules version 6; this release replays versions 1 to 5 (start the "
            "release that wrote it)"
        )

    asyncio.run(scenario())
