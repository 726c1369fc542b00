"""A small ledger with round figures, and a helper that issues commands to it."""

from __future__ import annotations

import itertools
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

from gateway.clearing.commands import (
    AdvanceClock,
    CancelPackage,
    CloseSession,
    CreditSettlementAccount,
    ItemAnswer,
    PackageItem,
    RecordReceipt,
    ReturnedItem,
    ReturnPayment,
    ReversePayment,
    SetCap,
    SetSchedule,
    StopPayment,
    SubmitPackage,
    SwitchDay,
)
from gateway.clearing.core import ClearingCore
from gateway.clearing.events import CommandRefused, Event, ItemChanged
from gateway.clearing.items import ItemState
from gateway.configuration.clearing_settings import ClearingSettings
from gateway.configuration.participants import ParticipantDirectory, ParticipantsFile

ICBC, BOC, CCB, ABC = "102100099996", "104100000004", "105100000017", "103100000026"
BOC_SHANGHAI = "104290003033"
AGENCY = "990100000017"


def cny(text: str) -> int:
    return int(Decimal(text) * 100)


def participants(**caps: tuple[str, str, str, str]) -> ParticipantDirectory:
    """Direct participants with (balance, collateral, credit line, ring-fenced) in CNY."""
    default = ("1000000.00", "60000.00", "30000.00", "10000.00")
    figures = {ICBC: default, BOC: default, CCB: default, ABC: default, **caps}
    return ParticipantDirectory(
        ParticipantsFile.model_validate(
            {
                "centre": {"member_id": "999999999999", "name": "centre"},
                "direct": [
                    {
                        "code": code,
                        "name": code,
                        "settlement_balance": balance,
                        "collateral": collateral,
                        "credit_line": credit,
                        "ring_fenced": ring,
                    }
                    for code, (balance, collateral, credit, ring) in figures.items()
                ],
                "indirect": [{"code": BOC_SHANGHAI, "name": "BOC SH", "clears_through": BOC}],
                "special": [
                    {"code": AGENCY, "name": "agency", "kind": "agency", "settles_through": CCB}
                ],
            }
        )
    )


SETTINGS = ClearingSettings.model_validate(
    {
        "calendar": {
            "holidays": ["2026-10-01", "2026-10-02", "2026-10-05", "2026-10-06", "2026-10-07"],
            "extra_working_days": ["2026-09-27", "2026-10-10"],
        },
        "fees": {"A100": "0.50", "B100": "0.50", "C100": "0.80", "D100": "0.80"},
    }
)
ZONE = SETTINGS.zone
MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=ZONE)


