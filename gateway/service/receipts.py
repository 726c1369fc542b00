"""From the core's item events to pacs.002 receipts, and who receives them.

Status mapping (DESIGN §3): netted → ACSP (with the netting session in ClrSysRef and the
business date in IntrBkSttlmDt), queued for netting → PDNG, rejected or expired → RJCT with the
reason, cancelled / stopped / reversed → CANC. The initiating bank gets every receipt; for
real-time items the receiving bank gets the result too, since it answered.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from gateway.clearing.core import ClearingCore
from gateway.clearing.events import Event, ItemChanged
from gateway.commands.outbound import ReportedTransaction, StatusReport

RECEIPT = "pacs.002.001.10"

STATUS = {
    "netted": "ACSP",
    "queued": "PDNG",
    "rejected": "RJCT",
    "expired": "RJCT",
    "cancelled": "CANC",
    "stopped": "CANC",
    "reversed": "CANC",
}


@dataclass(frozen=True)
class Receipt:
    recipient: str
    report: StatusReport


def receipts(
    events: Iterable[Event],
    core: ClearingCore,
    now: datetime,
    new_message_id: Callable[[], str],
) -> list[Receipt]:
    by_package: dict[str, list[ReportedTransaction]] = defaultdict(list)
    for event in events:
        if not isinstance(event, ItemChanged) or event.state not in STATUS:
            continue
        item = core.items[event.item_id]
        by_package[item.package_id].append(
            ReportedTransaction(
                original_transaction_id=item.transaction_id,
                status=STATUS[event.state],
                reason_code=event.reason_code,
                clearing_reference=event.session_id,
                amount=item.amount,
                currency="CNY",
                settlement_date=item.business_date if event.session_id else None,
            )
        )
    result = []
    for key, transactions in by_package.items():
        package = core.packages.get(key)
        if package is None:
            continue  # a return: its own package id; the returning bank learns from its answer
        message_id = key.split(":", 1)[1]
        recipients = [package.sender] + ([package.receiver] if package.real_time else [])
        for recipient in recipients:
            result.append(
                Receipt(
                    recipient,
                    StatusReport(
                        message_id=new_message_id(),
                        created_at=now,
                        original_message_id=message_id,
                        original_message_type=(
                            "pacs.003.001.08" if package.debit else "pacs.008.001.08"
                        ),
                        transactions=tuple(transactions),
                    ),
                )
            )
    return result
