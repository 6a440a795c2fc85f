"""Benchmark: every team's metric tables and aggregates for a 100,000-PR organisation.

Generates (numpy-assisted, deterministic) 100,000 PRs with 500,000 reviews, 500,000 review
requests and 1,000,000 CI attempts across 50 teams of 2,000 PRs, then computes for every team
everything a snapshot needs from ``jobs.metrics``: the PR, request, review and CI tables, the
latency percentiles (team, repo, size, AI split, per-request), reviewer loads, load
concentration, workflow statistics, CI wait, flow days and size mix.

Prints the wall time and peak memory of the whole organisation, one team's time, and the
ratio against a straightforward per-PR Python loop (``jobs.timeline.pr_clocks`` per PR and
plain-Python percentiles), after checking both agree exactly.

Targets (issue 4): whole organisation under 3 s and 1.5 GB on 2 cores; one team's 2,000 PRs
under 100 ms.

    .venv/bin/python bench/metrics_scale.py [--teams 50] [--prs-per-team 2000] [--loop-teams 2]
"""

from __future__ import annotations

import argparse
import gc
import math
import multiprocessing
import os
import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from jobs import metrics
from jobs.identity import Identity
from jobs.model import CheckRun, PullRequest, Review, TimelineEvent
from jobs.settings import IdentitySettings, WorkHours
from jobs.worktime import WorkCalendar

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
ZONES = ("Europe/Berlin", "America/New_York", "Asia/Tokyo", "UTC", "Europe/London")
COUNTRIES = ("DE", "US", "JP", None, "GB")
WORKFLOWS = ("build", "test", "lint", "e2e", "deploy-preview")


@dataclass(frozen=True)
class TeamData:
    name: str
    hours: WorkHours
    members: tuple[str, ...]
    team_members: dict[str, tuple[str, ...]]
    prs: list[PullRequest]


