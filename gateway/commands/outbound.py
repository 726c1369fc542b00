"""Documents the gateway emits, encoded by the outbound codecs and validated before they leave.

Money is integer minor units; the codec turns it into decimal text at the edge.
"""

from __future__ import annotations

from datetime import date, datetime
from types import MappingProxyType

from pydantic import BaseModel, ConfigDict, Field


class Document(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MessageReject(Document):
    """admi.002: a message was rejected (unparseable, schema, rules, signature, duplicate)."""

    related_reference: str
    reason_code: str = Field(pattern=r"^[A-Z0-9]{4}$")
    rejected_at: datetime
    error_location: str | None = None
    reason_text: str
    additional_data: str | None = None


class AcknowledgedMessage(Document):
    reference: str
    message_name: str
    status: str = "ACTC"
    description: str | None = None


class ReceiptAcknowledgement(Document):
    """admi.007: messages accepted for processing."""

    message_id: str
    created_at: datetime
    reports: tuple[AcknowledgedMessage, ...] = Field(min_length=1)


class SystemEvent(Document):
    """admi.004: day switch, session open/close, settlement, stop/start."""

    event_code: str
    parameters: tuple[str, ...] = ()
    description: str | None = None
    event_time: datetime


class ReportedTransaction(Document):
    original_instruction_id: str | None = None
    original_end_to_end_id: str | None = None
    original_transaction_id: str
    status: str
    reason_code: str | None = None
    reason_text: str | None = None
    acceptance_time: datetime | None = None
    clearing_reference: str | None = None
    amount: int | None = None
    currency: str | None = None
    settlement_date: date | None = None


class StatusReport(Document):
    """pacs.002 from the gateway: receipts with netting date and session."""

    message_id: str
    created_at: datetime
    instructing_agent: str | None = None
    instructed_agent: str | None = None
    original_message_id: str
    original_message_type: str
    original_number_of_transactions: int | None = None
    group_status: str | None = None
    group_reason_code: str | None = None
    group_reason_text: str | None = None
    transactions: tuple[ReportedTransaction, ...] = ()


class EntryDetail(Document):
    message_id: str
    end_to_end_id: str | None = None
    transaction_id: str
    amount: int
    currency: str
    direction: str = Field(pattern="^(CRDT|DBIT)$")
    debtor_agent: str
    creditor_agent: str
    information: str | None = None


class Entry(Document):
    amount: int
    currency: str
    direction: str = Field(pattern="^(CRDT|DBIT)$")
    status: str = Field(pattern="^(BOOK|PDNG)$")
    booking_date: date | None = None
    value_date: date
    transaction_code: str
    details: tuple[EntryDetail, ...] = ()
    information: str | None = None


class Notification(Document):
    notification_id: str
    created_at: datetime
    account: str
    account_name: str | None = None
    entries: tuple[Entry, ...] = ()


class SessionNotification(Document):
    """camt.054: netting and settlement results of a session for one clearing bank."""

    message_id: str
    created_at: datetime
    notifications: tuple[Notification, ...] = Field(min_length=1)


class Balance(Document):
    code: str = Field(pattern="^(OPBD|CLBD|CLAV)$")
    amount: int
    currency: str
    direction: str = Field(pattern="^(CRDT|DBIT)$")
    on: date


class Statement(Document):
    statement_id: str
    sequence_number: int | None = None
    created_at: datetime
    account: str
    account_name: str | None = None
    balances: tuple[Balance, ...] = Field(min_length=1)
    entries: tuple[Entry, ...] = ()


class EndOfDayStatement(Document):
    """camt.053: end-of-day statement per participant, for reconciliation."""

    message_id: str
    created_at: datetime
    statements: tuple[Statement, ...] = Field(min_length=1)


OUTBOUND_MODELS: MappingProxyType[str, type[BaseModel]] = MappingProxyType(
    {
        model.__name__: model
        for model in (
            MessageReject,
            ReceiptAcknowledgement,
            SystemEvent,
            StatusReport,
            SessionNotification,
            EndOfDayStatement,
        )
    }
)
