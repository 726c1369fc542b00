"""When the gateway itself fails: a fault of its own is answered 500 with a signed admi.002
MS03 naming an incident (sending again would fail the same way), a storage failure 503 with
Retry-After (sending again may succeed); neither applies anything."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import aiohttp
import pytest
from sqlalchemy.exc import IntegrityError, OperationalError, StatementError

from gateway.service import message_gateway
from gateway.store import messages
from gateway.store.database import storage_unavailable
from tests.gateway.conftest import BOCOM, C100, C100_ID, CCB, D100, D100_ID, ICBC, Harness


def fail_for(message_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fault in translating one message into its clearing command (a bug, not bad input)."""
    translate = message_gateway.translate

    def faulty(*arguments: Any) -> Any:
        if arguments[-1] == message_id:
            raise KeyError("a fault of the gateway's own")
        return translate(*arguments)

    monkeypatch.setattr(message_gateway, "translate", faulty)


async def test_a_fault_of_the_gateway_answers_500_with_a_signed_ms03_and_applies_nothing(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="isogw.messages")
    fail_for(C100_ID, monkeypatch)
    status, answer = await harness.post(BOCOM, harness.sign(BOCOM, C100))
    assert status == 500
    root = harness.verify_from_centre(answer)
    assert root.findtext(".//{*}RjctgPtyRsn") == "MS03"
    assert root.findtext(".//{*}RltdRef/{*}Ref") == C100_ID
    incident = root.findtext(".//{*}AppHdr/{*}BizMsgIdr")
    assert incident is not None and f"incident {incident}" in root.findtext(".//{*}RsnDesc", "")
    [record] = [r for r in caplog.records if "event=internal-error" in r.getMessage()]
    assert f"incident={incident} participant={BOCOM} message_id={C100_ID}" in record.getMessage()
    assert record.exc_info is not None and "a fault of the gateway's own" in caplog.text
    # Nothing applied, nothing recorded as answered: no payment, nothing forwarded, and the
    # same message is processed afresh once the fault is fixed.
    assert harness.runtime.clearing.core.items == {}
    assert (await harness.outbox(CCB))["messages"] == []
    assert (await harness.post(BOCOM, harness.sign(BOCOM, C100)))[0] == 500
    monkeypatch.undo()
    status, answer = await harness.post(BOCOM, harness.sign(BOCOM, C100))
    assert status == 200 and harness.verify_from_centre(answer).find(".//{*}RctAck") is not None
    assert len((await harness.outbox(CCB))["messages"]) == 1
    status, _, text = await harness.get(CCB, "/metrics")
    assert status == 200
    assert re.search(r'message="pacs.008.001.08",outcome="internal-error"\} 2\b', text), text


async def test_a_fault_in_one_submission_leaves_the_others_committed_with_it(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_for(C100_ID, monkeypatch)
    (credit, _), (debit, answer) = await asyncio.gather(
        harness.post(BOCOM, harness.sign(BOCOM, C100)),
        harness.post(ICBC, harness.sign(ICBC, D100)),
    )
    assert (credit, debit) == (500, 200)
    assert harness.verify_from_centre(answer).find(".//{*}RctAck") is not None
    [package] = harness.runtime.clearing.core.packages.values()
    assert package.package_id.endswith(D100_ID)
    forwarded = (await harness.outbox(CCB))["messages"]
    assert [message["message_id"] for message in forwarded] == [D100_ID]


async def test_a_storage_failure_answers_503_with_retry_after_and_the_same_message_goes_through(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*arguments: object, **keywords: object) -> object:
        raise OperationalError("INSERT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(harness.runtime.clearing, "execute", broken)
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            harness.url + "/v1/messages",
            data=harness.sign(BOCOM, C100),
            headers={"Content-Type": "application/xml"},
            ssl=harness.context(BOCOM),
        ) as response,
    ):
        assert (response.status, response.headers.get("Retry-After")) == (503, "1")
        answer = harness.verify_from_centre(await response.read())
    assert answer.findtext(".//{*}RjctgPtyRsn") == "TA01"
    assert (answer.findtext(".//{*}RsnDesc") or "").startswith(
        "storage temporarily unavailable: nothing was applied; send the same message again"
    )
    status, _, text = await harness.get(CCB, "/metrics")
    assert status == 200
    assert 'message="pacs.008.001.08",outcome="unavailable"} 1' in text
    monkeypatch.undo()
    assert (await harness.post(BOCOM, harness.sign(BOCOM, C100)))[0] == 200
    assert len((await harness.outbox(CCB))["messages"]) == 1


async def test_an_outbox_read_during_a_storage_failure_answers_503_with_retry_after(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert (await harness.post(BOCOM, harness.sign(BOCOM, C100)))[0] == 200

    async def broken(*arguments: object, **keywords: object) -> object:
        raise OperationalError("SELECT", {}, Exception("database is locked"))

    monkeypatch.setattr(messages, "read_outbox", broken)
    status, headers, text = await harness.get(CCB, "/v1/outbox?after=0")
    assert (status, headers.get("Retry-After")) == (503, "1")
    assert "storage temporarily unavailable; nothing was changed, try again" in text
    assert "event=storage-unavailable path=/v1/outbox" in caplog.text
    monkeypatch.undo()
    assert len((await harness.outbox(CCB))["messages"]) == 1


async def test_a_failure_after_the_commit_does_not_change_the_answer(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Waking the outbox polls fails once the payment is committed: the bank still gets its
    acceptance (the payment is applied, and the poll finds it when it looks again)."""

    def failing_notify(participants: set[str]) -> None:
        raise RuntimeError("waking the pollers failed")

    harness.runtime.messages.set_notify(failing_notify)
    status, answer = await harness.post(BOCOM, harness.sign(BOCOM, C100))
    assert status == 200 and harness.verify_from_centre(answer).find(".//{*}RctAck") is not None
    assert f"event=after-commit-failed participant={BOCOM} message_id={C100_ID}" in caplog.text
    assert len(harness.runtime.clearing.core.items) == 1
    assert len((await harness.outbox(CCB))["messages"]) == 1


@pytest.mark.parametrize(
    ("error", "unavailable"),
    [
        (OperationalError("COMMIT", {}, Exception("database or disk is full")), True),
        (OSError(28, "No space left on device"), True),
        (IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed")), False),
        (StatementError("bind", "INSERT", {}, TypeError("not a date")), False),
        (ConnectionResetError("the client went away"), False),
        (KeyError("a bug"), False),
    ],
)
def test_what_counts_as_the_storage_being_unavailable(
    error: BaseException, unavailable: bool
) -> None:
    assert storage_unavailable(error) is unavailable
