"""Settings of the clearing core, from ``config/clearing.toml``: calendar, sessions, day
switch, deadlines, warning levels and fees. Checked at start-up; errors name the field."""

from __future__ import annotations

from datetime import date, time
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.configuration.settings import ConfigurationError
from gateway.configuration.toml_files import TomlFileError, load_model


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CalendarSettings(_Strict):
    working_weekdays: tuple[int, ...] = (1, 2, 3, 4, 5)
    holidays: tuple[date, ...] = ()
    extra_working_days: tuple[date, ...] = ()

    @field_validator("working_weekdays")
    @classmethod
    def weekdays_valid(cls, days: tuple[int, ...]) -> tuple[int, ...]:
        if not days or any(day < 1 or day > 7 for day in days):
            raise ValueError("weekdays are 1 (Monday) to 7 (Sunday), at least one")
        return days

    @model_validator(mode="after")
    def no_overlap(self) -> CalendarSettings:
        both = sorted(set(self.holidays) & set(self.extra_working_days))
        if both:
            raise ValueError(f"dates both holiday and working day: {both}")
        return self


class SessionSettings(_Strict):
    times: tuple[time, ...] = (
        time(10),
        time(11),
        time(13),
        time(14),
        time(15),
        time(16),
    )
    day_switch: time = time(17)

    @model_validator(mode="after")
    def ordered_before_switch(self) -> SessionSettings:
        if list(self.times) != sorted(set(self.times)):
            raise ValueError("session times must be increasing and distinct")
        if self.times and self.times[-1] >= self.day_switch:
            raise ValueError("every session time must come before the day switch")
        return self


class DeadlineSettings(_Strict):
    real_time_seconds: int = Field(default=20, gt=0, le=3600)


class WarningSettings(_Strict):
    warning: int = Field(default=20, ge=0, le=100)
    critical: int = Field(default=10, ge=0, le=100)

    @model_validator(mode="after")
    def critical_below_warning(self) -> WarningSettings:
        if self.critical > self.warning:
            raise ValueError("critical must not be above warning")
        return self


class RetentionSettings(_Strict):
    business_days: int = Field(default=5, ge=1, le=250)
    """Business days whose finished business the clearing core keeps after their end of day:
    meanwhile it may be referred to (returned, cancelled, answered late, looked up). Older
    finished items, packages, receipts, sessions and command ids are retired from its memory
    (ledgers of rules version 3 on); the log and the audit records keep them."""
    items_per_tick: int = Field(default=1_000, ge=1, le=1_000_000)
    """Items (and command ids) retired at one tick of the clock at most (ledgers of rules
    version 4 on): a day's business is retired over the ticks after its end of day (the
    gateway ticks each second), never before a payment, so that no payment waits long for it.
    A package is retired whole, so one larger than this goes alone."""


class ClearingSettings(_Strict):
    time_zone: str = "Asia/Shanghai"
    calendar: CalendarSettings = CalendarSettings()
    sessions: SessionSettings = SessionSettings()
    deadlines: DeadlineSettings = DeadlineSettings()
    warning_levels: WarningSettings = WarningSettings()
    retention: RetentionSettings = RetentionSettings()
    fees: dict[str, Decimal] = Field(default_factory=dict)

    @field_validator("time_zone")
    @classmethod
    def zone_exists(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {name!r}") from error
        return name

    @field_validator("fees")
    @classmethod
    def fees_in_cents(cls, fees: dict[str, Decimal]) -> dict[str, Decimal]:
        for business_type, fee in fees.items():
            if fee < 0 or fee.as_tuple().exponent < -2:  # type: ignore[operator]
                raise ValueError(f"fee of {business_type} must be non-negative, 2 decimals")
        return fees

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def fee_minor_units(self) -> dict[str, int]:
        return {business_type: int(fee * 100) for business_type, fee in self.fees.items()}


def load_clearing_settings(path: Path) -> ClearingSettings:
    try:
        return load_model(path, ClearingSettings)
    except TomlFileError as error:
        raise ConfigurationError(str(error)) from error
