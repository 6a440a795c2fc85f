"""Review requests and reviews as tables (docs/metrics.md "Requests", "Reviewer interruptions",
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
    any_earlier_in_group,
    columns,
    expand,
    frame,
    local_days,
    next_in_group,
    text_column,
    time_ranks,
    to_datetimes,
    to_datetimes_many,
    us,
)
from jobs.metrics._events import Calendar, Timeline, Waits, timeline
from jobs.metrics.prs import STATES, state_codes
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
    """One row per review request per reviewer it reached, as of ``now``: the vectorised twin
    of ``jobs.timeline.request_responses``, whose reading (docs/metrics.md "Requests") it follows.

    ``team_members`` maps a GitHub team slug to its members' logins (case-insensitive); a
    request to a team becomes one row per listed member except the PR's author, or one row
    with ``reviewer`` None when the team is not listed (or lists nobody). Columns:

    ``repo, number, key, pr`` (row index into the PR list), ``request_id`` (one id per
    request event: a team request's member rows share it), ``reviewer`` (lower-cased login),
    ``reviewer_kind`` (human/bot/ai; None without a reviewer), ``team`` (lower-cased
    slug of a team request), ``via_team``, ``is_rerequest`` (the reviewer already had an
    earlier row on the PR, direct or via a team, or reviewed it before: it counts as a
    re-request only), ``requested_at``, ``removed_at`` (withdrawn before any answer),
    ``responded_at`` (the reviewer's first counted review at or after the request; via a
    team, any listed member's; NaT when withdrawn first or unanswered), ``response_h`` /
    ``response_bh`` (draft time left out, NaN without an answer), ``day`` (team-local date
    of the request), and the PR's ``bot``, ``ai_assisted``, ``draft``, ``pr_state``.
    """
    cols = columns(prs, identity=identity)
    now_us = us(now)
    tl = timeline(cols, now=now_us)
    seen = cols.ev_at <= now_us
    rv_ok = tl.valid_review & cols.rv_has_author  # a deleted account answers nothing
    rem = np.flatnonzero(seen & (cols.ev_kind == REMOVED))
    req = np.flatnonzero(
        seen
        & (cols.ev_kind == REQUESTED)
        & (cols.ev_has_reviewer | cols.ev_has_team)
    )

    # integer codes: logins (lower-cased) and team slugs, so (PR, who) packs into one int64
    pairs = [(str(t).lower(), m.lower()) for t, ms in team_members.items() for m in ms]
    login_code, logins = pd.factorize(
        np.concatenate(
            [
                cols.ev_reviewer[req],
                cols.rv_lower[rv_ok],
                cols.ev_reviewer[rem],
                cols.author_lower,
                np.array([m for _, m in pairs], dtype=object),
            ]
        ),
        use_na_sentinel=True,
    )
    cuts = np.cumsum([req.size, int(rv_ok.sum()), rem.size, cols.n])
    req_who, rv_who, rem_who, author_who, member_who = np.split(login_code, cuts)
    team_code, _ = pd.factorize(
        np.concatenate(
            [
                cols.ev_team[req],
                cols.ev_team[rem],
                np.array([t for t, _ in pairs], dtype=object),
            ]
        ),
        use_na_sentinel=True,
    )
    req_team, rem_team, member_team = np.split(team_code, np.cumsum([req.size, rem.size]))
    width = np.int64(len(logins) + 1)
    twidth = np.int64(int(team_code.max(initial=-1)) + 2)

    # rows: direct requests as they are, team requests once per member (the author excluded)
    by_team = np.lexsort((member_who, member_team))
    m_team, m_who = member_team[by_team], member_who[by_team]
    is_team = req_who < 0  # a request naming both a login and a team is the login's
    direct = np.flatnonzero(~is_team)
    t_rows = np.flatnonzero(is_team)
    t_of, t_member = expand(req_team[t_rows], m_team, m_who)
    pr_of_t = cols.ev_pr[req[t_rows[t_of]]]
    not_author = t_member != author_who[pr_of_t]
    t_of, t_member = t_of[not_author], t_member[not_author]
    # a team nobody listed (or listed with no members) keeps one row with no reviewer
    nobody = t_rows[~np.isin(req_team[t_rows], m_team)]
    src = np.concatenate([direct, t_rows[t_of], nobody])
    who = np.concatenate([req_who[direct], t_member, np.full(nobody.size, -1)])
    via_team = np.concatenate([np.zeros(direct.size, bool), np.ones(t_of.size + nobody.size, bool)])
    order = np.lexsort((who, src))
    src, who, via_team = src[order], who[order], via_team[order]
    row_pr = cols.ev_pr[req[src]]
    row_at = cols.ev_at[req[src]]
    ev_rank, rv_rank, tw = time_ranks(cols)
    row_rank = ev_rank[req[src]]
    row_team = np.where(via_team, req_team[src], -1)
    g_row = row_pr * width + who
    g_team = row_pr * twidth + row_team

    # re-request: an earlier row for the same (PR, reviewer), or a counted review before it
    rv_pr, rv_at, rv_r = cols.rv_pr[rv_ok], cols.rv_at[rv_ok], rv_rank[rv_ok]
    g_rv = rv_pr * width + rv_who
    o_row = np.argsort(g_row, kind="stable")
    earlier = np.zeros(src.size, dtype=bool)
    earlier[o_row[1:]] = g_row[o_row][1:] == g_row[o_row][:-1]
    reviewed = any_earlier_in_group(g_row, row_rank, g_rv, rv_r, tw)
    rerequest = (earlier | reviewed) & (who >= 0)

    # Answers, withdrawals and hours are the same for every member row of one team request:
    # work on one row per request event (rows are sorted by it) and spread back.
    first = np.r_[True, src[1:] != src[:-1]] if src.size else np.zeros(0, dtype=bool)
    u = np.flatnonzero(first)
    spread = np.cumsum(first) - 1
    u_team, u_rank, u_pr, u_at = via_team[u], row_rank[u], row_pr[u], row_at[u]

    # answer: the reviewer's first counted review at or after the request; via a team, any
    # listed member's (a team nobody listed gets no answer)
    responded = np.full(u.size, np.nan)
    nxt = next_in_group(g_row[u], u_rank, g_rv, rv_r, tw, strict=False)
    use = ~u_team & (nxt >= 0)
    responded[use] = rv_at[nxt[use]]
    by_member = np.lexsort((m_team, m_who))
    r_of, r_team = expand(rv_who, m_who[by_member], m_team[by_member])
    tg = rv_pr[r_of] * twidth + r_team
    tnxt = next_in_group(g_team[u], u_rank, tg, rv_r[r_of], tw, strict=False)
    use = u_team & (tnxt >= 0)
    responded[use] = rv_at[r_of][tnxt[use]]

    # withdrawn: the same login (or team) taken off after the request, before any answer
    rem_pr, rem_at, rem_r = cols.ev_pr[rem], cols.ev_at[rem], ev_rank[rem]
    rem_direct = (rem_team < 0) & (rem_who >= 0)
    removed = np.full(u.size, np.nan)
    for mask, q_g, r_g in (
        (~u_team, g_row[u], np.where(rem_direct, rem_pr * width + rem_who, -1)),
        (u_team, g_team[u], np.where(rem_team >= 0, rem_pr * twidth + rem_team, -1)),
    ):
        valid = r_g >= 0
        hit = next_in_group(q_g, u_rank, r_g[valid], rem_r[valid], tw, strict=False)
        use = mask & (hit >= 0) & (q_g >= 0)
        removed[use] = rem_at[valid][hit[use]]
    withdrawn = ~np.isnan(removed) & ~(responded <= removed)
    responded[withdrawn] = np.nan
    removed[~withdrawn] = np.nan

    waits = Waits(*_draft_spells(cols, tl), cols.n)
    h = waits.add(u_pr, u_at, responded)
    waits.resolve(calendar)
    response_h, response_bh = waits.get(h)
    # code -1 (a team request that reached nobody) reads as None
    names = np.concatenate([np.asarray(logins, dtype=object), np.array([None], dtype=object)])
    kinds = np.array([identity.kind(x) for x in logins] + [None], dtype=object)
    state = state_codes(tl)
    return frame(
        {
            "repo": cols.repo[row_pr],
            "number": cols.number[row_pr],
            "key": cols.key[row_pr],
            "pr": row_pr,
            "request_id": req[src],
            "reviewer": names[who],
            "reviewer_kind": kinds[who],
            "team": cols.ev_team[req[src]],
            "via_team": via_team,
            "is_rerequest": rerequest,
            **dict(zip(("requested_at", "removed_at", "responded_at"),
                       to_datetimes_many(row_at, removed[spread], responded[spread]),
                       strict=True)),
            "response_h": response_h[spread],
            "response_bh": response_bh[spread],
            "day": local_days(calendar, u_at)[spread],
            "bot": cols.bot[row_pr],
            "ai_assisted": cols.ai_assisted[row_pr],
            "draft": cols.draft[row_pr],
            "pr_state": text_column(STATES, state[row_pr]),
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
    return frame(
        {
            "repo": cols.repo[pr],
            "number": cols.number[pr],
            "key": cols.key[pr],
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


def _draft_spells(cols: Columns, tl: Timeline) -> tuple[I64, F64, F64]:
    """Draft intervals after ready, plus the first spell of PRs opened as drafts (opened to
    ready, or ``now``): a request made on a draft waits only once the PR is ready."""
    first = np.flatnonzero(tl.opened_draft)
    f_end = np.where(np.isnan(tl.ready[first]), tl.now, tl.ready[first])
    d_pr = np.concatenate([tl.d_pr, first])
    d_s = np.concatenate([tl.d_start, cols.created[first]])
    d_e = np.concatenate([tl.d_end, f_end])
    o = np.lexsort((d_s, d_pr))
    return d_pr[o], d_s[o], d_e[o]
