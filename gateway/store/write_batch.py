"""Rows written by one group commit, inserted together (one ``executemany`` per table)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select

from gateway.store.messages import Provenance, Refusal
from gateway.store.tables import (
    command_log,
    inbound_message,
    outbox,
    refused_submission,
    retired_item,
)


@dataclass
class WriteBatch:
    in_transaction: Callable[[Callable[[Connection], Any]], Awaitable[Any]]
    """Runs a function of the open transaction's connection on the writer's thread."""

    log: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    answers: list[dict[str, Any]] = field(default_factory=list)
    refusals: list[dict[str, Any]] = field(default_factory=list)
    retired: list[dict[str, Any]] = field(default_factory=list)
    """The items the batch's commands retired from the core (``retired_item`` rows)."""

    def deliver(
        self, participant: str, message_id: str, message_type: str, payload: bytes, now: datetime
    ) -> None:
        self._delivery(participant, message_id, message_type, now, payload.decode("utf-8"), None)

    def deliver_to_sign(
        self, participant: str, message_id: str, message_type: str, document: str, now: datetime
    ) -> None:
        """A message whose document (JSON) is signed after the commit (``outbox`` tells why);
        its participant's later messages wait for it."""
        self._delivery(participant, message_id, message_type, now, "", document)

    def _delivery(
        self,
        participant: str,
        message_id: str,
        message_type: str,
        now: datetime,
        payload: str,
        document_to_sign: str | None,
    ) -> None:
        self.deliveries.append(
            {
                "participant": participant,
                "message_id": message_id,
                "message_type": message_type,
                "payload": payload,
                "created_at": now.isoformat(),
                "acknowledged_at": None,
                "document_to_sign": document_to_sign,
            }
        )

    def answer(
        self,
        sender: str,
        message_id: str,
        content_hash: str,
        message_type: str | None,
        now: datetime,
        status: int,
        answer: bytes,
        body: bytes,
        provenance: Provenance,
    ) -> None:
        """The submission as it was sent (UTF-8: the parser accepts nothing else), where it
        came from and how it was verified, and the answer it got."""
        self.answers.append(
            {
                "sender": sender,
                "message_id": message_id,
                "content_hash": content_hash,
                "message_type": message_type,
                "received_at": now.isoformat(),
                "status": status,
                "answer": answer.decode("utf-8"),
                "body": body.decode("utf-8"),
                "client_address": provenance.client_address,
                "certificate_sha256": provenance.certificate_sha256,
                "signature_method": provenance.signature_method,
            }
        )

    def refuse(self, refusal: Refusal) -> None:
        """A submission refused before the clearing core, and its answer (the fields are the
        table's columns)."""
        self.refusals.append({**asdict(refusal), "answer": refusal.answer.decode("utf-8")})

    def flush(self, connection: Connection) -> int | None:
        """Insert everything (on the writer's thread); return the last command log sequence
        (None without log rows)."""
        last = None
        if self.log:
            connection.execute(insert(command_log), self.log)
            last = connection.execute(select(func.max(command_log.c.sequence))).scalar()
        if self.deliveries:
            connection.execute(insert(outbox), self.deliveries)
        if self.answers:
            connection.execute(insert(inbound_message), self.answers)
        if self.refusals:
            connection.execute(insert(refused_submission), self.refusals)
        if self.retired:
            connection.execute(insert(retired_item), self.retired)
        return int(last) if last is not None else None
