"""Every command is idempotent by its id; after a restart, queues, open sessions and pending
deadlines continue exactly where they stopped."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

from gateway.clearing.core import ClearingCore
from gateway.service.clearing_service import ClearingService
from gateway.store.database import create_engine, sqlite_url
from tests.clearing.scenario import BOC, CCB, ICBC, MONDAY, SETTINGS, Scenario, participants


def busy_day() -> Scenario:
    """A day with queued items, pending deadlines, closed and open sessions, a shortfall."""
    scenario = Scenario(
        directory=participants(**{CCB: ("20000.00", "60000.00", "30000.00", "10000.00")})
    )
    scenario.credit(ICBC, BOC, "150000.00")  # queued
    scenario.credit(CCB, BOC, "12000.00")
    package, _ = scenario.submit("B100", BOC, ICBC, (ICBC, BOC, "40.00"), deadline_days=1)
    scenario.submit("C100", ICBC, BOC, (ICBC, BOC, "5.00"))  # pending 20 s deadline
    scenario.advance(to=scenario.at(10, 0, 5))
    scenario.receipt(package, ICBC, T1=True)
    scenario.advance(to=scenario.at(11, 30))
    scenario.credit(BOC, ICBC, "80000.00")
    scenario.advance(to=scenario.at(17, 1))
    scenario.fund(CCB, "5000.00")
    scenario.credit(ICBC, CCB, "3.00")
    scenario.advance(days=1, hours=1)
    return scenario


def test_replaying_a_command_changes_nothing() -> None:
    scenario = busy_day()
    before = scenario.core.fingerprint()
    for command in scenario.log:
        assert scenario.core.execute(command) == []
    assert scenario.core.fingerprint() == before


def test_replaying_the_log_rebuilds_the_same_state() -> None:
    scenario = busy_day()
    fresh = ClearingCore(
        participants(**{CCB: ("20000.00", "60000.00", "30000.00", "10000.00")}), SETTINGS, MONDAY
    )
    for command in scenario.log:
        fresh.execute(command)
    assert fresh.fingerprint() == scenario.core.fingerprint()


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


async def service_at(folder: Path) -> ClearingService:
    directory = participants(**{CCB: ("20000.00", "60000.00", "30000.00", "10000.00")})
    service = ClearingService(
        create_engine(sqlite_url(folder)), directory, SETTINGS, lambda: MONDAY
    )
    await service.open()
    return service


def test_restart_in_the_middle_continues_like_an_uninterrupted_run(tmp_path: Path) -> None:
    commands = busy_day().log
    middle = len(commands) // 2

    async def interrupted() -> tuple[object, ...]:
        service = await service_at(tmp_path / "interrupted")
        for command in commands[:middle]:
            await service.execute(command)
        await service.close()  # the process stops here
        service = await service_at(tmp_path / "interrupted")
        assert service.core.netting.queues[ICBC]  # the queue is back
        for command in commands[middle:]:
            await service.execute(command)
        fingerprint = service.core.fingerprint()
        await service.close()
        return fingerprint

    async def uninterrupted() -> tuple[object, ...]:
        service = await service_at(tmp_path / "straight")
        for command in commands:
            await service.execute(command)
        fingerprint = service.core.fingerprint()
        await service.close()
        return fingerprint

    (tmp_path / "interrupted").mkdir()
    (tmp_path / "straight").mkdir()
    assert run(interrupted()) == run(uninterrupted())


def test_a_pending_deadline_fires_after_a_restart(tmp_path: Path) -> None:
    scenario = Scenario()
    package, _ = scenario.submit("C100", ICBC, BOC, (ICBC, BOC, "5.00"))

    async def flow() -> str:
        service = await service_at(tmp_path)
        await service.execute(scenario.log[0])
        await service.close()
        service = await service_at(tmp_path)
        scenario.now += timedelta(seconds=25)
        from gateway.clearing.commands import AdvanceClock

        await service.execute(AdvanceClock(command_id="tick-after-restart", at=scenario.now))
        state = service.core.items[f"{package}/T1"].state
        await service.close()
        return state

    assert run(flow()) == "expired"


def test_the_service_skips_a_repeated_command(tmp_path: Path) -> None:
    scenario = Scenario()
    scenario.credit(ICBC, BOC, "1.00")

    async def flow() -> tuple[int, list[object]]:
        service = await service_at(tmp_path)
        await service.execute(scenario.log[0])
        again = await service.execute(scenario.log[0])
        count = await service.logged_commands()
        await service.close()
        return count, again

    assert run(flow()) == (1, [])
