"""Cancellation, reversal, stop payment and return: who may do what, and each refusal's code."""

from __future__ import annotations

from gateway.clearing.commands import CancelPackage
from gateway.clearing.events import ItemChanged
from gateway.clearing.items import ItemState
from tests.clearing.scenario import BOC, CCB, ICBC, Scenario, cny, refusal

S = ItemState


# Cancellation: payer's clearing bank, whole package, not yet netted ---------------------


def test_cancellation_of_a_queued_credit_package() -> None:
    scenario = Scenario()
    package, _ = scenario.submit(
        "A100", ICBC, BOC, (ICBC, BOC, "70000.00"), (ICBC, BOC, "40000.00")
    )
    assert [scenario.state(f"{package}/T{n}") for n in (1, 2)] == [S.NETTED, S.QUEUED]
    # Partly netted: netted payments are final, the package is cancelled whole or not at all.
    assert refusal(scenario.cancel(ICBC, package)) == "AGNT"
    queued, _ = scenario.submit("A100", ICBC, BOC, (ICBC, BOC, "50000.00"), (ICBC, BOC, "1.00"))
    assert refusal(scenario.cancel(BOC, queued)) == "AG01"
    assert refusal(scenario.cancel(ICBC, queued)) is None
    assert [scenario.state(f"{queued}/T{n}") for n in (1, 2)] == [S.CANCELLED, S.CANCELLED]


def test_a_cancelled_item_keeps_the_requests_reason() -> None:
    scenario = Scenario()
    scenario.set_cap(ICBC, collateral="0", credit_line="0", ring_fenced="0")
    first, _ = scenario.submit("A100", ICBC, BOC, (ICBC, BOC, "10.00"))
    second, _ = scenario.submit("A100", ICBC, BOC, (ICBC, BOC, "20.00"))
    assert scenario.state(f"{first}/T1") is S.QUEUED
    events = scenario.cancel(ICBC, first, reason_code="DUPL")
    changed = [event for event in events if isinstance(event, ItemChanged)]
    assert [(event.state, event.reason_code) for event in changed] == [("cancelled", "DUPL")]
    assert scenario.core.items[f"{first}/T1"].reason_code == "DUPL"
    # A request logged before reasons were kept carries none, and replays as it did then.
    logged = CancelPackage.model_validate_json(
        '{"kind": "cancel-package", "command_id": "cancel-old", '
        f'"at": "{scenario.now.isoformat()}", "requester": "{ICBC}", "package_id": "{second}"}}'
    )
    events = scenario.run(logged)
    assert [
        (event.state, event.reason_code) for event in events if isinstance(event, ItemChanged)
    ] == [("cancelled", None)]
    assert scenario.core.items[f"{second}/T1"].reason_code is None


def test_cancellation_of_a_receipt_package_of_queued_debits() -> None:
    scenario = Scenario()
    package, _ = scenario.submit("B100", BOC, ICBC, (ICBC, BOC, "150000.00"), deadline_days=1)
    scenario.receipt(package, ICBC, T1=True)
    assert scenario.state(f"{package}/T1") is S.QUEUED
    receipt_id = next(iter(scenario.core.receipts))
    assert refusal(scenario.cancel(BOC, receipt_id)) == "AG01"
    assert refusal(scenario.cancel(ICBC, receipt_id)) is None
    assert scenario.state(f"{package}/T1") is S.CANCELLED


def test_cancellation_does_not_apply_to_real_time_items_or_unknown_packages() -> None:
    scenario = Scenario()
    package, _ = scenario.submit("C100", ICBC, BOC, (ICBC, BOC, "1.00"))
    assert refusal(scenario.cancel(ICBC, package)) == "AG03"
    assert refusal(scenario.cancel(ICBC, "no-such-package")) == "NOOR"


# Reversal: the initiator of a real-time item, not yet netted ------------------------------


def test_reversal_of_a_real_time_item_without_result() -> None:
    scenario = Scenario()
    package, _ = scenario.submit("C100", ICBC, BOC, (ICBC, BOC, "1.00"))
    assert refusal(scenario.reverse(BOC, package)) == "AG01"
    assert refusal(scenario.reverse(ICBC, package)) is None
    assert scenario.state(f"{package}/T1") is S.REVERSED


