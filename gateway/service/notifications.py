"""From the core's session and day events to the notices the banks are owed (DESIGN §2, §3).

- A session closes: every clearing bank gets an admi.004 ``SCLS`` (the session and its business
  date), and each one with a net in it gets a camt.054: the net as one entry, ``BOOK`` when it
  was settled at the close, ``PDNG`` when it waits (a shortfall in the settlement queue, or a
  holiday's result kept for the first working day).
- A net that waited is settled later: its bank gets a camt.054 with the entry ``BOOK``.
- The day switches: every participant with an outbox (clearing banks and agencies) gets an
  admi.004 ``DSWT`` with the new and the previous business date, and every clearing bank a
  camt.053: its settlement account's statement of the day that ended (opening and closing
  balance, and one entry per booking: each session's net, funds the centre credited).

The item-level detail of a net is in the pacs.002 receipts each item already had (ACSP, with
the session in ``ClrSysRef``), so a camt.054 carries the net only: its size does not grow with
the session. ``EvtTm``, booking dates and the statement's period are when the event fell due
(a close at 10:00 is told as 10:00 even when no gateway ran then and it was caught up later);
the creation times (``CreDtTm``) are when the message was made.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, tzinfo

from pydantic import BaseModel

from gateway.clearing.events import (
    DaySwitched,
    Event,
    Movement,
    NetSettled,
    SessionClosed,
    StatementClosed,
)
from gateway.commands.outbound import (
    Balance,
    EndOfDayStatement,
    Entry,
    Notification,
    SessionNotification,
    Statement,
    SystemEvent,
)
from gateway.configuration.participants import ParticipantDirectory

SYSTEM_EVENT = "admi.004.001.02"
SESSION_NOTIFICATION = "camt.054.001.08"
STATEMENT = "camt.053.001.08"
NOTICE_EVENTS = (SessionClosed, NetSettled, DaySwitched, StatementClosed)
CURRENCY = "CNY"
ACCOUNT_NAME_LENGTH = 70
"""Max70Text: the settlement account's name in a camt.054."""


@dataclass(frozen=True)
class Notice:
    recipient: str
    message: str
    message_id: str
    document: BaseModel


def notices(
    events: Iterable[Event],
    directory: ParticipantDirectory,
    now: datetime,
    zone: tzinfo,
    new_message_id: Callable[[], str],
) -> list[Notice]:
    """``zone``: the scheme's, whose calendar dates are the booking dates. ``now``: when the
    messages are made. Most commands (a bank's message) cause none of these events: nothing is
    built."""
    listed = [event for event in events if isinstance(event, NOTICE_EVENTS)]
    if not listed:
        return []
    settled_now = {
        (event.session_id, event.participant)
        for event in listed
        if isinstance(event, NetSettled) and event.amount
    }
    closed_now = {event.session_id for event in listed if isinstance(event, SessionClosed)}
    clearing_banks = [entry.code for entry in directory.participants.direct]
    result: list[Notice] = []
    for event in listed:
        if isinstance(event, SessionClosed):
            for bank in clearing_banks:
                result.append(Notice(bank, SYSTEM_EVENT, new_message_id(), _session_closed(event)))
            for participant, net in sorted(event.nets.items()):
                if not net:
                    continue
                booked = (event.session_id, participant) in settled_now
                message_id = new_message_id()
                net_notice = _net(
                    message_id,
                    directory,
                    participant,
                    event.session_id,
                    net,
                    "BOOK" if booked else "PDNG",
                    event.settlement_date,
                    now,
                )
                result.append(Notice(participant, SESSION_NOTIFICATION, message_id, net_notice))
        elif isinstance(event, NetSettled) and event.amount:
            if event.session_id in closed_now:
                continue  # told with the close, as BOOK
            message_id = new_message_id()
            net_notice = _net(
                message_id,
                directory,
                event.participant,
                event.session_id,
                event.amount,
                "BOOK",
                event.at.astimezone(zone).date(),
                now,
            )
            result.append(Notice(event.participant, SESSION_NOTIFICATION, message_id, net_notice))
        elif isinstance(event, DaySwitched):
            for recipient in directory.connecting:
                result.append(
                    Notice(recipient, SYSTEM_EVENT, new_message_id(), _day_switched(event))
                )
        elif isinstance(event, StatementClosed):
            message_id = new_message_id()
            statement = _statement(message_id, directory, event, now, zone)
            result.append(Notice(event.participant, STATEMENT, message_id, statement))
    return result


