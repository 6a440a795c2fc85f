"""Pure: the "why" behind a team's numbers (docs/metrics.md "The digest's why").

From the per-PR stage table, the flow days, the queue samples and the reviewer and CI
aggregates, :func:`analyse` says where the time from first commit to merge accumulated this
week compared with the four weeks before, whether the bottleneck moved, what halving coding
time would buy (Amdahl), whether the queue grows because arrivals outrun completions
(Little's law), who and what contributes most, and one suggested action chosen by explicit
rules from those numbers. Nothing here reads a clock: ``now`` is an argument.

Stage shares are business hours (what is fair to the people waited on) of the whole lead time,
coding included, so they add up to 1 and show coding shrinking as waiting grows. The dominant
stage (the bottleneck) is the largest *waiting* stage: pickup, review or merge wait, the
handoffs; coding is the author's own work and is named only by the ``coding_bound`` action,
when it is most of the lead time. The Amdahl projection reads the same business hours of the
same PRs (this week's merged) as the shares, so "coding is 20% of lead time" always sits next
to "2x faster coding would cut it by 10%", never by more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from jobs.advice import DEFAULT_RULES, Rules, choose_action
from jobs.metrics._columns import NAT_NS, frame, instants_ns, ns
from jobs.contributors import (
    LARGE_BUCKETS,
    STAGE_NAMES,
    STAGES,
    WAITING_STAGES,
    longest_waits,
    slowest_workflows,
    top_repos,
    top_reviewers,
    waiting_bh,
)
from jobs.model import (
    Analysis,
    FlowDay,
    Latency,
    QueueItem,
    QueueSample,
    ReviewerLoad,
    Stage,
    StageShare,
    WorkflowStats,
)

__all__ = [
    "AI_GAP_FACTOR",
    "AI_GAP_MIN_PRS",
    "DEFAULT_RULES",
    "AIGap",
    "Rules",
    "ai_gaps",
    "amdahl_drop_pct",
    "analyse",
    "choose_action",
    "flow_rates",
    "headline",
    "large_prs_dominate",
    "queue_growing",
    "queue_slope",
    "stage_shares",
]

WEEK: Final = timedelta(days=7)
BEFORE: Final = timedelta(days=28)
AI_GAP_MIN_PRS: Final = 5  # PRs each side needs before the AI split explains anything
AI_GAP_FACTOR: Final = 1.5  # one side's p50 at least this many times the other's: material


@dataclass(frozen=True, slots=True)
class AIGap:
    """A material difference between AI-assisted and other PRs on one latency metric
    (``pickup``, ``approval``, ``merge`` or ``lead``): p50 in working hours, and PR counts."""

    metric: str
    ai_p50: float
    other_p50: float
    ai_count: int
    other_count: int

    @property
    def ratio(self) -> float:
        """AI-assisted p50 over the others' (above 1: AI-assisted PRs waited longer)."""
        return self.ai_p50 / self.other_p50


def ai_gaps(
    split: Sequence[tuple[str, Latency, Latency]],
    *,
    min_prs: int = AI_GAP_MIN_PRS,
    factor: float = AI_GAP_FACTOR,
) -> tuple[AIGap, ...]:
    """The latency metrics on which AI-assisted and other PRs differ materially
    (docs/metrics.md "AI split"), largest difference first.

    ``split`` is ``TeamSnapshot.ai_split()``: (metric, AI-assisted, other). A metric counts
    when both sides have at least ``min_prs`` PRs with that clock and a positive p50 in
    working hours, and one p50 is at least ``factor`` times the other. Ties keep ``split``'s
    order.
    """
    out: list[AIGap] = []
    for metric, ai, other in split:
        a, o = ai.business.p50, other.business.p50
        if a is None or o is None or a <= 0 or o <= 0:
            continue
        if min(ai.business.count, other.business.count) < min_prs:
            continue
        if max(a / o, o / a) >= factor:
            out.append(AIGap(metric, a, o, ai.business.count, other.business.count))
    out.sort(key=lambda g: -max(g.ratio, 1 / g.ratio))
    return tuple(out)


