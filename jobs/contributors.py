"""Pure: who and what explains the waiting (docs/metrics.md "The digest's why": the biggest
contributors). Repositories by the working hours their PRs waited, reviewers holding the most
requests, slowest workflows, and the PRs that waited longest with how long and on whom.

Also the stage vocabulary the analysis and its advice share.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:  # annotations only: the web tier imports this module and no pandas
    import pandas as pd

from jobs.model import Contributor, QueueItem, ReviewerLoad, Stage, WorkflowStats

STAGES: Final[tuple[Stage, ...]] = ("coding", "pickup", "review", "merge")
WAITING_STAGES: Final[tuple[Stage, ...]] = ("pickup", "review", "merge")
LARGE_BUCKETS: Final[frozenset[str]] = frozenset({"L", "XL"})
STAGE_NAMES: Final[dict[str, str]] = {
    "coding": "coding",
    "pickup": "pickup wait",
    "review": "review",
    "merge": "merge wait",
}


def waiting_bh(frame: pd.DataFrame) -> pd.Series:
    """Each PR's working hours waiting on others: pickup + review + merge wait."""
    import pandas as pd

    return pd.Series(_waits(frame).sum(axis=1), index=frame.index)


def _waits(frame: pd.DataFrame) -> Any:
    """The waiting stages' business hours of each PR as a (PRs, 3) array, missing and
    negative as 0 (numpy column by column: a DataFrame's ``clip`` cost more than the rest)."""
    import numpy as np

    out = np.column_stack([frame[f"{s}_bh"].to_numpy(dtype=float, na_value=np.nan)
                           for s in WAITING_STAGES]) if len(frame) else np.zeros((0, 3))
    return np.clip(np.nan_to_num(out, nan=0.0), 0.0, None)


def top_repos(week: pd.DataFrame, n: int = 3) -> tuple[Contributor, ...]:
    """Repositories by working hours their merged PRs waited on others this week."""
    if week.empty:
        return ()
    import numpy as np
    import pandas as pd

    # one Series grouped by the repository array: pandas' own sums (compensated), without
    # copying the frame or aggregating by a list of names
    by_repo = pd.Series(_waits(week).sum(axis=1)).groupby(week["repo"].to_numpy(dtype=object),
                                                          sort=False)
    sums, counts = by_repo.sum(), by_repo.count()
    total, count = sums.to_numpy(dtype=float), counts.to_numpy(dtype=np.int64)
    # most hours, then most PRs; ties keep the order of first appearance (a stable sort)
    ranked = [i for i in np.lexsort((-count, -total)).tolist() if total[i] > 0][:n]
    return tuple(
        Contributor(
            name=str(sums.index[i]),
            value=round(float(total[i]), 1),
            unit="h",
            detail=f"{int(count[i])} merged PR{'s' if int(count[i]) != 1 else ''}",
        )
        for i in ranked
    )


def top_reviewers(reviewers: Sequence[ReviewerLoad], n: int = 3) -> tuple[Contributor, ...]:
    """Reviewers holding the most review requests (direct, via team and re-requests)."""
    ranked = sorted(
        reviewers,
        key=lambda r: (-(r.requests_direct + r.requests_via_team + r.re_requests), -r.pending, r.login),
    )
    out = []
    for r in ranked[:n]:
        total = r.requests_direct + r.requests_via_team + r.re_requests
        if total <= 0:
            continue
        # focus-hours count every interruption: the requests and the context switches
        switches = (f" and {r.context_switches} context switch{'es' if r.context_switches != 1 else ''}"
                    if r.context_switches else "")
        out.append(
            Contributor(name=r.login, value=float(total), unit="requests",
                        detail=f"{r.pending} pending now; {r.focus_hours:.1f} focus-h lost to these"
                               f"{switches}")
        )
    return tuple(out)


def slowest_workflows(workflows: Sequence[WorkflowStats], n: int = 3) -> tuple[Contributor, ...]:
    """Workflows by p90 queue + run time."""
    ranked = sorted(
        (w for w in workflows if w.run_p90_min is not None),
        key=lambda w: -((w.run_p90_min or 0.0) + (w.queue_p90_min or 0.0)),
    )
    return tuple(
        Contributor(
            name=w.name,
            value=round((w.run_p90_min or 0.0) + (w.queue_p90_min or 0.0), 1),
            unit="min",
            detail=workflow_detail(w),
        )
        for w in ranked[:n]
    )


def workflow_detail(w: WorkflowStats) -> str:
    parts = [f"p90 {(w.queue_p90_min or 0.0):.0f} min queued + {(w.run_p90_min or 0.0):.0f} min running"]
    if w.failure_rate is not None:
        parts.append(f"{w.failure_rate:.0%} failed")
    if w.rerun_rate is not None:
        parts.append(f"{w.rerun_rate:.0%} rerun")
    return ", ".join(parts)


def longest_waits(
    week: pd.DataFrame, queue_items: Sequence[QueueItem], n: int = 5
) -> tuple[Contributor, ...]:
    """The PRs that waited longest, in working hours: open ones now, and this week's merged.

    An open PR waits on whoever's turn it is; a merged one on whoever held its longest
    waiting stage (reviewers for pickup and review, the author/CI for merge wait).
    """
    rows: list[Contributor] = []
    values = [round(item.age_business_hours, 1) for item in queue_items]
    if len(values) > n:  # only items that can make the first n (ties at the cut kept)
        cut = sorted(values, reverse=True)[n - 1]
        queue_items = [item for item, v in zip(queue_items, values, strict=True) if v >= cut]
    for item in queue_items:
        if item.turn == "approved":
            who = item.author or "the author"
            detail = f"open, approved, waiting to merge ({who})"
        else:
            who = ", ".join(item.waiting_on) or item.turn
            detail = f"open, waiting on {who}"
        rows.append(Contributor(name=f"{item.repo}#{item.number}", value=round(item.age_business_hours, 1),
                                unit="h", detail=detail, url=item.url))
    if not week.empty:
        import numpy as np

        waits = _waits(week)
        total = waits.sum(axis=1)
        longest = waits.argmax(axis=1)  # the first of equal stages, as idxmax
        columns = {c: week[c].to_numpy() for c in ("repo", "number", "url", "author", "first_reviewer")
                   if c in week}
        for pos in np.argsort(-total, kind="stable")[:n].tolist():
            hours = float(total[pos])
            if hours <= 0:
                continue
            row = {c: v[pos] for c, v in columns.items()}  # not week.iloc: a Series per row
            stage = WAITING_STAGES[int(longest[pos])]
            detail = f"merged; mostly {STAGE_NAMES[stage]}"
            if stage == "pickup" and "first_reviewer" in week and isinstance(row["first_reviewer"], str):
                detail += f", first reviewed by {row['first_reviewer']}"
            elif stage == "merge" and "author" in week and isinstance(row["author"], str):
                detail += f", on {row['author']}"
            url = row["url"] if "url" in week and isinstance(row["url"], str) else None
            rows.append(Contributor(name=f"{row['repo']}#{int(row['number'])}", value=round(hours, 1),
                                    unit="h", detail=detail, url=url))
    rows.sort(key=lambda c: (-c.value, c.name))
    return tuple(rows[:n])
