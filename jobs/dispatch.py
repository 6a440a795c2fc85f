"""The schedule as queued work: what the one active scheduler enqueues, and the jobs of a
sampling cycle, a team's alerts and a team's digest.

:class:`Dispatch` answers the scheduler's triggers (:func:`jobs.scheduler.build_scheduler`)
the way :class:`jobs.scheduler.Pipeline` does, by enqueuing instead of doing:

* a sampling tick (claimed once per interval) queues :func:`start_cycle`, which lists the
  repositories (the organisation's, when ``github.all_repositories``), opens the cycle's count
  in the store and queues one sync per repository (``jobs.work.sync_repository``, any worker);
* each sync counts itself done in its cycle once (retried, it is not counted again); the
  last one queues :func:`end_cycle`: every team's queue sample, the cycle's ``sample`` run
  record, then one snapshot job per team (recomputed only when its inputs changed), each of
  which queues its team's alert evaluation (:func:`team_alerts`);
* a team's digest time, and the catch-up of missed digests, queue :func:`team_digest`; a
  team's working-day opening queues :func:`team_alerts`; every minute, :func:`member_windows`
  (the review-window DMs, ``jobs.window_dm``).

Exactly once: alerts run under the team's lock, digests through ``Pipeline.digest`` (the
team's lock, a done mark per scheduled time); both post through delivery's idempotency keys,
so a job run twice (a retry, a worker killed mid-job and its job run again) posts once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from datetime import UTC, datetime, timedelta

from jobs import work
from jobs.errors import FlowbotError, GitHubError, PermissionDenied
from jobs.scheduler import ALERTS_JOB, SAMPLE_JOB, Pipeline, digest_job
from jobs.store import JobRun

log = logging.getLogger(__name__)

CYCLE_TTL = timedelta(days=1)


class JobFailed(FlowbotError):
    """A queued unit of work did not do what it is for (RQ retries it, then keeps it failed)."""


class Dispatch:
    """The scheduler's side when work is queued: each trigger enqueues (module doc)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.settings = pipeline.settings
        self.store = pipeline.store
        self.interval = pipeline.interval

    def sample(self, now: datetime) -> list[JobRun] | None:
        """Queue a sampling cycle, once per interval across replicas; None when claimed (or
        Redis is down: the next tick tries again)."""
        if not self.pipeline.claim_sample(now):
            return None
        return [] if _queued(lambda: work.enqueue_cycle(self.store, cycle_id(now), reason="schedule"),
                             f"sampling cycle {cycle_id(now)}") else None

    def refresh(self, now: datetime) -> list[JobRun]:
        """Nothing: the cycle's last sync queues the snapshots and alerts."""
        return []

    def catch_up(self, now: datetime) -> list[JobRun]:
        """Queue every team's digest that is due and not done."""
        for team in self.settings.teams:
            try:
                due = self.pipeline.digest_due(team, now)
            except FlowbotError as err:
                log.error("digest check for %s skipped: %s", team, err)
                continue
            if due is not None:
                _queued(partial(work.enqueue_digest, self.store, team, reason="catch-up"),
                        f"digest of {team}")
        return []

    def digest(self, team: str, now: datetime) -> JobRun | None:
        """Queue ``team``'s digest (the job checks it is due and not done)."""
        _queued(lambda: work.enqueue_digest(self.store, team, reason="schedule"), f"digest of {team}")
        return None

    def opening(self, team: str, now: datetime) -> JobRun | None:
        """``team``'s working day starts: queue its alert evaluation, once per opening."""
        if self.pipeline.claim(f"run:opening:{team}:{cycle_id(now)}", timedelta(days=1)):
            _queued(lambda: work.enqueue_team_alerts(self.store, team, reason="opening"),
                    f"alerts of {team}")
        return None


    def windows(self, now: datetime) -> JobRun | None:
        """Queue a pass of the review-window DMs (coalesced: one pending at a time)."""
        _queued(lambda: work.enqueue_windows(self.store, reason="schedule"), "review-window DMs")
        return None


def _queued(enqueue: Callable[[], bool], what: str) -> bool:
    """Run one enqueue; a Redis outage is logged (the schedule goes on) and gives False."""
    try:
        return enqueue() or True
    except FlowbotError as err:
        log.error("could not queue %s: %s", what, err)
        return False


def cycle_id(now: datetime) -> str:
    """A cycle's (or an opening's) name: its start, to the minute, UTC."""
    return now.astimezone(UTC).strftime("%Y%m%dT%H%MZ")


# --------------------------------------------------------------------------- job functions


