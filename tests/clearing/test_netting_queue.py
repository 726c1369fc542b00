"""Items that fail the cap wait in their payer's queue, strictly FIFO, and net automatically
when the payer's available amount grows; real-time items are rejected (AM04), never queued."""

from __future__ import annotations

from gateway.clearing.items import ItemState
from tests.clearing.scenario import BOC, CCB, ICBC, Scenario, cny, refusal


def queued_ids(scenario: Scenario, code: str) -> list[str]:
    return list(scenario.core.netting.queues[code])


def test_non_real_time_item_over_the_cap_waits_in_the_queue() -> None:
    scenario = Scenario()
    item = scenario.credit(ICBC, BOC, "120000.00")
    assert scenario.state(item) is ItemState.QUEUED
    assert queued_ids(scenario, ICBC) == [item]
    assert scenario.core.netting.queued(ICBC) == (1, cny("120000.00"))


def test_queue_is_strictly_first_in_first_out() -> None:
    scenario = Scenario()
    big = scenario.credit(ICBC, BOC, "120000.00")
    small = scenario.credit(ICBC, BOC, "10.00")
    # The small one would fit, but it may not overtake the big one.
    assert scenario.state(small) is ItemState.QUEUED
    assert queued_ids(scenario, ICBC) == [big, small]


def test_credit_received_releases_the_queue_in_order() -> None:
    scenario = Scenario()
    first = scenario.credit(ICBC, BOC, "120000.00")
    second = scenario.credit(ICBC, BOC, "5000.00")
    scenario.credit(CCB, ICBC, "20000.00")
    assert scenario.state(first) is ItemState.NETTED
    assert scenario.state(second) is ItemState.QUEUED
    scenario.credit(CCB, ICBC, "5000.00")
    assert scenario.state(second) is ItemState.NETTED
    assert queued_ids(scenario, ICBC) == []


def test_raising_the_cap_releases_the_queue() -> None:
    scenario = Scenario()
    item = scenario.credit(ICBC, BOC, "120000.00")
    scenario.set_cap(ICBC, credit_line="50000.00")
    assert scenario.state(item) is ItemState.NETTED


def test_cancelling_the_head_releases_the_items_behind_it() -> None:
    scenario = Scenario()
    head_package, _ = scenario.submit("A100", ICBC, BOC, (ICBC, BOC, "120000.00"))
    behind = scenario.credit(ICBC, BOC, "10.00")
    assert refusal(scenario.cancel(ICBC, head_package)) is None
    assert scenario.state(f"{head_package}/T1") is ItemState.CANCELLED
    assert scenario.state(behind) is ItemState.NETTED


def test_netting_cascades_from_payer_to_payee_queues() -> None:
    scenario = Scenario()
    boc_waiting = scenario.credit(BOC, CCB, "150000.00")
    icbc_waiting = scenario.credit(ICBC, BOC, "130000.00")
    scenario.credit(CCB, ICBC, "60000.00")
    # CCB pays ICBC: ICBC's queue nets (130k), which raises BOC enough for its 150k.
    assert scenario.state(icbc_waiting) is ItemState.NETTED
    assert scenario.state(boc_waiting) is ItemState.NETTED


def test_real_time_item_that_fails_is_rejected_at_once_never_queued() -> None:
    scenario = Scenario()
    package, _ = scenario.submit("C100", ICBC, BOC, (ICBC, BOC, "150000.00"))
    scenario.receipt(package, BOC, T1=True)
    assert scenario.state(f"{package}/T1") is ItemState.REJECTED
    assert queued_ids(scenario, ICBC) == []


def test_real_time_item_does_not_wait_behind_the_queue() -> None:
    scenario = Scenario()
    scenario.credit(ICBC, BOC, "120000.00")
    package, _ = scenario.submit("C100", ICBC, BOC, (ICBC, BOC, "100.00"))
    scenario.receipt(package, BOC, T1=True)
    assert scenario.state(f"{package}/T1") is ItemState.NETTED
