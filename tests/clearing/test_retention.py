"""Retirement (rules version 3): the core forgets finished business ``retention.business_days``
business days after its end of day, so that its memory and its checkpoints stay bounded over a
five-year ledger. What can still change is kept; a reference to what is retired is refused
NOOR with a text that says so; a ledger of an earlier rules version keeps everything. Rules
version 4 retires the same business, ``retention.items_per_tick`` items at each tick of the
clock, never before a payment."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import pytest

from gateway.clearing.commands import AdvanceClock
from gateway.clearing.core import ClearingCore
from gateway.clearing.events import BusinessRetired, CommandRefused, EndOfDay
from gateway.operator_cli import status
from gateway.service.clearing_service import ClearingService
from gateway.store.database import create_engine, sqlite_url
from gateway.store.write_batch import WriteBatch
from tests.clearing.scenario import (
    BOC,
    CCB,
    ICBC,
    MONDAY,
    SETTINGS,
    ZONE,
    Scenario,
    changes,
    participants,
)
from tests.clearing.test_clearing_properties import KEEPING_ONE_DAY

TUESDAY = date(2026, 11, 24)


def three_days(rules: int = 3) -> tuple[Scenario, dict[str, str]]:
    """Monday: a credit that settles, a return of another, a debit left unanswered (T+3);
    Tuesday: a credit; both days switched; Wednesday morning (the events of its first command
    are ``scenario.take_events()``)."""
    scenario = Scenario(settings=KEEPING_ONE_DAY)
    scenario.core = ClearingCore(participants(), KEEPING_ONE_DAY, MONDAY, rules)
    names = {
        "settled": scenario.credit(ICBC, BOC, "100.00"),
        "returned": scenario.credit(CCB, BOC, "30.00"),
    }
    scenario.advance(to=scenario.at(10, 30))
    scenario.return_items(BOC, names["returned"])
    names["return"] = f"{scenario.log[-1].return_id}/T1"
    package, _ = scenario.submit("B100", BOC, ICBC, (ICBC, BOC, "40.00"), deadline_days=3)
    names["debit"] = f"{package}/T1"
    scenario.advance(to=scenario.at(17, 1))  # Monday's day switch and end of day
    names["tuesday"] = scenario.credit(BOC, CCB, "50.00")  # after the switch: Tuesday's
    scenario.advance(to=scenario.at(17, 1, day=1))  # Tuesday's: Monday is now one business day old
    scenario.take_events()
    scenario.advance(to=scenario.at(9, 0, day=1))  # the first command after it retires Monday
    return scenario, names


def test_finished_business_of_a_day_is_retired_after_the_days_kept() -> None:
    scenario, names = three_days()
    core = scenario.core
    assert core.retired_through == date(2026, 11, 23)
    # Monday's finished items are gone (a return is a package of its own); the unanswered
    # debit, still able to change, stays with its package; Tuesday's credit stays.
    assert sorted(core.items) == sorted([names["debit"], names["tuesday"]])
    assert sorted(core.packages) == sorted(name.split("/")[0] for name in core.items)
    assert core.returns == {}
    assert sorted(core.sessions) == [
        "20261124-01",
        "20261124-02",
        "20261124-03",
        "20261124-04",
        "20261124-05",
        "20261124-06",
        "20261124-07",
        "20261125-01",
    ]
    assert set(core.seen.values()) == {TUESDAY, date(2026, 11, 25)}
    assert core.reported_days == [TUESDAY]


def test_the_items_retired_are_reported_as_they_ended_before_the_command() -> None:
    """The record of retired items (``clearing_retired_item``) is written from this event."""
    scenario, names = three_days()
    retired, *others = scenario.take_events()
    assert isinstance(retired, BusinessRetired)
    assert not any(isinstance(event, BusinessRetired) for event in others)
    ended = {item.item_id: (item.state.value, item.business_date) for item in retired.items}
    monday = date(2026, 11, 23)
    assert ended == {
        names["settled"]: ("settled", monday),
        names["returned"]: ("returned", monday),
        names["return"]: ("settled", monday),
    }
    assert (retired.through, retired.packages, retired.sessions) == (monday, 3, 7)
    # Monday's commands: those before its day switch, and the one that switched it.
    switched = next(
        index
        for index, command in enumerate(scenario.log)
        if command.at > datetime.combine(monday, time(17), ZONE)
    )
    assert retired.command_ids == switched + 1
    assert retired.as_dict() == {
        "kind": "business-retired",
        "through": monday,
        "items": 3,
        "packages": 3,
        "sessions": 7,
        "command_ids": retired.command_ids,
        "complete": True,
    }


def test_a_reference_to_retired_business_is_refused_as_unknown() -> None:
    scenario, names = three_days()
    events = scenario.return_items(BOC, names["settled"])
    refused = [event for event in events if isinstance(event, CommandRefused)]
    assert [(event.code, event.text) for event in refused] == [
        (
            "NOOR",
            f"{names['settled']} is not known: never received, or finished on a business day "
            "up to 2026-11-23 and retired (kept 1 business days after their end of day: "
            "clearing setting retention.business_days)",
        )
    ]
    package = names["settled"].split("/")[0]
    events = scenario.cancel(ICBC, package)
    assert [event.code for event in events if isinstance(event, CommandRefused)] == ["NOOR"]


def test_what_is_kept_still_works_and_the_next_end_of_day_is_whole() -> None:
    scenario, names = three_days()
    package = names["debit"].split("/")[0]
    assert changes(scenario.receipt(package, ICBC, T1=True)) == [(names["debit"], "netted", None)]
    scenario.return_items(CCB, names["tuesday"])  # Tuesday's business is still kept
    events = scenario.advance(to=scenario.at(17, 1))
    (report,) = [event for event in events if isinstance(event, EndOfDay)]
    assert report.business_date == date(2026, 11, 25)
    assert report.balanced
    # Wednesday's figures: the return, settled; the debit netted today came on Monday (its
    # business date), so it is not in them, and nothing retired is either.
    assert report.reconciliation[CCB] == {"A100": {"settled": [1, 5000]}}
    assert ICBC not in report.reconciliation


def test_a_ledger_of_rules_version_2_keeps_everything() -> None:
    scenario, names = three_days(rules=2)
    assert scenario.core.retired_through is None
    assert set(names.values()) <= set(scenario.core.items)
    assert scenario.core.reported_days == [date(2026, 11, 23), TUESDAY]


def retired_until_complete(scenario: Scenario) -> list[BusinessRetired]:
    """The retirement events of the command ``three_days`` ended with and of the ticks after
    it, a minute apart, until the core has retired all it can."""
    retired = [event for event in scenario.take_events() if isinstance(event, BusinessRetired)]
    for _ in range(20):
        if scenario.core.retire_through is None:
            return retired
        events = scenario.advance(minutes=1)
        retired += [event for event in events if isinstance(event, BusinessRetired)]
    raise AssertionError("retirement did not complete")


def kept(core: ClearingCore) -> tuple[Any, ...]:
    return (
        sorted(core.items),
        sorted(core.packages),
        sorted(core.receipts),
        core.returns,
        sorted(core.sessions),
        sorted(set(core.seen.values())),
        core.reported_days,
        core.retired_through,
    )


def test_version_4_retires_the_same_business_a_part_at_each_tick() -> None:
    """Kept one business day, one item (and one command id) at each tick: Monday's
    three finished items one at a time, the unanswered debit passed over (it can still
    change), Monday's six command ids one at a time, then its return and settled sessions."""
    scenario, names = three_days(rules=4)
    retired = retired_until_complete(scenario)
    assert [
        ([item.item_id for item in event.items], event.command_ids, event.complete)
        for event in retired
    ] == [
        ([names["settled"]], 0, False),
        ([names["returned"]], 0, False),
        ([names["return"]], 0, False),
        *[([], 1, False)] * 6,
        ([], 0, True),
    ]
    assert [event.sessions for event in retired] == [0] * 9 + [7]
    assert {event.through for event in retired} == {date(2026, 11, 23)}
    assert [item.state.value for event in retired for item in event.items] == [
        "settled",
        "returned",
        "settled",
    ]
    all_at_once, _ = three_days(rules=3)
    assert kept(scenario.core) == kept(all_at_once.core)


