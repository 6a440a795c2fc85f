"""Benchmark: 100,000 PRs from Redis to every team's snapshot written, the worker's real path.

Data: the records of the sandbox's busiest repository as Flowbot's sampler stored them
(``bench/shape.py``), copied to 100,000 PRs over 50 teams of 4 repositories, written to a real
Redis (``REDIS_URL`` as given, database included; else an embedded one) under a prefix of its own.

Measured, in this order, each in the same run:

1. the worker's path: ``jobs.snapshot.refresh_all(force=True)`` (each repository's column
   block read from Redis, columns, metrics, queue, analysis, every snapshot written in
   parts), in a fresh process so its peak RSS is the worker's, not this script's;
1b. with ``--workers N`` (default 2): the same, as the worker runs it in production: one
   ``team_snapshot`` RQ job per team (``jobs.work``), every team's inputs forgotten first so
   each is computed, served by N ``SimpleWorker`` processes started (and imported) before the
   clock starts; wall time from the first enqueue to the last snapshot job's end (RQ's record;
   the alert jobs each snapshot queues run after, outside the figure), CPU of the workers
   (alert jobs included), peak RSS per process;
2. the naive read: every record decoded into ``PullRequest`` objects, by the codec of the
   time (pydantic ``validate_json``) and by today's (msgspec), on one team and scaled to all;
   beside it the worker's read (the team's column blocks, ``Store.pr_blocks``);
3. the per-PR loop: ``jobs.timeline.pr_clocks`` per PR plus plain-Python percentiles, on
   ``--loop-teams`` teams and scaled to all; checked to agree with the tables to 1e-9 h.

Target (issue 14): step 1 under 3 s and 1.5 GB on 2 cores. Prints the machine's load with
every figure.

    .venv/bin/python bench/metrics_scale.py [--teams 50] [--prs-per-team 2000] [--loop-teams 2]
                                            [--workers 2]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.shape import END, busiest_repo, load, peak_rss_mb, replicate, shape
from bot.config import from_mapping
from jobs import codec, metrics
from jobs.identity import Identity
from jobs.model import PullRequest
from jobs.settings import Settings
from jobs.store import Store
from jobs.worktime import WorkCalendar

NOW = END
PREFIX = "flowbench-scale"
ZONES = ("Europe/Berlin", "America/New_York", "Asia/Tokyo", "UTC", "Europe/London")


def org_settings(teams: int, members: Sequence[str]) -> Settings:
    """``teams`` teams of 4 repositories each, members from the template's people."""
    return from_mapping({
        "github": {"organisation": "org"},
        "teams": {f"team{t}": {
            "members": [{"github": m} for m in members],
            "repositories": [f"repo-{t}-{k}" for k in range(4)],
            "channel": "C0BENCH01", "timezone": ZONES[t % len(ZONES)],
        } for t in range(teams)},
    }, env={})


def _worker_path(url: str | None, data: str, teams: int, members: list[str],
                 out: Any) -> None:
    """Step 1 in a fresh process: the worker's refresh, its wall time and peak RSS."""
    from jobs.snapshot import refresh_all

    store = Store.connect(url, data_path=data, prefix=PREFIX)
    settings = org_settings(teams, members)
    started = time.perf_counter()
    cpu = time.process_time()
    snaps = refresh_all(settings, store, now=NOW, force=True)
    out.put((time.perf_counter() - started, time.process_time() - cpu, peak_rss_mb(), len(snaps),
             sum(s.queue.length + s.queue.approved for s in snaps.values())))
    store.close()


def _rq_worker(url: str | None, data: str, teams: int, members: list[str], go: Any,
               ready: Any, out: Any) -> None:
    """Step 1b in a fresh process: an RQ worker over the store's queues, started once ``go``
    is set (imports and connections made before, as in a long-running worker); reports when
    it finished and its peak RSS."""
    from jobs import snapshot, work  # noqa: F401  (imported before the clock starts)
    from jobs.ports import FixedClock

    store = Store.connect(url, data_path=data, prefix=PREFIX)
    work.install(work.Context(settings=org_settings(teams, members), store=store,
                              clock=FixedClock(NOW)))
    worker = work.make_worker(store)
    ready.put(True)
    go.wait()
    cpu = time.process_time()
    # each snapshot job queues the team's alert evaluation, which this bench's context cannot
    # deliver (it fails, quietly); the figure is the snapshots' (their jobs' end times)
    worker.work(burst=True, with_scheduler=False, logging_level="CRITICAL")
    out.put((time.process_time() - cpu, peak_rss_mb()))
    store.close()