def generate(teams: int, per_team: int, seed: int = 7) -> list[TeamData]:
    """A deterministic organisation: per PR ~5 reviews, ~5 review requests, ~10 CI attempts."""
    rng = np.random.default_rng(seed)
    base = NOW.timestamp() - 120 * 86_400
    out: list[TeamData] = []
    number = 0
    for t in range(teams):
        members = tuple(f"dev{t}-{i}" for i in range(12))
        slug = f"team-{t}"
        n = per_team
        created = base + rng.uniform(0, 115 * 86_400, n)
        draft_first = rng.random(n) < 0.2
        ready = created + np.where(draft_first, rng.exponential(6 * 3600, n), 0.0)
        pickup = rng.exponential(10 * 3600, n)
        n_rev = rng.poisson(5, n).clip(1, 12)
        n_req = rng.poisson(5, n).clip(0, 12)
        n_chk = rng.poisson(10, n).clip(1, 25)
        review_span = rng.exponential(20 * 3600, n)
        merge_wait = rng.exponential(8 * 3600, n)
        first_review = ready + pickup
        merged = first_review + review_span + merge_wait
        is_merged = (merged < NOW.timestamp()) & (rng.random(n) < 0.9)
        redraft = rng.random(n) < 0.05
        author_ix = rng.integers(0, len(members), n)
        bot_author = rng.random(n) < 0.05
        ai_author = rng.random(n) < 0.05
        sizes = rng.lognormal(4.5, 1.2, n).astype(int)
        prs: list[PullRequest] = []
        # all instants of this team as python datetimes in one vectorised conversion
        for i in range(n):
            number += 1
            author = "dependabot[bot]" if bot_author[i] else ("copilot-swe-agent" if ai_author[i] else members[author_ix[i]])
            events: list[TimelineEvent] = []
            if draft_first[i]:
                events.append(TimelineEvent("ready_for_review", _dt(ready[i])))
            if redraft[i]:
                a = ready[i] + pickup[i] * 0.3
                events.append(TimelineEvent("convert_to_draft", _dt(a)))
                events.append(TimelineEvent("ready_for_review", _dt(a + 3600 * 3)))
            req_times = ready[i] + np.sort(rng.uniform(0, max(pickup[i] + review_span[i], 60), n_req[i]))
            for k, rt in enumerate(req_times):
                if k % 4 == 3:
                    events.append(TimelineEvent("review_requested", _dt(rt), actor=author, requested_team=slug))
                else:
                    who = members[(author_ix[i] + 1 + k % 3) % len(members)]
                    events.append(TimelineEvent("review_requested", _dt(rt), actor=author, requested_reviewer=who))
            events.append(TimelineEvent("head_pushed", _dt(first_review[i] + review_span[i] * 0.4), actor=author, sha="h2"))
            reviews: list[Review] = []
            rev_times = first_review[i] + np.sort(rng.uniform(0, review_span[i], n_rev[i]))
            rev_times[0] = first_review[i]
            for k, rt in enumerate(rev_times):
                if k == 1 and i % 7 == 0:
                    reviews.append(Review("coderabbitai", "Bot", "COMMENTED", _dt(rt - 1800)))
                    continue
                state = "APPROVED" if k == n_rev[i] - 1 else ("CHANGES_REQUESTED" if k % 3 == 1 else "COMMENTED")
                who = None if (i + k) % 97 == 0 else members[(author_ix[i] + 1 + k % 4) % len(members)]
                reviews.append(Review(who, "User" if who else "Deleted", state, _dt(rt)))
            checks: list[CheckRun] = []
            c_start = ready[i] + np.sort(rng.uniform(0, max(pickup[i] + review_span[i], 60), n_chk[i]))
            queue = rng.exponential(90, n_chk[i])
            run = rng.exponential(600, n_chk[i])
            for k in range(n_chk[i]):
                attempt = 2 if k % 9 == 8 else 1
                c = c_start[k]
                done = c + queue[k] + run[k]
                finished = done < NOW.timestamp()
                checks.append(
                    CheckRun(
                        WORKFLOWS[k % len(WORKFLOWS)], number * 100 + k - (attempt - 1), attempt,
                        "h2" if k > n_chk[i] // 2 else "h1", _dt(c), _dt(c + queue[k]),
                        _dt(done) if finished else None,
                        ("failure" if k % 11 == 3 else "success") if finished else None,
                    )
                )
            m = _dt(merged[i]) if is_merged[i] else None
            prs.append(
                PullRequest(
                    repo=f"org/repo-{t}-{i % 4}", number=number, title=f"Change {number}",
                    url=f"https://github.com/org/repo-{t}-{i % 4}/pull/{number}", author=author,
                    author_type="Bot" if bot_author[i] else "User", draft=False,
                    created_at=_dt(created[i]), updated_at=_dt(created[i]), closed_at=m, merged_at=m,
                    head_sha="h2", base_ref="main", additions=int(sizes[i] * 0.7),
                    deletions=int(sizes[i] * 0.3), changed_files=3,
                    labels=("ai-assisted",) if i % 10 == 0 else (),
                    first_commit_at=_dt(created[i] - rng.exponential(24 * 3600)),
                    events=tuple(events), reviews=tuple(reviews), checks=tuple(checks),
                )
            )
        hours = WorkHours(timezone=ZONES[t % len(ZONES)], holiday_country=COUNTRIES[t % len(COUNTRIES)])
        out.append(TeamData(f"team{t}", hours, members, {slug: members}, prs))
    return out


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(round(float(ts), 3), tz=timezone.utc)


def team_metrics(team: TeamData, identity: Identity, cal: WorkCalendar, window_days: int = 7,
                 phases: dict[str, float] | None = None) -> dict[str, Any]:
    """Everything a team snapshot needs from jobs.metrics (``phases`` collects CPU seconds of
    record->column conversion, the four tables and the aggregates)."""
    c0 = time.process_time()
    cols = metrics.columns(team.prs, identity=identity)
    c1 = time.process_time()
    prs_t = metrics.pr_table(cols, identity=identity, calendar=cal, now=NOW)
    reqs = metrics.request_table(cols, identity=identity, team_members=team.team_members, calendar=cal, now=NOW)
    revs = metrics.review_table(cols, identity=identity, calendar=cal, now=NOW)
    ci = metrics.check_table(cols)
    c2 = time.process_time()
    week = metrics.window(prs_t, NOW, window_days)
    out: dict[str, Any] = {
        clock: metrics.pr_latency(week, clock) for clock in ("pickup", "approval", "merge", "lead")
    }
    out["pickup_ai"], out["pickup_other"] = metrics.ai_split(week, "pickup")
    out["by_repo"] = metrics.latency_by(week, "repo", "pickup")
    out["by_size"] = metrics.latency_by(week, "size_bucket", "pickup")
    out["request_response"] = metrics.request_latency(reqs, NOW, window_days)
    loads = metrics.reviewer_loads(reqs, revs, now=NOW, window_days=window_days, members=team.members)
    out["loads"] = loads
    out["concentration"] = metrics.load_concentration(loads)
    out["focus"] = metrics.focus_hours_per_week(loads, window_days)
    since = NOW - timedelta(days=window_days)
    out["workflows"] = metrics.workflow_stats(ci, since=since, until=NOW)
    out["ci_wait"] = metrics.ci_wait_hours(prs_t, now=NOW, days=window_days)
    out["flow"] = metrics.flow_days(prs_t, calendar=cal, since=NOW - timedelta(days=35), until=NOW)
    out["size_week"] = metrics.size_mix(prs_t, since=since, until=NOW)
    out["size_before"] = metrics.size_mix(prs_t, since=since - timedelta(days=28), until=since)
    out["table"] = prs_t
    if phases is not None:
        c3 = time.process_time()
        for name, spent in (("records -> columns", c1 - c0), ("tables", c2 - c1), ("aggregates", c3 - c2)):
            phases[name] = phases.get(name, 0.0) + spent
    return out


