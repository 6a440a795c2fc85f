"""Refreshing one PR or one repository's CI (what a webhook queues) stores what a sync stores.

PyGithub talks to the sandbox server on 127.0.0.1 (GraphQL and REST); Redis is real. The
reference is a full sync of the same moment into a store of its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

import pytest

from bot.config import from_mapping
from jobs.cycle import run_cycle
from jobs.github.client import GitHubSource, connect
from jobs.model import PullRequest
from jobs.ports import FixedClock
from jobs.sandbox.org import Org, build_org
from jobs.sandbox.server import SandboxServer
from jobs.settings import Settings
from jobs.store import Store
from jobs.sync import refresh_ci, refresh_pr

END = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)  # a Monday, people at work
DAYS = 8


@dataclass
class Rig:
    server: SandboxServer
    clock: FixedClock
    settings: Settings

    def source(self) -> GitHubSource:
        return connect(self.settings, sleep=lambda _s: None, clock=self.clock, page_size=50)

    def sync(self, store: Store) -> None:
        """Cycles at the current moment until every repository is complete."""
        for _ in range(20):
            report = run_cycle(self.settings, store, self.source(), clock=self.clock, days=DAYS)
            if report.complete and not any(r.backlog for r in report.repos):
                return
        raise AssertionError("the sync never completed")


@pytest.fixture(scope="module")
def org() -> Org:
    return build_org(end=END, weeks=4, teams=1, repos_per_team=2)


@pytest.fixture
def rig(org: Org) -> Iterator[Rig]:
    clock = FixedClock(END - timedelta(hours=5))
    server = SandboxServer(org, clock=clock)
    base = server.start()
    mapping = org.config(base)
    mapping["github"]["timeout_seconds"] = 10
    yield Rig(server, clock, from_mapping(mapping, env={"GITHUB_TOKEN": server.token}))
    server.stop()


@pytest.fixture
def reference(redis_url: str) -> Iterator[Store]:
    """A second store (its own prefix) for the full sync to compare with."""
    ref = Store.connect(redis_url, prefix=f"flowbot-test-{os.getpid()}-ref")
    ref.flush_prefix()
    ref.ensure_schema()
    yield ref
    ref.flush_prefix()
    ref.close()


def by_number(store: Store, repo: str) -> dict[int, PullRequest]:
    return {p.number: p for p in store.get_prs(repo)}


def test_refreshed_prs_and_ci_equal_what_a_sync_stores(rig: Rig, store: Store,
                                                        reference: Store) -> None:
    """A working day later, refreshing each changed PR and each repository's CI stores
    exactly the records the sample stores, with one GraphQL query per PR.

    (Both stores were synced on Friday; the reference is then sampled on Monday. A full
    backfill on Monday would differ from both in one place: the sample does not list again
    a run created before its last listing and rerun after it. Filed; not the refresh's.)"""
    rig.clock.current = END - timedelta(days=3)  # Friday morning
    rig.sync(store)
    rig.sync(reference)
    rig.clock.current = END
    rig.sync(reference)
    changed: dict[str, list[int]] = {}
    for repo in rig.settings.repositories:
        old, new = by_number(store, repo), by_number(reference, repo)
        changed[repo] = sorted(n for n, pr in new.items() if old.get(n) != pr)
    assert sum(map(len, changed.values())) >= 3  # the moment has something to refresh
    source = rig.source()
    for repo, numbers in changed.items():
        for number in numbers:
            posts = rig.server.stats.count(path="graphql", method="POST")
            report = refresh_pr(store, source, repo, number, now=rig.clock.now())
            assert report.error is None and report.skipped is None
            assert rig.server.stats.count(path="graphql", method="POST") - posts == 1
        refresh_ci(store, source, repo, now=rig.clock.now())
    for repo, numbers in changed.items():
        got, want = by_number(store, repo), by_number(reference, repo)
        for number in numbers:
            assert got.get(number) == want[number], difference(got.get(number), want[number])


def test_an_unchanged_pr_is_not_written_again(rig: Rig, store: Store) -> None:
    """Refreshing a PR that did not change writes nothing: no team's snapshot is recomputed."""
    rig.sync(store)
    repo = rig.settings.repositories[0]
    number = store.open_pr_numbers(repo)[0]
    before = store.generations([repo])
    report = refresh_pr(store, rig.source(), repo, number, now=rig.clock.now())
    assert report.changed == 0 and store.generations([repo]) == before


def test_a_number_that_is_no_pr_and_an_archived_repository_are_skipped(
        rig: Rig, store: Store, org: Org) -> None:
    """No such PR, or an archived repository: nothing stored, and the report says why."""
    repo = rig.settings.repositories[0]
    report = refresh_pr(store, rig.source(), repo, 99_999, now=rig.clock.now())
    assert report.skipped == "#99999 is no pull request" and store.get_prs(repo) == []
    archived = org.full_name(next(r.name for r in org.repos.values() if r.archived))
    report = refresh_pr(store, rig.source(), archived, 1, now=rig.clock.now())
    assert report.skipped == "archived" and store.get_prs(archived) == []


def test_a_pr_first_stored_by_a_refresh_gets_its_earlier_ci_at_the_next_listing(
        rig: Rig, store: Store, reference: Store) -> None:
    """A PR unknown to the store when refreshed keeps its CI runs from before: the next CI
    refresh lists from its creation, as a sync's listing would."""
    rig.sync(store)
    repo = rig.settings.repositories[0]
    rig.sync(reference)
    with_ci = [p for p in reference.get_prs(repo) if p.checks and p.state == "open"]
    assert with_ci
    pr = with_ci[0]
    prs = store.get_prs(repo)  # forget it, as if it had opened since the last sync
    store.flush_prefix()
    store.ensure_schema()
    cursor = reference.get_cursor(repo)
    assert cursor is not None
    store.put_prs(repo, [p for p in prs if p.number != pr.number], cursor=cursor)
    refresh_pr(store, rig.source(), repo, pr.number, now=rig.clock.now())
    assert store.get_pr(repo, pr.number) == replace(pr, checks=())
    refresh_ci(store, rig.source(), repo, now=rig.clock.now())
    assert store.get_pr(repo, pr.number) == pr



def difference(got: PullRequest | None, want: PullRequest) -> str:
    """Which fields differ (for checks: the attempts only one side has)."""
    if got is None:
        return f"{want.key} not stored"
    lines = [want.key]
    for f in want.__slots__:
        a, b = getattr(got, f), getattr(want, f)
        if a != b and f == "checks":
            lines += [f"  only stored: {c}" for c in set(a) - set(b)]
            lines += [f"  only synced: {c}" for c in set(b) - set(a)]
        elif a != b:
            lines.append(f"  {f}: {a!r} != {b!r}")
    return "\n".join(lines)


def test_a_ci_refresh_moves_only_the_cursors_ci_mark(rig: Rig, store: Store) -> None:
    """A sync's pass that moves on while a CI refresh runs keeps its progress (page cursor,
    ETag): the refresh moves only its own CI mark of the cursor."""
    rig.sync(store)
    repo = rig.settings.repositories[0]
    cursor = store.get_cursor(repo)
    assert cursor is not None
    halfway = replace(cursor, resume_after="Y3Vyc29yOjEw", pass_etag='W/"abc"', etag='W/"abc"')

    def meanwhile(_seconds: float) -> None:  # the refresh waits to retry: the sync moves on
        store.set_cursor(halfway)

    rig.clock.advance(timedelta(hours=1))
    rig.server.faults.schedule("502", path="actions/runs")
    source = connect(rig.settings, sleep=meanwhile, clock=rig.clock, page_size=50)
    refresh_ci(store, source, repo, now=rig.clock.now())
    assert store.get_cursor(repo) == replace(halfway, runs_since=rig.clock.now() - timedelta(minutes=10))
