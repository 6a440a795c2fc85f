"""Sampling the sandbox GitHub: complete, incremental, resumable, cheap, and robust to faults.

PyGithub talks to the sandbox server on 127.0.0.1 (REST + GraphQL); Redis is real. Nothing
sleeps for real: the sampler's sleep is a recorder.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from bot.config import from_mapping
from jobs.cycle import CycleReport, run_cycle
from jobs.github import COLLECT_VERSION, fetch, parse
from jobs.github.client import GitHubSource, connect
from jobs.model import PullRequest
from jobs.ports import FixedClock
from jobs.sandbox.org import Org, build_org
from tests.processes import config_toml
from jobs.sandbox.server import SandboxServer
from jobs.settings import Settings
from jobs.store import Store
from tests.conftest import CliStorage

END = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
START = END - timedelta(days=3)
BACKFILL_DAYS = 25
STEPS = (timedelta(hours=5), timedelta(hours=19), timedelta(hours=24), timedelta(hours=24))
FAULTS = ("500", "502", "503", "504", "secondary_403", "secondary_429", "close")


@dataclass
class Sleeps:
    """Records what the sampler would have slept."""

    calls: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@dataclass
class Rig:
    """The sandbox server, its clock, settings pointing at it, and a way to connect."""

    server: SandboxServer
    clock: FixedClock
    settings: Settings
    sleeps: Sleeps

    def source(self, *, page_size: int = 10, more_pages: int = 50, **github: Any) -> GitHubSource:
        settings = self.settings
        if github:
            settings = settings.model_copy(
                update={"github": settings.github.model_copy(update=github)}
            )
        return connect(settings, sleep=self.sleeps, clock=self.clock, page_size=page_size,
                       more_pages=more_pages)

    def graphql_posts(self) -> int:
        return self.server.stats.count(path="graphql", method="POST")


@pytest.fixture(scope="module")
def org() -> Org:
    return build_org(end=END, weeks=4, teams=1, repos_per_team=2)


@pytest.fixture
def rig(org: Org) -> Iterator[Rig]:
    clock = FixedClock(START)
    server = SandboxServer(org, clock=clock)
    server.faults.hang_seconds = 1.5
    base = server.start()
    mapping = org.config(base)
    mapping["github"]["timeout_seconds"] = 10  # a loaded machine is slow, not broken
    settings = from_mapping(mapping, env={"GITHUB_TOKEN": server.token})
    yield Rig(server, clock, settings, Sleeps())
    server.stop()


def records(store: Store, settings: Settings) -> dict[str, list[PullRequest]]:
    return {repo: store.get_prs(repo) for repo in settings.repositories}


def record_differences(got: dict[str, list[PullRequest]],
                       expected: dict[str, list[PullRequest]]) -> str:
    """Which PRs and fields differ: the assertion message when two collections disagree."""
    lines = []
    for repo in expected:
        if len(got.get(repo, [])) != len(expected[repo]):
            lines.append(f"{repo}: {len(got.get(repo, []))} records, expected {len(expected[repo])}")
        for a, b in zip(got.get(repo, []), expected[repo], strict=False):
            fields = [f for f in a.__slots__ if getattr(a, f) != getattr(b, f)]
            if fields:
                lines.append(f"{repo}#{a.number}: {', '.join(fields)} differ")
    return "\n".join(lines)


def backfill_and_cycles(rig: Rig, store: Store, source: GitHubSource) -> list[CycleReport]:
    """A backfill at START, then cycles as the sandbox's clock moves to END."""
    reports = [run_cycle(rig.settings, store, source, clock=rig.clock, days=BACKFILL_DAYS)]
    for step in STEPS:
        rig.clock.advance(step)
        reports.append(run_cycle(rig.settings, store, source, clock=rig.clock))
    return reports


def until_complete(rig: Rig, store: Store, source: GitHubSource, *, limit: int = 60) -> int:
    """Cycles (clock still) until every repository finished and no rerun waits; how many."""
    for n in range(1, limit + 1):
        report = run_cycle(rig.settings, store, source, clock=rig.clock, days=BACKFILL_DAYS)
        if report.complete and not any(r.backlog for r in report.repos):
            return n
    raise AssertionError("the backfill never completed")


def reference(rig: Rig, store: Store) -> tuple[dict[str, list[PullRequest]], int]:
    """A fault-free backfill at the current clock: its records and GraphQL requests; the
    store is emptied afterwards."""
    before = rig.graphql_posts()
    run_cycle(rig.settings, store, rig.source(), clock=rig.clock, days=BACKFILL_DAYS)
    out = records(store, rig.settings), rig.graphql_posts() - before
    store.flush_prefix()
    store.ensure_schema()
    return out


