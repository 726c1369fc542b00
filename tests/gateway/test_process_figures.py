"""Each gateway process publishes what it counts; any process reports them all on /metrics."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.transport.http_app import _publishing_figures, build_app
from gateway.transport.metrics_text import LATENCY_BUCKETS, process_lines
from gateway.transport.process_figures import FiguresBoard, ProcessFigures, WorkerFigures
from tests.gateway.conftest import CCB, Harness, assert_prometheus_text

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


def figures(slot: int, **values: object) -> ProcessFigures:
    return ProcessFigures(slot=slot, pid=1000 + slot, published_at=NOW, **values)  # type: ignore[arg-type]


def test_a_process_reads_the_others_snapshots_not_its_own(tmp_path: Path) -> None:
    first, second, third = (FiguresBoard(tmp_path, slot) for slot in (0, 1, 2))
    third.publish(figures(2, messages={"pacs.008.001.08": {"accepted": 5}}))
    first.publish(figures(0, authentication_failures=1))
    second.publish(figures(1, workers=None, pushed={"105100000017": 3}))
    assert [found.slot for found in first.others()] == [1, 2]
    assert [found.slot for found in second.others()] == [0, 2]
    assert first.others()[1].messages == {"pacs.008.001.08": {"accepted": 5}}
    assert second.others()[0].authentication_failures == 1
    # A newer snapshot replaces the old one, and leaves no temporary file behind.
    third.publish(figures(2, messages={"pacs.008.001.08": {"accepted": 6}}))
    assert first.others()[1].messages == {"pacs.008.001.08": {"accepted": 6}}
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "process-0.json",
        "process-1.json",
        "process-2.json",
    ]


def test_a_damaged_snapshot_is_left_out_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    board = FiguresBoard(tmp_path, 0)
    FiguresBoard(tmp_path, 1).publish(figures(1))
    (tmp_path / "process-2.json").write_bytes(b'{"slot": 2, "pid": "x')
    (tmp_path / "process-3.json").write_bytes(b"{}")  # valid JSON, not figures
    # A file whose content is another slot's (copied by hand) is not reported twice.
    (tmp_path / "process-4.json").write_bytes((tmp_path / "process-1.json").read_bytes())
    with caplog.at_level(logging.WARNING, "isogw.http"):
        assert [found.slot for found in board.others()] == [1]
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 3, messages
    for name in ("process-2.json", "process-3.json"):
        assert any(
            f"event=metrics-file-unreadable file={tmp_path / name} reason=" in message
            for message in messages
        ), messages
    assert (
        f"event=metrics-file-unreadable file={tmp_path / 'process-4.json'} "
        "reason=it holds slot 1" in messages
    )


def test_no_folder_means_no_other_processes(tmp_path: Path) -> None:
    assert FiguresBoard(tmp_path / "metrics", 0).others() == []
    FiguresBoard(tmp_path / "metrics", 0).clear()  # nothing to clear: no error


def test_clearing_removes_every_snapshot_and_nothing_else(tmp_path: Path) -> None:
    FiguresBoard(tmp_path, 1).publish(figures(1))
    FiguresBoard(tmp_path, 5).publish(figures(5))
    (tmp_path / ".process-1.json.4242").write_bytes(b"partial")
    (tmp_path / "notes.txt").write_text("kept")
    FiguresBoard(tmp_path, 0).clear()
    assert [path.name for path in tmp_path.iterdir()] == ["notes.txt"]
    assert FiguresBoard(tmp_path, 0).others() == []


def test_the_text_has_every_process_under_its_slot() -> None:
    counts = [0] * (len(LATENCY_BUCKETS) + 1)
    counts[0], counts[3], counts[-1] = 2, 1, 1
    first = figures(
        0,
        messages={"pacs.008.001.08": {"accepted": 3, "rejected-DU01": 1}},
        latency_counts=counts,
        latency_sum=7.5,
        tls_refused={"certificate": 2},
        workers=WorkerFigures(running=1, restarts=2, abandoned=0),
    )
    second = ProcessFigures(
        slot=1,
        pid=2002,
        published_at=NOW - timedelta(seconds=1.5),
        messages={"pacs.003.001.08": {"accepted": 4}},
        pushed={"105100000017": 9},
    )
    text = "\n".join(process_lines([second, first], NOW)) + "\n"
    for line in (
        'isogw_process_info{process="0",pid="1000"} 1',
        'isogw_process_info{process="1",pid="2002"} 1',
        'isogw_process_figures_age_seconds{process="0"} 0.0',
        'isogw_process_figures_age_seconds{process="1"} 1.5',
        'isogw_messages_total{process="0",message="pacs.008.001.08",outcome="accepted"} 3',
        'isogw_messages_total{process="0",message="pacs.008.001.08",outcome="rejected-DU01"} 1',
        'isogw_messages_total{process="1",message="pacs.003.001.08",outcome="accepted"} 4',
        # Cumulative buckets; a process with no submissions still has its histogram.
        'isogw_submit_seconds_bucket{process="0",le="0.005"} 2',
        'isogw_submit_seconds_bucket{process="0",le="0.05"} 3',
        'isogw_submit_seconds_bucket{process="0",le="+Inf"} 4',
        'isogw_submit_seconds_count{process="0"} 4',
        'isogw_submit_seconds_sum{process="0"} 7.5',
        'isogw_submit_seconds_bucket{process="1",le="+Inf"} 0',
        'isogw_tls_refused_total{process="0",kind="certificate"} 2',
        'isogw_tls_refused_total{process="0",kind="protocol"} 0',
        'isogw_tls_refused_total{process="1",kind="certificate"} 0',
        'isogw_pushed_total{process="1",participant="105100000017"} 9',
        'isogw_worker_restarts_total{process="0"} 2',
        'isogw_worker_processes{process="0"} 1',
    ):
        assert line + "\n" in text, line
    # Only the first process supervises the others.
    assert 'isogw_worker_processes{process="1"}' not in text
    # Each family declared once, before its samples, which come together, slot 0 first.
    assert_prometheus_text(text)
    assert text.index('isogw_messages_total{process="0"') < text.index(
        'isogw_messages_total{process="1"'
    )


@pytest.fixture
def blocked(harness: Harness, tmp_path: Path) -> Path:
    """A file where the harness process's metrics folder should be: publishing fails."""
    path = tmp_path / "a-file"
    path.write_text("not a folder")
    harness.runtime.figures_board = FiguresBoard(path / "metrics", 0)
    return path