def test_version_4_never_retires_before_a_payment() -> None:
    """Between two ticks of a retirement, a payment (or any command but a tick) goes without
    any; what the first tick retired is already refused as retired."""
    scenario, names = three_days(rules=4)
    core = scenario.core
    assert core.retire_through == core.retired_through == date(2026, 11, 23)
    scenario.take_events()  # the tick three_days ended with retired the first item
    held = len(core.items)
    scenario.credit(ICBC, CCB, "60.00")
    refused = scenario.return_items(BOC, names["settled"])
    events = scenario.take_events()
    assert not any(isinstance(event, BusinessRetired) for event in events)
    assert len(core.items) == held + 1
    assert [(event.code, event.text) for event in refused if isinstance(event, CommandRefused)] == [
        (
            "NOOR",
            f"{names['settled']} is not known: never received, or finished on a business day "
            "up to 2026-11-23 and retired (kept 1 business days after their end of day: "
            "clearing setting retention.business_days)",
        )
    ]
    [retired] = [
        event for event in scenario.advance(minutes=1) if isinstance(event, BusinessRetired)
    ]
    assert [item.item_id for item in retired.items] == [names["returned"]]


def test_the_operator_status_shows_how_far_retirement_has_gone() -> None:
    scenario, _ = three_days(rules=4)
    first = status(scenario.core)
    assert (first["retired_through"], first["retiring_through"]) == ("2026-11-23", "2026-11-23")
    retired_until_complete(scenario)
    done = status(scenario.core)
    assert (done["retired_through"], done["retiring_through"]) == ("2026-11-23", None)
    assert done["items_in_memory"] == len(scenario.core.items) == first["items_in_memory"] - 2


