"""Why a command that opens the gateway's state cannot start: a key or certificate file, or the
database, is unusable. Each message names the file or database and what to do; the command
line prints it on one line (exit code 2). Kept apart from the modules that raise these, so
that catching them loads neither cryptography nor SQLAlchemy."""

from __future__ import annotations


class StartError(Exception):
    """The gateway's state cannot be used as it is (the message names what and where)."""


class KeyFileError(StartError):
    """A key or certificate file is missing, unreadable, or not what it should be."""


class StorageError(StartError):
    """The database cannot be opened, or is not the gateway's."""


class NoLedgerError(StorageError):
    """A command that works on an existing ledger found none where it looked."""
