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
    """Per-process reader of team snapshots with a last-good copy per team. Thread-safe."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._last: dict[str, TeamSnapshot] = {}
        self._lock = threading.Lock()

    def read(self, team: str) -> Reading:
        """The team's latest snapshot; never raises for Redis trouble (see :class:`Reading`)."""
        try:
            snapshot = self._store.get_snapshot(team)
        except StoreUnavailable:
            with self._lock:
                return Reading(team, self._last.get(team), unavailable=True)
        if snapshot is not None:
            with self._lock:
                self._last[team] = snapshot
        return Reading(team, snapshot)


def next_sample_at(settings: Settings, store: Store, *, now: datetime) -> datetime | None:
    """When the next sampling cycle should run: the last run plus the interval; None if unknown.

    Returns None when no cycle has run yet or Redis cannot be read.
    """
    try:
        runs = store.job_runs(SAMPLE_JOB, limit=1)
    except StoreUnavailable:
        return None
    if not runs:
        return None
    due = runs[0].started_at + timedelta(minutes=settings.schedules.sample_interval_minutes)
    return max(due, now)
