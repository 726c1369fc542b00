"""Net debit cap = collateral + credit line + ring-fenced; available = cap - net debit position."""

from __future__ import annotations

import pytest

from gateway.clearing.accounts import WarningLevel
from gateway.clearing.events import WarningLevelChanged
from gateway.clearing.items import ItemState
from gateway.operator_cli import positions
from tests.clearing.scenario import BOC, CCB, ICBC, Scenario, cny, participants, refusal

CAP = cny("100000.00")


def test_cap_is_collateral_plus_credit_line_plus_ring_fenced() -> None:
    scenario = Scenario(
        directory=participants(**{ICBC: ("500000.00", "70000.00", "20000.50", "9999.50")})
    )
    account = scenario.core.accounts[ICBC]
    assert account.cap == cny("100000.00")
    assert account.available == account.cap


def test_cap_and_available_are_different_figures_both_queryable() -> None:
    scenario = Scenario()
    scenario.credit(ICBC, BOC, "30000.00")
    row = {entry["participant"]: entry for entry in positions(scenario.core)}[ICBC]
    assert (row["cap"], row["net_position"], row["available"]) == (
        "100000.00",
        "-30000.00",
        "70000.00",
    )
    assert (row["collateral"], row["credit_line"], row["ring_fenced"]) == (
        "60000.00",
        "30000.00",
        "10000.00",
    )


@pytest.mark.parametrize(
    ("amount", "netted"), [("99999.99", True), ("100000.00", True), ("100000.01", False)]
)
def test_cap_check_at_the_boundary_for_a_batch_credit(amount: str, netted: bool) -> None:
    scenario = Scenario()
    item = scenario.credit(ICBC, BOC, amount)
    assert scenario.state(item) is (ItemState.NETTED if netted else ItemState.QUEUED)
    assert scenario.core.accounts[ICBC].net_position >= -CAP


@pytest.mark.parametrize(
    ("amount", "netted"), [("99999.99", True), ("100000.00", True), ("100000.01", False)]
)
def test_cap_check_at_the_boundary_for_a_real_time_credit(amount: str, netted: bool) -> None:
    scenario = Scenario()
    package, _ = scenario.submit("C100", ICBC, BOC, (ICBC, BOC, amount))
    events = scenario.receipt(package, BOC, T1=True)
    state = scenario.state(f"{package}/T1")
    if netted:
        assert state is ItemState.NETTED
    else:
        assert state is ItemState.REJECTED
        assert scenario.core.items[f"{package}/T1"].reason_code == "AM04"
        assert refusal(events) is None


def test_credits_received_raise_the_available_amount() -> None:
    scenario = Scenario()
    scenario.credit(BOC, ICBC, "25000.00")
    assert scenario.available(ICBC) == CAP + cny("25000.00")
    assert scenario.available(BOC) == CAP - cny("25000.00")


def test_warning_levels_follow_the_available_amount() -> None:
    scenario = Scenario()
    _, events = scenario.submit("A100", ICBC, BOC, (ICBC, BOC, "80000.01"))
    assert [
        event.level
        for event in events
        if isinstance(event, WarningLevelChanged) and event.participant == ICBC
    ] == [WarningLevel.WARNING]
    _, events = scenario.submit("A100", ICBC, BOC, (ICBC, BOC, "10000.00"))
    assert scenario.core.netting.levels[ICBC] is WarningLevel.CRITICAL
    scenario.credit(CCB, ICBC, "50000.00")
    assert scenario.core.netting.levels[ICBC] is WarningLevel.NORMAL


def test_raising_the_cap_is_an_operator_command() -> None:
    scenario = Scenario()
    events = scenario.set_cap(ICBC, collateral="160000.00")
    assert refusal(events) is None
    assert scenario.core.accounts[ICBC].cap == cny("200000.00")
    assert refusal(scenario.set_cap("308584000013", collateral="1.00")) == "RC08"
    assert refusal(scenario.set_cap(ICBC, ring_fenced="2000000.00")) == "AGNT"


def test_a_participant_may_have_warning_levels_of_its_own() -> None:
    from gateway.configuration.participants import ParticipantDirectory, ParticipantsFile

    base = participants().participants.model_dump()
    for entry in base["direct"]:
        if entry["code"] == ICBC:
            entry.update(warning_percent=50, critical_percent=25)
    scenario = Scenario(directory=ParticipantDirectory(ParticipantsFile.model_validate(base)))
    scenario.credit(ICBC, BOC, "50000.01")
    scenario.credit(BOC, CCB, "50000.01")
    assert scenario.core.netting.levels[ICBC] is WarningLevel.WARNING  # own level: 50 %
    assert scenario.core.netting.levels[BOC] is WarningLevel.NORMAL  # default: 20 %