def test_faults_do_not_change_what_is_collected(rig: Rig, store: Store) -> None:
    """With 10% 5xx, secondary rate limits and timeouts, a backfill and later cycles store
    exactly the records a fault-free run stores, and nothing is reported as failed."""
    assert all(r.errors == () for r in backfill_and_cycles(rig, store, rig.source()))
    clean = records(store, rig.settings)
    assert sum(len(v) for v in clean.values()) > 30
    store.flush_prefix()
    store.ensure_schema()
    rig.clock.current = START
    rig.server.faults.rate(0.1, kinds=FAULTS, seed=11)
    rig.server.faults.schedule("timeout", count=1, path="graphql")
    rig.server.faults.schedule("timeout", count=1, path="/actions/runs")
    reports = backfill_and_cycles(rig, store, rig.source(timeout_seconds=1))
    rig.server.faults.clear()
    assert [r.errors for r in reports] == [()] * len(reports)
    assert records(store, rig.settings) == clean
    assert rig.server.stats.count(status=0) + rig.server.stats.count(status=502) > 0
    assert rig.sleeps.calls, "faults were waited out through the injected sleep"


def test_backfill_stopped_by_budget_resumes_without_refetching(rig: Rig, store: Store) -> None:
    """A backfill whose budget share runs out stops cleanly and resumes next cycle where it
    stopped: the PR pages fetched add up to one uninterrupted backfill's."""
    rig.clock.current = END
    expected, pages = reference(rig, store)
    before = rig.graphql_posts()
    source = rig.source(budget_share=0.0015)  # ~7 points of GraphQL, ~7 REST requests a cycle
    first = run_cycle(rig.settings, store, source, clock=rig.clock, days=BACKFILL_DAYS)
    assert not first.complete
    assert any("resumes next cycle" in line for line in first.lines())
    cycles = 1 + until_complete(rig, store, source)
    assert cycles > 2
    assert rig.graphql_posts() - before == pages
    assert records(store, rig.settings) == expected


def test_backfill_killed_mid_way_resumes_without_refetching(rig: Rig, store: Store) -> None:
    """A backfill killed after storing some pages continues from the page after them."""
    rig.clock.current = END
    expected, pages = reference(rig, store)
    before = rig.graphql_posts()
    stored: list[int] = []

    def kill_after_two_pages(repo: str, n: int) -> None:
        stored.append(n)
        if len(stored) == 2:
            raise KeyboardInterrupt

    source = rig.source()
    with pytest.raises(KeyboardInterrupt):
        run_cycle(rig.settings, store, source, clock=rig.clock, days=BACKFILL_DAYS,
                  progress=kill_after_two_pages)
    until_complete(rig, store, source)
    assert rig.graphql_posts() - before == pages
    got = records(store, rig.settings)
    assert got == expected, record_differences(got, expected)


def test_unchanged_cycle_costs_one_free_request_per_repository(rig: Rig, store: Store) -> None:
    """When nothing changed, a cycle sends one conditional request per repository (plus one
    for repositories with CI still running), every one a 304, spending no rate limit."""
    rig.clock.current = END
    source = rig.source()
    until_complete(rig, store, source)
    settle = run_cycle(rig.settings, store, source, clock=rig.clock)  # CI window moves once
    assert sum(r.cost for r in settle.repos) <= len(settle.repos)
    seen = len(rig.server.stats.requests)
    report = run_cycle(rig.settings, store, source, clock=rig.clock)
    new = rig.server.stats.requests[seen:]
    active = [r for r in report.repos if not r.skipped]
    assert {r.status for r in new} == {304}
    assert sum(r.cost for r in new) == 0
    assert len(active) <= len(new) <= 2 * len(active)
    assert sum(1 for r in new if r.path.endswith("/pulls")) == len(active)
    assert all(r.changed == 0 for r in report.repos)


def test_a_few_changed_prs_cost_a_few_requests(rig: Rig, store: Store) -> None:
    """An hour later, the changed PRs are fetched in one page per repository, not one by one."""
    rig.clock.current = END - timedelta(hours=4)  # Monday morning: people are at work
    source = rig.source(page_size=50)
    until_complete(rig, store, source)
    rig.clock.advance(timedelta(hours=3))
    report = run_cycle(rig.settings, store, source, clock=rig.clock)
    active = [r for r in report.repos if not r.skipped]
    changed = sum(r.changed for r in active)
    assert changed > 0
    assert sum(r.requests for r in active) <= 4 * len(active) + sum(r.backlog for r in active) + 2


