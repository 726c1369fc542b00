"""``isogw core``: status, positions, sessions and the operator commands, with --json."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway.clearing.core import RULES_VERSION
from gateway.operator_cli import _run
from gateway.service.clock import ManualClock
from tests.conftest import CONFIG, PROJECT

ZONE = ZoneInfo("Asia/Shanghai")


def core(state: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "core", *arguments],
        capture_output=True,
        text=True,
        cwd=PROJECT,
        env={**os.environ, "GATEWAY_STATE_DIR": str(state)},
    )


def ledger(state: Path) -> Path:
    """A new ledger in ``state``, as the first ``isogw serve`` would start it."""
    started = core(state, "init")
    assert started.returncode == 0, started.stderr
    assert started.stdout.splitlines()[0] == f"a new ledger at {state / 'gateway.sqlite3'}"
    return state


def test_status_positions_and_sessions(tmp_path: Path) -> None:
    ledger(tmp_path)
    status = json.loads(core(tmp_path, "status", "--json").stdout)
    assert set(status) >= {
        "business_date",
        "system_state",
        "open_session",
        "next_session_close",
        "next_day_switch",
    }
    assert status["rules_version"] == RULES_VERSION
    positions = {
        row["participant"]: row for row in json.loads(core(tmp_path, "positions", "--json").stdout)
    }
    icbc = positions["102100099996"]
    assert (icbc["collateral"], icbc["credit_line"], icbc["ring_fenced"], icbc["cap"]) == (
        "30000000.00",
        "20000000.00",
        "10000000.00",
        "60000000.00",
    )
    assert icbc["available"] == "60000000.00" and icbc["warning_level"] == "normal"
    assert icbc["queued_count"] == 0
    human = core(tmp_path, "positions").stdout
    assert human.splitlines()[0].split()[:4] == ["participant", "cap", "net_position", "available"]
    sessions = json.loads(core(tmp_path, "sessions", "--json").stdout)
    assert sessions[-1]["state"] == "open"
    assert (tmp_path / "gateway.sqlite3").is_file()


def test_operator_commands_are_logged_and_survive(tmp_path: Path) -> None:
    ledger(tmp_path)
    changed = core(tmp_path, "set-cap", "102100099996", "--collateral", "35000000.00", "--json")
    assert changed.returncode == 0
    assert json.loads(changed.stdout)[0]["cap"] == 6_500_000_000
    assert core(tmp_path, "set-schedule", "10:30", "15:00").returncode == 0
    closed = core(tmp_path, "close-session", "--json")
    assert json.loads(closed.stdout)[0]["kind"] == "session-closed"
    # A new process sees what the previous ones did.
    status = json.loads(core(tmp_path, "status", "--json").stdout)
    assert status["schedule"] == ["10:30", "15:00"]
    positions = {
        row["participant"]: row for row in json.loads(core(tmp_path, "positions", "--json").stdout)
    }
    assert positions["102100099996"]["cap"] == "65000000.00"
    before = json.loads(core(tmp_path, "status", "--json").stdout)
    switched = json.loads(core(tmp_path, "day-switch", "--json").stdout)
    after = json.loads(core(tmp_path, "status", "--json").stdout)
    kinds = [event["kind"] for event in switched]
    assert "session-closed" in kinds
    # The command runs on the real clock. Before the day's 17:00 switch it moves the business
    # date to the next working day; after it, the business date is already that day (ahead
    # of the calendar date), so the command closes the session and the date stays.
    if before["business_date"] > before["as_of"][:10]:
        assert "day-switched" not in kinds
        assert after["business_date"] == before["business_date"]
    else:
        [event] = [event for event in switched if event["kind"] == "day-switched"]
        assert (event["previous_business_date"], event["business_date"]) == (
            before["business_date"],
            after["business_date"],
        )
        assert after["business_date"] > before["as_of"][:10]


def test_refusals_and_usage_errors(tmp_path: Path) -> None:
    ledger(tmp_path)
    refused = core(tmp_path, "set-schedule", "18:00")
    assert refused.returncode == 1 and "AGNT" in refused.stdout
    assert core(tmp_path, "set-cap", "102100099996", "--collateral", "12.345").returncode == 2
    assert core(tmp_path, "set-cap", "1234").returncode == 2
    unknown = core(tmp_path, "set-cap", "308584000013", "--collateral", "1.00")
    assert unknown.returncode == 1 and "RC08" in unknown.stdout


def test_message_query_says_when_the_ledger_does_not_have_it(tmp_path: Path) -> None:
    ledger(tmp_path)
    completed = core(tmp_path, "message", "301290000007", "B301290000007000000000001")
    assert completed.returncode == 1, completed.stderr
    assert completed.stdout.startswith(
        "no message B301290000007000000000001 from 301290000007 in the ledger"
    )
    usage = core(tmp_path, "message", "301290000007")
    assert usage.returncode == 2 and "message_id" in usage.stderr


def test_a_day_switch_that_cannot_move_the_date_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the day has been switched (by hand, or by the 17:00 switch), and on a day that is
    not a working day, the business date is already the first working day after today: the
    command only closes the session, and says so instead of leaving the operator guessing."""
    monkeypatch.setenv("GATEWAY_STATE_DIR", str(tmp_path))
    clock = ManualClock(datetime(2026, 11, 23, 16, 0, tzinfo=ZONE))

    def run(action: str, as_json: bool = False) -> tuple[int, str]:
        out = io.StringIO()
        arguments = argparse.Namespace(action=action, json=as_json)
        return asyncio.run(_run(CONFIG, arguments, out, clock)), out.getvalue()

    assert asyncio.run(_run(CONFIG, argparse.Namespace(action="init"), io.StringIO(), clock)) == 0
    funds = argparse.Namespace(
        action="credit-account", participant="102100099996", amount="0.01", json=False
    )
    assert asyncio.run(_run(CONFIG, funds, io.StringIO(), clock)) == 0
    code, text = run("day-switch")
    assert code == 0 and "day-switched" in text and "note:" not in text
    # Each settlement account's statement of the day, in CNY and the centre's time.
    statements = {
        fields["participant"]: fields
        for kind, _, line in (line.partition(": ") for line in text.splitlines())
        if kind == "statement-closed"
        for fields in [json.loads(line)]
    }
    assert len(statements) == 5
    assert statements["102100099996"] == {
        "participant": "102100099996",
        "business_date": "2026-11-23",
        "sequence": 1,
        "period_from": "2026-11-23T16:00:00+08:00",
        "period_to": "2026-11-23T16:00:00+08:00",
        "opening_balance": "80000000.00",
        "closing_balance": "80000000.01",
        "movements": [
            {
                "at": "2026-11-23T16:00:00+08:00",
                "amount": "0.01",
                "value_date": "2026-11-23",
                "session_id": None,
            }
        ],
    }
    clock.set(datetime(2026, 11, 23, 16, 30, tzinfo=ZONE))
    code, text = run("day-switch")
    assert code == 0 and "day-switched" not in text
    assert text.splitlines()[-1] == (
        "note: the business date stays 2026-11-24: it is already the first working day after "
        "2026-11-23 (the day has already been switched today). The command closed session "
        "20261124-01 and opened 20261124-02; the next day switch is at "
        "2026-11-23T17:00:00+08:00."
    )
    clock.set(datetime(2026, 11, 23, 17, 30, tzinfo=ZONE))
    code, text = run("day-switch")
    assert code == 0 and "day-switched" not in text
    assert "(it is past today's day switch time, 17:00)" in text.splitlines()[-1]
    assert "next day switch is at 2026-11-24T17:00:00+08:00" in text.splitlines()[-1]
    # A Saturday, and no gateway ran since Monday: the week's day switches happen first, as
    # the time passes; the command itself cannot move the date.
    clock.set(datetime(2026, 11, 28, 10, 0, tzinfo=ZONE))
    code, text = run("day-switch")
    passed, own = text.split("then the command:\n")
    assert passed.startswith(
        "first, the time passed to 2026-11-28T10:00:00+08:00 (what was due by then and not "
        "yet done):\n"
    )
    assert passed.count("day-switched:") == 4 and "day-switched" not in own
    assert code == 0 and own.splitlines()[0].startswith("session-closed:")
    assert own.splitlines()[-1].startswith(
        "note: the business date stays 2026-11-30: it is already the first working day after "
        "2026-11-28 (today, 2026-11-28, is not a working day). The command closed session "
        "20261130-01 and opened 20261130-02;"
    )
    # --json stays a list of the events, for scripts.
    code, text = run("day-switch", as_json=True)
    assert code == 0 and "note" not in text
    assert "day-switched" not in [event["kind"] for event in json.loads(text)]


