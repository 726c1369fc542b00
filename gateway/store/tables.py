"""Tables of the clearing core: the genesis of the ledger and the log of every command.

The core is a deterministic state machine, so its state is the genesis (participants and
settings as they were when the ledger started) plus the commands, applied in log order. The
log is the record kept for audit; every figure the core shows can be rebuilt from it.
Portable SQL only: the same tables run on SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, Text

metadata = MetaData()

genesis = Table(
    "clearing_genesis",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("started_at", String(40), nullable=False),
    Column("participants", Text, nullable=False),
    Column("settings", Text, nullable=False),
)

command_log = Table(
    "clearing_command_log",
    metadata,
    Column(
        "sequence",
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("command_id", String(140), nullable=False, unique=True),
    Column("kind", String(40), nullable=False),
    Column("issued_at", String(40), nullable=False),
    Column("payload", Text, nullable=False),
)
