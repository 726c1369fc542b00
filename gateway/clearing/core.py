"""The clearing core: one deterministic state machine driven by commands.

``execute`` applies one command and returns the events it caused. Time only moves through
the instants the commands carry: before each command the core catches up with the time that
passed (deadlines expire, scheduled sessions close, the day switches, deferred settlements run),
so replaying the same commands always rebuilds the same state. A command the core refuses
changes nothing and yields one ``CommandRefused`` event with its ISO reason code. A command
id seen before changes nothing and yields nothing.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any

from gateway.clearing.accounts import Account
from gateway.clearing.calendar import BusinessCalendar
from gateway.clearing.commands import (
    AdvanceClock,
    CancelPackage,
    CloseSession,
    CreditSettlementAccount,
    RecordMessage,
    RecordMessageReject,
    RecordReceipt,
    ReturnPayment,
    ReversePayment,
    SetCap,
    SetSchedule,
    StopPayment,
    SubmitPackage,
    SwitchDay,
)
from gateway.clearing.end_of_day import end_of_day_report
from gateway.clearing.events import (
    CapChanged,
    CommandRefused,
    DaySwitched,
    Event,
    FundsCredited,
    ItemChanged,
    NetSettled,
    ScheduleChanged,
    SessionClosed,
    SettlementQueued,
)
from gateway.clearing.items import ENDED, ItemState, Package, PaymentItem, Receipt, payment_item_id
from gateway.clearing.netting import NettingBook
from gateway.clearing.refusals import CommandRefusedError
from gateway.clearing.retirement import retire, retire_some
from gateway.clearing.sessions import Session, nets_from_bilateral, nets_from_items, session_id
from gateway.clearing.statements import StatementBook
from gateway.configuration.clearing_settings import ClearingSettings
from gateway.configuration.participants import (
    ParticipantDirectory,
    ParticipantKind,
    to_minor_units,
)
from gateway.scheme.business_types import BUSINESS_TYPES, Cycle, Direction

RULES_VERSION = 5
"""The version of the rules a new ledger is replayed with. A ledger keeps the version it
started with (in its genesis), so an upgrade never changes the history it replays:
1. the first release;
2. a scheduled close due on the day after the clock's (the time passed from one evening to the
   next midday in one step, no gateway running overnight) happens; under 1 it was skipped and
   the session stayed open until the next close that day;
3. finished business is retired from the core ``retention.business_days`` business days after
   its end of day (``gateway.clearing.retirement``); a reference to it is then refused NOOR.
   Under 1 and 2 the core keeps everything;
4. retirement is spread over the clock's ticks (``AdvanceClock``: the gateway's, each second)
   after that end of day, at most ``retention.items_per_tick`` items before each (a package
   whole), instead of a day's business at once before the first command after it;
