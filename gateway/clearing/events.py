"""Facts the core reports. The message gateway turns them into messages for the banks: item
events into pacs.002 receipts (``gateway.service.receipts``), session closes and settlements into
camt.054 and admi.004 ``SCLS``, the day switch into admi.004 ``DSWT``
and the settlement accounts' statements at the day switch into camt.053
(``gateway.service.notifications``); the end-of-day reconciliation stays an event (operators
read it with ``isogw core``).

Plain slotted dataclasses: one is built per netted item, so they must be cheap to make;
nothing changes them after they are made.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any, ClassVar

from gateway.clearing.items import PaymentItem


@dataclass(slots=True)
class Event:
    kind: ClassVar[str] = "event"

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}


@dataclass(slots=True)
class ItemChanged(Event):
    """An item moved to a new state (netted, queued, rejected, expired, ...)."""

    kind: ClassVar[str] = "item-changed"
    item_id: str
    state: str
    session_id: str | None = None
    reason_code: str | None = None


@dataclass(slots=True)
class CommandRefused(Event):
    kind: ClassVar[str] = "command-refused"
    code: str
    text: str


@dataclass(slots=True)
class WarningLevelChanged(Event):
    kind: ClassVar[str] = "warning-level-changed"
    participant: str
    level: str
    available: int
    cap: int


@dataclass(slots=True)
class SessionClosed(Event):
    kind: ClassVar[str] = "session-closed"
    session_id: str
    business_date: date
    items: int
    nets: dict[str, int]
    """Net per participant: positive = net credit, negative = net debit."""
    recomputed: bool
    """The incremental figures disagreed with the detail records and were recomputed."""
    settlement_date: date
    at: datetime
    """When the close fell due (not when a process caught up with it)."""


@dataclass(slots=True)
class NetSettled(Event):
    kind: ClassVar[str] = "net-settled"
    session_id: str
    participant: str
    amount: int
    """Positive credits the settlement account, negative debits it."""
    at: datetime


@dataclass(slots=True)
class SettlementQueued(Event):
    kind: ClassVar[str] = "settlement-queued"
    session_id: str
    participant: str
    amount: int
    shortfall: int


@dataclass(slots=True)
class DaySwitched(Event):
    kind: ClassVar[str] = "day-switched"
    previous_business_date: date
    business_date: date
    at: datetime
    """When the switch fell due."""


@dataclass(slots=True)
class ScheduleChanged(Event):
    kind: ClassVar[str] = "schedule-changed"
    times: tuple[str, ...]


@dataclass(slots=True)
class CapChanged(Event):
    kind: ClassVar[str] = "cap-changed"
    participant: str
    cap: int
    available: int


@dataclass(slots=True)
class FundsCredited(Event):
    kind: ClassVar[str] = "funds-credited"
    participant: str
    amount: int
    settlement_balance: int


@dataclass(slots=True)
class EndOfDay(Event):
    """Reconciliation, billing and trial balance of a business date."""

    kind: ClassVar[str] = "end-of-day"
    business_date: date
    reconciliation: dict[str, dict[str, dict[str, list[int]]]] = field(default_factory=dict)
    """participant → business type → state → [count, amount]."""
    fees: dict[str, int] = field(default_factory=dict)
    """participant → fees in minor units."""
    balanced: bool = True
    settled_nets: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True, frozen=True)
class Movement:
    """One booking on a settlement account."""

    at: datetime
    amount: int
    """Positive credits the account, negative debits it."""
    value_date: date
    session_id: str | None
    """The netting session whose net this settles; None for funds the centre credited."""


@dataclass(slots=True)
class StatementClosed(Event):
    """A settlement account's statement of one business day, made at its day switch: every
    booking since the previous statement, in order; ``closing_balance`` is
    ``opening_balance`` plus their amounts."""

    kind: ClassVar[str] = "statement-closed"
    participant: str
    business_date: date
    sequence: int
    """1 for the account's first statement, then one more for each."""
    period_from: datetime
    period_to: datetime
    opening_balance: int
    closing_balance: int
    movements: tuple[Movement, ...]


@dataclass(slots=True)
class BusinessRetired(Event):
    """The core forgot (some of) the finished business of business days up to ``through``
    (``gateway.clearing.retirement``): ``items`` as they ended (nothing changes them any more),
    and how many packages, sessions and command ids went with them."""

    kind: ClassVar[str] = "business-retired"
    through: date
    items: tuple[PaymentItem, ...]
    packages: int
    sessions: int
    command_ids: int
    complete: bool
    """All of it is retired (rules version 4 retires a bounded part at each tick)."""

    def as_dict(self) -> dict[str, Any]:
        """Counts, not the items (a day's business)."""
        return {
            "kind": self.kind,
            "through": self.through,
            "items": len(self.items),
            "packages": self.packages,
            "sessions": self.sessions,
            "command_ids": self.command_ids,
            "complete": self.complete,
        }
