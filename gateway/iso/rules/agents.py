"""Bank codes are known participants, and a package goes from one clearing party to one
receiving clearing bank (RC08, RC09, RC10).

In a credit the sending side is the debtor agent and the receiving side the creditor agent;
in a debit it is the other way round. Each transaction's receiving-side agent must clear
through the package's instructed agent (one receiving clearing bank per package), and its
sending-side agent must clear through the instructing agent. Indirect participants resolve to
the direct participant they clear through; an agency stands for itself.
"""

from __future__ import annotations

from typing import Any

from gateway.iso.rules.base import ItemRef, Rule, requires

_AGENT_CODE = {"debtor_agent": "RC09", "creditor_agent": "RC10"}


class PackageParties(Rule):
    name = "package-parties"
    requirement = requires(header=("instructing_agent", "instructed_agent"))

    def on_header(self, header: Any) -> None:
        directory = self.context.directory
        sender: str = header.instructing_agent
        receiver: str = header.instructed_agent
        if directory.kind(sender) is None:
            self.report(
                "RC08",
                f"instructing agent {sender} is not a participant",
                field="instructing_agent",
            )
        elif not directory.may_send_packages(sender):
            clearing = directory.clearing_party(sender)
            self.report(
                "RC08",
                f"instructing agent {sender} is an indirect participant; its packages are sent "
                f"by its clearing bank {clearing}",
                field="instructing_agent",
            )
        if directory.kind(receiver) is None:
            self.report(
                "RC08",
                f"instructed agent {receiver} is not a participant",
                field="instructed_agent",
            )
        elif not directory.is_clearing_bank(receiver):
            clearing = directory.clearing_party(receiver)
            hint = f"; address the package to {clearing}" if clearing != receiver else ""
            self.report(
                "RC08",
                f"instructed agent {receiver} is not a clearing bank (direct participant){hint}",
                field="instructed_agent",
            )


class _AgentsRule(Rule):
    sending_field: str
    receiving_field: str

    def on_header(self, header: Any) -> None:
        directory = self.context.directory
        sender: str = header.instructing_agent
        receiver: str = header.instructed_agent
        # A wrong header agent is reported once by package-parties, not again per item.
        self.sides = (
            (self.sending_field, sender, "instructing", directory.may_send_packages(sender)),
            (self.receiving_field, receiver, "instructed", directory.is_clearing_bank(receiver)),
        )

    def on_item(self, item: Any, at: ItemRef) -> None:
        directory = self.context.directory
        for field, expected, side, comparable in self.sides:
            code: str = getattr(item, field)
            clearing = directory.clearing_party(code)
            role = field.replace("_", " ")
            if clearing is None:
                self.report(_AGENT_CODE[field], f"{role} {code} is not a participant", at, field)
            elif comparable and clearing != expected:
                where = f"clears through {clearing}, not" if clearing != code else "is not"
                self.report(
                    _AGENT_CODE[field],
                    f"{role} {code} {where} the package's {side} agent {expected}; "
                    "a package goes from one sender to one receiving clearing bank",
                    at,
                    field,
                )


class CreditAgents(_AgentsRule):
    name = "credit-agents"
    requirement = requires(
        header=("instructing_agent", "instructed_agent"), item=("debtor_agent", "creditor_agent")
    )
    sending_field = "debtor_agent"
    receiving_field = "creditor_agent"


class DebitAgents(_AgentsRule):
    name = "debit-agents"
    requirement = requires(
        header=("instructing_agent", "instructed_agent"), item=("debtor_agent", "creditor_agent")
    )
    sending_field = "creditor_agent"
    receiving_field = "debtor_agent"
