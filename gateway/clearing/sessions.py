"""Netting sessions: what was netted in each, its close, trial balance and settlement."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from gateway.clearing.items import PaymentItem


@dataclass(slots=True)
class Session:
    session_id: str
    business_date: date
    sequence: int
    item_ids: list[str] = field(default_factory=list)
    bilateral: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    """Netted amount per (payer, payee) pair in this session."""

    closed: bool = False
    nets: dict[str, int] = field(default_factory=dict)
    """After close: net per participant, positive = net credit."""

    settlement_date: date | None = None
    unsettled: set[str] = field(default_factory=set)
    """Participants whose net of this session is not settled yet."""

    @property
    def settled(self) -> bool:
        return self.closed and self.settlement_date is not None and not self.unsettled


def session_id(business_date: date, sequence: int) -> str:
    return f"{business_date:%Y%m%d}-{sequence:02d}"


def nets_from_bilateral(bilateral: dict[tuple[str, str], int]) -> dict[str, int]:
    nets: dict[str, int] = defaultdict(int)
    for (payer, payee), amount in bilateral.items():
        nets[payer] -= amount
        nets[payee] += amount
    return {code: net for code, net in sorted(nets.items()) if net}


def nets_from_items(session: Session, items: dict[str, PaymentItem]) -> dict[str, int]:
    """Recompute a session's nets from its detail records (the netted items)."""
    nets: dict[str, int] = defaultdict(int)
    for item_id in session.item_ids:
        item = items[item_id]
        if item.payer != item.payee:
            nets[item.payer] -= item.amount
            nets[item.payee] += item.amount
    return {code: net for code, net in sorted(nets.items()) if net}