def _over_rq_workers(url: str | None, data: str, store: Store, settings: Settings,
                     members: list[str], workers: int) -> tuple[float, float, list[float], int]:
    """Step 1b: (wall s, CPU s of all workers, peak RSS MB per worker, snapshots written)."""
    from jobs import work

    ctx = multiprocessing.get_context("spawn")
    go, ready, out = ctx.Event(), ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=_rq_worker,
                         args=(url, data, len(settings.teams), members, go, ready, out))
             for _ in range(workers)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get()
    for name in settings.teams:  # as after a change of every team's inputs: all recomputed
        store.delete("snapshot_inputs", name)
    started = datetime.now(UTC)
    for name in settings.teams:
        work.enqueue_team_snapshot(store, name, reason="bench")
    go.set()
    done = [out.get() for _ in procs]
    for p in procs:
        p.join()
    written = sum(1 for v in store.snapshot_inputs(list(settings.teams)).values() if v)
    teams_q = work.queue(store, work.TEAMS)
    ended = [job.ended_at for job in (teams_q.fetch_job(i) for i in
                                      teams_q.finished_job_registry.get_job_ids())
             if job is not None and job.func_name.endswith("team_snapshot") and job.ended_at]
    last = max((e if e.tzinfo else e.replace(tzinfo=UTC) for e in ended), default=started)
    work.purge(store)
    return (last - started).total_seconds(), sum(d[0] for d in done), [d[1] for d in done], written


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


