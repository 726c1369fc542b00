"""Submissions refused before the clearing core are recorded with the admi.002 they got (not
their content: its SHA-256 and size), before that answer goes out; ``isogw core refusals``
lists them."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import subprocess
import sys
from typing import Any

import aiohttp
import pytest
from sqlalchemy.exc import OperationalError

from gateway.operator_cli import _run
from gateway.service import message_gateway
from gateway.service.clock import SystemClock
from tests.conftest import CONFIG, PROJECT
from tests.gateway.conftest import BOCOM, C100, C100_ID, CCB, ICBC, Harness, exhaust_rate_limit


async def refusals(*, participant: str | None = None, as_json: bool = False) -> Any:
    out = io.StringIO()
    arguments = argparse.Namespace(
        action="refusals", participant=participant, limit=50, json=as_json
    )
    assert await _run(CONFIG, arguments, out, SystemClock()) == 0
    return json.loads(out.getvalue()) if as_json else out.getvalue()


async def test_each_refusal_is_recorded_with_its_answer_and_the_hash_of_what_was_sent(
    harness: Harness,
) -> None:
    altered = harness.sign(BOCOM, C100).replace(b'Ccy="CNY">2000.00<', b'Ccy="CNY">9000.00<', 1)
    other_id = "B301290000007202611239999"
    invalid = harness.sign(
        BOCOM,
        C100.replace(C100_ID.encode(), other_id.encode()).replace(
            b"<CtrlSum>2000.00<", b"<CtrlSum>1.00<"
        ),
    )
    sent = [
        (BOCOM, altered, 400, "DS01"),
        (BOCOM, invalid, 400, "AM10"),
        (ICBC, harness.sign(BOCOM, C100), 403, "DS0E"),  # ICBC's certificate, BOCOM's header
        (BOCOM, harness.sign(BOCOM, C100), 200, None),  # accepted: kept with the submission
        (BOCOM, harness.sign(BOCOM, C100.replace(b"Ustrd>", b"Ustrd>x", 1)), 409, "DU01"),
    ]
    answers = []
    for participant, body, status, _ in sent:
        answered, answer = await harness.post(participant, body)
        assert answered == status
        answers.append(answer)
    listed = await refusals(as_json=True)
    refused = [
        (participant, body, answer, code)
        for (participant, body, _, code), answer in zip(sent, answers, strict=True)
        if code is not None
    ]
    assert [entry["reason_code"] for entry in listed] == ["DU01", "DS0E", "AM10", "DS01"]
    pins = {code: pin for pin, code in harness.runtime.pins.items()}
    for entry, (participant, body, answer, code) in zip(listed, reversed(refused), strict=True):
        assert entry["participant"] == participant and entry["reason_code"] == code
        assert entry["message_id"] == (other_id if code == "AM10" else C100_ID)
        assert entry["answer"].encode() == answer
        assert (entry["body_sha256"], entry["body_bytes"]) == (
            hashlib.sha256(body).hexdigest(),
            len(body),
        )
        assert (entry["client_address"], entry["certificate_sha256"]) == (
            "127.0.0.1",
            pins[participant],
        )
        assert entry["status"] == {"DS0E": 403, "DU01": 409}.get(code, 400)
    assert [entry["reason_code"] for entry in await refusals(participant=ICBC, as_json=True)] == [
        "DS0E"
    ]
    lines = (await refusals(participant=BOCOM)).splitlines()
    assert len(lines) == 3
    assert f" {BOCOM} {C100_ID} 400 DS01 from 127.0.0.1: " in lines[-1]
    assert f"({len(altered):,} bytes, sha256 {hashlib.sha256(altered).hexdigest()})" in lines[-1]
    assert " AM10 " in lines[1] and " at line " in lines[1]


async def test_a_refusal_for_how_it_was_sent_is_recorded_but_not_one_over_the_rate_limit(
    harness: Harness,
) -> None:
    """Too large (413: not read, so no SHA-256, the size as declared) and not XML (415) are
    recorded with their signed answers; over the rate limit (429) is not, so that a flood
    writes nothing."""
    limit = harness.runtime.gateway.settings.http.max_body_bytes
    huge = b"x" * (limit + 1)
    status, too_large = await harness.post(BOCOM, huge)
    assert status == 413
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            harness.url + "/v1/messages",
            data=b"{}",
            headers={"Content-Type": "application/json"},
            ssl=harness.context(CCB),
        ) as response,
    ):
        status, not_xml = response.status, await response.read()
    assert status == 415
    exhaust_rate_limit(harness, ICBC)
    assert (await harness.post(ICBC, harness.sign(ICBC, C100)))[0] == 429
    pins = {code: pin for pin, code in harness.runtime.pins.items()}
    listed = await refusals(as_json=True)
    assert [
        (entry["participant"], entry["status"], entry["reason_code"], entry["message_id"])
        for entry in listed
    ] == [(CCB, 415, "FF01", ""), (BOCOM, 413, "FF01", "")]
    assert [(entry["body_sha256"], entry["body_bytes"]) for entry in listed] == [
        (hashlib.sha256(b"{}").hexdigest(), 2),
        ("", len(huge)),
    ]
    assert [entry["answer"].encode() for entry in listed] == [not_xml, too_large]
    assert [entry["certificate_sha256"] for entry in listed] == [pins[CCB], pins[BOCOM]]
    [line] = (await refusals(participant=BOCOM)).splitlines()
    assert f" {BOCOM} - 413 FF01 from 127.0.0.1: the message is larger than the limit" in line
    assert line.endswith(f"({len(huge):,} bytes or more, not read)")


async def test_a_fault_of_the_gateway_is_recorded_with_its_incident(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    def faulty(*arguments: Any) -> Any:
        raise KeyError("a fault of the gateway's own")

    monkeypatch.setattr(message_gateway, "translate", faulty)
    status, answer = await harness.post(BOCOM, harness.sign(BOCOM, C100))
    assert status == 500
    [entry] = await refusals(as_json=True)
    assert (entry["status"], entry["reason_code"], entry["message_id"]) == (500, "MS03", C100_ID)
    assert entry["answer"].encode() == answer


async def test_a_refusal_is_not_answered_before_it_is_recorded(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The storage is unavailable: the bank gets 503 (send again), not the refusal."""

    async def broken(*arguments: object, **keywords: object) -> object:
        raise OperationalError("INSERT", {}, Exception("disk I/O error"))

    altered = harness.sign(BOCOM, C100).replace(b"2000.00<", b"9000.00<", 1)
    with monkeypatch.context() as patched:  # (undo() would also undo the harness's state folder)
        patched.setattr(harness.runtime.clearing, "execute", broken)
        assert (await harness.post(BOCOM, altered))[0] == 503
    assert (await harness.post(BOCOM, altered))[0] == 400
    assert [entry["reason_code"] for entry in await refusals(as_json=True)] == ["DS01"]
    assert await refusals(participant=CCB) == "no refused submissions in the ledger\n"


CORE_REFUSALS = (sys.executable, "-m", "gateway", "--config", str(CONFIG), "core", "refusals")


@pytest.mark.parametrize("limit", ["0", "10001", "many"])
def test_the_listing_is_bounded(limit: str) -> None:
    listed = subprocess.run(
        [*CORE_REFUSALS, "--limit", limit],
        cwd=PROJECT,
        capture_output=True,
        text=True,
    )
    assert listed.returncode == 2
    assert f"argument --limit: {limit!r} is not a whole number from 1 to 10000" in listed.stderr
