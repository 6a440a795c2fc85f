"""When jobs run, and running each one once across worker replicas.

* :class:`Pipeline` holds the job bodies as plain callables taking ``now``: :meth:`Pipeline.tick`
  (sample, then snapshot, then alerts, then any digest that is due) and
  :meth:`Pipeline.digest` (one team's weekly digest). Tests and ``flowbot demo`` call them with
  an injected time; no real waiting anywhere.
* :func:`sample_trigger`, :func:`digest_trigger`, :func:`opening_trigger`: the APScheduler
  triggers built from settings (an interval with jitter; crons per team in the team's own time
  zone, so 09:30 local stays 09:30 local across DST; the opening of each working day, when
  alerts held over quiet hours go out). :func:`build_scheduler` puts them in an APScheduler 3 scheduler with
  an in-memory job store rebuilt from settings at every start (never a shared persistent store:
  see docs/operations.md), ``coalesce=True`` and a ``misfire_grace_time`` per job.
  :func:`simulate` walks the same triggers with a :class:`jobs.ports.FixedClock` instead.

Running once with replicas side by side: every step runs under a Redis lock (``store.lock``);
a sampling slot (one interval) is claimed once (``store.claim_once``) so a replica whose
jittered tick comes later in the same slot skips; a digest is marked done per team and
scheduled occurrence, and delivery's idempotency keys stop any double post that slips past.
A digest that was missed (the worker was down or died mid-run) is caught up by the next tick
within :data:`DIGEST_GRACE`. Each run's start, duration and outcome goes to
``store.record_run`` for ``flowbot doctor`` and ``/flow health``.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from jobs.errors import FlowbotError, StoreUnavailable
from jobs.model import Digest
from jobs.ports import Clock, Deliver, FixedClock
from jobs.settings import Settings
from jobs.store import JobRun, Store

log = logging.getLogger(__name__)

DIGEST_GRACE = timedelta(hours=6)  # a missed digest is still posted this long after its time
DONE_TTL = timedelta(days=21)
SAMPLE_JOB = "sample"
SNAPSHOT_JOB = "snapshot"
ALERTS_JOB = "alerts"


def digest_job(team: str) -> str:
    """The job name of ``team``'s digest (lock, run records, scheduler job id)."""
    return f"digest:{team}"


# --------------------------------------------------------------------------- steps


Step = Callable[[datetime], object]
DigestBuilder = Callable[[str, datetime], Digest]


@dataclass(frozen=True, slots=True)
class Steps:
    """The job bodies the pipeline runs; :meth:`Pipeline.from_settings` wires the real ones.

    A step returns a short detail for the run record (or anything whose ``str`` is one), and
    raises on failure; returning an object with a truthy ``partial`` attribute (or a
    ``(True, detail)`` pair) marks the run ``partial``.
    """

    sample: Step
    snapshot: Step
    alerts: Step
    build_digest: DigestBuilder