def test_permission_refusal_names_what_is_missing(rig: Rig, store: Store) -> None:
    """A repository the token may not read is reported with the missing permission, and the
    other repositories still complete."""
    denied, other = rig.settings.repositories[:2]
    rig.server.deny(denied, 403)
    report = run_cycle(rig.settings, store, rig.source(), clock=rig.clock, days=BACKFILL_DAYS)
    line = next(r for r in report.repos if r.repo == denied)
    assert line.error is not None and "pull_requests=read" in line.error
    assert next(r for r in report.repos if r.repo == other).changed > 0
    assert any(denied in e for e in report.errors)


def test_failing_repository_is_skipped_and_others_complete(rig: Rig, store: Store) -> None:
    """A repository that keeps answering 502 is retried with backoff, reported, and skipped."""
    broken, other = rig.settings.repositories[:2]
    rig.server.faults.schedule("502", count=1000, path=f"/repos/{broken}/")
    report = run_cycle(rig.settings, store, rig.source(), clock=rig.clock, days=BACKFILL_DAYS)
    rig.server.faults.clear()
    line = next(r for r in report.repos if r.repo == broken)
    assert line.error is not None and "kept failing" in line.error
    assert rig.sleeps.calls[:4] == [1.0, 2.0, 4.0, 8.0]
    assert next(r for r in report.repos if r.repo == other).changed > 0
    assert store.get_cursor(broken) is None


def test_malformed_answer_fails_one_repository_and_others_complete(rig: Rig, store: Store) -> None:
    """A repository whose answer is not shaped as documented is reported; the others sync."""
    broken, other = rig.settings.repositories[:2]
    rig.server.faults.schedule("malformed", count=1000, path=f"/repos/{broken}/pulls")
    report = run_cycle(rig.settings, store, rig.source(), clock=rig.clock, days=BACKFILL_DAYS)
    rig.server.faults.clear()
    line = next(r for r in report.repos if r.repo == broken)
    assert line.error is not None and "unexpected answer" in line.error
    assert next(r for r in report.repos if r.repo == other).changed > 0
    assert store.get_cursor(broken) is None
    assert report.samples, "every team's queue is still sampled"


def test_archived_repository_is_skipped(rig: Rig, store: Store) -> None:
    """An archived repository a team lists is skipped, and costs nothing in later cycles."""
    source = rig.source()
    first = run_cycle(rig.settings, store, source, clock=rig.clock, days=BACKFILL_DAYS)
    archived = [r.repo for r in first.repos if r.skipped == "archived"]
    assert archived == ["acme/legacy-billing"]
    assert store.get_prs("acme/legacy-billing") == []
    again = run_cycle(rig.settings, store, source, clock=rig.clock)
    assert next(r for r in again.repos if r.repo == archived[0]).requests == 0


def test_primary_rate_limit_stops_the_cycle_cleanly(rig: Rig, store: Store) -> None:
    """A spent primary rate limit ends the cycle without errors; the next cycle resumes."""
    rig.clock.current = END
    expected, _ = reference(rig, store)
    rig.server.faults.schedule("primary", count=1, path="graphql")
    source = rig.source()
    report = run_cycle(rig.settings, store, source, clock=rig.clock, days=BACKFILL_DAYS)
    assert not report.complete and report.errors == ()
    until_complete(rig, store, source)
    got = records(store, rig.settings)
    assert got == expected, record_differences(got, expected)


def test_changed_collect_version_collects_again(rig: Rig, store: Store) -> None:
    """A cursor written by another collect version is reset: the history is fetched again."""
    source = rig.source()
    until_complete(rig, store, source)
    repo = rig.settings.repositories[0]
    cursor = store.get_cursor(repo)
    assert cursor is not None and cursor.collect_version == COLLECT_VERSION
    store.set_cursor(replace(cursor, collect_version=COLLECT_VERSION - 1))
    before = rig.graphql_posts()
    report = run_cycle(rig.settings, store, source, clock=rig.clock)
    assert next(r for r in report.repos if r.repo == repo).changed > 0
    assert rig.graphql_posts() > before


def test_each_cycle_samples_every_teams_queue(rig: Rig, store: Store) -> None:
    """Every cycle appends one queue sample per team, even when nothing changed."""
    source = rig.source()
    run_cycle(rig.settings, store, source, clock=rig.clock, days=BACKFILL_DAYS)
    rig.clock.advance(timedelta(minutes=15))
    report = run_cycle(rig.settings, store, source, clock=rig.clock)
    for team in rig.settings.teams:
        samples = store.queue_samples(team)
        assert [s.at for s in samples] == [rig.clock.now() - timedelta(minutes=15), rig.clock.now()]
    assert [t for t, _ in report.samples] == list(rig.settings.teams)


