"""Pure: the one suggested action, chosen by explicit rules from the numbers
(docs/metrics.md "The digest's why": one suggested action, chosen from what the numbers show).

Each rule names the numbers that made it fire in the action's ``because``, so a lead can check
the reasoning. The levels live in :class:`Rules` so they can be tuned in one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import pandas as pd

from jobs.contributors import LARGE_BUCKETS, STAGE_NAMES, waiting_bh, workflow_detail
from jobs.model import Action, Contributor, QueueItem, ReviewerLoad, Stage, StageShare, WorkflowStats


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
            f"the largest wait, {STAGE_NAMES[dominant]}, is {by_stage[dominant].share_this_week:.0%}",
        )
    share = by_stage[dominant]
    pct = f"{share.share_this_week:.0%} of this week's lead time"
    if large and dominant in ("pickup", "review"):
        n_large = int(week["size_bucket"].isin(LARGE_BUCKETS).sum())
        waiting = waiting_bh(week)
        large_share = float(waiting[week["size_bucket"].isin(LARGE_BUCKETS)].sum()) / float(waiting.sum())
        return Action(
            code="split_prs",
            text="Split large PRs: aim for under 400 changed lines so reviewers can pick them up between tasks.",
            because=f"{n_large} L/XL PRs held {large_share:.0%} of this week's waiting hours "
            f"and {STAGE_NAMES[dominant]} is {pct}",
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
            detail = workflow_detail(slow) if slow is not None else ""
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
