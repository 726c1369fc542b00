"""Configuration is checked at start-up; each error names the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.configuration.participants import ParticipantKind, load_participants
from gateway.configuration.settings import ConfigurationError, load_settings
from tests.conftest import CONFIG, PROJECT

PARTICIPANTS = PROJECT / "config" / "participants.toml"


def test_sample_participants() -> None:
    directory = load_participants(PARTICIPANTS)
    for code in ("102100099996", "103100000026", "104100000004", "105100000017", "301290000007"):
        assert directory.kind(code) is ParticipantKind.DIRECT
        assert directory.clearing_party(code) == code
    assert directory.clearing_party("104290003033") == "104100000004"
    assert directory.kind("990100000017") is ParticipantKind.SPECIAL
    assert directory.may_send_packages("990100000017")
    assert not directory.may_send_packages("104290003033")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "participants.toml"
    path.write_text(text)
    return path


CENTRE = '[centre]\nmember_id = "999999999999"\nname = "centre"\n'
BANK = '[[direct]]\ncode = "102100099996"\nname = "ICBC"\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (CENTRE + '[[direct]]\ncode = "10210009999"\nname = "short"\n', "direct.0.code"),
        (CENTRE + BANK + BANK, "listed more than once: 102100099996"),
        (
            CENTRE
            + BANK
            + '[[indirect]]\ncode = "102290000011"\nname = "x"\nclears_through = "104100000004"\n',
            "not a direct participant",
        ),
        (BANK, "centre"),
        ("not toml [", "not valid TOML"),
    ],
)
def test_bad_participants_file(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigurationError) as failure:
        load_participants(path)
    assert str(path) in str(failure.value) and message in str(failure.value)


def test_settings_defaults_and_cap_in_minor_units() -> None:
    settings = load_settings(CONFIG)
    assert settings.validation.cap_minor_units("A100") == 5_000_000
    assert settings.validation.cap_minor_units("B100") is None


def test_bad_setting_names_its_field(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text('[validation.per_transaction_caps]\nA100 = "50000.001"\n')
    with pytest.raises(ConfigurationError, match=r"validation\.per_transaction_caps"):
        load_settings(path)


def test_unknown_setting_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text("[parser]\nmax_size = 3\n")
    with pytest.raises(ConfigurationError, match=r"parser\.max_size"):
        load_settings(path)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://gateway@127.0.0.1/gateway",
        "postgresql://gateway@db/gateway",
        "mysql+aiomysql://gateway@db/gateway",
        "sqlite:///state/gateway.sqlite3",  # the synchronous driver: the gateway's engine is async
        "sqlite+aiosqlite:///",  # no file
        "state/gateway.sqlite3",
    ],
)
def test_a_database_other_than_an_sqlite_file_is_refused_at_start(tmp_path: Path, url: str) -> None:
    """SQLite is the only database this release supports and tests: anything else is a
    configuration error naming the field, not a failure when the gateway first connects."""
    path = tmp_path / "gateway.toml"
    path.write_text(f'[storage]\ndatabase_url = "{url}"\n')
    with pytest.raises(ConfigurationError) as failure:
        load_settings(path)
    message = str(failure.value)
    assert message.startswith(f"{path}: storage.database_url: ")
    assert "is not supported" in message and "SQLite only" in message
    assert "Value error" not in message


def test_an_sqlite_file_elsewhere_is_accepted(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.sqlite3'}"
    path = tmp_path / "gateway.toml"
    path.write_text(f'[storage]\ndatabase_url = "{url}"\n')
    assert load_settings(path).storage.database_url == url
    path.write_text('[storage]\ndatabase_url = ""\n')
    assert load_settings(path).storage.database_url is None
