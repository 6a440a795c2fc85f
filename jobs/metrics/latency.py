"""Latency aggregates: percentiles over a window (docs/metrics.md "Review latency", "Window",
"Percentiles", "AI split", "PR size")."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from jobs.metrics._columns import frame, within
from jobs.model import Latency, Percentiles

QUANTILES: tuple[float, ...] = (50, 75, 90)
# latency name -> the pr_table clock columns (``{clock}_h`` / ``{clock}_bh``)
CLOCKS: dict[str, str] = {
    "pickup": "pickup_wait",
    "approval": "time_to_approval",
    "merge": "time_to_merge",
    "lead": "lead",
    "first_ai_review": "first_ai_review",
}
SIZE_ORDER: tuple[str, ...] = ("XS", "S", "M", "L", "XL")
# what the snapshot reads of the window: the latency clocks, their splits and groupings
LATENCY_COLUMNS: tuple[str, ...] = ("repo", "size_bucket", "ai_assisted", *(
    f"{c}{unit}" for c in CLOCKS.values() for unit in ("_h", "_bh")))


def percentiles(values: Any, qs: Sequence[float] = QUANTILES) -> tuple[float | None, ...]:
    """The ``qs`` percentiles of ``values`` ignoring NaN (linear interpolation between the
    closest ranks, numpy's default); ``None`` each when nothing is left."""
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[~np.isnan(arr)]
    if not arr.size:
        return tuple(None for _ in qs)
    return _linear(np.sort(arr), qs)


def _linear(ordered: npt.NDArray[np.float64], qs: Sequence[float]) -> tuple[float, ...]:
    """``np.percentile(values, qs)`` (method "linear") of the sorted, NaN-free ``ordered``, to
    the last bit: numpy's own steps (index ``(n - 1) * q / 100``, the two neighbours, its
    two-sided interpolation) on scalars. ``np.percentile`` costs ~40x more on the few hundred
    values of a team's window, and a snapshot takes ~50 of them."""
    n = ordered.size
    last = float(ordered[-1])
    out = []
    for q in qs:
        at = (n - 1) * (np.float64(q) / 100)  # numpy: true_divide(q, 100), then (n-1) * q
        if at >= n - 1:
            out.append(last)
            continue
        lo = math.floor(at)
        a, b = float(ordered[lo]), float(ordered[lo + 1])
        t = float(at - lo)
        diff = b - a
        out.append(b - diff * (1 - t) if t >= 0.5 else a + diff * t)
    return tuple(out)


def latency(series_h: Any, series_bh: Any) -> Latency:
    """p50/p75/p90 of one clock in calendar and business hours (docs/metrics.md "Percentiles").

    NaN entries are PRs whose clock has no stop event: they are left out, and ``count`` says
    how many PRs each percentile is over. Empty input gives ``count=0`` and ``None``s.
    """
    return Latency(calendar=_percentiles(series_h), business=_percentiles(series_bh))


def window(table: pd.DataFrame, now: datetime, days: float,
           columns: Sequence[str] | None = None) -> pd.DataFrame:
    """The PRs merged in the ``days`` before ``now`` (``now - days < merged_at <= now``),
    non-AI bot PRs excluded (docs/metrics.md "Window"); with only ``columns`` when given
    (taking a few columns' rows costs less than all of them)."""
    keep = in_window(table, now, days)
    if columns is None:
        return table[keep]
    rows = np.flatnonzero(keep)
    return frame({c: _rows_of(table[c], rows) for c in columns})


def _rows_of(column: pd.Series, rows: np.ndarray) -> Any:
    """``rows`` of a column, as the array a table stores (numpy, or pandas' own)."""
    if isinstance(column.dtype, np.dtype):
        return column.to_numpy()[rows]
    return column.array[rows]


def in_window(table: pd.DataFrame, now: datetime, days: float) -> np.ndarray:
    """:func:`window`'s rows as a boolean mask (cheaper when only a column or two is read)."""
    keep = within(table["merged_at"], now - timedelta(days=days), now)
    return np.asarray(keep & ~table["bot"].to_numpy(dtype=bool), dtype=bool)


def pr_latency(table: pd.DataFrame, clock: str) -> Latency:
    """The latency of one clock over ``table`` (usually :func:`window`'s result).

    ``clock``: ``pickup`` (ready to first human review), ``approval`` (ready to approval),
    ``merge`` (ready to merge), ``lead`` (first commit to merge), ``first_ai_review``.
    Raises ``KeyError`` for another name.
    """
    column = CLOCKS[clock]
    return latency(table[column + "_h"], table[column + "_bh"])


def latency_by(table: pd.DataFrame, by: str, clock: str) -> tuple[tuple[str, Latency], ...]:
    """:func:`pr_latency` per value of column ``by`` (``repo``, ``size_bucket``,
    ``ai_assisted``...); groups in size order for ``size_bucket``, else sorted by value."""
    if table.empty:
        return ()
    column = CLOCKS[clock]
    keys = table[by].to_numpy(dtype=object).astype(str)
    h = table[column + "_h"].to_numpy(dtype=np.float64)
    bh = table[column + "_bh"].to_numpy(dtype=np.float64)
    names, inverse = np.unique(keys, return_inverse=True)
    groups = {str(name): latency(h[inverse == i], bh[inverse == i]) for i, name in enumerate(names)}
    if by == "size_bucket":
        return tuple((k, groups[k]) for k in SIZE_ORDER if k in groups)
    return tuple(groups.items())


def ai_split(table: pd.DataFrame, clock: str) -> tuple[Latency, Latency]:
    """(AI-assisted PRs, the other PRs) latency of one clock (docs/metrics.md "AI split")."""
    ai = table["ai_assisted"].to_numpy(dtype=bool)
    column = CLOCKS[clock]
    h = table[column + "_h"].to_numpy(dtype=np.float64)
    bh = table[column + "_bh"].to_numpy(dtype=np.float64)
    return latency(h[ai], bh[ai]), latency(h[~ai], bh[~ai])


def request_latency(requests: pd.DataFrame, now: datetime, days: float) -> Latency:
    """Per-request response time over requests answered in the ``days`` before ``now``.

    One value per request event (a team request counts once, answered by the first member's
    review), bot PRs and requests to non-human reviewers left out.
    """
    keep = (
        within(requests["responded_at"], now - timedelta(days=days), now)
        & ~requests["bot"].to_numpy(dtype=bool)
        & (
            requests["via_team"].to_numpy(dtype=bool)
            | (requests["reviewer_kind"].to_numpy(dtype=object) == "human")
        )
    )
    rows = np.flatnonzero(keep)
    _, first = np.unique(requests["request_id"].to_numpy()[rows], return_index=True)
    rows = rows[first]
    return latency(requests["response_h"].to_numpy()[rows], requests["response_bh"].to_numpy()[rows])


def _percentiles(values: Any) -> Percentiles:
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[~np.isnan(arr)]
    if not arr.size:
        return Percentiles()
    p50, p75, p90 = _linear(np.sort(arr), QUANTILES)
    return Percentiles(count=int(arr.size), p50=p50, p75=p75, p90=p90)
