"""Prometheus text for ``/metrics``: commands served, their latency, errors, job outcomes.

Counters live in the process (each gunicorn worker reports its own, as Prometheus scrapes
per process); job outcomes are read from the store, so every replica reports the same ones.
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from collections.abc import Iterable

from jobs.errors import StoreUnavailable
from jobs.store import Store

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Telemetry:
    """Thread-safe counters and a latency histogram per `/flow` subcommand."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._served: Counter[tuple[str, str]] = Counter()
        self._buckets: dict[str, list[int]] = {}
        self._sum: dict[str, float] = {}
        self._errors: Counter[str] = Counter()
        self._rejected: Counter[str] = Counter()

    def command(self, sub: str, seconds: float, *, ok: bool) -> None:
        """Count one answered `/flow SUB` and its latency."""
        with self._lock:
            self._served[(sub, "ok" if ok else "error")] += 1
            counts = self._buckets.setdefault(sub, [0] * (len(BUCKETS) + 1))
            counts[bisect.bisect_left(BUCKETS, seconds)] += 1
            self._sum[sub] = self._sum.get(sub, 0.0) + seconds

    def error(self, kind: str) -> None:
        """Count one unexpected error reaching the error handler."""
        with self._lock:
            self._errors[kind] += 1

    def rejected(self, reason: str) -> None:
        """Count one HTTP request refused before Bolt (unsigned, stale, forged, too large)."""
        with self._lock:
            self._rejected[reason] += 1

    def render(self, store: Store | None = None) -> str:
        """The Prometheus text exposition (version 0.0.4)."""
        with self._lock:
            lines = ["# HELP flowbot_commands_total /flow commands answered, by subcommand and outcome.",
                     "# TYPE flowbot_commands_total counter"]
            lines += [f'flowbot_commands_total{{subcommand="{s}",outcome="{o}"}} {n}'
                      for (s, o), n in sorted(self._served.items())]
            lines += ["# HELP flowbot_command_seconds Time to answer a /flow command.",
                      "# TYPE flowbot_command_seconds histogram"]
            for sub, counts in sorted(self._buckets.items()):
                running = 0
                for bound, n in zip((*BUCKETS, float("inf")), counts, strict=True):
                    running += n
                    le = "+Inf" if bound == float("inf") else f"{bound:g}"
                    lines.append(f'flowbot_command_seconds_bucket{{subcommand="{sub}",le="{le}"}} {running}')
                lines.append(f'flowbot_command_seconds_sum{{subcommand="{sub}"}} {self._sum.get(sub, 0.0):.6f}')
                lines.append(f'flowbot_command_seconds_count{{subcommand="{sub}"}} {running}')
            lines += ["# HELP flowbot_errors_total Unexpected errors answered by the error handler.",
                      "# TYPE flowbot_errors_total counter"]
            lines += [f'flowbot_errors_total{{kind="{k}"}} {n}' for k, n in sorted(self._errors.items())]
            lines += ["# HELP flowbot_requests_rejected_total HTTP requests refused before Bolt.",
                      "# TYPE flowbot_requests_rejected_total counter"]
            lines += [f'flowbot_requests_rejected_total{{reason="{r}"}} {n}'
                      for r, n in sorted(self._rejected.items())]
        lines += _job_lines(store)
        return "\n".join(lines) + "\n"


def _job_lines(store: Store | None) -> Iterable[str]:
    lines = ["# HELP flowbot_job_runs Recent runs of each scheduled job, by outcome (last 50 kept).",
             "# TYPE flowbot_job_runs gauge",
             "# HELP flowbot_job_last_run_timestamp_seconds When each job last started.",
             "# TYPE flowbot_job_last_run_timestamp_seconds gauge",
             "# HELP flowbot_store_up 1 when Redis answered this scrape.",
             "# TYPE flowbot_store_up gauge"]
    if store is None:
        return lines
    try:
        for job in store.job_names():
            runs = store.job_runs(job, limit=50)
            for outcome, n in sorted(Counter(r.outcome for r in runs).items()):
                lines.append(f'flowbot_job_runs{{job="{_label(job)}",outcome="{_label(outcome)}"}} {n}')
            if runs:
                lines.append(f'flowbot_job_last_run_timestamp_seconds{{job="{_label(job)}"}} '
                             f"{runs[0].started_at.timestamp():.0f}")
    except StoreUnavailable:
        lines.append("flowbot_store_up 0")
    else:
        lines.append("flowbot_store_up 1")
    return lines


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
