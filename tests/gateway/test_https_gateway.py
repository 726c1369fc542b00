"""The HTTPS gateway end to end over mutual TLS on loopback: signed submissions and answers,
outboxes, idempotency, and the real-time flows with their receipts and deadline."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import ssl
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from lxml import etree
from sqlalchemy import delete, select

from gateway.clearing.commands import SubmitPackage
from gateway.clearing.refusals import CommandRefusedError
from gateway.commands.inbound import BusinessHeader
from gateway.commands.outbound import MessageReject
from gateway.composition import open_runtime
from gateway.security.keys import KeyStore, certificate_sha256, read_certificate
from gateway.service.clock import SystemClock
from gateway.service.translation import command_id
from gateway.store.authentication_failures import failing
from gateway.store.tables import checkpoint, checkpoint_part, command_log
from gateway.transport.authentication_alarm import AuthenticationMonitor
from tests.conftest import CONFIG, SAMPLES
from tests.gateway.conftest import (
    BOCOM,
    C100,
    C100_ID,
    C100_TX,
    CCB,
    CENTRE,
    D100,
    D100_ID,
    D100_TX,
    ICBC,
    START,
    Harness,
    SteadyClock,
    assert_prometheus_text,
    exhaust_rate_limit,
    operator,
    receipt_outcomes,
    statuses,
)


def kinds(outbox: dict[str, Any]) -> list[str]:
    return [message["message_type"] for message in outbox["messages"]]


async def test_real_time_credit_end_to_end(harness: Harness) -> None:
    status, answer = await harness.post(BOCOM, harness.sign(BOCOM, C100))
    assert status == 200
    root = harness.verify_from_centre(answer)
    assert root.find(".//{*}RctAck") is not None
    ccb = await harness.outbox(CCB)
    assert kinds(ccb) == ["pacs.008.001.08"]
    forwarded = ccb["messages"][0]["xml"].encode()
    harness.verify_from_centre(forwarded)
    assert C100_TX.encode() in forwarded
    status, answer = await harness.post(CCB, harness.receipt(CCB, C100_ID, C100_TX, "ACSP"))
    assert status == 200, answer
    for bank in (BOCOM, CCB):
        messages = (await harness.outbox(bank))["messages"]
        receipts = [message for message in messages if message["message_type"] == "pacs.002.001.10"]
        assert receipts and statuses(receipts[-1]["xml"]) == ["ACSP"]
        assert "<ClrSysRef>20261123-01</ClrSysRef>" in receipts[-1]["xml"]
    item = harness.runtime.clearing.core.items[f"{BOCOM}:{C100_ID}/{C100_TX}"]
    assert item.state == "netted"


async def test_real_time_debit_end_to_end(harness: Harness) -> None:
    assert (await harness.post(ICBC, harness.sign(ICBC, D100)))[0] == 200
    assert kinds(await harness.outbox(CCB)) == ["pacs.003.001.08"]
    status, _ = await harness.post(CCB, harness.receipt(CCB, D100_ID, D100_TX, "ACSP"))
    assert status == 200
    receipts = (await harness.outbox(ICBC))["messages"]
    assert statuses(receipts[-1]["xml"]) == ["ACSP"]


async def test_no_answer_in_time_rejects_ab05_and_a_late_answer_is_refused(
    harness: Harness,
) -> None:
    await harness.post(BOCOM, harness.sign(BOCOM, C100))
    harness.clock.advance(seconds=21)
    await harness.runtime.messages.tick()
    for bank in (BOCOM, CCB):
        last = (await harness.outbox(bank))["messages"][-1]
        assert last["message_type"] == "pacs.002.001.10"
        assert statuses(last["xml"]) == ["RJCT"] and "<Cd>AB05</Cd>" in last["xml"]
    status, answer = await harness.post(CCB, harness.receipt(CCB, C100_ID, C100_TX, "ACSP"))
    assert status == 400 and b"<RjctgPtyRsn>TM01</RjctgPtyRsn>" in answer


async def test_failed_cap_check_rejects_to_both_banks_am04(harness: Harness) -> None:
    await harness.remove_cap(BOCOM)
    await harness.post(BOCOM, harness.sign(BOCOM, C100))
    await harness.post(CCB, harness.receipt(CCB, C100_ID, C100_TX, "ACSP"))
    for bank in (BOCOM, CCB):
        last = (await harness.outbox(bank))["messages"][-1]
        assert statuses(last["xml"]) == ["RJCT"] and "<Cd>AM04</Cd>" in last["xml"]


async def test_payee_bank_refusal_reaches_the_initiator(harness: Harness) -> None:
    await harness.post(BOCOM, harness.sign(BOCOM, C100))
    await harness.post(CCB, harness.receipt(CCB, C100_ID, C100_TX, "RJCT", "AC01"))
    last = (await harness.outbox(BOCOM))["messages"][-1]
    assert statuses(last["xml"]) == ["RJCT"] and "<Cd>AC01</Cd>" in last["xml"]


def bank_reject(
    harness: Harness,
    code: str,
    reference: str,
    number: int = 1,
    reason_text: str = "creditor name has characters the core banking system cannot store",
) -> bytes:
    """A bank's admi.002: it could not process the message ``reference`` the centre sent it."""
    reject = MessageReject(
        related_reference=reference,
        reason_code="FF01",
        rejected_at=harness.clock.now(),
        error_location="line 40: /Message/Document/FIToFICstmrCdtTrf/CdtTrfTxInf/Cdtr/Nm",
        reason_text=reason_text,
    )
    header = BusinessHeader(
        sender=code,
        receiver=CENTRE,
        business_message_id=f"J{code}{number:08d}",
        message_definition="admi.002.001.01",
        created_at=harness.clock.now(),
    )
    return harness.sign(code, harness.runtime.gateway.encoder.message(header, reject))


