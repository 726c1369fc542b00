"""NbOfTxs and CtrlSum agree with the transactions (AM18, AM10)."""

from __future__ import annotations

from typing import Any

from gateway.iso.converters import from_amount as format_amount
from gateway.iso.rules.base import ItemRef, Rule, requires


class TransactionCount(Rule):
    name = "transaction-count"
    requirement = requires(header=("number_of_transactions",))

    def on_header(self, header: Any) -> None:
        self.declared: int | None = header.number_of_transactions
        limit = self.context.settings.max_transactions_per_package
        if self.declared is not None and self.declared > limit:
            self.report(
                "AM18",
                f"NbOfTxs {self.declared} is above the limit of {limit} transactions per package "
                "(setting validation.max_transactions_per_package)",
                field="number_of_transactions",
            )

    def on_end(self, count: int) -> None:
        if self.declared is not None and count != self.declared:
            self.report(
                "AM18",
                f"NbOfTxs says {self.declared} but the message holds {count} transactions",
                field="number_of_transactions",
            )


class ControlSum(Rule):
    name = "control-sum"
    requirement = requires(header=("control_sum",), item=("amount",))

    def on_header(self, header: Any) -> None:
        self.declared: int | None = header.control_sum
        self.total = 0

    def on_item(self, item: Any, at: ItemRef) -> None:
        self.total += item.amount

    def on_end(self, count: int) -> None:
        if self.declared is not None and self.declared != self.total:
            self.report(
                "AM10",
                f"CtrlSum says {format_amount(self.declared)} but the transactions add up to "
                f"{format_amount(self.total)}",
                field="control_sum",
            )
