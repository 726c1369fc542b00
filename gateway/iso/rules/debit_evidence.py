"""Periodic debits carry their agreement (MD01); cheque truncation carries complete cheque
data whose image digests match the images (CH21, CH17, CH16, AM12)."""

from __future__ import annotations

import hashlib
from typing import Any

from gateway.iso.converters import from_amount
from gateway.iso.rules.base import ItemRef, Rule, requires
from gateway.scheme.business_types import BUSINESS_TYPES, Cycle, Direction


class Mandate(Rule):
    name = "mandate"
    requirement = requires(header=("business_type",), item=("mandate_id",))

    def on_header(self, header: Any) -> None:
        kind = BUSINESS_TYPES.get(header.business_type or "")
        self.applies = (
            kind is not None and kind.direction is Direction.DEBIT and kind.cycle is Cycle.PERIODIC
        )

    def on_item(self, item: Any, at: ItemRef) -> None:
        if self.applies and not item.mandate_id:
            self.report(
                "MD01",
                "a periodic debit needs the agreement (mandate) reference in "
                "DrctDbtTx/MndtRltdInf/MndtId",
                at,
                "mandate_id",
            )


_CHEQUE_FIELDS = (
    "cheque_number",
    "cheque_amount",
    "cheque_currency",
    "cheque_front_image",
    "cheque_front_image_sha256",
    "cheque_back_image",
    "cheque_back_image_sha256",
)


class Cheque(Rule):
    name = "cheque"
    requirement = requires(header=("business_type",), item=("amount", "currency", *_CHEQUE_FIELDS))

    def on_header(self, header: Any) -> None:
        kind = BUSINESS_TYPES.get(header.business_type or "")
        self.cheque_package = kind is not None and kind.cheque
        self.business_type = header.business_type

    def on_item(self, item: Any, at: ItemRef) -> None:
        has_cheque = item.cheque_number is not None
        if not self.cheque_package:
            if has_cheque:
                self.report(
                    "CH17",
                    f"cheque data is only admitted in cheque truncation (B308) packages, "
                    f"not in {self.business_type}",
                    at,
                    "cheque_number",
                )
            return
        if not has_cheque:
            self.report(
                "CH21",
                "a cheque truncation debit needs its cheque data (SplmtryData/Envlp/Chq)",
                at,
                "cheque_number",
            )
            return
        if any(getattr(item, field) is None for field in _CHEQUE_FIELDS):
            # Only a schema-invalid item lacks some (the schema's verdict says which element):
            # a large file is streamed, its rules checked on each item before that verdict.
            return
        for side in ("front", "back"):
            image: bytes = getattr(item, f"cheque_{side}_image")
            declared: str = getattr(item, f"cheque_{side}_image_sha256")
            actual = hashlib.sha256(image).hexdigest()
            if actual != declared:
                self.report(
                    "CH16",
                    f"the {side} image of cheque {item.cheque_number} has SHA-256 {actual}, "
                    f"not the declared {declared}",
                    at,
                    f"cheque_{side}_image_sha256",
                )
        if item.cheque_amount != item.amount or item.cheque_currency != item.currency:
            self.report(
                "AM12",
                f"cheque {item.cheque_number} is for {item.cheque_currency} "
                f"{from_amount(item.cheque_amount)} but the debit is for {item.currency} "
                f"{from_amount(item.amount)}",
                at,
                "cheque_amount",
            )
