"""``isogw core …``: the clearing operator's commands over the clearing service.

Queries show the state as of the last logged command (``as_of``); operator commands are
logged like any other command, so they count for restarts, audits and other processes. They
work on the ledger a gateway keeps and never start one where there is none (a command run in
the wrong folder says so): ``isogw core init`` starts a ledger on purpose.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, fields
from datetime import date, datetime, time, tzinfo
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TextIO

from gateway.clearing.commands import (
    CloseSession,
    CreditSettlementAccount,
    SetCap,
    SetSchedule,
    SwitchDay,
)
from gateway.clearing.core import ClearingCore
from gateway.clearing.events import DaySwitched, Event, SessionClosed
from gateway.clearing.items import ItemState
from gateway.composition import Clearing, ensure_keys, open_clearing, operator_messages
from gateway.configuration.participants import load_participants
from gateway.configuration.settings import load_settings
from gateway.iso.converters import from_amount
from gateway.service.clock import Clock
from gateway.start_errors import NoLedgerError

QUERIES = ("status", "positions", "sessions")
MAXIMUM_LISTED = 10_000
"""Refusals one ``core refusals`` (transactions one ``core transactions``) lists at most."""


def _listed_count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        count = 0
    if not 1 <= count <= MAXIMUM_LISTED:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a whole number from 1 to {MAXIMUM_LISTED}"
        )
    return count


def _business_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _add_limit(listing: argparse.ArgumentParser) -> None:
    listing.add_argument(
        "--limit",
        type=_listed_count,
        default=50,
        help=f"how many, 1 to {MAXIMUM_LISTED:,} (default 50)",
    )


def add_core_commands(commands: Any) -> None:
    core = commands.add_parser("core", help="query and operate the clearing core")
    actions = core.add_subparsers(dest="action", required=True)
    text = (
        "start a new ledger (and development keys, if there are none) in the state folder, "
        "as the first `isogw serve` does; refused where there is a ledger already"
    )
    actions.add_parser("init", help=text, description=text)
    for name, text in (
        ("status", "business date, open session, next session and day switch"),
        ("positions", "caps, net positions and available amounts per direct participant"),
        ("sessions", "netting sessions of the ledger and their settlement"),
        ("close-session", "close the open netting session now"),
        ("day-switch", "switch to the next business day now"),
    ):
        action = actions.add_parser(name, help=text, description=text)
        action.add_argument("--json", action="store_true", help="print JSON")
    text = (
        "replay the whole log and compare each stored checkpoint with the state the log gives "
        "at its sequence, and the record of retired items with the items the log retires "
        "(exit 1 if one differs)"
    )
    verify = actions.add_parser("verify-checkpoints", help=text, description=text)
    verify.add_argument("--json", action="store_true", help="print JSON")
    schedule = actions.add_parser("set-schedule", help="replace today's session times")
    schedule.add_argument("times", nargs="*", metavar="HH:MM")
    schedule.add_argument("--json", action="store_true")
    cap = actions.add_parser("set-cap", help="change a participant's cap components (CNY)")
    cap.add_argument("participant")
    cap.add_argument("--collateral")
    cap.add_argument("--credit-line")
    cap.add_argument("--ring-fenced")
    cap.add_argument("--json", action="store_true")
    message = actions.add_parser(
        "message",
        help="a participant's message as it was received (signed), or the answer it got",
        description=(
            "Print a message a participant submitted, byte for byte as it was received "
            "(its XML signature included, so it can be checked again, e.g. with xmlsec1), or "
            "with --answer the gateway's signed answer. Kept: every message that reached the "
            "clearing core."
        ),
    )
    message.add_argument("participant", help="the sender's bank code")
    message.add_argument("message_id", help="the message id (AppHdr/BizMsgIdr)")
    message.add_argument("--answer", action="store_true", help="print the answer instead")
    message.add_argument("--json", action="store_true", help="print JSON with the details")
    refusals = actions.add_parser(
        "refusals",
        help="submissions refused before the clearing core, newest first",
        description=(
            "List the submissions refused before they reached the clearing core (too large, "
            "not XML, signature, schema, business rules, a message id reused for other "
            "content, a fault of the gateway's own), newest first: when, who, from where, "
            "the reason code and text of the admi.002 they got, and the SHA-256 and size of "
            "what was sent."
        ),
    )
    refusals.add_argument("--participant", help="only this sender's (bank code)")
    _add_limit(refusals)
    refusals.add_argument("--json", action="store_true", help="print JSON, answers included")
    transactions = actions.add_parser(
        "transactions",
        help="payment items with the parties' accounts and names masked, newest first",
        description=(
            "List payment items, newest first: those the clearing core holds, then those it "
            "has retired (from their record, marked retired): amount, banks, state, "
            "session, the payer's and payee's accounts and names masked (first and last four "
            "characters of an account, first character of a name), and where the message they "
            "came in was sent from and how it was verified. The signed message itself, "
            "unmasked, is `isogw core message SENDER MESSAGE_ID`."
        ),
    )
    transactions.add_argument(
        "--participant", help="only items this bank pays, is paid by or sent (bank code)"
    )
    transactions.add_argument(
        "--date", type=_business_date, help="only items of this business date (YYYY-MM-DD)"
    )
    transactions.add_argument(
        "--state", choices=[state.value for state in ItemState], help="only items in this state"
    )
    transactions.add_argument(
        "--message",
        nargs=2,
        metavar=("SENDER", "MESSAGE_ID"),
        help="only the items of this message (the sender's bank code, AppHdr/BizMsgIdr)",
    )
    _add_limit(transactions)
    transactions.add_argument("--json", action="store_true", help="print JSON")
    unsigned = actions.add_parser(
        "unsigned",
        help="outbox messages committed but not yet signed, and what holds them",
        description=(
            "List the long messages (receipts of large packages, long statements) committed to "
            "an outbox but not yet signed, oldest first: to whom, their type and id, when "
            "they were written, how many of that bank's later messages wait for them, and "
            "whether their document can be read at all. Gateway processes sign them within "
            "seconds; one listed for longer failed to sign (the log says why: "
            "event=signing-failed). With --sign, sign them now with the gateway's key, as "
            "the gateway would (after the cause is mended). Exit 1 while any is left waiting."
        ),
    )
    unsigned.add_argument("--sign", action="store_true", help="sign them now")
    _add_limit(unsigned)
    unsigned.add_argument("--json", action="store_true", help="print JSON")
    funds = actions.add_parser("credit-account", help="funds arrive on a settlement account")
    funds.add_argument("participant")
    funds.add_argument("amount", help="CNY, e.g. 1000000.00")
    funds.add_argument("--json", action="store_true")


class OperatorError(Exception):
    """A bad operator argument (exit 2)."""


def _money(text: str | None, what: str) -> int | None:
    if text is None:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation as error:
        raise OperatorError(f"{what}: {text!r} is not an amount") from error
    if value < 0 or value.as_tuple().exponent < -2:  # type: ignore[operator]
        raise OperatorError(f"{what}: {text} must be non-negative with at most 2 decimals")
    return int(value * 100)


def _times(texts: Sequence[str]) -> tuple[time, ...]:
    try:
        return tuple(time.fromisoformat(text) for text in texts)
    except ValueError as error:
        raise OperatorError(f"times are HH:MM: {error}") from error


def status(core: ClearingCore) -> dict[str, Any]:
    next_session = core.next_session_time()
    queued = [core.netting.queued(code) for code in core.accounts]
    return {
        "as_of": core.clock.astimezone(core.zone).isoformat(),
        "business_date": core.business_date.isoformat(),
        "system_state": "open",
        "open_session": core.open_session.session_id,
        "next_session_close": next_session.isoformat() if next_session else None,
        "next_day_switch": core.next_switch_time().isoformat(),
        "schedule": [value.strftime("%H:%M") for value in core.schedule],
        "queued_items": sum(count for count, _ in queued),
        "queued_amount": from_amount(sum(amount for _, amount in queued)),
        "settlement_queue": [
            {"session": key, "participant": code, "amount": from_amount(amount)}
            for key, code, amount in core.settlement_queue
        ],
        "end_of_day_pending": [day.isoformat() for day in sorted(core.eod_pending)],
        "rules_version": core.rules,
        # Retirement: what the core holds, the last business day it retired business of, and
        # the day it is retiring through at the clock's ticks (None: nothing left to retire).
        "items_in_memory": len(core.items),
        "retired_through": _day_text(core.retired_through),
        "retiring_through": _day_text(core.retire_through),
    }


def _day_text(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


def positions(core: ClearingCore) -> list[dict[str, Any]]:
    rows = []
    for code, account in sorted(core.accounts.items()):
        count, amount = core.netting.queued(code)
        rows.append(
            {
                "participant": code,
                "name": core.directory.name(code),
                "settlement_balance": from_amount(account.settlement_balance),
                "collateral": from_amount(account.collateral),
                "credit_line": from_amount(account.credit_line),
                "ring_fenced": from_amount(account.ring_fenced),
                "cap": from_amount(account.cap),
                "net_position": from_amount(account.net_position),
                "available": from_amount(account.available),
                "warning_level": core.netting.levels[code].value,
                "queued_count": count,
                "queued_amount": from_amount(amount),
            }
        )
    return rows


def sessions(core: ClearingCore) -> list[dict[str, Any]]:
    rows = []
    for session in core.sessions.values():
        if not session.closed:
            state = "open"
        elif session.settlement_date is None:
            state = "unbalanced (held)"
        elif session.unsettled:
            state = "awaiting settlement"
        else:
            state = "settled"
        rows.append(
            {
                "session": session.session_id,
                "business_date": session.business_date.isoformat(),
                "state": state,
                "items": len(session.item_ids),
                "settlement_date": (
                    session.settlement_date.isoformat() if session.settlement_date else None
                ),
                "nets": {code: from_amount(net) for code, net in session.nets.items()},
            }
        )
    return rows


def _print_table(rows: list[dict[str, Any]], columns: Sequence[str], out: TextIO) -> None:
    cells = [[str(row.get(column, "")) for column in columns] for row in rows]
    widths = [
        max([len(column), *(len(line[index]) for line in cells)])
        for index, column in enumerate(columns)
    ]
    out.write(
        "  ".join(column.ljust(width) for column, width in zip(columns, widths, strict=True)) + "\n"
    )
    for line in cells:
        out.write(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) + "\n"
        )


MONEY_FIELDS = frozenset(
    {
        "amount",
        "cap",
        "available",
        "settlement_balance",
        "shortfall",
        "opening_balance",
        "closing_balance",
    }
)


def _readable(fields: dict[str, Any], zone: tzinfo) -> dict[str, Any]:
    """Minor units as CNY amounts and times in the centre's zone, for people."""
    shown: dict[str, Any] = {}
    for key, value in fields.items():
        if key in MONEY_FIELDS and isinstance(value, int):
            shown[key] = from_amount(value)
        elif key == "nets" and isinstance(value, dict):
            shown[key] = {code: from_amount(net) for code, net in value.items()}
        elif isinstance(value, datetime):
            shown[key] = value.astimezone(zone).isoformat()
        elif isinstance(value, list | tuple) and all(isinstance(part, dict) for part in value):
            shown[key] = [_readable(part, zone) for part in value]
        else:
            shown[key] = value
    return shown


