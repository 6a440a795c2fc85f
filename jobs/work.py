"""Units of work as RQ jobs on Flowbot's Redis: enqueue them, run them, watch them.

A unit of work is one repository's sync, one PR's or one repository's CI refresh, one team's
snapshot, one team's alert evaluation, one team's digest. ``enqueue_*`` puts one on its RQ
queue; any ``flowbot worker`` process (any machine that reaches the Redis) runs it.

Coalescing: enqueuing marks the unit pending in the store (``SET NX`` with a TTL,
:meth:`jobs.store.Store.mark_pending`); while the mark stands, further enqueues of the same
unit return False and add nothing, so ten webhook events in a few seconds cost one refresh.
The job clears the mark when it *starts*: an event that arrives during a run queues exactly
one more run, which reads GitHub after the event. The mark's value is the job's id, so every
enqueuer in one pending period names the same job. Ids carry the unit (kind, readable slug,
hash) and when its pending period began: RQ does not refuse an id it already holds (it
overwrites the hash and pushes the id again, and would then run the job twice, or not at all
once the finished one's hash is deleted), so a run queued behind a running one needs an id of
its own; the mark is what makes enqueues idempotent.

Keys: RQ's own (``rq:queue:<name>``, ``rq:job:<id>``, registries) on the store's Redis; queue
names and job ids start with the store's prefix, so tests sharing a server and two Flowbot
installs sharing one never see each other's queues (:func:`purge` removes one prefix's).

Jobs reference their functions by import path; they read what they need (settings, store,
clock, the GitHub source, delivery) from the :class:`Context` the worker process installed
(:func:`install`): ``bot`` wires it, so nothing here imports Slack.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from rq import Queue, Retry, SimpleWorker
from rq.command import send_shutdown_command
from rq.exceptions import DuplicateJobError

try:
    from rq.exceptions import StopRequested
except ImportError:  # older rq releases define it beside their Worker
    from rq.worker import StopRequested  # type: ignore[attr-defined,no-redef]
from rq.scheduler import RQScheduler

from jobs.errors import FlowbotError, StoreUnavailable
from jobs.ports import Clock
from jobs.settings import Settings
from jobs.store import JobRun, Store

if TYPE_CHECKING:
    from jobs.scheduler import Pipeline
    from jobs.sync import RepoReport

log = logging.getLogger(__name__)

# Queues in the order a worker serves them: a webhook's refresh first (freshness), then
# sampling (a cycle's syncs and its end), then digests, then team work (snapshots, alerts).
# Digests go before team work because a strict order starves the last queue: 1,000 teams'
# snapshot and alert jobs, queued again by every cycle, kept 751 of 1,000 due digests waiting
# for 19 minutes (bench/scale_out.py digests). A digest is due once a week, at a set time; a
# team's snapshot is recomputed every cycle and coalesces, so it only waits out the backlog.
REFRESH, SYNC, DIGESTS, TEAMS = "refresh", "sync", "digests", "teams"
QUEUES = (REFRESH, SYNC, DIGESTS, TEAMS)

PENDING_TTL = timedelta(minutes=15)  # a lost job (Redis restored from an old file) frees its unit
# A digest may wait behind a thousand others: its mark must outlive that wait, or every
# scheduler tick queues it again (2,200 digest jobs for 1,000 teams). Six hours: the catch-up
# window, after which a missed digest is not posted anyway.
PENDING_TTLS = {DIGESTS: timedelta(hours=6)}
RETRY = (10, 60, 300)  # seconds before each retry of a failed job
RESULT_TTL = 600  # finished jobs stay visible (rq info, rq-dashboard) this long
FAILURE_TTL = int(timedelta(days=7).total_seconds())
ERROR_TTL = timedelta(days=1)
MAINTENANCE_SECONDS = 60  # RQ's own registry cleanup (abandoned jobs of other hosts' workers)
UPKEEP_SECONDS = 1.0  # due retries moved to their queues this often
RECOVER_EVERY = 5  # upkeep passes between looks for dead local workers' jobs
TIMEOUTS = {REFRESH: 300, SYNC: 1800, TEAMS: 600, DIGESTS: 600}  # seconds a job may run


# --------------------------------------------------------------------------- the context


@dataclass
class Context:
    """What job functions need, installed once per worker process by its composition root.

    ``source`` is the GitHub source (or :class:`jobs.github.connections.Connections`, one
    per organisation), made on first use by ``connect`` (default
    ``jobs.github.connections.connect_all``, budgets shared in ``store``) and kept for the
    process's life.
    """

    settings: Settings
    store: Store
    clock: Clock
    source: Any = None
    connect: Callable[[], Any] | None = None
    pipeline: Pipeline | None = None  # alerts and digests (delivery); jobs.dispatch
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _budget_at: datetime | None = field(default=None, repr=False)

    def require_pipeline(self) -> Pipeline:
        """The pipeline alert and digest jobs post through; FlowbotError when none was wired."""
        if self.pipeline is None:
            raise FlowbotError("this worker was started without delivery: alerts and digests"
                               " need `flowbot worker`")
        return self.pipeline

    def github(self, repo: str | None = None) -> Any:
        """The GitHub source reading ``repo`` (its owner's credentials when several
        organisations are configured); its per-cycle budget is renewed once per sampling
        interval. By default a source per organisation, each budget shared with the other
        workers in Redis (:func:`jobs.github.connections.connect_all`)."""
        from jobs.github.connections import Connections

        with self._lock:
            if self.source is None:
                if self.connect is not None:
                    self.source = self.connect()
                else:
                    from jobs.github.connections import connect_all

                    self.source = connect_all(self.settings, store=self.store, clock=self.clock)
            now = self.clock.now()
            every = timedelta(minutes=self.settings.schedules.sample_interval_minutes)
            many = isinstance(self.source, Connections)
            if self._budget_at is None or not self._budget_at <= now < self._budget_at + every:
                for each in self.source.sources() if many else [self.source]:
                    each.budget.start_cycle()
                self._budget_at = now
            if many and repo is not None:
                return self.source.for_repo(repo)
            return self.source.for_org(self.settings.github.organisation) if many else self.source

    def connections(self) -> Any:
        """Every organisation's source (:class:`jobs.github.connections.Connections`), or the
        one source given: what listing the repositories of each organisation needs."""
        self.github()
        return self.source


_installed: Context | None = None


def install(context: Context | None) -> None:
    """Make ``context`` what this process's jobs run with (None: uninstall)."""
    global _installed
    _installed = context


