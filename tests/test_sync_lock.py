"""One repository's syncs and refreshes take its lock: they never interleave across workers.

Without it two workers could refresh one repository at once (a PR's refresh and its CI's, as
a push's webhooks ask), and the one that read the stored PR first could write last, putting
the old head back. The sandbox serves GitHub on loopback; Redis is real.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.config import from_mapping
from jobs.github.client import connect
from jobs.ports import FixedClock
from jobs.sandbox import SandboxServer, build_org
from jobs.settings import Settings
from jobs.store import Store
from jobs.sync import refresh_pr, sync_repo

END = datetime(2026, 3, 2, 11, 0, tzinfo=UTC)  # a Monday morning


@pytest.fixture
def rig() -> Iterator[tuple[SandboxServer, Settings, FixedClock]]:
    clock = FixedClock(END)
    with SandboxServer(build_org(end=END, weeks=1, teams=1, repos_per_team=1),
                       clock=clock) as server:
        settings = from_mapping(server.org.config(server.base_url), source="test",
                                env={"GITHUB_TOKEN": server.token})
        yield server, settings, clock


def test_a_refresh_takes_the_repositorys_lock_and_gives_it_back(
    rig: tuple[SandboxServer, Settings, FixedClock], store: Store
) -> None:
    """A lock left by a dead worker is taken over, the refresh runs, and the lock is free
    after it (the next sync or refresh of the repository need not wait)."""
    server, settings, clock = rig
    repo = settings.repositories[0]
    source = connect(settings, sleep=lambda _s: None, clock=clock)
    sync_repo(store, source, repo, now=clock.now(), days=7)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert store.try_lock(f"repo:{repo}", ttl=timedelta(minutes=10), pid=dead.pid).acquired
    number = server.changes.open_pr(repo.split("/")[1], title="Locked out?", ci=False)
    report = refresh_pr(store, source, repo, number, now=clock.now())
    assert report.complete and report.changed == 1
    assert store.get_pr(repo, number) is not None
    assert store.lock_holder(f"repo:{repo}") is None
