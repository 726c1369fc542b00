"""Retirement (rules version 3): the core forgets finished business ``retention.business_days``
business days after its end of day, so that its memory and its checkpoints stay bounded over a
five-year ledger. What can still change is kept; a reference to what is retired is refused
NOOR with a text that says so; a ledger of an earlier rules version keeps everything."""

from __future__ import annotations

from datetime import date, datetime, time

from gateway.clearing.core import ClearingCore
from gateway.clearing.events import BusinessRetired, CommandRefused, EndOfDay
from tests.clearing.scenario import (
    BOC,
    CCB,
    ICBC,
    MONDAY,
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
