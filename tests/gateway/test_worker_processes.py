"""The first gateway process supervises the others: one that stops is started again, one that
keeps stopping is given up (and said so), none is restarted while the gateway stops, one that
will not stop is killed, and the others stop when the first one has gone.

The processes here are small Python programs, not gateways (the gateway itself is in
test_workers.py), so each scenario takes a fraction of a second."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.configuration.settings import HttpSettings
from gateway.transport.worker_processes import WorkerSupervisor, exit_description
from tests.gateway.conftest import wait_until

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]
FAILING = [sys.executable, "-c", "import sys; sys.exit(3)"]


def settings(**values: float) -> HttpSettings:
    return HttpSettings(**{"worker_restart_delay_seconds": 0, **values})  # type: ignore[arg-type]


def records(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [record for record in caplog.records if f"event={event} " in record.getMessage()]


def test_a_process_that_stops_is_started_again(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "isogw.serve")

    async def scenario() -> tuple[int, list[int]]:
        supervisor = WorkerSupervisor(SLEEPER, 2, settings())
        await supervisor.start()
        first = [process.pid for process in supervisor.processes]
        assert supervisor.running == 2
        os.kill(first[0], signal.SIGKILL)

        async def replaced() -> bool:
            pids = [process.pid for process in supervisor.processes]
            return len(pids) == 2 and first[0] not in pids

        await wait_until(replaced, "the killed process to be started again", seconds=20)
        assert first[1] in [process.pid for process in supervisor.processes]
        assert (supervisor.running, supervisor.counts.restarts) == (2, 1)
        await supervisor.stop(grace_seconds=20)
        assert supervisor.processes == [] and supervisor.running == 0
        return first[0], first

    killed, _ = asyncio.run(scenario())
    [exited] = records(caplog, "worker-exited")
    assert exited.levelno == logging.ERROR
    assert f"process={killed} signal=SIGKILL" in exited.getMessage()
    [restarted] = records(caplog, "worker-restarted")
    assert f"replacing={killed}" in restarted.getMessage()
    # Stopping the gateway is not a process stopping unexpectedly.
    assert len(records(caplog, "worker-exited")) == 1


async def run_until_given_up(command: list[str], restarts: int) -> WorkerSupervisor:
    """One process of ``command``, a clock that never moves (every restart is within the
    window), until the process is given up; then the supervisor stops."""
    supervisor = WorkerSupervisor(command, 1, settings(worker_restarts=restarts), lambda: 0.0)
    await supervisor.start()

    async def given_up() -> bool:
        return supervisor.counts.abandoned == 1

    await wait_until(given_up, "the process to be given up", seconds=20)
    await supervisor.stop(grace_seconds=20)
    return supervisor


def test_a_process_that_keeps_stopping_is_given_up(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "isogw.serve")

    supervisor = asyncio.run(run_until_given_up(FAILING, restarts=2))
    assert (supervisor.counts.restarts, supervisor.running) == (2, 0)
    exits = records(caplog, "worker-exited")
    assert [record.getMessage().endswith("exit_code=3") for record in exits] == [True] * 3
    [abandoned] = records(caplog, "worker-abandoned")
    assert abandoned.levelno == logging.ERROR
    assert "slot=1 restarts=2 window_seconds=60" in abandoned.getMessage()
    assert "the gateway goes on with 1 of 2 processes" in abandoned.getMessage()


def test_restarts_longer_ago_than_the_window_are_not_counted() -> None:
    # Each look at the clock is a window later: however often the process stops, it never
    # has a restart within the window, so it is never given up.
    ticks = itertools.count(0, 60)

    async def scenario() -> WorkerSupervisor:
        supervisor = WorkerSupervisor(
            FAILING, 1, settings(worker_restarts=1), lambda: float(next(ticks))
        )
        await supervisor.start()

        async def restarted_often() -> bool:
            return supervisor.counts.restarts >= 4

        await wait_until(restarted_often, "four restarts", seconds=30)
        await supervisor.stop(grace_seconds=20)
        return supervisor

    supervisor = asyncio.run(scenario())
    assert supervisor.counts.abandoned == 0


def test_no_restart_counts_while_the_gateway_stops() -> None:
    async def scenario() -> WorkerSupervisor:
        # A restart delay longer than the test: a restart would have to wait it out.
        supervisor = WorkerSupervisor(SLEEPER, 3, settings(worker_restart_delay_seconds=300))
        await supervisor.start()
        await asyncio.wait_for(supervisor.stop(grace_seconds=20), 30)
        return supervisor

    supervisor = asyncio.run(scenario())
    assert supervisor.processes == []
    assert (supervisor.running, supervisor.counts.restarts) == (0, 0)


def test_a_process_that_does_not_stop_is_killed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "isogw.serve")
    ready = tmp_path / "ready"
    stubborn = [
        sys.executable,
        "-c",
        "import pathlib, signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "pathlib.Path(sys.argv[1]).touch(); time.sleep(120)",
        str(ready),
    ]

    async def scenario() -> list[int]:
        supervisor = WorkerSupervisor(stubborn, 1, settings())
        await supervisor.start()
        pids = [process.pid for process in supervisor.processes]

        async def ignoring_terminate() -> bool:
            return ready.exists()

        await wait_until(ignoring_terminate, "the process to ignore SIGTERM", seconds=20)
        await asyncio.wait_for(supervisor.stop(grace_seconds=0.2), 30)
        assert supervisor.processes == []
        return pids

    [pid] = asyncio.run(scenario())
    [killed] = records(caplog, "worker-killed")
    assert f"process={pid} reason=still running 0.2 s after being asked to stop" in (
        killed.getMessage()
    )
    assert records(caplog, "worker-exited") == []


WATCHER = """
import asyncio, logging, sys
from gateway.transport.worker_processes import watch_parent
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

async def main() -> None:
    stopped = asyncio.Event()
    watch_parent(asyncio.get_running_loop(), stopped.set)
    print("watching", flush=True)
    await stopped.wait()
    print("stopped", flush=True)

asyncio.run(main())
"""


def test_a_started_process_stops_when_its_pipe_from_the_first_closes() -> None:
    # The first process's end of the pipe closes when it ends in any way (kill -9 included).
    child = subprocess.Popen(
        [sys.executable, "-c", WATCHER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert child.stdout is not None and child.stdin is not None
    assert child.stdout.readline() == b"watching\n"
    child.stdin.close()
    child.wait(timeout=30)
    output, errors = child.stdout.read(), child.stderr.read()
    assert child.returncode == 0, errors
    assert output == b"stopped\n"
    assert b"WARNING event=parent-gone process=" in errors


def test_exit_descriptions() -> None:
    assert exit_description(3) == "exit_code=3"
    assert exit_description(0) == "exit_code=0"
    assert exit_description(-9) == "signal=SIGKILL"
    assert exit_description(-200) == "signal=200"


def test_a_graceful_stop_is_a_warning_and_the_process_is_started_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A process asked to stop on its own (SIGTERM to it alone) exits 0: not an error, but the
    # gateway still wants its processes.
    caplog.set_level(logging.INFO, "isogw.serve")
    clean = [sys.executable, "-c", "import sys; sys.exit(0)"]

    supervisor = asyncio.run(run_until_given_up(clean, restarts=1))
    assert supervisor.counts.restarts == 1
    exits = records(caplog, "worker-exited")
    assert [(record.levelno, record.getMessage()[-11:]) for record in exits] == [
        (logging.WARNING, "exit_code=0")
    ] * 2
