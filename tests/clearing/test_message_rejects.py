"""A bank's message reject (admi.002) of a package forwarded to it: a real-time item it was to
answer is rejected at once with AB10 (no 20 s wait for a timeout that says the wrong thing);
a batch package keeps waiting for the bank's receipt; anyone else's reject is refused."""

from __future__ import annotations

from gateway.clearing.commands import RecordMessageReject
from gateway.clearing.events import Event
from gateway.clearing.items import ItemState
from tests.clearing.scenario import BOC, CCB, ICBC, Scenario, changes, refusal

S = ItemState


def message_reject(scenario: Scenario, package_id: str, sender: str, number: int) -> list[Event]:
    return scenario.run(
        RecordMessageReject(
            command_id=f"reject-{number}",
            at=scenario.now,
            sender=sender,
            package_id=package_id,
            reason_code="FF01",
        )
    )


def test_a_rejected_real_time_credit_is_rejected_at_once_ab10() -> None:
    scenario = Scenario()
    package, _ = scenario.submit("C100", ICBC, BOC, (ICBC, BOC, "10.00"))
    available = scenario.available(ICBC)
    events = message_reject(scenario, package, BOC, 1)
    assert changes(events) == [(f"{package}/T1", S.REJECTED, "AB10")]
    assert scenario.available(ICBC) == available  # nothing netted
    # The deadline passes without a second result, and an answer now comes too late.
    assert changes(scenario.advance(seconds=21)) == []
    assert refusal(scenario.receipt(package, BOC, T1=True)) == "AGNT"
    assert scenario.state(f"{package}/T1") is S.REJECTED


def test_a_rejected_real_time_debit_is_rejected_at_once_ab10() -> None:
    scenario = Scenario()
    package, _ = scenario.submit("D100", BOC, ICBC, (ICBC, BOC, "10.00"))
    assert changes(message_reject(scenario, package, ICBC, 1)) == [
        (f"{package}/T1", S.REJECTED, "AB10")
    ]


def test_an_item_already_expired_stays_expired() -> None:
    scenario = Scenario()
    package, _ = scenario.submit("C100", ICBC, BOC, (ICBC, BOC, "10.00"))
    scenario.advance(seconds=21)
    events = message_reject(scenario, package, BOC, 1)
    assert (changes(events), refusal(events)) == ([], None)
    assert scenario.core.items[f"{package}/T1"].reason_code == "AB05"


def test_a_rejected_batch_debit_still_waits_for_its_receipt() -> None:
    scenario = Scenario()
    package, _ = scenario.submit("B100", BOC, ICBC, (ICBC, BOC, "10.00"), deadline_days=3)
    events = message_reject(scenario, package, ICBC, 1)
    assert (changes(events), refusal(events)) == ([], None)
    assert scenario.state(f"{package}/T1") is S.AWAITING_RECEIPT
    # The bank fixed what it could not read and answers within T+N.
    assert changes(scenario.receipt(package, ICBC, T1=True))[0][1] in (S.NETTED, S.QUEUED)


def test_a_reject_from_a_bank_the_package_was_not_sent_to_is_refused_ag01() -> None:
    scenario = Scenario()
    package, _ = scenario.submit("C100", ICBC, BOC, (ICBC, BOC, "10.00"))
    for number, bank in enumerate((ICBC, CCB), start=1):
        assert refusal(message_reject(scenario, package, bank, number)) == "AG01"
    assert scenario.state(f"{package}/T1") is S.AWAITING_RECEIPT


def test_a_reject_of_an_unknown_package_is_refused_noor() -> None:
    scenario = Scenario()
    assert refusal(message_reject(scenario, "nothing-like-it", BOC, 1)) == "NOOR"
