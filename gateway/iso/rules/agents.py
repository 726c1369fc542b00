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
                "RC08", f"instructed agent {receiver} is not a participant", field="instructed_agent"
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
        self.sender: str = header.instructing_agent
        self.receiver: str = header.instructed_agent

    def on_item(self, item: Any, at: ItemRef) -> None:
        directory = self.context.directory
        for field, expected, side in (
            (self.sending_field, self.sender, "instructing"),
            (self.receiving_field, self.receiver, "instructed"),
        ):
            code: str = getattr(item, field)
            clearing = directory.clearing_party(code)
            role = field.replace("_", " ")
            if clearing is None:
                self.report(_AGENT_CODE[field], f"{role} {code} is not a participant", at, field)
            elif clearing != expected:
                via = f" clears through {clearing}" if clearing != code else " is a clearing party"
                self.report(
                    _AGENT_CODE[field],
                    f"{role} {code}{via}, but the package's {side} agent is {expected}; "
                    "one package goes from one sender to one receiving clearing bank",
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
