"""An input to validate: a name for reports and a way to open it (twice if needed)."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, cast

SPOOL_IN_MEMORY_BYTES = 8 * 1024 * 1024
"""Standard input above this size is spooled to a temporary file."""


@dataclass(frozen=True)
class InputSource:
    name: str
    open: Callable[[], BinaryIO]
    size: int | None = None
    """Size in bytes when known; small inputs are parsed whole, larger ones streamed."""

    @classmethod
    def from_path(cls, path: Path, name: str | None = None) -> InputSource:
        return cls(name or str(path), lambda: path.open("rb"), path.stat().st_size)

    @classmethod
    def from_bytes(cls, data: bytes, name: str) -> InputSource:
        return cls(name, lambda: io.BytesIO(data), len(data))


def spool(stream: IO[bytes], name: str, limit: int) -> tuple[InputSource, IO[bytes]]:
    """Copy a one-shot stream (stdin) into a spooled file so it can be read twice.

    Copies at most ``limit + 1`` bytes; the guarded parser then reports the size problem.
    Returns the source and the spool, which the caller closes.
    """
    spooled = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES)  # noqa: SIM115
    remaining = limit + 1
    while remaining > 0:
        chunk = stream.read(min(1024 * 1024, remaining))
        if not chunk:
            break
        spooled.write(chunk)
        remaining -= len(chunk)

    def reopen() -> BinaryIO:
        spooled.seek(0)
        return cast(BinaryIO, _Unclosable(spooled))

    return InputSource(name, reopen, spooled.tell()), spooled


class _Unclosable(io.RawIOBase):
    """A view of the spool that readers may close without closing the spool."""

    def __init__(self, inner: IO[bytes]) -> None:
        self._inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]  # narrower buffer
        data = self._inner.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


__all__ = ["InputSource", "spool"]