def context() -> Context:
    """The installed context; raises FlowbotError when this process installed none."""
    if _installed is None:
        raise FlowbotError("no work context installed: run jobs with `flowbot worker`")
    return _installed


# --------------------------------------------------------------------------- queues and ids


def queue_name(store: Store, queue: str) -> str:
    """The RQ queue name of ``queue`` for this store: ``<prefix>:<queue>``."""
    return f"{store.prefix}:{queue}"


def queue(store: Store, name: str, *, connection: Any = None) -> Queue:
    """The RQ queue ``name`` (one of :data:`QUEUES`) on the store's Redis."""
    return Queue(queue_name(store, name), connection=connection or store.redis_client(),
                 default_timeout=TIMEOUTS[name])


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_")[:60]


def _base_id(store: Store, unit: str) -> str:
    kind, _, rest = unit.partition(":")
    digest = hashlib.sha1(unit.encode()).hexdigest()[:8]
    return f"{_safe(store.prefix)}__{kind}-{_safe(rest)}-{digest}"


def pr_unit(repo: str, number: int) -> str:
    return f"pr:{repo}#{number}"


def ci_unit(repo: str) -> str:
    return f"ci:{repo}"


def sync_unit(repo: str) -> str:
    return f"sync:{repo}"


def team_unit(team: str) -> str:
    return f"team:{team}"


def alerts_unit(team: str) -> str:
    return f"alerts:{team}"


def digest_unit(team: str) -> str:
    return f"digest:{team}"


# --------------------------------------------------------------------------- enqueue


def enqueue_pr_refresh(store: Store, repo: str, number: int, *, reason: str) -> bool:
    """Queue a refresh of PR ``repo#number``; False when one is already pending (coalesced)."""
    return _enqueue(store, REFRESH, pr_unit(repo, number), "jobs.work.refresh_pr", (repo, number),
                    f"refresh {repo}#{number} ({reason})")