def loop_latencies(prs: Sequence[PullRequest], identity: Identity, cal: WorkCalendar, window_days: int = 7) -> dict[str, tuple[float | None, ...]]:
    """The straightforward way: jobs.timeline.pr_clocks per PR, then plain-Python percentiles
    of the PRs merged in the window whose clock has its stop event."""
    from jobs import timeline

    since = NOW - timedelta(days=window_days)
    values: dict[str, list[float]] = {f"{k}{u}": [] for k in ("pickup", "approval", "merge", "lead") for u in ("_h", "_bh")}
    for pr in prs:
        c = timeline.pr_clocks(pr, identity=identity, calendar=cal, now=NOW)
        if c.state != "merged" or c.bot_pr or not since < c.events.end.at <= NOW:
            continue
        end = c.events.end.at
        reviewed = c.ready_at is not None and c.ready_at.at <= end and c.first_human_review_at is not None \
            and c.first_human_review_at.at <= end
        clocks = {"pickup": c.pickup if reviewed else None, "approval": c.time_to_approval,
                  "merge": c.time_to_merge, "lead": c.lead_time}
        for key, clock in clocks.items():
            if clock is not None and clock.calendar_hours is not None:
                values[key + "_h"].append(clock.calendar_hours)
                values[key + "_bh"].append(clock.business_hours)  # type: ignore[arg-type]
    return {k: _plain_percentiles(v) for k, v in values.items()}


def _plain_percentiles(values: list[float]) -> tuple[float | None, ...]:
    if not values:
        return (None, None, None)
    xs = sorted(values)
    out = []
    for q in (0.5, 0.75, 0.9):
        pos = (len(xs) - 1) * q
        lo = math.floor(pos)
        hi = min(lo + 1, len(xs) - 1)
        out.append(xs[lo] + (xs[hi] - xs[lo]) * (pos - lo))
    return tuple(out)


_ORG: list[TeamData] = []  # set before the workers fork: they inherit it, nothing is pickled


def _work(index: int) -> tuple[int, float, int, int, dict[str, Any]]:
    """One team in a worker: its metrics without the PR table (not needed back), its CPU
    time, the worker's peak RSS so far and its proportional set size now (kB)."""
    team = _ORG[index]
    t = time.process_time()
    out = team_metrics(team, Identity(IdentitySettings()), WorkCalendar.for_team(team.hours))
    out.pop("table")
    cpu = time.process_time() - t
    return index, cpu, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, _pss_kb(), out