async def test_a_real_time_credit_the_payee_bank_rejects_ends_at_once_ab10(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """The payee's bank cannot process the forwarded pacs.008 and answers admi.002: both banks
    get RJCT AB10 now (not AB05 twenty seconds later), and the initiator gets the bank's
    reject with its reason and location."""
    caplog.set_level(logging.WARNING, logger="isogw.messages")
    await harness.post(BOCOM, harness.sign(BOCOM, C100))
    status, answer = await harness.post(CCB, bank_reject(harness, CCB, C100_ID))
    assert status == 200 and harness.verify_from_centre(answer).find(".//{*}RctAck") is not None
    bocom = (await harness.outbox(BOCOM))["messages"]
    assert [message["message_type"] for message in bocom] == ["admi.002.001.01", "pacs.002.001.10"]
    forwarded = harness.verify_from_centre(bocom[0]["xml"].encode())
    assert forwarded.findtext(".//{*}RjctgPtyRsn") == "FF01"
    assert forwarded.findtext(".//{*}RltdRef/{*}Ref") == C100_ID
    assert "core banking system" in forwarded.findtext(".//{*}RsnDesc", "")
    ccb = (await harness.outbox(CCB))["messages"]
    assert kinds({"messages": ccb}) == ["pacs.008.001.08", "pacs.002.001.10"]
    for receipt in (bocom[-1], ccb[-1]):
        assert statuses(receipt["xml"]) == ["RJCT"] and "<Cd>AB10</Cd>" in receipt["xml"]
    assert harness.runtime.clearing.core.items[f"{BOCOM}:{C100_ID}/{C100_TX}"].state == "rejected"
    [logged] = [r.getMessage() for r in caplog.records if "participant-reject" in r.getMessage()]
    assert logged.startswith(
        f"event=participant-reject participant={CCB} reference={C100_ID} code=FF01 "
        'location="line 40: /Message/Document/FIToFICstmrCdtTrf/CdtTrfTxInf/Cdtr/Nm" '
        f'result="real-time items rejected AB10 and the reject forwarded to {BOCOM}" text="'
    )
    # The deadline passes with nothing more, and an answer after the reject is refused.
    harness.clock.advance(seconds=21)
    assert await harness.runtime.messages.tick() == []
    status, answer = await harness.post(CCB, harness.receipt(CCB, C100_ID, C100_TX, "ACSP"))
    assert status == 400 and b"<RjctgPtyRsn>AGNT</RjctgPtyRsn>" in answer


async def test_a_real_time_debit_the_payer_bank_rejects_ends_at_once_ab10(
    harness: Harness,
) -> None:
    await harness.post(ICBC, harness.sign(ICBC, D100))
    assert (await harness.post(CCB, bank_reject(harness, CCB, D100_ID)))[0] == 200
    icbc = (await harness.outbox(ICBC))["messages"]
    assert kinds({"messages": icbc}) == ["admi.002.001.01", "pacs.002.001.10"]
    assert statuses(icbc[-1]["xml"]) == ["RJCT"] and "<Cd>AB10</Cd>" in icbc[-1]["xml"]


async def test_a_batch_debit_the_payer_bank_rejects_still_waits_for_its_receipt(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """Batch items have days to be answered (T+N): the bank may fix what it could not read and
    send its receipt, so the reject only travels on to the payee's bank."""
    caplog.set_level(logging.WARNING, logger="isogw.messages")
    boc, batch_id = "104100000004", "B104100000004202611230021"
    sample = (SAMPLES / "pacs.003.001.08" / "valid-B100-ordinary-debit.xml").read_bytes()
    assert (await harness.post(boc, harness.sign(boc, sample)))[0] == 200
    assert (await harness.post(ICBC, bank_reject(harness, ICBC, batch_id)))[0] == 200
    assert kinds(await harness.outbox(boc)) == ["admi.002.001.01"]
    core = harness.runtime.clearing.core
    states = {core.items[item].state for item in core.packages[f"{boc}:{batch_id}"].item_ids}
    assert states == {"awaiting-receipt"}
    assert f'result="forwarded to {boc}; the receipt is still awaited"' in caplog.text


async def test_a_reject_of_anything_else_is_taken_and_changes_nothing(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """A bank that cannot process one of the centre's own messages (a receipt, a notification)
    is heard (logged for the operators); nothing is forwarded and nothing changes."""
    caplog.set_level(logging.WARNING, logger="isogw.messages")
    await harness.post(BOCOM, harness.sign(BOCOM, C100))
    status, _ = await harness.post(CCB, bank_reject(harness, CCB, "G20261123090000A00000001"))
    assert status == 200
    assert kinds(await harness.outbox(BOCOM)) == []
    assert harness.runtime.clearing.core.items[f"{BOCOM}:{C100_ID}/{C100_TX}"].state == (
        "awaiting-receipt"
    )
    assert 'result="nothing changed (not a package forwarded to this bank)"' in caplog.text
    # A bank that was not sent the package cannot end it either.
    status, _ = await harness.post(ICBC, bank_reject(harness, ICBC, C100_ID))
    assert status == 200 and kinds(await harness.outbox(BOCOM)) == []


@pytest.mark.parametrize(
    "sample",
    [
        "admi.004.001.02/valid-day-switch.xml",
        "admi.007.001.01/valid-accepted-for-processing.xml",
        "camt.053.001.08/valid-end-of-day-statement.xml",
        "camt.054.001.08/valid-session-netting-notification.xml",
    ],
)
async def test_a_message_only_the_centre_sends_is_refused_ag01(
    harness: Harness, sample: str
) -> None:
    """A valid statement, notification, system event or acknowledgement sent by a bank: it
    would otherwise be "accepted for processing" and then do nothing at all."""
    text = (SAMPLES / sample).read_text()
    sender = re.search(r"<Fr>.*?<MmbId>(\d+)</MmbId>", text, re.S)
    receiver = re.search(r"<To>.*?<MmbId>(\d+)</MmbId>", text, re.S)
    assert sender and receiver and sender.group(1) == CENTRE
    text = text.replace(f"<MmbId>{receiver.group(1)}</MmbId>", "<MmbId>TO</MmbId>", 1)
    text = text.replace(f"<MmbId>{CENTRE}</MmbId>", f"<MmbId>{CCB}</MmbId>", 1)
    text = text.replace("<MmbId>TO</MmbId>", f"<MmbId>{CENTRE}</MmbId>", 1)
    body = harness.sign(CCB, text.encode())
    line = next(n for n, row in enumerate(body.splitlines(), 1) if b"<MsgDefIdr>" in row)
    status, answer = await harness.post(CCB, body)
    root = harness.verify_from_centre(answer)
    message = sample.split("/")[0]
    assert (status, root.findtext(".//{*}RjctgPtyRsn")) == (400, "AG01")
    assert root.findtext(".//{*}RsnDesc", "").startswith(
        f"{message} is sent by the clearing centre only; a participant cannot submit it"
    )
    assert root.findtext(".//{*}ErrLctn") == f"line {line}: /Message/AppHdr/MsgDefIdr"
    if message.startswith("admi.007"):
        assert "POST /v1/outbox/ack" in root.findtext(".//{*}RsnDesc", "")
    assert kinds(await harness.outbox(CCB)) == []


async def kept(harness: Harness, sender: str, message_id: str, *options: str) -> tuple[int, str]:
    """``isogw core message SENDER MESSAGE_ID [options]`` on the harness's ledger."""
    import argparse
    import io

    from gateway.operator_cli import _run

    out = io.StringIO()
    arguments = argparse.Namespace(
        action="message",
        participant=sender,
        message_id=message_id,
        answer="--answer" in options,
        json="--json" in options,
    )
    return await _run(CONFIG, arguments, out, SystemClock()), out.getvalue()


async def test_a_submission_is_kept_as_sent_and_still_verifies(
    harness: Harness, tmp_path: Path
) -> None:
    """The bank's signed message is the evidence of what it asked: the ledger keeps it byte
    for byte, and its signature still verifies with an independent implementation."""
    import subprocess

    body = harness.sign(BOCOM, C100)
    status, answer = await harness.post(BOCOM, body)
    assert status == 200
    code, printed = await kept(harness, BOCOM, C100_ID)
    assert (code, printed.encode()) == (0, body)
    copy = tmp_path / "kept.xml"
    copy.write_text(printed)
    certificate = harness.keys.participant(BOCOM).certificate_path
    checked = subprocess.run(
        ["xmlsec1", "--verify", "--pubkey-cert-pem", str(certificate), str(copy)],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr
    assert await kept(harness, BOCOM, C100_ID, "--answer") == (0, answer.decode())
    code, printed = await kept(harness, BOCOM, C100_ID, "--json")
    details = json.loads(printed)
    assert (code, details["message_type"], details["status"]) == (0, "pacs.008.001.08", 200)
    assert details["message"].encode() == body and details["answer"].encode() == answer
    # Where it came from and how it was verified (seed 002: address and verification method).
    [pin] = [pin for pin, code in harness.runtime.pins.items() if code == BOCOM]
    assert (
        details["client_address"],
        details["certificate_sha256"],
        details["signature_method"],
    ) == ("127.0.0.1", pin, "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256")
    # A message refused before the clearing core (here: a control sum that does not add up,
    # AM10) is answered, not kept.
    invalid_id = "B301290000007202611239999"
    invalid = C100.replace(C100_ID.encode(), invalid_id.encode()).replace(
        b"<CtrlSum>2000.00<", b"<CtrlSum>1.00<"
    )
    status, answer = await harness.post(BOCOM, harness.sign(BOCOM, invalid))
    assert (status, harness.verify_from_centre(answer).findtext(".//{*}RjctgPtyRsn")) == (
        400,
        "AM10",
    )
    code, printed = await kept(harness, BOCOM, invalid_id)
    assert code == 1 and printed.startswith(
        f"no message {invalid_id} from {BOCOM} in the ledger (kept: messages that reached the "
        "clearing core;"
    )


ADDED = ("body", "client_address", "certificate_sha256", "signature_method")
"""The inbound_message columns added since its first release."""


async def test_a_ledger_from_before_bodies_were_kept_is_upgraded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A state folder written by an earlier release (no ``body`` column, nor the provenance
    columns) starts, gains the columns, and says plainly that it has no copy of the messages
    it received then, nor where they came from."""
    import sqlite3

    from gateway.service.clock import ManualClock
    from tests.gateway.conftest import START

    monkeypatch.setenv("GATEWAY_STATE_DIR", str(tmp_path))
    runtime = await open_runtime(CONFIG, ManualClock(START), run_ticker=False)
    await runtime.clearing.close()
    database = sqlite3.connect(tmp_path / "gateway.sqlite3")
    with database:
        for column in ADDED:
            database.execute(f"ALTER TABLE inbound_message DROP COLUMN {column}")
        database.execute(
            "INSERT INTO inbound_message VALUES ('301290000007', 'B1', 'h', 'pacs.008.001.08', "
            "'2026-11-01T09:00:00+08:00', 200, '<answer/>')"
        )
    database.close()
    runtime = await open_runtime(CONFIG, ManualClock(START), run_ticker=False)
    await runtime.clearing.close()
    database = sqlite3.connect(tmp_path / "gateway.sqlite3")
    columns = [row[1] for row in database.execute("PRAGMA table_info(inbound_message)")]
    database.close()
    assert columns[-4:] == list(ADDED)
    import argparse
    import io

    from gateway.operator_cli import _run

    out = io.StringIO()
    arguments = argparse.Namespace(
        action="message", participant="301290000007", message_id="B1", answer=False, json=False
    )
    assert await _run(CONFIG, arguments, out, SystemClock()) == 1
    assert out.getvalue() == (
        "the ledger has no copy of message B1 from 301290000007: it was received at "
        "2026-11-01T09:00:00+08:00, before the gateway kept messages (its answer is there: "
        "--answer)\n"
    )
    out = io.StringIO()
    assert (
        await _run(
            CONFIG, argparse.Namespace(**{**vars(arguments), "json": True}), out, SystemClock()
        )
        == 0
    )
    details = json.loads(out.getvalue())
    assert details["message"] is None and details["client_address"] is None


async def test_same_message_twice_gets_the_same_answer_and_other_content_du01(
    harness: Harness,
) -> None:
    signed = harness.sign(BOCOM, C100)
    first = await harness.post(BOCOM, signed)
    again = await harness.post(BOCOM, harness.sign(BOCOM, C100))  # signed anew: same content
    assert first == again and first[0] == 200
    changed = C100.replace(b"<Ustrd>", b"<Ustrd>X", 1)
    assert changed != C100
    status, answer = await harness.post(BOCOM, harness.sign(BOCOM, changed))
    assert status == 409 and b"<RjctgPtyRsn>DU01</RjctgPtyRsn>" in answer
    assert len((await harness.outbox(CCB))["messages"]) == 1


async def credit_reusing_a_rejects_id(harness: Harness) -> tuple[str, bytes]:
    """BOCOM's admi.002 about nothing the centre forwarded (accepted: it clears nothing), and
    the C100 sample under that admi.002's message id: (the id, the credit, unsigned)."""
    status, _ = await harness.post(
        BOCOM, bank_reject(harness, BOCOM, "G20261123090000A00000001", number=7)
    )
    assert status == 200
    taken = f"J{BOCOM}{7:08d}"
    return taken, C100.replace(C100_ID.encode(), taken.encode())


async def test_an_id_first_used_by_a_message_that_clears_nothing_is_taken_du01(
    harness: Harness,
) -> None:
    """A message that only travels (here a bank's admi.002 about nothing the centre forwarded)
    still takes its id: the same id with other content, even content that would clear, is
    DU01 and changes nothing (it used to fail the commit: a 500 and an internal error)."""
    await harness.post(BOCOM, harness.sign(BOCOM, C100))
    status, _ = await harness.post(CCB, bank_reject(harness, CCB, "G20261123090000A00000001"))
    assert status == 200
    # The same id, now about the credit forwarded to CCB: it would reject it (AB10).
    status, answer = await harness.post(CCB, bank_reject(harness, CCB, C100_ID))
    assert status == 409 and b"<RjctgPtyRsn>DU01</RjctgPtyRsn>" in answer, answer
    assert harness.runtime.clearing.core.items[f"{BOCOM}:{C100_ID}/{C100_TX}"].state == (
        "awaiting-receipt"
    )
    assert kinds(await harness.outbox(BOCOM)) == []
    # The other way round: an id a message that only travels took, reused by a payment.
    _, reused = await credit_reusing_a_rejects_id(harness)
    status, answer = await harness.post(BOCOM, harness.sign(BOCOM, reused))
    assert status == 409 and b"<RjctgPtyRsn>DU01</RjctgPtyRsn>" in answer, answer


async def test_a_message_id_the_core_has_retired_still_gets_its_original_answer(
    harness: Harness,
) -> None:
    """Days after, the core has retired the message's command id (rules 3): the record of the
    submission answers a repeat, and other content under the id is still DU01."""
    first = await harness.post(BOCOM, harness.sign(BOCOM, C100))
    assert first[0] == 200
    clearing = harness.runtime.clearing
    core = clearing.core
    del core.seen[command_id(BOCOM, C100_ID)]  # as retirement does (test_retention.py)
    core.retired_through = core.business_date - timedelta(days=7)
    logged = await clearing.logged_commands()
    assert await harness.post(BOCOM, harness.sign(BOCOM, C100)) == first
    changed = C100.replace(b"<Ustrd>", b"<Ustrd>X", 1)
    status, answer = await harness.post(BOCOM, harness.sign(BOCOM, changed))
    assert status == 409 and b"<RjctgPtyRsn>DU01</RjctgPtyRsn>" in answer
    assert await clearing.logged_commands() == logged
    assert len((await harness.outbox(CCB))["messages"]) == 1


async def test_a_ledger_of_rules_4_looks_up_ids_its_log_does_not_hold(harness: Harness) -> None:
    """Under rules 1 to 4 a message that clears nothing was not logged: its id is only in the
    record of submissions, which such a ledger's gateway asks before clearing a new id."""
    taken, reused = await credit_reusing_a_rejects_id(harness)
    clearing = harness.runtime.clearing
    del clearing.core.seen[command_id(BOCOM, taken)]  # as a rules 4 ledger never logged it
    clearing.core.rules = 4
    logged = await clearing.logged_commands()
    status, answer = await harness.post(BOCOM, harness.sign(BOCOM, reused))
    assert status == 409 and b"<RjctgPtyRsn>DU01</RjctgPtyRsn>" in answer, answer
    assert await clearing.logged_commands() == logged
    assert kinds(await harness.outbox(CCB)) == []


async def test_a_repeated_rejection_gets_the_same_answer_with_its_code(harness: Harness) -> None:
    """The original answer again, and its reason code for the log and the metrics (it was
    reported as a rejection without a code)."""
    receipt = harness.receipt(CCB, "B105100000017209912319999", "9" * 28, "ACSP")
    first = await harness.runtime.messages.submit(CCB, receipt)
    again = await harness.runtime.messages.submit(CCB, receipt)
    assert (first.status, first.code) == (400, "NOOR")
    assert (again.status, again.body, again.accepted, again.code) == (
        400,
        first.body,
        False,
        "NOOR",
    )
    async with aiohttp.ClientSession() as session:
        status, _ = await harness.post(CCB, receipt)
        async with session.get(harness.url + "/metrics", ssl=harness.context(CCB)) as response:
            text = await response.text()
    assert status == 400
    assert (
        'isogw_messages_total{process="0",message="pacs.002.001.10",'
        'outcome="rejected-NOOR"} 1' in text
    )


async def test_message_ids_of_the_gateway_tell_its_processes_apart(harness: Harness) -> None:
    """Each process numbers its messages from 1: the process id in the message id keeps two
    processes' receipts in the same second apart (they used to get the same ids)."""
    from gateway.service.message_gateway import gateway_message_id

    now = harness.clock.now()
    first, second = gateway_message_id(now, 4_194_303, 1), gateway_message_id(now, 2, 1)
    assert first == "G20261123090000" + "4194303" + "0000000000001"
    assert second != first and len(first) == len(second) == 35
    status, answer = await harness.post(BOCOM, harness.sign(BOCOM, C100))
    assert status == 200
    identifier = harness.verify_from_centre(answer).findtext(".//{*}BizMsgIdr") or ""
    assert re.fullmatch(rf"G20261123090000{os.getpid():07d}\d{{13}}", identifier), identifier


async def test_a_package_the_clearing_core_refuses_is_not_forwarded(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The acceptance and the forward are built before the writer takes the lock; when the
    core refuses the package, the sender gets the refusal and the receiving bank nothing."""
    core = harness.runtime.clearing.core

    def refuse(command: object, events: object) -> None:
        raise CommandRefusedError("AG03", "refused by the clearing core for this test")

    monkeypatch.setitem(core._handlers, SubmitPackage, refuse)
    status, answer = await harness.post(BOCOM, harness.sign(BOCOM, C100))
    assert status == 400 and b"<RjctgPtyRsn>AG03</RjctgPtyRsn>" in answer
    assert b"refused by the clearing core" in answer
    assert (await harness.outbox(CCB))["messages"] == []
    assert await harness.runtime.clearing.logged_commands() == 1  # logged, refused, no effect


async def test_concurrent_duplicates_are_applied_once(harness: Harness) -> None:
    signed = harness.sign(BOCOM, C100)
    answers = await asyncio.gather(*(harness.post(BOCOM, signed) for _ in range(5)))
    assert {status for status, _ in answers} == {200}
    assert len({body for _, body in answers}) == 1
    assert len((await harness.outbox(CCB))["messages"]) == 1


async def test_unsigned_or_misattributed_messages_are_refused(harness: Harness) -> None:
    status, answer = await harness.post(BOCOM, C100)
    assert status == 400 and b"<RjctgPtyRsn>DS0A</RjctgPtyRsn>" in answer
    status, answer = await harness.post(CCB, harness.sign(BOCOM, C100))
    assert status == 403 and b"<RjctgPtyRsn>DS0E</RjctgPtyRsn>" in answer
    # Both are authentication failures in a row (each came on a new connection, which a
    # pinned certificate alone does not make a success), and a signed message ends the run.
    authentication = harness.runtime.authentication
    await authentication.settled()
    assert authentication.counts.failures == 2
    async with harness.runtime.clearing.engine.connect() as connection:
        assert await failing(connection, "127.0.0.1") == 2
    assert (await harness.post(BOCOM, harness.sign(BOCOM, C100)))[0] == 200
    await authentication.settled()
    async with harness.runtime.clearing.engine.connect() as connection:
        assert await failing(connection, "127.0.0.1") == 0


@pytest.mark.parametrize(
    ("body", "location", "text"),
    [
        (b"", "line 1: /", "input is empty"),
        (b"<Message>", "line 1: /", "not well-formed XML: "),
        (b"not xml", "line 1: /", "content before the root element"),
        (
            b'<Message xmlns="urn:isogw:xsd:envelope.001.01"></Message>',
            "line 1: /Message",
            "Missing child element(s). Expected is ( AppHdr )",
        ),
        (
            (SAMPLES / "pacs.008.001.08" / "valid-bare-document-A100.xml").read_bytes(),
            "/Message/AppHdr",
            "the message has no business header (AppHdr) naming its sender; submit an envelope",
        ),
    ],
)
async def test_a_body_without_a_readable_header_is_told_what_is_wrong_with_it(
    harness: Harness, body: bytes, location: str, text: str
) -> None:
    """Not well-formed, or no business header: 400 FF01 with the line and XPath, as the
    validator reports it, not "the header names sender None" (403), and not counted as an
    authentication failure."""
    status, answer = await harness.post(BOCOM, body)
    assert status == 400
    root = harness.verify_from_centre(answer)
    assert root.findtext(".//{*}RjctgPtyRsn") == "FF01"
    assert root.findtext(".//{*}ErrLctn") == location
    assert text in (root.findtext(".//{*}RsnDesc") or "")
    await harness.runtime.authentication.settled()
    assert harness.runtime.authentication.counts.failures == 0


async def test_invalid_message_gets_admi002_with_line_and_xpath(harness: Harness) -> None:
    bad = C100.replace(b"<NbOfTxs>1</NbOfTxs>", b"<NbOfTxs>2</NbOfTxs>")
    status, answer = await harness.post(BOCOM, harness.sign(BOCOM, bad))
    assert status == 400
    root = harness.verify_from_centre(answer)
    assert root.findtext(".//{*}RjctgPtyRsn") == "AM18"
    assert "NbOfTxs" in (root.findtext(".//{*}ErrLctn") or "")


async def test_reversal_of_a_real_time_item_without_result(harness: Harness) -> None:
    await harness.post(BOCOM, harness.sign(BOCOM, C100))
    reversal = (SAMPLES / "pacs.007.001.09" / "valid-reversal-realtime-credit.xml").read_bytes()
    # The sample reverses another C100; point it at ours.
    text = reversal.decode()
    root = etree.fromstring(reversal)
    old_original = root.findtext(".//{*}OrgnlMsgId")
    old_tx = root.findtext(".//{*}OrgnlTxId")
    text = text.replace(old_original or "", C100_ID).replace(old_tx or "", C100_TX)
    sender = root.findtext(".//{*}Fr//{*}MmbId")
    text = text.replace(sender or "", BOCOM)
    status, answer = await harness.post(BOCOM, harness.sign(BOCOM, text.encode()))
    assert status == 200, answer
    item = harness.runtime.clearing.core.items[f"{BOCOM}:{C100_ID}/{C100_TX}"]
    assert (item.state, item.reason_code) == ("reversed", "AB05")
    # Both banks learn the item's end and why: the initiator, and the payee's bank, which was
    # asked to answer it (the reversal's own reason, AB05, from its RvslRsnInf).
    for bank in (BOCOM, CCB):
        assert (await receipt_outcomes(harness, bank))[C100_TX] == ("CANC", "AB05")


async def _open_outbox_requests(harness: Harness, code: str, count: int) -> None:
    """Until ``count`` outbox requests of ``code`` are waiting in the gateway."""
    async with asyncio.timeout(5):
        while harness.runtime.outbox_requests[code] < count:
            await asyncio.sleep(0.005)


async def test_outbox_long_poll_wakes_on_delivery_and_ack_removes(harness: Harness) -> None:
    waiting = asyncio.create_task(harness.outbox(CCB, wait=10))
    await _open_outbox_requests(harness, CCB, 1)
    assert not waiting.done()
    await harness.post(BOCOM, harness.sign(BOCOM, C100))
    delivered = await asyncio.wait_for(waiting, 5)
    assert kinds(delivered) == ["pacs.008.001.08"]
    assert await harness.ack(CCB, delivered["next"]) == 1
    assert (await harness.outbox(CCB))["messages"] == []


@pytest.mark.parametrize(
    ("query", "answer"),
    [
        ("after=99999999999999999999999", "after is an outbox sequence"),
        ("after=-1", "after is an outbox sequence"),
        ("after=1.5", "after is an outbox sequence"),
        ("after=x", "after is an outbox sequence"),
        ("wait=nan", "wait is a number of seconds"),
        ("wait=abc", "wait is a number of seconds"),
        ("wait=-inf", "wait is a number of seconds"),
    ],
)
async def test_outbox_cursor_and_wait_out_of_range_are_400(
    harness: Harness, query: str, answer: str
) -> None:
    """A cursor the database cannot hold, or a wait that is not a number of seconds, is the
    client's mistake (400 saying so), never a 500 or a request that hangs."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{harness.url}/v1/outbox?{query}", ssl=harness.context(CCB)) as response,
    ):
        assert response.status == 400
        assert (await response.text()).startswith(answer)


async def test_open_outbox_requests_are_bounded_per_participant(harness: Harness) -> None:
    """Long polls hold a request each and look at the database while they wait: one
    participant may have ``http.outbox_requests_per_participant`` open; the next is 429, and
    another participant is not affected."""
    limit = harness.runtime.gateway.settings.http.outbox_requests_per_participant
    waiting = [asyncio.create_task(harness.outbox(CCB, wait=10)) for _ in range(limit)]
    await _open_outbox_requests(harness, CCB, limit)
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{harness.url}/v1/outbox?wait=10", ssl=harness.context(CCB)) as response,
    ):
        assert response.status == 429
        assert "http.outbox_requests_per_participant" in await response.text()
    assert (await harness.outbox(BOCOM))["messages"] == []
    await harness.post(BOCOM, harness.sign(BOCOM, C100))  # wakes them all
    answers = await asyncio.wait_for(asyncio.gather(*waiting), 5)
    assert all(kinds(answer) == ["pacs.008.001.08"] for answer in answers)
    assert harness.runtime.outbox_requests[CCB] == 0
    assert (await harness.outbox(CCB))["next"] == answers[0]["next"]


async def test_rate_limit_counts_every_request_of_a_participant(harness: Harness) -> None:
    exhaust_rate_limit(harness, CCB)
    async with aiohttp.ClientSession() as session:
        for method, path in (("GET", "/v1/outbox"), ("POST", "/v1/outbox/ack")):
            async with session.request(
                method, harness.url + path, json={"through": 0}, ssl=harness.context(CCB)
            ) as response:
                assert response.status == 429
    assert (await harness.outbox(BOCOM))["messages"] == []  # another participant's bucket


async def test_outbox_long_poll_answers_empty_once_its_wait_has_passed(harness: Harness) -> None:
    """Nothing arrives: the poll answers an empty batch (cursor unchanged) when its wait is
    over on the runtime's clock, and not before; the test moves that clock, no sleeping."""
    clock = SteadyClock()
    harness.runtime.monotonic = clock
    waiting = asyncio.create_task(harness.outbox(CCB, after=0, wait=10))
    await _open_outbox_requests(harness, CCB, 1)
    clock.seconds += 9.9
    harness.runtime.notify({CCB})  # wakes the poll: it looks, finds nothing, waits on
    await asyncio.sleep(0.05)
    assert not waiting.done()
    clock.seconds += 0.2
    harness.runtime.notify({CCB})
    answer = await asyncio.wait_for(waiting, 5)
    assert answer == {"messages": [], "next": 0}


async def test_outbox_wait_is_capped_by_the_setting(harness: Harness) -> None:
    clock = SteadyClock()
    harness.runtime.monotonic = clock
    longest = harness.runtime.gateway.settings.http.outbox_max_wait_seconds
    waiting = asyncio.create_task(harness.outbox(CCB, after=0, wait=longest * 100))
    await _open_outbox_requests(harness, CCB, 1)
    clock.seconds += longest
    harness.runtime.notify({CCB})
    assert (await asyncio.wait_for(waiting, 5))["messages"] == []


async def test_outbox_negative_wait_answers_at_once(harness: Harness) -> None:
    assert (await harness.outbox(CCB, after=0, wait=-5))["messages"] == []


@pytest.mark.parametrize(
    "body",
    [
        '{"through": 1e999}',
        '{"through": true}',
        '{"through": "3"}',
        "[]",
        '{"through": ' + str(2**70) + "}",
        "x",
    ],
)
async def test_acknowledgement_must_be_a_sequence(harness: Harness, body: str) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{harness.url}/v1/outbox/ack",
            data=body,
            headers={"Content-Type": "application/json"},
            ssl=harness.context(CCB),
        ) as response,
    ):
        assert response.status == 400
        assert (await response.text()).startswith(
            ('send {"through": SEQUENCE}', "through is an outbox sequence")
        )


async def test_outbox_survives_a_restart(harness: Harness, tmp_path: Path) -> None:
    await harness.post(BOCOM, harness.sign(BOCOM, C100))
    await harness.runtime.clearing.close()
    reopened = await open_runtime(CONFIG, harness.clock, run_ticker=False)
    from gateway.store import messages

    async with reopened.clearing.engine.connect() as connection:
        kept = await messages.read_outbox(connection, CCB, 0, 10)
    assert [message.message_type for message in kept] == ["pacs.008.001.08"]
    assert reopened.clearing.core.items[f"{BOCOM}:{C100_ID}/{C100_TX}"].state == "awaiting-receipt"
    await reopened.clearing.close()
    harness.runtime.clearing = reopened.clearing


async def test_another_process_catches_up_before_it_reports_positions(harness: Harness) -> None:
    """Two gateway processes on one ledger: the one that took no part in a payment still
    reports the netted position once it has caught up (as /metrics does first)."""
    other = await open_runtime(CONFIG, harness.clock, run_ticker=False)
    try:
        assert (await harness.post(BOCOM, harness.sign(BOCOM, C100)))[0] == 200
        receipt = harness.receipt(CCB, C100_ID, C100_TX, "ACSP")
        assert (await harness.post(CCB, receipt))[0] == 200
        netted = harness.runtime.clearing.core.accounts[BOCOM].net_position
        assert netted < 0
        assert other.clearing.core.accounts[BOCOM].net_position == 0  # as it last wrote
        await other.clearing.catch_up()
        assert other.clearing.core.accounts[BOCOM].net_position == netted
    finally:
        await other.clearing.close()


async def test_tls_requires_a_pinned_client_certificate(harness: Harness, tmp_path: Path) -> None:
    async with aiohttp.ClientSession() as session:
        plain = ssl.create_default_context(cafile=str(harness.keys.ca_path))
        with pytest.raises(aiohttp.ClientError):
            async with session.get(harness.url + "/healthz", ssl=plain) as response:
                await response.read()
    stranger = KeyStore(tmp_path / "elsewhere")
    stranger.initialise(CENTRE, [BOCOM], START)
    from gateway.transport.tls import client_context

    foreign = client_context(harness.keys, stranger.participant(BOCOM))
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientError):
            async with session.get(harness.url + "/healthz", ssl=foreign) as response:
                await response.read()


