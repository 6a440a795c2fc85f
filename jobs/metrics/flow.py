"""Flow balance, size mix and CI wait over a period (docs/metrics.md "Flow balance", "PR size",
"CI duration")."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from jobs.metrics._columns import NAT_NS, instants_ns, local_days, times
from jobs.metrics.latency import SIZE_ORDER, in_window
from jobs.model import FlowDay


def flow_days(
    table: pd.DataFrame, *, calendar: Any, since: datetime, until: datetime
) -> tuple[FlowDay, ...]:
    """Arrivals and completions per team-local day, for every local date from ``since`` to
    ``until`` (instants ``since <= t < until``), oldest first.

    Arrival: a PR becoming ready for review (``ready_at``). Completion: its first human
    approval, or its merge or close when that came first or without any approval. Non-AI bot
    PRs are left out, as in the queue; a PR never ready neither arrives nor completes.
    """
    keep = ~table["bot"].to_numpy(dtype=bool)
    ready = _us(table["ready_at"])[keep]
    finished = np.fmin(_us(table["merged_at"]), _us(table["closed_at"]))[keep]
    done = np.where(np.isnan(ready), np.nan, np.fmin(_us(table["approved_at"])[keep], finished))
    lo, hi = times([since])[0], times([until])[0]
    first, last = local_days(calendar, np.array([lo, hi - 1.0]))
    days = np.arange(first, last + np.timedelta64(1, "D"), dtype="datetime64[D]")
    arrivals = _per_day(calendar, ready, lo, hi, days)
    completions = _per_day(calendar, done, lo, hi, days)
    return tuple(
        FlowDay(day=d.astype(date), arrivals=int(a), completions=int(c))
        for d, a, c in zip(days, arrivals, completions, strict=True)
    )


def size_mix(table: pd.DataFrame, *, since: datetime, until: datetime) -> tuple[tuple[str, float], ...]:
    """Share of each size bucket (XS..XL, all listed) among non-bot PRs merged in
    ``since < merged_at <= until``; empty when none merged."""
    buckets = table["size_bucket"].to_numpy(dtype=object)[
        in_window(table, until, (until - since) / timedelta(days=1))
    ]
    if not buckets.size:
        return ()
    total = float(buckets.size)
    return tuple((b, float(np.count_nonzero(buckets == b)) / total) for b in SIZE_ORDER)


def ci_wait_hours(
    table: pd.DataFrame, *, now: datetime, days: float, business: bool = False
) -> float:
    """Hours the PRs merged in the window (:func:`jobs.metrics.latency.window`) spent with CI
    queued or running between ready and merge, draft time left out; calendar hours unless
    ``business``."""
    column = "ci_wait_bh" if business else "ci_wait_h"
    return float(np.nansum(table[column].to_numpy(dtype=np.float64)[in_window(table, now, days)]))


def _us(column: pd.Series) -> np.ndarray:
    """Instants as float microseconds (NaN missing), read as integers (no index built)."""
    t = instants_ns(column)
    out: np.ndarray = (t // 1000).astype(np.float64)  # as_unit("us") floors too
    out[t == NAT_NS] = np.nan
    return out


def _per_day(calendar: Any, t: np.ndarray, lo: float, hi: float, days: np.ndarray) -> np.ndarray:
    inside = t[(t >= lo) & (t < hi)]
    local = local_days(calendar, inside)
    pos = np.searchsorted(days, local)
    return np.bincount(pos, minlength=days.size)[: days.size]