def _print_events(events: list[Event], out: TextIO, zone: tzinfo) -> None:
    if not events:
        out.write("nothing changed\n")
    for event in events:
        fields = event.as_dict()
        kind = fields.pop("kind")
        shown = _readable(fields, zone)
        out.write(f"{kind}: {json.dumps(shown, ensure_ascii=False, default=str)}\n")


def _date_kept(core: ClearingCore, closed: str) -> str:
    """Why ``day-switch`` left the business date where it was: it is already the first working
    day after today's calendar date, so there is no day to switch to."""
    local = core.clock.astimezone(core.zone)
    today = local.date()
    switch = core.day_switch.strftime("%H:%M")
    if not core.calendar.is_working_day(today):
        reason = f"today, {today}, is not a working day"
    elif local.time() >= core.day_switch:
        reason = f"it is past today's day switch time, {switch}"
    else:
        reason = "the day has already been switched today"
    return (
        f"note: the business date stays {core.business_date}: it is already the first working "
        f"day after {today} ({reason}). The command closed session {closed} and opened "
        f"{core.open_session.session_id}; the next day switch is at "
        f"{core.next_switch_time().isoformat()}.\n"
    )


async def _initialise(config: Path, out: TextIO, clock: Clock) -> int:
    """A new ledger where there is none (its genesis: the configured participants and
    settings), and development keys if the state folder has none."""
    try:
        existing = await open_clearing(config, clock, replay=False, create=False)
    except NoLedgerError:
        pass
    else:
        await existing.service.close()
        raise OperatorError(f"there is a ledger at {existing.database} already; nothing changed")
    clearing = await open_clearing(config, clock, replay=False)
    await clearing.service.close()
    out.write(f"a new ledger at {clearing.database}\n")
    settings = load_settings(config)
    keys = ensure_keys(load_participants(settings.resolve(settings.paths.participants)), clock)
    out.write(f"keys in {keys.folder}\n")
    return 0


