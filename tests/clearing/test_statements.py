"""Settlement account statements: each day switch closes one per clearing bank, with every
booking since the previous one; a net settled late (a shortfall) is on the statement of the day
it was booked, with its session's settlement date as value date."""

from __future__ import annotations

from datetime import date

from gateway.clearing.events import Movement, StatementClosed
from tests.clearing.scenario import ABC, BOC, CCB, ICBC, MONDAY, Scenario, cny, participants


def statements(events: list) -> dict[str, StatementClosed]:  # type: ignore[type-arg]
    return {event.participant: event for event in events if isinstance(event, StatementClosed)}


def test_a_days_statement_lists_each_booking_between_its_opening_and_closing_balance() -> None:
    scenario = Scenario()  # Monday 09:00
    scenario.credit(ICBC, BOC, "100.00")
    scenario.advance(minutes=30)
    scenario.fund(ICBC, "400.00")
    events = scenario.advance(to=scenario.at(17, 5))
    monday = statements(events)
    assert sorted(monday) == sorted((ICBC, BOC, CCB, ABC))
    icbc = monday[ICBC]
    assert (icbc.business_date, icbc.sequence, icbc.period_from, icbc.period_to) == (
        date(2026, 11, 23),
        1,
        MONDAY,
        scenario.at(17),  # when the switch fell due, not when the time was passed
    )
    assert icbc.opening_balance == cny("1000000.00")
    assert icbc.movements == (
        Movement(scenario.at(9, 30), cny("400.00"), date(2026, 11, 23), None),
        Movement(scenario.at(10), -cny("100.00"), date(2026, 11, 23), "20261123-01"),
    )
    assert icbc.closing_balance == cny("1000300.00")
    assert monday[BOC].movements == (
        Movement(scenario.at(10), cny("100.00"), date(2026, 11, 23), "20261123-01"),
    )
    assert monday[CCB].movements == ()
    assert monday[CCB].opening_balance == monday[CCB].closing_balance == cny("1000000.00")
    # The next statement opens where this one closed.
    tuesday = statements(scenario.advance(to=scenario.at(17, day=1)))[ICBC]
    assert (tuesday.sequence, tuesday.period_from, tuesday.opening_balance) == (
        2,
        scenario.at(17, day=-1),
        cny("1000300.00"),
    )
    assert tuesday.business_date == date(2026, 11, 24) and tuesday.movements == ()


def test_a_net_settled_after_a_shortfall_is_on_the_statement_of_the_day_it_was_booked() -> None:
    # ICBC: 20,000.00 of which 10,000.00 ring-fenced: a 15,000.00 net debit waits for funds.
    scenario = Scenario(
        directory=participants(**{ICBC: ("20000.00", "60000.00", "30000.00", "10000.00")})
    )
    scenario.credit(ICBC, BOC, "15000.00")
    monday = statements(scenario.advance(to=scenario.at(17)))[ICBC]
    assert monday.movements == ()
    assert monday.closing_balance == cny("20000.00")
    scenario.advance(to=scenario.at(9, day=1))
    scenario.fund(ICBC, "5000.00")  # settles the waiting debit at once
    tuesday = statements(scenario.advance(to=scenario.at(17)))[ICBC]
    assert tuesday.movements == (
        Movement(scenario.at(9), cny("5000.00"), date(2026, 11, 24), None),
        # Booked on Tuesday; its value date is Monday's session's settlement date.
        Movement(scenario.at(9), -cny("15000.00"), date(2026, 11, 23), "20261123-01"),
    )
    assert (tuesday.opening_balance, tuesday.closing_balance) == (
        cny("20000.00"),
        cny("10000.00"),
    )


def test_no_statement_on_a_holiday_the_first_working_day_has_its_bookings() -> None:
    """The business date does not move on a holiday, so no statement is closed; a credit made
    then is on the statement closed at the next switch that moves the date."""
    scenario = Scenario(start=MONDAY.replace(month=9, day=30, hour=16))
    assert sorted(statements(scenario.advance(to=scenario.at(17)))) == sorted(
        (ICBC, BOC, CCB, ABC)
    )  # 2026-09-30: the last working day before National Day
    scenario.advance(to=scenario.at(12, day=1))  # 1 October
    scenario.fund(CCB, "1.00")
    for day in range(1, 8):
        assert statements(scenario.advance(to=scenario.at(17, day=0 if day == 1 else 1))) == {}
    first = statements(scenario.advance(to=scenario.at(17, day=1)))[CCB]  # 8 October
    assert (first.business_date, first.sequence) == (date(2026, 10, 8), 2)
    assert [movement.amount for movement in first.movements] == [cny("1.00")]
