"""Retirement: the clearing core forgets business that finished long enough ago.

Rules version 3 retires a day's business all at once, at the first command after the end of
day that decided it (``retire``); rules version 4 a bounded part of it at each tick of the
clock, so that no payment waits for a whole day's retirement (``retire_some``).

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
from collections.abc import Iterable, Iterator
from datetime import date
from itertools import islice
from typing import TYPE_CHECKING

from gateway.clearing.events import BusinessRetired
from gateway.clearing.items import ENDED, PaymentItem

if TYPE_CHECKING:
    from gateway.clearing.core import ClearingCore


def retire(core: ClearingCore, through: date) -> BusinessRetired:
    """Forget the finished business of business days up to ``through`` (already reported);
    what was forgotten, the items as they ended."""
    sessions = _retirable_sessions(core, through)
    groups: dict[str, list[str]] = defaultdict(list)
    kept: set[str] = set()
    for item_id, item in core.items.items():
        groups[item.package_id].append(item_id)
        if not _retirable(core, item, through, sessions):
            kept.add(item.package_id)
    packages = [key for key in groups if key not in kept]
    items: list[PaymentItem] = []
    for key in packages:
        for item_id in groups[key]:
            items.append(core.items.pop(item_id))
        _forget_package(core, key)
    for return_id in [key for key, day in core.returns.items() if day <= through]:
        del core.returns[return_id]
    for key in sessions:
        del core.sessions[key]
    _forget_deadlines(core)
    forgotten = [key for key, day in core.seen.items() if day <= through]
    for key in forgotten:
        del core.seen[key]
    core.reported_days = [day for day in core.reported_days if day > through]
    core.retired_through = through
    return BusinessRetired(
        through, tuple(items), len(packages), len(sessions), len(forgotten), complete=True
    )


def _retirable_sessions(core: ClearingCore, through: date) -> set[str]:
    return {
        key
        for key, session in core.sessions.items()
        if session.business_date <= through
        and session.business_date not in core.eod_pending
        and session.closed
        and session.settlement_date is not None
        and not session.unsettled
    }


def _retirable(core: ClearingCore, item: PaymentItem, through: date, sessions: set[str]) -> bool:
    """Whether nothing can change ``item`` any more: it ended, on a business day up to
    ``through`` whose end of day was reported, and its session (if the core still has it) is
    one of ``sessions``, those that may be retired."""
    return (
        item.state in ENDED
        and item.business_date <= through
        and item.business_date not in core.eod_pending
        and (item.session_id not in core.sessions or item.session_id in sessions)
    )


def _forget_package(core: ClearingCore, key: str) -> None:
    """Forget a package (or return) whose items are retired, and its receipts."""
    package = core.packages.pop(key, None)
    if package is not None:
        message_id = key.rpartition(":")[2]
        listed = core.packages_by_message.get(message_id, [])
        if key in listed:
            listed.remove(key)
        if not listed:
            core.packages_by_message.pop(message_id, None)
    for receipt_id in core.receipts_by_package.pop(key, []):
        core.receipts.pop(receipt_id, None)


def _forget_deadlines(core: ClearingCore) -> None:
    """Drop the deadlines of retired items (entries of items that moved on stay in the heap
    until they come up; the core looks those items up)."""
    if any(item_id not in core.items for _, item_id in core.deadlines):
        core.deadlines = [entry for entry in core.deadlines if entry[1] in core.items]
        heapq.heapify(core.deadlines)


def _groups(items: Iterable[PaymentItem]) -> Iterator[list[PaymentItem]]:
    """The items of each package (or return) together: the core adds a package's items one
    after the other, and in the order of their business dates."""
    group: list[PaymentItem] = []
    for item in items:
        if group and item.package_id != group[0].package_id:
            yield group
            group = []
        group.append(item)
    if group:
        yield group


def _oldest(entries: dict[str, date], through: date, limit: int) -> tuple[list[str], bool]:
    """The first keys of ``entries`` (added in the order of their dates) dated up to
    ``through``, at most ``limit``; and whether that is all of them."""
    keys: list[str] = []
    for key, day in islice(entries.items(), limit + 1):
        if day > through:
            return keys, True
        if len(keys) == limit:
            return keys, False
        keys.append(key)
    return keys, True


def retire_some(core: ClearingCore, through: date, budget: int) -> BusinessRetired | None:
    """Forget part of the finished business of business days up to ``through``: whole
    packages (and returns) of the oldest finished items, until ``budget`` items are forgotten
    (a package is never split: a larger one goes whole), then the command ids and returns of
    those days, ``budget`` at a time, then their settled sessions. Each call goes on where the
    last stopped; ``complete`` in the event says whether this one finished. None: nothing to
    forget (what is left can still change)."""
    sessions = _retirable_sessions(core, through)
    chosen: list[list[PaymentItem]] = []
    forgotten = 0
    items_done = True
    for group in _groups(core.items.values()):
        if group[0].business_date > through:
            break
        if forgotten >= budget:
            items_done = False
            break
        if all(_retirable(core, item, through, sessions) for item in group):
            chosen.append(group)
            forgotten += len(group)
    items: list[PaymentItem] = []
    for group in chosen:
        for item in group:
            items.append(core.items.pop(item.item_id))
        _forget_package(core, group[0].package_id)
    _forget_deadlines(core)
    left = max(budget - forgotten, 0)
    command_ids, ids_done = _oldest(core.seen, through, left)
    for key in command_ids:
        del core.seen[key]
    returns, returns_done = _oldest(core.returns, through, left - len(command_ids))
    for key in returns:
        del core.returns[key]
    complete = items_done and ids_done and returns_done
    for key in sessions if complete else ():
        del core.sessions[key]
    if not (items or command_ids or returns or complete):
        return None
    # From the first part on: a reference to what it retired is refused as retired.
    core.retired_through = through
    if complete:
        core.reported_days = [day for day in core.reported_days if day > through]
    return BusinessRetired(
        through,
        tuple(items),
        len(chosen),
        len(sessions) if complete else 0,
        len(command_ids),
        complete,
    )
