"""Day switch: next working day (holidays skipped), status event, last session submitted, end
of day (reconciliation, billing, trial balance); one netting result per holiday day, settled on
the first working day after; business after the switch belongs to the next business date."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from gateway.clearing.calendar import BusinessCalendar
from gateway.clearing.events import DaySwitched, EndOfDay, NetSettled, SessionClosed
from gateway.clearing.items import ItemState
from tests.clearing.scenario import BOC, CCB, ICBC, SETTINGS, ZONE, Scenario, cny

CALENDAR = BusinessCalendar(SETTINGS.calendar)


def of(events: list, kind: type) -> list:  # type: ignore[type-arg]
    return [event for event in events if isinstance(event, kind)]


def test_calendar_skips_weekends_and_holiday_chains_and_honours_make_up_days() -> None:
    assert CALENDAR.next_working_day(date(2026, 11, 27)) == date(2026, 11, 30)  # Fri -> Mon
    assert CALENDAR.next_working_day(date(2026, 9, 30)) == date(2026, 10, 8)  # National Day
    assert CALENDAR.is_working_day(date(2026, 10, 10))  # a Saturday make-up day
    assert CALENDAR.next_working_day(date(2026, 10, 8)) == date(2026, 10, 9)
    assert CALENDAR.add_working_days(date(2026, 9, 30), 2) == date(2026, 10, 9)


def test_switch_at_the_configured_time_moves_to_the_next_business_date() -> None:
    scenario = Scenario()
    item = scenario.credit(ICBC, BOC, "100.00")
    switch = scenario.at(17)
    events = scenario.advance(to=switch + timedelta(minutes=5))
    # The event is dated when the switch fell due, not when the time was passed.
    assert of(events, DaySwitched) == [DaySwitched(date(2026, 11, 23), date(2026, 11, 24), switch)]
    assert of(events, SessionClosed)[-1].session_id == "20261123-07"
    assert scenario.core.business_date == date(2026, 11, 24)
    assert scenario.core.open_session.session_id == "20261124-01"
    assert scenario.state(item) is ItemState.SETTLED
    later = scenario.credit(ICBC, BOC, "1.00")
    assert scenario.core.items[later].business_date == date(2026, 11, 24)


def test_end_of_day_reconciles_bills_and_balances() -> None:
    scenario = Scenario()
    scenario.credit(ICBC, BOC, "100.00")
    scenario.credit(ICBC, BOC, "200000.00")  # queued, not billed
    package, _ = scenario.submit("C100", BOC, ICBC, (BOC, ICBC, "30.00"))
    scenario.receipt(package, ICBC, T1=True)
    (report,) = of(scenario.switch_day(), EndOfDay)
    assert report.business_date == date(2026, 11, 23) and report.balanced
    assert report.reconciliation[ICBC]["A100"] == {
        "settled": [1, cny("100.00")],
        "queued": [1, cny("200000.00")],
    }
    assert report.reconciliation[BOC]["C100"] == {"settled": [1, cny("30.00")]}
    assert report.fees == {ICBC: cny("0.50"), BOC: cny("0.80")}
    assert report.settled_nets == {ICBC: cny("-70.00"), BOC: cny("70.00")}


def test_operator_day_switch_before_the_configured_time() -> None:
    scenario = Scenario()
    events = scenario.switch_day()
    assert of(events, DaySwitched)[0].business_date == date(2026, 11, 24)
    # The configured switch that day does not move the business date a second time...
    events = scenario.advance(to=scenario.at(17, 30))
    assert of(events, DaySwitched) == []
    assert scenario.core.business_date == date(2026, 11, 24)
    # ...the next day's does.
    events = scenario.advance(to=scenario.at(17, 0, day=1))
    assert of(events, DaySwitched) == [
        DaySwitched(date(2026, 11, 24), date(2026, 11, 25), scenario.at(17))
    ]


def test_holiday_results_one_per_day_settled_on_the_first_working_day() -> None:
    start = datetime(2026, 9, 30, 16, 30, tzinfo=ZONE)
    scenario = Scenario(start=start)
    switch = datetime(2026, 9, 30, 17, 0, tzinfo=ZONE)
    events = scenario.advance(to=switch)
    assert of(events, DaySwitched) == [DaySwitched(date(2026, 9, 30), date(2026, 10, 8), switch)]
    for day in range(1, 8):
        scenario.advance(to=datetime(2026, 10, day, 12, 0, tzinfo=ZONE))
        scenario.credit(ICBC, BOC, "10.00")
        scenario.credit(CCB, ICBC, "1.00")
        events = scenario.advance(to=datetime(2026, 10, day, 17, 0, tzinfo=ZONE))
        # One netting result per holiday day, none settled yet, no new business date.
        assert len(of(events, SessionClosed)) == 1
        assert of(events, NetSettled) == [] and of(events, DaySwitched) == []
    results = [session for session in scenario.core.sessions.values() if session.closed]
    holiday_results = [session for session in results if session.business_date == date(2026, 10, 8)]
    assert len(holiday_results) == 7
    assert all(session.unsettled for session in holiday_results)
    events = scenario.advance(to=datetime(2026, 10, 8, 9, 0, tzinfo=ZONE))
    assert len(of(events, NetSettled)) == 7 * 3
    assert all(not session.unsettled for session in holiday_results)
    assert scenario.core.accounts[ICBC].settlement_balance == cny("1000000.00") - 7 * cny("9.00")