def enqueue_ci_refresh(store: Store, repo: str, *, reason: str) -> bool:
    """Queue a refresh of ``repo``'s CI; False when one is already pending (coalesced)."""
    return _enqueue(store, REFRESH, ci_unit(repo), "jobs.work.refresh_ci", (repo,),
                    f"refresh CI of {repo} ({reason})")


def enqueue_repo_sync(store: Store, repo: str, *, reason: str, cycle: str | None = None) -> bool:
    """Queue ``repo``'s incremental sync (counted in sampling cycle ``cycle``, if given);
    False when one is already pending (coalesced)."""
    return _enqueue(store, SYNC, sync_unit(repo), "jobs.work.sync_repository", (repo,),
                    f"sync {repo} ({reason})", extra={"cycle": cycle} if cycle else None)


def enqueue_cycle(store: Store, cycle: str, *, reason: str) -> bool:
    """Queue sampling cycle ``cycle`` (``jobs.dispatch.start_cycle``); False when one is
    already pending."""
    return _enqueue(store, SYNC, "cycle:start", "jobs.dispatch.start_cycle", (cycle,),
                    f"sampling cycle {cycle} ({reason})")


def enqueue_cycle_end(store: Store, cycle: str) -> bool:
    """Queue the end of sampling cycle ``cycle``: queue samples, run record, team snapshots."""
    return _enqueue(store, SYNC, f"cycle:end:{cycle}", "jobs.dispatch.end_cycle", (cycle,),
                    f"end of sampling cycle {cycle}")


def enqueue_team_alerts(store: Store, team: str, *, reason: str,
                        delay: timedelta | None = None) -> bool:
    """Queue ``team``'s alert evaluation (after ``delay``, if given); False when one is
    already pending (coalesced)."""
    return _enqueue(store, TEAMS, alerts_unit(team), "jobs.dispatch.team_alerts", (team,),
                    f"alerts of {team} ({reason})", delay=delay)


def enqueue_digest(store: Store, team: str, *, reason: str) -> bool:
    """Queue ``team``'s digest (posted only if due and not done); False when pending."""
    return _enqueue(store, DIGESTS, digest_unit(team), "jobs.dispatch.team_digest", (team,),
                    f"digest of {team} ({reason})")


def enqueue_windows(store: Store, *, reason: str) -> bool:
    """Queue a pass of the review-window DMs; False when one is already pending."""
    return _enqueue(store, TEAMS, "windows", "jobs.dispatch.member_windows", (),
                    f"review-window DMs ({reason})")


def count_in_cycle(store: Store, cycle: str, repo: str, *, changed: int, failed: bool) -> bool:
    """Count ``repo`` done in ``cycle``; the last one queues the cycle's end. True when this
    call counted it (it was part of the cycle and not counted before)."""
    left = store.cycle_step(cycle, repo, changed=changed, failed=failed)
    if left == 0:
        enqueue_cycle_end(store, cycle)
    return left is not None


def enqueue_team_snapshot(store: Store, team: str, *, reason: str) -> bool:
    """Queue ``team``'s snapshot; False when one is already pending (coalesced)."""
    return _enqueue(store, TEAMS, team_unit(team), "jobs.work.team_snapshot", (team,),
                    f"snapshot of {team} ({reason})")


def _enqueue(store: Store, name: str, unit: str, func: str,
             args: tuple[object, ...], description: str, *,
             extra: dict[str, object] | None = None, delay: timedelta | None = None) -> bool:
    job_id = f"{_base_id(store, unit)}-{_stamp()}"
    if store.mark_pending(unit, job_id, ttl=PENDING_TTLS.get(name, PENDING_TTL)) is not None:
        return False
    q = queue(store, name)
    options: dict[str, Any] = {
        "args": args, "kwargs": {"unit": unit, "mark": job_id, **(extra or {})},
        "job_id": job_id, "description": description, "result_ttl": RESULT_TTL,
        "failure_ttl": FAILURE_TTL, "retry": Retry(max=len(RETRY), interval=list(RETRY)),
        "unique": True,
    }
    try:
        if delay is None:
            q.enqueue_call(func, timeout=TIMEOUTS[name], **options)
        else:
            q.enqueue_in(delay, func, job_timeout=TIMEOUTS[name], **options)
    except DuplicateJobError:  # the same id queued meanwhile: that job is the pending one
        return False
    except Exception as err:  # the client's errors (redis-py's, not imported here)
        try:
            store.clear_pending(unit, job_id)  # not queued: the next event may try again
        except StoreUnavailable:
            pass  # the mark lapses by itself (PENDING_TTL)
        raise StoreUnavailable(f"could not queue {description} ({store.location}): {err}") from None
    return True


