"""Documents the gateway emits, encoded by the outbound codecs and validated before they leave.

Money is integer minor units; the codec turns it into decimal text at the edge.
"""

from __future__ import annotations

from datetime import date, datetime
from types import MappingProxyType

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.commands.inbound import TransactionStatus


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


class ReportedTransaction(TransactionStatus):
    """A transaction's status as the gateway reports it: the fields a bank's own pacs.002
    carries (``TransactionStatus``), checked before they are written."""

    status: str = Field(pattern="^(ACTC|ACCP|ACSP|ACSC|PDNG|RCVD|RJCT|CANC)$")

    @model_validator(mode="after")
    def _complete_groups(self) -> ReportedTransaction:
        if self.reason_text is not None and self.reason_code is None:
            raise ValueError("reason_text needs reason_code (StsRsnInf/Rsn is mandatory)")
        if (self.amount is None) != (self.currency is None):
            raise ValueError("amount and currency go together (IntrBkSttlmAmt and its Ccy)")
        return self


class StatusReport(Document):
    """pacs.002 from the gateway: receipts with netting date and session."""

    message_id: str
    created_at: datetime
    instructing_agent: str | None = None
    instructed_agent: str | None = None
    original_message_id: str | None = None
    original_message_type: str | None = None
    original_number_of_transactions: int | None = None
    group_status: str | None = Field(
        default=None, pattern="^(ACTC|ACCP|ACSP|ACSC|PART|PDNG|RCVD|RJCT)$"
    )
    group_reason_code: str | None = None
    group_reason_text: str | None = None
    transactions: tuple[ReportedTransaction, ...] = ()

    @model_validator(mode="after")
    def _complete_groups(self) -> StatusReport:
        """OrgnlGrpInfAndSts is optional, but when present it needs OrgnlMsgId and
        OrgnlMsgNmId; a reason needs its code."""
        original = (self.original_message_id, self.original_message_type)
        if (original[0] is None) != (original[1] is None):
            raise ValueError("original_message_id and original_message_type go together")
        group = (
            self.original_number_of_transactions,
            self.group_status,
            self.group_reason_code,
            self.group_reason_text,
        )
        if original[0] is None and any(value is not None for value in group):
            raise ValueError("the original group's status needs original_message_id/_type")
        if self.group_reason_text is not None and self.group_reason_code is None:
            raise ValueError("group_reason_text needs group_reason_code")
        return self


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
    value_date: date | None = None
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
    """One account statement (``Stmt``); its transactions summary (``TxsSummry``) is
    computed from ``entries``, so it always agrees with them."""

    statement_id: str
    sequence_number: int | None = Field(default=None, ge=1)
    created_at: datetime
    period_from: datetime | None = None
    period_to: datetime | None = None
    account: str
    account_name: str | None = None
    balances: tuple[Balance, ...] = Field(min_length=1)
    entries: tuple[Entry, ...] = ()

    @model_validator(mode="after")
    def _complete_period(self) -> Statement:
        if (self.period_from is None) != (self.period_to is None):
            raise ValueError("period_from and period_to go together (FrToDt)")
        if (
            self.period_from is not None
            and self.period_to is not None
            and self.period_from > self.period_to
        ):
            raise ValueError("period_from is after period_to")
        return self

    def _total(self, direction: str | None) -> int:
        return sum(
            entry.amount
            for entry in self.entries
            if direction is None or entry.direction == direction
        )

    @property
    def number_of_entries(self) -> int:
        return len(self.entries)

    @property
    def sum_of_entries(self) -> int:
        return self._total(None)

    @property
    def net_amount(self) -> int:
        return abs(self._total("CRDT") - self._total("DBIT"))

    @property
    def net_direction(self) -> str:
        return "CRDT" if self._total("CRDT") >= self._total("DBIT") else "DBIT"

    @property
    def number_of_credit_entries(self) -> int:
        return sum(1 for entry in self.entries if entry.direction == "CRDT")

    @property
    def sum_of_credit_entries(self) -> int:
        return self._total("CRDT")

    @property
    def number_of_debit_entries(self) -> int:
        return sum(1 for entry in self.entries if entry.direction == "DBIT")

    @property
    def sum_of_debit_entries(self) -> int:
        return self._total("DBIT")


class EndOfDayStatement(Document):
    """camt.053: end-of-day statement per participant, for reconciliation."""

    message_id: str
    created_at: datetime
    statements: tuple[Statement, ...] = Field(min_length=1)


class CancellationOutcome(Document):
    original_transaction_id: str
    status: str = Field(pattern="^(ACCR|RJCR|PDCR)$")
    reason_code: str | None = None


class CancellationResolution(Document):
    """camt.029 from the centre: the answer paired with a camt.056 (cancellation or stop)."""

    message_id: str
    assigner: str
    assignee: str
    created_at: datetime
    confirmation: str = Field(pattern="^(CNCL|RJCR|PDCR)$")
    original_message_id: str
    original_message_type: str
    group_status: str | None = Field(default=None, pattern="^(ACCR|RJCR|PACR|PDCR)$")
    reason_code: str | None = None
    reason_text: str | None = None
    transactions: tuple[CancellationOutcome, ...] = ()


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
            CancellationResolution,
        )
    }
)
