"""The one line ``isogw outbox`` prints for each message: every kind a bank can find in its
outbox says what it is and what it refers to (a forwarded return or invoice used to read
"0 transactions")."""

from __future__ import annotations

import pytest

from gateway.message_summary import summary
from tests.conftest import SAMPLES

EXPECTED = {
    "pacs.008.001.08/valid-A100-ordinary-credit.xml": "4 transactions, 62280.50 CNY (A100)",
    "pacs.008.001.08/valid-C100-realtime-credit.xml": "1 transaction, 2000.00 CNY (C100)",
    "pacs.003.001.08/valid-B308-cheque-truncation.xml": "2 transactions, 49250.60 CNY (B308)",
    "pacs.003.001.08/valid-D100-realtime-debit.xml": "1 transaction, 5000.00 CNY (D100)",
    "pacs.002.001.10/valid-debit-receipt-package.xml": (
        "receipt for B104100000004202611230021: 1041000000042026112300000501=ACSP, "
        "1041000000042026112300000502=RJCT(AC01), 1041000000042026112300000503=ACSP"
    ),
    "pacs.004.001.09/valid-return-credit.xml": (
        "return of B102100099996202611230001: 1021000999962026112300000004 980.00 CNY (FOCR)"
    ),
    "pacs.007.001.09/valid-reversal-realtime-credit.xml": (
        "reversal of B301290000007202611230042: 3012900000072026112300000301 2000.00 CNY (AB05)"
    ),
    "camt.056.001.08/valid-cancellation-whole-package.xml": (
        "cancellation request CX103100000026202611230001 for the whole of "
        "B103100000026202611230015 (DUPL)"
    ),
    "camt.056.001.08/valid-stop-payment-item.xml": (
        "stop request ZF103100000026202611230001 for B103100000026202611230024: "
        "1031000000262026112300000902 (CUST)"
    ),
    "camt.029.001.09/valid-cancellation-accepted.xml": (
        "answer to B103100000026202611230015: CNCL"
    ),
    "remt.001.001.05/valid-invoice-transfer.xml": (
        "invoice CINV 26112000000004567123 86.40 CNY for payment 9901000000172026112300000601"
    ),
    "camt.054.001.08/valid-session-netting-notification.xml": (
        "net of session 20261123-S01: 42094.80 CNY DBIT PDNG"
    ),
    "camt.053.001.08/valid-end-of-day-statement.xml": (
        "statement STMT20261123104100000004 no. 327: opening 58000000.00 CRDT, 3 entries, "
        "closing 56770480.50 CRDT"
    ),
    "admi.004.001.02/valid-day-switch.xml": (
        "system event DSWT: BIZDT=2026-11-24 PRVBIZDT=2026-11-23"
    ),
    "admi.007.001.01/valid-accepted-for-processing.xml": (
        "accepted for processing: B102100099996202611230001"
    ),
}


@pytest.mark.parametrize("sample", sorted(EXPECTED))
def test_each_kind_of_message_is_summed_up_with_what_it_refers_to(sample: str) -> None:
    assert summary((SAMPLES / sample).read_text(encoding="utf-8")) == EXPECTED[sample]


def test_a_bare_document_reads_as_its_envelope_does() -> None:
    enveloped = (SAMPLES / "pacs.003.001.08/valid-B100-ordinary-debit.xml").read_text()
    bare = (SAMPLES / "pacs.003.001.08/valid-bare-document-B100.xml").read_text()
    assert summary(enveloped) == "3 transactions, 1858.25 CNY (B100)"
    assert summary(bare) == "2 transactions, 4960.00 CNY (B100)"


def test_a_bank_reject_names_the_message_its_code_and_where() -> None:
    text = (SAMPLES / "admi.002.001.01/valid-bank-rejects-forwarded-credit.xml").read_text()
    assert summary(text) == (
        "reject of B301290000007202611230042: FF01 The creditor name has characters our core "
        "banking system cannot store; the payment was not booked. at "
        "/Message/Document/FIToFICstmrCdtTrf/CdtTrfTxInf/Cdtr/Nm"
    )


def test_a_group_status_without_items_is_shown_as_the_group_s() -> None:
    receipt = """<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pacs.002.001.10">
      <FIToFIPmtStsRpt><OrgnlGrpInfAndSts><OrgnlMsgId>B1</OrgnlMsgId>
      <GrpSts>RJCT</GrpSts><StsRsnInf><Rsn><Cd>AM04</Cd></Rsn></StsRsnInf>
      </OrgnlGrpInfAndSts></FIToFIPmtStsRpt></Document>"""
    assert summary(receipt) == "receipt for B1: group RJCT(AM04)"


def test_a_message_of_another_kind_is_named_by_its_root() -> None:
    other = '<Document xmlns="urn:example"><Unheard><A/></Unheard></Document>'
    assert summary(other) == "Unheard message"