def test_cli_sample_and_backfill(rig: Rig, org: Org, tmp_path: Path, cli_storage: CliStorage) -> None:
    """`flowbot backfill` collects with a progress bar; `flowbot sample` prints a line per
    repository with PRs changed, requests spent and budget left; both refresh every team's
    snapshot and record their runs, so `flowbot digest --print` works without Slack."""
    from typer.testing import CliRunner

    from bot.cli import app
    from jobs.scheduler import SAMPLE_JOB, SNAPSHOT_JOB

    mapping = org.config(rig.server.base_url)
    mapping["github"]["retention_days"] = 730  # the CLI runs on the real clock; the org is older
    path = tmp_path / "flowbot.toml"
    path.write_text(config_toml(mapping, storage=cli_storage.toml))
    env = {"GITHUB_TOKEN": rig.server.token, **cli_storage.env}
    runner = CliRunner()
    filled = runner.invoke(app, ["backfill", "--config", str(path), "--days", "700"], env=env)
    assert filled.exit_code == 0, filled.output
    line = next(x for x in filled.output.splitlines() if x.startswith("acme/payments-api:"))
    assert int(line.split()[1]) > 0, line
    assert "snapshots refreshed: payments" in filled.output
    sampled = runner.invoke(app, ["sample", "--config", str(path)], env=env)
    assert sampled.exit_code == 0, sampled.output
    line = next(x for x in sampled.output.splitlines() if x.startswith("acme/payments-api:"))
    assert line.startswith("acme/payments-api: 0 PRs changed,") and line.endswith(" left"), line
    assert "acme/legacy-billing: skipped (archived)" in sampled.output
    assert "team payments: queue" in sampled.output
    printed = runner.invoke(app, ["digest", "--team", "payments", "--print", "--config", str(path)],
                            env=env)
    assert printed.exit_code == 0, printed.output
    assert "no data yet" not in printed.output and "payments" in printed.output
    store = Store.connect(cli_storage.redis_url, data_path=cli_storage.path, prefix=cli_storage.prefix)
    try:
        for job in (SAMPLE_JOB, SNAPSHOT_JOB):
            runs = store.job_runs(job)
            assert [r.outcome for r in runs] == ["ok", "ok"], runs
        assert store.job_runs(SNAPSHOT_JOB)[0].detail == "1 team snapshots"
    finally:
        store.close()


def test_github_app_installation_auth(rig: Rig, org: Org, store: Store) -> None:
    """As a GitHub App, the sampler exchanges its JWT for an installation token and samples."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    env = {"GITHUB_APP_ID": "123", "GITHUB_APP_PRIVATE_KEY": pem,
           "GITHUB_APP_INSTALLATION_ID": "4242"}
    settings = from_mapping(org.config(rig.server.base_url), env=env)
    source = connect(settings, sleep=rig.sleeps, clock=rig.clock)
    report = run_cycle(settings, store, source, clock=rig.clock, days=BACKFILL_DAYS)
    assert report.errors == () and sum(r.changed for r in report.repos) > 0
    assert rig.server.stats.count(path="/access_tokens", method="POST") == 1


def test_github_app_with_a_wrong_installation_or_key_is_named(rig: Rig, org: Org, store: Store) -> None:
    """A wrong installation ID fails each repository with what to check, not a traceback;
    a private key that is not a key is refused when connecting."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from jobs.errors import GitHubError

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    env = {"GITHUB_APP_ID": "123", "GITHUB_APP_PRIVATE_KEY": pem,
           "GITHUB_APP_INSTALLATION_ID": "999"}
    settings = from_mapping(org.config(rig.server.base_url), env=env)
    report = run_cycle(settings, store, connect(settings, sleep=rig.sleeps, clock=rig.clock),
                       clock=rig.clock)
    assert report.repos and all("GITHUB_APP_INSTALLATION_ID" in (r.error or "") for r in report.repos)
    broken = {**env, "GITHUB_APP_PRIVATE_KEY": "-----BEGIN RSA PRIVATE KEY-----\nno\n-----END RSA PRIVATE KEY-----"}
    with pytest.raises(GitHubError, match="private key unusable"):
        connect(from_mapping(org.config(rig.server.base_url), env=broken))


def test_retention_prunes_old_closed_prs(rig: Rig, store: Store) -> None:
    """Closed PRs older than the retention window are dropped; open ones stay."""
    rig.clock.current = END
    short = rig.settings.model_copy(update={
        "github": rig.settings.github.model_copy(update={"retention_days": 7})})
    source = rig.source()
    run_cycle(short, store, source, clock=rig.clock, days=BACKFILL_DAYS)
    kept = [pr for repo in short.repositories for pr in store.get_prs(repo)]
    cutoff = END - timedelta(days=7)
    assert kept and all(pr.closed_at is None or pr.closed_at >= cutoff for pr in kept)
    assert any(pr.state == "open" and pr.created_at < cutoff for pr in kept)