async def test_a_process_that_cannot_publish_logs_it_once_and_goes_on(
    harness: Harness, blocked: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = build_app(harness.runtime)
    with caplog.at_level(logging.INFO, "isogw.http"):
        publishing = _publishing_figures(app)
        await anext(publishing)
        await asyncio.sleep(0)  # the publishing task's first turn: it fails
        # The scrape still answers, with this process's own figures.
        status, _, text = await harness.get(CCB, "/metrics")
        assert status == 200
        assert 'isogw_process_info{process="0",pid="' in text
        blocked.unlink()  # the folder can be made now: the last publish succeeds
        with pytest.raises(StopAsyncIteration):
            await anext(publishing)
    logged = [
        record.getMessage() for record in caplog.records if "event=metrics-" in record.getMessage()
    ]
    assert len(logged) == 2, logged
    assert logged[0].startswith(
        f"event=metrics-not-published folder={blocked / 'metrics'} reason=[Errno 20] Not a "
        "directory"
    )
    assert logged[1] == f"event=metrics-published-again folder={blocked / 'metrics'}"
    [published] = FiguresBoard(blocked / "metrics", 1).others()
    assert published.slot == 0


async def test_failing_again_and_again_is_logged_once(
    harness: Harness, blocked: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, "isogw.http"):
        publishing = _publishing_figures(build_app(harness.runtime))
        await anext(publishing)
        await asyncio.sleep(0)
        with pytest.raises(StopAsyncIteration):
            await anext(publishing)  # fails again as it stops
    logged = [
        record.getMessage() for record in caplog.records if "event=metrics-" in record.getMessage()
    ]
    assert len(logged) == 1 and "metrics-not-published" in logged[0], logged


async def test_the_harness_process_publishes_its_figures(harness: Harness) -> None:
    """The running gateway publishes at start (and every http.metrics_publish_seconds)."""
    board = harness.runtime.figures_board
    assert board is not None
    reader = FiguresBoard(board.folder, 7)
    [published] = reader.others()
    assert (published.slot, published.pid) == (0, harness.runtime.figures(NOW).pid)
