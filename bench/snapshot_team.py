"""Benchmark: one team's whole snapshot (metrics, queue, analysis) for 2,000 PRs.

Records copied from the sandbox's busiest repository (``bench/shape.py``). Prints the best and
median of five runs after a warm-up, beside the per-PR loop (``jobs.timeline.pr_clocks`` for
every PR, which gives the clocks alone) in the same process and moment, and the machine's load.
Target (issue #4): under 100 ms for one team's snapshot of 2,000 PRs.

    .venv/bin/python bench/snapshot_team.py [PRS]
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.shape import END, busiest_repo, load, replicate, shape
from bot.config import from_mapping
from jobs.identity import Identity
from jobs.snapshot import compute_team_snapshot
from jobs.timeline import pr_clocks
from jobs.worktime import WorkCalendar


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    template = busiest_repo(os.environ.get("REDIS_URL") or None)
    people = sorted({p.author for p in template if p.author} |
                    {r.author for p in template for r in p.reviews if r.author})
    prs = replicate(template, n, repos=["acme/api", "acme/web"])
    settings = from_mapping({
        "github": {"organisation": "acme"},
        "teams": {"core": {"members": [{"github": p} for p in people], "repositories": ["api", "web"],
                           "channel": "C0CORE001"}},
    }, env={})
    compute_team_snapshot(settings, "core", prs, [], now=END)  # warm-up: imports, caches
    times, loops = [], []
    identity = Identity(settings.identity)
    calendar = WorkCalendar.for_team(settings.teams["core"])
    for _ in range(5):
        start = time.perf_counter()
        snap = compute_team_snapshot(settings, "core", prs, [], now=END)
        times.append(time.perf_counter() - start)
        start = time.perf_counter()
        for pr in prs:
            pr_clocks(pr, identity=identity, calendar=calendar, now=END)
        loops.append(time.perf_counter() - start)
    print(f"{n} PRs ({shape(template)}), one team's snapshot: best {min(times) * 1000:.0f} ms, "
          f"median {statistics.median(times) * 1000:.0f} ms (target < 100 ms); the per-PR loop "
          f"(pr_clocks only) median {statistics.median(loops) * 1000:.0f} ms = "
          f"{statistics.median(loops) / statistics.median(times):.1f}x the whole snapshot; "
          f"{snap.merged_count} merged in the window, bottleneck {snap.analysis.dominant_stage}  [{load()}]")


if __name__ == "__main__":
    main()