def test_reversal_refused_once_netted_or_for_a_batch_item() -> None:
    scenario = Scenario()
    package, _ = scenario.submit("D100", BOC, ICBC, (ICBC, BOC, "1.00"))
    scenario.receipt(package, ICBC, T1=True)
    assert refusal(scenario.reverse(BOC, package)) == "AGNT"
    batch, _ = scenario.submit("A100", ICBC, BOC, (ICBC, BOC, "1.00"))
    assert refusal(scenario.reverse(ICBC, batch)) == "AG03"


# Stop payment: the payee's clearing bank, its debits, before the receipt ------------------


def test_stop_payment_of_one_item_and_of_a_whole_package() -> None:
    scenario = Scenario()
    package, _ = scenario.submit(
        "B100", BOC, ICBC, (ICBC, BOC, "1.00"), (ICBC, BOC, "2.00"), deadline_days=2
    )
    assert refusal(scenario.stop(ICBC, package, "T1")) == "AG01"
    assert refusal(scenario.stop(BOC, package, "T1")) is None
    assert [scenario.state(f"{package}/T{n}") for n in (1, 2)] == [S.STOPPED, S.AWAITING_RECEIPT]
    other, _ = scenario.submit(
        "F100", BOC, ICBC, (ICBC, BOC, "1.00"), (ICBC, BOC, "2.00"), deadline_days=2
    )
    assert refusal(scenario.stop(BOC, other)) is None
    assert {scenario.state(f"{other}/T{n}") for n in (1, 2)} == {S.STOPPED}


def test_stop_payment_refused_after_the_receipt_or_for_credits() -> None:
    scenario = Scenario()
    package, _ = scenario.submit(
        "B100", BOC, ICBC, (ICBC, BOC, "1.00"), (ICBC, BOC, "2.00"), deadline_days=2
    )
    scenario.receipt(package, ICBC, T1=True)
    assert refusal(scenario.stop(BOC, package)) == "AGNT"
    assert scenario.state(f"{package}/T2") is S.AWAITING_RECEIPT  # nothing half-applied
    credit, _ = scenario.submit("A100", ICBC, BOC, (ICBC, BOC, "1.00"))
    assert refusal(scenario.stop(ICBC, credit)) == "AG03"
    assert refusal(scenario.stop(BOC, package, "T9")) == "NOOR"


# Return: netted credits and netted debit receipts, a new item in the reverse direction ----


def test_return_of_a_netted_credit_is_netted_as_a_new_reverse_item() -> None:
    scenario = Scenario()
    item = scenario.credit(ICBC, BOC, "500.00")
    assert refusal(scenario.return_items(ICBC, item)) == "AG01"
    assert refusal(scenario.return_items(BOC, item)) is None
    assert scenario.state(item) is S.RETURNED
    returned = scenario.core.items[scenario.core.items[item].returned_by or ""]
    assert (returned.payer, returned.payee, returned.amount) == (BOC, ICBC, cny("500.00"))
    assert returned.state is S.NETTED
    assert scenario.core.accounts[ICBC].net_position == 0
    assert refusal(scenario.return_items(BOC, item)) == "ARDT"


def test_return_of_a_netted_debit_receipt_item() -> None:
    scenario = Scenario()
    package, _ = scenario.submit("B100", BOC, ICBC, (ICBC, BOC, "80.00"), deadline_days=1)
    scenario.receipt(package, ICBC, T1=True)
    assert refusal(scenario.return_items(BOC, f"{package}/T1")) is None
    assert scenario.core.accounts[BOC].net_position == 0


def test_return_refused_before_netting() -> None:
    scenario = Scenario()
    queued = scenario.credit(ICBC, BOC, "150000.00")
    assert refusal(scenario.return_items(BOC, queued)) == "AGNT"
    assert refusal(scenario.return_items(BOC, "P-0/T1")) == "NOOR"


def test_a_return_waits_in_the_queue_when_the_returning_bank_lacks_cap() -> None:
    scenario = Scenario()
    item = scenario.credit(ICBC, BOC, "90000.00")
    scenario.credit(BOC, CCB, "100000.01")
    scenario.return_items(BOC, item)
    returned_id = scenario.core.items[item].returned_by or ""
    assert scenario.state(returned_id) is S.QUEUED
