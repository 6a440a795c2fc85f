"""Reviewer interruptions and load (docs/metrics.md "Reviewer interruptions", "Requests")."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from jobs.metrics._columns import NAT_NS, among, instants_ns, ns, within
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

    # requests: human reviewers only (bots and AIs are not interrupted), optionally the team's
    who = requests["reviewer"].to_numpy(dtype=object)
    keep = requests["reviewer_kind"].to_numpy(dtype=object) == "human"  # None: no reviewer
    if allowed is not None:
        keep &= among(who, allowed)
    rows = np.flatnonzero(keep)  # columns read as arrays: no frame of the kept rows

    def col(name: str, dtype: Any = None) -> np.ndarray:
        return np.asarray(requests[name].to_numpy(dtype=dtype)[rows])

    at = instants_ns(requests["requested_at"])[rows]
    recent = (at > ns(since)) & (at <= ns(now))
    r_who = who[rows]
    rr = col("is_rerequest", bool)
    team = col("via_team", bool)
    w = r_who[recent]
    direct = Counter(w[~rr[recent] & ~team[recent]].tolist())
    via = Counter(w[~rr[recent] & team[recent]].tolist())
    again = Counter(w[rr[recent]].tolist())
    per_day: dict[str, int] = {}
    days = col("day")[recent]
    for (login, _), count in Counter(zip(w.tolist(), days.tolist(), strict=True)).items():
        per_day[login] = max(per_day.get(login, 0), count)
    waiting = (
        (instants_ns(requests["responded_at"])[rows] == NAT_NS)
        & (instants_ns(requests["removed_at"])[rows] == NAT_NS)
        & (col("pr_state", object) == "open")
        & ~col("draft", bool)
        & (at <= ns(now)) & (at != NAT_NS)
    )
    pending = Counter(
        login for login, _ in set(zip(r_who[waiting].tolist(), col("pr")[waiting].tolist(), strict=True))
    )

    # reviews: counted human reviews in the window; a context switch is each extra distinct
    # PR reviewed on the same local day
    rv_who = reviews["reviewer"].to_numpy(dtype=object)
    ok = (
        reviews["counts"].to_numpy(dtype=bool)
        & (reviews["reviewer_kind"].to_numpy(dtype=object) == "human")  # deleted: nobody's
        & within(reviews["submitted_at"], since, now)
    )
    if allowed is not None:
        ok &= among(rv_who, allowed)
    v_who = rv_who[ok].tolist()
    n_reviews = Counter(v_who)
    distinct = set(zip(v_who, reviews["day"].to_numpy()[ok].tolist(), reviews["pr"].to_numpy()[ok].tolist(), strict=True))
    per_login_day = Counter((login, day) for login, day, _ in distinct)
    switches: Counter[str] = Counter()
    for (login, _), prs in per_login_day.items():
        switches[login] += prs - 1

    loads: list[ReviewerLoad] = []
    for login in sorted(set(direct) | set(via) | set(again) | set(n_reviews) | set(pending)):
        interruptions = direct[login] + via[login] + again[login] + switches[login]
        loads.append(
            ReviewerLoad(
                login=login,
                slack_id=slack.get(login),
                requests_direct=direct[login],
                requests_via_team=via[login],
                re_requests=again[login],
                context_switches=switches[login],
                reviews=n_reviews[login],
                pending=pending[login],
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