class Pipeline:
    """The worker's job bodies, each run under a Redis lock and recorded (see module doc)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        deliver: Deliver,
        steps: Steps,
        *,
        lock_ttl: timedelta | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.store = store
        self.deliver = deliver
        self.steps = steps
        interval = timedelta(minutes=settings.schedules.sample_interval_minutes)
        self.interval = interval
        self.lock_ttl = lock_ttl or max(timedelta(minutes=10), interval)
        self._monotonic = monotonic
        self._triggers = {team: digest_trigger(settings, team) for team in settings.teams}

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        store: Store,
        deliver: Deliver,
        *,
        clock: Clock,
        source: Any = None,
        chart: Callable[[Digest], bytes | None] | None = None,
    ) -> Pipeline:
        """The production wiring: GitHub sampling (``jobs.cycle``), snapshots
        (``jobs.snapshot``), alerts (``jobs.alerts``) and digests (``jobs.digest``).

        ``source`` is a GitHub source (default: ``jobs.github.client.connect(settings)``, made
        on first use); ``chart`` draws the digest PNG (``bot.charts``, injected by the CLI).
        """
        from jobs import cycle, digest, snapshot
        from jobs.alerts import AlertEngine

        engine = AlertEngine(settings, store, deliver)
        sources: list[Any] = [source] if source is not None else []
        cycle_errors: list[str] = []  # the last cycle's failures, shown on the snapshots

        def sample(now: datetime) -> object:
            if not sources:
                from jobs.github.client import connect

                sources.append(connect(settings, clock=clock))
            report = cycle.run_cycle(settings, store, sources[0], clock=clock)
            cycle_errors[:] = report.errors
            changed = sum(r.changed for r in report.repos)
            return (not report.complete, f"{len(report.repos)} repositories, {changed} PRs changed, "
                    f"{report.requests} requests; {len(report.errors)} errors"
                    + (f": {report.errors[0]}" if report.errors else ""))

        def refresh(now: datetime) -> object:
            snaps = snapshot.refresh_all(settings, store, now=now, errors=tuple(cycle_errors))
            missing = sorted(set(settings.teams) - set(snaps))
            return (bool(missing), f"{len(snaps)} team snapshots"
                    + (f"; failed: {', '.join(missing)}" if missing else ""))

        def evaluate(now: datetime) -> object:
            reports = engine.evaluate_all(now=now)
            posted = sum(len(r.posted) for r in reports.values())
            held = sum(len(r.held) for r in reports.values())
            failed = sum(len(r.failed) for r in reports.values())
            skipped = "; ".join(f"{t}: {r.skipped}" for t, r in reports.items() if r.skipped)
            detail = f"{posted} posted, {held} held, {failed} not delivered" + (
                f"; skipped {skipped}" if skipped else "")
            return (failed > 0, detail)

        def build(team: str, now: datetime) -> Digest:
            return digest.build_digest(settings, store, team, now=now, chart=chart)

        return cls(settings, store, deliver, Steps(sample, refresh, evaluate, build))

    # ------------------------------------------------------------------ jobs

    def tick(self, now: datetime) -> list[JobRun]:
        """One sampling tick: sample, snapshot, alerts, then any due digest. Runs skipped by
        another replica are left out of the result."""
        runs: list[JobRun | None] = []
        slot = int(now.timestamp() // self.interval.total_seconds())
        if self._claim(f"run:{SAMPLE_JOB}:{slot}", self.interval * 2):
            runs.append(self._run(SAMPLE_JOB, now, lambda: self.steps.sample(now)))
            runs.append(self._run(SNAPSHOT_JOB, now, lambda: self.steps.snapshot(now)))
            runs.append(self._run(ALERTS_JOB, now, lambda: self.steps.alerts(now)))
        else:
            log.debug("sampling slot %s already taken by another worker", slot)
        for team in self.settings.teams:
            try:
                due = self.digest_due(team, now)
            except StoreUnavailable as err:
                log.error("digest check for %s skipped: %s", team, err)
                continue
            if due is not None:
                runs.append(self.digest(team, now))
        return [r for r in runs if r is not None]

    def opening(self, team: str, now: datetime) -> JobRun | None:
        """``team``'s working day starts: evaluate alerts now, so held ones go out at the
        opening rather than at the next sampling tick. Once per opening across replicas."""
        if not self._claim(f"run:opening:{team}:{_stamp(now)}", timedelta(days=1)):
            return None
        return self._run(ALERTS_JOB, now, lambda: self.steps.alerts(now))

    def digest(self, team: str, now: datetime) -> JobRun | None:
        """Post ``team``'s digest for its latest scheduled time, once.

        Does nothing (returns None) when that time is more than :data:`DIGEST_GRACE` ago or the
        digest is already done, or when another worker holds the team's digest lock. The digest
        is built as of its scheduled time so a late (caught-up) run keeps the same week and
        idempotency key.
        """
        job = digest_job(team)
        try:
            due = self.digest_due(team, now)
        except StoreUnavailable as err:
            log.error("%s skipped: %s", job, err)
            return None
        if due is None:
            return None

        def body() -> object:
            if self._done(team, due):  # re-checked under the lock
                return "already posted"
            built = self.steps.build_digest(team, due)
            if not self.deliver.digest(built):
                raise _NotDelivered(f"{built.idempotency_key} not delivered; retried next tick")
            self.store.set_json("schedule", "digest-done", team, _stamp(due), value=True, ttl=DONE_TTL)
            return f"{built.idempotency_key} posted" + (" (late)" if now - due > timedelta(minutes=5) else "")

        return self._run(job, now, body)

    def digest_due(self, team: str, now: datetime) -> datetime | None:
        """The scheduled time of ``team``'s digest that should be posted at ``now``, if any."""
        last = previous_fire_time(self._triggers[team], now)
        if last is None or now - last > DIGEST_GRACE or self._done(team, last):
            return None
        return last

    # ------------------------------------------------------------------ running

    def _run(self, job: str, now: datetime, body: Callable[[], object]) -> JobRun | None:
        try:
            with self.store.lock(job, ttl=self.lock_ttl) as lock:
                if not lock.acquired:
                    log.info("%s is running on another worker; skipping", job)
                    return None
                run = self._timed(job, now, body)
        except StoreUnavailable as err:  # no lock, no run: another tick tries again
            log.error("%s skipped: %s", job, err)
            return None
        try:
            self.store.record_run(run)
        except FlowbotError as err:
            log.warning("could not record the %s run: %s", job, err)
        return run

    def _timed(self, job: str, now: datetime, body: Callable[[], object]) -> JobRun:
        started = self._monotonic()
        outcome, detail = "ok", ""
        try:
            partial, detail = _describe(body())
            outcome = "partial" if partial else "ok"
        except FlowbotError as err:
            outcome, detail = "failed", str(err)
            log.error("%s failed: %s", job, err)
        except Exception as err:  # the unit-of-work edge: the scheduler must keep going
            outcome, detail = "failed", f"{type(err).__name__}: {err}"
            log.exception("%s failed", job)
        return JobRun(job=job, started_at=now, seconds=round(self._monotonic() - started, 3),
                      outcome=outcome, detail=detail[:500])

    def _claim(self, key: str, ttl: timedelta) -> bool:
        try:
            return self.store.claim_once(key, ttl=ttl)
        except FlowbotError as err:
            log.error("cannot claim %s: %s", key, err)
            return False

    def _done(self, team: str, due: datetime) -> bool:
        return bool(self.store.get_json("schedule", "digest-done", team, _stamp(due)))


