"""What sampling costs in requests and rate limit, against the sandbox GitHub, beside a
straightforward PyGithub crawl (list PRs, then per PR its details, reviews, timeline, commits
and CI runs), and a check that both produce the same records.

Scenarios:
  (a) a backfill of ~1,000 PRs with their reviews, timeline and CI (three of them longer than
      a page: 312 review comments, 290 commits, a 121-item request loop), counted per 1,000
      PRs with and without the rerun job listings on both sides, and what paging the long
      histories costs (the same backfill cut at the first 100 of everything, beside it);
  (b) the next cycle with nothing changed (the first one after a backfill, then a steady one);
  (c) a cycle in which ~10 PRs changed;
  (d) an organisation of 500 repositories (``all_repositories``) where a few changed; and what
      sampling it every 15 minutes uses of a 5,000/hour token.

Run: ``.venv/bin/python bench/api_cost.py`` (about a minute). Prints a table; exits non-zero
when the two crawls disagree on any record.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from github import Auth, Github  # noqa: E402

from bot.config import from_mapping  # noqa: E402
from jobs.cycle import run_cycle  # noqa: E402
from jobs.github import parse  # noqa: E402
from jobs.github.client import connect  # noqa: E402
from jobs.model import CheckRun, PullRequest  # noqa: E402
from jobs.ports import FixedClock  # noqa: E402
from jobs.sandbox.org import Org, build_org  # noqa: E402
from jobs.sandbox.server import SandboxServer  # noqa: E402
from jobs.settings import Settings  # noqa: E402
from jobs.store import Store  # noqa: E402

END = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)  # a Monday, midday
BACKFILL_DAYS = 60


@dataclass
class Cost:
    """Requests seen by the server between two moments, and what they cost."""

    requests: int = 0
    not_modified: int = 0
    core: int = 0
    graphql: int = 0
    jobs: int = 0  # rerun job listings (``/actions/runs/{id}/jobs``)

    @property
    def points(self) -> int:
        return self.core + self.graphql

    def row(self, label: str, extra: str = "") -> str:
        return (f"  {label:<44} {self.requests:>6} req {self.not_modified:>5} x 304"
                f" {self.core:>6} core {self.graphql:>5} gql  {extra}")


@contextmanager
def measure(server: SandboxServer) -> Iterator[Cost]:
    cost = Cost()
    start = len(server.stats.requests)
    yield cost
    new = server.stats.requests[start:]
    cost.requests = len(new)
    cost.not_modified = sum(1 for r in new if r.status == 304)
    cost.core = sum(r.cost for r in new if r.resource == "core")
    cost.graphql = sum(r.cost for r in new if r.resource == "graphql")
    cost.jobs = sum(1 for r in new if r.path.endswith("/jobs"))


# ------------------------------------------------------------------------ straightforward crawl


class NaiveCrawler:
    """What most tools do with PyGithub: list PRs, then per PR fetch everything about it.

    Incremental in the simplest way: PRs updated since the last crawl, plus every open PR
    (their CI moves without the PR changing). Same parser, so records compare equal.
    """

    def __init__(self, base_url: str, token: str) -> None:
        self.gh = Github(auth=Auth.Token(token), base_url=base_url, retry=None, per_page=100,
                         seconds_between_requests=None, seconds_between_writes=None)
        self.records: dict[str, dict[int, PullRequest]] = {}
        self.last: datetime | None = None

    def crawl(self, repos: list[str], *, now: datetime, since: datetime) -> None:
        horizon = self.last or since
        for name in repos:
            repo = self.gh.get_repo(name)
            if repo.archived:
                continue
            known = self.records.setdefault(name, {})
            wanted = []
            for pr in repo.get_pulls(state="all", sort="updated", direction="desc"):
                if pr.updated_at < horizon:
                    break
                wanted.append(pr)
            numbers = {p.number for p in wanted}
            wanted += [repo.get_pull(n) for n, r in known.items()
                       if r.state == "open" and n not in numbers]
            for pr in wanted:
                known[pr.number] = self._one(repo, pr)
        self.last = now

    def _one(self, repo: Any, pr: Any) -> PullRequest:
        # ``_rawData``: the payload as listed, without PyGithub completing each item by a GET.
        pull = pr.raw_data  # completes the listed PR with one GET (sizes are not in lists)
        record = parse.pull_from_rest(
            repo.full_name, pull,
            reviews=[r._rawData for r in pr.get_reviews()],
            timeline=[e._rawData for e in pr.as_issue().get_timeline()],
            commits=[c._rawData for c in pr.get_commits()],
        )
        checks: list[CheckRun] = []
        for run in repo.get_workflow_runs(branch=pull["head"]["ref"]):
            raw = run._rawData
            jobs = [j._rawData for j in run.jobs("all")] if raw.get("run_attempt", 1) > 1 else []
            checks += parse.run_attempts(raw, jobs)
        checks.sort(key=lambda c: (c.created_at, c.run_id, c.attempt))
        return replace(record, checks=tuple(checks))


# ------------------------------------------------------------------------ scenarios


def settings_for(org: Org, server: SandboxServer, **github: Any) -> Settings:
    mapping = org.config(server.base_url)
    mapping["github"].update(github)
    return from_mapping(mapping, env={"GITHUB_TOKEN": server.token})


def stored(store: Store, repos: list[str]) -> dict[str, dict[int, PullRequest]]:
    return {r: {p.number: p for p in store.get_prs(r)} for r in repos}


def compare(ours: dict[str, dict[int, PullRequest]], theirs: dict[str, dict[int, PullRequest]]) -> str:
    """``same N records``, or which differ. A PR the REST crawl could not read in full (its
    record is marked incomplete: REST lists 250 commits at most) is named apart: the
    difference is REST's limit, not a disagreement."""
    bad, limited = [], []
    for r, records in ours.items():
        for n in set(records) | set(theirs.get(r, {})):
            mine, other = records.get(n), theirs.get(r, {}).get(n)
            if mine == other:
                continue
            if other is not None and other.incomplete and mine is not None and not mine.incomplete:
                limited.append(f"{r}#{n} ({', '.join(other.incomplete)})")
            else:
                bad.append(f"{r}#{n}")
    total = sum(len(v) for v in ours.values())
    if bad:
        return f"DIFFER on {len(bad)}: {bad[:5]}"
    tail = (f"; REST-only crawl left incomplete, flowbot complete: {', '.join(limited)}"
            if limited else "")
    return f"same {total} records{tail}"


