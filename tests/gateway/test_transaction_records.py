"""``isogw core transactions``: each payment item with its amount, banks, state and session,
the parties' accounts and names masked, and where its message came from and how it was
verified."""

from __future__ import annotations

import argparse
import io
import json
import logging
import subprocess
import sys
from datetime import date
from typing import Any

import pytest
from sqlalchemy import delete, select

from gateway.clearing.events import BusinessRetired, Event
from gateway.operator_cli import _run
from gateway.participant_cli import envelope
from gateway.service.clock import SystemClock
from gateway.service.transaction_records import mask_account, mask_name
from gateway.store.tables import inbound_message, retired_item
from tests.conftest import CONFIG, PROJECT, SAMPLES
from tests.gateway.conftest import BOCOM, C100, C100_ID, C100_TX, CCB, ICBC, Harness

BOC = "104100000004"
CREDIT = f"{BOCOM}:{C100_ID}/{C100_TX}"
A100 = f"{ICBC}:B102100099996202611230001"
UNMASKED = (
    "6231500000123456",
    "6217000010012345678",
    "赵磊",
    "孙丽",
    "6222020200098765432",
    "6217850100005551234",
    "Zhou Ming",
    "Liu Yang",
)
"""The samples' account numbers and names: none may appear in a listing."""


@pytest.mark.parametrize(
    ("account", "masked"),
    [
        ("6231500000123456", "6231********3456"),
        ("447659231485", "4476****1485"),
        ("123456789", "1234*6789"),
        ("12345678", "****5678"),
        ("12345", "*2345"),
        ("1234", "****"),
        ("", ""),
        (None, None),
    ],
)
def test_an_account_shows_its_first_and_last_four_characters(
    account: str | None, masked: str | None
) -> None:
    assert mask_account(account) == masked


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("赵磊", "赵*"),
        ("北京华联商贸有限公司", "北*********"),
        ("Zhou Ming", "Z********"),
        ("", ""),
    ],
)
def test_a_name_shows_its_first_character(name: str, masked: str) -> None:
    assert mask_name(name) == masked


async def listing(as_json: bool = True, **filters: Any) -> Any:
    out = io.StringIO()
    arguments = argparse.Namespace(
        action="transactions",
        participant=filters.get("participant"),
        date=filters.get("date"),
        state=filters.get("state"),
        message=filters.get("message"),
        limit=filters.get("limit", 50),
        json=as_json,
    )
    assert await _run(CONFIG, arguments, out, SystemClock()) == 0
    text = out.getvalue()
    for value in UNMASKED:
        assert value not in text
    return json.loads(text) if as_json else text


async def test_a_real_time_credit_is_listed_masked_with_where_it_came_from(
    harness: Harness,
) -> None:
    assert (await harness.post(BOCOM, harness.sign(BOCOM, C100)))[0] == 200
    status, _ = await harness.post(CCB, harness.receipt(CCB, C100_ID, C100_TX, "ACSP"))
    assert status == 200
    [record] = await listing()
    session = harness.runtime.clearing.core.items[CREDIT].session_id
    pin = next(pin for pin, code in harness.runtime.pins.items() if code == BOCOM)
    assert record == {
        "item": CREDIT,
        "business_type": "C100",
        "real_time": True,
        "amount": "2000.00",
        "business_date": "2026-11-23",
        "state": "netted",
        "reason_code": None,
        "session": session,
        "payer": BOCOM,
        "payer_account": "6231********3456",
        "payer_name": "赵*",
        "payee": CCB,
        "payee_account": "6217***********5678",
        "payee_name": "孙*",
        "received_at": record["received_at"],
        "client_address": "127.0.0.1",
        "certificate_sha256": pin,
        "signature_method": "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
        "return_of": None,
        "retired": False,
    }
    assert record["received_at"].startswith("2026-11-23T")
    text = await listing(as_json=False)
    assert text == (
        f"{record['received_at']} {CREDIT} C100 2000.00 CNY {BOCOM} 6231********3456 赵* -> "
        f"{CCB} 6217***********5678 孙* netted session {session} from 127.0.0.1\n"
    )


