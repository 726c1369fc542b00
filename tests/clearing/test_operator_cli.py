"""``isogw core``: status, positions, sessions and the operator commands, with --json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import PROJECT


def core(state: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "core", *arguments],
        capture_output=True,
        text=True,
        cwd=PROJECT,
        env={**os.environ, "GATEWAY_STATE_DIR": str(state)},
    )


def test_status_positions_and_sessions(tmp_path: Path) -> None:
    status = json.loads(core(tmp_path, "status", "--json").stdout)
    assert set(status) >= {
        "business_date",
        "system_state",
        "open_session",
        "next_session_close",
        "next_day_switch",
    }
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
    refused = core(tmp_path, "set-schedule", "18:00")
    assert refused.returncode == 1 and "AGNT" in refused.stdout
    assert core(tmp_path, "set-cap", "102100099996", "--collateral", "12.345").returncode == 2
    assert core(tmp_path, "set-cap", "1234").returncode == 2
    unknown = core(tmp_path, "set-cap", "308584000013", "--collateral", "1.00")
    assert unknown.returncode == 1 and "RC08" in unknown.stdout


def test_message_query_says_when_the_ledger_does_not_have_it(tmp_path: Path) -> None:
    completed = core(tmp_path, "message", "301290000007", "B301290000007000000000001")
    assert completed.returncode == 1, completed.stderr
    assert completed.stdout.startswith(
        "no message B301290000007000000000001 from 301290000007 in the ledger"
    )
    usage = core(tmp_path, "message", "301290000007")
    assert usage.returncode == 2 and "message_id" in usage.stderr