def until_quiet(settings: Settings, store: Store, source: Any, clock: FixedClock,
                days: int | None = None) -> int:
    """Cycles until complete with no rerun backlog (a backfill may need several)."""
    for n in range(1, 50):
        report = run_cycle(settings, store, source, clock=clock, days=days)
        if report.complete and not any(r.backlog for r in report.repos):
            return n
    raise RuntimeError("never completed")


def per_1000(value: int, prs: int) -> str:
    return f"{1000 * value / prs:>7.0f}"


def scenarios_abc(store: Store, cut_store: Store) -> bool:
    org = build_org(end=END, weeks=8, teams=3, repos_per_team=3, scale=2.2, long_prs=3)
    total = sum(len(v) for v in org.prs.values())
    runs = [r for v in org.prs.values() for p in v for r in p.runs]
    reruns = sum(1 for r in runs if len(r.attempts) > 1)
    clock = FixedClock(END - timedelta(hours=6))
    ok = True
    with SandboxServer(org, clock=clock, rate_limit=10**7) as server:
        settings = settings_for(org, server, budget_share=1.0)
        source = connect(settings, clock=clock, sleep=lambda s: None)
        repos = list(settings.repositories)
        print(f"org: {len(repos)} repositories, {total} PRs, {len(runs)} workflow runs,"
              f" {reruns} rerun ({reruns / max(len(runs), 1):.0%})")
        print("(a) backfill")
        with measure(server) as ours:
            cycles = until_quiet(settings, store, source, clock, days=BACKFILL_DAYS)
        mine = stored(store, repos)
        n = sum(len(v) for v in mine.values())
        gql = server.stats.count(path="graphql")
        listing = ours.requests - gql - ours.jobs
        print(ours.row("flowbot", f"{n} PRs in {cycles} cycle(s)"))
        print(f"  {'':<44} = {gql} GraphQL pages, {listing} REST polls/run listings,"
              f" {ours.jobs} rerun job listings")
        cut_source = connect(settings, clock=clock, sleep=lambda s: None, more_pages=0)
        with measure(server) as cut:
            until_quiet(settings, cut_store, cut_source, clock, days=BACKFILL_DAYS)
        cut_records = stored(cut_store, repos)
        marked = sum(1 for v in cut_records.values() for p in v.values() if p.incomplete)
        print(cut.row("flowbot, histories cut at 100 (before paging)",
                      f"{marked} PRs' histories cut short"))
        naive = NaiveCrawler(server.base_url, server.token)
        with measure(server) as theirs:
            naive.crawl(repos, now=clock.now(), since=clock.now() - timedelta(days=BACKFILL_DAYS))
        print(theirs.row("straightforward PyGithub crawl"))
        print(f"  requests per 1,000 PRs ({n} PRs)            with job listings   without   job listings")
        for label, c in (("flowbot", ours), ("straightforward PyGithub crawl", theirs)):
            print(f"    {label:<40} {per_1000(c.requests, n)}        {per_1000(c.requests - c.jobs, n)}"
                  f"   {per_1000(c.jobs, n)}")
        extra = ours.requests - cut.requests
        print(f"  paging long histories: {extra:+d} requests, {ours.points - cut.points:+d} points"
              f" (= {1000 * extra / n:+.1f} requests per 1,000 PRs; only the {marked} PRs"
              f" longer than a page pay)")
        verdict = compare(mine, naive.records)
        ok &= verdict.startswith("same")
        print(f"  records: {verdict}")

        print("(b) next cycle, nothing changed")
        with measure(server) as first:
            run_cycle(settings, store, source, clock=clock)
        print(first.row("flowbot, first cycle after the backfill", "(CI window moves once)"))
        with measure(server) as steady:
            run_cycle(settings, store, source, clock=clock)
        print(steady.row("flowbot, steady", f"{len(repos)} repositories"))
        with measure(server) as theirs:
            naive.crawl(repos, now=clock.now(), since=clock.now())
        print(theirs.row("straightforward (changed + open PRs)"))

        print("(c) a cycle where about 10 PRs changed")
        changed = 0
        while changed < 10:
            clock.advance(timedelta(minutes=30))
            before = {r: {p.number: p.updated_at for p in store.get_prs(r)} for r in repos}
            with measure(server) as ours:
                report = run_cycle(settings, store, source, clock=clock)
            changed = sum(
                1 for r in repos for p in store.get_prs(r)
                if before[r].get(p.number) != p.updated_at
            )
            label = f"flowbot, {clock.now():%a %H:%M}: {changed} PRs changed"
            print(ours.row(label, f"{sum(r.changed for r in report.repos)} records written"))
        with measure(server) as theirs:
            naive.crawl(repos, now=clock.now(), since=clock.now())
        print(theirs.row("straightforward (changed + open PRs)"))
        verdict = compare(stored(store, repos), naive.records)
        ok &= verdict.startswith("same")
        print(f"  records: {verdict}")
    return ok