def start_cycle(cycle: str, *, unit: str, mark: str) -> str:
    """RQ job: list the repositories, open the cycle's count, queue a sync per repository."""
    from jobs.cycle import repositories

    ctx = work.begin(unit, mark)
    settings, store = ctx.settings, ctx.store
    try:
        repos = repositories(settings, store, ctx.connections())
    except (GitHubError, PermissionDenied) as err:
        log.warning("could not list the organisation's repositories: %s", err)
        repos = list(settings.repositories)
    store.open_cycle(cycle, units=len(repos), started_at=ctx.clock.now(), ttl=CYCLE_TTL)
    queued = 0
    for repo in repos:
        if work.enqueue_repo_sync(store, repo, reason=f"cycle {cycle}", cycle=cycle):
            queued += 1
        else:  # a sync is pending already (a webhook's, or a slow earlier cycle's): it counts
            work.count_in_cycle(store, cycle, repo, changed=0, failed=False)
    if not repos:
        work.enqueue_cycle_end(store, cycle)
    return f"cycle {cycle}: {queued} of {len(repos)} repositories queued"


def end_cycle(cycle: str, *, unit: str, mark: str) -> str:
    """RQ job: every team's queue sample, the cycle's run record, then the team snapshots."""
    from jobs.cycle import sample_queues

    ctx = work.begin(unit, mark)
    settings, store, now = ctx.settings, ctx.store, ctx.clock.now()
    totals = store.cycle_totals(cycle)
    errors = list(work.sync_errors(store, list(settings.repositories)))
    samples = sample_queues(settings, store, now=now, errors=errors)
    started = _parse(totals.get("started_at")) or now
    units, failed = int(totals.get("units", 0)), int(totals.get("failed", 0))
    detail = (f"{units} repositories, {totals.get('changed', 0)} PRs changed, {len(samples)} queue"
              f" samples; {len(errors)} errors" + (f": {errors[0]}" if errors else ""))
    run = JobRun(job=SAMPLE_JOB, started_at=started, seconds=round((now - started).total_seconds(), 3),
                 outcome="partial" if failed or errors else "ok", detail=detail[:500])
    store.record_run(run)
    for team in settings.teams:
        work.enqueue_team_snapshot(store, team, reason=f"cycle {cycle}")
    return detail


def team_alerts(team: str, *, unit: str, mark: str) -> str:
    """RQ job: evaluate ``team``'s alert rules on its snapshot and post what is due, under
    the team's lock (another worker evaluating it: this run waits a few seconds, queued)."""
    from jobs.alerts import AlertEngine

    ctx = work.begin(unit, mark)
    pipeline = ctx.require_pipeline()
    if team not in ctx.settings.teams:
        return f"team {team} is no longer configured"
    engine = AlertEngine(ctx.settings, ctx.store, pipeline.deliver)
    now = ctx.clock.now()

    def body() -> object:
        report = engine.evaluate(team, now=now)
        detail = (f"{team}: {len(report.posted)} posted, {len(report.held)} held,"
                  f" {len(report.failed)} not delivered")
        return (bool(report.failed), detail + (f"; skipped: {report.skipped}" if report.skipped else ""))

    run = pipeline.run_job(f"{ALERTS_JOB}:{team}", now, body)
    if run is None:  # evaluated elsewhere right now: once more after it, on fresh data
        work.enqueue_team_alerts(ctx.store, team, reason="after a concurrent run",
                                 delay=timedelta(seconds=5))
        return f"{team}: evaluated by another worker now; queued again"
    if run.outcome == "failed":
        raise JobFailed(run.detail)
    return run.detail


def team_digest(team: str, *, unit: str, mark: str) -> str:
    """RQ job: post ``team``'s digest if one is due and not done (``Pipeline.digest``: the
    team's lock, a done mark per scheduled time, delivery's idempotency key)."""
    ctx = work.begin(unit, mark)
    if team not in ctx.settings.teams:
        return f"team {team} is no longer configured"
    run = ctx.require_pipeline().digest(team, ctx.clock.now())
    if run is None:
        return f"{digest_job(team)}: not due, done, or being posted by another worker"
    if run.outcome == "failed":
        raise JobFailed(run.detail)
    return run.detail


def member_windows(*, unit: str, mark: str) -> str:
    """RQ job: one pass of the review-window DMs (``Pipeline.windows``: under its lock, each
    DM through delivery's idempotency key, so a pass run twice posts once)."""
    ctx = work.begin(unit, mark)
    run = ctx.require_pipeline().windows(ctx.clock.now())
    if run is None:
        return "review-window DMs: no DM delivery wired, or another worker is running them"
    if run.outcome == "failed":
        raise JobFailed(run.detail)
    return run.detail


def _parse(value: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None
