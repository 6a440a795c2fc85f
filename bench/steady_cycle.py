"""Benchmark: a steady sampling cycle (nothing changed on GitHub) over 8,000 stored PRs.

The sandbox organisation is served on loopback and backfilled by Flowbot's sampler into a
real Redis (``REDIS_URL`` as given, database included; else an embedded one); its
repositories are then filled up to ``--stored`` PRs with copies of its busiest repository's
records (the same share open, the same CI). Then, with the sandbox's clock still:

1. ``jobs.cycle.run_cycle`` (poll, CI state of the open PRs, queue samples), best and median of
   ``--cycles``, with the GitHub requests it sent, then ``jobs.snapshot.refresh_all`` (every
   team unchanged: nothing recomputed);
2. in the same process and moment, the reads the cycle made before issue 14: one ``HGET`` and
   a pydantic decode per open PR in the sync and again in the queue sample, plus a full decode
   of every stored PR to prune.

Target (issue 14): step 1 under 0.3 s, with the same requests.

    .venv/bin/python bench/steady_cycle.py [--stored 8000] [--cycles 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.shape import END, busiest_repo, load, replicate, sandbox_org_in_store
from jobs.cycle import run_cycle
from jobs.model import PullRequest
from jobs.snapshot import refresh_all
from jobs.store import Store

PREFIX = "flowbench-steady"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stored", type=int, default=8000)
    ap.add_argument("--cycles", type=int, default=5)
    args = ap.parse_args(argv)
    url = os.environ.get("REDIS_URL") or None
    template = busiest_repo(url)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.connect(url, data_path=Path(tmp) / "bench.rdb", prefix=PREFIX)
        store.flush_prefix()
        store.ensure_schema()
        try:
            with sandbox_org_in_store(store) as (settings, source, clock):
                repos = list(settings.repositories)
                synced = sum(len(store.get_prs(r)) for r in repos)
                extra = replicate(template, max(0, args.stored - synced), repos=repos,
                                  first_number=100_000)
                for repo in repos:
                    store.put_prs(repo, [p for p in extra if p.repo == repo])
                opened = sum(len(store.open_pr_numbers(r)) for r in repos)
                print(f"stored: {synced + len(extra):,} PRs ({synced:,} synced from the sandbox, "
                      f"{len(extra):,} copies of {template[0].repo}'s), {opened:,} open, "
                      f"{len(repos)} repositories, {len(settings.teams)} teams")
                run_cycle(settings, store, source, clock=clock)  # the first after the backfill
                refresh_all(settings, store, now=clock.now())
                times, requests = [], []
                for _ in range(args.cycles):
                    t = time.perf_counter()
                    report = run_cycle(settings, store, source, clock=clock)
                    times.append(time.perf_counter() - t)
                    requests.append(report.requests)
                if os.environ.get("BENCH_PROFILE"):
                    import cProfile
                    import pstats

                    cProfile.runctx("run_cycle(settings, store, source, clock=clock)", globals(),
                                    locals(), "/tmp/steady.prof")
                    pstats.Stats("/tmp/steady.prof").sort_stats("tottime").print_stats(15)
                t = time.perf_counter()
                snaps = refresh_all(settings, store, now=clock.now())
                refresh = time.perf_counter() - t
                print(f"1. steady cycle: best {min(times):.3f} s, median {statistics.median(times):.3f} s,"
                      f" GitHub requests per cycle {sorted(set(requests))}  (target < 0.3 s)"
                      f"  [{load()}]")
                print(f"   snapshot refresh after it: {refresh:.3f} s for {len(snaps)} teams "
                      f"(inputs unchanged: none recomputed)")
                naive = []
                for _ in range(max(1, args.cycles // 2)):
                    t = time.perf_counter()
                    naive_reads(store, repos, settings)
                    naive.append(time.perf_counter() - t)
                print(f"2. the reads of the cycle before issue 14, same moment: best {min(naive):.3f} s, "
                      f"median {statistics.median(naive):.3f} s = {min(naive) / min(times):.1f}x the "
                      f"whole steady cycle now  [{load()}]")
                t = time.perf_counter()
                naive_prune(store, repos)
                old_prune = time.perf_counter() - t
                t = time.perf_counter()
                for repo in repos:
                    store.prune_prs(repo, closed_before=clock.now() - timedelta(days=120))
                new_prune = time.perf_counter() - t
                print(f"   pruning {len(repos)} repositories: decoding every PR {old_prune:.3f} s, "
                      f"the closing-time index {new_prune:.3f} s  [{load()}]")
        finally:
            store.flush_prefix()
            store.close()
    return 0


def naive_reads(store: Store, repos: list[str], settings: object) -> None:
    """Per open PR one HGET and a pydantic decode (sync's CI check, then the queue sample's):
    what a steady cycle read before."""
    from pydantic import TypeAdapter

    adapter = TypeAdapter(PullRequest)
    r = store._r  # the raw client: the old access pattern, command for command
    for _ in range(2):  # the sync's CI check, then the queue sample
        for repo in repos:
            for n in store.open_pr_numbers(repo):
                raw = r.hget(store.key("prs", repo), str(n))
                if raw is not None:
                    adapter.validate_json(raw)



def naive_prune(store: Store, repos: list[str]) -> None:
    """Pruning before issue 14: every stored PR decoded to find the old closed ones."""
    from pydantic import TypeAdapter

    adapter = TypeAdapter(PullRequest)
    for repo in repos:
        for raw in store._r.hvals(store.key("prs", repo)):
            adapter.validate_json(raw)


if __name__ == "__main__":
    _ = END
    sys.exit(main())
