"""From the core's session and day events to the notices the banks are owed (DESIGN §2, §3).

- A session closes: every clearing bank gets an admi.004 ``SCLS`` (the session and its business
  date), and each one with a net in it gets a camt.054: the net as one entry, ``BOOK`` when it
  was settled at the close, ``PDNG`` when it waits (a shortfall in the settlement queue, or a
  holiday's result kept for the first working day).
- A net that waited is settled later: its bank gets a camt.054 with the entry ``BOOK``.
- The day switches: every participant with an outbox (clearing banks and agencies) gets an
  admi.004 ``DSWT`` with the new and the previous business date.

The item-level detail of a net is in the pacs.002 receipts each item already had (ACSP, with
the session in ``ClrSysRef``), so a camt.054 carries the net only: its size does not grow with
the session. ``EvtTm`` and the creation times are when the gateway saw the event: for a close
that fell due while no gateway ran, the time it caught up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, tzinfo

from pydantic import BaseModel

from gateway.clearing.events import DaySwitched, Event, NetSettled, SessionClosed
from gateway.commands.outbound import (
    Entry,
    Notification,
    SessionNotification,
    SystemEvent,
)
from gateway.configuration.participants import ParticipantDirectory

SYSTEM_EVENT = "admi.004.001.02"
SESSION_NOTIFICATION = "camt.054.001.08"
NOTICE_EVENTS = (SessionClosed, NetSettled, DaySwitched)
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
    """``zone``: the scheme's, whose calendar date at ``now`` books a net settled after its
    close. Most commands (a bank's message) cause none of these events: nothing is built."""
    listed = [event for event in events if isinstance(event, NOTICE_EVENTS)]
    if not listed:
        return []
    today = now.astimezone(zone).date()
    settled_now = {
        (event.session_id, event.participant)
        for event in listed
        if isinstance(event, NetSettled) and event.amount
    }
    closed_now = {event.session_id for event in listed if isinstance(event, SessionClosed)}
    participants = directory.participants
    clearing_banks = [entry.code for entry in participants.direct]
    with_outbox = [*clearing_banks, *(entry.code for entry in participants.special)]
    result: list[Notice] = []
    for event in listed:
        if isinstance(event, SessionClosed):
            for bank in clearing_banks:
                result.append(
                    Notice(bank, SYSTEM_EVENT, new_message_id(), _session_closed(event, now))
                )
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
                today,
                now,
            )
            result.append(Notice(event.participant, SESSION_NOTIFICATION, message_id, net_notice))
        elif isinstance(event, DaySwitched):
            for recipient in with_outbox:
                result.append(
                    Notice(recipient, SYSTEM_EVENT, new_message_id(), _day_switched(event, now))
                )
    return result


def _session_closed(event: SessionClosed, now: datetime) -> SystemEvent:
    return SystemEvent(
        event_code="SCLS",
        parameters=(f"SESSION={event.session_id}", f"BIZDT={event.business_date}"),
        description=(
            f"Netting session {event.session_id} of business date {event.business_date} closed "
            f"with {event.items} items; net amounts submitted for settlement on "
            f"{event.settlement_date}."
        ),
        event_time=now,
    )


def _day_switched(event: DaySwitched, now: datetime) -> SystemEvent:
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
        event_time=now,
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
    name = directory.name(participant) or participant
    return SessionNotification(
        message_id=message_id,
        created_at=now,
        notifications=(
            Notification(
                notification_id=f"N{session_id.replace('-', '')}{participant}{status}",
                created_at=now,
                account=participant,
                account_name=f"{name} settlement account"[:ACCOUNT_NAME_LENGTH],
                entries=(
                    Entry(
                        amount=abs(net),
                        currency="CNY",
                        direction="CRDT" if net > 0 else "DBIT",
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