def test_version_4_retires_a_package_whole_even_over_the_bound() -> None:
    """Two items at each tick: a package of three goes whole, alone."""
    settings = SETTINGS.model_copy(
        update={
            "retention": SETTINGS.retention.model_copy(
                update={"business_days": 1, "items_per_tick": 2}
            )
        }
    )
    scenario = Scenario(settings=settings)
    package, _ = scenario.submit(
        "A100", ICBC, BOC, (ICBC, BOC, "1.00"), (ICBC, BOC, "2.00"), (ICBC, BOC, "3.00")
    )
    single = scenario.credit(CCB, BOC, "4.00")
    scenario.advance(to=scenario.at(17, 1))
    scenario.advance(to=scenario.at(17, 1, day=1))
    scenario.take_events()
    scenario.advance(to=scenario.at(9, 0, day=1))
    retired = retired_until_complete(scenario)
    assert [[item.item_id for item in event.items] for event in retired][:2] == [
        [f"{package}/T1", f"{package}/T2", f"{package}/T3"],
        [single],
    ]
    assert retired[-1].complete and not any(event.complete for event in retired[:-1])
    assert not set(scenario.core.items) & {single, f"{package}/T1"}


def test_a_transaction_of_the_service_retires_at_one_tick_at_most(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twelve ticks waiting together after the end of day that decides a retirement: the
    writer would commit them in one transaction, each retiring its part; it ends a transaction
    with the tick that retired, so each one stays short."""
    scenario, _ = three_days(rules=4)
    commands = scenario.log[:-1]  # up to Tuesday's end of day: nothing retired yet
    flushes: list[tuple[int, int]] = []
    flush = WriteBatch.flush

    def counted(self: WriteBatch, connection: Any) -> int | None:
        flushes.append((len(self.log), len(self.retired)))
        return flush(self, connection)

    monkeypatch.setattr(WriteBatch, "flush", counted)
    wednesday = scenario.log[-1].at

    async def flow() -> list[list[Any]]:
        service = ClearingService(
            create_engine(sqlite_url(tmp_path)), participants(), KEEPING_ONE_DAY, lambda: MONDAY
        )
        await service.open()
        for command in commands:
            await service.execute(command)
        flushes.clear()
        waiting = [
            service.execute(AdvanceClock(command_id=f"waiting-{number}", at=wednesday))
            for number in range(12)
        ]
        results = await asyncio.gather(*waiting)
        await service.close()
        return results

    results = asyncio.run(flow())
    retired = [
        event for events in results for event in events if isinstance(event, BusinessRetired)
    ]
    assert [event.complete for event in retired] == [False] * 9 + [True]
    assert sum(logged for logged, _ in flushes) == 12
    # Ten commands retired something (three items, six command ids, the rest): ten
    # transactions at least, none retiring more than the one item allowed.
    assert len(flushes) >= 10
    assert max(rows for _, rows in flushes) == 1
    assert sum(rows for _, rows in flushes) == 3
