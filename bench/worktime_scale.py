"""Business hours over 1,000,000 intervals (run by hand: ``python bench/worktime_scale.py``).

Prints the vectorised time for a million (start, end) pairs as pandas UTC columns, the scalar
per-pair rate, and checks both give the same floats on a sample.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from jobs.settings import WorkHours
from jobs.worktime import WorkCalendar


def main(n: int = 1_000_000) -> None:
    cal = WorkCalendar.for_team(
        WorkHours(timezone="Europe/Berlin", holiday_country="DE", holiday_subdivision="BE")
    )
    rng = np.random.default_rng(7)
    base = pd.Timestamp("2024-01-01", tz="UTC").value
    starts = pd.Series(pd.to_datetime(base + rng.integers(0, 3 * 365 * 86_400, n) * 10**9, utc=True))
    ends = starts + pd.to_timedelta(rng.exponential(3 * 86_400, n).astype(np.int64), unit="s")
    cal.business_hours(starts[:10], ends[:10])  # warm the holiday tables for the years
    t0 = time.perf_counter()
    hours = cal.business_hours(starts, ends)
    vec = time.perf_counter() - t0
    sample = 20_000
    s_list, e_list = starts[:sample].tolist(), ends[:sample].tolist()
    t0 = time.perf_counter()
    scalar = [cal.hours_between(s, e) for s, e in zip(s_list, e_list)]
    per = (time.perf_counter() - t0) / sample
    assert np.array_equal(np.asarray(scalar), hours[:sample])
    print(f"vectorised: {n:,} intervals in {vec * 1000:.0f} ms")
    print(f"scalar: {per * 1e6:.1f} us per interval ({per * n:.1f} s for {n:,}); "
          f"ratio {per * n / vec:.0f}x; results identical on {sample:,}")


if __name__ == "__main__":
    main()