def analyse(
    table: pd.DataFrame,
    *,
    now: datetime,
    flow: Sequence[FlowDay] = (),
    samples: Sequence[QueueSample] = (),
    reviewers: Sequence[ReviewerLoad] = (),
    workflows: Sequence[WorkflowStats] = (),
    load_concentration: float | None = None,
    queue_items: Sequence[QueueItem] = (),
    ci_wait_hours: float = 0.0,
    tz: ZoneInfo | None = None,
    rules: Rules = DEFAULT_RULES,
) -> Analysis:
    """The team's "why" at ``now`` (docs/metrics.md "The digest's why").

    ``table`` has one row per PR (``jobs.metrics.pr_table``) and is read for: ``repo``,
    ``number``, ``url``, ``merged_at`` (UTC, NaT when unmerged), ``bot`` (non-AI bot PRs,
    dropped here), ``size_bucket``, and the stage columns ``{stage}_bh`` (business hours) and
    ``{stage}_h`` (calendar hours) for ``coding``, ``pickup``, ``review``, ``merge``; an
    optional ``first_reviewer`` names who a pickup was waiting on. "This week" is the 7 days
    up to ``now``, "before" the 28 days before that; a PR belongs to the period it merged in.
    ``flow`` days are team-local dates (``tz``, default UTC). Returns an :class:`Analysis`;
    empty inputs give an analysis with no dominant stage and no action, never an error.
    """
    week, hours_week, hours_before, merged_before = _periods(table, now=now)
    shares = stage_shares(hours_week, hours_before)
    dominant = _dominant(hours_week)
    previous = _dominant(hours_before)
    shifted = dominant is not None and previous is not None and dominant != previous

    arrivals, completions = flow_rates(flow, now=now, tz=tz)
    slope = queue_slope(samples, now=now)
    growing = queue_growing(arrivals, completions, slope, rules=rules)

    large = large_prs_dominate(week, rules=rules)
    repos = top_repos(week)
    people = top_reviewers(reviewers)
    slowest = slowest_workflows(workflows)
    longest = longest_waits(week, queue_items)
    action = choose_action(
        dominant=dominant,
        shares=shares,
        load_concentration=load_concentration,
        arrivals=arrivals,
        completions=completions,
        growing=growing,
        large=large,
        week=week,
        reviewers=people,
        workflows=workflows,
        ci_wait_hours=ci_wait_hours,
        merge_hours=hours_week["merge"],
        loads=reviewers,
        queue_items=queue_items,
        rules=rules,
    )
    result = Analysis(
        stage_shares=shares,
        dominant_stage=dominant,
        previous_dominant_stage=previous,
        shifted=shifted,
        amdahl_drop_pct=amdahl_drop_pct(week),
        arrivals_per_day=round(arrivals, 2),
        completions_per_day=round(completions, 2),
        queue_growing=growing,
        top_repos=repos,
        top_reviewers=people,
        slowest_workflows=slowest,
        longest_waits=longest,
        large_prs_dominate=large,
        action=action,
        queue_trend_per_day=None if slope is None else round(slope, 2),
        merged_this_week=len(week),
        merged_before=merged_before,
    )
    return replace(result, headline=headline(result))


# ---------------------------------------------------------------------------- pieces


def stage_shares(
    hours_week: dict[Stage, float], hours_before: dict[Stage, float]
) -> tuple[StageShare, ...]:
    """Each stage's share of the summed stage hours, this week and the four weeks before.

    Shares are 0 for a period with no hours, so an empty week never divides by zero.
    """
    total_w = sum(hours_week.values())
    total_b = sum(hours_before.values())
    return tuple(
        StageShare(
            stage=s,
            hours_this_week=round(hours_week[s], 2),
            share_this_week=round(hours_week[s] / total_w, 4) if total_w > 0 else 0.0,
            share_before=round(hours_before[s] / total_b, 4) if total_b > 0 else 0.0,
        )
        for s in STAGES
    )


def amdahl_drop_pct(merged: pd.DataFrame, *, speedup: float = 2.0) -> float | None:
    """How much (%) the median lead time of ``merged`` would drop if coding took 1/``speedup``.

    docs/metrics.md "The digest's why", Amdahl projection: per PR, the lead time (the four stages,
    first commit to merge) with its coding stage divided by ``speedup``; the drop compares the
    medians before and after. Business hours (``{stage}_bh``), the hours the stage shares are
    summed in, so the two read in one unit. It speaks for the typical PR: it can differ from
    half the hour-weighted coding share (long PRs weigh more in the shares). None when no PR
    has a lead time.
    """
    if merged.empty:
        return None
    # numpy, column by column: a DataFrame's clip costs more than the whole projection
    stages = np.column_stack([_hours(merged[f"{s}_bh"]) for s in STAGES])
    lead = stages.sum(axis=1)
    before = float(np.median(lead))
    if before <= 0:
        return None
    after = float(np.median(lead - stages[:, 0] * (1 - 1 / speedup)))
    return round(100.0 * (before - after) / before, 1)