5. every message accepted is in the log, those that clear nothing as ``RecordMessage``, so
   the ids the core has seen are all the ids it was sent. Under 1 to 4 such messages were
   not logged: the gateway looks a new id up in the record of messages too."""
MAX_TIME_STEPS_PER_COMMAND = 100_000
"""Bound of the catch-up loop (closes, switches and expiries processed for one command)."""

S = ItemState


class ClearingCore:
    def __init__(
        self,
        directory: ParticipantDirectory,
        settings: ClearingSettings,
        start: datetime,
        rules: int = RULES_VERSION,
    ) -> None:
        if not 1 <= rules <= RULES_VERSION:
            raise ValueError(f"rules version {rules} is not 1 to {RULES_VERSION}")
        self.rules = rules
        self.directory = directory
        self.settings = settings
        self.zone = settings.zone
        self.calendar = BusinessCalendar(settings.calendar)
        self.schedule: tuple[time, ...] = settings.sessions.times
        self.day_switch = settings.sessions.day_switch
        self.real_time_deadline = timedelta(seconds=settings.deadlines.real_time_seconds)
        self.fees = settings.fee_minor_units()
        self.accounts = {
            entry.code: Account(
                entry.code,
                to_minor_units(entry.settlement_balance),
                to_minor_units(entry.collateral),
                to_minor_units(entry.credit_line),
                to_minor_units(entry.ring_fenced),
            )
            for entry in directory.participants.direct
        }
        self.items: dict[str, PaymentItem] = {}
        self.packages: dict[str, Package] = {}
        self.packages_by_message: dict[str, list[str]] = {}
        """Package ids by the message id they came with (replies name only the message id)."""
        self.receipts: dict[str, Receipt] = {}
        self.receipts_by_package: dict[str, list[str]] = {}
        """Receipt ids by the package they answer (derived from ``receipts``)."""
        self.returns: dict[str, date] = {}
        """Return ids, with the business date they came on."""
        self.statements = StatementBook(self.accounts, start)
        self.netting = NettingBook(
            self.accounts,
            self.items,
            settings.warning_levels,
            {
                entry.code: (entry.warning_percent, entry.critical_percent)
                for entry in directory.participants.direct
            },
        )
        self.sessions: dict[str, Session] = {}
        self.settlement_queue: deque[tuple[str, str, int]] = deque()
        self.deadlines: list[tuple[datetime, str]] = []
        self.seen: dict[str, date] = {}
        """Ids of the commands applied, with the business date each came on."""
        self.funds_credited = 0
        self.clock = start
        local = start.astimezone(self.zone)
        switch_today = datetime.combine(local.date(), self.day_switch, self.zone)
        first = local.date() if start < switch_today else local.date() + timedelta(days=1)
        self.business_date = self.calendar.working_day_on_or_after(first)
        self.eod_pending: set[date] = set()
        self.awaiting_settlement: list[Session] = []
        self.reported_days: list[date] = []
        self.retained_days = settings.retention.business_days
        self.retire_per_tick = settings.retention.items_per_tick
        self.retire_through: date | None = None
        """Business days up to this one are to be retired: before the next command (rules 3),
        over the next ticks (rules 4)."""
        self.retired_through: date | None = None
        """The last business day retired; None while the core has retired nothing."""
        self.open_session = self._open_session(1)
        self._handlers: dict[type[Any], Callable[[Any, list[Event]], None]] = {
            SubmitPackage: self._submit,
            RecordReceipt: self._receipt,
            RecordMessageReject: self._message_reject,
            RecordMessage: lambda command, events: None,
            CancelPackage: self._cancel,
            StopPayment: self._stop,
            ReversePayment: self._reverse,
            ReturnPayment: self._return,
            AdvanceClock: lambda command, events: None,
            CloseSession: lambda command, events: self._close_session(events),
            SwitchDay: lambda command, events: self._switch_day(events),
            SetSchedule: self._set_schedule,
            SetCap: self._set_cap,
            CreditSettlementAccount: self._credit_account,
        }

    # The entry point -------------------------------------------------------------------

    def execute(self, command: Any) -> list[Event]:
        passed, own = self.apply(command)
        return [*passed, *own]

    def apply(self, command: Any) -> tuple[list[Event], list[Event]]:
        """``execute``, with what the time passing up to the command caused (deadlines,
        session closes, the day switch) apart from the command's own events, for a caller that
        answers on the command's own (nothing for a command id already applied)."""
        if command.command_id in self.seen:
            return [], []
        passed: list[Event] = []
        if self.retire_through is not None:
            # Before the command, not with the end of day that decided it: the events of that
            # command may still name what is retired.
            if self.rules >= 4:
                # Housekeeping on the clock's ticks, a part at each: never before a payment.
                if isinstance(command, AdvanceClock):
                    retired = retire_some(self, self.retire_through, self.retire_per_tick)
                    if retired is not None:
                        passed.append(retired)
                    if retired is None or retired.complete:
                        self.retire_through = None
            else:
                passed.append(retire(self, self.retire_through))
                self.retire_through = None
        self.seen[command.command_id] = self.business_date
        self._advance(max(command.at, self.clock), passed)
        own: list[Event] = []
        try:
            self._handlers[type(command)](command, own)
        except CommandRefusedError as refusal:
            own.append(CommandRefused(refusal.code, refusal.text))
        return passed, own

    # Time ------------------------------------------------------------------------------

    def _local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.zone)

    def _next_close(self, after: datetime) -> datetime | None:
        """The next scheduled close after ``after``: later that day, or on the next calendar
        day when it is a working day. One day ahead is enough: every day has a day switch, which
        moves the clock into it. Without the next day, time passed in one step from one evening
        to the next midday (no gateway running overnight) would skip that morning's closes, as
        ledgers of rules version 1 do."""
        today = self._local(after).date()
        days = (today, today + timedelta(days=1)) if self.rules >= 2 else (today,)
        for day in days:
            if not self.calendar.is_working_day(day):
                continue
            for moment in (datetime.combine(day, value, self.zone) for value in self.schedule):
                if moment > after:
                    return moment
        return None

    def _next_switch(self, after: datetime) -> datetime:
        day = self._local(after).date()
        moment = datetime.combine(day, self.day_switch, self.zone)
        return moment if moment > after else moment + timedelta(days=1)

    def _advance(self, now: datetime, events: list[Event]) -> None:
        for _ in range(MAX_TIME_STEPS_PER_COMMAND):
            while self.deadlines and self.items[self.deadlines[0][1]].state != S.AWAITING_RECEIPT:
                heapq.heappop(self.deadlines)
            due: list[tuple[datetime, int]] = []
            if self.deadlines and self.deadlines[0][0] <= now:
                due.append((self.deadlines[0][0], 0))
            close = self._next_close(self.clock)
            if close is not None and close <= now:
                due.append((close, 1))
            switch = self._next_switch(self.clock)
            if switch <= now:
                due.append((switch, 2))
            if not due:
                break
            moment, what = min(due)
            self.clock = max(self.clock, moment)
            if what == 0:
                self._expire(heapq.heappop(self.deadlines)[1], events)
            elif what == 1:
                self._close_session(events)
            else:
                self._switch_day(events)
        self.clock = now
        self._settle_due(events)

    def _expire(self, item_id: str, events: list[Event]) -> None:
        item = self.items[item_id]
        item.move(S.EXPIRED)
        item.reason_code = "AB05" if item.real_time else "AB06"
        events.append(ItemChanged(item_id, item.state, reason_code=item.reason_code))

    # Sessions, settlement, day switch --------------------------------------------------

    def _open_session(self, sequence: int) -> Session:
        session = Session(session_id(self.business_date, sequence), self.business_date, sequence)
        self.sessions[session.session_id] = session
        return session

    def _close_session(self, events: list[Event], reopen: bool = True) -> None:
        session = self.open_session
        session.closed = True
        incremental = nets_from_bilateral(session.bilateral)
        detail = nets_from_items(session, self.items)
        session.nets = detail
        session.settlement_date = self.calendar.working_day_on_or_after(
            self._local(self.clock).date()
        )
        balanced = sum(detail.values()) == 0
        events.append(
            SessionClosed(
                session.session_id,
                session.business_date,
                len(session.item_ids),
                dict(detail),
                incremental != detail,
                session.settlement_date,
                self.clock,
            )
        )
        if balanced:
            session.unsettled = set(detail)
            self.awaiting_settlement.append(session)
        else:
            # Never submit an unbalanced result; nothing of it settles.
            session.settlement_date = None
        if reopen:
            self.open_session = self._open_session(session.sequence + 1)
        self._settle_due(events)

    def _settle_due(self, events: list[Event]) -> None:
        """Settle closed sessions whose settlement date has come (on working days only:
        holiday results wait for the first working day after)."""
        today = self._local(self.clock).date()
        if self.awaiting_settlement and self.calendar.is_working_day(today):
            waiting = []
            for session in self.awaiting_settlement:
                assert session.settlement_date is not None
                if session.settlement_date <= today:
                    self._settle(session, events)
                else:
                    waiting.append(session)
            self.awaiting_settlement = waiting
        if self.settlement_queue:
            self._retry_settlement_queue(events)
        if self.eod_pending:
            self._finish_days(events)

    def _settle(self, session: Session, events: list[Event]) -> None:
        waiting = {participant for _, participant, _ in self.settlement_queue}
        for participant in sorted(session.unsettled):
            net = session.nets[participant]
            account = self.accounts[participant]
            if net > 0:
                account.settlement_balance += net
                account.net_position -= net
                session.unsettled.discard(participant)
                self._booked(session, participant, net, events)
                continue
            debit = -net
            if participant not in waiting and account.settleable_funds >= debit:
                self._pay(session, participant, debit, events)
            elif (session.session_id, participant, debit) not in self.settlement_queue:
                self.settlement_queue.append((session.session_id, participant, debit))
                waiting.add(participant)
                shortfall = debit - max(account.settleable_funds, 0)
                events.append(SettlementQueued(session.session_id, participant, debit, shortfall))
        self._finish_session(session, events)

    def _pay(self, session: Session, participant: str, debit: int, events: list[Event]) -> None:
        account = self.accounts[participant]
        account.settlement_balance -= debit
        account.net_position += debit
        session.unsettled.discard(participant)
        self._booked(session, participant, -debit, events)
        self.netting.refresh_level(participant, events)

    def _booked(self, session: Session, participant: str, amount: int, events: list[Event]) -> None:
        assert session.settlement_date is not None
        if amount:  # a bank whose items in the session cancel out: nothing is booked
            self.statements.book(
                participant, self.clock, amount, session.settlement_date, session.session_id
            )
        events.append(NetSettled(session.session_id, participant, amount, self.clock))

    def _retry_settlement_queue(self, events: list[Event]) -> None:
        blocked: set[str] = set()
        remaining: deque[tuple[str, str, int]] = deque()
        while self.settlement_queue:
            entry = self.settlement_queue.popleft()
            session_key, participant, debit = entry
            account = self.accounts[participant]
            if participant in blocked or account.settleable_funds < debit:
                blocked.add(participant)
                remaining.append(entry)
                continue
            session = self.sessions[session_key]
            self._pay(session, participant, debit, events)
            self._finish_session(session, events)
        self.settlement_queue = remaining

    def _finish_session(self, session: Session, events: list[Event]) -> None:
        if session.unsettled:
            return
        for item_id in session.item_ids:
            item = self.items[item_id]
            if item.state == S.NETTED:
                item.move(S.SETTLED)

    def _switch_day(self, events: list[Event]) -> None:
        """Close the day's last session, move to the next working day (holidays skipped),
        and run end of day once the closed day's sessions have all settled. On a holiday the
        business date does not move: the day's one netting result waits for settlement."""
        previous = self.business_date
        upcoming = self.calendar.next_working_day(self._local(self.clock).date())
        self._close_session(events, reopen=upcoming == previous)
        if upcoming != previous:
            self.business_date = upcoming
            events.append(DaySwitched(previous, upcoming, self.clock))
            events.extend(self.statements.close(previous, self.clock))
            self.eod_pending.add(previous)
            self.open_session = self._open_session(1)
        self._finish_days(events)

    def _finish_days(self, events: list[Event]) -> None:
        for day in sorted(self.eod_pending):
            sessions = [
                session for session in self.sessions.values() if session.business_date == day
            ]
            if all(session.closed and not session.unsettled for session in sessions):
                self.eod_pending.discard(day)
                self.reported_days.append(day)
                events.append(
                    end_of_day_report(day, sessions, self.items, self.packages, self.fees)
                )
                if self.rules >= 3 and len(self.reported_days) > self.retained_days:
                    self.retire_through = sorted(self.reported_days)[-self.retained_days - 1]

    # Packages and receipts -------------------------------------------------------------

    def _settling_bank(self, code: str, role: str) -> str:
        bank = self.directory.settling_bank(code)
        if bank is None:
            raise CommandRefusedError("RC08", f"{role} {code} is not a participant")
        return bank

    def _submit(self, command: SubmitPackage, events: list[Event]) -> None:
        if command.package_id in self.packages:
            raise CommandRefusedError("DU01", f"package {command.package_id} was already submitted")
        kind = BUSINESS_TYPES.get(command.business_type)
        if kind is None:
            raise CommandRefusedError("AG03", f"unknown business type {command.business_type}")
        if self.directory.kind(command.sender) not in (
            ParticipantKind.DIRECT,
            ParticipantKind.SPECIAL,
        ):
            raise CommandRefusedError("RC08", f"sender {command.sender} may not send packages")
        if not self.directory.is_clearing_bank(command.receiver):
            raise CommandRefusedError("RC08", f"receiver {command.receiver} is not a clearing bank")
        real_time = kind.cycle is Cycle.REAL_TIME
        if real_time and len(command.items) != 1:
            raise CommandRefusedError("AG03", "a real-time package holds exactly one item")
        debit = kind.direction is Direction.DEBIT
        if debit and not real_time and command.reply_deadline_days is None:
            raise CommandRefusedError("AG03", "a debit package needs its reply deadline T+N")
        identifiers = [item.transaction_id for item in command.items]
        if len(set(identifiers)) != len(identifiers):
            raise CommandRefusedError("DU01", "a transaction id repeats within the package")
        banks: dict[str, str] = {}

        def bank(code: str, role: str) -> str:
            if code not in banks:
                banks[code] = self._settling_bank(code, role)
            return banks[code]

        parties = [
            (bank(item.debtor_agent, "debtor agent"), bank(item.creditor_agent, "creditor agent"))
            for item in command.items
        ]
        # Validated: from here on nothing can refuse, so nothing is half-applied.
        package = Package(
            command.package_id, command.sender, command.receiver, kind.code, debit, real_time
        )
        self.packages[package.package_id] = package
        message_id = package.package_id.rpartition(":")[2]
        self.packages_by_message.setdefault(message_id, []).append(package.package_id)
        deadline = None
        if real_time:
            deadline = command.at + self.real_time_deadline
        elif debit:
            assert command.reply_deadline_days is not None
            due_day = self.calendar.add_working_days(
                self.business_date, command.reply_deadline_days
            )
            deadline = datetime.combine(due_day, self.day_switch, self.zone)
        awaits = debit or real_time
        for specification, (payer, payee) in zip(command.items, parties, strict=True):
            item = PaymentItem(
                payment_item_id(package.package_id, specification.transaction_id),
                package.package_id,
                specification.transaction_id,
                kind.code,
                real_time,
                payer,
                payee,
                specification.amount,
                self.business_date,
            )
            self.items[item.item_id] = item
            package.item_ids.append(item.item_id)
            item.move(S.FORWARDED)
            if awaits:
                assert deadline is not None
                item.move(S.AWAITING_RECEIPT)
                item.deadline = deadline
                heapq.heappush(self.deadlines, (deadline, item.item_id))
                events.append(ItemChanged(item.item_id, item.state))
            else:
                self.netting.decide(item, self.open_session, events)
        if not awaits:
            self._release_receivers(package, events)

    def _release_receivers(self, package: Package, events: list[Event]) -> None:
        payees = [self.items[item_id].payee for item_id in package.item_ids]
        self.netting.release(payees, self.open_session, events)

    def _unknown(self, what: str) -> CommandRefusedError:
        if self.retired_through is None:
            return CommandRefusedError("NOOR", f"{what} was never received")
        return CommandRefusedError(
            "NOOR",
            f"{what} is not known: never received, or finished on a business day up to "
            f"{self.retired_through} and retired (kept {self.retained_days} business days "
            "after their end of day: clearing setting retention.business_days)",
        )

    def _package(self, package_id: str) -> Package:
        package = self.packages.get(package_id)
        if package is None:
            raise self._unknown(f"package {package_id}")
        return package

    def _receipt(self, command: RecordReceipt, events: list[Event]) -> None:
        package = self._package(command.package_id)
        if command.receipt_id in self.receipts:
            raise CommandRefusedError("DU01", f"receipt {command.receipt_id} was already recorded")
        if not (package.debit or package.real_time):
            raise CommandRefusedError("AG03", f"{package.business_type} items take no receipt")
        if command.sender != package.receiver:
            raise CommandRefusedError(
                "AG01", f"only {package.receiver}, the receiving bank, answers for this package"
            )
        answers = []
        for answer in command.answers:
            item = self.items.get(payment_item_id(package.package_id, answer.transaction_id))
            if item is None:
                raise CommandRefusedError(
                    "NOOR", f"transaction {answer.transaction_id} is not in {package.package_id}"
                )
            answers.append((item, answer))
        receipt = Receipt(command.receipt_id, command.sender, package.package_id)
        self.receipts[receipt.receipt_id] = receipt
        self.receipts_by_package.setdefault(package.package_id, []).append(receipt.receipt_id)
        payees = []
        for item, answer in answers:
            if item.state != S.AWAITING_RECEIPT:
                code = "TM01" if item.state == S.EXPIRED else "AGNT"
                events.append(
                    CommandRefused(
                        code, f"{item.item_id} is {item.state}; the answer comes too late"
                    )
                )
                continue
            if not answer.accepted:
                item.move(S.REJECTED)
                item.reason_code = answer.reason_code or "NARR"
                events.append(ItemChanged(item.item_id, item.state, reason_code=item.reason_code))
                continue
            receipt.item_ids.append(item.item_id)
            self.netting.decide(item, self.open_session, events)
            payees.append(item.payee)
        self.netting.release(payees, self.open_session, events)

    def _message_reject(self, command: RecordMessageReject, events: list[Event]) -> None:
        package = self._package(command.package_id)
        if command.sender != package.receiver:
            raise CommandRefusedError(
                "AG01", f"{package.package_id} was sent to {package.receiver}, not to the sender"
            )
        if not package.real_time:
            return  # the receipt may still come before the reply deadline
        for item_id in package.item_ids:
            item = self.items[item_id]
            if item.state == S.AWAITING_RECEIPT:  # one answered or expired already stays so
                item.move(S.REJECTED)
                item.reason_code = "AB10"
                events.append(ItemChanged(item.item_id, item.state, reason_code=item.reason_code))

    # Cancellation, stop, reversal, return ----------------------------------------------

    def _cancel(self, command: CancelPackage, events: list[Event]) -> None:
        if command.package_id in self.receipts:
            receipt = self.receipts[command.package_id]
            owner, item_ids = receipt.sender, receipt.item_ids
        else:
            package = self._package(command.package_id)
            if package.real_time:
                raise CommandRefusedError(
                    "AG03", "a real-time item is reversed (pacs.007), not cancelled"
                )
            if package.debit:
                raise CommandRefusedError(
                    "AG03",
                    "debits are cancelled by their receipt package; before the receipt the "
                    "payee's bank may stop them",
                )
            owner, item_ids = package.sender, package.item_ids
        if self.directory.settling_bank(command.requester) != self.directory.settling_bank(owner):
            raise CommandRefusedError(
                "AG01", f"only the payer's clearing bank {owner} may cancel this package"
            )
        items = [self.items[item_id] for item_id in item_ids]
        netted = [item for item in items if item.state in (S.NETTED, S.SETTLED, S.RETURNED)]
        if netted:
            raise CommandRefusedError(
                "AGNT",
                f"{len(netted)} of {len(items)} items are already netted; netted payments are "
                "final and the package can only be cancelled whole",
            )
        other = [item for item in items if item.state != S.QUEUED]
        if other:
            raise CommandRefusedError(
                "AGNT", f"{other[0].item_id} is {other[0].state}, not waiting to be netted"
            )
        payers = set()
        for item in items:
            self.netting.remove_queued(item)
            item.move(S.CANCELLED)
            _give_reason(item, command.reason_code)
            payers.add(item.payer)
            events.append(ItemChanged(item.item_id, item.state, reason_code=command.reason_code))
        self.netting.release(sorted(payers), self.open_session, events)

    def _stop(self, command: StopPayment, events: list[Event]) -> None:
        package = self._package(command.package_id)
        if not package.debit or package.real_time:
            raise CommandRefusedError(
                "AG03", "stop payment applies to ordinary and periodic debits only"
            )
        if self.directory.settling_bank(command.requester) != self.directory.settling_bank(
            package.sender
        ):
            raise CommandRefusedError(
                "AG01", f"only the payee's clearing bank {package.sender} may stop these debits"
            )
        wanted = command.transaction_ids or tuple(
            self.items[item_id].transaction_id for item_id in package.item_ids
        )
        items = []
        for transaction_id in wanted:
            item = self.items.get(payment_item_id(package.package_id, transaction_id))
            if item is None:
                raise CommandRefusedError(
                    "NOOR", f"transaction {transaction_id} is not in {package.package_id}"
                )
            if item.state != S.AWAITING_RECEIPT:
                raise CommandRefusedError(
                    "AGNT",
                    f"{item.item_id} is {item.state}: the payer's bank has answered already",
                )
            items.append(item)
        for item in items:
            item.move(S.STOPPED)
            reason = command.reason_for(item.transaction_id)
            _give_reason(item, reason)
            events.append(ItemChanged(item.item_id, item.state, reason_code=reason))

    def _reverse(self, command: ReversePayment, events: list[Event]) -> None:
        package = self._package(command.package_id)
        if not package.real_time:
            raise CommandRefusedError("AG03", "reversal (pacs.007) applies to real-time items")
        if self.directory.settling_bank(command.requester) != self.directory.settling_bank(
            package.sender
        ):
            raise CommandRefusedError(
                "AG01", f"only the initiator {package.sender} may reverse this item"
            )
        item = self.items.get(payment_item_id(package.package_id, command.transaction_id))
        if item is None:
            raise CommandRefusedError("NOOR", f"transaction {command.transaction_id} not found")
        if item.state != S.AWAITING_RECEIPT:
            raise CommandRefusedError(
                "AGNT", f"{item.item_id} is {item.state}; only an item without result is reversed"
            )
        item.move(S.REVERSED)
        _give_reason(item, command.reason_code)
        events.append(ItemChanged(item.item_id, item.state, reason_code=command.reason_code))

    def _return(self, command: ReturnPayment, events: list[Event]) -> None:
        if command.return_id in self.returns:
            raise CommandRefusedError("DU01", f"return {command.return_id} was already received")
        requester = self.directory.settling_bank(command.requester)
        originals = []
        for reference in command.items:
            original_id = payment_item_id(reference.package_id, reference.transaction_id)
            item = self.items.get(original_id)
            if item is None:
                raise self._unknown(original_id)
            if item.payee != requester:
                raise CommandRefusedError(
                    "AG01", f"only the payee's clearing bank {item.payee} returns {item.item_id}"
                )
            if item.state == S.RETURNED:
                raise CommandRefusedError("ARDT", f"{item.item_id} was already returned")
            if item.state not in (S.NETTED, S.SETTLED):
                raise CommandRefusedError(
                    "AGNT", f"{item.item_id} is {item.state}; only netted payments are returned"
                )
            originals.append(item)
        self.returns[command.return_id] = self.business_date
        for original in originals:
            returned = PaymentItem(
                payment_item_id(command.return_id, original.transaction_id),
                command.return_id,
                original.transaction_id,
                original.business_type,
                False,
                original.payee,
                original.payer,
                original.amount,
                self.business_date,
                return_of=original.item_id,
            )
            self.items[returned.item_id] = returned
            original.move(S.RETURNED)
            original.returned_by = returned.item_id
            events.append(ItemChanged(original.item_id, original.state))
            returned.move(S.FORWARDED)
            self.netting.decide(returned, self.open_session, events)
        self.netting.release([original.payer for original in originals], self.open_session, events)

    # Operator commands -----------------------------------------------------------------

    def _set_schedule(self, command: SetSchedule, events: list[Event]) -> None:
        times = command.times
        if list(times) != sorted(set(times)) or (times and times[-1] >= self.day_switch):
            raise CommandRefusedError(
                "AGNT", "session times must be increasing and before the day switch"
            )
        self.schedule = times
        events.append(ScheduleChanged(tuple(value.strftime("%H:%M") for value in times)))

    def _account(self, code: str) -> Account:
        account = self.accounts.get(code)
        if account is None:
            raise CommandRefusedError("RC08", f"{code} is not a direct participant")
        return account

    def _set_cap(self, command: SetCap, events: list[Event]) -> None:
        account = self._account(command.participant)
        ring_fenced = account.ring_fenced if command.ring_fenced is None else command.ring_fenced
        if ring_fenced > account.settlement_balance:
            raise CommandRefusedError(
                "AGNT", "ring-fenced funds cannot exceed the settlement account balance"
            )
        account.set_parts(
            account.collateral if command.collateral is None else command.collateral,
            account.credit_line if command.credit_line is None else command.credit_line,
            ring_fenced,
        )
        events.append(CapChanged(account.code, account.cap, account.available))
        self.netting.refresh_level(account.code, events)
        self.netting.release([account.code], self.open_session, events)

    def _credit_account(self, command: CreditSettlementAccount, events: list[Event]) -> None:
        account = self._account(command.participant)
        account.settlement_balance += command.amount
        self.funds_credited += command.amount
        self.statements.book(
            account.code, self.clock, command.amount, self._local(self.clock).date(), None
        )
        events.append(FundsCredited(account.code, command.amount, account.settlement_balance))
        self._retry_settlement_queue(events)
        self._finish_days(events)

    # Queries ---------------------------------------------------------------------------

    def next_session_time(self) -> datetime | None:
        return self._next_close(self.clock)

    def next_switch_time(self) -> datetime:
        return self._next_switch(self.clock)

    def ended(self, item: PaymentItem) -> bool:
        return item.state in ENDED

    def fingerprint(self) -> tuple[object, ...]:
        """Everything the core knows, in a canonical form (for restart and replay checks)."""
        return (
            self.clock.isoformat(),
            self.business_date,
            self.open_session.session_id,
            self.schedule,
            tuple(
                (code, account.settlement_balance, account.cap, account.net_position)
                for code, account in sorted(self.accounts.items())
            ),
            tuple(
                (item.item_id, item.state, item.session_id, item.reason_code, item.returned_by)
                for item in self.items.values()
            ),
            tuple((code, tuple(queue)) for code, queue in sorted(self.netting.queues.items())),
            tuple(
                (
                    session.session_id,
                    session.closed,
                    tuple(sorted(session.nets.items())),
                    tuple(sorted(session.unsettled)),
                )
                for session in self.sessions.values()
            ),
            tuple(self.settlement_queue),
            tuple(self.reported_days),
            self.statements.fingerprint(),
            len(self.seen),
        )


def _give_reason(item: PaymentItem, reason_code: str | None) -> None:
    """An item cancelled, stopped or reversed keeps the request's reason. Requests logged
    before reasons were kept carry none, and their items stay as they were replayed then."""
    if reason_code is not None:
        item.reason_code = reason_code
