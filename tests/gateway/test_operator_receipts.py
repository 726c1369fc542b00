"""Operator commands (``isogw core …``) owe the banks the receipts their effects cause, as the
gateway's own commands do: a cap raised by hand nets queued items (ACSP), and a command run
after a real-time deadline expires the item (RJCT AB05) to both banks."""

from __future__ import annotations

from typing import Any

from gateway.message_summary import summary
from tests.conftest import SAMPLES
from tests.gateway.conftest import (
    BOCOM,
    C100,
    C100_ID,
    C100_TX,
    CCB,
    ICBC,
    Harness,
    operator,
    statuses,
)

A100 = (SAMPLES / "pacs.008.001.08" / "valid-A100-ordinary-credit.xml").read_bytes()


def receipts(outbox: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        message for message in outbox["messages"] if message["message_type"] == "pacs.002.001.10"
    ]


async def test_a_cap_raised_by_the_operator_nets_the_queue_and_the_bank_gets_acsp(
    harness: Harness,
) -> None:
    await harness.remove_cap(ICBC)
    status, answer = await harness.post(ICBC, harness.sign(ICBC, A100))
    assert status == 200, answer
    [pending] = receipts(await harness.outbox(ICBC))
    harness.verify_from_centre(pending["xml"].encode())
    assert statuses(pending["xml"]) == ["PDNG"] * 4
    # Each says why it waits: the cap (AM04), as the scheme's sample receipt does.
    assert summary(pending["xml"]).count("=PDNG(AM04)") == 4
    await operator(
        harness,
        "set-cap",
        participant=ICBC,
        collateral="100000.00",
        credit_line=None,
        ring_fenced=None,
    )
    later = receipts(await harness.outbox(ICBC, after=pending["sequence"]))
    assert len(later) == 1, "the netted items' receipt was not delivered"
    harness.verify_from_centre(later[0]["xml"].encode())
    assert statuses(later[0]["xml"]) == ["ACSP"] * 4
    assert "<ClrSysRef>20261123-01</ClrSysRef>" in later[0]["xml"]


async def test_an_operator_command_after_a_real_time_deadline_sends_ab05_to_both_banks(
    harness: Harness,
) -> None:
    status, _ = await harness.post(BOCOM, harness.sign(BOCOM, C100))
    assert status == 200
    harness.clock.advance(seconds=21)
    # No tick of the gateway ran (it was stopped, say): the operator's command lets the time
    # pass in the core, and with it the deadline.
    await operator(harness, "close-session")
    for bank in (BOCOM, CCB):
        [receipt] = receipts(await harness.outbox(bank))
        harness.verify_from_centre(receipt["xml"].encode())
        assert statuses(receipt["xml"]) == ["RJCT"] and "<Cd>AB05</Cd>" in receipt["xml"]
        assert C100_TX in receipt["xml"]


async def test_a_late_answer_that_itself_lets_the_deadline_pass_is_refused_tm01(
    harness: Harness,
) -> None:
    """The gateway's tick runs each second, so an answer can arrive after the deadline but
    before the tick: its own command lets the time pass (the item expires), then refuses it.
    The answer is the refusal, and both banks still get the AB05 receipt."""
    status, _ = await harness.post(BOCOM, harness.sign(BOCOM, C100))
    assert status == 200
    harness.clock.advance(seconds=20.5)
    status, answer = await harness.post(CCB, harness.receipt(CCB, C100_ID, C100_TX, "ACSP"))
    assert status == 400 and b"<RjctgPtyRsn>TM01</RjctgPtyRsn>" in answer, answer
    harness.verify_from_centre(answer)
    for bank in (BOCOM, CCB):
        [receipt] = receipts(await harness.outbox(bank))
        assert statuses(receipt["xml"]) == ["RJCT"] and "<Cd>AB05</Cd>" in receipt["xml"]
    item = harness.runtime.clearing.core.items[f"{BOCOM}:{C100_ID}/{C100_TX}"]
    assert item.state == "expired"