def flow_rates(
    flow: Sequence[FlowDay], *, now: datetime, tz: ZoneInfo | None = None, days: int = 7
) -> tuple[float, float]:
    """Arrivals and completions per day over the ``days`` team-local days ending today."""
    today = now.astimezone(tz or ZoneInfo("UTC")).date()
    first = today - timedelta(days=days - 1)
    inside = [d for d in flow if first <= d.day <= today]
    arrivals = sum(d.arrivals for d in inside) / days
    completions = sum(d.completions for d in inside) / days
    return arrivals, completions


def queue_slope(samples: Sequence[QueueSample], *, now: datetime, days: int = 7) -> float | None:
    """Least-squares slope of the sampled queue length over the last ``days``, PRs per day.

    None with fewer than two samples or when they all share one timestamp.
    """
    recent = [s for s in samples if now - timedelta(days=days) <= s.at <= now]
    if len(recent) < 2:
        return None
    x = np.array([(s.at - now).total_seconds() / 86400 for s in recent])
    y = np.array([s.length for s in recent], dtype=float)
    if np.ptp(x) == 0:
        return None
    slope = np.polyfit(x, y, 1)[0]
    return float(slope)


def queue_growing(
    arrivals: float, completions: float, slope: float | None, *, rules: Rules = DEFAULT_RULES
) -> bool:
    """Little's law check: the queue grows *because* arrivals outrun completions.

    Arrivals must exceed completions by the margin; when queue samples exist their trend must
    agree (the sampled length rises), so a blip in arrivals alone does not count.
    """
    outrun = arrivals > 0 and arrivals >= completions * rules.arrivals_margin and arrivals > completions
    if slope is None:
        return outrun
    return outrun and slope >= rules.min_growth_per_day


def large_prs_dominate(week: pd.DataFrame, *, rules: Rules = DEFAULT_RULES) -> bool:
    """L/XL PRs hold at least half of this week's waiting hours (and there are a few)."""
    if week.empty or "size_bucket" not in week:
        return False
    waiting = waiting_bh(week)
    total = float(waiting.sum())
    is_large = week["size_bucket"].isin(LARGE_BUCKETS)
    if total <= 0 or int(is_large.sum()) < rules.large_min_prs:
        return False
    return float(waiting[is_large].sum()) / total >= rules.large_waiting_share


def headline(a: Analysis) -> str:
    """One sentence naming where the waiting accumulated this week and how that moved.

    The one headline: ``/flow status``, the report and the weekly digest all show it. Shares
    are of lead time in business hours; "before" is the four weeks before this one.
    """
    growth = "; the queue is growing" if a.queue_growing else ""
    shares = {s.stage: s for s in a.stage_shares}
    share = shares.get(a.dominant_stage) if a.dominant_stage else None
    if share is None or not share.share_this_week:
        tail = " The queue is growing: more PRs arrive than get reviewed." if a.queue_growing else ""
        return f"No PRs were merged this week, so there is no stage breakdown yet.{tail}"
    name = STAGE_NAMES[share.stage]
    now_pct, was_pct = f"{share.share_this_week:.0%}", f"{share.share_before:.0%}"
    where = f", most of it in {a.top_repos[0].name}" if a.top_repos else ""
    of_week = f"{now_pct} of this week's lead time"
    if a.previous_dominant_stage is None:
        return f"{name.capitalize()} holds the most waiting: {of_week}{where}{growth}."
    if a.shifted and a.previous_dominant_stage != share.stage:
        moved = "up from" if share.share_this_week >= share.share_before else "down from"
        led = STAGE_NAMES[a.previous_dominant_stage]
        return (f"Waiting moved to {name}: {of_week}, {moved} {was_pct} ({led} held the most"
                f" in the four weeks before){where}{growth}.")
    if share.share_this_week - share.share_before >= 0.05:
        return f"Waiting piled up in {name}: {of_week}, up from {was_pct}{where}{growth}."
    if share.share_before - share.share_this_week >= 0.05:
        return (f"{name.capitalize()} still holds the most waiting: {of_week}, down from"
                f" {was_pct}{where}{growth}.")
    return (f"{name.capitalize()} holds the most waiting again: {of_week}, {was_pct} in the"
            f" four weeks before{where}{growth}.")


