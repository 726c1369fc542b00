"""Commands of the clearing core. Each carries its id (for idempotency) and the instant it
was issued, stamped by the service from its clock: the core never reads a clock, so replaying
the same commands always gives the same state."""

from __future__ import annotations

from datetime import time
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

BANK_CODE = r"^[0-9]{12}$"
ReasonCode = Annotated[str, Field(min_length=1, max_length=4)]
"""An ISO external reason code as the schemas allow it (1 to 4 characters)."""


class _Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    command_id: str = Field(min_length=1, max_length=140)
    at: AwareDatetime


class PackageItem(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    transaction_id: str = Field(min_length=1, max_length=35)
    debtor_agent: str = Field(pattern=BANK_CODE)
    creditor_agent: str = Field(pattern=BANK_CODE)
    amount: int = Field(gt=0)


class SubmitPackage(_Command):
    """A validated pacs.008 or pacs.003 package (one ISO message = one package)."""

    kind: Literal["submit-package"] = "submit-package"
    package_id: str = Field(min_length=1)
    sender: str = Field(pattern=BANK_CODE)
    receiver: str = Field(pattern=BANK_CODE)
    business_type: str = Field(pattern=r"^[A-Z][0-9]{3}$")
    reply_deadline_days: int | None = Field(default=None, ge=0, le=30)
    items: tuple[PackageItem, ...] = Field(min_length=1)


class ItemAnswer(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    transaction_id: str
    accepted: bool
    reason_code: str | None = None


class RecordReceipt(_Command):
    """A pacs.002 from the bank that had to answer (payer's bank for debits, payee's bank
    for real-time credits)."""

    kind: Literal["record-receipt"] = "record-receipt"
    receipt_id: str = Field(min_length=1)
    sender: str = Field(pattern=BANK_CODE)
    package_id: str
    answers: tuple[ItemAnswer, ...] = Field(min_length=1)


class RecordMessageReject(_Command):
    """A bank could not process a package the centre forwarded to it (its admi.002). A
    real-time package it was to answer is rejected at once, instead of at the deadline; a
    batch package waits for the bank's receipt as before (the bank may still send one)."""

    kind: Literal["record-message-reject"] = "record-message-reject"
    sender: str = Field(pattern=BANK_CODE)
    package_id: str
    reason_code: str = Field(pattern=r"^[A-Z0-9]{4}$")
    """The bank's own reason (kept in the log; the items are rejected with AB10)."""


class RecordMessage(_Command):
    """A message that clears nothing: it only travels (an invoice, an answer to a cancellation
    request, a bank's reject of something the centre did not forward to it). It changes
    nothing in the core, but its id counts as seen like any command's, so the same sender
    and id with other content is refused (DU01) in every process and after a restart."""

    kind: Literal["record-message"] = "record-message"
    sender: str = Field(pattern=BANK_CODE)
    message: str = Field(min_length=1, max_length=35)
    """Its message definition (MsgDefIdr), for whoever reads the log."""


class CancelPackage(_Command):
    """camt.056 cancellation: the payer's clearing bank, a whole package not yet netted
    (a non-real-time credit package, or a receipt package of debits)."""

    kind: Literal["cancel-package"] = "cancel-package"
    requester: str = Field(pattern=BANK_CODE)
    package_id: str
    reason_code: ReasonCode | None = None
    """The request's reason (CxlRsnInf), given in the CANC receipts."""


class StopPayment(_Command):
    """camt.056 stop: the payee's clearing bank, debits it sent, before the receipt;
    the whole package when ``transaction_ids`` is empty."""

    kind: Literal["stop-payment"] = "stop-payment"
    requester: str = Field(pattern=BANK_CODE)
    package_id: str
    transaction_ids: tuple[str, ...] = ()
    reason_code: ReasonCode | None = None
    """The request's reason, for the stopped items that give none of their own."""
    item_reason_codes: dict[str, ReasonCode] = Field(default_factory=dict)
    """Transaction id → the reason given with that item (TxInf/CxlRsnInf)."""

    def reason_for(self, transaction_id: str) -> str | None:
        return self.item_reason_codes.get(transaction_id, self.reason_code)


class ReversePayment(_Command):
    """pacs.007: the initiator of a real-time item that got no result in time."""

    kind: Literal["reverse-payment"] = "reverse-payment"
    requester: str = Field(pattern=BANK_CODE)
    package_id: str
    transaction_id: str
    reason_code: ReasonCode | None = None
    """The reversal's reason (RvslRsnInf), given in the CANC receipts."""


class ReturnedItem(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    package_id: str
    transaction_id: str


class ReturnPayment(_Command):
    """pacs.004: the payee's clearing bank returns netted items; each return is netted as a
    new item in the reverse direction."""

    kind: Literal["return-payment"] = "return-payment"
    requester: str = Field(pattern=BANK_CODE)
    return_id: str = Field(min_length=1)
    items: tuple[ReturnedItem, ...] = Field(min_length=1)


class AdvanceClock(_Command):
    """Time passes: deadlines expire, scheduled sessions close, the day switches."""

    kind: Literal["advance-clock"] = "advance-clock"


class CloseSession(_Command):
    kind: Literal["close-session"] = "close-session"


class SwitchDay(_Command):
    kind: Literal["switch-day"] = "switch-day"


class SetSchedule(_Command):
    kind: Literal["set-schedule"] = "set-schedule"
    times: tuple[time, ...]


class SetCap(_Command):
    kind: Literal["set-cap"] = "set-cap"
    participant: str = Field(pattern=BANK_CODE)
    collateral: int | None = Field(default=None, ge=0)
    credit_line: int | None = Field(default=None, ge=0)
    ring_fenced: int | None = Field(default=None, ge=0)


class CreditSettlementAccount(_Command):
    """Funds arrive on a settlement account (from the settlement system)."""

    kind: Literal["credit-settlement-account"] = "credit-settlement-account"
    participant: str = Field(pattern=BANK_CODE)
    amount: int = Field(gt=0)


ClearingCommand = Annotated[
    SubmitPackage
    | RecordReceipt
    | RecordMessageReject
    | RecordMessage
    | CancelPackage
    | StopPayment
    | ReversePayment
    | ReturnPayment
    | AdvanceClock
    | CloseSession
    | SwitchDay
    | SetSchedule
    | SetCap
    | CreditSettlementAccount,
    Field(discriminator="kind"),
]