def _stamp() -> str:
    """Milliseconds since the epoch, base 36: when a unit's pending period began."""
    n, digits, out = time.time_ns() // 1_000_000, "0123456789abcdefghijklmnopqrstuvwxyz", ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out or "0"


# --------------------------------------------------------------------------- job functions
#
# Small on purpose: each clears its unit's pending mark, does one unit through the existing
# code, and queues what follows. Raising fails the job (RQ retries it, then keeps it in the
# failed registry with its traceback).


def refresh_pr(repo: str, number: int, *, unit: str, mark: str) -> str:
    """RQ job: bring PR ``repo#number`` up to date (:func:`jobs.sync.refresh_pr`: one GraphQL
    query), then the owning teams' snapshots when it changed."""
    from jobs import sync

    ctx = begin(unit, mark)
    return _synced(ctx, repo, f"#{number}", lambda source, **kw: sync.refresh_pr(
        ctx.store, source, repo, number, **kw))


def refresh_ci(repo: str, *, unit: str, mark: str) -> str:
    """RQ job: bring ``repo``'s CI up to date (:func:`jobs.sync.refresh_ci`: its runs listing,
    then queued reruns' jobs), then the owning teams' snapshots when something changed."""
    from jobs import sync

    ctx = begin(unit, mark)
    return _synced(ctx, repo, "CI", lambda source, **kw: sync.refresh_ci(ctx.store, source, repo, **kw))


def sync_repository(repo: str, *, unit: str, mark: str, cycle: str | None = None) -> str:
    """RQ job: ``repo``'s incremental sync, counted once in its sampling cycle (whose end
    refreshes every team); outside a cycle (or retried after it counted), the owning teams'
    snapshots follow when it stored something or its error line changed."""
    ctx = begin(unit, mark)
    return _synced(ctx, repo, "sync", cycle=cycle)


def team_snapshot(team: str, *, unit: str, mark: str) -> str:
    """RQ job: ``team``'s snapshot, recomputed only when its inputs changed
    (:func:`jobs.snapshot.refresh_team`), with its repositories' last sync errors."""
    from jobs import snapshot

    ctx = begin(unit, mark)
    if team not in ctx.settings.teams:
        return f"team {team} is no longer configured"
    repos = [ctx.settings.full_repo(r) for r in ctx.settings.teams[team].repositories]
    errors = sync_errors(ctx.store, repos)
    now, started = ctx.clock.now(), time.monotonic()
    snap = snapshot.refresh_team(ctx.settings, ctx.store, team, now=now, errors=errors)
    detail = (f"{team}: snapshot of {snap.computed_at:%Y-%m-%d %H:%M} UTC" if snap
              else f"{team}: no data yet") + (f"; partial: {errors[0]}" if errors else "")
    # one record list for every team (newest 50): doctor and /flow health show the last one
    ctx.store.record_run(JobRun(job="snapshot", started_at=now, outcome="partial" if errors else "ok",
                                seconds=round(time.monotonic() - started, 3), detail=detail[:500]))
    enqueue_team_alerts(ctx.store, team, reason="snapshot")
    return detail


def begin(unit: str, mark: str) -> Context:
    """A job starts: clear its unit's pending mark (an event from now on queues one more
    run) and return the installed context."""
    ctx = context()
    ctx.store.clear_pending(unit, mark)
    return ctx