async def _run(config: Path, arguments: argparse.Namespace, out: TextIO, clock: Clock) -> int:
    if arguments.action == "init":
        return await _initialise(config, out, clock)
    # An operator's command works on the gateway's ledger: run in the wrong folder, it must
    # say so rather than start an empty ledger there and report its empty figures.
    clearing = await open_clearing(config, clock, create=False)
    service = clearing.service
    try:
        action = arguments.action
        if action == "message":
            return await _message(service, arguments, out)
        if action == "refusals":
            return await _refusals(service, arguments, out)
        if action == "transactions":
            return await _transactions(config, service, arguments, out)
        if action == "verify-checkpoints":
            return await _verify_checkpoints(service, arguments, out)
        if action == "unsigned":
            return await _unsigned(config, clearing, arguments, out)
        if action in QUERIES:
            view: Callable[[ClearingCore], Any] = {
                "status": status,
                "positions": positions,
                "sessions": sessions,
            }[action]
            result = view(service.core)
            if action == "status":
                result["configuration_differs_from_ledger"] = service.genesis_differs
            if arguments.json:
                json.dump(result, out, ensure_ascii=False, indent=2)
                out.write("\n")
            elif action == "status":
                for key, value in result.items():
                    out.write(f"{key}: {value}\n")
                if service.genesis_differs:
                    out.write(
                        "note: config/ differs from the settings this ledger started with; the "
                        "ledger keeps its own (change caps and the schedule with isogw core)\n"
                    )
            elif action == "positions":
                _print_table(
                    result,
                    [
                        "participant",
                        "cap",
                        "net_position",
                        "available",
                        "warning_level",
                        "queued_count",
                        "queued_amount",
                        "settlement_balance",
                    ],
                    out,
                )
            else:
                _print_table(
                    result, ["session", "business_date", "state", "items", "settlement_date"], out
                )
            return 0
        command_id = f"operator-{uuid.uuid4()}"
        at = clock.now()
        if action == "close-session":
            command: Any = CloseSession(command_id=command_id, at=at)
        elif action == "day-switch":
            command = SwitchDay(command_id=command_id, at=at)
        elif action == "set-schedule":
            command = SetSchedule(command_id=command_id, at=at, times=_times(arguments.times))
        elif action == "set-cap":
            command = SetCap(
                command_id=command_id,
                at=at,
                participant=arguments.participant,
                collateral=_money(arguments.collateral, "--collateral"),
                credit_line=_money(arguments.credit_line, "--credit-line"),
                ring_fenced=_money(arguments.ring_fenced, "--ring-fenced"),
            )
        else:
            amount = _money(arguments.amount, "amount")
            command = CreditSettlementAccount(
                command_id=command_id, at=at, participant=arguments.participant, amount=amount or 0
            )
        # Built only for a command that changes something: the encoder and the gateway's key
        # sign the receipts the command's effects cause.
        messages = operator_messages(config, clearing)
        applied, delivered = await messages.operate(command)
        events = applied.events
        if arguments.json:
            json.dump(
                [event.as_dict() for event in events],
                out,
                ensure_ascii=False,
                indent=2,
                default=str,
            )
            out.write("\n")
        else:
            if applied.passed:
                out.write(
                    f"first, the time passed to {at.astimezone(service.core.zone).isoformat()} "
                    "(what was due by then and not yet done):\n"
                )
                _print_events(applied.passed, out, service.core.zone)
                out.write("then the command:\n")
            _print_events(applied.own, out, service.core.zone)
            if delivered:
                out.write(
                    "the messages this caused (receipts, notices, statements) are in the "
                    "outboxes of "
                    f"{', '.join(sorted(delivered))}\n"
                )
        refused = any(event.kind == "command-refused" for event in events)
        closed = [event for event in applied.own if isinstance(event, SessionClosed)]
        if (
            action == "day-switch"
            and closed
            and not arguments.json
            and not any(isinstance(event, DaySwitched) for event in applied.own)
        ):
            out.write(_date_kept(service.core, closed[0].session_id))
        return 1 if refused else 0
    finally:
        await service.close()


