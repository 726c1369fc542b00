"""The closed list of rules a codec may name in its ``rules`` list."""

from __future__ import annotations

from types import MappingProxyType

from gateway.iso.codec_catalogue import RuleRequirement
from gateway.iso.rules.agents import CreditAgents, DebitAgents, PackageParties
from gateway.iso.rules.amounts import AmountLimits, Currency
from gateway.iso.rules.base import Rule
from gateway.iso.rules.business_type import BusinessTypeFits, RealTimeSingle, ReplyDeadline
from gateway.iso.rules.counts import ControlSum, TransactionCount
from gateway.iso.rules.debit_evidence import Cheque, Mandate
from gateway.iso.rules.uniqueness import UniqueTransactionIds

RULES: MappingProxyType[str, type[Rule]] = MappingProxyType(
    {
        rule.name: rule
        for rule in (
            TransactionCount,
            ControlSum,
            BusinessTypeFits,
            RealTimeSingle,
            ReplyDeadline,
            PackageParties,
            CreditAgents,
            DebitAgents,
            Currency,
            AmountLimits,
            UniqueTransactionIds,
            Mandate,
            Cheque,
        )
    }
)


def rule_requirements() -> dict[str, RuleRequirement]:
    return {name: rule.requirement for name, rule in RULES.items()}
