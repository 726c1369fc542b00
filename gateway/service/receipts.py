"""From the core's item events to pacs.002 receipts, and who receives them.

Status mapping (DESIGN §3): netted → ACSP (with the netting session in ClrSysRef and the
business date in IntrBkSttlmDt), queued for netting → PDNG with AM04 (the cap), rejected or
expired → RJCT with the reason, cancelled / stopped / reversed → CANC with the request's
reason (camt.056 CxlRsnInf, pacs.007 RvslRsnInf) when it gave one. The initiating bank
gets every receipt; for real-time items the receiving bank gets the result too, since it
answered. A return (pacs.004) is netted as new items of its own: the returning bank gets
their receipts, as the sender of a credit does.
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
RETURN = "pacs.004.001.09"

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
    returns: set[str] = set()
    for event in events:
        if not isinstance(event, ItemChanged) or event.state not in STATUS:
            continue
        item = core.items[event.item_id]
        if item.return_of is not None:
            returns.add(item.package_id)
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
        sender, _, message_id = key.partition(":")
        package = core.packages.get(key)
        if package is not None:
            recipients = [package.sender] + ([package.receiver] if package.real_time else [])
            original_type = "pacs.003.001.08" if package.debit else "pacs.008.001.08"
        elif key in returns:  # a return (pacs.004) is its own package: its sender is told
            recipients, original_type = [sender], RETURN
        else:
            continue
        for recipient in recipients:
            result.append(
                Receipt(
                    recipient,
                    StatusReport(
                        message_id=new_message_id(),
                        created_at=now,
                        original_message_id=message_id,
                        original_message_type=original_type,
                        transactions=tuple(transactions),
                    ),
                )
            )
    return result
