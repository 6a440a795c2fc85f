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
import os
import secrets
import socket
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from rq import Queue, Retry, SimpleWorker

from jobs.errors import FlowbotError
from jobs.model import Digest
from jobs.ports import Clock, Deliver
from jobs.settings import Settings
from jobs.store import Store

if TYPE_CHECKING:
    from jobs.sync import RepoReport

log = logging.getLogger(__name__)

# Queues in the order a worker serves them: a webhook's refresh first (freshness), then
# sampling, then team work (snapshots, alerts), digests last (a thousand due at once must not
# hold up sampling).
REFRESH, SYNC, TEAMS, DIGESTS = "refresh", "sync", "teams", "digests"
QUEUES = (REFRESH, SYNC, TEAMS, DIGESTS)

PENDING_TTL = timedelta(minutes=15)  # a lost job (Redis restored from an old file) frees its unit
RETRY = (10, 60, 300)  # seconds before each retry of a failed job
RESULT_TTL = 600  # finished jobs stay visible (rq info, rq-dashboard) this long
FAILURE_TTL = int(timedelta(days=7).total_seconds())
ERROR_TTL = timedelta(days=1)
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
    deliver: Deliver | None = None
    chart: Callable[[Digest], bytes | None] | None = None
    source: Any = None
    connect: Callable[[], Any] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _budget_at: datetime | None = field(default=None, repr=False)

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


# --------------------------------------------------------------------------- enqueue


def enqueue_pr_refresh(store: Store, repo: str, number: int, *, reason: str) -> bool:
    """Queue a refresh of PR ``repo#number``; False when one is already pending (coalesced)."""
    return _enqueue(store, REFRESH, pr_unit(repo, number), refresh_pr, (repo, number),
                    f"refresh {repo}#{number} ({reason})")


def enqueue_ci_refresh(store: Store, repo: str, *, reason: str) -> bool:
    """Queue a refresh of ``repo``'s CI; False when one is already pending (coalesced)."""
    return _enqueue(store, REFRESH, ci_unit(repo), refresh_ci, (repo,),
                    f"refresh CI of {repo} ({reason})")


def enqueue_repo_sync(store: Store, repo: str, *, reason: str) -> bool:
    """Queue ``repo``'s incremental sync; False when one is already pending (coalesced)."""
    return _enqueue(store, SYNC, sync_unit(repo), sync_repository, (repo,),
                    f"sync {repo} ({reason})")


def enqueue_team_snapshot(store: Store, team: str, *, reason: str) -> bool:
    """Queue ``team``'s snapshot; False when one is already pending (coalesced)."""
    return _enqueue(store, TEAMS, team_unit(team), team_snapshot, (team,),
                    f"snapshot of {team} ({reason})")


def _enqueue(store: Store, name: str, unit: str, func: Callable[..., object],
             args: tuple[object, ...], description: str) -> bool:
    job_id = f"{_base_id(store, unit)}-{_stamp()}"
    if store.mark_pending(unit, job_id, ttl=PENDING_TTL) is not None:
        return False
    try:
        queue(store, name).enqueue_call(
            func, args=args, kwargs={"unit": unit, "mark": job_id}, job_id=job_id,
            description=description, timeout=TIMEOUTS[name], result_ttl=RESULT_TTL,
            failure_ttl=FAILURE_TTL, retry=Retry(max=len(RETRY), interval=list(RETRY)),
        )
    except Exception:
        store.clear_pending(unit, job_id)  # not queued: the next event may try again
        raise
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

    ctx = _begin(unit, mark)
    return _synced(ctx, repo, f"#{number}", lambda source, **kw: sync.refresh_pr(
        ctx.store, source, repo, number, **kw))


def refresh_ci(repo: str, *, unit: str, mark: str) -> str:
    """RQ job: bring ``repo``'s CI up to date (:func:`jobs.sync.refresh_ci`: its runs listing,
    then queued reruns' jobs), then the owning teams' snapshots when something changed."""
    from jobs import sync

    ctx = _begin(unit, mark)
    return _synced(ctx, repo, "CI", lambda source, **kw: sync.refresh_ci(ctx.store, source, repo, **kw))