async def test_operations_endpoints(harness: Harness) -> None:
    async with aiohttp.ClientSession() as session:
        for path in ("/healthz", "/readyz"):
            async with session.get(harness.url + path, ssl=harness.context(CCB)) as response:
                assert response.status == 200
        await harness.post(BOCOM, harness.sign(BOCOM, C100))
        async with session.get(harness.url + "/metrics", ssl=harness.context(CCB)) as response:
            text = await response.text()
    process = 'process="0"'  # the only gateway process: slot 0
    assert f'isogw_process_info{{{process},pid="{os.getpid()}"}} 1' in text
    assert (
        f'isogw_messages_total{{{process},message="pacs.008.001.08",outcome="accepted"}} 1' in text
    )
    assert f"isogw_clearing_caught_up{{{process}}} 1" in text
    clearing = harness.runtime.clearing
    assert f"isogw_clearing_log_sequence{{{process}}} {clearing.sequence}\n" in text
    assert "isogw_clearing_checkpoint_sequence 0\n" in text  # no day switch yet
    assert f"isogw_clearing_items_in_memory{{{process}}} 1\n" in text
    assert_prometheus_text(text)
    for role, owner, pair in (
        ("gateway", CENTRE, harness.keys.gateway),
        ("participant", BOCOM, harness.keys.participant(BOCOM)),
    ):
        end = int(pair.certificate().not_valid_after_utc.timestamp())
        labels = f'certificate="{role}",owner="{owner}"'
        assert f"isogw_certificate_expiry_timestamp_seconds{{{labels}}} {end}\n" in text
    ca = read_certificate(harness.keys.ca_path)
    ca_end, ca_pin = int(ca.not_valid_after_utc.timestamp()), certificate_sha256(ca)
    assert (
        f'isogw_certificate_expiry_timestamp_seconds{{certificate="ca",sha256="{ca_pin}"}} '
        f"{ca_end}\n"
    ) in text
    assert 'isogw_outbox_depth{participant="105100000017"} 1' in text
    assert "isogw_submit_seconds_bucket" in text and "isogw_available_minor" in text
    values = dict(line.split(" ") for line in text.splitlines() if line.startswith("isogw_writer"))
    assert int(values[f"isogw_writer_commands_total{{{process}}}"]) >= 1  # the credit
    assert int(values[f"isogw_writer_transactions_total{{{process}}}"]) >= 1
    assert float(values[f"isogw_writer_lock_held_seconds_total{{{process}}}"]) > 0
    # The day switch (an operator's command, in a process of its own) stores a checkpoint.
    await operator(harness, "day-switch")
    async with (
        aiohttp.ClientSession() as session,
        session.get(harness.url + "/metrics", ssl=harness.context(CCB)) as response,
    ):
        text = await response.text()
    assert f"isogw_clearing_log_sequence{{{process}}} {clearing.sequence}\n" in text
    checkpoint = await clearing.newest_checkpoint()
    assert f"isogw_clearing_checkpoint_sequence {checkpoint}\n" in text
    async with clearing.engine.connect() as connection:
        kind = await connection.scalar(
            select(command_log.c.kind).where(command_log.c.sequence == checkpoint)
        )
    assert kind == "switch-day"  # taken right after the command that switched the day


