"""``/metrics`` through prometheus_client: answers served, errors, refusals, jobs, and flow itself.

Counters and the latency histogram are prometheus_client metrics. Under gunicorn
(``flowbot web``) every worker writes them to the shared ``PROMETHEUS_MULTIPROC_DIR`` that the
master prepared, and a scrape of any worker adds them up, so ``/metrics`` gives one consistent
set of counters whichever worker answers. Without that directory (tests, Socket Mode) they
live in the process.

Gauges are read at scrape time, never counted: the flow of each team (queue by whose turn,
oldest waiting, pickup p50, CI p90, alerts active) from its stored snapshot, and the scheduled
jobs' recent outcomes, from Redis. Every replica reports the same values.
"""

from __future__ import annotations

import contextvars
import logging
import os
from collections import Counter as Tally
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.metrics import disable_created_metrics
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from jobs.errors import FlowbotError, StoreUnavailable

if TYPE_CHECKING:
    from jobs.store import Store

log = logging.getLogger(__name__)

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

Outcome = Literal["ok", "stale", "unavailable", "error"]
# What the answer being built in this thread/greenlet was made of; set while reading, read once.
_answer_from: contextvars.ContextVar[Outcome | None] = contextvars.ContextVar("flowbot_answer_from",
                                                                              default=None)

# the *_created series double every counter and say nothing here
disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated


class Telemetry:
    """The counters one process reports: `/flow` answers by outcome and latency, errors, refusals.

    Thread-safe (prometheus_client locks each value). One registry per instance, so tests
    build as many as they like; in multiprocess mode the values go to the shared directory.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._commands = Counter("flowbot_commands", "/flow commands answered, by subcommand and outcome "
                                 "(stale: from the last copy held while Redis was unreachable).",
                                 ["subcommand", "outcome"], registry=self.registry)
        self._seconds = Histogram("flowbot_command_seconds", "Time to answer a /flow command.",
                                  ["subcommand"], buckets=BUCKETS, registry=self.registry)
        self._errors = Counter("flowbot_errors", "Unexpected errors answered by the error handler.",
                               ["kind"], registry=self.registry)
        self._rejected = Counter("flowbot_requests_rejected", "HTTP requests refused before Bolt.",
                                 ["reason"], registry=self.registry)
        self._webhooks = Counter("flowbot_webhooks", "Verified GitHub webhook deliveries, by outcome"
                                 " (queued, coalesced, duplicate, ignored, pong, unavailable).",
                                 ["outcome"], registry=self.registry)

    def reading(self, *, unavailable: bool, found: bool) -> None:
        """Note what the answer being built was read from (Redis, the last copy, nothing)."""
        if unavailable:
            _answer_from.set("stale" if found else "unavailable")

    def begin(self) -> None:
        """Forget any note left by an earlier request handled on this thread."""
        _answer_from.set(None)

    def command(self, sub: str, seconds: float, *, ok: bool) -> None:
        """Count one answered `/flow SUB` and its latency; ``stale``/``unavailable`` when noted."""
        noted = _answer_from.get()
        _answer_from.set(None)
        outcome: Outcome = "error" if not ok else (noted or "ok")
        self._commands.labels(sub, outcome).inc()
        self._seconds.labels(sub).observe(seconds)

    def error(self, kind: str) -> None:
        """Count one unexpected error reaching the error handler."""
        self._errors.labels(kind).inc()

    def rejected(self, reason: str) -> None:
        """Count one HTTP request refused before Bolt (unsigned, stale, forged, too large, slow)."""
        self._rejected.labels(reason).inc()

    def webhook(self, outcome: str) -> None:
        """Count one verified GitHub webhook delivery by what became of it."""
        self._webhooks.labels(outcome).inc()

    def render(self, gauges: Collector | None = None) -> str:
        """The Prometheus text exposition (0.0.4): the counters (all workers' when
        multiprocess), then ``gauges`` (a :class:`StoredGauges`, read now)."""
        registry = self.registry
        if os.environ.get(MULTIPROC_ENV):
            registry = CollectorRegistry(auto_describe=False)
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # unannotated upstream
        if gauges is not None:
            registry = _WithGauges(registry, gauges)
        return generate_latest(registry).decode()


class _WithGauges(CollectorRegistry):
    """One scrape's registry: the counters' collectors plus the gauges, without touching either."""

    def __init__(self, counters: CollectorRegistry, gauges: Collector) -> None:
        super().__init__(auto_describe=False)
        self._counters = counters
        self._gauges = gauges

    def collect(self) -> Iterator[Metric]:
        yield from self._counters.collect()
        yield from self._gauges.collect()


@dataclass(frozen=True, slots=True)
class TeamFlow:
    """The flow figures of one team that ``/metrics`` exports (``None``: not measured yet)."""

    team: str
    computed_at: datetime
    queue: dict[str, int]  # whose turn -> PRs
    oldest_hours: float | None
    pickup_p50_hours: float | None
    pickup_p50_business_hours: float | None
    ci_p90_minutes: float | None  # the slowest workflow's p90 run time
    alerts_active: int | None


def team_flow(store: Store, team: str, *, now: datetime) -> TeamFlow | None:
    """The team's flow figures from its stored snapshot; None when there is none yet.

    The one place that knows how snapshots are read and what they hold (and the alert state).
    Raises StoreUnavailable when Redis cannot be read.
    """
    snap = store.get_snapshot_head(team)  # the head holds every figure here: no queue items
    if snap is None:
        return None
    q = snap.queue
    runs = [w.run_p90_min for w in snap.workflows if w.run_p90_min is not None]
    return TeamFlow(
        team=team, computed_at=snap.computed_at,
        queue={"reviewer": q.reviewer, "author": q.author, "ci": q.ci, "approved": q.approved},
        oldest_hours=q.oldest_hours,
        pickup_p50_hours=snap.pickup.calendar.p50,
        pickup_p50_business_hours=snap.pickup.business.p50,
        ci_p90_minutes=max(runs) if runs else None,
        alerts_active=_active_alerts(store, team, now=now),
    )


def _active_alerts(store: Store, team: str, *, now: datetime) -> int | None:
    from jobs.alerts import list_alerts

    try:
        return sum(1 for a in list_alerts(store, team, now=now) if a.status == "active")
    except StoreUnavailable:
        raise
    except FlowbotError as err:  # unreadable alert state: the other figures still count
        log.warning("alerts of %s unreadable for /metrics: %s", team, err)
        return None


class StoredGauges(Collector):
    """Gauges read from Redis at scrape time: each team's flow, the jobs' recent outcomes."""

    def __init__(self, store: Store, teams: Iterable[str], *, now: datetime) -> None:
        self._store = store
        self._teams = list(teams)
        self._now = now

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("flowbot_store_up", "1 when Redis answered this scrape.")
        try:
            flows = [f for f in (self._flow(t) for t in self._teams) if f is not None]
            jobs = list(self._job_metrics())
        except StoreUnavailable:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from _flow_metrics(flows)
        yield from jobs

    def _flow(self, team: str) -> TeamFlow | None:
        """One team's figures; a team whose stored data cannot be read is left out, said once."""
        try:
            return team_flow(self._store, team, now=self._now)
        except StoreUnavailable:
            raise
        except Exception as err:  # noqa: BLE001 - one team's bad data must not fail the scrape
            log.warning("/metrics: flow of %s left out: %s: %s", team, type(err).__name__, err)
            return None

    def _job_metrics(self) -> Iterable[Metric]:
        runs_g = GaugeMetricFamily("flowbot_job_runs", "Recent runs of each scheduled job, by outcome "
                                   "(last 50 kept).", labels=["job", "outcome"])
        last_g = GaugeMetricFamily("flowbot_job_last_run_timestamp_seconds", "When each job last started.",
                                   labels=["job"])
        for job in self._store.job_names():
            runs = self._store.job_runs(job, limit=50)
            for outcome, n in sorted(Tally(r.outcome for r in runs).items()):
                runs_g.add_metric([job, outcome], n)
            if runs:
                last_g.add_metric([job], runs[0].started_at.timestamp())
        return runs_g, last_g