async def test_filters_and_order(harness: Harness) -> None:
    assert (await harness.post(BOCOM, harness.sign(BOCOM, C100)))[0] == 200
    status, _ = await harness.post(CCB, harness.receipt(CCB, C100_ID, C100_TX, "RJCT"))
    assert status == 200
    message = envelope(
        harness.runtime.gateway,
        ICBC,
        (SAMPLES / "pacs.008.001.08" / "valid-A100-ordinary-credit.xml").read_bytes(),
    )
    assert (await harness.post(ICBC, harness.sign(ICBC, message)))[0] == 200
    everything = await listing()
    # Newest first: the four items of the A100 package (last one first), then the credit.
    assert [record["item"] for record in everything] == [
        f"{A100}/1021000999962026112300000004",
        f"{A100}/1021000999962026112300000003",
        f"{A100}/1021000999962026112300000002",
        f"{A100}/1021000999962026112300000001",
        CREDIT,
    ]
    assert everything[-1]["state"] == "rejected"
    assert [record["item"] for record in await listing(limit=2)] == [
        record["item"] for record in everything[:2]
    ]
    # A participant's: the items it pays, is paid by, or sent.
    assert [record["item"] for record in await listing(participant=CCB)] == [CREDIT]
    assert len(await listing(participant=ICBC)) == 4
    assert [record["item"] for record in await listing(state="rejected")] == [CREDIT]
    assert [record["item"] for record in await listing(message=[BOCOM, C100_ID])] == [CREDIT]
    assert len(await listing(message=A100.split(":"))) == 4
    assert await listing(message=[ICBC, C100_ID]) == []
    assert await listing(state="settled") == []
    assert len(await listing(date=harness.runtime.clearing.core.business_date)) == 5
    assert await listing(date=date(2026, 11, 24)) == []
    assert await listing(as_json=False, participant="313290000017") == (
        "no payment items in the ledger match\n"
    )


async def test_a_return_shows_the_parties_of_the_item_it_returns_the_other_way_round(
    harness: Harness,
) -> None:
    for code, path in (
        (ICBC, "pacs.008.001.08/valid-A100-ordinary-credit.xml"),
        (BOC, "pacs.004.001.09/valid-return-credit.xml"),
    ):
        message = envelope(harness.runtime.gateway, code, (SAMPLES / path).read_bytes())
        assert (await harness.post(code, harness.sign(code, message)))[0] == 200
    original = f"{A100}/1021000999962026112300000004"
    returned = harness.runtime.clearing.core.items[original].returned_by
    records = {record["item"]: record for record in await listing()}
    assert records[original]["state"] == "returned"
    back = records[returned]
    assert (back["return_of"], back["payer"], back["payee"]) == (original, BOC, ICBC)
    assert (back["payer_account"], back["payer_name"]) == ("6217***********1234", "L*******")
    assert (back["payee_account"], back["payee_name"]) == ("6222***********5432", "Z********")
    assert back["client_address"] == "127.0.0.1"


async def retire_the_first_day(harness: Harness) -> list[Event]:
    """Tick through the business days until the core has retired the first one (the sample
    configuration keeps 5 business days after their end of day); the events of the tick that
    retired it."""
    core = harness.runtime.clearing.core
    for _ in range(12):
        harness.clock.advance(days=1)
        events = await harness.runtime.messages.tick()
        if core.retired_through is not None:
            return events
    raise AssertionError(f"nothing retired by {core.business_date}")


async def test_items_the_core_retired_are_listed_from_their_record(harness: Harness) -> None:
    """Days after, the core has forgotten the items; their record, written with the command
    that retired them, lists them as they ended, parties and provenance included, after what
    the core still holds, and the filters apply to it."""
    for code, path in (
        (ICBC, "pacs.008.001.08/valid-A100-ordinary-credit.xml"),
        (BOC, "pacs.004.001.09/valid-return-credit.xml"),
    ):
        message = envelope(harness.runtime.gateway, code, (SAMPLES / path).read_bytes())
        assert (await harness.post(code, harness.sign(code, message)))[0] == 200
    assert (await harness.post(BOCOM, harness.sign(BOCOM, C100)))[0] == 200
    assert (await harness.post(CCB, harness.receipt(CCB, C100_ID, C100_TX, "ACSP")))[0] == 200
    core = harness.runtime.clearing.core
    harness.clock.advance(hours=8, minutes=30)  # Monday's sessions settle, its day switches
    await harness.runtime.messages.tick()
    ended = await listing()
    assert len(ended) == 6
    assert {record["state"] for record in ended} == {"settled", "returned"}
    assert not any(record["retired"] for record in ended)
    events = await retire_the_first_day(harness)
    [retired] = [event for event in events if isinstance(event, BusinessRetired)]
    assert (retired.through, len(retired.items), retired.packages) == (date(2026, 11, 23), 6, 3)
    assert not set(core.items) & {record["item"] for record in ended}
    assert await listing() == [{**record, "retired": True} for record in ended]

    # The filters, on the record.
    [credit] = await listing(participant=CCB, state="settled")
    assert credit["item"] == CREDIT
    assert len(await listing(participant=ICBC)) == 5
    assert [record["item"] for record in await listing(state="returned")] == [
        f"{A100}/1021000999962026112300000004"
    ]
    assert len(await listing(date=date(2026, 11, 23))) == 6
    assert await listing(date=date(2026, 11, 24)) == []
    # One message's items, from the record; a message id that is only the start of another's
    # takes nothing.
    [by_message] = await listing(message=[BOCOM, C100_ID])
    assert by_message == credit
    assert [record["item"] for record in await listing(message=A100.split(":"))] == [
        f"{A100}/1021000999962026112300000004",
        f"{A100}/1021000999962026112300000003",
        f"{A100}/1021000999962026112300000002",
        f"{A100}/1021000999962026112300000001",
    ]
    assert await listing(message=[BOCOM, C100_ID[:-1]]) == []
    # What the core holds comes first; the limit counts both.
    later = C100.replace(C100_ID.encode(), C100_ID[:-4].encode() + b"0043")
    assert (await harness.post(BOCOM, harness.sign(BOCOM, later)))[0] == 200
    first, second = await listing(limit=2)
    assert (first["retired"], first["state"], first["item"].split("/")[0]) == (
        False,
        "awaiting-receipt",
        f"{BOCOM}:{C100_ID[:-4]}0043",
    )
    assert second == {**ended[0], "retired": True}
    text = await listing(as_json=False, participant=BOCOM, state="settled")
    assert text == (
        f"{credit['received_at']} {CREDIT} C100 2000.00 CNY {BOCOM} 6231********3456 赵* -> "
        f"{CCB} 6217***********5678 孙* settled session {credit['session']} from 127.0.0.1 "
        "(retired)\n"
    )