async def test_a_gateway_start_stores_the_checkpoint_a_stopped_day_switch_owed(
    harness: Harness,
) -> None:
    """The day switch's checkpoint was not stored (its process was killed while storing it):
    the next gateway start stores it, so later starts replay from the new day."""
    await operator(harness, "day-switch")
    clearing = harness.runtime.clearing
    await clearing.catch_up()
    switched = clearing.sequence
    assert await clearing.newest_checkpoint() == switched
    async with clearing.engine.begin() as connection:
        await connection.execute(delete(checkpoint))
        await connection.execute(delete(checkpoint_part))
    await clearing.close()
    reopened = await open_runtime(CONFIG, harness.clock, run_ticker=False)
    harness.runtime.clearing = reopened.clearing
    await reopened.clearing.checkpoint_stored()
    assert await reopened.clearing.newest_checkpoint() == switched
    assert reopened.clearing.restored_from == 0


def rejection(harness: Harness, answer: bytes) -> tuple[str | None, str | None, str]:
    """The related reference, reason code and text of a signed admi.002 from the centre (its
    signature checked)."""
    root = harness.verify_from_centre(answer)
    return (
        root.findtext(".//{*}RltdRef/{*}Ref"),
        root.findtext(".//{*}RjctgPtyRsn"),
        root.findtext(".//{*}RsnDesc") or "",
    )


