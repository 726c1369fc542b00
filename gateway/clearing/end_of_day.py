"""End of day: reconciliation figures, billing and trial balance of a business date."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date

from gateway.clearing.events import EndOfDay
from gateway.clearing.items import ItemState, Package, PaymentItem
from gateway.clearing.sessions import Session

BILLED_STATES = frozenset({ItemState.NETTED, ItemState.SETTLED, ItemState.RETURNED})
"""Items billed to their sending participant: those the centre carried through netting."""


def end_of_day_report(
    day: date,
    sessions: Iterable[Session],
    items: Mapping[str, PaymentItem],
    packages: Mapping[str, Package],
    fees: Mapping[str, int],
) -> EndOfDay:
    """Per participant (as payer and as payee) and business type: count and amount of the
    day's items by state; fees per sending participant; trial balance of the day's nets."""
    reconciliation: dict[str, dict[str, dict[str, list[int]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(lambda: [0, 0]))
    )
    charged: dict[str, int] = defaultdict(int)
    for item in items.values():
        if item.business_date != day:
            continue
        for participant in {item.payer, item.payee}:
            figures = reconciliation[participant][item.business_type][item.state.value]
            figures[0] += 1
            figures[1] += item.amount
        if item.state in BILLED_STATES and item.return_of is None:
            package = packages.get(item.package_id)
            if package is not None:
                charged[package.sender] += fees.get(item.business_type, 0)
    settled: dict[str, int] = defaultdict(int)
    balanced = True
    for session in sessions:
        balanced = balanced and sum(session.nets.values()) == 0
        for participant, net in session.nets.items():
            settled[participant] += net
    return EndOfDay(
        day,
        {
            participant: {kind: dict(states) for kind, states in sorted(kinds.items())}
            for participant, kinds in sorted(reconciliation.items())
        },
        dict(sorted(charged.items())),
        balanced and sum(settled.values()) == 0,
        dict(sorted(settled.items())),
    )
