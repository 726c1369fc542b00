"""The notices of sessions and days reach the banks' outboxes, signed: admi.004 SCLS to every
clearing bank and a camt.054 net to each bank with one when a session closes; admi.004 DSWT
to every participant with an outbox when the day switches; a net that waits is PDNG, then
BOOK when it is settled."""

from __future__ import annotations

import argparse
import io
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from lxml import etree

from gateway.clearing.events import DaySwitched, ItemChanged, NetSettled, SessionClosed
from gateway.commands.inbound import BusinessHeader
from gateway.iso.input_source import InputSource
from gateway.service.notifications import notices
from tests.conftest import SAMPLES
from tests.gateway.conftest import BOCOM, CCB, CENTRE, ICBC, START, Harness, operator

A100 = (SAMPLES / "pacs.008.001.08" / "valid-A100-ordinary-credit.xml").read_bytes()
BOC, AGENCY, ABC = "104100000004", "990100000017", "103100000026"
ZONE = ZoneInfo("Asia/Shanghai")
CLEARING_BANKS = (ICBC, ABC, BOC, CCB, BOCOM)


def of_type(outbox: dict[str, Any], message: str) -> list[etree._Element]:
    return [
        etree.fromstring(entry["xml"].encode())
        for entry in outbox["messages"]
        if entry["message_type"] == message
    ]


def text(root: etree._Element, path: str) -> list[str]:
    return [element.text or "" for element in root.iterfind(path)]


async def test_a_session_close_tells_every_clearing_bank_and_each_net_its_bank(
    harness: Harness,
) -> None:
    status, answer = await harness.post(ICBC, harness.sign(ICBC, A100))
    assert status == 200, answer
    harness.clock.advance(hours=1)  # 10:00, the first scheduled close
    await harness.runtime.messages.tick()
    for bank in CLEARING_BANKS:
        [event] = of_type(await harness.outbox(bank), "admi.004.001.02")
        harness.verify_from_centre(etree.tostring(event))
        assert text(event, ".//{*}EvtCd") == ["SCLS"]
        assert text(event, ".//{*}EvtParam") == ["SESSION=20261123-01", "BIZDT=2026-11-23"]
    assert of_type(await harness.outbox(AGENCY), "admi.004.001.02") == []
    nets = {}
    for bank in CLEARING_BANKS:
        notifications = of_type(await harness.outbox(bank), "camt.054.001.08")
        for notification in notifications:
            harness.verify_from_centre(etree.tostring(notification))
            assert text(notification, ".//{*}AppHdr/{*}To//{*}MmbId") == [bank]
            assert text(notification, ".//{*}Acct/{*}Id/{*}Othr/{*}Id") == [bank]
            nets[bank] = (
                text(notification, ".//{*}Ntry/{*}Amt")
                + text(notification, ".//{*}Ntry/{*}CdtDbtInd")
                + text(notification, ".//{*}Ntry/{*}Sts/{*}Cd")
                + text(notification, ".//{*}Ntry/{*}BookgDt/{*}Dt")
                + text(notification, ".//{*}Ntry/{*}AddtlNtryInf")
            )
    # The four A100 items are ICBC's (or of banks clearing through it) to BOC's: 62,280.50.
    assert nets == {
        ICBC: ["62280.50", "DBIT", "BOOK", "2026-11-23", "20261123-01"],
        BOC: ["62280.50", "CRDT", "BOOK", "2026-11-23", "20261123-01"],
    }


async def test_the_outbox_tool_says_what_each_notice_is(harness: Harness) -> None:
    from gateway.participant_cli import _outbox

    status, _ = await harness.post(ICBC, harness.sign(ICBC, A100))
    assert status == 200
    await operator(harness, "day-switch")
    out = io.StringIO()
    read = argparse.Namespace(
        participant=ICBC, after=0, wait=0.0, ack=False, json=False, url=harness.url
    )
    assert await _outbox(read, harness.runtime.gateway, out) == 0
    *listed, last = out.getvalue().splitlines()
    assert last.startswith("5 message(s); next cursor ")
    lines = [line.split(" ", 3) for line in listed]
    assert [(kind, described) for _, kind, _, described in lines] == [
        (
            "pacs.002.001.10",
            "receipt for B102100099996202611230001: "
            + ", ".join(f"10210009999620261123000000{number:02d}=ACSP" for number in range(1, 5)),
        ),
        ("admi.004.001.02", "system event SCLS: SESSION=20261123-01 BIZDT=2026-11-23"),
        ("camt.054.001.08", "net of session 20261123-01: 62280.50 CNY DBIT BOOK"),
        ("admi.004.001.02", "system event DSWT: BIZDT=2026-11-24 PRVBIZDT=2026-11-23"),
        (
            "camt.053.001.08",
            # 80,000,000.00 configured, less the session's 62,280.50 net debit.
            "statement S20261123102100099996 no. 1: opening 80000000.00 CRDT, 1 entry, "
            "closing 79937719.50 CRDT",
        ),
    ]