def test_a_command_run_where_there_is_no_ledger_starts_none(tmp_path: Path) -> None:
    """Run in the wrong folder, an operator's command used to start an empty ledger there
    (and new development keys) and report its empty figures as if they were the centre's."""
    state = tmp_path / "state"
    for arguments in (("status",), ("positions", "--json"), ("close-session",)):
        completed = core(state, *arguments)
        assert completed.returncode == 2, completed
        assert completed.stdout == ""
        assert completed.stderr.startswith(
            f"isogw: there is no ledger at {state / 'gateway.sqlite3'}: `isogw core` works on "
            "the ledger of a gateway that has started"
        )
        assert not state.exists()
    # An empty database (a file left by something else) is no ledger either: no table is
    # made in it.
    state.mkdir()
    (state / "gateway.sqlite3").touch()
    empty = core(state, "status")
    assert empty.returncode == 2 and "there is no ledger at" in empty.stderr
    with contextlib.closing(sqlite3.connect(state / "gateway.sqlite3")) as database:
        assert database.execute("select count(*) from sqlite_master").fetchone() == (0,)
    # Started on purpose, once.
    ledger(state)
    again = core(state, "init")
    assert again.returncode == 2
    assert again.stderr == (
        f"isogw: there is a ledger at {state / 'gateway.sqlite3'} already; nothing changed\n"
    )


def test_a_command_that_signs_refuses_to_make_new_keys(tmp_path: Path) -> None:
    """The banks trust the gateway's keys: an operator's command whose effects are signed
    must not make new ones where they are missing, and applies nothing without them."""
    ledger(tmp_path)
    before = json.loads(core(tmp_path, "sessions", "--json").stdout)
    for path in sorted((tmp_path / "keys").rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    completed = core(tmp_path, "close-session")
    assert completed.returncode == 2
    assert "holds no gateway key" in completed.stderr
    assert json.loads(core(tmp_path, "sessions", "--json").stdout) == before
    assert not (tmp_path / "keys" / "ca.pem").exists()


def test_kept_times_are_shown_in_the_centres_time_zone() -> None:
    """The gateway keeps times as the system clock gives them (UTC); the operator reads them
    in the centre's zone, where the business day is."""
    from gateway.operator_cli import _local
    from tests.clearing.scenario import Scenario

    core = Scenario().core
    assert _local("2026-11-23T01:00:02.5+00:00", core) == "2026-11-23T09:00:02.500000+08:00"
    assert _local("2026-11-23T09:00:02+08:00", core) == "2026-11-23T09:00:02+08:00"
    assert _local(None, core) == "-"
    assert _local("not a time", core) == "not a time"
