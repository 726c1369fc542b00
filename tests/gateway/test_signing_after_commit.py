"""Long messages (a receipt of a large batch package) are built and signed just after the
commit that owes them, outside the clearing writer's lock; until then their participant reads
none of its later messages, and a process that stopped before signing leaves them to the
others' sweeps (``gateway.service.notice_delivery``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from lxml import etree
from package_generator import write_package
from sqlalchemy import insert, update

from gateway.commands.outbound import (
    Entry,
    EntryDetail,
    Notification,
    SessionNotification,
    StatusReport,
)
from gateway.composition import open_runtime
from gateway.service.clock import ManualClock
from gateway.service.notice_delivery import (
    NoticeDelivery,
    entries_over,
    stored_document,
    unreadable,
)
from gateway.service.notifications import Notice
from gateway.service.receipts import RECEIPT
from gateway.store import messages
from gateway.store.tables import outbox
from tests.clearing.test_operator_cli import core
from tests.conftest import CONFIG, SAMPLES, config_copy
from tests.gateway.conftest import BOCOM, C100, ICBC, START, Harness, serving

BOC = "104100000004"
QUIET = {"signing_sweep_seconds": "3600.0"}
"""No sweep of the gateway's own while a test calls the sweeps (each is the next one)."""
A100 = (SAMPLES / "pacs.008.001.08" / "valid-A100-ordinary-credit.xml").read_bytes()
TRANSACTIONS = 1_200
"""More than ``encoding.sign_after_commit_entries`` (1,000 in the sample configuration)."""


def package(harness: Harness, folder: Path) -> bytes:
    assert harness.runtime.gateway.settings.encoding.sign_after_commit_entries < TRANSACTIONS
    return harness.sign(ICBC, write_package(folder / "package.xml", TRANSACTIONS).read_bytes())


@contextlib.asynccontextmanager
async def configured(
    folder: Path, monkeypatch: pytest.MonkeyPatch, **settings: str
) -> AsyncIterator[tuple[Harness, Path]]:
    """A harness on a copy of the sample configuration whose gateway.toml has ``settings``
    (name = value) changed; and that gateway.toml."""
    state = folder / "state"
    monkeypatch.setenv("GATEWAY_STATE_DIR", str(state))
    path = config_copy(folder, 8443)
    text = path.read_text()
    for name, value in settings.items():
        text, changed = re.subn(rf"^{name} = .*$", f"{name} = {value}", text, flags=re.MULTILINE)
        assert changed == 1, name
    path.write_text(text)
    async with serving(path, state, ManualClock(START)) as harness:
        yield harness, path


async def waiting_documents(harness: Harness) -> list[messages.DocumentToSign]:
    async with harness.runtime.clearing.reader.connect() as connection:
        return await messages.documents_to_sign(connection, 10)


REPORT = StatusReport(
    message_id="G1", created_at=START, original_message_id="B1", original_message_type=RECEIPT
)
"""A receipt's document, written into an outbox to sign."""


async def in_outbox(
    harness: Harness, *rows: tuple[str, str, str, str | None], message_type: str = RECEIPT
) -> None:
    """Outbox rows as a transaction writes them: participant, message id, the signed message
    ("" while it is to sign) and the document to sign (None once signed)."""
    async with harness.runtime.clearing.engine.begin() as connection:
        for participant, message_id, payload, document in rows:
            await connection.execute(
                insert(outbox).values(
                    participant=participant,
                    message_id=message_id,
                    message_type=message_type,
                    payload=payload,
                    created_at=START.isoformat(),
                    document_to_sign=document,
                )
            )


def statuses(report: etree._Element) -> list[str | None]:
    return [element.text for element in report.iter("{*}TxSts")]


def assert_receipt_of_every_transaction(harness: Harness, payload: str) -> None:
    found = statuses(harness.verify_from_centre(payload.encode()))
    assert len(found) == TRANSACTIONS and set(found) <= {"ACSP", "PDNG"}


