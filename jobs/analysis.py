"""Pure: the "why" behind a team's numbers (METRICS.md "The digest's why").

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
when it is most of the lead time. The Amdahl figure is calendar hours (what the customer
waits).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from jobs.model import (
    Action,
    Analysis,
    Contributor,
    FlowDay,
    QueueItem,
    QueueSample,
    ReviewerLoad,
    Stage,
    StageShare,
    WorkflowStats,
)

STAGES: Final[tuple[Stage, ...]] = ("coding", "pickup", "review", "merge")
WAITING_STAGES: Final[tuple[Stage, ...]] = ("pickup", "review", "merge")
LARGE_BUCKETS: Final[frozenset[str]] = frozenset({"L", "XL"})
STAGE_WORDS: Final[dict[str, str]] = {
    "coding": "coding",
    "pickup": "pickup wait (ready to first human review)",
    "review": "review (first review to approval)",
    "merge": "merge wait (approval to merge)",
}
_SHORT: Final[dict[str, str]] = {
    "coding": "coding",
    "pickup": "pickup wait",
    "review": "review",
    "merge": "merge wait",
}
WEEK: Final = timedelta(days=7)
BEFORE: Final = timedelta(days=28)


@dataclass(frozen=True, slots=True)
class Rules:
    """The levels the action rules compare against. Defaults are deliberately plain."""

    concentration_high: float = 0.6  # top two hold this share of requests (fewer than 3 known)
    concentration_floor: float = 0.5  # ... with 3+ reviewers: at least this share, and
    concentration_ratio: float = 1.25  # ... at least this multiple of an even split (2/n)
    pending_share: float = 0.5  # one reviewer is asked on this share of reviewer-turn PRs
    pending_min: int = 4  # ... of at least this many
    coding_majority: float = 0.5  # coding is this share of lead time: nothing downstream to fix
    large_waiting_share: float = 0.5  # L/XL PRs hold this share of waiting hours or more
    large_min_prs: int = 2  # ... and at least this many L/XL PRs merged this week
    arrivals_margin: float = 1.1  # arrivals exceed completions by 10% or more
    min_growth_per_day: float = 0.2  # sampled queue grows at least this many PRs a day
    ci_p90_slow_min: float = 20.0  # a workflow this slow at p90 is worth fixing
    ci_failure_high: float = 0.15
    ci_rerun_high: float = 0.1
    ci_share_of_merge: float = 0.5  # CI wait is this share of merge wait or more


DEFAULT_RULES: Final = Rules()


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
    """The team's "why" at ``now`` (METRICS.md "The digest's why").

    ``table`` has one row per PR (``jobs.metrics.pr_table``) and is read for: ``repo``,
    ``number``, ``url``, ``merged_at`` (UTC, NaT when unmerged), ``bot`` (non-AI bot PRs,
    dropped here), ``size_bucket``, and the stage columns ``{stage}_bh`` (business hours) and
    ``{stage}_h`` (calendar hours) for ``coding``, ``pickup``, ``review``, ``merge``; an
    optional ``first_reviewer`` names who a pickup was waiting on. "This week" is the 7 days
    up to ``now``, "before" the 28 days before that; a PR belongs to the period it merged in.
    ``flow`` days are team-local dates (``tz``, default UTC). Returns an :class:`Analysis`;
    empty inputs give an analysis with no dominant stage and no action, never an error.
    """
    merged = _merged(table)
    week = merged[(merged["merged_at"] > now - WEEK) & (merged["merged_at"] <= now)]
    before = merged[(merged["merged_at"] > now - WEEK - BEFORE) & (merged["merged_at"] <= now - WEEK)]

    hours_week = _stage_hours(week)
    hours_before = _stage_hours(before)
    shares = stage_shares(hours_week, hours_before)
    dominant = _dominant(hours_week)
    previous = _dominant(hours_before)
    shifted = dominant is not None and previous is not None and dominant != previous

    arrivals, completions = flow_rates(flow, now=now, tz=tz)
    slope = queue_slope(samples, now=now)
    growing = queue_growing(arrivals, completions, slope, rules=rules)

    large = large_prs_dominate(week, rules=rules)
    top_repos = _top_repos(week)
    top_reviewers = _top_reviewers(reviewers)
    slowest = _slowest_workflows(workflows)
    longest = _longest_waits(week, queue_items)
    action = choose_action(
        dominant=dominant,
        shares=shares,
        load_concentration=load_concentration,
        arrivals=arrivals,
        completions=completions,
        growing=growing,
        large=large,
        week=week,
        reviewers=top_reviewers,
        workflows=workflows,
        ci_wait_hours=ci_wait_hours,
        merge_hours=hours_week["merge"],
        loads=reviewers,
        queue_items=queue_items,
        rules=rules,
    )
    return Analysis(
        stage_shares=shares,
        dominant_stage=dominant,
        previous_dominant_stage=previous,
        shifted=shifted,
        amdahl_drop_pct=amdahl_drop_pct(week if len(week) else before),
        arrivals_per_day=round(arrivals, 2),
        completions_per_day=round(completions, 2),
        queue_growing=growing,
        top_repos=top_repos,
        top_reviewers=top_reviewers,
        slowest_workflows=slowest,
        longest_waits=longest,
        large_prs_dominate=large,
        action=action,
        headline=headline(dominant, previous, shares, top_repos, len(week), growing),
        queue_trend_per_day=None if slope is None else round(slope, 2),
        merged_this_week=len(week),
        merged_before=len(before),
    )


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
    """How much the median lead time would drop (%) if every PR's coding took 1/``speedup``.

    Lead time per PR is the sum of its four calendar stages; each PR's coding stage is
    divided by ``speedup`` and the median recomputed. None when no PR has a lead time.
    """
    if merged.empty:
        return None
    stages = merged[[f"{s}_h" for s in STAGES]].astype(float).fillna(0.0)
    lead = stages.sum(axis=1)
    faster = lead - stages["coding_h"] * (1 - 1 / speedup)
    base = float(np.median(lead.to_numpy()))
    if base <= 0:
        return None
    return round(100.0 * (base - float(np.median(faster.to_numpy()))) / base, 1)


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
    waiting = _waiting_bh(week)
    total = float(waiting.sum())
    is_large = week["size_bucket"].isin(LARGE_BUCKETS)
    if total <= 0 or int(is_large.sum()) < rules.large_min_prs:
        return False
    return float(waiting[is_large].sum()) / total >= rules.large_waiting_share


def choose_action(
    *,
    dominant: Stage | None,
    shares: Sequence[StageShare],
    load_concentration: float | None,
    arrivals: float,
    completions: float,
    growing: bool,
    large: bool,
    week: pd.DataFrame,
    reviewers: Sequence[Contributor],
    workflows: Sequence[WorkflowStats],
    ci_wait_hours: float,
    merge_hours: float,
    loads: Sequence[ReviewerLoad] = (),
    queue_items: Sequence[QueueItem] = (),
    rules: Rules = DEFAULT_RULES,
) -> Action | None:
    """The one suggested action; the first rule that matches wins.

    0. coding is most of the lead time -> ``coding_bound`` (nothing downstream to fix);
    1. large PRs hold most waiting while pickup or review dominates -> ``split_prs``;
    2. pickup dominates and the load is concentrated (two reviewers hold far more than an
       even share of requests, or one is asked on most PRs waiting for a reviewer)
       -> ``spread_reviews``;
    3. pickup dominates and arrivals outrun completions -> ``limit_wip``;
    4. pickup dominates otherwise -> ``review_slots`` (daily review time);
    5. review dominates -> ``review_rounds``;
    6. merge wait dominates and CI is most of it, or a workflow is slow or flaky -> ``fix_ci``;
    7. merge wait dominates otherwise -> ``auto_merge``.
    None when no PR merged this week.
    """
    if dominant is None:
        return None
    by_stage = {s.stage: s for s in shares}
    coding = by_stage["coding"]
    if coding.share_this_week >= rules.coding_majority:
        return Action(
            code="coding_bound",
            text="No handoff to fix this week: most of the lead time is the author's own coding.",
            because=f"coding is {coding.share_this_week:.0%} of this week's lead time; "
            f"the largest wait, {_SHORT[dominant]}, is {by_stage[dominant].share_this_week:.0%}",
        )
    share = by_stage[dominant]
    pct = f"{_share_words(share)} of this week's lead time"
    if large and dominant in ("pickup", "review"):
        n_large = int(week["size_bucket"].isin(LARGE_BUCKETS).sum())
        waiting = _waiting_bh(week)
        large_share = float(waiting[week["size_bucket"].isin(LARGE_BUCKETS)].sum()) / float(waiting.sum())
        return Action(
            code="split_prs",
            text="Split large PRs: aim for under 400 changed lines so reviewers can pick them up between tasks.",
            because=f"{n_large} L/XL PRs held {large_share:.0%} of this week's waiting hours "
            f"and {_SHORT[dominant]} is {pct}",
        )
    if dominant == "pickup":
        why = _concentration(load_concentration, reviewers, loads, queue_items, rules)
        if why is not None:
            who, reason = why
            return Action(
                code="spread_reviews",
                text=f"Spread reviews: rotate a reviewer of the day so requests stop piling on {who}.",
                because=f"pickup wait is {pct} and {reason}",
            )
        if growing or (arrivals > completions * rules.arrivals_margin and arrivals > completions):
            return Action(
                code="limit_wip",
                text="Cap work in progress: finish reviews before opening new PRs, and keep PRs small.",
                because=f"pickup wait is {pct} and {arrivals:.1f} PRs arrive a day "
                f"against {completions:.1f} completed",
            )
        return Action(
            code="review_slots",
            text="Set two daily review slots so ready PRs get a first look within half a day.",
            because=f"pickup wait is {pct}, with review load spread evenly",
        )
    if dominant == "review":
        return Action(
            code="review_rounds",
            text="Cut review rounds: agree what blocks a merge, and pair on PRs that bounce twice.",
            because=f"review (first review to approval) is {pct}",
        )
    if dominant == "merge":
        slow = _worst_workflow(workflows, rules)
        ci_heavy = merge_hours > 0 and ci_wait_hours >= rules.ci_share_of_merge * merge_hours
        if slow is not None or ci_heavy:
            name = slow.name if slow is not None else (workflows[0].name if workflows else "CI")
            detail = _workflow_detail(slow) if slow is not None else ""
            because = f"merge wait is {pct}"
            if ci_heavy:
                because += f" and PRs waited {ci_wait_hours:.0f} h on CI"
            if detail:
                because += f"; {name}: {detail}"
            return Action(
                code="fix_ci",
                text=f"Fix the slowest, flakiest workflow first: {name}.",
                because=because,
            )
        return Action(
            code="auto_merge",
            text="Turn on auto-merge (or a merge queue) so approved PRs merge without a second wait.",
            because=f"merge wait (approval to merge) is {pct} while CI is not the cause",
        )
    return None  # unreachable: the dominant stage is a waiting stage


def headline(
    dominant: Stage | None,
    previous: Stage | None,
    shares: Sequence[StageShare],
    top_repos: Sequence[Contributor],
    merged_this_week: int,
    growing: bool,
) -> str:
    """One sentence naming where the waiting accumulated this week."""
    if dominant is None:
        tail = " The queue is growing: more PRs arrive than get reviewed." if growing else ""
        return f"No PR merged this week, so there is no stage breakdown yet.{tail}".strip()
    share = {s.stage: s for s in shares}[dominant]
    where = f", most of it in {top_repos[0].name}" if top_repos else ""
    if previous is not None and previous != dominant:
        moved = f"; up from {share.share_before:.0%} when {_SHORT[previous]} was the largest wait"
    elif previous is not None:
        moved = f"; {share.share_before:.0%} in the four weeks before"
    else:
        moved = ""
    growth = "; the queue is growing" if growing else ""
    prs = "PR" if merged_this_week == 1 else "PRs"
    return (
        f"{_SHORT[dominant].capitalize()} held {share.share_this_week:.0%} of the lead time of "
        f"the {merged_this_week} {prs} merged this week ({share.hours_this_week:.0f} working h"
        f"{moved}){where}{growth}."
    )


# ---------------------------------------------------------------------------- helpers


def _merged(table: pd.DataFrame) -> pd.DataFrame:
    """Merged, non-bot PRs with every stage column present (missing stages as 0)."""
    if table.empty or "merged_at" not in table:
        return _empty_frame()
    keep = table["merged_at"].notna()
    if "bot" in table:
        keep &= ~table["bot"].fillna(False).astype(bool)
    wanted = [c for c in table.columns if c in _READ]
    out = table.loc[keep, wanted].copy()
    for s in STAGES:
        for suffix in ("_h", "_bh"):
            col = f"{s}{suffix}"
            out[col] = out[col].astype(float).fillna(0.0) if col in out else 0.0
    out["merged_at"] = pd.to_datetime(out["merged_at"], utc=True)
    return out


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
    return {s: float(frame[f"{s}_bh"].clip(lower=0).sum()) for s in STAGES}


def _dominant(hours: dict[Stage, float]) -> Stage | None:
    """The largest waiting stage (pickup, review, merge wait); None when nothing waited."""
    if sum(hours[s] for s in WAITING_STAGES) <= 0:
        return None
    return max(WAITING_STAGES, key=lambda s: hours[s])  # ties: the earlier stage in the flow


def _concentration(
    conc: float | None,
    top: Sequence[Contributor],
    loads: Sequence[ReviewerLoad],
    queue_items: Sequence[QueueItem],
    rules: Rules,
) -> tuple[str, str] | None:
    """(who, why) when review load is concentrated enough to act on, else None.

    Concentrated: the top two reviewers' share of requests is at least ``concentration_high``
    (fewer than three reviewers known) or, with three or more, at least the floor and
    ``concentration_ratio`` times an even split; or one reviewer is named on at least
    ``pending_share`` of the PRs now waiting for a reviewer.
    """
    n = len(loads)
    if conc is not None:
        level = (
            rules.concentration_high
            if n < 3
            else max(rules.concentration_floor, rules.concentration_ratio * 2 / n)
        )
        if conc >= level:
            total = sum(r.requests_direct + r.requests_via_team + r.re_requests for r in loads)
            if len(top) >= 2 and top[0].value >= 1.5 * top[1].value and total:
                first = top[0]
                return first.name, (
                    f"the top two reviewers hold {conc:.0%} of review requests, "
                    f"{first.name} alone {first.value / total:.0%}"
                )
            who = " and ".join(c.name for c in top[:2]) or "two reviewers"
            return who, f"{who} hold {conc:.0%} of review requests"
    waiting = [i for i in queue_items if i.turn == "reviewer"]
    if len(waiting) >= rules.pending_min:
        named: dict[str, int] = {}
        for item in waiting:
            for login in set(item.waiting_on):
                if not login.startswith("team:"):
                    named[login] = named.get(login, 0) + 1
        if named:
            login, count = max(sorted(named.items()), key=lambda kv: kv[1])
            if count >= rules.pending_share * len(waiting):
                return login, f"{login} is waited on by {count} of the {len(waiting)} PRs waiting for a reviewer"
    return None


def _waiting_bh(frame: pd.DataFrame) -> pd.Series:
    return frame[[f"{s}_bh" for s in WAITING_STAGES]].clip(lower=0).sum(axis=1)


def _share_words(share: StageShare) -> str:
    return f"{share.share_this_week:.0%}"


def _top_repos(week: pd.DataFrame, n: int = 3) -> tuple[Contributor, ...]:
    """Repositories by working hours their merged PRs waited on others this week."""
    if week.empty:
        return ()
    frame = week.assign(_wait=_waiting_bh(week))
    grouped = frame.groupby("repo", sort=False)["_wait"].agg(["sum", "count"])
    grouped = grouped[grouped["sum"] > 0].sort_values(["sum", "count"], ascending=False).head(n)
    return tuple(
        Contributor(
            name=str(repo),
            value=round(float(row["sum"]), 1),
            unit="h",
            detail=f"{int(row['count'])} merged PR{'s' if int(row['count']) != 1 else ''}",
        )
        for repo, row in grouped.iterrows()
    )


def _top_reviewers(reviewers: Sequence[ReviewerLoad], n: int = 3) -> tuple[Contributor, ...]:
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
        out.append(
            Contributor(name=r.login, value=float(total), unit="requests",
                        detail=f"{r.pending} pending now, {r.focus_hours:.1f} focus-h lost")
        )
    return tuple(out)


def _slowest_workflows(workflows: Sequence[WorkflowStats], n: int = 3) -> tuple[Contributor, ...]:
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
            detail=_workflow_detail(w),
        )
        for w in ranked[:n]
    )


def _workflow_detail(w: WorkflowStats) -> str:
    parts = [f"p90 {(w.queue_p90_min or 0.0):.0f} min queued + {(w.run_p90_min or 0.0):.0f} min running"]
    if w.failure_rate is not None:
        parts.append(f"{w.failure_rate:.0%} failed")
    if w.rerun_rate is not None:
        parts.append(f"{w.rerun_rate:.0%} rerun")
    return ", ".join(parts)


def _worst_workflow(workflows: Sequence[WorkflowStats], rules: Rules) -> WorkflowStats | None:
    """The slow or flaky workflow most worth fixing, or None when all are healthy."""
    bad = [
        w
        for w in workflows
        if (w.run_p90_min or 0.0) + (w.queue_p90_min or 0.0) >= rules.ci_p90_slow_min
        or (w.failure_rate or 0.0) >= rules.ci_failure_high
        or (w.rerun_rate or 0.0) >= rules.ci_rerun_high
    ]
    if not bad:
        return None
    return max(
        bad,
        key=lambda w: ((w.run_p90_min or 0.0) + (w.queue_p90_min or 0.0))
        * (1 + (w.failure_rate or 0.0) + (w.rerun_rate or 0.0)),
    )


def _longest_waits(
    week: pd.DataFrame, queue_items: Sequence[QueueItem], n: int = 5
) -> tuple[Contributor, ...]:
    """The PRs that waited longest, in working hours: open ones now, and this week's merged.

    An open PR waits on whoever's turn it is; a merged one on whoever held its longest
    waiting stage (reviewers for pickup and review, the author/CI for merge wait).
    """
    rows: list[Contributor] = []
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
        cols = [f"{s}_bh" for s in WAITING_STAGES]
        waits = week[cols].clip(lower=0)
        total = waits.sum(axis=1)
        longest = waits.idxmax(axis=1)
        for idx in total.sort_values(ascending=False).head(n).index:
            hours = float(total[idx])
            if hours <= 0:
                continue
            row = week.loc[idx]
            stage = str(longest[idx]).removesuffix("_bh")
            detail = f"merged; mostly {_SHORT[stage]}"
            if stage == "pickup" and "first_reviewer" in week and isinstance(row["first_reviewer"], str):
                detail += f", first reviewed by {row['first_reviewer']}"
            elif stage == "merge" and "author" in week and isinstance(row["author"], str):
                detail += f", on {row['author']}"
            url = row["url"] if "url" in week and isinstance(row["url"], str) else None
            rows.append(Contributor(name=f"{row['repo']}#{int(row['number'])}", value=round(hours, 1),
                                    unit="h", detail=detail, url=url))
    rows.sort(key=lambda c: (-c.value, c.name))
    return tuple(rows[:n])