async def _verify_checkpoints(service: Any, arguments: argparse.Namespace, out: TextIO) -> int:
    from gateway.service.checkpoint_verification import verify_ledger

    verdicts = await verify_ledger(service)
    record = verdicts.retired_items
    if arguments.json:
        json.dump(
            {
                "checkpoints": [asdict(verdict) for verdict in verdicts.checkpoints],
                "retired_items": asdict(record),
            },
            out,
            indent=2,
        )
        out.write("\n")
        return 0 if verdicts.matches else 1
    for verdict in verdicts.checkpoints:
        out.write(
            f"checkpoint {verdict.sequence} (business date {verdict.business_date}): "
            f"{verdict.verdict}\n"
        )
    failed = [verdict for verdict in verdicts.checkpoints if not verdict.matches]
    if not verdicts.checkpoints:
        out.write("no checkpoint is stored yet (one is stored at every day switch)\n")
    elif failed:
        out.write(
            f"{len(failed)} of {len(verdicts.checkpoints)} checkpoints do not match the log; a "
            "start restores the newest whole one, so stop the gateway and report this (the "
            "log is the record, and is unchanged)\n"
        )
    else:
        out.write(f"{len(verdicts.checkpoints)} checkpoints, all match the log\n")
    if record.matches:
        out.write(f"record of retired items: {record.recorded:,} items, as the log retires them\n")
    else:
        out.write(
            f"record of retired items: {record.verdict} ({record.recorded:,} recorded, the "
            f"log retires {record.retired:,}); `core transactions` shows retired items from "
            "this record, so report this (the log is the record, and is unchanged)\n"
        )
    return 0 if verdicts.matches else 1


