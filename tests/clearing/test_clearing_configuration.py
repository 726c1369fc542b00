"""config/clearing.toml and the participants' clearing figures are checked at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.configuration.clearing_settings import load_clearing_settings
from gateway.configuration.participants import load_participants
from gateway.configuration.settings import ConfigurationError
from tests.conftest import PROJECT


def test_sample_clearing_configuration_loads() -> None:
    settings = load_clearing_settings(PROJECT / "config" / "clearing.toml")
    assert [value.strftime("%H:%M") for value in settings.sessions.times] == [
        "10:00",
        "11:00",
        "13:00",
        "14:00",
        "15:00",
        "16:00",
    ]
    assert settings.deadlines.real_time_seconds == 20
    assert settings.fee_minor_units()["A100"] == 50


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('time_zone = "Mars/Olympus"', "time_zone"),
        ('[sessions]\ntimes = ["11:00", "10:00"]', "sessions"),
        ('[sessions]\ntimes = ["10:00", "17:30"]\nday_switch = "17:00"', "sessions"),
        ('[calendar]\nholidays = ["2026-10-10"]\nextra_working_days = ["2026-10-10"]', "calendar"),
        ("[calendar]\nworking_weekdays = [0]", "calendar.working_weekdays"),
        ('[fees]\nA100 = "0.505"', "fees"),
        ("[warning_levels]\nwarning = 10\ncritical = 20", "warning_levels"),
        ("[deadlines]\nreal_time_seconds = 0", "deadlines.real_time_seconds"),
        ("[deadlines]\nreal_time = 20", "deadlines.real_time"),
    ],
)
def test_bad_clearing_settings_name_their_field(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "clearing.toml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigurationError) as failure:
        load_clearing_settings(path)
    assert str(path) in str(failure.value) and field in str(failure.value)


def test_ring_fenced_funds_must_be_held_on_the_settlement_account(tmp_path: Path) -> None:
    path = tmp_path / "participants.toml"
    path.write_text(
        '[centre]\nmember_id = "999999999999"\nname = "c"\n'
        '[[direct]]\ncode = "102100099996"\nname = "ICBC"\n'
        'settlement_balance = "100.00"\nring_fenced = "100.01"\n'
    )
    with pytest.raises(ConfigurationError, match=r"ring-fenced funds 100\.01 exceed"):
        load_participants(path)
