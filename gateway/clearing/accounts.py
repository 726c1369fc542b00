"""A direct participant's settlement account and net debit cap."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class WarningLevel(StrEnum):
    NORMAL = "normal"
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(slots=True)
class Account:
    code: str
    settlement_balance: int
    collateral: int
    credit_line: int
    ring_fenced: int
    net_position: int = 0
    """Netted credits received minus netted debits paid, not yet settled."""

    cap: int = 0
    """Net debit cap = collateral + credit line + ring-fenced funds (kept by ``set_parts``)."""

    def __post_init__(self) -> None:
        self.cap = self.collateral + self.credit_line + self.ring_fenced

    def set_parts(self, collateral: int, credit_line: int, ring_fenced: int) -> None:
        self.collateral, self.credit_line, self.ring_fenced = collateral, credit_line, ring_fenced
        self.cap = collateral + credit_line + ring_fenced

    @property
    def available(self) -> int:
        """Cap minus the net debit position (credits received raise it)."""
        return self.cap + self.net_position

    @property
    def settleable_funds(self) -> int:
        """What a net debit may be settled from: the balance less ring-fenced funds."""
        return self.settlement_balance - self.ring_fenced
