"""The scheme's business types (DESIGN §2), keyed by the code in ``PmtTpInf/CtgyPurp/Prtry``."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType


class Direction(StrEnum):
    CREDIT = "credit"
    DEBIT = "debit"


class Cycle(StrEnum):
    ORDINARY = "ordinary"
    PERIODIC = "periodic"
    REAL_TIME = "real-time"


@dataclass(frozen=True)
class BusinessType:
    code: str
    name: str
    direction: Direction
    cycle: Cycle
    cheque: bool = False

    @property
    def message(self) -> str:
        return "pacs.008.001.08" if self.direction is Direction.CREDIT else "pacs.003.001.08"


BUSINESS_TYPES: MappingProxyType[str, BusinessType] = MappingProxyType(
    {
        kind.code: kind
        for kind in (
            BusinessType("A100", "ordinary credit", Direction.CREDIT, Cycle.ORDINARY),
            BusinessType("E100", "periodic credit", Direction.CREDIT, Cycle.PERIODIC),
            BusinessType("C100", "real-time credit", Direction.CREDIT, Cycle.REAL_TIME),
            BusinessType("B100", "ordinary debit", Direction.DEBIT, Cycle.ORDINARY),
            BusinessType("B308", "cheque truncation", Direction.DEBIT, Cycle.ORDINARY, cheque=True),
            BusinessType("F100", "periodic debit", Direction.DEBIT, Cycle.PERIODIC),
            BusinessType("D100", "real-time debit", Direction.DEBIT, Cycle.REAL_TIME),
        )
    }
)
