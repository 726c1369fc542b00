"""Cancellation, stop payment and return sent as camt.056 / pacs.004 over HTTPS, each reaching
the clearing core through the translation layer (the samples refer to one another)."""

from __future__ import annotations

from gateway.participant_cli import envelope
from tests.conftest import SAMPLES
from tests.gateway.conftest import Harness, receipt_outcomes

ABC, BOC, ICBC = "103100000026", "104100000004", "102100099996"


def sample(path: str) -> bytes:
    return (SAMPLES / path).read_bytes()


async def send(harness: Harness, code: str, path: str) -> tuple[int, bytes]:
    message = envelope(harness.runtime.gateway, code, sample(path))
    return await harness.post(code, harness.sign(code, message))


def state(harness: Harness, item_id: str) -> str:
    return harness.runtime.clearing.core.items[item_id].state


async def test_stop_payment_of_one_debit_item(harness: Harness) -> None:
    assert (await send(harness, ABC, "pacs.003.001.08/valid-bare-document-B100.xml"))[0] == 200
    package = f"{ABC}:B103100000026202611230024"
    status, answer = await send(harness, ABC, "camt.056.001.08/valid-stop-payment-item.xml")
    assert status == 200, answer
    assert state(harness, f"{package}/1031000000262026112300000902") == "stopped"
    assert state(harness, f"{package}/1031000000262026112300000901") == "awaiting-receipt"
    # ABC's receipt for the stopped item gives the reason it gave for it (CUST).
    outcomes = await receipt_outcomes(harness, ABC)
    assert outcomes["1031000000262026112300000902"] == ("CANC", "CUST")
    assert "1031000000262026112300000901" not in outcomes
    assert (
        harness.runtime.clearing.core.items[f"{package}/1031000000262026112300000902"].reason_code
        == "CUST"
    )
    # The answer paired with the request: a camt.029 for ABC; the stop goes on to the payer's bank.
    messages = (await harness.outbox(ABC))["messages"]
    (resolution,) = [
        message for message in messages if message["message_type"] == "camt.029.001.09"
    ]
    assert "<Conf>CNCL</Conf>" in resolution["xml"]
    assert "<OrgnlTxId>1031000000262026112300000902</OrgnlTxId>" in resolution["xml"]
    harness.verify_from_centre(resolution["xml"].encode())
    payer = harness.runtime.clearing.core.packages[package].receiver
    assert "camt.056.001.08" in [
        message["message_type"] for message in (await harness.outbox(payer))["messages"]
    ]


async def test_cancellation_of_a_queued_credit_package(harness: Harness) -> None:
    await harness.remove_cap(ABC)
    assert (await send(harness, ABC, "pacs.008.001.08/valid-bare-document-A100.xml"))[0] == 200
    package = harness.runtime.clearing.core.packages[f"{ABC}:B103100000026202611230015"]
    assert {state(harness, item) for item in package.item_ids} == {"queued"}
    status, answer = await send(
        harness, ABC, "camt.056.001.08/valid-cancellation-whole-package.xml"
    )
    assert status == 200, answer
    assert {state(harness, item) for item in package.item_ids} == {"cancelled"}
    # Each item's receipt turns PDNG (AM04, the cap) into CANC with the request's reason.
    outcomes = await receipt_outcomes(harness, ABC)
    core = harness.runtime.clearing.core
    cancelled = [core.items[item].transaction_id for item in package.item_ids]
    assert {outcomes[transaction] for transaction in cancelled} == {("CANC", "DUPL")}
    assert {core.items[item].reason_code for item in package.item_ids} == {"DUPL"}


async def test_cancellation_refused_once_netted_answers_agnt(harness: Harness) -> None:
    assert (await send(harness, ABC, "pacs.008.001.08/valid-bare-document-A100.xml"))[0] == 200
    status, answer = await send(
        harness, ABC, "camt.056.001.08/valid-cancellation-whole-package.xml"
    )
    assert status == 400 and b"<RjctgPtyRsn>AGNT</RjctgPtyRsn>" in answer


async def test_return_of_a_netted_credit(harness: Harness) -> None:
    assert (await send(harness, ICBC, "pacs.008.001.08/valid-A100-ordinary-credit.xml"))[0] == 200
    original = f"{ICBC}:B102100099996202611230001/1021000999962026112300000004"
    assert state(harness, original) == "netted"
    status, answer = await send(harness, BOC, "pacs.004.001.09/valid-return-credit.xml")
    assert status == 200, answer
    assert state(harness, original) == "returned"
    returned = harness.runtime.clearing.core.items[original].returned_by
    assert returned is not None and state(harness, returned) == "netted"
    # ICBC, whose customer gets the money back, receives the return, signed by the centre...
    (forwarded,) = [
        message
        for message in (await harness.outbox(ICBC))["messages"]
        if message["message_type"] == "pacs.004.001.09"
    ]
    assert forwarded["message_id"] == "B104100000004202611230064"
    assert "<OrgnlTxId>1021000999962026112300000004</OrgnlTxId>" in forwarded["xml"]
    harness.verify_from_centre(forwarded["xml"].encode())
    # ...and BOC, which returned it, a receipt: netted, with the session.
    (receipt,) = [
        message
        for message in (await harness.outbox(BOC))["messages"]
        if message["message_type"] == "pacs.002.001.10"
    ]
    harness.verify_from_centre(receipt["xml"].encode())
    assert "<OrgnlMsgId>B104100000004202611230064</OrgnlMsgId>" in receipt["xml"]
    assert "<OrgnlMsgNmId>pacs.004.001.09</OrgnlMsgNmId>" in receipt["xml"]
    assert "<TxSts>ACSP</TxSts>" in receipt["xml"]
    assert "<ClrSysRef>20261123-01</ClrSysRef>" in receipt["xml"]


async def test_invoice_transfer_reaches_the_payers_bank(harness: Harness) -> None:
    agency = "990100000017"
    status, answer = await send(harness, agency, "remt.001.001.05/valid-invoice-transfer.xml")
    assert status == 200, answer
    delivered = (await harness.outbox(ABC))["messages"]
    assert [message["message_type"] for message in delivered] == ["remt.001.001.05"]
    assert "RmtAdvc" in delivered[0]["xml"]
    harness.verify_from_centre(delivered[0]["xml"].encode())


async def test_a_payer_banks_answer_to_a_stop_goes_on_to_the_bank_that_asked(
    harness: Harness,
) -> None:
    status, answer = await send(harness, BOC, "camt.029.001.09/valid-stop-payment-refused.xml")
    assert status == 200, answer
    forwarded = (await harness.outbox(ABC))["messages"]
    assert [message["message_type"] for message in forwarded] == ["camt.029.001.09"]
    harness.verify_from_centre(forwarded[0]["xml"].encode())
