from __future__ import annotations

from pathlib import Path

import pytest

from gateway.store.database import create_writer_engine, sqlite_url
from gateway.store.tables import metadata


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A database with the gateway's tables, in ``tmp_path``."""
    engine = create_writer_engine(sqlite_url(tmp_path))
    metadata.create_all(engine)
    engine.dispose()
    return tmp_path
