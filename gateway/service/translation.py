"""From decoded ISO messages to clearing commands.

| message | becomes |
|---|---|
| pacs.008, pacs.003 | ``SubmitPackage`` (id = sender:message id; T+N from LclInstrm) |
| pacs.002 from the answering bank | ``RecordReceipt`` (accepted = ACSP/ACCP/ACTC/ACSC) |
| camt.056 for a credit package or a receipt | ``CancelPackage`` (payer's bank, whole package) |
| camt.056 for a debit package | ``StopPayment`` (payee's bank; listed items or all) |
| pacs.007 | ``ReversePayment`` |
| pacs.004 | ``ReturnPayment`` |
| admi.002 from the bank a package went to | ``RecordMessageReject`` (real-time: rejected, AB10) |
| anything else (remt.001, ...) | no clearing command: forwarded only |

A message with no clearing command is logged as ``RecordMessage`` all the same (by the
gateway), which takes its id.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from gateway.clearing.commands import (
    CancelPackage,
    ItemAnswer,
    PackageItem,
    RecordMessageReject,
    RecordReceipt,
    ReturnedItem,
    ReturnPayment,
    ReversePayment,
    StopPayment,
    SubmitPackage,
)
from gateway.clearing.core import ClearingCore

ACCEPTED_STATUSES = frozenset({"ACSP", "ACCP", "ACTC", "ACSC"})
_DEADLINE = re.compile(r"T\+([0-9]{1,2})")


def package_id(sender: str, message_id: str) -> str:
    return f"{sender}:{message_id}"


def command_id(sender: str, message_id: str) -> str:
    return f"message:{sender}:{message_id}"


def _original_package(core: ClearingCore, message_id: str | None, counterpart: str) -> str:
    """The package a reply refers to: the one with that message id that involves
    ``counterpart`` (as sender or receiver), else the first one with that id."""
    if message_id is None:
        return ""
    matches = core.packages_by_message.get(message_id, [])
    for key in matches:
        package = core.packages[key]
        if counterpart in (package.sender, package.receiver):
            return key
    if message_id in core.receipts:
        return message_id
    receipt = package_id(counterpart, message_id)
    if receipt in core.receipts:
        return receipt
    return matches[0] if matches else package_id(counterpart, message_id)


def translate(
    message: str,
    header: BaseModel,
    items: Sequence[BaseModel],
    sender: str,
    core: ClearingCore,
    now: datetime,
    message_id: str,
) -> Any:
    """The clearing command for a decoded message, or None when it only travels.
    ``message_id`` is the business header's (an admi.002 document has none of its own)."""
    fields: Any = header
    if message == "admi.002.001.01":
        return _message_reject(fields, sender, core, now, message_id)
    identifier = command_id(sender, fields.message_id)
    if message in ("pacs.008.001.08", "pacs.003.001.08"):
        deadline = _DEADLINE.fullmatch(fields.reply_deadline or "")
        return SubmitPackage(
            command_id=identifier,
            at=now,
            package_id=package_id(fields.instructing_agent, fields.message_id),
            sender=fields.instructing_agent,
            receiver=fields.instructed_agent,
            business_type=fields.business_type,
            reply_deadline_days=int(deadline.group(1)) if deadline else None,
            items=tuple(
                PackageItem(
                    transaction_id=item.transaction_id,  # type: ignore[attr-defined]
                    debtor_agent=item.debtor_agent,  # type: ignore[attr-defined]
                    creditor_agent=item.creditor_agent,  # type: ignore[attr-defined]
                    amount=item.amount,  # type: ignore[attr-defined]
                )
                for item in items
            ),
        )
    if message == "pacs.002.001.10":
        return RecordReceipt(
            command_id=identifier,
            at=now,
            receipt_id=package_id(sender, fields.message_id),
            sender=sender,
            package_id=_original_package(core, fields.original_message_id, sender),
            answers=tuple(
                ItemAnswer(
                    transaction_id=item.original_transaction_id,  # type: ignore[attr-defined]
                    accepted=item.status in ACCEPTED_STATUSES,  # type: ignore[attr-defined]
                    reason_code=item.reason_code,  # type: ignore[attr-defined]
                )
                for item in items
            ),
        )
    if message == "camt.056.001.08":
        target = _original_package(core, fields.original_message_id, sender)
        package = core.packages.get(target)
        cancelled: Sequence[Any] = items
        item_reasons = {
            item.original_transaction_id: item.reason_code
            for item in cancelled
            if item.reason_code is not None
        }
        if package is not None and package.debit and not package.real_time:
            return StopPayment(
                command_id=identifier,
                at=now,
                requester=sender,
                package_id=target,
                transaction_ids=tuple(item.original_transaction_id for item in cancelled),
                reason_code=fields.reason_code,
                item_reason_codes=item_reasons,
            )
        # A package is cancelled whole: the group's reason, else the first item's.
        return CancelPackage(
            command_id=identifier,
            at=now,
            requester=sender,
            package_id=target,
            reason_code=fields.reason_code or next(iter(item_reasons.values()), None),
        )
    if message == "pacs.007.001.09":
        target = _original_package(core, fields.original_message_id, sender)
        first: Any = items[0]
        return ReversePayment(
            command_id=identifier,
            at=now,
            requester=sender,
            package_id=target,
            transaction_id=first.original_transaction_id,
            reason_code=first.reason_code,
        )
    if message == "pacs.004.001.09":
        return ReturnPayment(
            command_id=identifier,
            at=now,
            requester=sender,
            return_id=package_id(sender, fields.message_id),
            items=tuple(
                ReturnedItem(
                    package_id=_original_package(
                        core,
                        # per item (TxInf/OrgnlGrpInf) or for the whole return (OrgnlGrpInf)
                        getattr(item, "original_message_id", None)
                        or getattr(fields, "original_message_id", None),
                        sender,
                    ),
                    transaction_id=item.original_transaction_id,  # type: ignore[attr-defined]
                )
                for item in items
            ),
        )
    return None


def _message_reject(
    fields: Any, sender: str, core: ClearingCore, now: datetime, message_id: str
) -> RecordMessageReject | None:
    """A bank's admi.002 about a package forwarded to it; about anything else (a receipt, a
    notification) it changes nothing."""
    target = _original_package(core, fields.related_reference, sender)
    package = core.packages.get(target)
    if package is None or package.receiver != sender:
        return None
    return RecordMessageReject(
        command_id=command_id(sender, message_id),
        at=now,
        sender=sender,
        package_id=target,
        reason_code=fields.reason_code,
    )
