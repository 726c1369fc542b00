"""Netting basis per business type, bilateral netting per pair, and the item state machine."""

from __future__ import annotations

import pytest

from gateway.clearing.items import ENDED, TRANSITIONS, IllegalTransitionError, ItemState
from tests.clearing.scenario import AGENCY, BOC, BOC_SHANGHAI, CCB, ICBC, Scenario, cny, refusal

S = ItemState


@pytest.mark.parametrize("kind", ["A100", "E100"])
def test_ordinary_and_periodic_credits_net_on_the_package(kind: str) -> None:
    scenario = Scenario()
    item = scenario.credit(ICBC, BOC, "100.00", kind)
    assert scenario.state(item) is S.NETTED


def test_real_time_credit_nets_on_the_successful_receipt() -> None:
    scenario = Scenario()
    package, _ = scenario.submit("C100", ICBC, BOC, (ICBC, BOC, "100.00"))
    assert scenario.state(f"{package}/T1") is S.AWAITING_RECEIPT
    scenario.receipt(package, BOC, T1=True)
    assert scenario.state(f"{package}/T1") is S.NETTED


@pytest.mark.parametrize("kind", ["B100", "B308", "F100"])
def test_debits_net_on_the_successful_items_of_the_receipt(kind: str) -> None:
    scenario = Scenario()
    package, _ = scenario.submit(
        kind, BOC, ICBC, (ICBC, BOC, "100.00"), (ICBC, BOC, "200.00"), deadline_days=2
    )
    scenario.receipt(package, ICBC, T1=True, T2="AC01")
    assert scenario.state(f"{package}/T1") is S.NETTED
    assert scenario.state(f"{package}/T2") is S.REJECTED
    assert scenario.core.items[f"{package}/T2"].reason_code == "AC01"
    # The debtor's bank pays: its position falls by the successful item only.
    assert scenario.core.accounts[ICBC].net_position == -cny("100.00")


def test_only_the_receiving_bank_answers_a_package() -> None:
    scenario = Scenario()
    package, _ = scenario.submit("B100", BOC, ICBC, (ICBC, BOC, "100.00"), deadline_days=1)
    assert refusal(scenario.receipt(package, CCB, T1=True)) == "AG01"
    assert refusal(scenario.receipt("nope", ICBC, T1=True)) == "NOOR"


def test_netting_is_bilateral_per_pair_of_clearing_banks() -> None:
    scenario = Scenario()
    scenario.credit(ICBC, BOC, "300.00")
    scenario.submit("A100", BOC, ICBC, (BOC_SHANGHAI, ICBC, "100.00"))
    scenario.credit(ICBC, CCB, "50.00")
    bilateral = dict(scenario.core.open_session.bilateral)
    assert bilateral == {
        (ICBC, BOC): cny("300.00"),
        (BOC, ICBC): cny("100.00"),
        (ICBC, CCB): cny("50.00"),
    }


def test_indirect_participants_and_agencies_net_on_their_clearing_bank() -> None:
    scenario = Scenario()
    item = scenario.submit("E100", AGENCY, BOC, (AGENCY, BOC_SHANGHAI, "40.00"))[0] + "/T1"
    assert (scenario.core.items[item].payer, scenario.core.items[item].payee) == (CCB, BOC)


def test_unknown_participants_and_duplicates_are_refused_without_changes() -> None:
    scenario = Scenario()
    before = scenario.core.fingerprint()[4:10]
    _, events = scenario.submit("A100", ICBC, BOC, (ICBC, "308584000013", "1.00"))
    assert refusal(events) == "RC08"
    assert scenario.core.fingerprint()[4:10] == before
    scenario.submit("A100", ICBC, BOC, (ICBC, BOC, "1.00"), package="P-dup")
    _, events = scenario.submit("A100", ICBC, BOC, (ICBC, BOC, "1.00"), package="P-dup")
    assert refusal(events) == "DU01"
    assert len(scenario.core.items) == 1


def test_only_the_transitions_of_the_state_machine_are_allowed() -> None:
    assert TRANSITIONS[S.NETTED] == {S.SETTLED, S.RETURNED}
    assert TRANSITIONS[S.QUEUED] == {S.NETTED, S.CANCELLED}
    for state in ENDED - {S.SETTLED}:
        assert TRANSITIONS[state] == frozenset()
    scenario = Scenario()
    item = scenario.core.items[scenario.credit(ICBC, BOC, "1.00")]
    with pytest.raises(IllegalTransitionError):
        item.move(S.QUEUED)
