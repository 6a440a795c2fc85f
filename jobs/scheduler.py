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

import concurrent.futures
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from apscheduler.events import EVENT_SCHEDULER_SHUTDOWN
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from jobs.errors import FlowbotError, StoreUnavailable
from jobs.model import Digest
from jobs.ports import Clock, Deliver, DeliverDM, FixedClock
from jobs.settings import Settings
from jobs.store import JobRun, Store

log = logging.getLogger(__name__)

DIGEST_GRACE = timedelta(hours=6)  # a missed digest is still posted this long after its time
LOCK_TTL = timedelta(seconds=60)  # renewed every 20 s while a job runs (a heartbeat)
STEP_TOLERANCE = timedelta(seconds=60)  # a wall-clock jump beyond this is a clock step
SAMPLING_POOL = "sampling"  # APScheduler executors: sampling never waits for a digest or alert
DIGEST_POOL = "digests"
DIGEST_THREADS = 4
CATCH_UP_JOB = "digests"
DONE_TTL = timedelta(days=21)
SAMPLE_JOB = "sample"
SNAPSHOT_JOB = "snapshot"
ALERTS_JOB = "alerts"
WINDOWS_JOB = "windows"
WINDOWS_EVERY = timedelta(minutes=1)  # review windows are checked this often


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
    windows: Step | None = None  # review-window DMs (jobs.window_dm), when delivery can DM


