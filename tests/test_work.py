"""Units of work as RQ jobs: coalesced enqueues, a real RQ worker, retries, the failed registry.

Redis is real (the run's server, and the embedded one); the worker is RQ's own SimpleWorker in
this process, in burst mode; GitHub is the sandbox on loopback, driven by PyGithub.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pytest

from bot.config import from_mapping
from jobs import work
from jobs.github.client import connect
from jobs.ports import FixedClock
from jobs.sandbox.org import Org, build_org
from jobs.sandbox.server import SandboxServer
from jobs.settings import Settings
from jobs.store import Store

END = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)


@dataclass
class Rig:
    """The sandbox on loopback, settings pointing at it, and the work context installed."""

    server: SandboxServer
    clock: FixedClock
    settings: Settings
    repo: str
    team: str

    def context(self, store: Store, **kw: Any) -> work.Context:
        ctx = work.Context(self.settings, store, self.clock,
                           connect=lambda: connect(self.settings, clock=self.clock), **kw)
        work.install(ctx)
        return ctx


@pytest.fixture(scope="module")
def org() -> Org:
    return build_org(end=END, weeks=2, teams=1, repos_per_team=1)


@pytest.fixture
def rig(org: Org) -> Iterator[Rig]:
    clock = FixedClock(END)
    server = SandboxServer(org, clock=clock)
    mapping = org.config(server.start())
    mapping["github"]["timeout_seconds"] = 10
    settings = from_mapping(mapping, env={"GITHUB_TOKEN": server.token})
    team = next(iter(settings.teams))
    yield Rig(server, clock, settings, settings.full_repo(org.teams[0].repos[0]), team)
    work.install(None)
    server.stop()



def test_ten_events_for_one_pr_give_one_refresh_and_the_team_snapshot_follows(
    rig: Rig, store: Store
) -> None:
    """A burst of ten events for a PR queues one job; a real worker runs it, stores that PR
    (read by number), and the owning team's snapshot is computed after it."""
    rig.context(store)
    queued = [work.enqueue_pr_refresh(store, rig.repo, 7, reason="pull_request.synchronize")
              for _ in range(10)]
    assert queued.count(True) == 1
    assert [d.queued for d in work.depths(store)] == [1, 0, 0, 0]

    assert work.run_burst(store)

    assert [p.number for p in store.get_prs(rig.repo)] == [7], "the refresh stored that PR"
    snap = store.get_snapshot_head(rig.team)
    assert snap is not None and snap.computed_at == END
    assert all(d.queued == d.failed == 0 for d in work.depths(store))
    assert work.enqueue_pr_refresh(store, rig.repo, 7, reason="later"), "the mark is cleared"


def test_an_event_during_a_run_queues_exactly_one_more_run(rig: Rig, store: Store) -> None:
    """Events that arrive while a refresh runs are folded into one more run after it."""
    during: list[bool] = []

    def connect_during_run() -> Any:  # the job is running: three events arrive now
        during.extend(work.enqueue_ci_refresh(store, rig.repo, reason="check_run") for _ in range(3))
        return connect(rig.settings, clock=rig.clock)

    work.install(work.Context(rig.settings, store, rig.clock, connect=connect_during_run))
    assert work.enqueue_ci_refresh(store, rig.repo, reason="check_suite")
    work.run_burst(store)
    assert during == [True, False, False]
    assert all(d.queued == d.started == d.failed == 0 for d in work.depths(store))


def test_a_failing_job_is_retried_with_backoff_then_kept_in_the_failed_registry(
    rig: Rig, store: Store
) -> None:
    """A repository GitHub refuses: the job fails, waits for its retry (not run again at once),
    and once its retries are spent it sits in RQ's failed registry with the reason."""
    rig.context(store)
    rig.server.deny(rig.repo)
    assert work.enqueue_repo_sync(store, rig.repo, reason="test")
    work.run_burst(store)
    sync = next(d for d in work.depths(store) if d.name.endswith(":sync"))
    assert (sync.queued, sync.scheduled, sync.failed) == (0, 1, 0)
    assert store.get_json("work", "error", rig.repo).startswith(f"{rig.repo}: ")

    q = work.queue(store, work.SYNC)
    for _ in work.RETRY:  # each retry comes due: run it (RQ's own requeue of due retries)
        job = q.fetch_job(q.scheduled_job_registry.get_job_ids()[0])
        assert job is not None
        q.scheduled_job_registry.remove(job)
        q.enqueue_job(job)
        work.run_burst(store)
    sync = next(d for d in work.depths(store) if d.name.endswith(":sync"))
    assert (sync.queued, sync.scheduled, sync.failed) == (0, 0, 1)
    count, newest = work.failures(store)
    assert count == 1
    assert newest[0].reason.startswith("jobs.errors.PermissionDenied: GitHub refused")


def test_queues_and_job_ids_carry_the_prefix_and_purge_removes_only_ours(
    rig: Rig, store: Store, redis_url: str
) -> None:
    """Two installs on one Redis: each sees only its own queues; purging one leaves the other."""
    other = Store.connect(redis_url, prefix=f"{store.prefix}-other")
    try:
        assert work.enqueue_team_snapshot(store, rig.team, reason="a")
        assert work.enqueue_team_snapshot(other, rig.team, reason="b"), "another prefix, another unit"
        ids = work.queue(store, work.TEAMS).get_job_ids()
        assert len(ids) == 1 and ids[0].startswith(store.prefix)
        assert work.queue(store, work.TEAMS).name == f"{store.prefix}:teams"
        assert work.purge(store) > 0
        assert work.queue(store, work.TEAMS).count == 0
        assert work.queue(other, work.TEAMS).count == 1
    finally:
        work.purge(other)
        other.flush_prefix()
        other.close()


def test_jobs_run_on_the_embedded_redis(rig: Rig, embedded_store: Store) -> None:
    """No Redis server: the same queue and worker on the embedded one."""
    embedded_store.ensure_schema()
    rig.context(embedded_store)
    assert work.enqueue_repo_sync(embedded_store, rig.repo, reason="demo")
    assert work.run_burst(embedded_store)
    assert embedded_store.get_prs(rig.repo)
    assert embedded_store.get_snapshot_head(rig.team) is not None
