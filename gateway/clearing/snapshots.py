"""Snapshots of the clearing core: its whole state as plain JSON values, and back.

The core's state is its genesis plus the commands it applied, so a snapshot adds nothing the
log does not hold: it lets a start restore the state as it was after a given command and
replay only the commands logged after it, instead of every command since the genesis. What
the genesis fixes (participants, settings, the rules version) is not in the snapshot; it is
restored onto a core built from the genesis. Every order the core's decisions depend on (the
items, the sessions, the queues, the deadline heap) is kept as it was, so a restored core
decides exactly as the core it was taken from would have.
"""

from __future__ import annotations

from collections import defaultdict, deque
from datetime import date, datetime, time
from typing import Any

from gateway.clearing.accounts import WarningLevel
from gateway.clearing.core import ClearingCore
from gateway.clearing.events import Movement
from gateway.clearing.items import ItemState, Package, PaymentItem, Receipt
from gateway.clearing.sessions import Session
from gateway.clearing.statements import OpenStatement

SNAPSHOT_FORMAT = 1
"""The layout of a snapshot; a snapshot of another layout is not restored (the log is)."""


class SnapshotError(Exception):
    """A snapshot that does not fit the core it is restored onto."""


def _moment(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _day(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _to_moment(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _to_day(value: str | None) -> date | None:
    return None if value is None else date.fromisoformat(value)


class _DayTexts(dict[date, str]):
    """The ISO text of each date, made once per capture: a snapshot names the same few dates
    tens of thousands of times (taking the capture's time, which the writer waits for)."""

    def __missing__(self, day: date) -> str:
        text = self[day] = day.isoformat()
        return text


def _item(item: PaymentItem, days: _DayTexts) -> list[Any]:
    deadline = item.deadline
    return [
        item.item_id,
        item.package_id,
        item.transaction_id,
        item.business_type,
        item.real_time,
        item.payer,
        item.payee,
        item.amount,
        days[item.business_date],
        item.state,  # a str (StrEnum): its value in JSON
        item.session_id,
        None if deadline is None else deadline.isoformat(),
        item.reason_code,
        item.returned_by,
        item.return_of,
    ]


def _to_item(row: list[Any]) -> PaymentItem:
    (
        item_id,
        package_id,
        transaction_id,
        business_type,
        real_time,
        payer,
        payee,
        amount,
        business_date,
        state,
        session,
        deadline,
        reason_code,
        returned_by,
        return_of,
    ) = row
    return PaymentItem(
        item_id,
        package_id,
        transaction_id,
        business_type,
        real_time,
        payer,
        payee,
        amount,
        date.fromisoformat(business_date),
        ItemState(state),
        session,
        _to_moment(deadline),
        reason_code,
        returned_by,
        return_of,
    )


def _session(session: Session) -> dict[str, Any]:
    return {
        "id": session.session_id,
        "business_date": session.business_date.isoformat(),
        "sequence": session.sequence,
        "items": list(session.item_ids),
        "bilateral": [
            [payer, payee, amount] for (payer, payee), amount in session.bilateral.items()
        ],
        "closed": session.closed,
        "nets": dict(session.nets),
        "settlement_date": _day(session.settlement_date),
        "unsettled": sorted(session.unsettled),
    }


def _to_session(value: dict[str, Any]) -> Session:
    bilateral: defaultdict[tuple[str, str], int] = defaultdict(int)
    for payer, payee, amount in value["bilateral"]:
        bilateral[(payer, payee)] = amount
    return Session(
        value["id"],
        date.fromisoformat(value["business_date"]),
        value["sequence"],
        list(value["items"]),
        bilateral,
        value["closed"],
        dict(value["nets"]),
        _to_day(value["settlement_date"]),
        set(value["unsettled"]),
    )


def _statement(statement: OpenStatement) -> dict[str, Any]:
    return {
        "opened_at": statement.opened_at.isoformat(),
        "opening_balance": statement.opening_balance,
        "sequence": statement.sequence,
        "movements": [
            [
                movement.at.isoformat(),
                movement.amount,
                movement.value_date.isoformat(),
                movement.session_id,
            ]
            for movement in statement.movements
        ],
    }


def _to_statement(value: dict[str, Any]) -> OpenStatement:
    return OpenStatement(
        datetime.fromisoformat(value["opened_at"]),
        value["opening_balance"],
        value["sequence"],
        [
            Movement(datetime.fromisoformat(at), amount, date.fromisoformat(value_date), session)
            for at, amount, value_date, session in value["movements"]
        ],
    )


def capture(core: ClearingCore) -> dict[str, Any]:
    """The core's state after the last command it applied, as JSON values that share nothing
    with the core (so they may be written out while the core goes on)."""
    days = _DayTexts()
    return {
        "format": SNAPSHOT_FORMAT,
        "rules": core.rules,
        "clock": core.clock.isoformat(),
        "business_date": core.business_date.isoformat(),
        "schedule": [value.isoformat() for value in core.schedule],
        "accounts": {
            code: [
                account.settlement_balance,
                account.collateral,
                account.credit_line,
                account.ring_fenced,
                account.net_position,
            ]
            for code, account in core.accounts.items()
        },
        "levels": {code: level.value for code, level in core.netting.levels.items()},
        "queues": {code: list(queue) for code, queue in core.netting.queues.items()},
        "items": [_item(item, days) for item in core.items.values()],
        "packages": [
            [
                package.package_id,
                package.sender,
                package.receiver,
                package.business_type,
                package.debit,
                package.real_time,
                list(package.item_ids),
            ]
            for package in core.packages.values()
        ],
        "packages_by_message": {
            message: list(packages) for message, packages in core.packages_by_message.items()
        },
        "receipts": [
            [receipt.receipt_id, receipt.sender, receipt.package_id, list(receipt.item_ids)]
            for receipt in core.receipts.values()
        ],
        "returns": {key: days[day] for key, day in core.returns.items()},
        "statements": {
            code: _statement(statement) for code, statement in core.statements.current.items()
        },
        "sessions": [_session(session) for session in core.sessions.values()],
        "open_session": core.open_session.session_id,
        "awaiting_settlement": [session.session_id for session in core.awaiting_settlement],
        "settlement_queue": [list(entry) for entry in core.settlement_queue],
        "deadlines": [[moment.isoformat(), item_id] for moment, item_id in core.deadlines],
        "seen": {key: days[day] for key, day in core.seen.items()},
        "funds_credited": core.funds_credited,
        "end_of_day_pending": sorted(day.isoformat() for day in core.eod_pending),
        "reported_days": [day.isoformat() for day in core.reported_days],
        "retire_through": _day(core.retire_through),
        "retired_through": _day(core.retired_through),
    }


def restore(core: ClearingCore, state: dict[str, Any]) -> None:
    """Put ``state`` (from ``capture``) onto ``core``, a core just built from the same genesis.

    Raises SnapshotError when the snapshot is of another layout, another rules version or
    other participants; the core is then unusable and the caller replays the log instead."""
    try:
        layout = state["format"]
        if layout != SNAPSHOT_FORMAT:
            raise SnapshotError(f"layout {layout!r}, not {SNAPSHOT_FORMAT}")
        if state["rules"] != core.rules:
            raise SnapshotError(f"rules version {state['rules']}, the ledger's is {core.rules}")
        if set(state["accounts"]) != set(core.accounts):
            raise SnapshotError("its settlement accounts are not the genesis participants'")
        _restore(core, state)
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise SnapshotError(f"it does not restore: {type(error).__name__}: {error}") from error


def _restore(core: ClearingCore, state: dict[str, Any]) -> None:
    core.clock = datetime.fromisoformat(state["clock"])
    core.business_date = date.fromisoformat(state["business_date"])
    core.schedule = tuple(time.fromisoformat(value) for value in state["schedule"])
    for code, (balance, collateral, credit_line, ring_fenced, position) in state[
        "accounts"
    ].items():
        account = core.accounts[code]
        account.settlement_balance = balance
        account.set_parts(collateral, credit_line, ring_fenced)
        account.net_position = position
    netting = core.netting
    for code in core.accounts:
        netting.set_thresholds(code)
        netting.levels[code] = WarningLevel(state["levels"][code])
        netting.queues[code] = deque(state["queues"][code])
    # The netting book shares the core's item dictionary: filled in place.
    core.items.clear()
    for row in state["items"]:
        item = _to_item(row)
        core.items[item.item_id] = item
    core.packages.clear()
    for package_id, sender, receiver, business_type, debit, real_time, item_ids in state[
        "packages"
    ]:
        core.packages[package_id] = Package(
            package_id, sender, receiver, business_type, debit, real_time, list(item_ids)
        )
    core.packages_by_message.clear()
    core.packages_by_message.update(
        {message: list(packages) for message, packages in state["packages_by_message"].items()}
    )
    core.receipts.clear()
    core.receipts_by_package.clear()
    for receipt_id, sender, package_id, item_ids in state["receipts"]:
        core.receipts[receipt_id] = Receipt(receipt_id, sender, package_id, list(item_ids))
        core.receipts_by_package.setdefault(package_id, []).append(receipt_id)
    core.returns = {key: date.fromisoformat(day) for key, day in state["returns"].items()}
    for code, value in state["statements"].items():
        core.statements.current[code] = _to_statement(value)
    core.sessions.clear()
    for value in state["sessions"]:
        session = _to_session(value)
        core.sessions[session.session_id] = session
    core.open_session = core.sessions[state["open_session"]]
    core.awaiting_settlement = [core.sessions[key] for key in state["awaiting_settlement"]]
    core.settlement_queue = deque(
        (session, participant, debit) for session, participant, debit in state["settlement_queue"]
    )
    core.deadlines = [
        (datetime.fromisoformat(moment), item_id) for moment, item_id in state["deadlines"]
    ]
    core.seen = {key: date.fromisoformat(day) for key, day in state["seen"].items()}
    core.funds_credited = state["funds_credited"]
    core.eod_pending = {date.fromisoformat(day) for day in state["end_of_day_pending"]}
    core.reported_days = [date.fromisoformat(day) for day in state["reported_days"]]
    core.retire_through = _to_day(state["retire_through"])
    core.retired_through = _to_day(state["retired_through"])
