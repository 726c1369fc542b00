"""Deadlines: T+N for debit receipts, 20 s for real-time; expiry rejects with its code, and a
late answer is refused. The clock is passed in: nothing sleeps."""

from __future__ import annotations

from datetime import timedelta

from gateway.clearing.items import ItemState
from tests.clearing.scenario import BOC, ICBC, Scenario, changes

S = ItemState


def test_real_time_item_expires_after_twenty_seconds_with_ab05() -> None:
    scenario = Scenario()
    package, _ = scenario.submit("C100", ICBC, BOC, (ICBC, BOC, "10.00"))
    scenario.advance(seconds=19.999)
    assert scenario.state(f"{package}/T1") is S.AWAITING_RECEIPT
    events = scenario.advance(seconds=0.001)
    assert changes(events) == [(f"{package}/T1", S.EXPIRED, "AB05")]


def test_late_answer_after_expiry_is_refused_tm01() -> None:
    scenario = Scenario()
    package, _ = scenario.submit("D100", BOC, ICBC, (ICBC, BOC, "10.00"))
    scenario.advance(seconds=21)
    events = scenario.receipt(package, ICBC, T1=True)
    assert [event.code for event in events if event.kind == "command-refused"] == ["TM01"]
    assert scenario.state(f"{package}/T1") is S.EXPIRED


def test_debit_receipt_deadline_is_the_day_switch_of_t_plus_n() -> None:
    scenario = Scenario()  # Monday 2026-11-23 09:00
    package, _ = scenario.submit("B100", BOC, ICBC, (ICBC, BOC, "10.00"), deadline_days=3)
    deadline = scenario.core.items[f"{package}/T1"].deadline
    assert deadline == scenario.at(17, day=3)  # Thursday 17:00
    scenario.advance(to=deadline - timedelta(seconds=1))
    assert scenario.state(f"{package}/T1") is S.AWAITING_RECEIPT
    scenario.advance(seconds=1)
    assert scenario.state(f"{package}/T1") is S.EXPIRED
    assert scenario.core.items[f"{package}/T1"].reason_code == "AB06"


def test_t_plus_n_counts_working_days_across_a_weekend() -> None:
    scenario = Scenario(start=Scenario().at(9, day=4))  # Friday 2026-11-27
    package, _ = scenario.submit("F100", BOC, ICBC, (ICBC, BOC, "10.00"), deadline_days=1)
    assert scenario.core.items[f"{package}/T1"].deadline == scenario.at(17, day=3)  # Monday


def test_answer_within_the_deadline_nets() -> None:
    scenario = Scenario()
    package, _ = scenario.submit("C100", ICBC, BOC, (ICBC, BOC, "10.00"))
    scenario.advance(seconds=19)
    scenario.receipt(package, BOC, T1=True)
    assert scenario.state(f"{package}/T1") is S.NETTED
    scenario.advance(seconds=60)
    assert scenario.state(f"{package}/T1") is S.NETTED
