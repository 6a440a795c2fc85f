"""Benchmark: one pass of the review-window job (``jobs.window_dm.run_windows``), which runs every minute.

TEAMS teams of 10 members, every member with two windows on, each team's queue QUEUE PRs long
(requests spread over the members and the team's GitHub team). Times one pass, median of five
after a warm-up, at three moments: a quiet minute (20:00 local: nothing to do), a working minute
between windows (the threshold-exception check reads each member's waiting list), and a window's
first minute (each member's DM built from the whole queue; delivery is a no-op here, each DM's
post is a Slack call in production). Needs a Redis (``REDIS_URL``, else the embedded one); uses a
prefix of its own and removes it after.

    REDIS_URL=redis://127.0.0.1:6379/7 .venv/bin/python bench/windows_pass.py [TEAMS] [QUEUE]
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.config import from_mapping
from jobs.model import QueueItem
from jobs.store import Store
from jobs.window_dm import run_windows
from jobs.windows import ReviewWindows, WindowDM, parse_windows
from tests.factories import snapshot

MONDAY = datetime(2026, 3, 2, tzinfo=UTC)  # Berlin is UTC+1


class NoPost:
    """Delivery that accepts every DM (the bench times the job, not Slack)."""

    def __init__(self) -> None:
        self.count = 0

    def window_dm(self, dm: WindowDM) -> bool:
        self.count += 1
        return True


def main() -> None:
    teams = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    queue = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    store = Store.connect(os.environ.get("REDIS_URL") or None, prefix="flowbot-bench-windows")
    store.flush_prefix()
    try:
        data = {"github": {"organisation": "acme"}, "teams": {
            f"t{t}": {"members": [{"github": f"dev{t}x{m}", "slack": f"U0{t:03d}X{m:02d}"} for m in range(10)],
                      "repositories": [f"r{t}"], "channel": f"C0T{t:04d}", "github_teams": [f"g{t}"],
                      "timezone": "Europe/Berlin"}
            for t in range(teams)}}
        settings = from_mapping(data, env={})
        for t in range(teams):
            for m in range(10):
                store.set_review_windows(ReviewWindows(f"dev{t}x{m}", (), "Europe/Berlin").changed(
                    parse_windows(["10:00-10:30", "15:00-15:30"]), now=MONDAY, by="bench"))
            items = tuple(QueueItem(repo=f"acme/r{t}", number=n, title=f"Change {n}",
                                    url=f"https://github.com/acme/r{t}/pull/{n}", author=f"dev{t}x{(n + 1) % 10}",
                                    turn="reviewer", waiting_on=(f"dev{t}x{n % 10}",) if n % 3 else (f"team:g{t}",),
                                    age_hours=float(queue - n), age_business_hours=(queue - n) / 3, size="S",
                                    ai_assisted=False)
                          for n in range(queue))
            store.put_snapshot(snapshot(team=f"t{t}", queue_items=items))
        moments = {"quiet minute (20:00)": MONDAY + timedelta(hours=19),
                   "between windows (12:00)": MONDAY + timedelta(hours=11),
                   "a window opens (10:00)": MONDAY + timedelta(hours=9)}
        deliver = NoPost()
        run_windows(settings, store, deliver, now=MONDAY + timedelta(hours=11))  # warm-up
        for name, at in moments.items():
            times = []
            for i in range(5):
                if at.hour == 9:  # a fresh day each time, so every member's window is due again
                    at = MONDAY + timedelta(days=7 * (i + 1), hours=9)
                start = time.perf_counter()
                run_windows(settings, store, deliver, now=at)
                times.append(time.perf_counter() - start)
            print(f"{teams} teams x 10 members, queues of {queue}: {name}: median "
                  f"{statistics.median(times) * 1000:.0f} ms, best {min(times) * 1000:.0f} ms")
        print(f"DMs built: {deliver.count}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    finally:
        store.flush_prefix()


if __name__ == "__main__":
    main()
