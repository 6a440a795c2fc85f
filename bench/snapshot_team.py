"""Benchmark: one team's whole snapshot (metrics, queue, analysis) for 2,000 PRs.

Target (issue #4): under 100 ms for one team's snapshot of 2,000 PRs. Run by hand:

    .venv/bin/python bench/snapshot_team.py [PRS]

Prints the best and median of five runs after a warm-up.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone

from bot.config import from_mapping
from jobs.model import CheckRun, PullRequest, Review, TimelineEvent
from jobs.snapshot import compute_team_snapshot

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
PEOPLE = ("alice", "bob", "erin", "carol", "dan", "eve")


def make_prs(n: int, *, seed: int = 1) -> list[PullRequest]:
    """``n`` PRs over five weeks: a request, a push, two reviews and three CI attempts each."""
    rng = random.Random(seed)
    out = []
    for number in range(1, n + 1):
        created = T0 + timedelta(hours=rng.uniform(0, 24 * 34))
        author = rng.choice(PEOPLE)
        reviewer = rng.choice([p for p in PEOPLE if p != author])
        merged = created + timedelta(hours=rng.uniform(2, 120)) if rng.random() < 0.9 else None
        first = created + timedelta(hours=rng.uniform(0.5, 60))
        reviews: tuple[Review, ...] = ()
        if merged is not None and first + timedelta(hours=2) < merged:
            reviews = (Review(reviewer, "User", "COMMENTED", first),
                       Review(reviewer, "User", "APPROVED", first + timedelta(hours=2)))
        checks = tuple(
            CheckRun("ci", number * 10 + k, 1, "sha", created + timedelta(hours=k),
                     created + timedelta(hours=k, minutes=3), created + timedelta(hours=k, minutes=20),
                     rng.choice(("success", "failure")))
            for k in range(3)
        )
        out.append(PullRequest(
            repo=rng.choice(("acme/api", "acme/web")), number=number, title=f"Change {number}",
            url=f"https://github.com/acme/api/pull/{number}", author=author, author_type="User",
            draft=False, created_at=created, updated_at=merged or created, closed_at=merged,
            merged_at=merged, head_sha="sha", base_ref="main", additions=rng.randint(1, 1500),
            deletions=0, changed_files=3, first_commit_at=created - timedelta(hours=2),
            events=(TimelineEvent("review_requested", created, author, requested_reviewer=reviewer),
                    TimelineEvent("head_pushed", created + timedelta(hours=1), author, sha="sha")),
            reviews=reviews, checks=checks,
        ))
    return out


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    prs = make_prs(n)
    settings = from_mapping({
        "github": {"organisation": "acme"},
        "teams": {"core": {"members": [{"github": p} for p in PEOPLE], "repositories": ["api", "web"],
                           "channel": "C0CORE001"}},
    }, env={})
    now = T0 + timedelta(days=35)
    compute_team_snapshot(settings, "core", prs, [], now=now)  # warm-up: imports, caches
    times = []
    for _ in range(5):
        start = time.perf_counter()
        snap = compute_team_snapshot(settings, "core", prs, [], now=now)
        times.append(time.perf_counter() - start)
    print(f"{n} PRs, one team's snapshot: best {min(times) * 1000:.0f} ms, "
          f"median {statistics.median(times) * 1000:.0f} ms (target < 100 ms); "
          f"{snap.merged_count} merged in the window, bottleneck {snap.analysis.dominant_stage}")


if __name__ == "__main__":
    main()