async def _unsigned(
    config: Path, clearing: Clearing, arguments: argparse.Namespace, out: TextIO
) -> int:
    # Storage: not loaded by validate.
    from gateway.service.notice_delivery import waiting_documents
    from gateway.store.messages import count_documents_to_sign

    service = clearing.service
    waiting = await waiting_documents(service, arguments.limit)
    outcomes: list[str | None] = [None] * len(waiting)
    if arguments.sign and waiting:
        notices = operator_messages(config, clearing).notices
        for number, entry in enumerate(waiting):
            outcomes[number] = await notices.sign_now(entry.row)
    async with service.reader.connect() as connection:
        left = await count_documents_to_sign(connection)
    if arguments.json:
        listed = [
            {
                "sequence": entry.row.sequence,
                "participant": entry.row.participant,
                "message_type": entry.row.message_type,
                "message_id": entry.row.message_id,
                "written_at": entry.row.written_at,
                "later_messages_waiting": entry.held_back,
                "problem": entry.problem,
                "outcome": outcome,
            }
            for entry, outcome in zip(waiting, outcomes, strict=True)
        ]
        json.dump({"messages": listed, "left_waiting": left}, out, indent=2)
        out.write("\n")
        return 1 if left else 0
    if not waiting:
        out.write("no outbox message is waiting to be signed\n")
        return 0
    out.write(f"outbox messages committed but not yet signed, oldest first ({len(waiting)}):\n")
    for entry, outcome in zip(waiting, outcomes, strict=True):
        row = entry.row
        out.write(
            f"#{row.sequence} to {row.participant}: {row.message_type} {row.message_id}, "
            f"written {_local(row.written_at, service.core)}; "
            f"{entry.held_back} later message(s) of {row.participant} wait for it\n"
        )
        if entry.problem:
            out.write(
                f"  cannot be read: {entry.problem}. No signing will help: restore the ledger "
                "from its backup, or report it\n"
            )
        if outcome:
            out.write(f"  {outcome}\n")
    if arguments.sign:
        out.write(f"{left} left waiting to be signed\n")
    else:
        out.write(
            "gateway processes sign these within seconds; one that stays failed to sign (the "
            "log says why: event=signing-failed). `isogw core unsigned --sign` signs them now\n"
        )
    return 1 if left else 0


async def _message(service: Any, arguments: argparse.Namespace, out: TextIO) -> int:
    # Storage: not loaded by validate.
    from gateway.store.messages import Provenance, find_submission

    async with service.reader.connect() as connection:
        found = await find_submission(connection, arguments.participant, arguments.message_id)
    if found is None:
        out.write(
            f"no message {arguments.message_id} from {arguments.participant} in the ledger "
            "(kept: messages that reached the clearing core; one refused before, for its "
            "signature, schema or business rules, is listed by `isogw core refusals "
            f"--participant {arguments.participant}`, without its content)\n"
        )
        return 1
    if arguments.json:
        details = {
            "participant": found.sender,
            "message_id": found.message_id,
            "message_type": found.message_type,
            "received_at": found.received_at,
            "status": found.status,
            # Where it came from and how it was verified (null: kept before that was).
            **(
                asdict(found.provenance)
                if found.provenance
                else {field.name: None for field in fields(Provenance)}
            ),
            "message": None if found.body is None else found.body.decode("utf-8"),
            "answer": found.answer.decode("utf-8"),
        }
        json.dump(details, out, ensure_ascii=False, indent=2)
        out.write("\n")
        return 0
    if arguments.answer:
        out.write(found.answer.decode("utf-8"))
        return 0
    if found.body is None:
        out.write(
            f"the ledger has no copy of message {found.message_id} from {found.sender}: it "
            f"was received at {_local(found.received_at, service.core)}, before the gateway "
            "kept messages (its answer is there: --answer)\n"
        )
        return 1
    out.write(found.body.decode("utf-8"))
    return 0


