"""Outbound documents are built in XSD order and validated before they leave."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from lxml import etree
from pydantic import BaseModel

from gateway.commands.inbound import BusinessHeader
from gateway.commands.outbound import (
    AcknowledgedMessage,
    Entry,
    EntryDetail,
    MessageReject,
    Notification,
    ReceiptAcknowledgement,
    ReportedTransaction,
    SessionNotification,
    StatusReport,
    SystemEvent,
)
from gateway.composition import Gateway
from gateway.iso.encoder import DocumentEncoder, EncodingError
from gateway.iso.input_source import InputSource
from tests.test_schema_conformance import official

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def header(message: str, message_id: str) -> BusinessHeader:
    return BusinessHeader(
        sender="999999999999",
        receiver="102100099996",
        business_message_id=message_id,
        message_definition=message,
        created_at=NOW,
    )


DOCUMENTS = [
    MessageReject(
        related_reference="B102100099996202611230001",
        reason_code="AM02",
        rejected_at=NOW,
        error_location=(
            "line 132: /Message/Document/FIToFICstmrCdtTrf/CdtTrfTxInf[2]/IntrBkSttlmAmt"
        ),
        reason_text="amount 50000.01 is above the A100 cap of 50000.00 per transaction",
    ),
    ReceiptAcknowledgement(
        message_id="A999999999999202611230001",
        created_at=NOW,
        reports=(
            AcknowledgedMessage(
                reference="B102100099996202611230001", message_name="pacs.008.001.08"
            ),
        ),
    ),
    SystemEvent(event_code="DSWT", parameters=("BIZDT=2026-11-24",), event_time=NOW),
    StatusReport(
        message_id="R999999999999202611230001",
        created_at=NOW,
        original_message_id="B102100099996202611230001",
        original_message_type="pacs.008.001.08",
        group_status="ACSP",
        transactions=(
            ReportedTransaction(
                original_transaction_id="1021000999962026112300000001",
                status="ACSP",
                clearing_reference="20261123-S01",
                settlement_date=date(2026, 11, 23),
            ),
        ),
    ),
    SessionNotification(
        message_id="N999999999999202611230001",
        created_at=NOW,
        notifications=(
            Notification(
                notification_id="N20261123S01102100099996",
                created_at=NOW,
                account="102100099996001",
                entries=(
                    Entry(
                        amount=4209480,
                        currency="CNY",
                        direction="DBIT",
                        status="PDNG",
                        value_date=date(2026, 11, 23),
                        transaction_code="NETTING",
                        details=(
                            EntryDetail(
                                message_id="B102100099996202611230001",
                                transaction_id="1021000999962026112300000001",
                                amount=1280000,
                                currency="CNY",
                                direction="DBIT",
                                debtor_agent="102100099996",
                                creditor_agent="104100000004",
                            ),
                        ),
                        information="20261123-S01",
                    ),
                ),
            ),
        ),
    ),
]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda document: type(document).__name__)
def test_document_is_valid_under_ours_and_the_official_schema(gateway: Gateway, document) -> None:  # type: ignore[no-untyped-def]
    element = gateway.encoder.element(document)
    message = etree.QName(element).namespace.rsplit(":", 1)[1]
    assert official(message).validate(etree.ElementTree(element)), official(message).error_log


def test_enveloped_reject_validates_and_decodes_back(gateway: Gateway) -> None:
    reject = DOCUMENTS[0]
    data = gateway.encoder.message(header("admi.002.001.01", "R1"), reject)
    verdict = gateway.validator.validate(InputSource.from_bytes(data, "reject"))
    assert verdict.valid, verdict.problems
    assert verdict.message_type == "admi.002.001.01"
    assert b"<RjctgPtyRsn>AM02</RjctgPtyRsn>" in data


def test_amounts_are_written_from_minor_units(gateway: Gateway) -> None:
    text = etree.tostring(gateway.encoder.element(DOCUMENTS[4]))
    assert b'<Amt Ccy="CNY">42094.80</Amt>' in text and b'<Amt Ccy="CNY">12800.00</Amt>' in text


def test_a_document_our_schema_refuses_never_leaves(gateway: Gateway) -> None:
    too_long = MessageReject(
        related_reference="X" * 36,
        reason_code="FF01",
        rejected_at=NOW,
        reason_text="schema error",
    )
    with pytest.raises(EncodingError, match=r"admi\.002\.001\.01"):
        gateway.encoder.document(too_long)


def test_optional_agent_is_left_out_entirely(gateway: Gateway) -> None:
    report = StatusReport(
        message_id="R2",
        created_at=NOW,
        instructed_agent="104100000004",
        transactions=(
            ReportedTransaction(original_transaction_id="T1", status="RJCT", reason_code="AC01"),
        ),
    )
    text = etree.tostring(gateway.encoder.element(report)).decode()
    assert "InstgAgt" not in text and "<InstdAgt>" in text and "DbtrAgt" not in text


def test_cancellation_resolution_is_valid_under_the_official_schema(gateway: Gateway) -> None:
    from gateway.commands.outbound import CancellationOutcome, CancellationResolution

    resolution = CancellationResolution(
        message_id="G202611230001",
        assigner="999999999999",
        assignee="103100000026",
        created_at=NOW,
        confirmation="CNCL",
        original_message_id="B103100000026202611230024",
        original_message_type="pacs.003.001.08",
        group_status="ACCR",
        transactions=(
            CancellationOutcome(
                original_transaction_id="1031000000262026112300000902", status="ACCR"
            ),
        ),
    )
    element = gateway.encoder.element(resolution)
    assert official("camt.029.001.09").validate(etree.ElementTree(element)), official(
        "camt.029.001.09"
    ).error_log


def test_text_with_markup_characters_is_carried_exactly(gateway: Gateway) -> None:
    """Values are written as escaped text and parsed back: markup in a bank's reference or a
    reason text stays text, line breaks and carriage returns included."""
    awkward = "a < b & c > d \"quoted\" 'single'\r\nnext line]]>"
    reject = MessageReject(
        related_reference="R<&>1",
        reason_code="FF01",
        rejected_at=NOW,
        reason_text=awkward,
        error_location="/Message/Document[1]",
    )
    element = gateway.encoder.message_element(header("admi.002.001.01", "G1"), reject)
    namespace = "urn:iso:std:iso:20022:tech:xsd:admi.002.001.01"
    assert element.findtext(f".//{{{namespace}}}AddtlData") is None
    assert element.findtext(f".//{{{namespace}}}RsnDesc") == awkward
    assert element.findtext(f".//{{{namespace}}}RltdRef/{{{namespace}}}Ref") == "R<&>1"
    again = etree.fromstring(etree.tostring(element))
    assert again.findtext(f".//{{{namespace}}}RsnDesc") == awkward


def test_an_identifier_outside_the_restricted_fin_x_set_is_a_defect(gateway: Gateway) -> None:
    """Identifiers are restricted to the FIN-X characters (xsd/README.md): one of the gateway's
    own with markup is refused before it is sent, naming the facet."""
    reject = MessageReject(
        related_reference="R1", reason_code="FF01", rejected_at=NOW, reason_text="refused"
    )
    with pytest.raises(EncodingError, match=r"'BizMsgIdr': \[facet 'pattern'\] The value 'G<1>&'"):
        gateway.encoder.message_element(header("admi.002.001.01", "G<1>&"), reject)


def test_a_value_xml_cannot_carry_is_a_defect_not_a_broken_document(gateway: Gateway) -> None:
    reject = MessageReject(
        related_reference="R1", reason_code="FF01", rejected_at=NOW, reason_text="bell \x07"
    )
    with pytest.raises(EncodingError, match="cannot be written as XML"):
        gateway.encoder.element(reject)


def _variants() -> list[BaseModel]:
    """Documents of one type whose shapes differ (optional parts, list lengths) or agree."""
    one = ReportedTransaction(
        original_transaction_id="T1", status="ACSP", amount=100, currency="CNY"
    )
    two = ReportedTransaction(
        original_transaction_id="T2", status="RJCT", reason_code="AM04", reason_text="cap & <more>"
    )
    return [
        *DOCUMENTS,
        StatusReport(message_id="R1", created_at=NOW, transactions=(one,)),
        StatusReport(message_id="R2", created_at=NOW, instructing_agent="102100099996"),
        StatusReport(message_id="R3", created_at=NOW, transactions=(one, two)),
        StatusReport(message_id="R4", created_at=NOW, transactions=(two, one)),
        StatusReport(message_id="R5&", created_at=NOW, transactions=(one,)),  # R1's shape
        header("pacs.002.001.10", "G1"),
        header("admi.007.001.01", "G2&<"),
    ]


def test_templates_write_exactly_what_laying_out_writes(gateway: Gateway) -> None:
    """A document filled into its shape's template is byte for byte the document laid out
    element by element, for every shape, first use and reuse alike."""
    settings = gateway.settings.encoding
    with_templates = DocumentEncoder(gateway.codecs, gateway.schemas, settings)
    without = DocumentEncoder(
        gateway.codecs, gateway.schemas, settings.model_copy(update={"template_entries": 0})
    )
    for _ in range(2):
        for document in _variants():
            expected = etree.tostring(without._build(document))
            assert etree.tostring(with_templates._build(document)) == expected
    assert 0 < len(with_templates._templates) < len(_variants())
    assert without._templates == {}


def test_template_bounds_are_kept(gateway: Gateway) -> None:
    settings = gateway.settings.encoding.model_copy(
        update={"template_entries": 2, "template_max_values": 12}
    )
    encoder = DocumentEncoder(gateway.codecs, gateway.schemas, settings)
    for document in _variants():
        encoder._build(document)
    assert len(encoder._templates) == 2
    long_report = StatusReport(
        message_id="R9",
        created_at=NOW,
        transactions=tuple(
            ReportedTransaction(original_transaction_id=f"T{index}", status="ACSP")
            for index in range(20)
        ),
    )
    small = DocumentEncoder(gateway.codecs, gateway.schemas, settings)
    text = etree.tostring(small._build(long_report))
    assert text.count(b"<OrgnlTxId>") == 20
    # No template of the long report's own: one of its entries' shape (all twenty share it).
    (shape,) = small._templates
    assert shape[0] == "entry" and str(shape[1]).endswith("}TxInfAndSts")
    # Within the bound: a full store writes entries without keeping their templates.
    full = DocumentEncoder(gateway.codecs, gateway.schemas, settings)
    for document in _variants():
        full._build(document)
    assert etree.tostring(full._build(long_report)) == text and len(full._templates) == 2


def test_entries_of_a_long_document_write_exactly_what_laying_out_writes(
    gateway: Gateway,
) -> None:
    """A long document (more values than template_max_values) has each list entry filled into
    its shape's template, nested lists too: byte for byte the document laid out element by
    element, entries of several shapes mixed, first use and reuse alike."""
    settings = gateway.settings.encoding.model_copy(update={"template_max_values": 4})
    entries = DocumentEncoder(gateway.codecs, gateway.schemas, settings)
    without = DocumentEncoder(
        gateway.codecs, gateway.schemas, settings.model_copy(update={"template_entries": 0})
    )
    shapes = [
        ReportedTransaction(original_transaction_id="T1", status="ACSP", amount=1, currency="CNY"),
        ReportedTransaction(
            original_transaction_id="T2", status="RJCT", reason_code="AM04", reason_text="a&<b>"
        ),
        ReportedTransaction(
            original_transaction_id="T3",
            status="ACSP",
            clearing_reference="20261123-S01",
            settlement_date=date(2026, 11, 23),
        ),
    ]
    mixed = StatusReport(
        message_id="R10",
        created_at=NOW,
        original_message_id="B1",
        original_message_type="pacs.008.001.08",
        transactions=tuple(shapes[index % 3] for index in range(30)),
    )
    notification = DOCUMENTS[-1]
    assert isinstance(notification, SessionNotification)
    nested = notification.model_copy(update={"notifications": notification.notifications * 3})
    for _ in range(2):
        for document in [*_variants(), mixed, nested]:
            expected = etree.tostring(without._build(document))
            assert etree.tostring(entries._build(document)) == expected
    kept = [shape for shape in entries._templates if shape[0] == "entry"]
    assert len(kept) >= 4  # three transaction shapes and the notification's
