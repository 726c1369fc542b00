"""Repositories of submitted messages and participant outboxes (portable SQL)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, Row, Select, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store.tables import inbound_message, outbox, refused_submission


@dataclass(frozen=True)
class StoredAnswer:
    content_hash: str
    status: int
    answer: bytes


@dataclass(frozen=True)
class OutboxMessage:
    sequence: int
    message_id: str
    message_type: str
    payload: bytes


def _inbound_key(sender: str, message_id: str) -> ColumnElement[bool]:
    return and_(inbound_message.c.sender == sender, inbound_message.c.message_id == message_id)


def _inbound_query(sender: str, message_id: str) -> Select[str, int, str]:
    return select(
        inbound_message.c.content_hash, inbound_message.c.status, inbound_message.c.answer
    ).where(_inbound_key(sender, message_id))


def _stored(row: Row[str, int, str] | None) -> StoredAnswer | None:
    if row is None:
        return None
    return StoredAnswer(row.content_hash, row.status, row.answer.encode("utf-8"))


async def find_inbound(
    connection: AsyncConnection, sender: str, message_id: str
) -> StoredAnswer | None:
    return _stored((await connection.execute(_inbound_query(sender, message_id))).first())


@dataclass(frozen=True)
class Provenance:
    """Where a submission came from and how it was verified, kept with it for audit."""

    client_address: str
    """The address of the client that sent it."""
    certificate_sha256: str
    """SHA-256 (hex) of the client certificate it came with: the sender's pinned one."""
    signature_method: str
    """The XML-DSig signature method its signature was verified with (URI)."""


@dataclass(frozen=True)
class Refusal:
    """A submission refused before the clearing core, as the ledger keeps it."""

    sender: str
    message_id: str
    """As its business header gave it ("" when it had none)."""
    received_at: str
    status: int
    reason_code: str
    client_address: str
    certificate_sha256: str
    """Of the client certificate it came with (pinned to ``sender``)."""
    body_sha256: str
    """SHA-256 (hex) of the submitted bytes ("" when they were refused unread: over the cap)."""
    body_bytes: int
    """Their size (over the cap: as declared, or as read before the cap was passed)."""
    answer: bytes


async def read_refusals(
    connection: AsyncConnection, sender: str | None, limit: int
) -> list[Refusal]:
    """The latest ``limit`` refusals (of ``sender``, or of every participant), newest first."""
    query = select(refused_submission).order_by(refused_submission.c.sequence.desc()).limit(limit)
    if sender is not None:
        query = query.where(refused_submission.c.sender == sender)
    names = [field.name for field in fields(Refusal)]
    # A refusal's fields are the table's columns (as WriteBatch.refuse writes them).
    return [
        Refusal(**{**{name: row._mapping[name] for name in names}, "answer": row.answer.encode()})
        for row in await connection.execute(query)
    ]


@dataclass(frozen=True)
class Submission:
    """A participant's message as the ledger keeps it, for audit."""

    sender: str
    message_id: str
    message_type: str | None
    received_at: str
    status: int
    answer: bytes
    body: bytes | None
    """As it was sent, signature included; None for a row written before bodies were kept."""
    provenance: Provenance | None
    """None for a row written before the gateway kept it."""


async def find_submission(
    connection: AsyncConnection, sender: str, message_id: str
) -> Submission | None:
    row = (
        await connection.execute(select(inbound_message).where(_inbound_key(sender, message_id)))
    ).first()
    if row is None:
        return None
    return Submission(
        sender=row.sender,
        message_id=row.message_id,
        message_type=row.message_type,
        received_at=row.received_at,
        status=row.status,
        answer=row.answer.encode("utf-8"),
        body=None if row.body is None else row.body.encode("utf-8"),
        provenance=None
        if row.client_address is None
        else Provenance(row.client_address, row.certificate_sha256, row.signature_method),
    )


