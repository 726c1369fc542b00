"""The business calendar: working days, public holidays and make-up working days."""

from __future__ import annotations

from datetime import date, timedelta

from gateway.configuration.clearing_settings import CalendarSettings

MAX_DAYS_TO_NEXT_WORKING_DAY = 366
"""Bound of the search for the next working day (a calendar without one is refused)."""


class BusinessCalendar:
    def __init__(self, settings: CalendarSettings) -> None:
        self._weekdays = frozenset(settings.working_weekdays)
        self._holidays = frozenset(settings.holidays)
        self._extra = frozenset(settings.extra_working_days)

    def is_working_day(self, day: date) -> bool:
        if day in self._extra:
            return True
        return day.isoweekday() in self._weekdays and day not in self._holidays

    def next_working_day(self, after: date) -> date:
        """The first working day strictly after ``after`` (holiday chains are skipped)."""
        day = after
        for _ in range(MAX_DAYS_TO_NEXT_WORKING_DAY):
            day += timedelta(days=1)
            if self.is_working_day(day):
                return day
        raise ValueError(f"no working day within a year after {after}")

    def working_day_on_or_after(self, day: date) -> date:
        return day if self.is_working_day(day) else self.next_working_day(day)

    def add_working_days(self, start: date, count: int) -> date:
        """``start`` plus ``count`` working days (T+N); T+0 is ``start`` itself."""
        day = start
        for _ in range(count):
            day = self.next_working_day(day)
        return day