async def _refusals(service: Any, arguments: argparse.Namespace, out: TextIO) -> int:
    from gateway.store.messages import read_refusals  # storage: not loaded by validate

    async with service.reader.connect() as connection:
        found = await read_refusals(connection, arguments.participant, arguments.limit)
    if arguments.json:
        listed = []
        for refusal in found:
            details = asdict(refusal)
            sender = details.pop("sender")
            details["answer"] = refusal.answer.decode("utf-8")
            listed.append({"participant": sender, **details})
        json.dump(listed, out, ensure_ascii=False, indent=2)
        out.write("\n")
        return 0
    for refusal in found:
        text, location = _reject_reason(refusal.answer)
        out.write(
            f"{_local(refusal.received_at, service.core)} {refusal.sender} "
            f"{refusal.message_id or '-'} "
            f"{refusal.status} {refusal.reason_code} from {refusal.client_address}: {text}"
            f"{f' at {location}' if location else ''} ({_refused_body(refusal)})\n"
        )
    if not found:
        out.write("no refused submissions in the ledger\n")
    return 0


def _local(moment: str | None, core: ClearingCore) -> str:
    """A kept time (ISO 8601 with the offset it was written with: UTC from the system clock)
    in the centre's time zone, as the operator reads the business day; ``--json`` keeps it as
    kept."""
    if not moment:
        return "-"
    try:
        return datetime.fromisoformat(moment).astimezone(core.zone).isoformat()
    except ValueError:
        return moment


def _refused_body(refusal: Any) -> str:
    """What was sent: its size and SHA-256; for a body refused unread (over the cap), the size
    as declared or read before the cap was passed."""
    if refusal.body_sha256:
        return f"{refusal.body_bytes:,} bytes, sha256 {refusal.body_sha256}"
    return f"{refusal.body_bytes:,} bytes or more, not read" if refusal.body_bytes else "not read"


async def _transactions(
    config: Path, service: Any, arguments: argparse.Namespace, out: TextIO
) -> int:
    # The codecs read the accounts from the kept messages; storage: not loaded by validate.
    from gateway.composition import build_gateway
    from gateway.service.transaction_records import transaction_records
    from gateway.store.retired_items import ItemFilter

    codecs = build_gateway(config, check_sample_files=False).codecs
    async with service.reader.connect() as connection:
        records = await transaction_records(
            service.core,
            connection,
            codecs,
            arguments.limit,
            ItemFilter(
                arguments.participant,
                arguments.date,
                arguments.state,
                ":".join(arguments.message) if arguments.message else None,
            ),
        )
    if arguments.json:
        json.dump([asdict(record) for record in records], out, ensure_ascii=False, indent=2)
        out.write("\n")
        return 0
    for record in records:
        reason = f" {record.reason_code}" if record.reason_code else ""
        retired = " (retired)" if record.retired else ""
        out.write(
            f"{_local(record.received_at, service.core)} {record.item} {record.business_type} "
            f"{record.amount} CNY {record.payer} {record.payer_account or '-'} "
            f"{record.payer_name or '-'} -> {record.payee} {record.payee_account or '-'} "
            f"{record.payee_name or '-'} {record.state}{reason} session "
            f"{record.session or '-'} from {record.client_address or '-'}{retired}\n"
        )
    if not records:
        out.write("no payment items in the ledger match\n")
    return 0


def _reject_reason(answer: bytes) -> tuple[str, str]:
    """The reason text and error location of one of the gateway's own admi.002 answers."""
    from lxml import etree

    from gateway.iso.safe_parsing import SAFE_PARSE_OPTIONS

    root = etree.fromstring(answer, etree.XMLParser(**SAFE_PARSE_OPTIONS))
    return (root.findtext(".//{*}RsnDesc") or "", root.findtext(".//{*}ErrLctn") or "")


def run_core(config: Path, arguments: argparse.Namespace, out: TextIO, clock: Clock) -> int:
    return asyncio.run(_run(config, arguments, out, clock))
