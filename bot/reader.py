"""Reads team snapshots for the Slack surfaces, keeping the last good copy for Redis outages.

A slash command must answer within Slack's 3 seconds even when Redis is down; the reader then
hands back the snapshot it read last (if any) flagged as stale, so the answer can say
"data temporarily unavailable" with how old that copy is.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from jobs.errors import StoreUnavailable
from jobs.model import QueueItem, TeamSnapshot
from jobs.ports import Clock
from jobs.settings import Settings
from jobs.store import Store, WaitingList

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


@dataclass(frozen=True, slots=True)
class QueuePage:
    """A page of a team's queue (oldest first) with the snapshot's head, as :class:`Reading`."""

    team: str
    snapshot: TeamSnapshot | None
    items: tuple[QueueItem, ...] = ()
    total: int = 0
    unavailable: bool = False


@dataclass(frozen=True, slots=True)
class HomeCard:
    """One team on a user's App Home: its head and the PRs waiting on the user in it."""

    team: str
    snapshot: TeamSnapshot | None
    waiting: tuple[WaitingList, ...] = ()
    unavailable: bool = False


class SnapshotReader:
    """Per-process reader of team snapshots with a last-good copy per team. Thread-safe.

    Each surface reads only the part of a snapshot it renders (the store keeps it in parts:
    ``jobs.store`` "snapshots"), so an answer costs the same whatever the team's size.
    After Redis fails, the reader does not ask it again for ``pause`` (answering from the
    last good copy at once), so a Redis that hangs costs one timeout, not one per command.
    """

    def __init__(self, store: Store, *, clock: Clock, pause: timedelta = timedelta(seconds=5)) -> None:
        self._store = store
        self._clock = clock
        self._pause = pause
        self._last: dict[tuple[str, ...], Any] = {}
        self._failed_at: datetime | None = None
        self._lock = threading.Lock()

    def read(self, team: str) -> Reading:
        """The team's latest snapshot head (no queue items, no trend); never raises for Redis
        trouble (see :class:`Reading`)."""
        got = self._fetch(("head", team), lambda: self._store.get_snapshot_head(team))
        if got is _DOWN:
            return Reading(team, self._last.get(("head", team)), unavailable=True)
        return Reading(team, got)

    def read_queue(self, team: str, *, start: int = 0, count: int = 25) -> QueuePage:
        """``count`` of the team's waiting PRs from ``start``, oldest first, and how many
        there are; never raises for Redis trouble."""
        got = self._fetch(("queue", team),
                          lambda: self._store.get_queue_page(team, start=start, count=count))
        if got is _DOWN:
            last = self._last.get(("queue", team))
            if last is None:
                return QueuePage(team, None, unavailable=True)
            head, items, total = last
            return QueuePage(team, head, tuple(items), total, unavailable=True)
        head, items, total = got
        return QueuePage(team, head, tuple(items), total)

    def read_home(self, teams: list[str], who: list[str]) -> list[HomeCard]:
        """Each team's head and the waiting lists of ``who`` (logins, ``team:slug``), read
        together; never raises for Redis trouble."""
        key = ("home", "|".join(teams) + "/" + "|".join(who))
        got = self._fetch(key, lambda: self._store.get_waiting(teams, who))
        if got is _DOWN:
            got, down = self._last.get(key) or [(None, [])] * len(teams), True
        else:
            down = False
        return [HomeCard(team, head, tuple(lists), unavailable=down)
                for team, (head, lists) in zip(teams, got, strict=True)]

    def fetch(self, key: tuple[str, ...] | None, read: Callable[[], Any]) -> Any:
        """``read()`` under the reader's outage rules (see :meth:`_fetch`): its value (kept as
        the last good copy under ``key`` when not None), or :data:`DOWN`."""
        return self._fetch(key, read)

    def last(self, key: tuple[str, ...]) -> Any:
        """The last good copy kept under ``key`` (by :meth:`fetch`), or None."""
        with self._lock:
            return self._last.get(key)

    def _fetch(self, key: tuple[str, ...] | None, read: Callable[[], Any]) -> Any:
        """``read()``, remembered under ``key`` when it found something; ``_DOWN`` while
        Redis is failing (not asked again for ``pause`` after a failure)."""
        with self._lock:
            failed_at = self._failed_at
        if failed_at is not None and self._clock.now() - failed_at < self._pause:
            return _DOWN
        try:
            got = read()
        except StoreUnavailable:
            with self._lock:
                self._failed_at = self._clock.now()
            return _DOWN
        with self._lock:
            self._failed_at = None
            if key is not None and got is not None and not (isinstance(got, tuple) and got[0] is None):
                self._last[key] = got
        return got


_DOWN = object()  # Redis could not be read
DOWN = _DOWN  # what :meth:`SnapshotReader.fetch` returns while Redis cannot be read


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