def test_missing_credentials_are_named(org: Org) -> None:
    """Without a token or App credentials, connecting says which variables to set."""
    from jobs.errors import GitHubError

    settings = from_mapping(org.config("http://127.0.0.1:9"), env={})
    with pytest.raises(GitHubError, match="GITHUB_TOKEN"):
        connect(settings)


def test_enterprise_server_base_url(rig: Rig, org: Org, store: Store) -> None:
    """An Enterprise Server base URL (``https://HOST/api/v3``) reaches REST and GraphQL."""
    mapping = org.config(rig.server.base_url + "/api/v3")
    settings = from_mapping(mapping, env={"GITHUB_TOKEN": rig.server.token})
    report = run_cycle(settings, store, connect(settings, sleep=rig.sleeps, clock=rig.clock),
                       clock=rig.clock, days=BACKFILL_DAYS)
    assert report.errors == () and sum(r.changed for r in report.repos) > 0
    assert rig.server.stats.count(path="/api/graphql", method="POST") > 0


# ------------------------------------------------------------------------------ long histories


@pytest.fixture(scope="module")
def long_org() -> Org:
    return build_org(end=END, weeks=4, teams=1, repos_per_team=1, long_prs=3)


@pytest.fixture
def long_rig(long_org: Org) -> Iterator[Rig]:
    clock = FixedClock(END)
    with SandboxServer(long_org, clock=clock) as server:
        settings = from_mapping(long_org.config(server.base_url),
                                env={"GITHUB_TOKEN": server.token})
        yield Rig(server, clock, settings, Sleeps())


def unlimited(org: Org, repo: str, number: int, now: datetime) -> PullRequest:
    """A PR as a fetch with no page limits sees it: every review, timeline item and commit
    straight from the sandbox's payload builders, through the REST parser."""
    from jobs.github import parse
    from jobs.sandbox import rest
    from jobs.sandbox.view import view_pr

    name = repo.split("/")[1]
    view = view_pr(org.pull(name, number), now)  # type: ignore[arg-type]
    assert view is not None
    slugs = {t.slug: t for t in org.teams}
    api = "http://sandbox"
    return parse.pull_from_rest(
        repo, rest.pull(api, org.name, org.owner_id, org.repos[name], view, full=True, slugs=slugs),
        reviews=[rest.review(api, org.name, name, view.pr, r) for r in view.reviews],
        timeline=rest.timeline(api, org.name, name, view, slugs),
        commits=[rest.commit(api, org.name, name, c) for c in view.commits],
    )


def long_prs(org: Org, repo: str) -> list[int]:
    name = repo.split("/")[1]
    return [p.number for p in org.prs[name]
            if max(len(p.reviews), len(p.commits), len(p.events) + len(p.reviews)) > 100]


def clocks_and_turn(pr: PullRequest, settings: Settings, now: datetime) -> tuple[Any, Any]:
    """What a team sees of a PR: its clocks (``/flow why``) and its whose-turn bucket."""
    from jobs.identity import Identity
    from jobs.queue import queue_now
    from jobs.timeline import pr_clocks
    from jobs.worktime import WorkCalendar

    team = next(iter(settings.teams.values()))
    identity, calendar = Identity(settings.identity), WorkCalendar.for_team(team)
    clocks = pr_clocks(pr, identity=identity, calendar=calendar, now=now)
    _, items = queue_now([pr], identity=identity, calendar=calendar, now=now)
    return clocks, [(i.turn, i.waiting_on) for i in items]


def test_long_histories_give_the_clocks_of_a_fetch_without_limits(
        long_rig: Rig, long_org: Org, store: Store) -> None:
    """PRs with 300+ review comments, 290 commits or a 120-item request loop are paged to the
    end: their records, clocks and whose-turn equal a fetch with no limits; cut at the first
    100 (the old way) they would not."""
    repo = long_rig.settings.repositories[0]
    numbers = long_prs(long_org, repo)
    assert len(numbers) == 3
    first = next(fetch.pull_pages(long_rig.source(), repo, after=None, first=100))
    cut = {n["number"]: parse.pull_from_graphql(repo, n) for n in first.nodes
           if n["number"] in numbers}  # the first 100 of everything, as before paging
    assert sorted(cut) == numbers and all(pr.incomplete for pr in cut.values())
    report = run_cycle(long_rig.settings, store, long_rig.source(page_size=50),
                       clock=long_rig.clock, days=BACKFILL_DAYS)
    assert report.errors == () and sum(r.incomplete for r in report.repos) == 0
    now = long_rig.clock.now()
    for n in numbers:
        got = store.get_pr(repo, n)
        assert got is not None and got.incomplete == ()
        expected = unlimited(long_org, repo, n, now)
        assert replace(got, checks=()) == expected
        expected = replace(expected, checks=got.checks)
        seen = clocks_and_turn(expected, long_rig.settings, now)
        assert clocks_and_turn(got, long_rig.settings, now) == seen
        assert clocks_and_turn(replace(cut[n], checks=got.checks), long_rig.settings,
                               now) != seen, f"#{n} does not need paging"
    assert not store.get_json("incomplete", repo)


