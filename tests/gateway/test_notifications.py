"""The notices of sessions and days reach the banks' outboxes, signed: admi.004 SCLS to every
clearing bank and a camt.054 net to each bank with one when a session closes; admi.004 DSWT
to every participant with an outbox when the day switches; a net that waits is PDNG, then
BOOK when it is settled."""

from __future__ import annotations

import argparse
import io
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from lxml import etree

from gateway.clearing.events import DaySwitched, ItemChanged, NetSettled, SessionClosed
from gateway.commands.inbound import BusinessHeader
from gateway.iso.input_source import InputSource
from gateway.service.notifications import notices
from tests.conftest import SAMPLES
from tests.gateway.conftest import BOCOM, CCB, CENTRE, ICBC, Harness, operator

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
    assert last.startswith("4 message(s); next cursor ")
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
        "20261123-01", date(2026, 11, 23), 3, {ICBC: -5000, BOC: 5000}, False, date(2026, 11, 23)
    )
    at_close = notices(
        [closed, NetSettled("20261123-01", BOC, 5000)],
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
    later = notices(
        [
            NetSettled("20261123-01", ICBC, -5000),
            DaySwitched(date(2026, 11, 23), date(2026, 11, 24)),
        ],
        directory,
        # 16:30 UTC is already the next day where the centre is: the booking date is its.
        datetime(2026, 11, 23, 16, 30, tzinfo=UTC),
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