class _NotDelivered(FlowbotError):
    """The digest was built but Slack did not take it (yet)."""


def _describe(result: object) -> tuple[bool, str]:
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], bool):
        return result[0], str(result[1])
    partial = bool(getattr(result, "partial", False))
    return partial, "" if result is None else str(result)


def _stamp(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%Y%m%dT%H%MZ")


# --------------------------------------------------------------------------- triggers


def sample_trigger(settings: Settings, *, start: datetime) -> IntervalTrigger:
    """Every ``schedules.sample_interval_minutes``, jittered by ``schedules.jitter_seconds``."""
    s = settings.schedules
    return IntervalTrigger(
        minutes=s.sample_interval_minutes, start_date=start, timezone=timezone.utc,
        jitter=s.jitter_seconds or None,
    )


def digest_trigger(settings: Settings, team: str) -> CronTrigger:
    """``team``'s digest weekday and local time, in the team's own time zone (DST-correct)."""
    day, at = settings.digest_schedule(team)
    return CronTrigger(
        day_of_week=day, hour=at.hour, minute=at.minute, second=0,
        timezone=settings.teams[team].zone,
    )


def opening_trigger(settings: Settings, team: str) -> CronTrigger:
    """When ``team``'s working day starts (its working days, local time; holidays included:
    the evaluation then finds the team off and keeps holding)."""
    t = settings.teams[team]
    return CronTrigger(
        day_of_week=",".join(t.working_days), hour=t.day_start.hour, minute=t.day_start.minute,
        second=0, timezone=t.zone,
    )


def opening_job(team: str) -> str:
    """The scheduler job id of ``team``'s working-day opening."""
    return f"opening:{team}"


def previous_fire_time(trigger: BaseTrigger, now: datetime) -> datetime | None:
    """The latest fire time of a weekly ``trigger`` at or before ``now`` (UTC), or None."""
    t = trigger.get_next_fire_time(None, now - timedelta(days=8))
    last = None
    while t is not None and t <= now:
        last = t
        t = trigger.get_next_fire_time(t, t)
    return last.astimezone(timezone.utc) if last is not None else None


def build_scheduler(
    pipeline: Pipeline, *, clock: Clock, blocking: bool = False, start: datetime | None = None
) -> BaseScheduler:
    """An APScheduler 3 scheduler with the sampling job and one digest job per team.

    The job store is in memory and rebuilt here from settings at every start. The first tick
    runs at ``start`` (default: now), which also catches up a digest missed while down.
    """
    now = start or clock.now()
    interval = pipeline.interval
    cls = BlockingScheduler if blocking else BackgroundScheduler
    scheduler = cls(timezone=timezone.utc, job_defaults={"coalesce": True, "max_instances": 1})
    scheduler.add_job(
        lambda: pipeline.tick(clock.now()),
        trigger=sample_trigger(pipeline.settings, start=now + interval),
        id=SAMPLE_JOB, name="sample, snapshot, alerts", coalesce=True, max_instances=1,
        misfire_grace_time=max(60, int(interval.total_seconds() // 2)),
        next_run_time=now,
    )
    for team in pipeline.settings.teams:
        scheduler.add_job(
            _digest_call(pipeline, clock, team),
            trigger=digest_trigger(pipeline.settings, team),
            id=digest_job(team), name=f"weekly digest for {team}", coalesce=True,
            max_instances=1,
            misfire_grace_time=int(DIGEST_GRACE.total_seconds()),
        )
        scheduler.add_job(
            _opening_call(pipeline, clock, team),
            trigger=opening_trigger(pipeline.settings, team),
            id=opening_job(team), name=f"held alerts for {team} at its opening", coalesce=True,
            max_instances=1, misfire_grace_time=int(interval.total_seconds()),
        )
    return scheduler


def _digest_call(pipeline: Pipeline, clock: Clock, team: str) -> Callable[[], object]:
    return lambda: pipeline.digest(team, clock.now())


def _opening_call(pipeline: Pipeline, clock: Clock, team: str) -> Callable[[], object]:
    return lambda: pipeline.opening(team, clock.now())


# --------------------------------------------------------------------------- simulation


@dataclass(frozen=True, slots=True)
class SimulatedRun:
    """One job the simulation fired: which, when, and on which pipeline."""

    job: str
    at: datetime
    worker: int
    runs: tuple[JobRun, ...]


def simulate(
    pipelines: Iterable[Pipeline],
    *,
    clock: FixedClock,
    start: datetime,
    end: datetime,
    on_fire: Callable[[str, datetime], None] | None = None,
) -> list[SimulatedRun]:
    """Fire the schedule's jobs from ``start`` to ``end`` in time order, moving ``clock``.

    Uses the same triggers as :func:`build_scheduler` (jitter as configured; set it to 0 for a
    deterministic run). Every pipeline (worker replica) fires every job at each fire time, as
    replicas would; the locks and claims decide which one runs. ``on_fire`` is called before each
    fire (tests use it to move the fake GitHub's clock).
    """
    workers = list(pipelines)
    if not workers:
        return []
    settings = workers[0].settings
    triggers: dict[str, BaseTrigger] = {SAMPLE_JOB: sample_trigger(settings, start=start)}
    for team in settings.teams:
        triggers[digest_job(team)] = digest_trigger(settings, team)
        triggers[opening_job(team)] = opening_trigger(settings, team)
    upcoming = {job: trig.get_next_fire_time(None, start) for job, trig in triggers.items()}
    fired: list[SimulatedRun] = []
    while True:
        pending = [(t, job) for job, t in upcoming.items() if t is not None and t <= end]
        if not pending:
            return fired
        at, job = min(pending)
        clock.current = at.astimezone(timezone.utc)
        if on_fire is not None:
            on_fire(job, clock.current)
        for i, pipe in enumerate(workers):
            if job == SAMPLE_JOB:
                runs = tuple(pipe.tick(clock.current))
            elif job.startswith("opening:"):
                run = pipe.opening(job.removeprefix("opening:"), clock.current)
                runs = (run,) if run is not None else ()
            else:
                run = pipe.digest(job.removeprefix("digest:"), clock.current)
                runs = (run,) if run is not None else ()
            fired.append(SimulatedRun(job, clock.current, i, runs))
        upcoming[job] = triggers[job].get_next_fire_time(at, at)


# --------------------------------------------------------------------------- running for real


def run_until_stopped(
    pipeline: Pipeline,
    *,
    clock: Clock,
    stop: threading.Event | None = None,
    handle_signals: bool = True,
    on_started: Callable[[], None] | None = None,
) -> None:
    """Run the schedule in the background until SIGTERM/SIGINT (or ``stop`` is set).

    On a signal the scheduler stops taking new runs and waits for the running one to finish
    (its lock is released, its run recorded), then returns. Signal handlers are installed only
    from the main thread, before ``on_started`` is called, and restored on the way out.
    """
    stop = stop or threading.Event()
    scheduler = build_scheduler(pipeline, clock=clock)
    previous: dict[signal.Signals, Any] = {}
    if handle_signals and threading.current_thread() is threading.main_thread():
        def _on_signal(signum: int, _frame: object) -> None:
            log.warning("received %s: finishing the running job, then stopping",
                        signal.Signals(signum).name)
            stop.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, _on_signal)
    heart = _Heart(pipeline.store, f"{socket.gethostname()}:{os.getpid()}", clock=clock)
    heart.beat()  # before anyone is told it started: /flow health sees it at once
    scheduler.start()
    if on_started is not None:
        on_started()
    log.info("scheduler started: sampling every %s min, digests for %s",
             pipeline.settings.schedules.sample_interval_minutes, ", ".join(pipeline.settings.teams))
    try:
        while not stop.wait(1.0):
            heart.beat()
    finally:
        scheduler.shutdown(wait=True)
        heart.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        log.info("scheduler stopped")


HEARTBEAT_EVERY = timedelta(seconds=30)
HEARTBEAT_TTL = 3 * HEARTBEAT_EVERY  # two missed beats are tolerated


class _Heart:
    """A worker's heartbeat in Redis (``Store.beat``), so ``/flow status``, ``/flow health``
    and ``doctor`` can tell "no worker is running" from "the first sample is not done yet"."""

    def __init__(self, store: Store, worker: str, *, clock: Clock) -> None:
        self._store, self._worker, self._clock = store, worker, clock
        self._last: datetime | None = None
        self._failing = False

    def beat(self) -> None:
        now = self._clock.now()
        if self._last is not None and now - self._last < HEARTBEAT_EVERY:
            return
        try:
            self._store.beat(self._worker, at=now, ttl=HEARTBEAT_TTL)
        except StoreUnavailable as err:
            if not self._failing:  # said once per outage, not every second
                log.warning("heartbeat not written: %s", err)
            self._failing = True
            return
        self._last, self._failing = now, False

    def stop(self) -> None:
        try:
            self._store.forget_worker(self._worker)
        except StoreUnavailable:
            pass  # it expires by itself
