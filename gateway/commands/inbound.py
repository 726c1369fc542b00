"""Commands decoded from inbound messages by the codecs (one header plus its items).

Money is integer minor units; bank codes are 12-digit CNAPS codes. A package message yields
one header command (``Submit…Package``) and a stream of item commands, so a package of a
million transactions never has to sit in memory at once.
"""

from __future__ import annotations

from datetime import date, datetime
from types import MappingProxyType

from pydantic import BaseModel, ConfigDict


class Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BusinessHeader(Command):
    """head.001 business application header."""

    sender: str
    receiver: str
    business_message_id: str
    message_definition: str
    created_at: datetime
    possible_duplicate: bool | None = None
    related_message_id: str | None = None


class PackageHeader(Command):
    """Group header of a package (one ISO message = one package)."""

    message_id: str
    created_at: datetime
    number_of_transactions: int
    control_sum: int | None = None
    settlement_date: date | None = None
    business_type: str | None = None
    reply_deadline: str | None = None
    instructing_agent: str
    instructed_agent: str


class SubmitCreditPackage(PackageHeader):
    """pacs.008: credits A100 / E100 / C100."""


class SubmitDebitPackage(PackageHeader):
    """pacs.003: debits B100 / B308 / F100 / D100."""


class CreditTransaction(Command):
    instruction_id: str | None = None
    end_to_end_id: str
    transaction_id: str
    business_type: str | None = None
    reply_deadline: str | None = None
    amount: int
    currency: str
    debtor_name: str
    debtor_account: str
    debtor_agent: str
    creditor_agent: str
    creditor_name: str
    creditor_account: str
    business_kind: str | None = None
    remittance_information: str | None = None


class DebitTransaction(Command):
    instruction_id: str | None = None
    end_to_end_id: str
    transaction_id: str
    business_type: str | None = None
    reply_deadline: str | None = None
    amount: int
    currency: str
    mandate_id: str | None = None
    creditor_name: str
    creditor_account: str
    creditor_agent: str
    debtor_name: str
    debtor_account: str
    debtor_agent: str
    business_kind: str | None = None
    remittance_information: str | None = None
    cheque_number: str | None = None
    cheque_issue_date: date | None = None
    cheque_drawer_account: str | None = None
    cheque_drawer_name: str | None = None
    cheque_amount: int | None = None
    cheque_currency: str | None = None
    cheque_front_image: bytes | None = None
    cheque_front_image_sha256: str | None = None
    cheque_back_image: bytes | None = None
    cheque_back_image_sha256: str | None = None


class SubmitStatusReport(Command):
    """pacs.002 from a bank: receipt for real-time items and debit packages."""

    message_id: str
    created_at: datetime
    instructing_agent: str | None = None
    instructed_agent: str | None = None
    original_message_id: str | None = None
    original_message_type: str | None = None
    original_number_of_transactions: int | None = None
    group_status: str | None = None
    group_reason_code: str | None = None
    group_reason_text: str | None = None


class TransactionStatus(Command):
    status_id: str | None = None
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
    debtor_name: str | None = None
    debtor_account: str | None = None
    debtor_agent: str | None = None
    creditor_agent: str | None = None
    creditor_name: str | None = None
    creditor_account: str | None = None


class SubmitReturnPackage(Command):
    """pacs.004: return of netted credits or netted debit receipts."""

    message_id: str
    created_at: datetime
    number_of_transactions: int
    control_sum: int
    settlement_date: date | None = None
    instructing_agent: str
    instructed_agent: str
    original_message_id: str | None = None
    original_message_type: str | None = None


class ReturnedTransaction(Command):
    return_id: str
    original_message_id: str | None = None
    original_message_type: str | None = None
    original_instruction_id: str | None = None
    original_end_to_end_id: str | None = None
    original_transaction_id: str
    amount: int
    currency: str
    reason_code: str | None = None
    reason_text: str | None = None


class SubmitReversal(Command):
    """pacs.007: reversal of a real-time item that got no result in time."""

    message_id: str
    created_at: datetime
    number_of_transactions: int
    control_sum: int | None = None
    group_reversal: bool | None = None
    instructing_agent: str
    instructed_agent: str
    original_message_id: str
    original_message_type: str


class ReversedTransaction(Command):
    reversal_id: str
    original_instruction_id: str | None = None
    original_end_to_end_id: str | None = None
    original_transaction_id: str
    amount: int
    currency: str
    reason_code: str
    reason_text: str | None = None


class RequestCancellation(Command):
    """camt.056: cancellation (payer's bank, whole package) or stop payment (payee's bank)."""

    message_id: str
    instructing_agent: str
    instructed_agent: str
    created_at: datetime
    case_id: str | None = None
    number_of_transactions: int | None = None
    control_sum: int | None = None
    original_message_id: str
    original_message_type: str
    group_cancellation: bool | None = None
    reason_code: str | None = None
    reason_text: str | None = None


class CancellationItem(Command):
    cancellation_id: str | None = None
    original_instruction_id: str | None = None
    original_end_to_end_id: str | None = None
    original_transaction_id: str
    amount: int
    currency: str
    reason_code: str | None = None
    reason_text: str | None = None


class ResolveCancellation(Command):
    """camt.029: the answer to a camt.056."""

    message_id: str
    instructing_agent: str
    instructed_agent: str
    created_at: datetime
    resolved_case_id: str | None = None
    case_creator: str | None = None
    """The bank that opened the case (sent the camt.056): where a bank's answer goes on to."""
    confirmation: str
    original_message_id: str | None = None
    original_message_type: str | None = None
    group_status: str | None = None
    reason_code: str | None = None
    reason_text: str | None = None


class CancellationItemStatus(Command):
    cancellation_status_id: str | None = None
    original_instruction_id: str | None = None
    original_end_to_end_id: str | None = None
    original_transaction_id: str
    status: str
    reason_code: str | None = None
    reason_text: str | None = None


class TransferInvoices(Command):
    """remt.001: invoice transfer (remittance advice linked to a payment)."""

    message_id: str
    created_at: datetime
    initiating_party: str


class Invoice(Command):
    """One remittance (``RmtInf``): the invoice it carries and the payment it is linked to.

    A remittance may carry several invoices (``Strd`` 1..n); the invoice fields are those of
    the first one.
    """

    remittance_id: str
    remittance_text: str | None = None
    invoice_type: str
    invoice_number: str
    invoice_date: date
    amount: int
    currency: str
    remitted_amount: int | None = None
    remitted_currency: str | None = None
    related_end_to_end_id: str
    related_transaction_id: str
    payment_amount: int | None = None
    payment_currency: str | None = None
    payer_name: str
    payer_account: str | None = None
    payer_agent: str
    payee_name: str
    payee_account: str | None = None
    payee_agent: str | None = None


INBOUND_MODELS: MappingProxyType[str, type[Command]] = MappingProxyType(
    {
        model.__name__: model
        for model in (
            BusinessHeader,
            SubmitCreditPackage,
            SubmitDebitPackage,
            CreditTransaction,
            DebitTransaction,
            SubmitStatusReport,
            TransactionStatus,
            SubmitReturnPackage,
            ReturnedTransaction,
            SubmitReversal,
            ReversedTransaction,
            RequestCancellation,
            CancellationItem,
            ResolveCancellation,
            CancellationItemStatus,
            TransferInvoices,
            Invoice,
        )
    }
)