def _flow_metrics(flows: list[TeamFlow]) -> Iterator[Metric]:
    queue = GaugeMetricFamily("flowbot_queue_prs", "Open PRs in the team's queue, by whose turn it is "
                              "(approved: waiting to merge, beside the queue).", labels=["team", "waiting_on"])
    oldest = GaugeMetricFamily("flowbot_queue_oldest_hours", "Age of the oldest PR waiting in the queue, "
                               "calendar hours, draft time excluded.", labels=["team"])
    pickup = GaugeMetricFamily("flowbot_pickup_p50_hours", "Median pickup wait over the window.",
                               labels=["team", "hours"])
    ci = GaugeMetricFamily("flowbot_ci_p90_minutes", "p90 run time of the team's slowest CI workflow.",
                           labels=["team"])
    alerts = GaugeMetricFamily("flowbot_alerts_active", "Alert rules in breach now.", labels=["team"])
    age = GaugeMetricFamily("flowbot_snapshot_timestamp_seconds", "When the team's figures were computed.",
                            labels=["team"])
    for f in flows:
        for turn, n in f.queue.items():
            queue.add_metric([f.team, turn], n)
        if f.oldest_hours is not None:
            oldest.add_metric([f.team], f.oldest_hours)
        if f.pickup_p50_hours is not None:
            pickup.add_metric([f.team, "calendar"], f.pickup_p50_hours)
        if f.pickup_p50_business_hours is not None:
            pickup.add_metric([f.team, "working"], f.pickup_p50_business_hours)
        if f.ci_p90_minutes is not None:
            ci.add_metric([f.team], f.ci_p90_minutes)
        if f.alerts_active is not None:
            alerts.add_metric([f.team], f.alerts_active)
        age.add_metric([f.team], f.computed_at.timestamp())
    yield from (queue, oldest, pickup, ci, alerts, age)