async def exactly_past_the_cap(limit: int) -> AsyncIterator[bytes]:
    """A body one byte over ``limit``, sent without a length (chunked), all of it."""
    for _ in range(limit // 65536):
        yield b"x" * 65536
    yield b"x" * (limit % 65536 + 1)


async def test_a_submission_refused_for_how_it_was_sent_gets_a_signed_admi_002(
    harness: Harness,
) -> None:
    """Over the body cap (413: with a declared length, unread; without one, stopped at the cap
    as it comes), not XML (415), over the rate limit (429, with Retry-After): each answer is a
    signed admi.002 with its ISO code and the setting behind it, as every other refusal of a
    submission, and each is counted."""
    limit = harness.runtime.gateway.settings.http.max_body_bytes
    too_large = f"larger than the limit of {limit:,} bytes (setting http.max_body_bytes)"
    status, answer = await harness.post(BOCOM, b"<a>" + b"x" * limit + b"</a>")
    reference, code, text = rejection(harness, answer)
    assert (status, reference, code) == (413, "UNKNOWN", "FF01") and too_large in text
    async with aiohttp.ClientSession() as session:
        async with session.post(
            harness.url + "/v1/messages",
            data=exactly_past_the_cap(limit),
            headers={"Content-Type": "application/xml"},
            ssl=harness.context(BOCOM),
        ) as response:
            assert "Content-Length" not in response.request_info.headers
            status, answer = response.status, await response.read()
        reference, code, text = rejection(harness, answer)
        assert (status, reference, code) == (413, "UNKNOWN", "FF01") and too_large in text
        async with session.post(
            harness.url + "/v1/messages",
            data=b"{}",
            headers={"Content-Type": "application/json"},
            ssl=harness.context(BOCOM),
        ) as response:
            status, answer = response.status, await response.read()
        reference, code, text = rejection(harness, answer)
        assert (status, reference, code) == (415, "UNKNOWN", "FF01")
        assert (
            "content type 'application/json' is not accepted: send the signed message as "
            "application/xml" in text
        )
        # An exhausted bucket (the clock standing still) answers 429.
        exhaust_rate_limit(harness, BOCOM)
        async with session.post(
            harness.url + "/v1/messages",
            data=harness.sign(BOCOM, C100),
            headers={"Content-Type": "application/xml"},
            ssl=harness.context(BOCOM),
        ) as response:
            status, answer = response.status, await response.read()
            assert response.headers["Retry-After"] == "1"  # 200 requests a second
        reference, code, text = rejection(harness, answer)
        assert (status, reference, code) == (429, "UNKNOWN", "TA01")
        assert (
            "rate limit of 200 requests a second reached (settings "
            "http.requests_per_second, http.burst)" in text
        )
    assert harness.runtime.clearing.core.packages == {}
    metrics = harness.runtime.metrics.messages
    assert (metrics[("unknown", "rejected-FF01")], metrics[("unknown", "rate-limited")]) == (3, 1)


async def test_the_validate_endpoint_refuses_too_large_or_not_xml_with_a_verdict(
    harness: Harness,
) -> None:
    limit = harness.runtime.gateway.settings.http.max_body_bytes
    status, body = await harness.post(BOCOM, b"x" * (limit + 1), path="/v1/validate")
    verdict = json.loads(body)
    assert (status, verdict["valid"], [error["code"] for error in verdict["errors"]]) == (
        413,
        False,
        ["FF01"],
    )
    assert "(setting http.max_body_bytes)" in verdict["errors"][0]["text"]
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            harness.url + "/v1/validate",
            data=C100,
            headers={"Content-Type": "text/plain"},
            ssl=harness.context(BOCOM),
        ) as response,
    ):
        status, verdict = response.status, await response.json()
    assert (status, [error["code"] for error in verdict["errors"]]) == (415, ["FF01"])
    assert "content type 'text/plain' is not accepted" in verdict["errors"][0]["text"]


