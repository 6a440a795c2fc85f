"""Review requests and reviews as tables (METRICS.md "Requests", "Reviewer interruptions",
per-request response time).

One row per review request per reviewer (a team request expanded to its members, the PR's
author excluded) and one row per submitted review. Vectorised: rows are grouped by
(PR, reviewer) or (PR, team) integer keys and matched with sorted searches, never per PR.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

import numpy as np
import pandas as pd

from jobs.identity import Identity
from jobs.metrics._columns import (
    DELETED,
    HUMAN,
    KIND_NAMES,
    REMOVED,
    REQUESTED,
    STATE_CODES,
    F64,
    I64,
    Columns,
    any_before,
    columns,
    local_days,
    next_after,
    to_datetimes,
    us,
)
from jobs.metrics._events import Calendar, Timeline, Waits, timeline
from jobs.model import PullRequest

_STATE_NAMES = np.array(list(STATE_CODES), dtype=object)


def request_table(
    prs: Sequence[PullRequest] | Columns,
    *,
    identity: Identity,
    team_members: Mapping[str, Iterable[str]],
    calendar: Calendar,
    now: datetime,
) -> pd.DataFrame:
    """One row per review request per reviewer, as of ``now``.

    ``team_members`` maps a GitHub team slug to its members' logins (case-insensitive); a
    request to a team becomes one row per member except the PR's author (a team nobody
    listed keeps one row with ``reviewer`` None). Columns:

    ``repo, number, key, pr`` (row index into the PR list), ``request_id`` (one id per
    request event: a team request's member rows share it), ``reviewer`` (lower-cased login),
    ``reviewer_kind`` (human/bot/ai/deleted), ``team`` (slug or None), ``via_team``,
    ``is_rerequest`` (someone already requested on, or who already reviewed, that PR: it
    counts as a re-request only), ``requested_at``, ``removed_at`` (the request was withdrawn
    before any answer), ``responded_at`` (that reviewer's next review; for a team request
    the next review by any member; NaT when removed first or unanswered), ``response_h`` /
    ``response_bh`` (draft time left out, NaN without a response), ``day`` (team-local date
    of the request), and the PR's ``bot``, ``ai_assisted``, ``draft``, ``pr_state``.
    """
    cols = columns(prs, identity=identity)
    now_us = us(now)
    tl = timeline(cols, now=now_us)
    seen = cols.ev_at <= now_us
    req = np.flatnonzero(seen & (cols.ev_kind == REQUESTED))
    teams = {str(k).lower(): sorted({m.lower() for m in v}) for k, v in team_members.items()}

    # expand: direct requests as they are, team requests to members
    r_team = cols.ev_team[req]
    is_team = r_team != None  # noqa: E711
    direct = req[~is_team]
    t_req = req[is_team]
    t_slug = cols.ev_team[t_req]
    members = [teams.get(s) or [None] for s in t_slug]
    counts = np.fromiter(map(len, members), np.int64, len(members))
    row_event = np.concatenate([direct, np.repeat(t_req, counts)])
    row_reviewer = np.concatenate(
        [cols.ev_reviewer[direct], np.array([m for ms in members for m in ms], dtype=object)]
    )
    row_team = np.concatenate([np.full(direct.size, None, dtype=object), np.repeat(t_slug, counts)])
    via_team = np.concatenate([np.zeros(direct.size, bool), np.ones(int(counts.sum()), bool)])
    row_pr = cols.ev_pr[row_event]
    row_at = cols.ev_at[row_event]
    not_author = (row_reviewer != cols.author_lower[row_pr]) | (row_reviewer == None)  # noqa: E711
    keep = not_author
    row_event, row_reviewer, row_team = row_event[keep], row_reviewer[keep], row_team[keep]
    via_team, row_pr, row_at = via_team[keep], row_pr[keep], row_at[keep]
    order = np.lexsort((row_event, row_pr))
    row_event, row_reviewer, row_team = row_event[order], row_reviewer[order], row_team[order]
    via_team, row_pr, row_at = via_team[order], row_pr[order], row_at[order]

    # integer codes for logins and teams, so (PR, who) packs into one int64 group key
    rv_ok = tl.valid_review & (cols.rv_lower != None)  # noqa: E711
    rv_pr, rv_login, rv_at = cols.rv_pr[rv_ok], cols.rv_lower[rv_ok], cols.rv_at[rv_ok]
    rem = seen & (cols.ev_kind == REMOVED)
    logins, codes = np.unique(
        np.concatenate([row_reviewer, rv_login, cols.ev_reviewer[rem]]).astype(str),
        return_inverse=True,
    )
    width = np.int64(len(logins) + 1)
    who_row = codes[: row_reviewer.size]
    who_rv = codes[row_reviewer.size : row_reviewer.size + rv_login.size]
    who_rem = codes[row_reviewer.size + rv_login.size :]
    g_row = row_pr * width + who_row
    g_rv = rv_pr * width + who_rv

    # a re-request: an earlier request row for the same (PR, reviewer), or an earlier review
    rr_order = np.lexsort((row_at, g_row))
    earlier = np.zeros(row_at.size, dtype=bool)
    gs = g_row[rr_order]
    earlier[rr_order[1:]] = gs[1:] == gs[:-1]
    rv_sorted = np.lexsort((rv_at, g_rv))
    reviewed = any_before(g_row, row_at, g_rv[rv_sorted], rv_at[rv_sorted])
    rerequest = (earlier | reviewed) & (row_reviewer != None)  # noqa: E711

    # responses: direct rows by (PR, reviewer); team rows by (PR, team) over members' reviews
    responded = np.full(row_at.size, np.nan)
    nxt = next_after(g_row, row_at, g_rv[rv_sorted], rv_at[rv_sorted], strict=False)
    use = ~via_team & (nxt >= 0)
    responded[use] = rv_at[rv_sorted][nxt[use]]
    team_names = sorted(teams)
    tcode = {t: i for i, t in enumerate(team_names)}
    twidth = np.int64(len(team_names) + 1)
    member_of: dict[str, list[int]] = {}
    for t, ms in teams.items():
        for m in ms:
            member_of.setdefault(m, []).append(tcode[t])
    rv_teams = [member_of.get(str(login), []) for login in rv_login]
    tc = np.fromiter(map(len, rv_teams), np.int64, len(rv_teams))
    tr_pr = np.repeat(rv_pr, tc)
    tr_at = np.repeat(rv_at, tc)
    tr_g = tr_pr * twidth + np.array([c for cs in rv_teams for c in cs], dtype=np.int64)
    t_sorted = np.lexsort((tr_at, tr_g))
    row_tcode = np.array([tcode.get(t, len(team_names)) for t in row_team], dtype=np.int64)
    g_team = row_pr * twidth + row_tcode
    tnxt = next_after(g_team, row_at, tr_g[t_sorted], tr_at[t_sorted], strict=False)
    use = via_team & (tnxt >= 0)
    responded[use] = tr_at[t_sorted][tnxt[use]]

    # removals: the same reviewer (or team) taken off before the answer
    rem_idx = np.flatnonzero(rem)
    rem_pr, rem_at = cols.ev_pr[rem_idx], cols.ev_at[rem_idx]
    rem_has_team = cols.ev_team[rem_idx] != None  # noqa: E711
    rg_direct = rem_pr * width + who_rem
    rem_tcode = np.array(
        [tcode.get(t, len(team_names)) if t is not None else len(team_names) for t in cols.ev_team[rem_idx]],
        dtype=np.int64,
    )
    rg_team = rem_pr * twidth + rem_tcode
    removed = np.full(row_at.size, np.nan)
    for mask, q_g, r_g in (
        (~via_team, g_row, np.where(rem_has_team, -1, rg_direct)),
        (via_team, g_team, np.where(rem_has_team, rg_team, -1)),
    ):
        o = np.lexsort((rem_at, r_g))
        hit = next_after(q_g, row_at, r_g[o], rem_at[o], strict=False)
        use = mask & (hit >= 0)
        removed[use] = rem_at[o][hit[use]]
    withdrawn = ~np.isnan(removed) & ~(responded <= removed)
    responded[withdrawn] = np.nan
    removed[~withdrawn] = np.nan

    waits = Waits(*_all_draft_intervals(cols, tl), cols.n)
    h = waits.add(row_pr, row_at, responded)
    waits.resolve(calendar)
    response_h, response_bh = waits.get(h)
    kind_of = {}
    kinds = np.array(
        [kind_of.setdefault(r, identity.kind(r)) if r is not None else "deleted" for r in row_reviewer],
        dtype=object,
    )
    state = np.where(~np.isnan(tl.merged), "merged", np.where(~np.isnan(tl.closed), "closed", "open"))
    return pd.DataFrame(
        {
            "repo": cols.repo[row_pr],
            "number": cols.number[row_pr],
            "key": _keys(cols, row_pr),
            "pr": row_pr,
            "request_id": row_event,
            "reviewer": row_reviewer,
            "reviewer_kind": kinds,
            "team": row_team,
            "via_team": via_team,
            "is_rerequest": rerequest,
            "requested_at": to_datetimes(row_at),
            "removed_at": to_datetimes(removed),
            "responded_at": to_datetimes(responded),
            "response_h": response_h,
            "response_bh": response_bh,
            "day": local_days(calendar, row_at),
            "bot": cols.bot[row_pr],
            "ai_assisted": cols.ai_assisted[row_pr],
            "draft": cols.draft[row_pr],
            "pr_state": state[row_pr],
        }
    )


def review_table(
    prs: Sequence[PullRequest] | Columns,
    *,
    identity: Identity,
    calendar: Calendar,
    now: datetime,
) -> pd.DataFrame:
    """One row per review submitted by ``now``.

    Columns: ``repo, number, key, pr, reviewer`` (lower-cased login, None for a deleted
    account: attributed to nobody), ``login`` (as GitHub spells it), ``reviewer_kind``
    (human/bot/ai/deleted), ``state``, ``submitted_at``, ``day`` (team-local date),
    ``by_author`` (the PR's author commenting on their own PR), ``counts`` (approve, request
    changes or comment by someone other than the author: what the clocks read), ``human``
    (a human or deleted account), and the PR's ``bot`` and ``ai_assisted``.
    """
    cols = columns(prs, identity=identity)
    now_us = us(now)
    ok = np.flatnonzero(cols.rv_at <= now_us)
    tl = timeline(cols, now=now_us)
    pr = cols.rv_pr[ok]
    kind = cols.rv_kind[ok]
    return pd.DataFrame(
        {
            "repo": cols.repo[pr],
            "number": cols.number[pr],
            "key": _keys(cols, pr),
            "pr": pr,
            "reviewer": cols.rv_lower[ok],
            "login": cols.rv_author[ok],
            "reviewer_kind": np.asarray(KIND_NAMES, dtype=object)[kind],
            "state": _STATE_NAMES[cols.rv_state[ok]],
            "submitted_at": to_datetimes(cols.rv_at[ok]),
            "day": local_days(calendar, cols.rv_at[ok]),
            "by_author": cols.rv_by_pr_author[ok],
            "counts": tl.valid_review[ok],
            "human": (kind == HUMAN) | (kind == DELETED),
            "bot": cols.bot[pr],
            "ai_assisted": cols.ai_assisted[pr],
        }
    )


def _keys(cols: Columns, pr: I64) -> np.ndarray:
    keys = np.array([f"{r}#{k}" for r, k in zip(cols.repo, cols.number, strict=True)], dtype=object)
    return keys[pr]


def _all_draft_intervals(cols: Columns, tl: Timeline) -> tuple[I64, F64, F64]:
    """Draft intervals after ready plus the first one of PRs opened as drafts (to ready, or
    ``now`` if never ready): a request made on a draft waits only once the PR is ready."""
    first = np.flatnonzero(tl.opened_draft)
    f_end = np.where(np.isnan(tl.ready[first]), tl.now, tl.ready[first])
    d_pr = np.concatenate([tl.d_pr, first])
    d_s = np.concatenate([tl.d_start, cols.created[first]])
    d_e = np.concatenate([tl.d_end, f_end])
    o = np.lexsort((d_s, d_pr))
    return d_pr[o], d_s[o], d_e[o]