def _synced(ctx: Context, repo: str, what: str, step: Callable[..., RepoReport] | None = None,
            *, cycle: str | None = None) -> str:
    """Sync ``repo`` (or run ``step(source, now=, retention_days=)``: a PR's or CI's refresh),
    keep its error line for the snapshots, and queue the owning teams' snapshots (or, for a
    sync of sampling cycle ``cycle``, count it done there: the cycle's end refreshes them)."""
    from jobs.errors import GitHubError, PermissionDenied
    from jobs.sync import sync_repo

    before = ctx.store.sync_errors([repo]).get(repo)
    run = step or (lambda source, **kw: sync_repo(ctx.store, source, repo, **kw))
    try:
        report = run(ctx.github(repo), now=ctx.clock.now(),
                     retention_days=ctx.settings.github.retention_days)
    except (GitHubError, PermissionDenied) as err:
        line = f"{repo}: {err}"
        _note_error(ctx.store, repo, line)
        if cycle is None or not count_in_cycle(ctx.store, cycle, repo, changed=0, failed=True):
            if line != before:
                _follow(ctx, repo, f"{repo}: failing")
        raise
    error = None
    if report.deferred:
        error = f"{repo}: deferred to the next cycle ({report.deferred})"
    _note_error(ctx.store, repo, error)
    counted = cycle is not None and count_in_cycle(
        ctx.store, cycle, repo, changed=report.changed, failed=error is not None)
    if not counted and (report.changed or error != before):
        _follow(ctx, repo, f"{repo} {what}: {report.changed} changed")
    return report.line()


def _note_error(store: Store, repo: str, line: str | None) -> None:
    """Keep (or clear) ``repo``'s error line: a snapshot names the repositories it is missing."""
    store.note_sync_error(repo, line, ttl=ERROR_TTL)


def _follow(ctx: Context, repo: str, reason: str) -> None:
    for team in ctx.settings.teams_of_repo(repo):
        enqueue_team_snapshot(ctx.store, team, reason=reason)


def sync_errors(store: Store, repos: list[str]) -> tuple[str, ...]:
    """The last sync error line of each of ``repos`` that has one."""
    return tuple(store.sync_errors(list(dict.fromkeys(repos))).values())


# --------------------------------------------------------------------------- workers


def make_worker(store: Store, *, name: str | None = None) -> _Worker:
    """An RQ worker serving this store's queues in priority order (:data:`QUEUES`), on a
    connection of its own (blocking pops), named ``<prefix>__<host>-<pid>-<random>``. A
    :class:`rq.SimpleWorker`: jobs run in this process (docs/architecture.md says why)."""
    connection = store.redis_client(blocking=True)
    queues = [queue(store, q, connection=connection) for q in QUEUES]
    name = name or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
    return _Worker(queues, connection=connection, name=f"{_safe(store.prefix)}__{_safe(name)}",
                   maintenance_interval=MAINTENANCE_SECONDS)


class _Worker(SimpleWorker):
    """RQ's SimpleWorker that says when it is ready: registered, subscribed to RQ's commands,
    and its SIGTERM/SIGINT handlers (a warm shutdown) installed."""

    on_ready: Callable[[], None] | None = None

    def _install_signal_handlers(self) -> None:
        super()._install_signal_handlers()  # type: ignore[no-untyped-call]  # RQ leaves it untyped
        if self.on_ready is not None:
            try:
                self.on_ready()
            except StopRequested:  # a SIGTERM while saying so (RQ raises it when idle): RQ's
                self._stop_requested = True  # loop, not yet entered, stops at its first check


def run_burst(store: Store, *, name: str | None = None) -> bool:
    """Run every queued job of this store now, in this process, then return (tests, demo).
    True when any job ran."""
    return bool(make_worker(store, name=name).work(burst=True, with_scheduler=False,
                                                  logging_level="WARNING"))


def serve(store: Store, *, stop: threading.Event, on_started: Callable[[], None] | None = None,
          logging_level: str = "WARNING") -> None:
    """Run an RQ worker on this store's queues until SIGTERM/SIGINT or ``stop`` (a warm
    shutdown: the running job finishes). Call from the main thread (RQ's signal handlers).

    Beside it, a thread of this process (:class:`_Upkeep`) moves retries that came due onto
    their queues (RQ's own scheduler code, under RQ's per-queue lock, without RQ's forked
    scheduler process, which would outlive a killed worker) and hands the jobs of workers
    that died on this host back to RQ's abandoned-job handling at once.
    """
    worker = make_worker(store)
    worker.on_ready = on_started  # a SIGTERM from then on is a warm shutdown
    upkeep = _Upkeep(store, worker.name, stop)
    upkeep.start()
    try:
        if not stop.is_set():
            worker.work(with_scheduler=False, logging_level=logging_level)
    finally:
        upkeep.worker_done = True
        stop.set()
        upkeep.join()


