"""Tables of the clearing core: the genesis of the ledger and the log of every command.

The core is a deterministic state machine, so its state is the genesis (participants and
settings as they were when the ledger started) plus the commands, applied in log order. The
log is the record kept for audit; every figure the core shows can be rebuilt from it.
Portable SQL only (no SQLite-specific types or statements in the tables).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    inspect,
    text,
)

metadata = MetaData()


def _sequence(generated: bool = True) -> Column[int]:
    """An increasing integer key: generated (SQLite's rowid, a sequence elsewhere), or given
    (the command log sequence a checkpoint covers)."""
    return Column(
        "sequence",
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=generated,
    )


genesis = Table(
    "clearing_genesis",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("started_at", String(40), nullable=False),
    Column("participants", Text, nullable=False),
    Column("settings", Text, nullable=False),
    Column("rules", Integer, nullable=True),
    # The version of the clearing rules the ledger replays with (gateway.clearing.core
    # RULES_VERSION); empty in a ledger started before versions: 1.
)

command_log = Table(
    "clearing_command_log",
    metadata,
    _sequence(),
    Column("command_id", String(140), nullable=False, unique=True),
    Column("kind", String(40), nullable=False),
    Column("issued_at", String(40), nullable=False),
    Column("payload", Text, nullable=False),
)

checkpoint = Table(
    "clearing_checkpoint",
    metadata,
    _sequence(generated=False),
    Column("format", Integer, nullable=False),
    Column("rules", Integer, nullable=False),
    Column("clock", String(40), nullable=False),
    Column("business_date", String(10), nullable=False),
    Column("state", Text, nullable=False),
    Column("state_sha256", String(64), nullable=False),
    Column("parts", Integer, nullable=True),
)
"""Snapshots of the core (gateway.clearing.snapshots): its state after the command logged
with ``sequence``, as JSON, and that text's SHA-256. Derived from the log, never instead of
it: a start restores the newest one that is whole and replays only the commands after it.
The text is in ``parts`` rows of ``clearing_checkpoint_part`` (``state`` is then empty), or,
in a checkpoint stored before parts (``parts`` empty), in ``state``. This row is written
after its parts: a checkpoint without it is not one."""

checkpoint_part = Table(
    "clearing_checkpoint_part",
    metadata,
    _sequence(generated=False),
    Column("part", Integer, primary_key=True, autoincrement=False),
    Column("text", Text, nullable=False),
)
"""The text of a checkpoint, part by part (numbered from 0), each written in a transaction of
its own."""

retired_item = Table(
    "clearing_retired_item",
    metadata,
    _sequence(),
    Column("item_id", String(200), nullable=False, unique=True),
    Column("package_id", String(140), nullable=False),
    Column("sender", String(12), nullable=False, index=True),
    Column("transaction_id", String(140), nullable=False),
    Column("business_type", String(4), nullable=False),
    Column("real_time", Boolean, nullable=False),
    Column("payer", String(12), nullable=False, index=True),
    Column("payee", String(12), nullable=False, index=True),
    Column("amount", BigInteger, nullable=False),
    Column("business_date", String(10), nullable=False, index=True),
    Column("state", String(20), nullable=False),
    Column("session_id", String(20), nullable=True),
    Column("reason_code", String(4), nullable=True),
    Column("return_of", String(200), nullable=True),
    Column("returned_by", String(200), nullable=True),
    Column("retired_through", String(10), nullable=False),
)
"""Every payment item the clearing core retired (``gateway.clearing.retirement``), as it ended,
written with the command whose application retired it: what the operator's transaction
queries read once the core has forgotten an item. Derived from the log like the checkpoints
(a replay retires the same items), but kept for as long as the log is."""

inbound_message = Table(
    "inbound_message",
    metadata,
    Column("sender", String(12), primary_key=True),
    Column("message_id", String(35), primary_key=True),
    Column("content_hash", String(64), nullable=False),
    Column("message_type", String(20), nullable=True),
    Column("received_at", String(40), nullable=False),
    Column("status", Integer, nullable=False),
    Column("answer", Text, nullable=False),
    Column("body", Text, nullable=True),
    Column("client_address", String(64), nullable=True),
    Column("certificate_sha256", String(64), nullable=True),
    Column("signature_method", String(100), nullable=True),
)
"""Every message a participant submitted that reached the clearing core, as it was sent
(signed: the participant's own evidence), and the signed answer it got (idempotency, audit);
where it came from (the client's address) and how it was verified (the SHA-256 of the client
certificate it came with, pinned to the sender; the signature method). These are empty in
rows written before the gateway kept them."""

ADDED_COLUMNS = {
    "inbound_message": ("body", "client_address", "certificate_sha256", "signature_method"),
    "clearing_genesis": ("rules",),
    "clearing_checkpoint": ("parts",),
    "outbox": ("document_to_sign",),
}
"""Columns added to a table since it was first released: nullable, added in place."""


def add_missing_columns_and_indexes(connection: Connection) -> None:
    """Bring a ledger written by an earlier release up to these tables (``create_all`` makes
    missing tables, not the columns and indexes a table gained). SQLite adds a nullable column
    in place, of the type the table declares."""
    for table, names in ADDED_COLUMNS.items():
        present = {column["name"] for column in inspect(connection).get_columns(table)}
        for name in names:
            if name not in present:
                kind = metadata.tables[table].c[name].type.compile(dialect=connection.dialect)
                connection.execute(text(f"ALTER TABLE {table} ADD COLUMN {name} {kind}"))
    for each in metadata.sorted_tables:
        for index in each.indexes:
            index.create(connection, checkfirst=True)  # those added since


outbox = Table(
    "outbox",
    metadata,
    _sequence(),
    Column("participant", String(12), nullable=False, index=True),
    Column("message_id", String(35), nullable=False),
    Column("message_type", String(20), nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("acknowledged_at", String(40), nullable=True),
    Column("document_to_sign", Text, nullable=True),
)
"""Signed messages waiting for a participant: forwards, receipts, notifications.

A long message (a receipt of thousands of transactions) is built and signed after the commit
that owes it, outside the clearing writer's lock: its row is written with the document as JSON
in ``document_to_sign`` and an empty payload, and signed in a transaction of its own just after.
Until then neither it nor any later message of its participant is read or acknowledged, so a
participant's messages still come in order."""

Index(
    "outbox_waiting_to_be_signed",
    outbox.c.participant,
    outbox.c.sequence,
    sqlite_where=outbox.c.document_to_sign.is_not(None),
    postgresql_where=outbox.c.document_to_sign.is_not(None),
)

refused_submission = Table(
    "refused_submission",
    metadata,
    _sequence(),
    Column("sender", String(12), nullable=False, index=True),
    Column("message_id", String(35), nullable=False),
    Column("received_at", String(40), nullable=False),
    Column("status", Integer, nullable=False),
    Column("reason_code", String(4), nullable=False),
    Column("client_address", String(64), nullable=False),
    Column("certificate_sha256", String(64), nullable=False),
    Column("body_sha256", String(64), nullable=False),
    Column("body_bytes", Integer, nullable=False),
    Column("answer", Text, nullable=False),
)
"""Every submission refused before it reached the clearing core (over the body cap, not XML,
signature, schema, business rules, a message id reused for other content, a fault of the
gateway's own; not one over the rate limit, so that a flood writes nothing), with the signed
admi.002 it got. Not the submission itself, which may be anything up to the body cap: its
SHA-256 and size tell which one it was."""

authentication_failure = Table(
    "authentication_failure",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("consecutive", Integer, nullable=False),
    Column("last_at", String(40), nullable=False, index=True),
    Column("last_reason", Text, nullable=False),
)
"""Consecutive authentication failures of each source (an address), shared by the gateway
processes: a connection from one source may reach any of them."""