def test_incremental_cycles_page_long_histories_too(long_rig: Rig, long_org: Org,
                                                    store: Store) -> None:
    """Synced as they grow (a backfill two weeks back, then a cycle every few days), the long PRs end
    with the same records as a fetch with no limits."""
    repo = long_rig.settings.repositories[0]
    long_rig.clock.current = END - timedelta(days=14)
    source = long_rig.source(page_size=50)
    run_cycle(long_rig.settings, store, source, clock=long_rig.clock, days=BACKFILL_DAYS)
    while long_rig.clock.now() < END:
        long_rig.clock.advance(timedelta(days=3, hours=12))
        assert run_cycle(long_rig.settings, store, source, clock=long_rig.clock).errors == ()
    for n in long_prs(long_org, repo):
        got = store.get_pr(repo, n)
        assert got is not None
        assert replace(got, checks=()) == unlimited(long_org, repo, n, END)


def test_history_beyond_the_page_cap_is_marked_and_rest_commits_stop_at_250(
        long_rig: Rig, long_org: Org, store: Store) -> None:
    """A PR still longer than the pages allowed is stored marked incomplete (and listed for
    doctor); GitHub's REST commit listing stops at 250, so a REST-only crawl marks it too."""
    repo = long_rig.settings.repositories[0]
    run_cycle(long_rig.settings, store, long_rig.source(page_size=50, more_pages=1),
              clock=long_rig.clock, days=BACKFILL_DAYS)
    marked = {pr.number: pr.incomplete for pr in store.get_prs(repo) if pr.incomplete}
    assert sorted(marked) == sorted(store.get_json("incomplete", repo))
    assert ("reviews",) in marked.values() and ("commits",) in marked.values()
    line = next(r for r in run_cycle(long_rig.settings, store, long_rig.source(more_pages=1),
                                     clock=long_rig.clock, days=BACKFILL_DAYS).repos)
    assert "incomplete history" not in line.line()  # nothing changed, nothing refetched
    name = repo.split("/")[1]
    big = next(p for p in long_org.prs[name] if len(p.commits) > 250)
    status, _, body = _get(long_rig.server, f"/repos/{repo}/pulls/{big.number}/commits?per_page=100&page=3")
    assert status == 200 and len(body) == 50
    assert unlimited(long_org, repo, big.number, END).incomplete == ()


