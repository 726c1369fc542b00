"""Sessions close on schedule (changeable at once), freeze their netting, balance, and settle
net debits from funds excluding ring-fenced money; a shortfall waits until funds arrive."""

from __future__ import annotations

from gateway.clearing.events import NetSettled, SessionClosed, SettlementQueued
from gateway.clearing.items import ItemState
from tests.clearing.scenario import BOC, CCB, ICBC, Scenario, cny, participants, refusal

S = ItemState


def closed(events: list) -> list[SessionClosed]:  # type: ignore[type-arg]
    return [event for event in events if isinstance(event, SessionClosed)]


def test_sessions_close_at_the_scheduled_times() -> None:
    scenario = Scenario()  # 09:00
    scenario.advance(to=scenario.at(9, 59))
    assert scenario.core.open_session.session_id == "20261123-01"
    events = scenario.advance(to=scenario.at(10))
    assert [event.session_id for event in closed(events)] == ["20261123-01"]
    events = scenario.advance(to=scenario.at(16, 30))
    assert [event.session_id for event in closed(events)] == [f"20261123-0{n}" for n in range(2, 7)]


def test_closing_a_session_freezes_its_netting() -> None:
    scenario = Scenario()
    first = scenario.credit(ICBC, BOC, "100.00")
    scenario.close_session()
    second = scenario.credit(ICBC, BOC, "50.00")
    assert scenario.core.items[first].session_id == "20261123-01"
    assert scenario.core.items[second].session_id == "20261123-02"
    assert scenario.core.sessions["20261123-01"].item_ids == [first]


def test_schedule_changed_mid_day_takes_effect_at_once() -> None:
    scenario = Scenario()
    scenario.advance(to=scenario.at(10, 30))
    assert refusal(scenario.set_schedule("10:45", "15:30")) is None
    assert scenario.core.next_session_time() == scenario.at(10, 45)
    events = scenario.advance(to=scenario.at(14))
    assert len(closed(events)) == 1
    assert refusal(scenario.set_schedule("18:00")) == "AGNT"


def test_trial_balance_sums_to_zero_and_settles() -> None:
    scenario = Scenario()
    scenario.credit(ICBC, BOC, "300.00")
    scenario.credit(BOC, CCB, "100.00")
    scenario.credit(CCB, ICBC, "50.00")
    events = scenario.close_session()
    (session,) = closed(events)
    assert session.nets == {ICBC: cny("-250.00"), BOC: cny("200.00"), CCB: cny("50.00")}
    assert sum(session.nets.values()) == 0 and not session.recomputed
    settled = {event.participant: event.amount for event in events if isinstance(event, NetSettled)}
    assert settled == session.nets
    assert scenario.core.accounts[ICBC].settlement_balance == cny("1000000.00") - cny("250.00")
    assert scenario.core.accounts[ICBC].net_position == 0
    assert all(
        scenario.core.items[item_id].state is S.SETTLED
        for item_id in scenario.core.sessions[session.session_id].item_ids
    )


def test_incremental_figures_are_checked_against_the_detail_records() -> None:
    scenario = Scenario()
    scenario.credit(ICBC, BOC, "300.00")
    # Corrupt the incremental figure: the close recomputes from the netted items.
    scenario.core.open_session.bilateral[(ICBC, BOC)] += 1
    (session,) = closed(scenario.close_session())
    assert session.recomputed
    assert session.nets == {ICBC: cny("-300.00"), BOC: cny("300.00")}


def test_net_debit_is_settled_only_from_funds_excluding_ring_fenced_money() -> None:
    # ICBC: balance 20,000.00 of which 10,000.00 ring-fenced -> 10,000.00 settleable.
    directory = participants(**{ICBC: ("20000.00", "60000.00", "30000.00", "10000.00")})
    scenario = Scenario(directory=directory)
    scenario.credit(ICBC, BOC, "10000.01")
    events = scenario.close_session()
    queued = [event for event in events if isinstance(event, SettlementQueued)]
    assert [(event.participant, event.amount, event.shortfall) for event in queued] == [
        (ICBC, cny("10000.01"), 1)
    ]
    # The net credit side is settled; the debit waits, and so do the session's items.
    assert scenario.core.accounts[BOC].settlement_balance == cny("1010000.01")
    assert scenario.core.accounts[ICBC].settlement_balance == cny("20000.00")
    session = scenario.core.sessions["20261123-01"]
    assert session.unsettled == {ICBC}
    assert scenario.state(session.item_ids[0]) is S.NETTED
    # The debit still counts against the cap until it is settled.
    assert scenario.core.accounts[ICBC].net_position == -cny("10000.01")
    events = scenario.fund(ICBC, "0.01")
    assert [
        (event.participant, event.amount) for event in events if isinstance(event, NetSettled)
    ] == [(ICBC, -cny("10000.01"))]
    assert scenario.core.settlement_queue == type(scenario.core.settlement_queue)()
    assert scenario.state(session.item_ids[0]) is S.SETTLED


def test_a_later_session_debit_waits_behind_an_earlier_shortfall() -> None:
    directory = participants(**{ICBC: ("20000.00", "60000.00", "30000.00", "10000.00")})
    scenario = Scenario(directory=directory)
    scenario.credit(ICBC, BOC, "15000.00")
    scenario.close_session()
    scenario.credit(ICBC, CCB, "100.00")
    events = scenario.close_session()
    assert [event.session_id for event in events if isinstance(event, SettlementQueued)] == [
        "20261123-02"
    ]
    scenario.fund(ICBC, "5100.00")
    assert scenario.core.settlement_queue == type(scenario.core.settlement_queue)()
    assert scenario.core.accounts[ICBC].settlement_balance == cny("20000.00") + cny(
        "5100.00"
    ) - cny("15100.00")


def test_closes_due_while_no_process_ran_happen_when_the_time_passes_in_one_step() -> None:
    """No gateway ran from Monday evening to Tuesday midday: when the time next passes, in one
    step, Tuesday's 10:00 and 11:00 closes happen, in order, as they would have on time."""
    scenario = Scenario()  # Monday 09:00
    scenario.advance(to=scenario.at(20))
    item = scenario.credit(ICBC, BOC, "100.00")  # after the switch: Tuesday's first session
    assert scenario.core.items[item].session_id == "20261124-01"
    assert scenario.core.next_session_time() == scenario.at(10, day=1)
    events = scenario.advance(to=scenario.at(12, day=1))
    assert [event.session_id for event in closed(events)] == ["20261124-01", "20261124-02"]
    assert scenario.core.open_session.session_id == "20261124-03"
    assert scenario.state(item) == S.SETTLED
    assert scenario.core.next_session_time() == scenario.at(13)
