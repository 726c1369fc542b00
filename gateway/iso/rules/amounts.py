"""Currency (AM03), zero amounts (AM01) and the per-transaction cap by business type (AM02)."""

from __future__ import annotations

from typing import Any

from gateway.iso.converters import from_amount
from gateway.iso.rules.base import ItemRef, Rule, requires


class Currency(Rule):
    name = "currency"
    requirement = requires(item=("currency",))

    def __init__(self, *arguments: Any) -> None:
        super().__init__(*arguments)
        self.allowed = frozenset(self.context.settings.allowed_currencies)

    def on_item(self, item: Any, at: ItemRef) -> None:
        if item.currency not in self.allowed:
            allowed = ", ".join(sorted(self.allowed))
            self.report(
                "AM03",
                f"currency {item.currency} is not allowed; the scheme clears {allowed} "
                "(setting validation.allowed_currencies)",
                at,
                "currency",
            )


class AmountLimits(Rule):
    name = "amount-limits"
    requirement = requires(header=("business_type",), item=("amount",))

    def on_header(self, header: Any) -> None:
        self.business_type: str | None = header.business_type
        self.cap = self.context.settings.cap_minor_units(header.business_type or "")

    def on_item(self, item: Any, at: ItemRef) -> None:
        amount: int = item.amount
        if amount == 0:
            self.report("AM01", "the transaction amount is zero", at, "amount")
        elif self.cap is not None and amount > self.cap:
            self.report(
                "AM02",
                f"amount {from_amount(amount)} is above the {self.business_type} cap of "
                f"{from_amount(self.cap)} per transaction; larger payments go to the "
                "large-value system (setting validation.per_transaction_caps)",
                at,
                "amount",
            )