def sync_repository(repo: str, *, unit: str, mark: str) -> str:
    """RQ job: ``repo``'s incremental sync; the owning teams' snapshots follow when it
    stored something (or its error line changed)."""
    ctx = _begin(unit, mark)
    return _synced(ctx, repo, "sync")


def team_snapshot(team: str, *, unit: str, mark: str) -> str:
    """RQ job: ``team``'s snapshot, recomputed only when its inputs changed
    (:func:`jobs.snapshot.refresh_team`), with its repositories' last sync errors."""
    from jobs import snapshot

    ctx = _begin(unit, mark)
    if team not in ctx.settings.teams:
        return f"team {team} is no longer configured"
    repos = [ctx.settings.full_repo(r) for r in ctx.settings.teams[team].repositories]
    errors = sync_errors(ctx.store, repos)
    snap = snapshot.refresh_team(ctx.settings, ctx.store, team, now=ctx.clock.now(), errors=errors)
    return f"{team}: snapshot of {snap.computed_at:%Y-%m-%d %H:%M}" if snap else f"{team}: no data"


def _begin(unit: str, mark: str) -> Context:
    ctx = context()
    ctx.store.clear_pending(unit, mark)
    return ctx


def _synced(ctx: Context, repo: str, what: str, step: Callable[..., RepoReport] | None = None) -> str:
    """Sync ``repo`` (or run ``step(source, now=, retention_days=)``: a PR's or CI's refresh),
    keep its error line for the snapshots, queue the owning teams'."""
    from jobs.errors import GitHubError, PermissionDenied
    from jobs.sync import sync_repo

    before = ctx.store.get_json("work", "error", repo)
    run = step or (lambda source, **kw: sync_repo(ctx.store, source, repo, **kw))
    try:
        report = run(ctx.github(repo), now=ctx.clock.now(),
                     retention_days=ctx.settings.github.retention_days)
    except (GitHubError, PermissionDenied) as err:
        _note_error(ctx, repo, f"{repo}: {err}", before)
        raise
    error = None
    if report.deferred:
        error = f"{repo}: deferred to the next cycle ({report.deferred})"
    _note_error(ctx, repo, error, before)
    if report.changed:
        _follow(ctx, repo, f"{repo} {what}: {report.changed} changed")
    return report.line()


def _note_error(ctx: Context, repo: str, line: str | None, before: object) -> None:
    """Keep (or clear) ``repo``'s error line; a change refreshes the owning teams' snapshots
    (a snapshot names the repositories it is missing)."""
    if line is None:
        if before is not None:
            ctx.store.delete("work", "error", repo)
    else:
        ctx.store.set_json("work", "error", repo, value=line, ttl=ERROR_TTL)
    if line != before:
        _follow(ctx, repo, f"{repo}: {'failing' if line else 'recovered'}")


def _follow(ctx: Context, repo: str, reason: str) -> None:
    for team in ctx.settings.teams_of_repo(repo):
        enqueue_team_snapshot(ctx.store, team, reason=reason)


def sync_errors(store: Store, repos: list[str]) -> tuple[str, ...]:
    """The last sync error line of each of ``repos`` that has one."""
    lines = (store.get_json("work", "error", repo) for repo in dict.fromkeys(repos))
    return tuple(line for line in lines if isinstance(line, str))


# --------------------------------------------------------------------------- workers


def make_worker(store: Store, *, name: str | None = None) -> SimpleWorker:
    """An RQ worker serving this store's queues in priority order (:data:`QUEUES`), on a
    connection of its own (blocking pops). A :class:`rq.SimpleWorker`: jobs run in this
    process (docs/architecture.md says why)."""
    connection = store.redis_client(blocking=True)
    queues = [queue(store, q, connection=connection) for q in QUEUES]
    name = name or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
    return SimpleWorker(queues, connection=connection, name=f"{_safe(store.prefix)}__{_safe(name)}")


def run_burst(store: Store, *, name: str | None = None) -> bool:
    """Run every queued job of this store now, in this process, then return (tests, demo).
    True when any job ran."""
    return bool(make_worker(store, name=name).work(burst=True, with_scheduler=False,
                                                  logging_level="WARNING"))


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