# ---------------------------------------------------------------------------- helpers


def _periods(table: pd.DataFrame, *, now: datetime,
             ) -> tuple[pd.DataFrame, dict[Stage, float], dict[Stage, float], int]:
    """This week's merged, non-bot PRs (a PR belongs to the period it merged in), with the
    columns the analysis reads and every stage column present (missing stages and hours as
    0); the summed stage hours of this week and of the four weeks before; how many merged in
    the four weeks before.

    Selected on the merge instants as integers and built from the selected rows of those
    columns only: filtering the whole table, then each period of it, cost more than the
    analysis itself (the weeks before need only their sums: no frame)."""
    if table.empty or "merged_at" not in table:
        empty = _empty_frame()
        return empty, _stage_hours(empty), _stage_hours(empty), 0
    at = instants_ns(table["merged_at"])
    keep = at != NAT_NS
    if "bot" in table:
        bot = table["bot"]
        keep &= ~(bot.to_numpy() if bot.dtype == bool else bot.fillna(False).astype(bool).to_numpy())
    wanted = [c for c in table.columns if c in _READ]
    columns = {c: table[c].to_numpy() for c in wanted if c != "merged_at"}
    for s in STAGES:
        for suffix in ("_h", "_bh"):
            col = f"{s}{suffix}"
            if col in columns:
                values = table[col].to_numpy(dtype=float, na_value=np.nan)
                columns[col] = np.where(np.isnan(values), 0.0, values)
            else:
                columns[col] = np.zeros(len(table))
    now_ns, week_ns = ns(now), ns(now - WEEK)
    this_week = np.flatnonzero(keep & (at > week_ns) & (at <= now_ns))
    before = np.flatnonzero(keep & (at > ns(now - WEEK - BEFORE)) & (at <= week_ns))
    data: dict[str, object] = {c: v[this_week] for c, v in columns.items()}
    data["merged_at"] = pd.DatetimeIndex(at[this_week].view("datetime64[ns]")).tz_localize("UTC")
    week = frame({c: data[c] for c in [*wanted, *data] if c in data})
    return (week, {s: float(_hours(columns[f"{s}_bh"][this_week]).sum()) for s in STAGES},
            {s: float(_hours(columns[f"{s}_bh"][before]).sum()) for s in STAGES}, int(before.size))


_READ: Final = frozenset(
    {"repo", "number", "url", "author", "merged_at", "size_bucket", "first_reviewer"}
    | {f"{s}{suffix}" for s in STAGES for suffix in ("_h", "_bh")}
)


def _empty_frame() -> pd.DataFrame:
    cols = {f"{s}{suffix}": pd.Series(dtype=float) for s in STAGES for suffix in ("_h", "_bh")}
    return pd.DataFrame(
        {
            "repo": pd.Series(dtype=object),
            "number": pd.Series(dtype=int),
            "url": pd.Series(dtype=object),
            "merged_at": pd.Series(dtype="datetime64[ns, UTC]"),
            "size_bucket": pd.Series(dtype=object),
            **cols,
        }
    )


def _stage_hours(frame: pd.DataFrame) -> dict[Stage, float]:
    return {s: float(_hours(frame[f"{s}_bh"]).sum()) for s in STAGES}


def _hours(column: pd.Series | np.ndarray) -> np.ndarray:
    """A column of hours as floats, missing as 0 and negatives (none expected) as 0."""
    values = (column if isinstance(column, np.ndarray)
              else column.to_numpy(dtype=float, na_value=np.nan))
    out: np.ndarray = np.clip(np.nan_to_num(values, nan=0.0), 0.0, None)
    return out


def _dominant(hours: dict[Stage, float]) -> Stage | None:
    """The largest waiting stage (pickup, review, merge wait); None when nothing waited."""
    if sum(hours[s] for s in WAITING_STAGES) <= 0:
        return None
    return max(WAITING_STAGES, key=lambda s: hours[s])  # ties: the earlier stage in the flow
