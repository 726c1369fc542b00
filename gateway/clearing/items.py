"""Payment items, packages and receipts, and the item life cycle as an explicit state machine."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from types import MappingProxyType


class ItemState(StrEnum):
    RECEIVED = "received"
    FORWARDED = "forwarded"
    AWAITING_RECEIPT = "awaiting-receipt"
    QUEUED = "queued"
    NETTED = "netted"
    SETTLED = "settled"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    STOPPED = "stopped"
    REVERSED = "reversed"
    RETURNED = "returned"
    EXPIRED = "expired"


S = ItemState
TRANSITIONS: MappingProxyType[ItemState, frozenset[ItemState]] = MappingProxyType(
    {
        S.RECEIVED: frozenset({S.FORWARDED, S.REJECTED}),
        S.FORWARDED: frozenset({S.NETTED, S.QUEUED, S.AWAITING_RECEIPT, S.REJECTED}),
        S.AWAITING_RECEIPT: frozenset(
            {S.NETTED, S.QUEUED, S.REJECTED, S.EXPIRED, S.REVERSED, S.STOPPED}
        ),
        S.QUEUED: frozenset({S.NETTED, S.CANCELLED}),
        S.NETTED: frozenset({S.SETTLED, S.RETURNED}),
        S.SETTLED: frozenset({S.RETURNED}),
        S.REJECTED: frozenset(),
        S.CANCELLED: frozenset(),
        S.STOPPED: frozenset(),
        S.REVERSED: frozenset(),
        S.RETURNED: frozenset(),
        S.EXPIRED: frozenset(),
    }
)
"""The only transitions allowed (DESIGN §2). A netted item is final: it may only settle, or
be returned by a new item in the reverse direction."""

ENDED: frozenset[ItemState] = frozenset(
    {S.SETTLED, S.REJECTED, S.CANCELLED, S.STOPPED, S.REVERSED, S.RETURNED, S.EXPIRED}
)
"""States an item ends in; only SETTLED may still move on (to RETURNED)."""


class IllegalTransitionError(Exception):
    """A defect: the core tried a transition the state machine forbids."""


def payment_item_id(package_id: str, transaction_id: str) -> str:
    """A payment item's id: its package's id and its transaction's (a return's items are in
    the return's own package)."""
    return f"{package_id}/{transaction_id}"


@dataclass(slots=True)
class PaymentItem:
    item_id: str
    package_id: str
    transaction_id: str
    business_type: str
    real_time: bool
    payer: str
    """Clearing bank whose net debit position the item raises (the debtor's side)."""
    payee: str
    amount: int
    business_date: date
    state: ItemState = S.RECEIVED
    session_id: str | None = None
    deadline: datetime | None = None
    reason_code: str | None = None
    returned_by: str | None = None
    return_of: str | None = None

    def move(self, target: ItemState) -> None:
        if target not in TRANSITIONS[self.state]:
            raise IllegalTransitionError(f"{self.item_id}: {self.state} -> {target}")
        self.state = target


@dataclass(slots=True)
class Package:
    package_id: str
    sender: str
    receiver: str
    business_type: str
    debit: bool
    real_time: bool
    item_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Receipt:
    """A receipt package from the paying bank: the unit a cancellation of debit receipts
    applies to."""

    receipt_id: str
    sender: str
    package_id: str
    item_ids: list[str] = field(default_factory=list)