def _get(server: SandboxServer, path: str) -> tuple[int, dict[str, str], Any]:
    import urllib.request

    req = urllib.request.Request(server.base_url + path,
                                 headers={"Authorization": f"token {server.token}"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return resp.status, dict(resp.headers), json.loads(resp.read())


# ------------------------------------------------------------------------------ bad answers

BAD_200 = ("malformed", "missing", "truncated", "html")


def kept(store: Store, repo: str) -> tuple[Any, ...]:
    """Everything stored about one repository: records, cursor, rerun backlog, CI listing
    window, archived flag, the incomplete-history list."""
    return (store.get_prs(repo), store.get_cursor(repo), store.get_json("reruns", repo),
            store.get_json("runs_etag", repo), store.get_json("archived", repo),
            store.get_json("incomplete", repo))


def test_a_bad_200_fails_its_repository_and_changes_nothing_stored(
        rig: Rig, store: Store) -> None:
    """A 200 that is the wrong shape, lacks what was asked, is truncated JSON or an HTML
    page is retried, then fails that repository for this cycle only: nothing stored about it
    changes, the other repository and every team's queue sample still happen, and the next
    clean cycles store what a fault-free run stores."""
    broken, other = rig.settings.repositories[:2]

    def sequence(faulty: bool) -> tuple[dict[str, list[PullRequest]], list[CycleReport]]:
        rig.clock.current = START
        source = rig.source()
        until_complete(rig, store, source)
        reports = []
        for kind in BAD_200:
            before = kept(store, broken)
            rig.clock.advance(timedelta(hours=8))
            if faulty:
                rig.server.faults.schedule(kind, count=1000, path=f"/repos/{broken}/")
            reports.append(run_cycle(rig.settings, store, source, clock=rig.clock))
            rig.server.faults.clear()
            if faulty:
                assert kept(store, broken) == before, kind
        while not (last := run_cycle(rig.settings, store, source, clock=rig.clock)).complete \
                or any(r.backlog for r in last.repos):
            pass
        out = records(store, rig.settings)
        store.flush_prefix()
        store.ensure_schema()
        return out, reports

    expected, _ = sequence(False)
    got, reports = sequence(True)
    for kind, report in zip(BAD_200, reports, strict=True):
        line = next(r for r in report.repos if r.repo == broken)
        assert line.error is not None and "after 5 tries" in line.error, (kind, line)
        assert line.requests == 5 and f"(5 requests ({line.cost} points))" in line.line()
        assert next(r for r in report.repos if r.repo == other).error is None
        assert report.samples and report.partial
    assert got == expected, record_differences(got, expected)


def test_bad_graphql_answers_change_nothing_stored(rig: Rig, store: Store) -> None:
    """A GraphQL answer that is a list, lacks the data asked, is cut short or is an HTML page,
    on every try, fails the repository it was for and no other; its records and cursor stay."""
    source = rig.source()
    until_complete(rig, store, source)
    first = rig.settings.repositories[0]
    before = kept(store, first)
    rig.clock.advance(timedelta(hours=30))
    for kind in BAD_200 + ("malformed",):  # five tries: one request fails for good
        rig.server.faults.schedule(kind, count=1, path="graphql")
    report = run_cycle(rig.settings, store, source, clock=rig.clock)
    rig.server.faults.clear()
    failed = [r.repo for r in report.repos if r.error]
    assert failed == [first], report.lines()
    assert kept(store, first) == before
    assert all(r.changed > 0 for r in report.repos if not r.error and not r.skipped)


def test_rerun_backlog_survives_bad_job_listings(rig: Rig, store: Store) -> None:
    """Rerun job listings answered with bad 200s keep their backlog entries (the first
    attempts' queue starts are not lost): once GitHub answers again, the records equal a
    fault-free run's."""
    rig.clock.current = END
    expected, _ = reference(rig, store)
    source = rig.source()
    rig.server.faults.schedule("html", count=10_000, path="/jobs")
    report = run_cycle(rig.settings, store, source, clock=rig.clock, days=BACKFILL_DAYS)
    assert any(r.error and "/jobs" in r.error for r in report.repos)
    waiting = sum(len(store.get_json("reruns", r) or {}) for r in rig.settings.repositories)
    assert waiting > 0
    rig.server.faults.clear()
    until_complete(rig, store, source)
    got = records(store, rig.settings)
    assert got == expected, record_differences(got, expected)


def test_bad_org_listing_keeps_the_known_repositories_and_archived_flags(
        rig: Rig, store: Store) -> None:
    """With every repository of the organisation sampled, a bad answer to the repository
    listing keeps the cached listing and every archived flag."""
    settings = rig.settings.model_copy(update={
        "github": rig.settings.github.model_copy(update={"all_repositories": True})})
    source = rig.source()
    run_cycle(settings, store, source, clock=rig.clock, days=BACKFILL_DAYS)
    listing = store.get_json("org_repos", "acme")
    assert store.get_json("archived", "acme/legacy-billing") is True
    for kind in BAD_200:
        store.set_json("org_repos", "acme", value={**listing, "etag": None})  # no 304 now
        rig.server.faults.schedule(kind, count=1000, path="/orgs/acme/repos")
        report = run_cycle(settings, store, source, clock=rig.clock)
        rig.server.faults.clear()
        assert any(e.startswith("acme:") for e in report.errors), kind
        assert store.get_json("org_repos", "acme")["repos"] == listing["repos"]
        assert store.get_json("archived", "acme/legacy-billing") is True


def test_mixed_faults_and_bad_200s_store_what_a_fault_free_run_stores(
        rig: Rig, store: Store) -> None:
    """15% of requests failing (wrong shape, truncated JSON, HTML 200s, 5xx, dropped
    connections, secondary limits): the records end equal to a fault-free run's, and the
    cycle reports count requests and points exactly as the server charged them."""
    rig.clock.current = END
    expected, _ = reference(rig, store)
    rig.server.stats.reset()
    rig.server.faults.rate(0.15, kinds=FAULTS + BAD_200, seed=5)
    source = rig.source()
    reports = [run_cycle(rig.settings, store, source, clock=rig.clock, days=BACKFILL_DAYS)]
    while not (reports[-1].complete and not any(r.backlog for r in reports[-1].repos)):
        reports.append(run_cycle(rig.settings, store, source, clock=rig.clock,
                                 days=BACKFILL_DAYS))
        assert len(reports) < 10
    rig.server.faults.clear()
    got = records(store, rig.settings)
    assert got == expected, record_differences(got, expected)
    stats = rig.server.stats
    assert sum(1 for r in stats.requests if r.fault in BAD_200) > 0
    assert sum(c.requests for c in reports) == stats.total
    assert sum(c.cost for c in reports) == stats.primary_cost + stats.graphql_cost


def test_retry_after_beyond_the_cap_defers_instead_of_waiting(rig: Rig, store: Store) -> None:
    """A secondary limit asking for 900 s is not slept through: the repository (and the
    ones after it, without a request) are deferred to the next cycle, which completes."""
    rig.clock.current = END
    source = rig.source()
    first = rig.settings.repositories[0]
    rig.server.faults.schedule("secondary_403", count=1, path=f"/repos/{first}/pulls",
                               retry_after=900)
    report = run_cycle(rig.settings, store, source, clock=rig.clock, days=BACKFILL_DAYS)
    assert max(rig.sleeps.calls, default=0) <= 60
    deferred = [r for r in report.repos if r.deferred]
    assert deferred and deferred[0].repo == first and "900 s" in deferred[0].line()
    assert all(r.requests == 0 for r in deferred[1:])
    assert not report.complete and report.samples
    assert any("deferred to the next cycle" in e for e in report.errors)
    rig.clock.advance(timedelta(minutes=15))
    until_complete(rig, store, source)
    got = records(store, rig.settings)
    store.flush_prefix()
    store.ensure_schema()
    expected, _ = reference(rig, store)
    assert got == expected, record_differences(got, expected)


def test_retry_after_within_the_cap_is_waited_out(rig: Rig, store: Store) -> None:
    """A Retry-After of 45 s (under the 60 s default) is waited, and the cycle completes."""
    rig.server.faults.schedule("secondary_429", count=1, path="/pulls", retry_after=45)
    report = run_cycle(rig.settings, store, rig.source(), clock=rig.clock, days=BACKFILL_DAYS)
    assert 45.0 in rig.sleeps.calls and report.errors == ()


def test_alerts_wait_on_a_snapshot_from_a_partial_cycle(rig: Rig, store: Store) -> None:
    """After a cycle where a repository failed, the team's snapshot names the failure and
    alert evaluation skips it, saying why, instead of alerting on partial data."""
    from jobs.alerts import AlertEngine
    from jobs.snapshot import refresh_all

    broken = rig.settings.repositories[0]
    rig.server.faults.schedule("html", count=1000, path=f"/repos/{broken}/")
    report = run_cycle(rig.settings, store, rig.source(), clock=rig.clock, days=BACKFILL_DAYS)
    snaps = refresh_all(rig.settings, store, now=rig.clock.now(), errors=report.errors)
    team = next(iter(snaps))
    assert any(broken in e for e in snaps[team].errors)
    engine = AlertEngine(rig.settings, store, deliver=None)  # type: ignore[arg-type]  # never reached
    result = engine.evaluate(team, now=rig.clock.now())
    assert result.skipped.startswith("partial data") and broken in result.skipped


def test_why_and_doctor_say_when_a_history_is_incomplete(long_rig: Rig, store: Store) -> None:
    """A PR stored with an incomplete history says so in `/flow why`, and doctor lists it
    for its repository with the command that explains it."""
    from bot.blocks.why import render_why
    from bot.doctor import DoctorDeps, diagnose
    from jobs.github.probe import probe
    from jobs.identity import Identity
    from jobs.timeline import pr_clocks
    from jobs.worktime import WorkCalendar

    repo = long_rig.settings.repositories[0]
    run_cycle(long_rig.settings, store, long_rig.source(page_size=50, more_pages=1),
              clock=long_rig.clock, days=BACKFILL_DAYS)
    pr = next(p for p in store.get_prs(repo) if p.incomplete == ("reviews",))
    team = next(iter(long_rig.settings.teams.values()))
    calendar = WorkCalendar.for_team(team)
    clocks = pr_clocks(pr, identity=Identity(long_rig.settings.identity), calendar=calendar,
                       now=long_rig.clock.now())
    blocks, _ = render_why(pr, clocks, now=long_rig.clock.now(), tz=team.zone)
    assert "History incomplete: GitHub gave only part of this PR's reviews" in json.dumps(blocks)
    deps = DoctorDeps(load_settings=lambda: long_rig.settings, connect_store=lambda _s: store,
                      probe_github=lambda s: probe(s, long_rig.source()),
                      slack_client=lambda _s: None, now=long_rig.clock.now)
    found = [f for f in diagnose(deps) if "incomplete history" in f.summary]
    assert len(found) == 1 and found[0].status == "warn" and f"#{pr.number}" in found[0].summary
    assert f"/flow why {repo}#" in found[0].fix