async def test_consecutive_authentication_failures_are_counted_across_processes(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """Two gateway processes on one ledger: one source's failures reach either of them (the
    kernel spreads connections), yet the third in a row raises the alarm, once."""
    caplog.set_level(logging.WARNING, logger="isogw.http")
    other = await open_runtime(CONFIG, harness.clock, run_ticker=False)
    counting = asyncio.create_task(other.authentication.run_forever())
    first, second = harness.runtime.authentication, other.authentication

    async def shared(source: str) -> int:
        async with harness.runtime.clearing.engine.connect() as connection:
            return await failing(connection, source)

    async def fail(monitor: AuthenticationMonitor, source: str = "10.0.0.9") -> None:
        monitor.failed(source, "DS0A from 301290000007")
        await monitor.settled()

    try:
        await fail(first)
        await fail(second)
        assert (await shared("10.0.0.9"), first.counts.alarms, second.counts.alarms) == (2, 0, 0)
        await fail(first)
        assert (await shared("10.0.0.9"), first.counts.alarms, second.counts.alarms) == (3, 1, 0)
        await fail(second)  # the fourth raises nothing more
        assert (await shared("10.0.0.9"), first.counts.alarms + second.counts.alarms) == (4, 1)
        alarms = [r.getMessage() for r in caplog.records if "authentication-alarm" in r.msg]
        assert alarms == [
            f"event=authentication-alarm source=10.0.0.9 consecutive_failures=3 "
            f"process={os.getpid()}"
        ]
        # A request the source authenticates in the process that saw it fail ends the run...
        first.succeeded("10.0.0.9", new_connection=False)
        await first.settled()
        assert await shared("10.0.0.9") == 0
        # ...and so does a new pinned connection to a process that never saw it fail (a
        # request on a connection it already had costs nothing, and changes nothing).
        await fail(first, "10.0.0.5")
        second.succeeded("10.0.0.5", new_connection=False)
        await second.settled()
        assert await shared("10.0.0.5") == 1
        second.succeeded("10.0.0.5", new_connection=True)
        await second.settled()
        assert await shared("10.0.0.5") == 0
        # Each process counts the failures it saw itself (its series on /metrics).
        assert (first.counts.failures, second.counts.failures) == (3, 2)
    finally:
        counting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await counting
        await other.clearing.close()


async def test_failures_waiting_when_a_process_stops_are_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process that stops right after refusing a source still adds those failures to the
    shared count before its ledger closes (the next process would otherwise start the run
    again from an undercount)."""
    from aiohttp import web

    from gateway.service.clock import ManualClock
    from gateway.transport.http_app import build_app
    from tests.gateway.conftest import START

    monkeypatch.setenv("GATEWAY_STATE_DIR", str(tmp_path))
    runtime = await open_runtime(CONFIG, ManualClock(START), run_ticker=False)
    runner = web.AppRunner(build_app(runtime))
    await runner.setup()
    for _ in range(3):
        runtime.authentication.failed("10.0.0.7", "TLS handshake refused: test")
    await runner.cleanup()  # at once: the three are still waiting to be counted
    assert runtime.authentication.counts.alarms == 1
    reopened = await open_runtime(CONFIG, ManualClock(START), run_ticker=False)
    try:
        async with reopened.clearing.engine.connect() as connection:
            assert await failing(connection, "10.0.0.7") == 3
    finally:
        await reopened.clearing.close()


async def test_failures_still_waiting_after_the_shutdown_bound_are_said(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="isogw.http")
    settings = harness.runtime.gateway.settings.http
    monitor = AuthenticationMonitor(harness.runtime.clearing, settings, harness.clock.now)
    monitor.failed("10.0.0.8", "DS0A from 301290000007")
    monitor.failed("10.0.0.8", "DS0A from 301290000007")
    await monitor.finish(0)  # nothing counts them (run_forever is not running): out of time
    [said] = [r.getMessage() for r in caplog.records if "not-counted" in r.getMessage()]
    assert said == (
        f"event=authentication-records-not-counted waiting=2 process={os.getpid()} "
        "reason=still waiting 0 s after the process began stopping"
    )


async def test_authentication_sources_kept_are_bounded(harness: Harness) -> None:
    """A flood of new sources pushes out the one that failed least recently, never the one
    that keeps failing; past http.authentication_records_pending a failure is logged and
    counted here, but not in the shared count."""
    settings = harness.runtime.gateway.settings.http.model_copy(
        update={"authentication_sources": 2, "authentication_records_pending": 2}
    )
    monitor = AuthenticationMonitor(harness.runtime.clearing, settings, harness.clock.now)
    counting = asyncio.create_task(monitor.run_forever())
    try:
        for source in ("10.0.0.9", "10.0.0.1", "10.0.0.9", "10.0.0.2"):
            harness.clock.advance(seconds=1)
            monitor.failed(source, "test")
            await monitor.settled()
        async with harness.runtime.clearing.engine.connect() as connection:
            kept = {
                source: await failing(connection, source)
                for source in ("10.0.0.9", "10.0.0.1", "10.0.0.2")
            }
        assert kept == {"10.0.0.9": 2, "10.0.0.1": 0, "10.0.0.2": 1}
    finally:
        counting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await counting
    # Not running: the third failure finds the two places taken.
    for _ in range(3):
        monitor.failed("10.0.0.7", "test")
    assert (monitor.counts.failures, monitor.counts.not_shared) == (7, 1)


async def test_validate_endpoint_answers_the_verdict(harness: Harness) -> None:
    invalid = (SAMPLES / "pacs.008.001.08" / "invalid-AM02-credit-over-cap.xml").read_bytes()
    status, body = await harness.post(BOCOM, invalid, path="/v1/validate")
    verdict = json.loads(body)
    assert status == 400 and [error["code"] for error in verdict["errors"]] == ["AM02"]
    status, body = await harness.post(BOCOM, C100, path="/v1/validate")
    assert status == 200 and json.loads(body)["valid"]


async def test_participant_tools_submit_and_read_the_outbox(harness: Harness) -> None:
    import argparse
    import io

    from gateway.participant_cli import _outbox, _submit

    out = io.StringIO()
    submit = argparse.Namespace(
        file=SAMPLES / "pacs.008.001.08" / "valid-bare-document-A100.xml",
        participant="103100000026",
        url=harness.url,
    )
    assert await _submit(submit, harness.runtime.gateway, out) == 0
    assert out.getvalue().startswith("200 accepted for processing (admi.007)")
    out = io.StringIO()
    read = argparse.Namespace(
        participant="103100000026", after=0, wait=0.0, ack=True, json=False, url=harness.url
    )
    assert await _outbox(read, harness.runtime.gateway, out) == 0
    assert "pacs.002.001.10" in out.getvalue() and "=ACSP" in out.getvalue()
    assert "(acknowledged)" in out.getvalue()
    assert (await harness.outbox("103100000026"))["messages"] == []
    exhaust_rate_limit(harness, "103100000026")
    out = io.StringIO()
    assert await _submit(submit, harness.runtime.gateway, out) == 1
    assert out.getvalue().startswith(
        "429 rejected (admi.002): TA01 rate limit of 200 requests a second reached"
    )


async def test_participant_tools_show_a_bank_reject_of_a_forwarded_payment(
    harness: Harness,
) -> None:
    """The README's walk-through with the bank reject sample: BOCOM reads CCB's reason and the
    RJCT AB10 receipt in its outbox."""
    import argparse
    import io

    from gateway.participant_cli import _outbox, _submit

    gateway = harness.runtime.gateway
    for file, bank in (
        (SAMPLES / "pacs.008.001.08" / "valid-C100-realtime-credit.xml", BOCOM),
        (SAMPLES / "admi.002.001.01" / "valid-bank-rejects-forwarded-credit.xml", CCB),
    ):
        out = io.StringIO()
        submit = argparse.Namespace(file=file, participant=bank, url=harness.url)
        assert await _submit(submit, gateway, out) == 0, out.getvalue()
    out = io.StringIO()
    read = argparse.Namespace(
        participant=BOCOM, after=0, wait=0.0, ack=False, json=False, url=harness.url
    )
    assert await _outbox(read, gateway, out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0] == (
        f"#2 admi.002.001.01 J105100000017202611230042: reject of {C100_ID}: FF01 The creditor "
        "name has characters our core banking system cannot store; the payment was not booked. "
        "at /Message/Document/FIToFICstmrCdtTrf/CdtTrfTxInf/Cdtr/Nm"
    )
    assert lines[1].endswith(f"receipt for {C100_ID}: {C100_TX}=RJCT(AB10)")


async def test_participant_tools_say_what_went_wrong(harness: Harness) -> None:
    """An unknown participant, a gateway that does not answer, and an answer that is not the
    outbox are each told in words (exit 2, or 1 with the gateway's status and text)."""
    import argparse
    import io
    import socket

    from gateway.participant_cli import ParticipantToolError, _outbox, _submit

    gateway = harness.runtime.gateway
    unknown = argparse.Namespace(file=SAMPLES / "x.xml", participant="123", url=harness.url)
    with pytest.raises(ParticipantToolError, match=r"^123 is not a participant in .*participants"):
        await _submit(unknown, gateway, io.StringIO())
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    silent = argparse.Namespace(
        participant=BOCOM, after=0, wait=0.0, ack=False, json=False, url=f"https://127.0.0.1:{port}"
    )
    with pytest.raises(ParticipantToolError) as failure:
        await _outbox(silent, gateway, io.StringIO())
    message = str(failure.value)
    assert message.startswith(f"cannot reach the gateway at https://127.0.0.1:{port}: ")
    assert "Connect call failed" in message and "SSLContext" not in message
    out = io.StringIO()
    wrong = argparse.Namespace(
        participant=BOCOM, after="x", wait=0.0, ack=True, json=False, url=harness.url
    )
    assert await _outbox(wrong, gateway, out) == 1
    assert out.getvalue() == (
        "400 after is an outbox sequence: an integer from 0 to 9223372036854775807\n"
    )


async def _get_health(harness: Harness, context: ssl.SSLContext) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.get(harness.url + "/healthz", ssl=context) as response,
    ):
        return response.status


async def test_expired_client_certificate_is_refused(harness: Harness) -> None:
    from gateway.transport.tls import client_context

    pair = harness.keys.issue(BOCOM, START - timedelta(days=400), START - timedelta(days=1))
    with pytest.raises(aiohttp.ClientError):
        await _get_health(harness, client_context(harness.keys, pair))


async def test_certificate_from_the_ca_but_not_pinned_is_403(harness: Harness) -> None:
    from gateway.security.keys import certificate_sha256
    from gateway.transport.tls import client_context

    pair = harness.keys.issue("308584000013", START, START + timedelta(days=30))
    context = client_context(harness.keys, pair)
    assert await _get_health(harness, context) == 200  # TLS passes
    pin = certificate_sha256(pair.certificate())
    async with aiohttp.ClientSession() as session:
        for method, path in (("GET", "/v1/outbox"), ("POST", "/v1/messages")):
            async with session.request(
                method, harness.url + path, data=C100, ssl=context
            ) as response:
                assert response.status == 403
                assert (await response.text()).startswith(
                    f"DS0E the client certificate (SHA-256 {pin}) is not pinned to a participant"
                )
    assert harness.runtime.clearing.core.packages == {}


async def test_tls_1_2_client_is_refused(harness: Harness) -> None:
    context = harness.context(BOCOM)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(aiohttp.ClientError):
        await _get_health(harness, context)


async def test_one_hundred_concurrent_identical_submissions_apply_once(harness: Harness) -> None:
    signed = harness.sign(BOCOM, C100)
    answers = await asyncio.gather(*(harness.post(BOCOM, signed) for _ in range(100)))
    assert {status for status, _ in answers} == {200}
    assert len({body for _, body in answers}) == 1
    assert len((await harness.outbox(CCB))["messages"]) == 1
    assert len(harness.runtime.clearing.core.items) == 1


@pytest.mark.parametrize(
    ("attack", "code"),
    [
        ("duplicate", "DS0B"),
        ("altered", "DS01"),
        ("comment", "DS01"),
        ("sha1", "DS0B"),
        ("wrong-key", "DS0E"),
    ],
)
async def test_signature_attacks_over_https(harness: Harness, attack: str, code: str) -> None:
    import re

    signed = harness.sign(BOCOM, C100)
    if attack == "duplicate":
        signature = re.search(rb"<ds:Signature.*?</ds:Signature>", signed, re.DOTALL).group(0)  # type: ignore[union-attr]
        signed = signed.replace(b"</Sgntr>", signature + b"</Sgntr>", 1)
    elif attack == "altered":
        signed = signed.replace(b'Ccy="CNY">2000.00<', b'Ccy="CNY">9000.00<', 1)
    elif attack == "comment":
        signed = signed.replace(b"<MsgId>B3012", b"<MsgId>B30<!---->12", 1)
    elif attack == "sha1":
        signed = signed.replace(b"xmldsig-more#ecdsa-sha256", b"xmldsig-more#ecdsa-sha1")
    else:
        signed = harness.sign(ICBC, C100)
    status, answer = await harness.post(BOCOM, signed)
    assert status == 400
    assert f"<RjctgPtyRsn>{code}</RjctgPtyRsn>".encode() in answer
    assert harness.runtime.clearing.core.items == {}


async def test_text_a_sender_chose_reaches_neither_the_metrics_nor_a_log_line_as_it_is(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """A message type the gateway does not know is counted as ``unknown`` (a label from the
    sender would break the Prometheus text and add a series per value), and a bank's reason
    text with a line break is quoted in the log line (it cannot forge a line or a field)."""
    unknown = C100.replace(b"<MsgDefIdr>pacs.008.001.08<", b'<MsgDefIdr>x"} 1\nforged_total 1<')
    forged = "cannot store\nERROR isogw.http event=authentication-alarm source=10.0.0.1"
    with caplog.at_level(logging.INFO, "isogw"):
        first, _ = await harness.post(BOCOM, harness.sign(BOCOM, unknown))
        second, _ = await harness.post(BOCOM, harness.sign(BOCOM, C100))
        third, _ = await harness.post(CCB, bank_reject(harness, CCB, C100_ID, reason_text=forged))
    assert (first, second, third) == (400, 200, 200)  # the type fails the header's pattern
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("event=submit")]
    assert logged[0] == (
        f"event=submit participant={BOCOM} message_id=- message=unknown status=400 "
        "outcome=rejected-FF01"
    )
    [rejected] = [r.getMessage() for r in caplog.records if "participant-reject" in r.getMessage()]
    assert rejected.endswith(
        ' text="cannot store\\nERROR isogw.http event=authentication-alarm source=10.0.0.1"'
    )
    status, _, text = await harness.get(CCB, "/metrics")
    assert status == 200 and "forged" not in text
    assert 'isogw_messages_total{process="0",message="unknown",outcome="rejected-FF01"} 1' in text


async def test_an_identifier_outside_the_restricted_fin_x_characters_is_refused_ff01(
    harness: Harness,
) -> None:
    """Identifiers are restricted to the FIN-X characters (xsd/README.md): a message id with a
    line break is refused at the schema, with its line and XPath."""
    forged = C100.replace(C100_ID.encode(), b"X&#10;ERROR event=forged")
    status, answer = await harness.post(BOCOM, harness.sign(BOCOM, forged))
    assert status == 400
    reject = harness.verify_from_centre(answer)
    assert reject.findtext(".//{*}RjctgPtyRsn") == "FF01"
    assert reject.findtext(".//{*}ErrLctn") == "line 28: /Message/AppHdr/BizMsgIdr"
    assert "Element 'BizMsgIdr': [facet 'pattern']" in reject.findtext(".//{*}RsnDesc", "")
    assert harness.runtime.clearing.core.items == {}
