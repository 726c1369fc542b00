"""Retirement: the clearing core forgets business that finished long enough ago.

Without it the core would hold every item, package, session and command id since the ledger
started (five years of them), in memory and in every checkpoint, and each end of day would
scan them all. What is retired is only what no later command can change: business of days
whose end of day was reported at least ``retention.business_days`` business days ago, and
then only

* items in a final state, a package's (or a return's) items all together, with no item in a
  session that still has to settle;
* the packages and receipts of those items, and the returns;
* sessions that have settled;
* the ids of commands applied on those days.

The command log and the audit records keep all of it, and the items retired are reported
(``BusinessRetired``) so that the service can keep their final records where the operator's
queries find them. A later reference to retired business is refused (NOOR) as unknown, with a
text that says it may have been retired.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from datetime import date
from typing import TYPE_CHECKING

from gateway.clearing.events import BusinessRetired
from gateway.clearing.items import ENDED, PaymentItem

if TYPE_CHECKING:
    from gateway.clearing.core import ClearingCore


def retire(core: ClearingCore, through: date) -> BusinessRetired:
    """Forget the finished business of business days up to ``through`` (already reported);
    what was forgotten, the items as they ended."""
    unfinished = core.eod_pending
    sessions = {
        key
        for key, session in core.sessions.items()
        if session.business_date <= through
        and session.business_date not in unfinished
        and session.closed
        and session.settlement_date is not None
        and not session.unsettled
    }
    groups: dict[str, list[str]] = defaultdict(list)
    kept: set[str] = set()
    for item_id, item in core.items.items():
        groups[item.package_id].append(item_id)
        if (
            item.state not in ENDED
            or item.business_date > through
            or item.business_date in unfinished
            or (item.session_id in core.sessions and item.session_id not in sessions)
        ):
            kept.add(item.package_id)
    packages = [key for key in groups if key not in kept]
    items: list[PaymentItem] = []
    for key in packages:
        for item_id in groups[key]:
            items.append(core.items.pop(item_id))
        package = core.packages.pop(key, None)
        if package is not None:
            message_id = key.rpartition(":")[2]
            listed = core.packages_by_message.get(message_id, [])
            if key in listed:
                listed.remove(key)
            if not listed:
                core.packages_by_message.pop(message_id, None)
    retired_packages = set(packages)
    for receipt_id in [
        key for key, receipt in core.receipts.items() if receipt.package_id in retired_packages
    ]:
        del core.receipts[receipt_id]
    for return_id in [key for key, day in core.returns.items() if day <= through]:
        del core.returns[return_id]
    for key in sessions:
        del core.sessions[key]
    if any(item_id not in core.items for _, item_id in core.deadlines):
        core.deadlines = [entry for entry in core.deadlines if entry[1] in core.items]
        heapq.heapify(core.deadlines)
    forgotten = [key for key, day in core.seen.items() if day <= through]
    for key in forgotten:
        del core.seen[key]
    core.reported_days = [day for day in core.reported_days if day > through]
    core.retired_through = through
    return BusinessRetired(through, tuple(items), len(packages), len(sessions), len(forgotten))