class Scenario:
    def __init__(
        self,
        start: datetime = MONDAY,
        directory: ParticipantDirectory | None = None,
        settings: ClearingSettings = SETTINGS,
    ) -> None:
        self.now = start
        self.core = ClearingCore(directory or participants(), settings, start)
        self._ids = itertools.count(1)
        self.log: list[Any] = []
        self.unread: list[Event] = []

    def _id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids)}"

    def run(self, command: Any) -> list[Event]:
        self.log.append(command)
        events = self.core.execute(command)
        self.unread.extend(events)
        return events

    def take_events(self) -> list[Event]:
        """Events since the last call (for observers)."""
        events, self.unread = self.unread, []
        return events

    def at(self, hour: int, minute: int = 0, day: int = 0) -> datetime:
        local = self.now.astimezone(ZONE)
        return datetime.combine(local.date() + timedelta(days=day), time(hour, minute), ZONE)

    def advance(self, to: datetime | None = None, **delta: float) -> list[Event]:
        self.now = to if to is not None else self.now + timedelta(**delta)
        return self.run(AdvanceClock(command_id=self._id("tick"), at=self.now))

    def submit(
        self,
        business_type: str,
        sender: str,
        receiver: str,
        *amounts: tuple[str, str, str],
        deadline_days: int | None = None,
        package: str | None = None,
    ) -> tuple[str, list[Event]]:
        package_id = package or self._id("P")
        items = tuple(
            PackageItem(
                transaction_id=f"T{index}",
                debtor_agent=debtor,
                creditor_agent=creditor,
                amount=cny(amount),
            )
            for index, (debtor, creditor, amount) in enumerate(amounts, start=1)
        )
        command = SubmitPackage(
            command_id=self._id("submit"),
            at=self.now,
            package_id=package_id,
            sender=sender,
            receiver=receiver,
            business_type=business_type,
            reply_deadline_days=deadline_days,
            items=items,
        )
        return package_id, self.run(command)

    def credit(self, sender: str, receiver: str, amount: str, kind: str = "A100") -> str:
        """One credit from ``sender``'s customer to ``receiver``'s; returns the item id."""
        package_id, _ = self.submit(kind, sender, receiver, (sender, receiver, amount))
        return f"{package_id}/T1"

    def receipt(self, package_id: str, sender: str, **answers: bool | str) -> list[Event]:
        decoded = tuple(
            ItemAnswer(
                transaction_id=transaction,
                accepted=answer is True,
                reason_code=answer if isinstance(answer, str) else None,
            )
            for transaction, answer in answers.items()
        )
        return self.run(
            RecordReceipt(
                command_id=self._id("receipt"),
                at=self.now,
                receipt_id=self._id("R"),
                sender=sender,
                package_id=package_id,
                answers=decoded,
            )
        )

    def cancel(
        self, requester: str, package_id: str, reason_code: str | None = None
    ) -> list[Event]:
        return self.run(
            CancelPackage(
                command_id=self._id("cancel"),
                at=self.now,
                requester=requester,
                package_id=package_id,
                reason_code=reason_code,
            )
        )

    def stop(self, requester: str, package_id: str, *transactions: str) -> list[Event]:
        return self.run(
            StopPayment(
                command_id=self._id("stop"),
                at=self.now,
                requester=requester,
                package_id=package_id,
                transaction_ids=transactions,
            )
        )

    def reverse(self, requester: str, package_id: str) -> list[Event]:
        return self.run(
            ReversePayment(
                command_id=self._id("reverse"),
                at=self.now,
                requester=requester,
                package_id=package_id,
                transaction_id="T1",
            )
        )

    def return_items(self, requester: str, *item_ids: str) -> list[Event]:
        items = tuple(
            ReturnedItem(package_id=item_id.split("/")[0], transaction_id=item_id.split("/")[1])
            for item_id in item_ids
        )
        return self.run(
            ReturnPayment(
                command_id=self._id("return"),
                at=self.now,
                requester=requester,
                return_id=self._id("RET"),
                items=items,
            )
        )

    def close_session(self) -> list[Event]:
        return self.run(CloseSession(command_id=self._id("close"), at=self.now))

    def switch_day(self) -> list[Event]:
        return self.run(SwitchDay(command_id=self._id("switch"), at=self.now))

    def set_schedule(self, *times: str) -> list[Event]:
        return self.run(
            SetSchedule(
                command_id=self._id("schedule"),
                at=self.now,
                times=tuple(time.fromisoformat(value) for value in times),
            )
        )

    def set_cap(self, participant: str, **parts: str) -> list[Event]:
        return self.run(
            SetCap(
                command_id=self._id("cap"),
                at=self.now,
                participant=participant,
                **{key: cny(value) for key, value in parts.items()},
            )
        )

    def fund(self, participant: str, amount: str) -> list[Event]:
        return self.run(
            CreditSettlementAccount(
                command_id=self._id("fund"),
                at=self.now,
                participant=participant,
                amount=cny(amount),
            )
        )

    def state(self, item_id: str) -> ItemState:
        return self.core.items[item_id].state

    def available(self, code: str) -> int:
        return self.core.accounts[code].available


def refusal(events: list[Event]) -> str | None:
    refused = [event for event in events if isinstance(event, CommandRefused)]
    return refused[0].code if refused else None


def changes(events: list[Event]) -> list[tuple[str, str, str | None]]:
    return [
        (event.item_id, event.state, event.reason_code)
        for event in events
        if isinstance(event, ItemChanged)
    ]
