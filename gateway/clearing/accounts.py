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

    @property
    def cap(self) -> int:
        """Net debit cap = collateral + credit line + ring-fenced funds."""
        return self.collateral + self.credit_line + self.ring_fenced

    @property
    def available(self) -> int:
        """Cap minus the net debit position (credits received raise it)."""
        return self.cap + self.net_position

    @property
    def settleable_funds(self) -> int:
        """What a net debit may be settled from: the balance less ring-fenced funds."""
        return self.settlement_balance - self.ring_fenced

    def warning_level(self, warning_percent: int, critical_percent: int) -> WarningLevel:
        available, cap = self.available, self.cap
        if available * 100 < cap * critical_percent:
            return WarningLevel.CRITICAL
        if available * 100 < cap * warning_percent:
            return WarningLevel.WARNING
        return WarningLevel.NORMAL
