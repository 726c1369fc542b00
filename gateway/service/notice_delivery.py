"""Messages the centre writes to the outboxes: signed in the transaction that owes them, or,
for a long one, just after its commit.

Building and signing a receipt of 15,000 transactions takes about 0.6 s: inside the clearing
writer's transaction, that is 0.6 s more during which every gateway process waits for the lock
they share, real-time payments included. So a message with more list entries than
``encoding.sign_after_commit_entries`` is committed as its document (JSON) in its outbox row,
then built and signed in a thread once the commit is done, and stored in a short transaction of
its own. Until it is, its participant reads none of its later messages
(``gateway.store.tables.outbox``), so nothing is read out of order or missed. A process that
stops in between leaves the document in the outbox: a process signs every document waiting when
it starts, and each process's sweep signs those it already found waiting at its previous sweep.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from pydantic import BaseModel, ValidationError

from gateway.commands.outbound import OUTBOUND_MODELS
from gateway.log_text import sender_text
from gateway.service.clearing_service import ClearingService
from gateway.service.notifications import Notice
from gateway.store import messages
from gateway.store.write_batch import WriteBatch

LOG = logging.getLogger("isogw.outbox")

Envelope = Callable[[str, BaseModel, str, str], bytes]
"""The signed envelope of a document: recipient, document, message type, message id."""


def entries_over(document: BaseModel, limit: int) -> bool:
    """Whether ``document`` has more than ``limit`` list entries, counted through its nested
    lists (a statement's entries and their details); stops counting past the limit."""
    remaining = [document]
    count = 0
    while remaining:
        model = remaining.pop()
        for name in type(model).model_fields:
            value = getattr(model, name)
            if isinstance(value, tuple):
                count += len(value)
                if count > limit:
                    return True
                remaining.extend(entry for entry in value if isinstance(entry, BaseModel))
    return False


@dataclass(frozen=True)
class WaitingDocument:
    """An outbox message still to sign, as the operator sees it."""

    row: messages.DocumentToSign
    held_back: int
    """Its participant's later messages that wait for it (unacknowledged)."""
    problem: str | None
    """Why its document cannot be read (a damaged row: no signing will help), or None."""


async def waiting_documents(clearing: ClearingService, limit: int) -> list[WaitingDocument]:
    """The outbox messages still to sign, oldest first (at most ``limit``)."""
    async with clearing.reader.connect() as connection:
        rows = await messages.documents_to_sign(connection, limit)
        held = [
            await messages.messages_held_back(connection, row.participant, row.sequence)
            for row in rows
        ]
    return [
        WaitingDocument(row, count, unreadable(row)) for row, count in zip(rows, held, strict=True)
    ]


class NoticeDelivery:
    def __init__(
        self, clearing: ClearingService, envelope: Envelope, entries: int, sweep_batch: int
    ) -> None:
        """``entries``: a document with more list entries is signed after the commit;
        ``sweep_batch``: documents a sweep reads at a time."""
        self._clearing = clearing
        self._envelope = envelope
        self._entries = entries
        self._sweep_batch = sweep_batch
        self._seen: set[tuple[str, str]] = set()

    def deliver(
        self, writes: WriteBatch, notice: Notice, now: datetime, later: list[Notice]
    ) -> None:
        """Write ``notice`` to its recipient's outbox in the open transaction: signed, or, when
        long, as its document, added to ``later`` to sign once the transaction is committed
        (``sign``)."""
        if entries_over(notice.document, self._entries):
            document = stored_document(notice.document)
            writes.deliver_to_sign(
                notice.recipient, notice.message_id, notice.message, document, now
            )
            later.append(notice)
            return
        payload = self._envelope(
            notice.recipient, notice.document, notice.message, notice.message_id
        )
        writes.deliver(notice.recipient, notice.message_id, notice.message, payload, now)

    async def sign(self, notices: Sequence[Notice]) -> None:
        """Sign the long messages a committed transaction delivered as documents. One that
        cannot be signed now is logged and left to the sweeps: what owes it is committed and
        answered either way."""
        for notice in notices:
            await self._sign_or_log(notice)

    async def sweep(self, everything: bool = False) -> set[str]:
        """Sign the documents left waiting: those this sweep found waiting at the previous one
        as well (a process that wrote one signs it itself, at once), or ``everything`` (at a
        start). Returns the participants with newly signed messages."""
        async with self._clearing.reader.connect() as connection:
            waiting = await messages.documents_to_sign(connection, self._sweep_batch)
        found = {(row.participant, row.message_id) for row in waiting}
        due = [
            row for row in waiting if everything or (row.participant, row.message_id) in self._seen
        ]
        self._seen = found
        signed: set[str] = set()
        for row in due:
            if await self._sign_or_log(row) is True:
                LOG.warning(
                    "event=left-unsigned-signed participant=%s message_id=%s sequence=%d",
                    row.participant,
                    sender_text(row.message_id),
                    row.sequence,
                )
                signed.add(row.participant)
        return signed

    async def sign_now(self, row: messages.DocumentToSign) -> str:
        """For the operator (``isogw core unsigned --sign``): build, sign and store one
        document left waiting; what came of it."""
        signed = await self._sign_or_log(row, result="left-waiting")
        if isinstance(signed, Exception):
            return f"not signed: {type(signed).__name__}: {signed}"
        return "signed" if signed else "signed already (by a gateway process)"

    async def _sign_or_log(
        self, item: Notice | messages.DocumentToSign, result: str = "left-for-the-sweep"
    ) -> bool | Exception:
        """Sign and store ``item`` (or the notice a document left to sign was written for);
        False if another process had; the error if it failed (logged: the next sweep tries
        again, ``result`` says)."""
        try:
            if isinstance(item, messages.DocumentToSign):
                return await self._sign(_notice(item))
            return await self._sign(item)
        except Exception as error:
            participant = item.recipient if isinstance(item, Notice) else item.participant
            LOG.exception(
                "event=signing-failed participant=%s message_id=%s result=%s",
                participant,
                sender_text(item.message_id),
                result,
            )
            return error

    async def _sign(self, notice: Notice) -> bool:
        # In a thread: the event loop serves the other banks meanwhile.
        payload = await asyncio.to_thread(
            self._envelope, notice.recipient, notice.document, notice.message, notice.message_id
        )
        return await self._clearing.write_apart(
            partial(
                messages.store_signed,
                participant=notice.recipient,
                message_id=notice.message_id,
                payload=payload,
            )
        )


def stored_document(document: BaseModel) -> str:
    """A document as its outbox row keeps it until it is signed (``_notice`` reads it back)."""
    model = json.dumps(type(document).__name__)
    return f'{{"model":{model},"document":{document.model_dump_json()}}}'


def unreadable(row: messages.DocumentToSign) -> str | None:
    """Why the document of ``row`` cannot be read back into its message, or None."""
    try:
        _notice(row)
    except json.JSONDecodeError as error:
        return f"its document is not JSON ({error})"
    except ValidationError as error:
        first = error.errors()[0]
        place = ".".join(str(part) for part in first["loc"])
        return (
            f"its document does not fit {error.title}: {error.error_count()} problem(s), the "
            f"first at {place or 'the top'}: {first['msg']}"
        )
    except (KeyError, TypeError) as error:
        return f"its document names no known message model ({type(error).__name__}: {error})"
    return None


def _notice(row: messages.DocumentToSign) -> Notice:
    """The notice a document left to sign was written for."""
    stored = json.loads(row.document)
    document = OUTBOUND_MODELS[stored["model"]].model_validate(stored["document"])
    return Notice(row.participant, row.message_type, row.message_id, document)