async def test_a_ledger_that_retired_before_the_record_existed_records_it_at_its_next_start(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """A ledger whose core retired items before this release had their record: the next
    start replays the log once and records every item it retired, as the writer would have."""
    assert (await harness.post(BOCOM, harness.sign(BOCOM, C100)))[0] == 200
    assert (await harness.post(CCB, harness.receipt(CCB, C100_ID, C100_TX, "ACSP")))[0] == 200
    await retire_the_first_day(harness)
    engine = harness.runtime.clearing.engine
    async with engine.connect() as connection:
        written = (await connection.execute(select(retired_item))).all()
    assert [row.item_id for row in written] == [CREDIT]
    async with engine.begin() as connection:
        await connection.run_sync(lambda sync: retired_item.drop(sync))
    with caplog.at_level(logging.INFO, logger="isogw.clearing"):
        [record] = await listing()  # the operator command opens the ledger: a start
    assert (record["item"], record["state"], record["retired"]) == (CREDIT, "settled", True)
    [line] = [text for text in caplog.messages if text.startswith("event=retired-items")]
    assert line.startswith("event=retired-items-recorded items=1 replayed=")
    async with engine.connect() as connection:
        recorded = (await connection.execute(select(retired_item))).all()
    assert [row._asdict() for row in recorded] == [row._asdict() for row in written]
    await listing()  # a start with the record in place records nothing again
    async with engine.connect() as connection:
        assert len((await connection.execute(select(retired_item))).all()) == 1


async def test_an_item_whose_message_is_not_kept_is_listed_without_accounts(
    harness: Harness,
) -> None:
    """A ledger written before messages were kept: the item is there, its parties unknown."""
    assert (await harness.post(BOCOM, harness.sign(BOCOM, C100)))[0] == 200
    async with harness.runtime.clearing.engine.begin() as connection:
        await connection.execute(delete(inbound_message))
    [record] = await listing()
    assert record["item"] == CREDIT and record["amount"] == "2000.00"
    for field in ("payer_account", "payer_name", "received_at", "client_address"):
        assert record[field] is None
    text = await listing(as_json=False)
    assert f"{CREDIT} C100 2000.00 CNY {BOCOM} - - -> {CCB} - - awaiting-receipt" in text
    assert text.startswith("- ") and text.endswith(" from -\n")


CORE_TRANSACTIONS = (
    sys.executable,
    "-m",
    "gateway",
    "--config",
    str(CONFIG),
    "core",
    "transactions",
)


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        (["--limit", "0"], "argument --limit: '0' is not a whole number from 1 to 10000"),
        (["--date", "23/11/2026"], "argument --date: '23/11/2026' is not a date (YYYY-MM-DD)"),
        (["--state", "paid"], "argument --state: invalid choice: 'paid'"),
        (["--message", "301290000007"], "argument --message: expected 2 arguments"),
    ],
)
def test_a_bad_argument_is_named(arguments: list[str], problem: str) -> None:
    listed = subprocess.run(
        [*CORE_TRANSACTIONS, *arguments], cwd=PROJECT, capture_output=True, text=True
    )
    assert listed.returncode == 2
    assert problem in listed.stderr
