"""The weekly digest's cost (run by hand: ``python bench/digest_chart.py``).

Prints: the first chart (including matplotlib's import, what a fresh worker pays once), the
warm chart time over a week of 15-minute samples (672), the PNG size, the pure digest
assembly time, and the Block Kit rendering time. Targets: chart < 1 s, PNG < 150 KB.
"""

from __future__ import annotations

import sys
import time
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.factories

from jobs.model import QueueSample  # noqa: E402
from jobs.settings import Settings  # noqa: E402
from tests.factories import T0, snapshot  # noqa: E402


def main(runs: int = 10) -> None:
    from bot.blocks.digest import render_digest
    from jobs.digest import digest_from_snapshot

    settings = Settings.model_validate({
        "github": {"organisation": "acme"},
        "teams": {"platform": {"members": [{"github": "bob"}], "repositories": ["api"],
                               "channel": "C0PLATFORM", "timezone": "Europe/Berlin"}},
    })
    samples = [
        QueueSample(at=T0 - timedelta(minutes=15 * i), reviewer=3 + (i // 40) % 6,
                    author=1 + (i // 90) % 2, ci=(i // 30) % 2, approved=1,
                    oldest_hours=20.0, oldest_business_hours=8.0)
        for i in range(7 * 96)
    ]
    snap = snapshot()

    t0 = time.perf_counter()
    for _ in range(runs):
        digest = digest_from_snapshot(settings, "platform", snap, samples, now=T0)
    assemble = (time.perf_counter() - t0) / runs

    t0 = time.perf_counter()
    for _ in range(runs):
        render_digest(digest)
    render = (time.perf_counter() - t0) / runs

    from bot.charts import digest_chart  # matplotlib is imported on the first chart

    tz = ZoneInfo("Europe/Berlin")
    t0 = time.perf_counter()
    png = digest_chart(digest, samples, tz=tz)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(runs):
        png = digest_chart(digest, samples, tz=tz)
    warm = (time.perf_counter() - t0) / runs

    print(f"digest assembly (672 samples):   {assemble * 1000:7.2f} ms")
    print(f"Block Kit rendering:              {render * 1000:7.2f} ms")
    print(f"first chart (with mpl import):    {first * 1000:7.1f} ms")
    print(f"chart, warm (mean of {runs}):        {warm * 1000:7.1f} ms")
    print(f"PNG size:                         {len(png) / 1024:7.1f} KB")


if __name__ == "__main__":
    main()