def scenario_a_one_repo(store: Store) -> None:
    """(a) again, with the ~1,000 PRs in a single repository (no per-repository rounding)."""
    org = build_org(end=END, weeks=8, teams=1, repos_per_team=1, scale=22.0)
    clock = FixedClock(END - timedelta(hours=6))
    with SandboxServer(org, clock=clock, rate_limit=10**7) as server:
        settings = settings_for(org, server, budget_share=1.0)
        source = connect(settings, clock=clock, sleep=lambda s: None)
        repos = [r for r in settings.repositories if not r.endswith("legacy-billing")]
        with measure(server) as ours:
            until_quiet(settings, store, source, clock, days=BACKFILL_DAYS)
        n = sum(len(store.get_prs(r)) for r in repos)
        gql = server.stats.count(path="graphql")
        jobs = ours.jobs
        print(ours.row("flowbot, one repository", f"{n} PRs; per 1,000 PRs:"
                       f" {1000 * ours.requests / n:.0f} with job listings,"
                       f" {1000 * (ours.requests - jobs) / n:.0f} without"))
        print(f"  {'':<44} = {gql} GraphQL pages, {ours.requests - gql - jobs} REST polls/run"
              f" listings, {jobs} rerun job listings")


def scenario_d(store: Store) -> None:
    org = build_org(end=END, weeks=2, teams=3, repos_per_team=3, extra_repos=490)
    clock = FixedClock(END - timedelta(hours=3))
    with SandboxServer(org, clock=clock, rate_limit=10**7) as server:
        settings = settings_for(org, server, all_repositories=True, budget_share=1.0)
        source = connect(settings, clock=clock, sleep=lambda s: None)
        print(f"(d) organisation of {len(org.repos)} repositories (all_repositories = true)")
        started = time.perf_counter()
        with measure(server) as fill:
            until_quiet(settings, store, source, clock, days=14)
        print(fill.row("flowbot, backfill of 14 days"))
        run_cycle(settings, store, source, clock=clock)  # the CI window settles
        with measure(server) as quiet:
            run_cycle(settings, store, source, clock=clock)
        print(quiet.row("flowbot, nothing changed"))
        worst = Cost()
        for _ in range(4):
            clock.advance(timedelta(minutes=15))
            with measure(server) as cycle:
                report = run_cycle(settings, store, source, clock=clock)
            moved = sum(1 for r in report.repos if r.changed)
            print(cycle.row(f"flowbot, {clock.now():%H:%M}: {moved} repositories changed"))
            worst = max(worst, cycle, key=lambda c: c.points)
        hourly = 4 * worst.points
        print(f"  every 15 min, worst cycle above x4: {hourly} points/hour ="
              f" {hourly / 5000:.1%} of a 5,000/hour token (target < 25%);"
              f" {4 * worst.requests} requests/hour, most of them free 304s"
              f" ({time.perf_counter() - started:.0f} s)")


def main() -> int:
    store = Store.connect(None, data_path=Path("/tmp/flowbot-bench/api_cost.rdb"), prefix="bench")
    cut_store = Store.connect(None, data_path=Path("/tmp/flowbot-bench/api_cost.rdb"),
                              prefix="bench-cut")
    for s in (store, cut_store):
        s.flush_prefix()
        s.ensure_schema()
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    try:
        ok = scenarios_abc(store, cut_store)
        cut_store.flush_prefix()
        store.flush_prefix()
        store.ensure_schema()
        scenario_a_one_repo(store)
        store.flush_prefix()
        store.ensure_schema()
        scenario_d(store)
    finally:
        store.flush_prefix()
        store.close()
        cut_store.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
