"""The database engines, on SQLite (the only database this release supports). SQLite runs
in WAL mode with ``synchronous=FULL`` (nothing acknowledged is lost), and every write
transaction starts with ``BEGIN IMMEDIATE`` so writers are serialized up front.

Three engines on the same database: a synchronous one (the standard library's sqlite3) for
the clearing writer, which runs its transactions on a thread of its own
(``gateway.store.writer``); an async one (aiosqlite) for the occasional write outside it; and
an async one for reads only, whose transactions are deferred: in WAL mode a reader sees the
database as it was at its first read, never waits for a writer and never holds one up, however
long it reads (a start replaying the log, an operator's query of a whole day)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, event, make_url
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import exc as storage_errors
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway.configuration.settings import SQLITE_URL_PREFIX

STATE_DIRECTORY_VARIABLE = "GATEWAY_STATE_DIR"
DEFAULT_STATE_DIRECTORY = Path("state")
DATABASE_FILE = "gateway.sqlite3"


def sqlite_url(state_directory: Path) -> str:
    return f"{SQLITE_URL_PREFIX}{(state_directory / DATABASE_FILE).resolve()}"


TRANSIENT_FAILURES = (
    storage_errors.OperationalError,
    storage_errors.InterfaceError,
    storage_errors.DisconnectionError,
    storage_errors.TimeoutError,
    OSError,
)
"""Failures of the database or the disk rather than of the gateway's own logic: locked past
the busy timeout, an I/O error, a full disk, a lost connection, a pool without a free
connection, the writer's lock file."""


def storage_unavailable(error: BaseException) -> bool:
    """``error`` says the storage is unavailable for now: the transaction was rolled back, so
    nothing was applied, and the same request may succeed later (HTTP 503). Any other error is
    the gateway's own (HTTP 500): sending the same request again would fail the same way. A
    network connection error (a client gone) is not the storage's."""
    return isinstance(error, TRANSIENT_FAILURES) and not isinstance(error, ConnectionError)


SYNCHRONOUS_DRIVERS = {"sqlite": "sqlite+pysqlite"}
"""The writer's driver for each dialect (the same database, a synchronous driver)."""


WRITING_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
)
READING_PRAGMAS = (
    "PRAGMA query_only=ON",
    # A reader waits only while a file is being recovered or its WAL reset.
    "PRAGMA busy_timeout=10000",
)


def create_engine(url: str) -> AsyncEngine:
    engine = create_async_engine(url)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine.sync_engine, WRITING_PRAGMAS, "BEGIN IMMEDIATE")
    return engine


def create_reading_engine(url: str | URL) -> AsyncEngine:
    """An engine for reads only, on the database ``url`` names. On SQLite each transaction
    begins as a deferred one (a snapshot of the database taken at its first read; writers go
    on meanwhile), and the connection is ``query_only``: a write through it is an error rather
    than a lock taken."""
    engine = create_async_engine(url)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine.sync_engine, READING_PRAGMAS, "BEGIN")
    return engine


def create_writer_engine(url: str | URL) -> Engine:
    """A synchronous engine on the database ``url`` names (whatever its async driver)."""
    parsed = make_url(url)
    driver = SYNCHRONOUS_DRIVERS.get(parsed.get_backend_name())
    if driver is None:
        raise ValueError(f"no synchronous driver known for {parsed.drivername}")
    engine = create_sync_engine(parsed.set(drivername=driver))
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine, WRITING_PRAGMAS, "BEGIN IMMEDIATE")
    return engine


def _configure_sqlite(engine: Engine, pragmas: tuple[str, ...], begin: str) -> None:
    """Each new connection runs ``pragmas``; each transaction begins with ``begin``."""

    @event.listens_for(engine, "connect")
    def on_connect(connection: Any, _: Any) -> None:
        # Let SQLAlchemy's begin() emit the transaction itself (below).
        connection.isolation_level = None
        cursor = connection.cursor()
        for pragma in pragmas:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)