@dataclass(frozen=True)
class DocumentToSign:
    sequence: int
    participant: str
    message_id: str
    message_type: str
    document: str
    """JSON: ``{"model": NAME, "document": DOCUMENT}``, NAME a model of ``OUTBOUND_MODELS``."""
    written_at: str
    """When the transaction that owes it wrote it (ISO 8601)."""


def _before_waiting(participant: str) -> ColumnElement[bool]:
    """Rows of ``participant`` before its first message still to sign (all when none): a
    participant reads and acknowledges its messages in order, with none missing."""
    first = (
        select(func.min(outbox.c.sequence))
        .where(outbox.c.participant == participant, outbox.c.document_to_sign.is_not(None))
        .scalar_subquery()
    )
    return or_(first.is_(None), outbox.c.sequence < first)


async def read_outbox(
    connection: AsyncConnection, participant: str, after: int, limit: int
) -> list[OutboxMessage]:
    rows = (
        await connection.execute(
            select(outbox.c.sequence, outbox.c.message_id, outbox.c.message_type, outbox.c.payload)
            .where(
                and_(
                    outbox.c.participant == participant,
                    outbox.c.sequence > after,
                    outbox.c.acknowledged_at.is_(None),
                    _before_waiting(participant),
                )
            )
            .order_by(outbox.c.sequence)
            .limit(limit)
        )
    ).all()
    return [
        OutboxMessage(row.sequence, row.message_id, row.message_type, row.payload.encode("utf-8"))
        for row in rows
    ]


async def acknowledge(
    connection: AsyncConnection, participant: str, through: int, now: datetime
) -> int:
    result = await connection.execute(
        update(outbox)
        .where(
            and_(
                outbox.c.participant == participant,
                outbox.c.sequence <= through,
                outbox.c.acknowledged_at.is_(None),
                _before_waiting(participant),
            )
        )
        .values(acknowledged_at=now.isoformat())
    )
    return int(result.rowcount or 0)


async def documents_to_sign(connection: AsyncConnection, limit: int) -> list[DocumentToSign]:
    """Outbox messages still to sign, oldest first (at most ``limit``)."""
    rows = (
        await connection.execute(
            select(
                outbox.c.sequence,
                outbox.c.participant,
                outbox.c.message_id,
                outbox.c.message_type,
                outbox.c.document_to_sign,
                outbox.c.created_at,
            )
            .where(outbox.c.document_to_sign.is_not(None))
            .order_by(outbox.c.sequence)
            .limit(limit)
        )
    ).all()
    return [DocumentToSign(*row) for row in rows]


async def messages_held_back(connection: AsyncConnection, participant: str, sequence: int) -> int:
    """How many of ``participant``'s unacknowledged outbox messages come after ``sequence``
    (held back while a message before them is still to sign)."""
    found = await connection.execute(
        select(func.count())
        .select_from(outbox)
        .where(
            outbox.c.participant == participant,
            outbox.c.sequence > sequence,
            outbox.c.acknowledged_at.is_(None),
        )
    )
    return int(found.scalar_one())


async def count_documents_to_sign(connection: AsyncConnection) -> int:
    found = await connection.execute(
        select(func.count()).select_from(outbox).where(outbox.c.document_to_sign.is_not(None))
    )
    return int(found.scalar_one())


def store_signed(connection: Connection, participant: str, message_id: str, payload: bytes) -> bool:
    """Put the signed message in place of its document (on the writer's thread); False when
    it is signed already (by another process)."""
    result = connection.execute(
        update(outbox)
        .where(
            outbox.c.participant == participant,
            outbox.c.message_id == message_id,
            outbox.c.document_to_sign.is_not(None),
        )
        .values(payload=payload.decode("utf-8"), document_to_sign=None)
    )
    return bool(result.rowcount)


async def outbox_depths(connection: AsyncConnection) -> dict[str, int]:
    rows = (
        await connection.execute(
            select(outbox.c.participant, func.count())
            .where(outbox.c.acknowledged_at.is_(None))
            .group_by(outbox.c.participant)
        )
    ).all()
    return {participant: int(count) for participant, count in rows}
