"""What each gateway process counts, shared so that any process answers /metrics for all.

Several processes share the port, so a scrape reaches one of them. Each process publishes a
snapshot of its own counts (messages by type and outcome, latencies, authentication failures,
refused handshakes, the clearing writer, pushes, and, in the first process, the others'
restarts) to ``state/metrics/process-N.json`` every ``http.metrics_publish_seconds`` and when
it stops. The process answering a scrape reports its live counts and the others' last
snapshots, each under its ``process`` label: its slot, 0 for the first process, 1… for the
others it started (a slot keeps its number across restarts, so the series stay few). A
snapshot's age is reported too: one that keeps growing is a process that no longer publishes.

A snapshot is written to a temporary file and renamed over the old one, so a reader sees a
whole snapshot or the previous one. A file that cannot be read (damaged, or from another
version) is left out of the scrape and logged; it holds nothing that must be kept.

Why not ``prometheus_client``'s multiprocess mode: it is switched on by an environment
variable its documentation says to set from a start-up shell script, not from Python, its
folder must be wiped between runs, and it keeps files per process id; the gateway's processes
have stable slots, and the state folder is the composition root's to choose.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

LOG = logging.getLogger("isogw.http")
FILE_PREFIX = "process-"
FILE_SUFFIX = ".json"


@dataclass(frozen=True)
class WorkerFigures:
    """The other gateway processes, as the first process (which starts them) sees them."""

    running: int
    restarts: int
    abandoned: int


@dataclass(frozen=True)
class ProcessFigures:
    """One process's counts since it started."""

    slot: int
    pid: int
    published_at: datetime
    messages: dict[str, dict[str, int]] = field(default_factory=dict)
    """Message type → outcome → submissions."""
    latency_counts: list[int] = field(default_factory=list)
    """Submissions per latency bucket (not cumulative), the last one unbounded."""
    latency_sum: float = 0.0
    submissions_in_flight: int = 0
    authentication_failures: int = 0
    authentication_not_shared: int = 0
    authentication_alarms: int = 0
    tls_refused: dict[str, int] = field(default_factory=dict)
    writer_transactions: int = 0
    writer_commands: int = 0
    writer_lock_wait_seconds: float = 0.0
    writer_lock_held_seconds: float = 0.0
    pushed: dict[str, int] = field(default_factory=dict)
    push_failures: dict[str, int] = field(default_factory=dict)
    workers: WorkerFigures | None = None


FIGURES = TypeAdapter(ProcessFigures)


class FiguresBoard:
    """The folder where the gateway processes publish their figures."""

    def __init__(self, folder: Path, slot: int) -> None:
        self.folder = folder
        self.slot = slot

    def _file(self, slot: int) -> Path:
        return self.folder / f"{FILE_PREFIX}{slot}{FILE_SUFFIX}"

    def publish(self, figures: ProcessFigures) -> None:
        """Replace this process's snapshot (a reader sees the old one or the new one)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self._file(self.slot)
        partial = target.with_name(f".{target.name}.{os.getpid()}")
        partial.write_bytes(FIGURES.dump_json(figures))
        os.replace(partial, target)

    def others(self) -> list[ProcessFigures]:
        """The other processes' last snapshots, by slot; unreadable ones are logged and left
        out."""
        found: list[ProcessFigures] = []
        try:
            paths = sorted(self.folder.glob(f"{FILE_PREFIX}*{FILE_SUFFIX}"))
        except OSError as error:
            LOG.warning("event=metrics-folder-unreadable folder=%s reason=%s", self.folder, error)
            return found
        for path in paths:
            if path == self._file(self.slot):
                continue
            try:
                figures = FIGURES.validate_json(path.read_bytes())
            except (OSError, ValidationError) as error:
                reason = str(error).splitlines()[0]
                LOG.warning("event=metrics-file-unreadable file=%s reason=%s", path, reason)
                continue
            if path != self._file(figures.slot):
                LOG.warning(
                    "event=metrics-file-unreadable file=%s reason=it holds slot %d",
                    path,
                    figures.slot,
                )
                continue
            found.append(figures)
        return sorted(found, key=lambda figures: figures.slot)

    def clear(self) -> None:
        """Remove every snapshot: the first process does this before it starts the others, so
        slots of an earlier run with more processes are not reported as if still there."""
        if not self.folder.is_dir():
            return
        for path in self.folder.iterdir():
            if path.name.startswith((FILE_PREFIX, f".{FILE_PREFIX}")):
                path.unlink(missing_ok=True)
