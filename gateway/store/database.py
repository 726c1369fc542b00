"""The database engine: SQLite (aiosqlite) by default, PostgreSQL through SQLAlchemy's async
drivers. SQLite runs in WAL mode with ``synchronous=FULL`` (nothing acknowledged is lost), and
every write transaction starts with ``BEGIN IMMEDIATE`` so writers are serialized up front."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

STATE_DIRECTORY_VARIABLE = "GATEWAY_STATE_DIR"
DEFAULT_STATE_DIRECTORY = Path("state")
DATABASE_FILE = "gateway.sqlite3"


def sqlite_url(state_directory: Path) -> str:
    return f"sqlite+aiosqlite:///{(state_directory / DATABASE_FILE).resolve()}"


def create_engine(url: str) -> AsyncEngine:
    engine = create_async_engine(url)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(connection: Any, _: Any) -> None:
        # Let SQLAlchemy's begin() emit the transaction itself (below), as BEGIN IMMEDIATE.
        connection.isolation_level = None
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
