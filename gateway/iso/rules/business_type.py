"""The business type is known, fits the message, and is the same for every transaction;
real-time packages hold one transaction; debits share one reply deadline (T+N)."""

from __future__ import annotations

from typing import Any

from gateway.iso.rules.base import ItemRef, Rule, requires
from gateway.scheme.business_types import BUSINESS_TYPES, BusinessType, Cycle, Direction


def _describe(kind: BusinessType) -> str:
    return f"{kind.code} ({kind.name})"


class BusinessTypeFits(Rule):
    name = "business-type"
    requirement = requires(header=("business_type",), item=("business_type",))

    def on_header(self, header: Any) -> None:
        code: str | None = header.business_type
        self.package_type = code
        if code is None:
            self.report(
                "FF06",
                "the package has no business type (GrpHdr/PmtTpInf/CtgyPurp/Prtry)",
                field="business_type",
            )
            return
        kind = BUSINESS_TYPES.get(code)
        if kind is None:
            known = ", ".join(BUSINESS_TYPES)
            self.report(
                "FF06", f"unknown business type {code}; known: {known}", field="business_type"
            )
        elif kind.message != self.context.message:
            self.report(
                "FF06",
                f"business type {_describe(kind)} belongs on {kind.message}, "
                f"not on {self.context.message}",
                field="business_type",
            )

    def on_item(self, item: Any, at: ItemRef) -> None:
        code = item.business_type
        if code is not None and code != self.package_type:
            self.report(
                "FF06",
                f"transaction business type {code} differs from the package business type "
                f"{self.package_type}; one package holds one business type",
                at,
                "business_type",
            )


class RealTimeSingle(Rule):
    name = "real-time-single"
    requirement = requires(header=("business_type",))

    def on_header(self, header: Any) -> None:
        kind = BUSINESS_TYPES.get(header.business_type or "")
        self.kind = kind if kind is not None and kind.cycle is Cycle.REAL_TIME else None

    def on_end(self, count: int) -> None:
        if self.kind is not None and count != 1:
            self.report(
                "AM18",
                f"a real-time package ({_describe(self.kind)}) holds exactly one transaction, "
                f"this one holds {count}",
                field="number_of_transactions",
            )


class ReplyDeadline(Rule):
    name = "reply-deadline"
    requirement = requires(header=("business_type", "reply_deadline"), item=("reply_deadline",))

    def on_header(self, header: Any) -> None:
        kind = BUSINESS_TYPES.get(header.business_type or "")
        self.applies = kind is not None and kind.direction is Direction.DEBIT
        self.deadline: str | None = header.reply_deadline
        if self.applies and self.deadline is None:
            self.report(
                "FF05",
                "a debit package needs its reply deadline T+N in GrpHdr/PmtTpInf/LclInstrm/Prtry",
                field="reply_deadline",
            )

    def on_item(self, item: Any, at: ItemRef) -> None:
        if (
            self.applies
            and item.reply_deadline is not None
            and item.reply_deadline != self.deadline
        ):
            self.report(
                "FF05",
                f"transaction reply deadline {item.reply_deadline} differs from the package's "
                f"{self.deadline}; all debits of a package share one T+N",
                at,
                "reply_deadline",
            )