async def test_the_day_switch_is_broadcast_to_banks_and_agencies(harness: Harness) -> None:
    await operator(harness, "day-switch")
    for participant in (*CLEARING_BANKS, AGENCY):
        events = of_type(await harness.outbox(participant), "admi.004.001.02")
        codes = [text(event, ".//{*}EvtCd")[0] for event in events]
        assert codes.count("DSWT") == 1
        [switch] = [event for event in events if text(event, ".//{*}EvtCd") == ["DSWT"]]
        harness.verify_from_centre(etree.tostring(switch))
        assert text(switch, ".//{*}EvtParam") == ["BIZDT=2026-11-24", "PRVBIZDT=2026-11-23"]


def test_a_net_that_waits_is_pending_then_booked_when_settled(harness: Harness) -> None:
    """A shortfall (or a holiday's result) leaves a net unsettled at the close: PDNG, with no
    booking date; its later settlement is a BOOK on the day it happens."""
    ids = iter(f"B999999999999202611230{number:03d}" for number in range(1, 100))
    directory = harness.runtime.gateway.directory
    now = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    closed = SessionClosed(
        "20261123-01",
        date(2026, 11, 23),
        3,
        {ICBC: -5000, BOC: 5000},
        False,
        date(2026, 11, 23),
        now,
    )
    at_close = notices(
        [closed, NetSettled("20261123-01", BOC, 5000, now)],
        directory,
        now,
        ZONE,
        ids.__next__,
    )
    by_recipient = {
        notice.recipient: notice.document
        for notice in at_close
        if notice.message == "camt.054.001.08"
    }
    waiting = by_recipient[ICBC].notifications[0].entries[0]  # type: ignore[attr-defined]
    assert (waiting.status, waiting.booking_date, waiting.direction, waiting.amount) == (
        "PDNG",
        None,
        "DBIT",
        5000,
    )
    assert by_recipient[BOC].notifications[0].entries[0].status == "BOOK"  # type: ignore[attr-defined]
    # 16:30 UTC is already the next day where the centre is: the booking date is its.
    evening = datetime(2026, 11, 23, 16, 30, tzinfo=UTC)
    later = notices(
        [
            NetSettled("20261123-01", ICBC, -5000, evening),
            DaySwitched(date(2026, 11, 23), date(2026, 11, 24), now),
        ],
        directory,
        evening + timedelta(hours=1),
        ZONE,
        ids.__next__,
    )
    [booked] = [notice for notice in later if notice.message == "camt.054.001.08"]
    entry = booked.document.notifications[0].entries[0]  # type: ignore[attr-defined]
    assert (booked.recipient, entry.status, entry.booking_date, entry.direction) == (
        ICBC,
        "BOOK",
        date(2026, 11, 24),
        "DBIT",
    )
    assert sorted(
        notice.recipient for notice in later if notice.message == "admi.004.001.02"
    ) == sorted((*CLEARING_BANKS, AGENCY))
    # An item's change alone (most commands) owes no notice.
    assert notices([ItemChanged("item", "netted")], directory, now, ZONE, ids.__next__) == []
    # Every notice is a valid document of its message (the gateway checks before it signs).
    encoder = harness.runtime.gateway.encoder
    for notice in [*at_close, *later]:
        header = BusinessHeader(
            sender=CENTRE,
            receiver=notice.recipient,
            business_message_id=notice.message_id,
            message_definition=notice.message,
            created_at=now,
        )
        document = encoder.message(header, notice.document)
        verdict = harness.runtime.gateway.validator.validate(
            InputSource.from_bytes(document, "notice")
        )
        assert verdict.valid, verdict


