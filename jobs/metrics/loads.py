"""Reviewer interruptions and load (METRICS.md "Reviewer interruptions", "Requests")."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta

import pandas as pd

from jobs.model import ReviewerLoad


def reviewer_loads(
    requests: pd.DataFrame,
    reviews: pd.DataFrame,
    *,
    now: datetime,
    window_days: float = 7,
    recovery_minutes: float = 23,
    slack_ids: Mapping[str, str | None] | None = None,
    members: Collection[str] | None = None,
) -> tuple[ReviewerLoad, ...]:
    """Each human reviewer's load over the ``window_days`` before ``now``.

    ``requests``/``reviews`` come from :func:`request_table`/:func:`review_table` (their
    ``day`` column is the team-local date). Per reviewer: requests received directly and via a
    team (each counted once per member, re-requests counted only as ``re_requests``), context
    switches (per local day, distinct PRs reviewed or commented minus one, summed), reviews,
    ``pending`` (open, non-draft PRs with a request to them, direct or via team, neither
    answered nor withdrawn, at ``now``), ``focus_hours`` = (requests + re-requests + context
    switches) x ``recovery_minutes``, and ``requests_per_day`` = the most requests on one
    day. Requests on bot PRs count. ``members`` (logins) limits the rows to a team;
    ``slack_ids`` maps logins to Slack user IDs. Ordered by most requests, then most
    reviews, then login.
    """
    since = now - timedelta(days=window_days)
    allowed = {m.lower() for m in members} if members is not None else None
    slack = {k.lower(): v for k, v in (slack_ids or {}).items()}

    human = requests[(requests["reviewer_kind"] == "human") & requests["reviewer"].notna()]
    if allowed is not None:
        human = human[human["reviewer"].isin(allowed)]
    at = human["requested_at"]
    rq = human[(at > since) & (at <= now)]
    rr = rq["is_rerequest"].astype(bool)
    team = rq["via_team"].astype(bool)
    counts = pd.DataFrame(
        {
            "direct": (~rr & ~team).groupby(rq["reviewer"]).sum(),
            "via_team": (~rr & team).groupby(rq["reviewer"]).sum(),
            "re": rr.groupby(rq["reviewer"]).sum(),
        }
    )
    per_day = rq.groupby(["reviewer", "day"]).size().groupby(level=0).max()

    rv = reviews[reviews["counts"].astype(bool) & reviews["human"].astype(bool) & reviews["reviewer"].notna()]
    if allowed is not None:
        rv = rv[rv["reviewer"].isin(allowed)]
    sub = rv["submitted_at"]
    rv = rv[(sub > since) & (sub <= now)]
    switches = (rv.groupby(["reviewer", "day"])["pr"].nunique() - 1).clip(lower=0).groupby(level=0).sum()
    n_reviews = rv.groupby("reviewer").size()

    open_ = human[
        human["responded_at"].isna()
        & human["removed_at"].isna()
        & (human["pr_state"] == "open")
        & ~human["draft"].astype(bool)
        & (human["requested_at"] <= now)
    ]
    pending = open_.groupby("reviewer")["pr"].nunique()

    logins = sorted(set(counts.index) | set(n_reviews.index) | set(pending.index))
    loads: list[ReviewerLoad] = []
    for login in logins:
        direct = int(counts["direct"].get(login, 0)) if login in counts.index else 0
        via = int(counts["via_team"].get(login, 0)) if login in counts.index else 0
        re_ = int(counts["re"].get(login, 0)) if login in counts.index else 0
        cs = int(switches.get(login, 0))
        interruptions = direct + via + re_ + cs
        loads.append(
            ReviewerLoad(
                login=login,
                slack_id=slack.get(login),
                requests_direct=direct,
                requests_via_team=via,
                re_requests=re_,
                context_switches=cs,
                reviews=int(n_reviews.get(login, 0)),
                pending=int(pending.get(login, 0)),
                focus_hours=interruptions * recovery_minutes / 60.0,
                requests_per_day=float(per_day.get(login, 0)),
            )
        )
    loads.sort(key=lambda r: (-_requests(r), -r.reviews, r.login))
    return tuple(loads)


def load_concentration(loads: Sequence[ReviewerLoad]) -> float | None:
    """The share of the team's review requests (direct, via team and re-requests) held by its
    two most-requested reviewers; ``None`` when there were no requests."""
    totals = sorted((_requests(r) for r in loads), reverse=True)
    total = sum(totals)
    return sum(totals[:2]) / total if total else None


def focus_hours_per_week(loads: Sequence[ReviewerLoad], window_days: float) -> float:
    """The team's focus-hours cost per week: the reviewers' sum scaled to seven days."""
    return sum(r.focus_hours for r in loads) * 7.0 / window_days if window_days else 0.0


def _requests(load: ReviewerLoad) -> int:
    return load.requests_direct + load.requests_via_team + load.re_requests