class _Upkeep(threading.Thread):
    """Due retries onto their queues, dead local workers' jobs recovered, and the worker
    asked to stop (RQ's shutdown command) when ``stop`` is set by someone else."""

    def __init__(self, store: Store, worker: str, stop: threading.Event) -> None:
        super().__init__(name="rq-upkeep", daemon=True)
        self._store, self._worker, self._halt = store, worker, stop
        names = [queue_name(store, q) for q in QUEUES]
        self._scheduler: Any = RQScheduler(names, connection=store.redis_client(blocking=True),
                                           logging_level="WARNING", name=worker)
        self.worker_done = False  # the worker returned: nothing to ask to stop

    def run(self) -> None:
        passes, failing = 0, False
        while not self._halt.wait(UPKEEP_SECONDS):
            passes += 1
            try:
                self._scheduler.acquire_locks()
                if self._scheduler.acquired_locks:
                    self._scheduler.enqueue_scheduled_jobs()
                if passes % RECOVER_EVERY == 1:
                    recover(self._store)
                failing = False
            except Exception as err:  # Redis away: said once per outage, tried every second
                if not failing:
                    log.warning("work queue upkeep failed (%s: %s); retrying",
                                type(err).__name__, err)
                failing = True
        self._scheduler.release_locks()
        if self.worker_done:
            return
        try:  # RQ's own way: the worker signals itself (SIGINT), a warm shutdown
            send_shutdown_command(self._store.redis_client(), self._worker)
        except Exception:
            log.info("could not ask worker %s to stop (it may have stopped already)", self._worker)


def recover(store: Store) -> list[str]:
    """Jobs left started by a worker of this host that no longer runs (killed: SIGKILL, OOM):
    handed to RQ's abandoned-job handling now instead of after their heartbeat's expiry
    (a retry spent and the job queued again at once; without retries left, failed). The dead
    workers' registrations and retry-scheduler locks go too. Returns the jobs' ids."""
    client = store.redis_client()
    host = _safe(socket.gethostname())
    mine = f"{_safe(store.prefix)}__{host}-"
    found: list[str] = []
    for name in QUEUES:
        q = queue(store, name)
        registry = q.started_job_registry
        for member in client.zrange(registry.key, 0, -1):
            job_id = _text(member).split(":", 1)[0]
            job = q.fetch_job(job_id)
            worker = job.worker_name if job is not None else None
            if not worker or not worker.startswith(mine) or _alive(worker, mine):
                continue
            client.zadd(registry.key, {member: 1}, xx=True)  # expired long ago
            found.append(job_id)
        if found:
            registry.cleanup()  # RQ's handling: a retry spent (scheduled), else failed
            for job_id in set(found) & set(q.scheduled_job_registry.get_job_ids()):
                job = q.fetch_job(job_id)
                if job is not None:  # its worker died, not the job: run it again now
                    q.scheduled_job_registry.remove(job)
                    q.enqueue_job(job)
    for name in QUEUES:  # RQ's lock on moving a queue's due retries, held by the dead one
        lock_key = f"rq:scheduler-lock:{queue_name(store, name)}"
        holder = client.get(lock_key)
        if holder is not None and _text(holder).startswith(mine) and not _alive(_text(holder), mine):
            client.delete(lock_key)
    for worker_key in client.smembers("rq:workers"):
        key = _text(worker_key)
        worker = key.removeprefix("rq:worker:")
        if worker.startswith(mine) and not _alive(worker, mine):
            client.srem("rq:workers", key)
            client.delete(key)
            for name in QUEUES:
                client.srem(f"rq:workers:{queue_name(store, name)}", key)
    if found:
        log.warning("jobs of workers that died on this host handed back to RQ: %s", ", ".join(found))
    return found


def _alive(worker: str, mine: str) -> bool:
    """Worker ``<mine><pid>-<random>`` of this host: is its process alive?"""
    try:
        pid = int(worker[len(mine):].split("-")[0])
        os.kill(pid, 0)
    except ValueError:
        return True  # not a name we gave: not ours to judge
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, someone else's
    return True


# --------------------------------------------------------------------------- watching


@dataclass(frozen=True, slots=True)
class QueueDepth:
    """One queue's jobs by state, for doctor and ``/flow health``."""

    name: str
    queued: int
    started: int
    scheduled: int  # waiting for a retry
    failed: int