def _pss_kb() -> int:
    """This process's proportional set size: its share of the physical memory it maps
    (pages shared with the parent after fork count by half), so the sum over processes is
    the memory really used."""
    try:
        with open("/proc/self/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def vectorised_latencies(team: TeamData, identity: Identity, cal: WorkCalendar) -> dict[str, Any]:
    """The same numbers as :func:`loop_latencies`, the vectorised way (records included)."""
    prs_t = metrics.pr_table(team.prs, identity=identity, calendar=cal, now=NOW)
    week = metrics.window(prs_t, NOW, 7)
    return {clock: metrics.pr_latency(week, clock) for clock in ("pickup", "approval", "merge", "lead")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--teams", type=int, default=50)
    ap.add_argument("--prs-per-team", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2, help="processes for the whole organisation")
    ap.add_argument("--loop-teams", type=int, default=2, help="teams checked against the per-PR loop")
    args = ap.parse_args(argv)

    t = time.perf_counter()
    org = generate(args.teams, args.prs_per_team)
    n_prs = sum(len(d.prs) for d in org)
    n_rev = sum(len(p.reviews) for d in org for p in d.prs)
    n_req = sum(1 for d in org for p in d.prs for e in p.events if e.kind == "review_requested")
    n_chk = sum(len(p.checks) for d in org for p in d.prs)
    print(f"generated {n_prs:,} PRs, {n_rev:,} reviews, {n_req:,} review requests, {n_chk:,} CI attempts, "
          f"{len(org)} teams in {time.perf_counter() - t:.1f} s")
    print(f"load average before computing: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")

    identity = Identity(IdentitySettings())
    cals = {d.name: WorkCalendar.for_team(d.hours) for d in org}
    team_metrics(org[0], identity, cals[org[0].name])  # warm-up: imports, holiday tables
    for d in org:
        cals[d.name].business_hours([NOW - timedelta(days=400)], [NOW])
    gc.collect()
    rss_records = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    # 1. one process, team after team
    phases: dict[str, float] = {}
    t, c = time.perf_counter(), time.process_time()
    for d in org:
        team_metrics(d, identity, cals[d.name], phases=phases)
    serial_wall, serial_cpu = time.perf_counter() - t, time.process_time() - c
    rss_serial = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    # 2. the teams shared by worker processes (fork: they inherit the records)
    global _ORG
    _ORG = org
    gc.freeze()  # keep the collector from touching (and so copying) the inherited records
    t = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(args.workers) as pool:
        done = list(pool.imap_unordered(_work, range(len(org)), chunksize=5))
    parallel_wall = time.perf_counter() - t
    gc.unfreeze()
    worker_cpu = sum(cpu for _, cpu, _, _, _ in done)
    worker_rss = max(rss for _, _, rss, _, _ in done)
    worker_pss = sum(sorted((pss for _, _, _, pss, _ in done), reverse=True)[: args.workers])
    main_pss = _pss_kb()

    one = []
    for _ in range(7):
        t = time.perf_counter()
        team_metrics(org[1], identity, cals[org[1].name])
        one.append(time.perf_counter() - t)
    one.sort()

    print(f"whole organisation, {args.workers} processes: {parallel_wall:.2f} s wall "
          f"(workers' CPU {worker_cpu:.2f} s)  (target < 3 s)")
    print(f"whole organisation, 1 process: {serial_wall:.2f} s wall, {serial_cpu:.2f} s CPU: "
          + ", ".join(f"{k} {v:.2f} s" for k, v in phases.items()))
    print(f"one team of {len(org[1].prs):,} PRs: best {one[0] * 1000:.0f} ms, median "
          f"{one[3] * 1000:.0f} ms  (target < 100 ms)")
    print(f"peak RSS: main process {rss_serial / 1024:.0f} MB (the records alone {rss_records / 1024:.0f} MB); "
          f"largest worker {worker_rss / 1024:.0f} MB, mostly pages shared with the main process; "
          f"proportional sum over the main process and workers ~{(main_pss + worker_pss) / 1024:.0f} MB "
          f"(target < 1.5 GB)")

    loop_time = vec_time = 0.0
    worst = 0.0
    for d in org[: args.loop_teams]:
        t = time.perf_counter()
        expected = loop_latencies(d.prs, identity, cals[d.name])
        loop_time += time.perf_counter() - t
        t = time.perf_counter()
        got = vectorised_latencies(d, identity, cals[d.name])
        vec_time += time.perf_counter() - t
        for key, values in expected.items():
            clock, unit = key.rsplit("_", 1)
            lat = got[clock].calendar if unit == "h" else got[clock].business
            for a, b in zip(values, (lat.p50, lat.p75, lat.p90), strict=True):
                if (a is None) != (b is None):
                    print(f"MISMATCH {d.name} {key}: loop {values} vs table {lat}")
                    return 1
                if a is not None and b is not None:
                    worst = max(worst, abs(a - b))
    print(f"per-PR loop (jobs.timeline.pr_clocks + plain-Python percentiles) vs pr_table + "
          f"percentiles, {args.loop_teams} teams: {loop_time:.2f} s vs {vec_time:.2f} s = "
          f"{loop_time / vec_time:.1f}x; largest difference {worst:.1e} h")
    if worst > 1e-9:
        print("MISMATCH beyond 1e-9 h")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