async def test_a_long_receipt_is_signed_after_the_commit_that_owes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the receipt is being signed the package is committed (forwarded, its document
    waiting in the sender's outbox, unread) and other banks' payments go through. Long polls
    look again here only when woken (not every half second): the receiving bank is woken for
    the forward at once, the sender once its receipt is signed."""
    async with configured(tmp_path, monkeypatch, **QUIET, outbox_poll_seconds="30.0") as (
        harness,
        _,
    ):
        await signed_after_the_commit(harness, tmp_path, monkeypatch)


async def signed_after_the_commit(
    harness: Harness, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    signing, release = asyncio.Event(), asyncio.Event()
    original = NoticeDelivery.sign

    async def held(self: NoticeDelivery, notices: Sequence[Notice]) -> None:
        if notices:
            signing.set()
            await release.wait()
        await original(self, notices)

    monkeypatch.setattr(NoticeDelivery, "sign", held)
    receiving_bank = asyncio.create_task(harness.outbox(BOC, wait=30))
    sender = asyncio.create_task(harness.outbox(ICBC, wait=30))
    submitted = asyncio.create_task(harness.post(ICBC, package(harness, folder)))
    await asyncio.wait_for(signing.wait(), 30)
    (waiting,) = await waiting_documents(harness)
    assert (waiting.participant, waiting.message_type) == (ICBC, "pacs.002.001.10")
    # The receiving bank is woken for the forward (signed in the commit) at once.
    (forward,) = (await asyncio.wait_for(receiving_bank, 10))["messages"]
    assert forward["message_type"] == "pacs.008.001.08"
    assert (await harness.outbox(ICBC))["messages"] == []
    assert not sender.done()
    assert (await harness.post(BOCOM, harness.sign(BOCOM, C100)))[0] == 200
    assert not submitted.done()
    release.set()
    status, answer = await submitted
    assert status == 200 and b"<RctAck>" in answer
    assert await waiting_documents(harness) == []
    (receipt,) = (await asyncio.wait_for(sender, 10))["messages"]  # woken once it is signed
    assert receipt["message_id"] == waiting.message_id
    assert_receipt_of_every_transaction(harness, receipt["xml"])


async def test_a_receipt_that_could_not_be_signed_is_signed_by_a_later_sweep(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The package is committed and answered all the same; the failure is logged; a sweep
    signs a document it found waiting at the previous sweep (one just written is its own
    process's to sign)."""
    async with configured(tmp_path, monkeypatch, **QUIET) as (harness, _):
        caplog.set_level(logging.WARNING, logger="isogw.outbox")
        original = messages.store_signed

        def failing(*arguments: object, **named: object) -> bool:
            raise RuntimeError("disk full")

        monkeypatch.setattr(messages, "store_signed", failing)
        status, _ = await harness.post(ICBC, package(harness, tmp_path))
        assert status == 200
        (waiting,) = await waiting_documents(harness)
        (failure,) = [
            record for record in caplog.records if "signing-failed" in record.getMessage()
        ]
        assert failure.getMessage() == (
            f"event=signing-failed participant={ICBC} message_id={waiting.message_id} "
            "result=left-for-the-sweep"
        )
        assert "\nisogw_outbox_to_sign 1\n" in (await harness.get(ICBC, "/metrics"))[2]
        monkeypatch.setattr(messages, "store_signed", original)
        notices = harness.runtime.messages.notices
        assert await notices.sweep() == set()  # seen for the first time
        assert (await harness.outbox(ICBC))["messages"] == []
        assert await notices.sweep() == {ICBC}
        assert await notices.sweep() == set()
        (receipt,) = (await harness.outbox(ICBC))["messages"]
        assert receipt["sequence"] == waiting.sequence
        assert_receipt_of_every_transaction(harness, receipt["xml"])
        assert any("event=left-unsigned-signed" in record.getMessage() for record in caplog.records)
        assert "\nisogw_outbox_to_sign 0\n" in (await harness.get(ICBC, "/metrics"))[2]


async def test_a_process_that_stopped_before_signing_leaves_the_receipt_to_the_next_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_STATE_DIR", str(tmp_path))
    clock = ManualClock(START)

    async def stopped(self: NoticeDelivery, notices: Sequence[Notice]) -> None:
        return None

    async def no_sweep(self: NoticeDelivery, everything: bool = False) -> set[str]:
        return set()

    with monkeypatch.context() as patched:
        patched.setattr(NoticeDelivery, "sign", stopped)
        patched.setattr(NoticeDelivery, "sweep", no_sweep)
        async with serving(CONFIG, tmp_path, clock) as harness:
            assert (await harness.post(ICBC, package(harness, tmp_path)))[0] == 200
            (waiting,) = await waiting_documents(harness)
            assert (await harness.outbox(ICBC))["messages"] == []
    async with serving(CONFIG, tmp_path, clock) as harness:
        found = await harness.outbox(ICBC, wait=10)  # the start's sweep signs it
        (receipt,) = found["messages"]
        assert (receipt["sequence"], receipt["message_id"]) == (
            waiting.sequence,
            waiting.message_id,
        )
        assert_receipt_of_every_transaction(harness, receipt["xml"])
        assert await waiting_documents(harness) == []


async def test_an_operator_command_signs_the_long_messages_it_causes_once_committed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the setting at 1, a receipt of 4 transactions is long: the one of the queued
    items (PDNG), and the one of those items netted when the operator raises the cap (ACSP).
    The operator's command, as the gateway's ticks, signs it once committed: nothing is left
    for a sweep."""
    import argparse
    import io

    from gateway.operator_cli import _run

    async with configured(tmp_path, monkeypatch, sign_after_commit_entries="1") as (
        harness,
        settings,
    ):
        await harness.remove_cap(ICBC)
        assert (await harness.post(ICBC, harness.sign(ICBC, A100)))[0] == 200
        (pending,) = (await harness.outbox(ICBC))["messages"]
        assert statuses(harness.verify_from_centre(pending["xml"].encode())) == ["PDNG"] * 4
        out = io.StringIO()
        arguments = argparse.Namespace(
            action="set-cap",
            json=False,
            participant=ICBC,
            collateral="100000.00",
            credit_line=None,
            ring_fenced=None,
        )
        assert await _run(settings, arguments, out, harness.clock) == 0, out.getvalue()
        assert await waiting_documents(harness) == []
        (netted,) = (await harness.outbox(ICBC, after=pending["sequence"]))["messages"]
        assert statuses(harness.verify_from_centre(netted["xml"].encode())) == ["ACSP"] * 4


async def test_a_participants_messages_after_one_to_sign_wait_for_it(harness: Harness) -> None:
    """Read and acknowledged in order, none missed: nothing after a message still to sign
    is read or acknowledged until it is signed; other participants are not held up."""
    await in_outbox(
        harness,
        (ICBC, "M1", "signed one", None),
        (ICBC, "M2", "", "{}"),
        (BOCOM, "M3", "another bank's", None),
        (ICBC, "M4", "signed after it", None),
        message_type="admi.004.001.02",
    )

    async def read(participant: str) -> list[str]:
        async with harness.runtime.clearing.reader.connect() as connection:
            found = await messages.read_outbox(connection, participant, 0, 10)
        return [message.message_id for message in found]

    assert await read(ICBC) == ["M1"]
    assert await read(BOCOM) == ["M3"]
    async with harness.runtime.clearing.engine.begin() as connection:
        assert await messages.acknowledge(connection, ICBC, 2**40, START) == 1
    assert await read(ICBC) == []
    store = messages.store_signed
    assert await harness.runtime.clearing.write_apart(
        lambda connection: store(connection, ICBC, "M2", b"signed now")
    )
    assert not await harness.runtime.clearing.write_apart(
        lambda connection: store(connection, ICBC, "M2", b"signed twice")
    )
    assert await read(ICBC) == ["M2", "M4"]
    async with harness.runtime.clearing.reader.connect() as connection:
        (second,) = await messages.read_outbox(connection, ICBC, 0, 1)
    assert second.payload == b"signed now"


async def test_a_document_that_cannot_be_signed_is_logged_and_the_sweep_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A damaged document (here not JSON) is logged at each sweep and stays (its bank's later
    messages wait: ``isogw_outbox_to_sign`` shows it); the sweep signs the others."""
    async with configured(tmp_path, monkeypatch, **QUIET) as (harness, _):
        caplog.set_level(logging.WARNING, logger="isogw.outbox")
        await in_outbox(
            harness, (ICBC, "G0", "", "{damaged"), (BOCOM, "G1", "", stored_document(REPORT))
        )
        assert await harness.runtime.messages.notices.sweep(everything=True) == {BOCOM}
        (failure,) = [
            record for record in caplog.records if "signing-failed" in record.getMessage()
        ]
        assert failure.getMessage() == (
            f"event=signing-failed participant={ICBC} message_id=G0 result=left-for-the-sweep"
        )
        (signed,) = (await harness.outbox(BOCOM))["messages"]
        assert signed["message_id"] == "G1"
        harness.verify_from_centre(signed["xml"].encode())
        assert [row.message_id for row in await waiting_documents(harness)] == ["G0"]


async def test_the_operator_lists_what_waits_to_be_signed_and_signs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``isogw core unsigned``: each waiting message, how many of its bank's later messages
    wait for it, and a damaged one named as such; ``--sign`` signs what can be read (exit 1
    while one is left), and once the damaged one is mended, it too."""
    async with configured(tmp_path, monkeypatch, **QUIET) as (harness, _):
        await in_outbox(
            harness,
            (ICBC, "G0", "", "{damaged"),
            (BOCOM, "G1", "", stored_document(REPORT)),
            (ICBC, "G2", "signed after it", None),
        )
        state = tmp_path / "state"
        listed = core(state, "unsigned")
        assert listed.returncode == 1, listed.stderr
        written = START.astimezone(harness.runtime.clearing.core.zone).isoformat()
        assert listed.stdout.splitlines() == [
            "outbox messages committed but not yet signed, oldest first (2):",
            f"#1 to {ICBC}: {RECEIPT} G0, written {written}; 1 later message(s) of {ICBC} "
            "wait for it",
            "  cannot be read: its document is not JSON (Expecting property name enclosed in "
            "double quotes: line 1 column 2 (char 1)). No signing will help: restore the ledger "
            "from its backup, or report it",
            f"#2 to {BOCOM}: {RECEIPT} G1, written {written}; 0 later message(s) of {BOCOM} "
            "wait for it",
            "gateway processes sign these within seconds; one that stays failed to sign (the "
            "log says why: event=signing-failed). `isogw core unsigned --sign` signs them now",
        ]
        signed = core(state, "unsigned", "--sign", "--json")
        assert signed.returncode == 1, signed.stderr
        result = json.loads(signed.stdout)
        assert result["left_waiting"] == 1
        damaged, readable = result["messages"]
        assert (damaged["message_id"], damaged["later_messages_waiting"]) == ("G0", 1)
        assert damaged["problem"].startswith("its document is not JSON")
        assert damaged["outcome"].startswith("not signed: JSONDecodeError: Expecting property")
        assert (readable["message_id"], readable["problem"], readable["outcome"]) == (
            "G1",
            None,
            "signed",
        )
        (g1,) = (await harness.outbox(BOCOM))["messages"]
        harness.verify_from_centre(g1["xml"].encode())
        assert (await harness.outbox(ICBC))["messages"] == []  # G2 waits for G0
        # The operator mends the row (from a backup, say): it is signed, and G2 follows.
        mended = stored_document(REPORT.model_copy(update={"message_id": "G0"}))
        async with harness.runtime.clearing.engine.begin() as connection:
            await connection.execute(
                update(outbox).where(outbox.c.message_id == "G0").values(document_to_sign=mended)
            )
        signed = core(state, "unsigned", "--sign")
        assert signed.returncode == 0, signed.stderr
        assert signed.stdout.splitlines()[-2:] == ["  signed", "0 left waiting to be signed"]
        assert [message["message_id"] for message in (await harness.outbox(ICBC))["messages"]] == [
            "G0",
            "G2",
        ]
        final = core(state, "unsigned")
        assert (final.stdout, final.returncode) == (
            "no outbox message is waiting to be signed\n",
            0,
        )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            '{"model":"Nothing","document":{}}',
            "its document names no known message model (KeyError: 'Nothing')",
        ),
        (
            "[1]",
            "its document names no known message model (TypeError: list indices must be "
            "integers or slices, not str)",
        ),
        (
            '{"model":"StatusReport","document":{"message_id":"G1"}}',
            "its document does not fit StatusReport: 1 problem(s), the first at created_at: "
            "Field required",
        ),
        (stored_document(REPORT), None),
    ],
)
def test_why_a_waiting_document_cannot_be_read(text: str, problem: str | None) -> None:
    row = messages.DocumentToSign(1, ICBC, "G1", RECEIPT, text, START.isoformat())
    assert unreadable(row) == problem


def test_entries_are_counted_through_nested_lists() -> None:
    """A session notification of 2 notifications with 2 entries of 2 details each: 2 + 4 + 8
    entries."""
    detail = EntryDetail(
        message_id="M1",
        transaction_id="T1",
        amount=100,
        currency="CNY",
        direction="CRDT",
        debtor_agent=BOCOM,
        creditor_agent=ICBC,
    )
    entry = Entry(
        amount=200,
        currency="CNY",
        direction="CRDT",
        status="BOOK",
        transaction_code="PMNT",
        details=(detail, detail),
    )
    notification = Notification(
        notification_id="N1", account="A1", created_at=START, entries=(entry, entry)
    )
    session = SessionNotification(
        message_id="S1", created_at=START, notifications=(notification, notification)
    )
    assert entries_over(session, 13)
    assert not entries_over(session, 14)
    assert not entries_over(notification.model_copy(update={"entries": ()}), 0)


async def test_a_ledger_from_before_signing_after_commit_gains_its_column_and_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_STATE_DIR", str(tmp_path))
    runtime = await open_runtime(CONFIG, ManualClock(START), run_ticker=False)
    await runtime.clearing.close()
    database = sqlite3.connect(tmp_path / "gateway.sqlite3")
    with database:
        database.execute("DROP INDEX outbox_waiting_to_be_signed")
        database.execute("ALTER TABLE outbox DROP COLUMN document_to_sign")
    database.close()
    runtime = await open_runtime(CONFIG, ManualClock(START), run_ticker=False)
    await runtime.clearing.close()
    database = sqlite3.connect(tmp_path / "gateway.sqlite3")
    columns = [row[1] for row in database.execute("PRAGMA table_info(outbox)")]
    indexes = [row[1] for row in database.execute("PRAGMA index_list(outbox)")]
    plan = " ".join(
        str(row[3])
        for row in database.execute(
            "EXPLAIN QUERY PLAN SELECT min(sequence) FROM outbox "
            "WHERE participant = 'X' AND document_to_sign IS NOT NULL"
        )
    )
    database.close()
    assert columns[-1] == "document_to_sign"
    assert "outbox_waiting_to_be_signed" in indexes
    assert "outbox_waiting_to_be_signed" in plan