def _session_closed(event: SessionClosed) -> SystemEvent:
    return SystemEvent(
        event_code="SCLS",
        parameters=(f"SESSION={event.session_id}", f"BIZDT={event.business_date}"),
        description=(
            f"Netting session {event.session_id} of business date {event.business_date} closed "
            f"with {event.items} items; net amounts submitted for settlement on "
            f"{event.settlement_date}."
        ),
        event_time=event.at,
    )


def _day_switched(event: DaySwitched) -> SystemEvent:
    return SystemEvent(
        event_code="DSWT",
        parameters=(
            f"BIZDT={event.business_date}",
            f"PRVBIZDT={event.previous_business_date}",
        ),
        description=(
            f"Business day switched from {event.previous_business_date} to "
            f"{event.business_date}; business received from now on belongs to "
            f"{event.business_date}."
        ),
        event_time=event.at,
    )


def _net(
    message_id: str,
    directory: ParticipantDirectory,
    participant: str,
    session_id: str,
    net: int,
    status: str,
    settlement_date: date,
    now: datetime,
) -> SessionNotification:
    """One session's net for one clearing bank: positive is a net credit."""
    return SessionNotification(
        message_id=message_id,
        created_at=now,
        notifications=(
            Notification(
                notification_id=f"N{session_id.replace('-', '')}{participant}{status}",
                created_at=now,
                account=participant,
                account_name=_account_name(directory, participant),
                entries=(
                    Entry(
                        amount=abs(net),
                        currency=CURRENCY,
                        direction=_direction(net),
                        status=status,
                        booking_date=settlement_date if status == "BOOK" else None,
                        value_date=settlement_date,
                        transaction_code="NETTING" if status == "PDNG" else "SETTLEMENT",
                        information=session_id,
                    ),
                ),
            ),
        ),
    )


def _statement(
    message_id: str,
    directory: ParticipantDirectory,
    event: StatementClosed,
    now: datetime,
    zone: tzinfo,
) -> EndOfDayStatement:
    """One settlement account's statement of a business day (``Id`` is the day and the
    account, ``ElctrncSeqNb`` counts the account's statements: a gap shows one missing)."""
    return EndOfDayStatement(
        message_id=message_id,
        created_at=now,
        statements=(
            Statement(
                statement_id=f"S{event.business_date:%Y%m%d}{event.participant}",
                sequence_number=event.sequence,
                created_at=now,
                period_from=event.period_from,
                period_to=event.period_to,
                account=event.participant,
                account_name=_account_name(directory, event.participant),
                balances=(
                    _balance("OPBD", event.opening_balance, event.period_from.astimezone(zone)),
                    _balance("CLBD", event.closing_balance, event.period_to.astimezone(zone)),
                ),
                entries=tuple(_booking(movement, zone) for movement in event.movements),
            ),
        ),
    )


def _balance(code: str, amount: int, at: datetime) -> Balance:
    return Balance(
        code=code,
        amount=abs(amount),
        currency=CURRENCY,
        direction=_direction(amount),
        on=at.date(),
    )


def _booking(movement: Movement, zone: tzinfo) -> Entry:
    return Entry(
        amount=abs(movement.amount),
        currency=CURRENCY,
        direction=_direction(movement.amount),
        status="BOOK",
        booking_date=movement.at.astimezone(zone).date(),
        value_date=movement.value_date,
        transaction_code="SETTLEMENT" if movement.session_id else "FUNDS",
        information=movement.session_id or "funds credited by the clearing centre",
    )


def _account_name(directory: ParticipantDirectory, participant: str) -> str:
    name = directory.name(participant) or participant
    return f"{name} settlement account"[:ACCOUNT_NAME_LENGTH]


def _direction(amount: int) -> str:
    """``CdtDbtInd`` of a signed amount (a net, a booking, a balance): positive or nothing
    credits the settlement account."""
    return "CRDT" if amount >= 0 else "DBIT"
