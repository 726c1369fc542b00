"""The Prometheus text of what the gateway processes count (gateway.transport.process_figures):
one series per process for each family, labelled with the process's slot."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from gateway.transport.process_figures import ProcessFigures, WorkerFigures

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Upper bounds (seconds) of the submission latency histogram; one more bucket is unbounded."""

_PerProcess = Callable[[ProcessFigures], Iterable[tuple[str, float | int]]]
"""A family's samples of one process: (extra labels, value)."""


def _label(figures: ProcessFigures) -> str:
    return f'process="{figures.slot}"'


def _family(
    name: str, kind: str, processes: Sequence[ProcessFigures], samples: _PerProcess
) -> list[str]:
    lines = [f"# TYPE {name} {kind}"]
    for figures in processes:
        for labels, value in samples(figures):
            lines.append(f"{name}{{{_label(figures)}{labels}}} {value}")
    return lines


def _one(value: Callable[[ProcessFigures], float | int]) -> _PerProcess:
    return lambda figures: [("", value(figures))]


def _by(
    label: str, values: Callable[[ProcessFigures], dict[str, int]], keys: Sequence[str] = ()
) -> _PerProcess:
    """A sample per key (``keys`` always, even at 0, then any others the process has)."""

    def samples(figures: ProcessFigures) -> list[tuple[str, float | int]]:
        counts = values(figures)
        every = [*keys, *sorted(set(counts) - set(keys))]
        return [(f',{label}="{key}"', counts.get(key, 0)) for key in every]

    return samples


def _latency(figures: ProcessFigures) -> list[tuple[str, float | int]]:
    samples: list[tuple[str, float | int]] = []
    cumulative = 0
    bounds = (*LATENCY_BUCKETS, float("inf"))
    counts = figures.latency_counts or [0] * len(bounds)
    for bound, count in zip(bounds, counts, strict=True):
        cumulative += count
        label = "+Inf" if bound == float("inf") else str(bound)
        samples.append((f',le="{label}"', cumulative))
    return samples


def process_lines(processes: Sequence[ProcessFigures], now: datetime) -> list[str]:
    """Every per-process family, for ``processes`` (the answering one and the others' last
    snapshots), in the order of their slots."""
    processes = sorted(processes, key=lambda figures: figures.slot)
    lines = _family(
        "isogw_process_info",
        "gauge",
        processes,
        lambda figures: [(f',pid="{figures.pid}"', 1)],
    )
    lines += _family(
        "isogw_process_figures_age_seconds",
        "gauge",
        processes,
        _one(lambda figures: round(max((now - figures.published_at).total_seconds(), 0.0), 3)),
    )
    lines += ["# TYPE isogw_messages_total counter"]
    for figures in processes:
        for message, outcomes in sorted(figures.messages.items()):
            for outcome, count in sorted(outcomes.items()):
                lines.append(
                    f'isogw_messages_total{{{_label(figures)},message="{message}",'
                    f'outcome="{outcome}"}} {count}'
                )
    lines += ["# TYPE isogw_submit_seconds histogram"]
    for figures in processes:
        buckets = _latency(figures)
        lines += [
            f"isogw_submit_seconds_bucket{{{_label(figures)}{labels}}} {value}"
            for labels, value in buckets
        ]
        lines += [
            f"isogw_submit_seconds_sum{{{_label(figures)}}} {figures.latency_sum}",
            f"isogw_submit_seconds_count{{{_label(figures)}}} {buckets[-1][1]}",
        ]
    for name, kind, samples in (
        ("isogw_submissions_in_flight", "gauge", _one(lambda f: f.submissions_in_flight)),
        (
            "isogw_authentication_failures_total",
            "counter",
            _one(lambda f: f.authentication_failures),
        ),
        (
            "isogw_authentication_failures_not_shared_total",
            "counter",
            _one(lambda f: f.authentication_not_shared),
        ),
        ("isogw_authentication_alarms_total", "counter", _one(lambda f: f.authentication_alarms)),
        (
            "isogw_tls_refused_total",
            "counter",
            _by("kind", lambda f: f.tls_refused, ("certificate", "protocol")),
        ),
        ("isogw_writer_transactions_total", "counter", _one(lambda f: f.writer_transactions)),
        ("isogw_writer_commands_total", "counter", _one(lambda f: f.writer_commands)),
        (
            "isogw_writer_lock_wait_seconds_total",
            "counter",
            _one(lambda f: round(f.writer_lock_wait_seconds, 6)),
        ),
        (
            "isogw_writer_lock_held_seconds_total",
            "counter",
            _one(lambda f: round(f.writer_lock_held_seconds, 6)),
        ),
        ("isogw_pushed_total", "counter", _by("participant", lambda f: f.pushed)),
        ("isogw_push_failures_total", "counter", _by("participant", lambda f: f.push_failures)),
    ):
        lines += _family(name, kind, processes, samples)
    supervising = [(figures, figures.workers) for figures in processes if figures.workers]
    worker_families: tuple[tuple[str, str, Callable[[WorkerFigures], int]], ...] = (
        ("isogw_worker_processes", "gauge", lambda workers: workers.running),
        ("isogw_worker_restarts_total", "counter", lambda workers: workers.restarts),
        ("isogw_worker_abandoned_total", "counter", lambda workers: workers.abandoned),
    )
    for name, kind, value in worker_families if supervising else ():
        lines.append(f"# TYPE {name} {kind}")
        lines += [
            f"{name}{{{_label(figures)}}} {value(workers)}" for figures, workers in supervising
        ]
    return lines
