"""Reads team snapshots for the Slack surfaces, keeping the last good copy for Redis outages.

A slash command must answer within Slack's 3 seconds even when Redis is down; the reader then
hands back the snapshot it read last (if any) flagged as stale, so the answer can say
"data temporarily unavailable" with how old that copy is.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from jobs.errors import StoreUnavailable
from jobs.model import TeamSnapshot
from jobs.ports import Clock
from jobs.settings import Settings
from jobs.store import Store

SAMPLE_JOB = "sample"  # the scheduler's job name for sampling cycles


@dataclass(frozen=True, slots=True)
class Reading:
    """What the reader found for a team.

    ``snapshot`` is None when none was ever computed (and Redis answered) or when Redis is down
    and no copy was read before. ``unavailable`` is True when Redis could not be read; the
    snapshot is then the last good copy, if any.
    """

    team: str
    snapshot: TeamSnapshot | None
    unavailable: bool = False


class SnapshotReader:
    """Per-process reader of team snapshots with a last-good copy per team. Thread-safe.

    After Redis fails, the reader does not ask it again for ``pause`` (answering from the
    last good copy at once), so a Redis that hangs costs one timeout, not one per command.
    """

    def __init__(self, store: Store, *, clock: Clock, pause: timedelta = timedelta(seconds=5)) -> None:
        self._store = store
        self._clock = clock
        self._pause = pause
        self._last: dict[str, TeamSnapshot] = {}
        self._failed_at: datetime | None = None
        self._lock = threading.Lock()

    def read(self, team: str) -> Reading:
        """The team's latest snapshot; never raises for Redis trouble (see :class:`Reading`)."""
        with self._lock:
            failed_at = self._failed_at
        if failed_at is not None and self._clock.now() - failed_at < self._pause:
            return self._stale(team)
        try:
            snapshot = self._store.get_snapshot(team)
        except StoreUnavailable:
            with self._lock:
                self._failed_at = self._clock.now()
            return self._stale(team)
        with self._lock:
            self._failed_at = None
            if snapshot is not None:
                self._last[team] = snapshot
        return Reading(team, snapshot)

    def _stale(self, team: str) -> Reading:
        with self._lock:
            return Reading(team, self._last.get(team), unavailable=True)


@dataclass(frozen=True, slots=True)
class SampleOutlook:
    """What can honestly be said about sampling: when the last cycle ran, whether a worker
    is alive (its heartbeat, see ``Store.beat``), and so when the next cycle is due."""

    last_run: datetime | None
    workers: int  # workers whose heartbeat is current
    next_at: datetime | None  # None when no worker is seen, or no cycle has run yet


def sample_outlook(settings: Settings, store: Store, *, now: datetime) -> SampleOutlook | None:
    """The sampling outlook, or None when Redis cannot be read. A next sample is promised
    only while a worker is seen: without one, nothing will sample."""
    try:
        runs = store.job_runs(SAMPLE_JOB, limit=1)
        workers = len(store.workers_seen())
    except StoreUnavailable:
        return None
    last = runs[0].started_at if runs else None
    next_at = None
    if workers and last is not None:
        next_at = max(last + timedelta(minutes=settings.schedules.sample_interval_minutes), now)
    return SampleOutlook(last, workers, next_at)


def next_sample_at(settings: Settings, store: Store, *, now: datetime) -> datetime | None:
    """When the next sampling cycle should run: the last run plus the interval, while a
    worker is seen; None if unknown, if no worker is running, or if Redis cannot be read."""
    outlook = sample_outlook(settings, store, now=now)
    return outlook.next_at if outlook is not None else None