async def test_notices_caught_up_are_dated_when_due_and_each_bank_gets_its_statement(
    harness: Harness,
) -> None:
    """No tick ran from 09:00 to 17:30: the one that then runs closes the day's sessions and
    switches the day. The notices say when each of these fell due, and each clearing bank gets
    its settlement account's statement of the day, signed and valid."""
    status, _ = await harness.post(ICBC, harness.sign(ICBC, A100))
    assert status == 200
    await operator(harness, "credit-account", participant=CCB, amount="1000.00")
    harness.clock.advance(hours=8, minutes=30)
    await harness.runtime.messages.tick()
    events = of_type(await harness.outbox(BOC), "admi.004.001.02")
    first = next(
        event for event in events if "SESSION=20261123-01" in text(event, ".//{*}EvtParam")
    )
    [switch] = [event for event in events if text(event, ".//{*}EvtCd") == ["DSWT"]]
    for event, due in ((first, time(10)), (switch, time(17))):
        assert datetime.fromisoformat(text(event, ".//{*}EvtTm")[0]) == datetime.combine(
            date(2026, 11, 23), due, ZONE
        )
        assert datetime.fromisoformat(text(event, ".//{*}AppHdr/{*}CreDt")[0]) == (
            harness.clock.now()
        )
    validator = harness.runtime.gateway.validator
    figures = {}
    for bank in CLEARING_BANKS:
        [statement] = of_type(await harness.outbox(bank), "camt.053.001.08")
        signed = etree.tostring(statement)
        harness.verify_from_centre(signed)
        verdict = validator.validate(InputSource.from_bytes(signed, f"camt.053 to {bank}"))
        assert verdict.valid, verdict
        assert text(statement, ".//{*}AppHdr/{*}To//{*}MmbId") == [bank]
        assert text(statement, ".//{*}Stmt/{*}Id") == [f"S20261123{bank}"]
        assert text(statement, ".//{*}ElctrncSeqNb") == ["1"]
        period = [
            datetime.fromisoformat(value)
            for value in text(statement, ".//{*}FrToDt/{*}FrDtTm")
            + text(statement, ".//{*}FrToDt/{*}ToDtTm")
        ]
        assert period == [START, datetime(2026, 11, 23, 17, tzinfo=ZONE)]
        figures[bank] = (
            [
                " ".join(
                    text(balance, path)[0]
                    for path in ("{*}Tp//{*}Cd", "{*}Amt", "{*}CdtDbtInd", "{*}Dt/{*}Dt")
                )
                for balance in statement.iterfind(".//{*}Bal")
            ]
            + [
                " ".join(
                    text(entry, path)[0]
                    for path in (
                        "{*}Amt",
                        "{*}CdtDbtInd",
                        "{*}Sts/{*}Cd",
                        "{*}BookgDt/{*}Dt",
                        "{*}ValDt/{*}Dt",
                        "{*}AddtlNtryInf",
                    )
                )
                for entry in statement.iterfind(".//{*}Ntry")
            ]
            + text(statement, ".//{*}TxsSummry/{*}TtlNtries/{*}NbOfNtries")
        )
    assert figures[ICBC] == [
        "OPBD 80000000.00 CRDT 2026-11-23",
        "CLBD 79937719.50 CRDT 2026-11-23",
        "62280.50 DBIT BOOK 2026-11-23 2026-11-23 20261123-01",
        "1",
    ]
    assert figures[BOC][2:] == ["62280.50 CRDT BOOK 2026-11-23 2026-11-23 20261123-01", "1"]
    assert figures[CCB] == [
        "OPBD 65000000.00 CRDT 2026-11-23",
        "CLBD 65001000.00 CRDT 2026-11-23",
        "1000.00 CRDT BOOK 2026-11-23 2026-11-23 funds credited by the clearing centre",
        "1",
    ]
    assert figures[ABC][2:] == ["0"]  # nothing booked: opening and closing are the same
    assert figures[ABC][0].split()[1:] == figures[ABC][1].split()[1:]
    assert of_type(await harness.outbox(AGENCY), "camt.053.001.08") == []
