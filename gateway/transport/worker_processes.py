"""The first gateway process starts the others (``http.workers``), restarts one that stops
while the gateway is running, and stops them when it stops.

Each other process reads a pipe from the first on its standard input and never gets a byte:
when the first process ends, however it ends (even ``kill -9``), the kernel closes the pipe
and the others stop gracefully too, instead of holding the port for a gateway no longer
there (``watch_parent``).

A process that stops unexpectedly is logged with its exit code or signal (at ERROR, or at
WARNING for a graceful stop, exit code 0), and started again after
``http.worker_restart_delay_seconds`` unless the gateway is stopping by then. A process that
keeps stopping (``http.worker_restarts`` restarts of one slot within
``http.worker_restart_window_seconds``) is not started again: the ERROR line
``event=worker-abandoned`` says so, and the gateway goes on with the processes it has.
Restarts are counted for /metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from gateway.configuration.settings import HttpSettings

LOG = logging.getLogger("isogw.serve")
SLOT_ARGUMENT = "--process-slot"
"""Appended to the command with the process's slot number (1…; the first process is 0): a
restarted process takes the number of the one it replaces."""


def exit_description(returncode: int) -> str:
    """``exit_code=3`` or ``signal=SIGKILL`` (asyncio gives a signal as a negative code)."""
    if returncode < 0:
        try:
            return f"signal={signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal={-returncode}"
    return f"exit_code={returncode}"


@dataclass
class WorkerCounts:
    restarts: int = 0
    abandoned: int = 0


@dataclass
class _Slot:
    number: int
    process: asyncio.subprocess.Process | None = None
    restarted_at: deque[float] = field(default_factory=deque)


class WorkerSupervisor:
    def __init__(
        self,
        command: Sequence[str],
        count: int,
        settings: HttpSettings,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._command = list(command)
        self._settings = settings
        self._monotonic = monotonic
        self._slots = [_Slot(number) for number in range(1, count + 1)]
        self._watchers: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self.counts = WorkerCounts()

    @property
    def processes(self) -> list[asyncio.subprocess.Process]:
        """The processes running now (for tests and the shutdown)."""
        return [
            slot.process
            for slot in self._slots
            if slot.process is not None and slot.process.returncode is None
        ]

    def send_signal(self, number: int) -> None:
        """Pass a signal on to the processes running now (SIGHUP: reload certificates)."""
        for process in self.processes:
            process.send_signal(number)

    @property
    def running(self) -> int:
        return len(self.processes)

    async def start(self) -> None:
        """Start every process and watch each one (they start while the caller starts)."""
        for slot in self._slots:
            await self._launch(slot)
            self._watchers.append(asyncio.create_task(self._watch(slot)))

    async def _launch(self, slot: _Slot) -> None:
        # stdin: the pipe whose end tells the process that this one has gone (watch_parent).
        slot.process = await asyncio.create_subprocess_exec(
            *self._command, SLOT_ARGUMENT, str(slot.number), stdin=asyncio.subprocess.PIPE
        )

    async def _watch(self, slot: _Slot) -> None:
        while True:
            assert slot.process is not None
            returncode = await slot.process.wait()
            if self._stopping.is_set():
                return
            now = self._monotonic()
            window = self._settings.worker_restart_window_seconds
            while slot.restarted_at and now - slot.restarted_at[0] >= window:
                slot.restarted_at.popleft()
            # A clean exit (0) is a graceful stop someone asked for: a signal to that process
            # alone, or Ctrl-C, which reaches every process a moment before this one stops.
            LOG.log(
                logging.WARNING if returncode == 0 else logging.ERROR,
                "event=worker-exited slot=%d process=%d %s",
                slot.number,
                slot.process.pid,
                exit_description(returncode),
            )
            if len(slot.restarted_at) >= self._settings.worker_restarts:
                self.counts.abandoned += 1
                LOG.error(
                    "event=worker-abandoned slot=%d restarts=%d window_seconds=%g "
                    "reason=stopped again after %d restarts; not started again, the gateway "
                    "goes on with %d of %d processes",
                    slot.number,
                    len(slot.restarted_at),
                    window,
                    len(slot.restarted_at),
                    self.running + 1,
                    len(self._slots) + 1,
                )
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._stopping.wait(), self._settings.worker_restart_delay_seconds
                )
            if self._stopping.is_set():
                return
            slot.restarted_at.append(self._monotonic())
            replaced = slot.process.pid
            await self._launch(slot)
            self.counts.restarts += 1
            LOG.warning(
                "event=worker-restarted slot=%d process=%d replacing=%d",
                slot.number,
                slot.process.pid,
                replaced,
            )

    def begin_stopping(self) -> None:
        """No more restarts; every process is asked to stop (each finishes its requests in
        flight, as this one does, and at the same time). Asked once: a second signal would
        only be logged as ignored."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()

    async def stop(self, grace_seconds: float) -> None:
        """Stop every process: wait ``grace_seconds`` for them to finish, then kill."""
        self.begin_stopping()
        waits = [process.wait() for process in self.processes]
        if waits:
            try:
                await asyncio.wait_for(asyncio.gather(*waits), grace_seconds)
            except TimeoutError:
                for process in self.processes:
                    LOG.error(
                        "event=worker-killed process=%d reason=still running %g s after being "
                        "asked to stop",
                        process.pid,
                        grace_seconds,
                    )
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
                await asyncio.gather(*(process.wait() for process in self.processes))
        for watcher in self._watchers:
            watcher.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)


def watch_parent(loop: asyncio.AbstractEventLoop, stop: Callable[[], None]) -> None:
    """In a process the first one started: call ``stop`` once standard input (the first
    process's pipe) reaches its end, that is, once the first process has gone."""
    descriptor = 0

    def readable() -> None:
        try:
            data = os.read(descriptor, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            return  # the first process never writes; nothing to do
        loop.remove_reader(descriptor)
        LOG.warning(
            "event=parent-gone process=%d reason=the first gateway process has ended; "
            "stopping gracefully",
            os.getpid(),
        )
        stop()

    os.set_blocking(descriptor, False)
    loop.add_reader(descriptor, readable)