def depths(store: Store) -> list[QueueDepth]:
    """Each of this store's queues: queued, running, waiting to retry, failed."""
    out = []
    for name in QUEUES:
        q = queue(store, name)
        out.append(QueueDepth(
            name=q.name, queued=q.count,
            started=q.started_job_registry.count,
            scheduled=q.scheduled_job_registry.count,
            failed=q.failed_job_registry.count,
        ))
    return out


@dataclass(frozen=True, slots=True)
class Failure:
    """A job in a failed registry: which, when, and the last line of its exception."""

    job_id: str
    description: str
    at: datetime | None
    reason: str


def failures(store: Store, *, limit: int = 5) -> tuple[int, list[Failure]]:
    """How many jobs sit in this store's failed registries, and the newest ``limit`` of them
    (newest first) with the last line of each one's exception."""
    found: list[tuple[float, Queue, str]] = []
    total = 0
    for name in QUEUES:
        q = queue(store, name)
        registry = q.failed_job_registry
        total += registry.count
        client = store.redis_client()
        for job_id, score in client.zrevrange(registry.key, 0, limit - 1, withscores=True):
            found.append((score, q, _text(job_id)))
    out = []
    for _, q, job_id in sorted(found, key=lambda f: f[0], reverse=True)[:limit]:
        job = q.fetch_job(job_id)
        if job is None:
            continue
        result = job.latest_result()
        text = (result.exc_string or "") if result is not None else ""
        lines = [line for line in text.strip().splitlines() if line.strip()]
        out.append(Failure(job_id, job.description or job_id, job.ended_at,
                           lines[-1].strip()[:300] if lines else "no reason recorded"))
    return total, out


@dataclass(frozen=True, slots=True)
class WorkStatus:
    """The work queue at a glance (doctor, ``/flow health``): each queue's depth, the RQ
    workers registered on these queues, and the failed jobs (count, newest)."""

    queues: tuple[QueueDepth, ...]
    workers: tuple[str, ...]  # RQ worker names (``<prefix>__<host>-<pid>-<random>``)
    failed: int
    newest_failure: Failure | None

    @property
    def queued(self) -> int:
        return sum(q.queued for q in self.queues)

    def depth_line(self) -> str:
        """``refresh 0 · sync 3 queued, 1 running · digests 0 · teams 0``."""
        parts = []
        for q in self.queues:
            short = q.name.rsplit(":", 1)[-1]
            extra = [f"{n} {what}" for n, what in ((q.started, "running"),
                                                     (q.scheduled, "waiting to retry")) if n]
            parts.append(f"{short} {q.queued}" + (f" queued, {', '.join(extra)}" if extra else ""))
        return " · ".join(parts)


def status(store: Store) -> WorkStatus:
    """The work queue now (see :class:`WorkStatus`). Raises StoreUnavailable."""
    from rq import Worker

    try:
        client = store.redis_client()
        names: set[str] = set()
        for name in QUEUES:
            names.update(w.name for w in Worker.all(connection=client, queue=queue(store, name)))
        count, newest = failures(store, limit=1)
        return WorkStatus(tuple(depths(store)), tuple(sorted(names)), count,
                          newest[0] if newest else None)
    except Exception as err:  # the client's errors (redis-py's, not imported here)
        raise StoreUnavailable(f"work queue unreadable ({store.location}): {err}") from None


def worker_label(name: str) -> str:
    """A worker's name without the store prefix: ``<host>-<pid>-<random>``."""
    return name.split("__", 1)[-1]


def purge(store: Store) -> int:
    """Delete every RQ key of this store's queues, jobs and workers (tests, the demo's reset;
    nothing of another prefix). Returns how many keys went."""
    client = store.redis_client()
    ours = [f"rq:*:{_glob(store.prefix)}:*", f"rq:*:{_glob(_safe(store.prefix))}__*"]
    keys = {k for pattern in ours for k in client.scan_iter(pattern, count=1000)}
    for members in (Queue.redis_queues_keys, "rq:workers"):
        marks = (f":{store.prefix}:", f":{_safe(store.prefix)}__")
        mine = [m for m in client.smembers(members) if any(x in _text(m) for x in marks)]
        if mine:
            client.srem(members, *mine)
    batch = list(keys)
    for i in range(0, len(batch), 500):
        client.delete(*batch[i:i + 500])
    return len(batch)


def _glob(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
