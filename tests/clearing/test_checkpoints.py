"""Checkpoints: the service stores a snapshot of the core at every day switch and after a set
number of commands, keeps the newest few, and a start restores the newest whole one and
replays only the log after it. One that is damaged, or of another layout, is passed over with
a log line; the state is the same either way."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.clearing.commands import AdvanceClock
from gateway.clearing.core import RULES_VERSION, ClearingCore
from gateway.service import clearing_service
from gateway.service.clearing_service import ClearingService
from gateway.store.database import DATABASE_FILE, create_engine, sqlite_url
from tests.clearing.scenario import BOC, CCB, ICBC, MONDAY, SETTINGS, Scenario, participants
from tests.clearing.test_clearing_properties import KEEPING_ONE_DAY
from tests.clearing.test_operator_cli import core, ledger
from tests.clearing.test_retention import retired_until_complete, three_days

CAPS = {CCB: ("20000.00", "60000.00", "30000.00", "10000.00")}


def two_days() -> list[Any]:
    """Fourteen commands; the thirteenth switches the day (a queue, a receipt, deadlines,
    a closed session, funds, then the next day's first payment)."""
    scenario = Scenario(directory=participants(**CAPS))
    scenario.credit(ICBC, BOC, "150000.00")  # queued
    scenario.credit(CCB, BOC, "12000.00")
    package, _ = scenario.submit("B100", BOC, ICBC, (ICBC, BOC, "40.00"), deadline_days=1)
    scenario.submit("C100", ICBC, BOC, (ICBC, BOC, "5.00"))
    scenario.advance(to=scenario.at(10, 0))
    scenario.receipt(package, ICBC, T1=True)
    scenario.advance(to=scenario.at(11, 30))
    scenario.credit(BOC, ICBC, "80000.00")
    scenario.fund(CCB, "5000.00")
    scenario.credit(ICBC, CCB, "3.00")
    scenario.advance(to=scenario.at(16, 30))
    scenario.credit(BOC, CCB, "7.00")
    scenario.advance(to=scenario.at(17, 1))
    scenario.credit(CCB, ICBC, "9.00")
    return scenario.log


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


PART_BYTES = 1_000
"""Checkpoints here are stored in parts of this size (a checkpoint of the two days is about
twelve of them)."""


async def service_at(folder: Path, **checkpoints: int) -> ClearingService:
    service = ClearingService(
        create_engine(sqlite_url(folder)),
        participants(**CAPS),
        SETTINGS,
        lambda: MONDAY,
        **{"checkpoint_part_bytes": PART_BYTES, **checkpoints},
    )
    await service.open()
    return service


def replayed_from_genesis(commands: list[Any]) -> tuple[object, ...]:
    core = ClearingCore(participants(**CAPS), SETTINGS, MONDAY)
    for command in commands:
        core.execute(command)
    return core.fingerprint()


def checkpoints(folder: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(folder / DATABASE_FILE) as connection:
        return connection.execute(
            "SELECT sequence, business_date FROM clearing_checkpoint ORDER BY sequence"
        ).fetchall()


def write(folder: Path, **checkpoints: int) -> list[Any]:
    """Apply the two days through a service."""
    commands = two_days()

    async def flow() -> None:
        service = await service_at(folder, **checkpoints)
        for command in commands:
            await service.execute(command)
            await service.checkpoint_stored()  # each due one taken at once (see below)
        await service.close()

    run(flow())
    return commands


def reopened(folder: Path) -> tuple[int, int, tuple[object, ...]]:
    async def flow() -> tuple[int, int, tuple[object, ...]]:
        service = await service_at(folder)
        figures = (service.restored_from, service.replayed, service.core.fingerprint())
        await service.close()
        return figures

    result: tuple[int, int, tuple[object, ...]] = run(flow())
    return result


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


Edit = str | Callable[[sqlite3.Connection], None]
"""SQL, or a function of the connection."""


def stored_texts(connection: sqlite3.Connection) -> dict[int, str]:
    """Each checkpoint's text, its parts joined."""
    texts: dict[int, list[str]] = {}
    for sequence, text in connection.execute(
        "SELECT sequence, text FROM clearing_checkpoint_part ORDER BY sequence, part"
    ):
        texts.setdefault(sequence, []).append(text)
    return {sequence: "".join(parts) for sequence, parts in texts.items()}


def replaced(old: str, new: str, sequence: int | None = None) -> Edit:
    """Replace ``old`` by ``new`` in the stored text (of one checkpoint, or all); the edited
    text is stored as one part."""

    def edit(connection: sqlite3.Connection) -> None:
        for number, text in stored_texts(connection).items():
            if sequence is None or number == sequence:
                connection.execute(
                    "DELETE FROM clearing_checkpoint_part WHERE sequence = ?", (number,)
                )
                connection.execute(
                    "INSERT INTO clearing_checkpoint_part VALUES (?, 0, ?)",
                    (number, text.replace(old, new)),
                )
                connection.execute(
                    "UPDATE clearing_checkpoint SET parts = 1 WHERE sequence = ?", (number,)
                )

    return edit


def edit_checkpoints(folder: Path, *edits: Edit, rehash: bool = False) -> None:
    """Change the stored checkpoints as a damaged disk or a defect would; ``rehash``: with
    their digests recomputed (whole, but not what was stored)."""
    with sqlite3.connect(folder / DATABASE_FILE) as connection:
        for edit in edits:
            if isinstance(edit, str):
                connection.execute(edit)
            else:
                edit(connection)
        if rehash:
            for sequence, text in stored_texts(connection).items():
                connection.execute(
                    "UPDATE clearing_checkpoint SET state_sha256 = ? WHERE sequence = ?",
                    (_sha256(text), sequence),
                )


def test_a_day_switch_stores_a_checkpoint_and_a_start_replays_only_what_came_after(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    commands = write(tmp_path)
    assert len(commands) == 14
    assert checkpoints(tmp_path) == [(13, "2026-11-24")]
    caplog.set_level(logging.INFO, "isogw.clearing")
    restored_from, replayed, fingerprint = reopened(tmp_path)
    assert (restored_from, replayed) == (13, 1)
    assert fingerprint == replayed_from_genesis(commands)
    assert "event=ledger-restored checkpoint=13 replayed=1 sequence=14 seconds=" in caplog.text


def test_checkpoints_every_n_commands_and_only_the_newest_are_kept(tmp_path: Path) -> None:
    commands = write(tmp_path, checkpoint_every_commands=4, checkpoints_kept=2)
    # One transaction per command here: a checkpoint after every fourth (4, 8, 12), and at
    # the day switch (13); the two newest are kept.
    assert [sequence for sequence, _ in checkpoints(tmp_path)] == [12, 13]
    restored_from, replayed, fingerprint = reopened(tmp_path)
    assert (restored_from, replayed) == (13, 1)
    assert fingerprint == replayed_from_genesis(commands)


def test_a_damaged_checkpoint_is_passed_over_for_the_one_before(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    commands = write(tmp_path, checkpoint_every_commands=4, checkpoints_kept=3)
    edit_checkpoints(
        tmp_path,
        replaced('"funds_credited":500000', '"funds_credited":900000', sequence=13),
        "UPDATE clearing_checkpoint SET format = 99 WHERE sequence = 12",
    )
    caplog.set_level(logging.INFO, "isogw.clearing")
    restored_from, replayed, fingerprint = reopened(tmp_path)
    assert (restored_from, replayed) == (8, 6)
    assert [sequence for sequence, _ in checkpoints(tmp_path)] == [8, 12, 13]
    assert fingerprint == replayed_from_genesis(commands)
    assert (
        "event=checkpoint-unusable sequence=13 reason=its SHA-256 does not match its text; "
        "the one before it or the log is used"
    ) in caplog.text
    assert (
        f"event=checkpoint-passed-over sequence=12 reason=layout 99 rules {RULES_VERSION}, "
        f"this release restores layout 1 of rules {RULES_VERSION}"
    ) in caplog.text


def test_a_checkpoint_is_stored_in_parts_and_one_with_a_part_missing_is_passed_over(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Each part in a transaction of its own (the writer's go between them), the checkpoint's
    row last; a start joins the parts, and passes over a checkpoint that lacks one."""
    commands = write(tmp_path, checkpoint_every_commands=4, checkpoints_kept=3)
    with sqlite3.connect(tmp_path / DATABASE_FILE) as connection:
        layout = connection.execute(
            "SELECT c.sequence, c.parts, count(p.part), max(length(p.text)), "
            "sum(length(p.text)), c.state FROM clearing_checkpoint c "
            "JOIN clearing_checkpoint_part p ON p.sequence = c.sequence GROUP BY c.sequence"
        ).fetchall()
        texts = stored_texts(connection)
    assert [sequence for sequence, *_ in layout] == [8, 12, 13]
    for sequence, parts, count, longest, total, inline in layout:
        assert parts == count == -(-total // PART_BYTES) > 1
        assert longest == PART_BYTES and total == len(texts[sequence]) and inline == ""
    assert json.loads(texts[13])["business_date"] == "2026-11-24"
    # Parts of the checkpoints no longer kept were deleted with them.
    with sqlite3.connect(tmp_path / DATABASE_FILE) as connection:
        sequences = connection.execute(
            "SELECT DISTINCT sequence FROM clearing_checkpoint_part ORDER BY sequence"
        ).fetchall()
    assert sequences == [(8,), (12,), (13,)]
    edit_checkpoints(
        tmp_path, "DELETE FROM clearing_checkpoint_part WHERE sequence = 13 AND part = 2"
    )
    caplog.set_level(logging.INFO, "isogw.clearing")
    restored_from, replayed, fingerprint = reopened(tmp_path)
    assert (restored_from, replayed) == (12, 2)
    assert fingerprint == replayed_from_genesis(commands)
    parts = layout[-1][1]
    assert (
        f"event=checkpoint-unusable sequence=13 reason=parts 2 of its {parts} are missing; "
        "the one before it or the log is used"
    ) in caplog.text
    verified = core(tmp_path, "verify-checkpoints", "--json")
    assert verified.returncode == 1
    assert json.loads(verified.stdout)["checkpoints"][-1] == {
        "sequence": 13,
        "business_date": "2026-11-24",
        "verdict": f"parts 2 of its {parts} are missing",
    }


def test_a_checkpoint_stored_before_parts_existed_still_restores(tmp_path: Path) -> None:
    """Its JSON in the checkpoint's own row, no parts (``parts`` empty): read as it was."""
    commands = write(tmp_path)
    with sqlite3.connect(tmp_path / DATABASE_FILE) as connection:
        [(sequence, text)] = stored_texts(connection).items()
        connection.execute(
            "UPDATE clearing_checkpoint SET state = ?, parts = NULL WHERE sequence = ?",
            (text, sequence),
        )
        connection.execute("DELETE FROM clearing_checkpoint_part")
    restored_from, replayed, fingerprint = reopened(tmp_path)
    assert (restored_from, replayed) == (13, 1)
    assert fingerprint == replayed_from_genesis(commands)
    verified = core(tmp_path, "verify-checkpoints")
    assert verified.returncode == 0
    assert "checkpoint 13 (business date 2026-11-24): matches\n" in verified.stdout


def owed_at_start(folder: Path, **checkpoints: int) -> tuple[str | None, int, int]:
    """What a gateway's start says of the owed checkpoint, and where the start after it
    restores from and how much it replays."""

    async def flow() -> str | None:
        service = await service_at(folder, **checkpoints)
        owed = service.store_owed_checkpoint()
        await service.close()  # lets the storing finish
        return owed

    owed: str | None = run(flow())
    restored_from, replayed, _ = reopened(folder)
    return owed, restored_from, replayed


def test_a_day_switch_whose_checkpoint_was_not_stored_gets_it_at_the_next_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The process that switched the day stopped (or failed) before the checkpoint was stored:
    the next gateway start stores one of the core as restored, not the next day switch."""
    commands = write(tmp_path)
    edit_checkpoints(
        tmp_path, "DELETE FROM clearing_checkpoint", "DELETE FROM clearing_checkpoint_part"
    )
    caplog.set_level(logging.INFO, "isogw.clearing")
    owed, restored_from, replayed = owed_at_start(tmp_path)
    assert owed == "day-switched from 2026-11-23 to 2026-11-24"
    assert (
        "event=checkpoint-owed sequence=14 restored_from=0 "
        "reason=day-switched from 2026-11-23 to 2026-11-24"
    ) in caplog.text
    assert checkpoints(tmp_path) == [(14, "2026-11-24")]
    assert (restored_from, replayed) == (14, 0)
    assert reopened(tmp_path)[2] == replayed_from_genesis(commands)
    assert core(tmp_path, "verify-checkpoints").returncode == 0
    # Owed no more: the next start stores nothing.
    assert owed_at_start(tmp_path) == (None, 14, 0)
    assert checkpoints(tmp_path) == [(14, "2026-11-24")]


def test_a_start_that_replayed_more_than_the_checkpoint_interval_stores_one(
    tmp_path: Path,
) -> None:
    """Twelve commands of one day, no checkpoint (the interval was larger then); a start with
    an interval of ten stores one, and one that replays fewer than that stores none."""
    commands = two_days()[:12]

    async def flow() -> None:
        service = await service_at(tmp_path)
        for command in commands:
            await service.execute(command)
        await service.close()

    run(flow())
    assert checkpoints(tmp_path) == []
    assert owed_at_start(tmp_path, checkpoint_every_commands=13) == (None, 0, 12)
    assert checkpoints(tmp_path) == []
    assert owed_at_start(tmp_path, checkpoint_every_commands=12) == ("replayed 12 commands", 12, 0)
    assert checkpoints(tmp_path) == [(12, "2026-11-23")]


def test_a_replay_of_the_log_holds_no_connection_the_writer_would_wait_for(
    tmp_path: Path,
) -> None:
    """``verify-checkpoints`` and the recording of earlier retirements replay the log while a
    gateway may serve: between two commands of the replay, the writer commits at once."""
    commands = write(tmp_path)

    async def flow() -> list[int]:
        service = await service_at(tmp_path)
        replayed = []
        async for sequence, _ in service.replay(service.genesis_core()):
            replayed.append(sequence)
            if sequence == 3:
                tick = AdvanceClock(command_id="while-replaying", at=commands[-1].at)
                await asyncio.wait_for(service.execute(tick), 2)
        await service.close()
        return replayed

    assert run(flow()) == list(range(1, len(commands) + 2))


def test_a_start_keeps_no_writer_of_another_process_waiting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process that starts while others serve the ledger (a worker restarted, say) reads
    the checkpoint and replays the log after it without a lock their writers need: in the
    middle of the restore, and of the replay, another connection begins an immediate
    transaction at once."""
    commands = write(tmp_path)
    written: list[str] = []

    def write_meanwhile(where: str) -> None:
        with contextlib.closing(
            sqlite3.connect(tmp_path / DATABASE_FILE, timeout=0.5, isolation_level=None)
        ) as connection:
            connection.execute("BEGIN IMMEDIATE")  # "database is locked" after 0.5 s if held
            connection.execute("ROLLBACK")
        written.append(where)

    restore = clearing_service.restore
    apply = ClearingCore.apply

    def restoring(core: ClearingCore, state: dict[str, Any]) -> None:
        write_meanwhile("restore")
        restore(core, state)

    def replaying(core: ClearingCore, command: Any) -> Any:
        write_meanwhile(f"replay of {command.command_id}")
        return apply(core, command)

    monkeypatch.setattr(clearing_service, "restore", restoring)
    monkeypatch.setattr(ClearingCore, "apply", replaying)
    restored_from, replayed, _ = reopened(tmp_path)
    # The checkpoint of the day switch (the thirteenth command), then the fourteenth.
    assert (restored_from, replayed) == (13, 1)
    assert written == ["restore", f"replay of {commands[-1].command_id}"]


def test_the_writer_never_waits_for_a_checkpoint_being_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkpoint falls due while the one before is still being stored: the commands go on,
    and it is taken after the first batch that follows the end of that storing."""
    commands = two_days()
    release = asyncio.Event()
    store = ClearingService._store_checkpoint

    async def held(self: ClearingService, sequence: int, state: dict[str, Any]) -> int:
        await release.wait()
        return await store(self, sequence, state)

    monkeypatch.setattr(ClearingService, "_store_checkpoint", held)

    async def flow() -> None:
        service = await service_at(tmp_path, checkpoint_every_commands=4)
        for command in commands[:10]:  # due at 4 (held), at 8 (deferred)
            await asyncio.wait_for(service.execute(command), 5)
        assert checkpoints(tmp_path) == []
        release.set()
        await service.checkpoint_stored()
        assert [sequence for sequence, _ in checkpoints(tmp_path)] == [4]
        await service.execute(commands[10])  # the deferred one, after this batch
        await service.checkpoint_stored()
        await service.close()

    run(flow())
    assert [sequence for sequence, _ in checkpoints(tmp_path)] == [4, 11]


def test_a_checkpoint_that_does_not_restore_falls_back_to_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    commands = write(tmp_path)
    # Whole (its digest is recomputed) but of other participants: not this ledger's.
    edit_checkpoints(
        tmp_path, replaced('"accounts":{', '"accounts":{"123456789012":[1,0,0,0,0],'), rehash=True
    )
    caplog.set_level(logging.INFO, "isogw.clearing")
    restored_from, replayed, fingerprint = reopened(tmp_path)
    assert (restored_from, replayed) == (0, len(commands))
    assert fingerprint == replayed_from_genesis(commands)
    assert (
        "event=checkpoint-unusable sequence=13 reason=its settlement accounts "
        "are not the genesis participants'"
    ) in caplog.text


def test_a_checkpoint_that_cannot_be_stored_costs_nothing_but_start_time(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    commands = two_days()
    caplog.set_level(logging.INFO, "isogw.clearing")

    async def flow() -> tuple[object, ...]:
        service = await service_at(tmp_path, checkpoint_every_commands=4)
        for command in commands[:2]:
            await service.execute(command)
        with sqlite3.connect(tmp_path / DATABASE_FILE) as connection:
            connection.execute("DROP TABLE clearing_checkpoint")
        for command in commands[2:]:
            await service.execute(command)
        fingerprint = service.core.fingerprint()
        await service.close()
        return fingerprint

    assert run(flow()) == replayed_from_genesis(commands)
    assert "event=checkpoint-failed sequence=4 reason=" in caplog.text
    assert "no such table: clearing_checkpoint" in caplog.text
    # The next start finds no checkpoint (the table is made again) and replays the log.
    assert reopened(tmp_path)[:2] == (0, len(commands))


def test_verify_checkpoints_replays_the_log_and_says_which_differ(tmp_path: Path) -> None:
    write(tmp_path, checkpoint_every_commands=4, checkpoints_kept=3)
    verified = core(tmp_path, "verify-checkpoints")
    assert (verified.returncode, verified.stdout) == (
        0,
        "checkpoint 8 (business date 2026-11-23): matches\n"
        "checkpoint 12 (business date 2026-11-23): matches\n"
        "checkpoint 13 (business date 2026-11-24): matches\n"
        "3 checkpoints, all match the log\n"
        "record of retired items: 0 items, as the log retires them\n",
    )
    # Whole (its digest recomputed), but not what the log gives; and one of another layout.
    edit_checkpoints(
        tmp_path,
        replaced('"funds_credited":500000', '"funds_credited":900000', sequence=12),
        "UPDATE clearing_checkpoint SET format = 99 WHERE sequence = 13",
        rehash=True,
    )
    verified = core(tmp_path, "verify-checkpoints", "--json")
    assert verified.returncode == 1
    assert json.loads(verified.stdout) == {
        "checkpoints": [
            {"sequence": 8, "business_date": "2026-11-23", "verdict": "matches"},
            {
                "sequence": 12,
                "business_date": "2026-11-23",
                "verdict": "differs from the log's state in funds_credited",
            },
            {
                "sequence": 13,
                "business_date": "2026-11-24",
                "verdict": "layout 99; this release reads layout 1",
            },
        ],
        "retired_items": {"recorded": 0, "retired": 0, "verdict": "matches"},
    }
    assert core(tmp_path, "verify-checkpoints").stdout.endswith(
        "2 of 3 checkpoints do not match the log; a start restores the newest whole one, so "
        "stop the gateway and report this (the log is the record, and is unchanged)\n"
        "record of retired items: 0 items, as the log retires them\n"
    )


def test_verify_checkpoints_without_any(tmp_path: Path) -> None:
    verified = core(ledger(tmp_path), "verify-checkpoints")
    assert (verified.returncode, verified.stdout) == (
        0,
        "no checkpoint is stored yet (one is stored at every day switch)\n"
        "record of retired items: 0 items, as the log retires them\n",
    )


def retiring(folder: Path) -> list[Any]:
    """Three days of commands through a service keeping one business day, retiring one item
    at each tick (tests/clearing/test_retention.py): the third day's first ticks retire
    Monday."""
    scenario, _ = three_days(rules=RULES_VERSION)
    retired_until_complete(scenario)

    async def flow() -> None:
        service = ClearingService(
            create_engine(sqlite_url(folder)), participants(), KEEPING_ONE_DAY, lambda: MONDAY
        )
        await service.open()
        for command in scenario.log:
            await service.execute(command)
        await service.close()

    run(flow())
    return scenario.log


def test_verify_checkpoints_compares_the_record_of_retired_items_with_the_log(
    tmp_path: Path,
) -> None:
    retiring(tmp_path)
    with sqlite3.connect(tmp_path / DATABASE_FILE) as connection:
        recorded = connection.execute(
            "SELECT item_id, state FROM clearing_retired_item ORDER BY sequence"
        ).fetchall()
    assert [state for _, state in recorded] == ["settled", "returned", "settled"]
    verified = core(tmp_path, "verify-checkpoints")
    assert verified.returncode == 0
    assert verified.stdout.endswith("record of retired items: 3 items, as the log retires them\n")
    first, second, third = (item_id for item_id, _ in recorded)
    for case, (statement, verdict) in enumerate(
        (
            (
                f"UPDATE clearing_retired_item SET state = 'rejected' WHERE item_id = '{second}'",
                f"{second} (row 2) differs from how the log ends it in state",
            ),
            (
                f"DELETE FROM clearing_retired_item WHERE item_id = '{second}'",
                f"the log retires {second} where the record has {third} (row 3)",
            ),
            (
                f"DELETE FROM clearing_retired_item WHERE item_id = '{third}'",
                f"the log retires {third} (through 2026-11-23), which the record does not have",
            ),
            (
                "INSERT INTO clearing_retired_item SELECT 4, item_id || 'X', package_id, sender, "
                "transaction_id, business_type, real_time, payer, payee, amount, business_date, "
                "state, session_id, reason_code, return_of, returned_by, retired_through "
                f"FROM clearing_retired_item WHERE item_id = '{first}'",
                "the record has 1 items more than the log retires",
            ),
        ),
    ):
        folder = tmp_path / f"case-{case}"
        folder.mkdir()
        retiring(folder)
        with sqlite3.connect(folder / DATABASE_FILE) as connection:
            connection.execute(statement)
        verified = core(folder, "verify-checkpoints", "--json")
        assert verified.returncode == 1
        record = json.loads(verified.stdout)["retired_items"]
        assert record["verdict"] == verdict
        assert record["retired"] == 3
        text = core(folder, "verify-checkpoints").stdout
        assert text.endswith(
            f"record of retired items: {verdict} ({record['recorded']} recorded, the log "
            "retires 3); `core transactions` shows retired items from this record, so report "
            "this (the log is the record, and is unchanged)\n"
        )