class Schedule(Protocol):
    """What the scheduler's triggers call: :class:`Pipeline` does the work in this process,
    :class:`jobs.dispatch.Dispatch` enqueues it for the workers."""

    settings: Settings
    store: Store
    interval: timedelta

    def sample(self, now: datetime) -> list[JobRun] | None: ...
    def refresh(self, now: datetime) -> list[JobRun]: ...
    def catch_up(self, now: datetime) -> list[JobRun]: ...
    def digest(self, team: str, now: datetime) -> JobRun | None: ...
    def opening(self, team: str, now: datetime) -> JobRun | None: ...
    def windows(self, now: datetime) -> JobRun | None: ...


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
        self.lock_ttl = lock_ttl or LOCK_TTL
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

        ``source`` is a GitHub source (default: ``jobs.github.connections.connect_all``, a
        source per organisation with budgets shared in ``store``, made on first use); ``chart`` draws the digest PNG (``bot.charts``, injected by the CLI).
        """
        from jobs import cycle, digest, snapshot
        from jobs.alerts import AlertEngine

        engine = AlertEngine(settings, store, deliver)
        sources: list[Any] = [source] if source is not None else []
        cycle_errors: list[str] = []  # the last cycle's failures, shown on the snapshots

        def sample(now: datetime) -> object:
            if not sources:  # one per organisation, budgets shared with the other workers
                from jobs.github.connections import connect_all

                sources.append(connect_all(settings, store=store, clock=clock))
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

        windows: Step | None = None
        if isinstance(deliver, DeliverDM):
            dm: DeliverDM = deliver

            def windows(now: datetime) -> object:
                from jobs.window_dm import run_windows

                return run_windows(settings, store, dm, now=now)

        return cls(settings, store, deliver, Steps(sample, refresh, evaluate, build, windows))

    # ------------------------------------------------------------------ jobs

    def tick(self, now: datetime) -> list[JobRun]:
        """One sampling tick: sample, snapshot, alerts, then any due digest. Runs skipped by
        another replica are left out of the result. (The real scheduler runs the same three
        parts as separate jobs on separate thread pools: :func:`build_scheduler`.)"""
        sampled = self.sample(now)
        runs = list(sampled or [])
        if sampled is not None:
            runs += self.refresh(now)
        return runs + self.catch_up(now)

    def sample(self, now: datetime) -> list[JobRun] | None:
        """Sample GitHub (records and queue samples), once per interval across replicas.

        None when another replica (or an earlier tick) sampled less than half an interval ago.
        """
        if not self._claim_sample(now):
            return None
        run = self._run(SAMPLE_JOB, now, lambda: self.steps.sample(now))
        return [run] if run is not None else []

    def refresh(self, now: datetime) -> list[JobRun]:
        """After a sample: every team's snapshot, then every team's alerts on them."""
        runs = [self._run(SNAPSHOT_JOB, now, lambda: self.steps.snapshot(now)),
                self._run(ALERTS_JOB, now, lambda: self.steps.alerts(now))]
        return [r for r in runs if r is not None]

    def catch_up(self, now: datetime) -> list[JobRun]:
        """Post every digest that is due and not done (missed while down, or failed)."""
        runs: list[JobRun] = []
        for team in self.settings.teams:
            try:
                due = self.digest_due(team, now)
            except StoreUnavailable as err:
                log.error("digest check for %s skipped: %s", team, err)
                continue
            if due is not None:
                run = self.digest(team, now)
                runs += [run] if run is not None else []
        return runs

    def _claim_sample(self, now: datetime) -> bool:
        """Claim this sampling run: True unless a sample was claimed less than half an interval
        before ``now``. A claim stamped in the future (this clock stepped back) does not count."""
        try:
            with self.store.lock("sample-claim", ttl=timedelta(seconds=30)) as claim:
                if not claim.acquired:
                    return False
                last = _parse_time(self.store.get_json("schedule", "last-sample"))
                if last is not None and -STEP_TOLERANCE <= now - last < self.interval / 2:
                    log.debug("sampled at %s already; skipping", last)
                    return False
                self.store.set_json("schedule", "last-sample", value=now.isoformat(),
                                    ttl=self.interval * 4)
                return True
        except FlowbotError as err:
            log.error("cannot claim the sampling run: %s", err)
            return False

    def windows(self, now: datetime) -> JobRun | None:
        """Review-window DMs due at ``now`` (``jobs.window_dm.run_windows``), under a lock;
        None when there is no windows step or another replica runs it."""
        step = self.steps.windows
        if step is None:
            return None
        return self._run(WINDOWS_JOB, now, lambda: step(now))

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

    def run_job(self, job: str, now: datetime, body: Callable[[], object]) -> JobRun | None:
        """Run ``body`` as job ``job`` under its Redis lock and record the run (what every
        step does); None when it could not run (Redis down, or another worker holds the lock
        and has for less than an interval)."""
        return self._run(job, now, body)

    def claim_sample(self, now: datetime) -> bool:
        """True when this call claims the sampling run at ``now`` (once per interval across
        replicas; see :meth:`sample`)."""
        return self._claim_sample(now)

    def claim(self, key: str, ttl: timedelta) -> bool:
        """True the first time ``key`` is claimed (an opening, a cycle), across replicas."""
        return self._claim(key, ttl)

    def _run(self, job: str, now: datetime, body: Callable[[], object]) -> JobRun | None:
        try:
            with self.store.lock(job, ttl=self.lock_ttl, heartbeat=True) as lock:
                if not lock.acquired:
                    return self._skipped(job, now)
                run = self._timed(job, now, body)
        except StoreUnavailable as err:  # no lock, no run: another tick tries again
            log.error("%s skipped: %s", job, err)
            return None
        try:
            self.store.record_run(run)
        except FlowbotError as err:
            log.warning("could not record the %s run: %s", job, err)
        return run

    def _skipped(self, job: str, now: datetime) -> JobRun | None:
        """The lock is held elsewhere. Briefly: normal (another replica runs it), logged at INFO.
        For longer than one interval: a WARNING naming the holder, and a ``skipped`` run that
        doctor and ``/flow health`` show."""
        try:
            holder = self.store.lock_holder(job)
        except StoreUnavailable:
            holder = None
        if holder is None or holder.since is None or now - holder.since <= self.interval:
            log.info("%s is running on another worker; skipping", job)
            return None
        held = now - holder.since
        detail = (f"lock held by {holder.host} pid {holder.pid} since {holder.since:%Y-%m-%d %H:%M} UTC"
                  f" ({held.total_seconds() / 60:.0f} min)")
        log.warning("%s skipped: %s; a dead holder's lock lapses within %.0f s", job, detail,
                    self.lock_ttl.total_seconds())
        run = JobRun(job=job, started_at=now, seconds=0.0, outcome="skipped", detail=detail)
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


def _parse_time(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y%m%dT%H%MZ")


# --------------------------------------------------------------------------- triggers


def sample_trigger(settings: Settings, *, start: datetime) -> IntervalTrigger:
    """Every ``schedules.sample_interval_minutes``, jittered by ``schedules.jitter_seconds``."""
    s = settings.schedules
    return IntervalTrigger(
        minutes=s.sample_interval_minutes, start_date=start, timezone=UTC,
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
    return last.astimezone(UTC) if last is not None else None


def build_scheduler(
    pipeline: Schedule, *, clock: Clock, blocking: bool = False, start: datetime | None = None,
    digest_threads: int = DIGEST_THREADS,
) -> BaseScheduler:
    """An APScheduler 3 scheduler: sampling, alerts, a digest catch-up and one digest and one
    working-day opening per team, on three thread pools.

    Sampling GitHub runs on a pool of its own (``sampling``, one thread), digests on theirs
    (``digests``), openings on the default pool, and the snapshots and alerts that follow each
    sampling run on a thread of their own: a thousand digests due at
    once, or a slow Slack, never keep sampling from starting on time (APScheduler checks a job's
    misfire grace when a thread picks it up, so a job queued behind others is dropped as
    missed). The job store is in memory and rebuilt here from settings at every start. The
    first sampling and catch-up run at ``start`` (default: now).
    """
    now = start or clock.now()
    interval = pipeline.interval
    cls = BlockingScheduler if blocking else BackgroundScheduler
    executors = {"default": ThreadPoolExecutor(4), SAMPLING_POOL: ThreadPoolExecutor(1),
                 DIGEST_POOL: ThreadPoolExecutor(digest_threads)}
    scheduler = cls(timezone=UTC, executors=executors,
                    job_defaults={"coalesce": True, "max_instances": 1})
    grace = max(60, int(interval.total_seconds() // 2))
    refresh = _FollowUp(lambda: pipeline.refresh(clock.now()))
    scheduler.add_listener(lambda _event: refresh.shutdown(), EVENT_SCHEDULER_SHUTDOWN)

    def sample() -> None:
        if pipeline.sample(clock.now()) is not None:  # snapshots and alerts follow, apart
            refresh.submit()

    scheduler.add_job(
        sample, trigger=sample_trigger(pipeline.settings, start=now + interval),
        id=SAMPLE_JOB, name="sample GitHub", executor=SAMPLING_POOL,
        misfire_grace_time=grace, next_run_time=now, coalesce=True, max_instances=1,
    )
    scheduler.add_job(
        lambda: pipeline.catch_up(clock.now()),
        trigger=IntervalTrigger(minutes=pipeline.settings.schedules.sample_interval_minutes,
                                start_date=now + interval, timezone=UTC),
        id=CATCH_UP_JOB, name="digests missed or failed", executor=DIGEST_POOL,
        misfire_grace_time=grace, next_run_time=now, coalesce=True, max_instances=1,
    )
    scheduler.add_job(  # nothing to do (and quick) when no member has windows on
        lambda: pipeline.windows(clock.now()),
        trigger=IntervalTrigger(seconds=int(WINDOWS_EVERY.total_seconds()), start_date=now, timezone=UTC),
        id=WINDOWS_JOB, name="review-window DMs", misfire_grace_time=int(WINDOWS_EVERY.total_seconds()),
        coalesce=True, max_instances=1,
    )
    for team in pipeline.settings.teams:
        scheduler.add_job(
            _digest_call(pipeline, clock, team),
            trigger=digest_trigger(pipeline.settings, team),
            id=digest_job(team), name=f"weekly digest for {team}", executor=DIGEST_POOL,
            misfire_grace_time=int(DIGEST_GRACE.total_seconds()), coalesce=True, max_instances=1,
        )
        scheduler.add_job(
            _opening_call(pipeline, clock, team),
            trigger=opening_trigger(pipeline.settings, team),
            id=opening_job(team), name=f"held alerts for {team} at its opening",
            misfire_grace_time=int(interval.total_seconds()), coalesce=True, max_instances=1,
        )
    return scheduler


class _FollowUp:
    """Runs ``body`` (snapshots, then alerts) on a thread of its own after each sampling run; a
    request made while one is still running is folded into one more run (never a queue), so
    slow snapshots (a thousand teams) or a slow Slack never hold up the next sampling run. Not
    an APScheduler job: a job must not add jobs (``add_job`` from a job thread deadlocks with
    ``shutdown``)."""

    def __init__(self, body: Callable[[], object]) -> None:
        self._body = body
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="refresh")
        self._lock = threading.Lock()
        self._queued = False

    def submit(self) -> None:
        with self._lock:
            if self._queued:
                return
            self._queued = True
        try:
            self._pool.submit(self._run)
        except RuntimeError:  # shutting down
            pass

    def _run(self) -> None:
        with self._lock:
            self._queued = False
        try:
            self._body()
        except Exception:  # the unit-of-work edge (Pipeline._run records failures itself)
            log.exception("snapshots and alerts failed")

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)


class ClockWatch:
    """Notices wall-clock steps: the wall clock moving apart from the monotonic one.

    APScheduler 3 computes each wait from the wall clock (``datetime.now``) but sleeps on the
    monotonic one: after a step back of 20 minutes its jobs, due at wall times now 20 minutes
    further away, wait that much longer; after a step forward they are late (and dropped as
    misfired beyond their grace). :func:`realign` puts them back within one interval.
    """

    def __init__(
        self, *, wall: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic,
        tolerance: timedelta = STEP_TOLERANCE,
    ) -> None:
        self._wall, self._mono = wall, monotonic
        self.tolerance = tolerance.total_seconds()
        self._offset = wall() - monotonic()

    def check(self) -> float:
        """The step since the last check in seconds (negative: back), or 0.0."""
        offset = self._wall() - self._mono()
        step = offset - self._offset
        if abs(step) <= self.tolerance:
            return 0.0
        self._offset = offset
        return step


def realign(scheduler: BaseScheduler, step: float, *, now: datetime) -> None:
    """After a wall-clock ``step`` (seconds), move each job's next run back within its rhythm.

    Interval jobs keep their monotonic rhythm (the next run moves by the step, so it comes when
    it would have without the step) and run at once after a step forward. Cron jobs (digests,
    openings) take their next time from the trigger as of ``now``: a digest whose time was
    skipped runs at once, and runs once (its done-marker and idempotency key see to that).
    """
    for job in scheduler.get_jobs():
        nxt = job.next_run_time
        if nxt is None:
            continue
        if isinstance(job.trigger, IntervalTrigger):
            moved = now if step > 0 else max(now, nxt + timedelta(seconds=step))
        elif isinstance(job.trigger, CronTrigger):
            fresh = job.trigger.get_next_fire_time(None, now)
            previous = previous_fire_time(job.trigger, now) if step > 0 else None
            if previous is not None and previous > now - timedelta(seconds=step):
                fresh = previous  # skipped over by the step: run it now
            if fresh is None:
                continue
            moved = fresh
        else:
            continue
        if moved != nxt:
            job.modify(next_run_time=moved)
    log.warning("the wall clock stepped %+.0f s; jobs realigned: %s", step, ", ".join(
        f"{j.id} at {j.next_run_time:%H:%M:%S}" for j in scheduler.get_jobs()
        if j.next_run_time is not None and j.id in (SAMPLE_JOB, CATCH_UP_JOB)))


def _digest_call(pipeline: Schedule, clock: Clock, team: str) -> Callable[[], object]:
    return lambda: pipeline.digest(team, clock.now())


def _opening_call(pipeline: Schedule, clock: Clock, team: str) -> Callable[[], object]:
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
    windows_every: timedelta | None = None,
) -> list[SimulatedRun]:
    """Fire the schedule's jobs from ``start`` to ``end`` in time order, moving ``clock``.

    Uses the same triggers as :func:`build_scheduler` (jitter as configured; set it to 0 for a
    deterministic run). Every pipeline (worker replica) fires every job at each fire time, as
    replicas would; the locks and claims decide which one runs. ``on_fire`` is called before each
    fire (tests use it to move the fake GitHub's clock). ``windows_every`` fires the review-window
    job that often (the real scheduler: every minute; off by default, a week of minutes is slow).
    """
    workers = list(pipelines)
    if not workers:
        return []
    settings = workers[0].settings
    triggers: dict[str, BaseTrigger] = {SAMPLE_JOB: sample_trigger(settings, start=start)}
    for team in settings.teams:
        triggers[digest_job(team)] = digest_trigger(settings, team)
        triggers[opening_job(team)] = opening_trigger(settings, team)
    if windows_every is not None:
        triggers[WINDOWS_JOB] = IntervalTrigger(seconds=int(windows_every.total_seconds()),
                                                start_date=start, timezone=UTC)
    upcoming = {job: trig.get_next_fire_time(None, start) for job, trig in triggers.items()}
    fired: list[SimulatedRun] = []
    while True:
        pending = [(t, job) for job, t in upcoming.items() if t is not None and t <= end]
        if not pending:
            return fired
        at, job = min(pending)
        clock.current = at.astimezone(UTC)
        if on_fire is not None:
            on_fire(job, clock.current)
        for i, pipe in enumerate(workers):
            if job == SAMPLE_JOB:
                runs = tuple(pipe.tick(clock.current))
            elif job == WINDOWS_JOB:
                run = pipe.windows(clock.current)
                runs = (run,) if run is not None else ()
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
    pipeline: Schedule,
    *,
    clock: Clock,
    stop: threading.Event | None = None,
    handle_signals: bool = True,
    on_started: Callable[[], None] | None = None,
    watch: ClockWatch | None = None,
    leader: bool = False,
) -> None:
    """Run the schedule in the background until SIGTERM/SIGINT (or ``stop`` is set), checking
    every second for a wall-clock step (:class:`ClockWatch`, :func:`realign`).

    With ``leader``, the schedule runs only while this process holds the ``scheduler`` lock
    (one active scheduler among all workers; renewed every third of :data:`LOCK_TTL`): a
    process without it tries again every :data:`LEADER_RETRY` and takes over within a lock TTL
    when the holder dies (at once when the holder was a process of this host).

    On a signal the scheduler stops taking new runs and waits for the running one to finish
    (its lock is released, its run recorded), then returns. Signal handlers are installed only
    from the main thread, before ``on_started`` is called, and restored on the way out.
    """
    stop = stop or threading.Event()
    watch = watch or ClockWatch()
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
    try:
        if leader:
            if on_started is not None:
                on_started()
            while not stop.is_set():
                lock = _take_lead(pipeline.store)
                if lock is None:
                    heart.beat()
                    stop.wait(LEADER_RETRY.total_seconds())
                    continue
                try:
                    _run_schedule(pipeline, clock=clock, stop=stop, heart=heart, watch=watch,
                                  lock=lock)
                finally:
                    pipeline.store.unlock(lock)
        else:
            _run_schedule(pipeline, clock=clock, stop=stop, heart=heart, watch=watch,
                          on_started=on_started)
    finally:
        heart.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


LEADER_LOCK = "scheduler"
LEADER_RETRY = timedelta(seconds=5)


def _take_lead(store: Store) -> Any:
    """The scheduler lock when this process could take it, else None."""
    try:
        lock = store.try_lock(LEADER_LOCK, ttl=LOCK_TTL)
    except StoreUnavailable as err:
        log.warning("cannot reach Redis for the scheduler lock: %s", err)
        return None
    return lock if lock.acquired else None


def _run_schedule(
    pipeline: Schedule, *, clock: Clock, stop: threading.Event, heart: _Heart,
    watch: ClockWatch, lock: Any = None, on_started: Callable[[], None] | None = None,
) -> None:
    """The APScheduler until ``stop`` (or, holding ``lock``, until the lock cannot be renewed)."""
    scheduler = build_scheduler(pipeline, clock=clock)
    scheduler.start()
    if on_started is not None:
        on_started()
    log.info("scheduler started: sampling every %s min, digests for %s",
             pipeline.settings.schedules.sample_interval_minutes, ", ".join(pipeline.settings.teams))
    renew_every = LOCK_TTL.total_seconds() / 3
    renewed = time.monotonic()
    try:
        while not stop.wait(1.0):
            heart.beat()
            if lock is not None and time.monotonic() - renewed >= renew_every:
                if not pipeline.store.extend_lock(lock):
                    log.warning("lost the scheduler lock; another worker schedules now")
                    return
                renewed = time.monotonic()
            step = watch.check()
            if step:
                realign(scheduler, step, now=clock.now())
    finally:
        scheduler.shutdown(wait=True)
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