def vectorised_latencies(prs: list[PullRequest], identity: Identity, cal: WorkCalendar) -> dict[str, Any]:
    """The same numbers as :func:`loop_latencies`, the vectorised way (records included)."""
    prs_t = metrics.pr_table(prs, identity=identity, calendar=cal, now=NOW)
    week = metrics.window(prs_t, NOW, 7)
    return {clock: metrics.pr_latency(week, clock) for clock in ("pickup", "approval", "merge", "lead")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--teams", type=int, default=50)
    ap.add_argument("--prs-per-team", type=int, default=2000)
    ap.add_argument("--loop-teams", type=int, default=2, help="teams run through the per-PR loop")
    ap.add_argument("--workers", type=int, default=2, help="RQ worker processes in step 1b (0: skip)")
    args = ap.parse_args(argv)
    url = os.environ.get("REDIS_URL") or None

    template = busiest_repo(url)
    members = sorted({p.author for p in template if p.author} |
                     {r.author for p in template for r in p.reviews if r.author})
    settings = org_settings(args.teams, members)
    per_team = {name: replicate(template, args.prs_per_team,
                                repos=[settings.full_repo(r) for r in team.repositories],
                                first_number=1 + t * args.prs_per_team)
                for t, (name, team) in enumerate(settings.teams.items())}
    everything = [p for prs in per_team.values() for p in prs]
    print(f"data: {len(everything):,} PRs over {args.teams} teams, copied from the sandbox's busiest "
          f"repository ({template[0].repo}, {len(template)} PRs); {shape(template)}")

    with tempfile.TemporaryDirectory() as tmp:
        data = str(Path(tmp) / "bench.rdb")
        store = Store.connect(url, data_path=data, prefix=PREFIX)
        store.flush_prefix()
        store.ensure_schema()
        by_repo: dict[str, list[PullRequest]] = {}
        for p in everything:
            by_repo.setdefault(p.repo, []).append(p)
        t = time.perf_counter()
        for repo, prs in by_repo.items():
            for i in range(0, len(prs), 500):
                store.put_prs(repo, prs[i:i + 500])
        print(f"written to Redis ({store.location}) in {time.perf_counter() - t:.1f} s")
        try:
            # 1. the worker's path, in a fresh process
            ctx = multiprocessing.get_context("spawn")
            out = ctx.Queue()
            before = load()
            child = ctx.Process(target=_worker_path, args=(url, data, args.teams, members, out))
            child.start()
            wall, cpu, rss, done, queued = out.get()
            child.join()
            print(f"\n1. worker path, Redis -> every snapshot written ({done} teams, {queued:,} PRs "
                  f"in queues), one process: {wall:.2f} s wall, {cpu:.2f} s CPU, peak RSS "
                  f"{rss:.0f} MB  (target < 3 s, < 1.5 GB)  [{before}]")
            rq_wall = None
            if args.workers:
                before = load()
                rq_wall, rq_cpu, rq_rss, written = _over_rq_workers(
                    url, data, store, settings, members, args.workers)
                print(f"1b. the same as RQ jobs, one per team, over {args.workers} worker processes "
                      f"({written} snapshots written): {rq_wall:.2f} s wall, {rq_cpu:.2f} s CPU, "
                      f"peak RSS {' / '.join(f'{r:.0f}' for r in rq_rss)} MB  [{before}]")

            # 2. the naive read of the records, same moment
            from pydantic import TypeAdapter

            one = per_team[next(iter(per_team))]
            raw = [codec.dumps(p) for p in one]
            adapter = TypeAdapter(PullRequest)
            adapter.validate_json(raw[0])
            t = time.perf_counter()
            for r in raw:
                adapter.validate_json(r)
            pyd = (time.perf_counter() - t) * args.teams
            t = time.perf_counter()
            for r in raw:
                codec.loads(PullRequest, r)
            msg = (time.perf_counter() - t) * args.teams
            t = time.perf_counter()
            blocks = store.pr_blocks(settings.full_repo(r) for r in settings.teams["team0"].repositories)
            cols = metrics.columns(list(blocks.values()), identity=Identity(settings.identity))
            read_t = (time.perf_counter() - t) * args.teams
            print(f"2. reading every record as objects (one team, x{args.teams}): pydantic "
                  f"{pyd:.2f} s, msgspec {msg:.2f} s; the worker's read, column blocks from Redis "
                  f"to the metrics' columns, {read_t:.2f} s ({cols.n:,} PRs a team)  [{load()}]")

            # 3. the per-PR loop, same moment
            identity = Identity(settings.identity)
            loop_time = vec_time = 0.0
            worst = 0.0
            for name in list(per_team)[: args.loop_teams]:
                cal = WorkCalendar.for_team(settings.teams[name])
                t = time.perf_counter()
                expected = loop_latencies(per_team[name], identity, cal)
                loop_time += time.perf_counter() - t
                t = time.perf_counter()
                got = vectorised_latencies(per_team[name], identity, cal)
                vec_time += time.perf_counter() - t
                for key, values in expected.items():
                    clock, unit = key.rsplit("_", 1)
                    lat = got[clock].calendar if unit == "h" else got[clock].business
                    for a, b in zip(values, (lat.p50, lat.p75, lat.p90), strict=True):
                        if (a is None) != (b is None):
                            print(f"MISMATCH {name} {key}: loop {values} vs table {lat}")
                            return 1
                        if a is not None and b is not None:
                            worst = max(worst, abs(a - b))
            scale = args.teams / max(1, args.loop_teams)
            print(f"3. per-PR loop (pr_clocks + plain percentiles, latencies only), {args.loop_teams} "
                  f"teams x{scale:g}: {loop_time * scale:.1f} s; the worker's whole path above is "
                  f"{loop_time * scale / wall:.1f}x faster in one process"
                  + (f", {loop_time * scale / rq_wall:.1f}x over {args.workers} RQ workers"
                     if rq_wall else "")
                  + f"; tables alone {loop_time / vec_time:.1f}x; "
                  f"largest difference {worst:.1e} h  [{load()}]")
            if worst > 1e-9:
                print("MISMATCH beyond 1e-9 h")
                return 1
        finally:
            store.flush_prefix()
            store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
