"""A snapshot of the clearing core restores the state it was taken from: restored onto a core
built from the same genesis, it decides every later command exactly as the original core does
(the same events, the same state), wherever in the history the snapshot was taken."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.clearing.core import RULES_VERSION, ClearingCore
from gateway.clearing.snapshots import SnapshotError, capture, restore
from gateway.configuration.clearing_settings import ClearingSettings
from gateway.service import snapshot_text
from gateway.service.snapshot_text import serialized
from tests.clearing.scenario import BOC, CCB, ICBC, MONDAY, SETTINGS, Scenario, participants
from tests.clearing.test_clearing_properties import KEEPING_ONE_DAY, step
from tests.clearing.test_idempotency_and_restart import busy_day

CAPS = {CCB: ("20000.00", "60000.00", "30000.00", "10000.00")}


def through_json(state: dict[str, Any]) -> dict[str, Any]:
    """As a snapshot is stored: JSON text."""
    loaded: dict[str, Any] = json.loads(json.dumps(state))
    return loaded


def restored(
    state: dict[str, Any],
    clearing_settings: ClearingSettings = SETTINGS,
    **caps: tuple[str, str, str, str],
) -> ClearingCore:
    core = ClearingCore(participants(**caps), clearing_settings, MONDAY)
    restore(core, through_json(state))
    return core


def continues_alike(
    commands: list[Any],
    cut: int,
    clearing_settings: ClearingSettings = SETTINGS,
    **caps: tuple[str, str, str, str],
) -> None:
    original = ClearingCore(participants(**caps), clearing_settings, MONDAY)
    for command in commands[:cut]:
        original.execute(command)
    copy = restored(capture(original), clearing_settings, **caps)
    assert capture(copy) == through_json(capture(original))
    for position, command in enumerate(commands[cut:], cut):
        assert copy.execute(command) == original.execute(command), f"command {position}"
    assert copy.fingerprint() == original.fingerprint()
    assert capture(copy) == capture(original)


def test_a_snapshot_taken_after_any_command_of_a_busy_day_continues_alike() -> None:
    # Queued items, pending real-time and debit deadlines, a receipt, closed and open
    # sessions, a settlement shortfall, funds, a day switch with its statements.
    commands = busy_day().log
    for cut in range(len(commands) + 1):
        continues_alike(commands, cut, **CAPS)


def test_a_snapshot_keeps_warning_levels_returns_receipts_schedule_and_caps() -> None:
    scenario = Scenario()
    credit = scenario.credit(ICBC, BOC, "300.00")
    scenario.credit(ICBC, CCB, "45000.00")
    scenario.credit(ICBC, CCB, "40000.00")  # ICBC's available amount falls under 20%: warning
    package, _ = scenario.submit("B100", BOC, ICBC, (ICBC, BOC, "40.00"), deadline_days=1)
    scenario.receipt(package, ICBC, T1=True)
    scenario.set_schedule("10:30", "15:30")
    scenario.set_cap(CCB, credit_line="0.00")
    scenario.advance(to=scenario.at(10, 31))
    scenario.return_items(BOC, f"{credit}/T1")
    scenario.cancel(ICBC, scenario.log[-1].command_id)
    scenario.advance(to=scenario.at(17, 30))
    scenario.fund(CCB, "10.00")
    scenario.advance(to=scenario.at(12, 0, day=1))
    for cut in range(len(scenario.log) + 1):
        continues_alike(scenario.log, cut)


@pytest.mark.parametrize("clearing_settings", [SETTINGS, KEEPING_ONE_DAY], ids=["5-days", "1-day"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_snapshot_of_any_random_history_continues_alike(
    clearing_settings: ClearingSettings, data: st.DataObject
) -> None:
    # Kept one business day, the history retires business (and the snapshot is taken before
    # or after, or between the end of day that decides it and the command that does it).
    scenario = Scenario(settings=clearing_settings)
    for _ in range(data.draw(st.integers(5, 40))):
        step(scenario, data)
    scenario.advance(days=2)
    cut = data.draw(st.integers(0, len(scenario.log)))
    continues_alike(scenario.log, cut, clearing_settings)


def test_a_snapshot_of_another_layout_rules_or_participants_is_refused() -> None:
    state = capture(busy_day().core)
    other_layout = {**state, "format": 99}
    with pytest.raises(SnapshotError, match=r"^layout 99, not 1$"):
        restored(other_layout, **CAPS)
    core = ClearingCore(participants(**CAPS), SETTINGS, MONDAY, rules=1)
    with pytest.raises(SnapshotError, match=rf"^rules version {RULES_VERSION}, the ledger's is 1$"):
        restore(core, through_json(state))
    fewer = {**state, "accounts": {ICBC: state["accounts"][ICBC]}}
    with pytest.raises(
        SnapshotError, match=r"^its settlement accounts are not the genesis participants'$"
    ):
        restored(fewer, **CAPS)
    broken = {**state, "items": [["only an id"]]}
    with pytest.raises(SnapshotError, match=r"^it does not restore: ValueError: not enough"):
        restored(broken, **CAPS)


async def test_a_snapshot_is_serialized_a_slice_at_a_time_as_json_dumps_would(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The service writes a snapshot's long lists and maps a slice at a time (the event loop
    runs between slices); the text is exactly the one ``json.dumps`` gives at once."""
    state = capture(busy_day().core)
    whole = json.dumps(state, separators=(",", ":"))
    assert await serialized(state) == whole  # shorter than a slice: in one piece
    monkeypatch.setattr(snapshot_text, "SERIALIZED_SLICE", 3)
    long_ones = [key for key, value in state.items() if isinstance(value, list | dict)]
    assert {"items", "seen", "packages", "sessions"} <= {
        key for key in long_ones if len(state[key]) > 3
    }
    assert await serialized(state) == whole
