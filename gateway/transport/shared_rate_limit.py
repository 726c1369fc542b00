"""Per-participant token buckets that every gateway process sharing the port takes from.

The gateway processes (``http.workers``) share one listening port, and a bank's connections
land on any of them. A bucket per process would let a bank reach the configured rate once per
process. So the buckets live in a small file in the state folder, which every process maps into
memory; a process takes a token under an exclusive ``flock`` of that file (held for a few
microseconds, never across an ``await``).

Layout: a header (a magic string and a digest of the participant list) and one slot per
participant, in the order of the sorted participant codes: the tokens left and when the bucket
was last refilled, in seconds of the monotonic clock the runtime passes in (``CLOCK_MONOTONIC``
is the same for every process on the host). A file written for another participant list, or
of another size, is started afresh. After a reboot the monotonic clock starts again below the
stored times: the refill then counts from the first request after it, and no bucket stays
empty.

No maintained library fits: ``limits`` keeps cross-process state in Redis or Memcached, and
``pyrate-limiter``'s SQLite bucket writes a database row per request with a sliding-window
algorithm rather than a rate and a burst.
"""

from __future__ import annotations

import fcntl
import hashlib
import math
import mmap
import os
import struct
from collections.abc import Iterable
from pathlib import Path

MAGIC = b"ISOGWRL1"
HEADER = struct.Struct("<8s32s")
"""Magic, SHA-256 of the participant codes the slots are for."""
SLOT = struct.Struct("<dd")
"""Tokens left, monotonic seconds of the last refill (-inf: never used, full)."""


class SharedRateLimit:
    def __init__(self, path: Path, participants: Iterable[str], rate: float, burst: int) -> None:
        """``rate`` tokens a second per participant, at most ``burst`` in the bucket; the
        buckets in the file at ``path`` (created if missing, shared with every process that
        opens the same file with the same participants)."""
        codes = sorted(set(participants))
        self._slots = {code: HEADER.size + index * SLOT.size for index, code in enumerate(codes)}
        self._rate = rate
        self._burst = float(burst)
        size = HEADER.size + len(codes) * SLOT.size
        digest = hashlib.sha256("\n".join(codes).encode()).digest()
        self._file = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            with self._locked():
                header = os.pread(self._file, HEADER.size, 0)
                if header != HEADER.pack(MAGIC, digest) or os.fstat(self._file).st_size != size:
                    self._start_afresh(size, digest)
            self._memory = mmap.mmap(self._file, size)
        except BaseException:
            os.close(self._file)
            raise

    def _start_afresh(self, size: int, digest: bytes) -> None:
        os.ftruncate(self._file, size)
        slots = SLOT.pack(0.0, -math.inf) * len(self._slots)
        os.pwrite(self._file, HEADER.pack(MAGIC, digest) + slots, 0)

    def _locked(self) -> _FileLock:
        return _FileLock(self._file)

    def take(self, participant: str, now: float) -> bool:
        """Take a token from ``participant``'s bucket at ``now`` (monotonic seconds): False
        when it has none left (the request is over the rate). A participant without a slot
        (not configured) is refused."""
        offset = self._slots.get(participant)
        if offset is None:
            return False
        with self._locked():
            tokens, last = SLOT.unpack_from(self._memory, offset)
            elapsed = now - last if now >= last else 0.0
            tokens = min(self._burst, float(tokens) + elapsed * self._rate)
            taken = tokens >= 1
            SLOT.pack_into(self._memory, offset, tokens - 1 if taken else tokens, now)
        return taken

    def close(self) -> None:
        self._memory.close()
        os.close(self._file)


class _FileLock:
    """An exclusive ``flock`` of an open file, as a context manager."""

    def __init__(self, descriptor: int) -> None:
        self._descriptor = descriptor

    def __enter__(self) -> None:
        fcntl.flock(self._descriptor, fcntl.LOCK_EX)

    def __exit__(self, *exception: object) -> None:
        fcntl.flock(self._descriptor, fcntl.LOCK_UN)
