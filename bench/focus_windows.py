"""Figure and benchmark: review windows' measured effect on the sandbox, with and without windows.

Backfills the simulated organisation into Redis (``bench.shape.sandbox_org_in_store``), computes
each team's snapshot with no one's windows on, then with every member's windows on (10:00-10:30
and 14:00-14:30, team-local, turned on 10 days before the end), through the real path
(``Store.set_review_windows``, ``jobs.snapshot.refresh_team``), and prints what the digest and
`/flow reviewers` say each way. Then times ``jobs.metrics.focus.window_effect`` alone on 2,000 PRs
shaped like the sandbox's busiest repository, beside the whole snapshot, in the same run.

    REDIS_URL=redis://127.0.0.1:6379/N .venv/bin/python bench/focus_windows.py
"""

from __future__ import annotations

import os
import statistics
import sys
import time as clock
from datetime import time, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.shape import END, busiest_repo, load, replicate, sandbox_org_in_store
from bot.config import from_mapping
from jobs import metrics
from jobs.focus_text import person_line, team_lines
from jobs.identity import Identity
from jobs.metrics.focus import Windows, window_effect
from jobs.model import TeamSnapshot
from jobs.snapshot import compute_team_snapshot, refresh_team
from jobs.store import Store
from jobs.windows import ReviewWindows, Window
from jobs.worktime import WorkCalendar

WINDOWS = (Window(time(10), time(10, 30)), Window(time(14), time(14, 30)))


def show(label: str, snap: TeamSnapshot) -> None:
    print(f"  {label}:")
    for line in team_lines(snap.focus, window_days=snap.window_days):
        print(f"    {line}")
    for p in snap.focus.people[:3]:
        print(f"      {person_line(p)}")


def figures(redis_url: str | None) -> None:
    store = Store.connect(redis_url, prefix="flowbench-focus")
    store.flush_prefix()
    store.ensure_schema()
    try:
        with sandbox_org_in_store(store) as (settings, _, clk):
            now = clk.now()
            for name, team in settings.teams.items():
                without = refresh_team(settings, store, name, now=now, force=True)
                for m in team.members:
                    store.set_review_windows(ReviewWindows(m.github.lower(), WINDOWS, team.timezone,
                                                           since=now - timedelta(days=10)))
                with_ = refresh_team(settings, store, name, now=now, force=True)
                assert without is not None and with_ is not None
                print(f"{name} (sandbox, week to {now:%a %d %b %Y %H:%M} UTC):")
                show("without windows", without)
                show("with windows 10:00-10:30 and 14:00-14:30 for everyone, on for 10 days", with_)
    finally:
        store.flush_prefix()
        store.close()


def timing(redis_url: str | None, n: int = 2000) -> None:
    template = busiest_repo(redis_url)
    people = sorted({p.author for p in template if p.author} |
                    {r.author for p in template for r in p.reviews if r.author})
    prs = replicate(template, n, repos=["acme/api", "acme/web"])
    settings = from_mapping({
        "github": {"organisation": "acme"},
        "teams": {"core": {"members": [{"github": p} for p in people], "repositories": ["api", "web"],
                           "channel": "C0CORE001"}},
    }, env={})
    team = settings.teams["core"]
    identity, calendar = Identity(settings.identity), WorkCalendar.for_team(team)
    cols = metrics.columns(prs, identity=identity)
    table = metrics.pr_table(cols, identity=identity, calendar=calendar, now=END)
    reviews = metrics.review_table(cols, identity=identity, calendar=calendar, now=END)
    everyone = {p.lower(): Windows(((time(10), time(10, 30)), (time(14), time(14, 30))), "UTC",
                                   END - timedelta(days=10)) for p in people}
    compute_team_snapshot(settings, "core", prs, [], now=END)  # warm-up
    rows: dict[str, list[float]] = {"effect, no windows": [], "effect, everyone's windows": [],
                                    "whole snapshot": []}
    for _ in range(5):
        for label, windows in (("effect, no windows", {}), ("effect, everyone's windows", everyone)):
            start = clock.perf_counter()
            window_effect(reviews, table, windows=windows, calendar=calendar, now=END,
                          members=team.logins)
            rows[label].append(clock.perf_counter() - start)
        start = clock.perf_counter()
        compute_team_snapshot(settings, "core", prs, [], now=END)
        rows["whole snapshot"].append(clock.perf_counter() - start)
    print(f"{n} PRs, {len(people)} people, {len(reviews)} reviews:")
    for label, times in rows.items():
        print(f"  {label}: best {min(times) * 1000:.1f} ms, median {statistics.median(times) * 1000:.1f} ms")
    print(f"  [{load()}]")


def main() -> None:
    url = os.environ.get("REDIS_URL") or None
    figures(url)
    timing(url)


if __name__ == "__main__":
    main()
