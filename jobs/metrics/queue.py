"""The live queue over a whole team's columns: the vectorised twin of ``jobs.queue.queue_now``.

docs/metrics.md "Queue": open, non-draft, non-bot PRs; each in one bucket, first match wins
(approved, CI, author, reviewer); age = ``now`` minus ``ready_at``, less time back in draft.
Every reading is the per-PR function's, over arrays (``ready_at`` and draft time from the
same timeline reading as :func:`jobs.metrics.pr_table`); only the list of who a reviewer-turn
PR waits on is walked per PR, over its few request events. Equal to ``queue_now`` (same
buckets, same order, ages to the last bit; tested on generated PRs).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import pandas as pd

from jobs.identity import Identity
from jobs.metrics._columns import (
    APPROVED,
    CHANGES,
    COMMENTED,
    PUSHED,
    REMOVED,
    REQUESTED,
    Columns,
    columns,
    us,
)
from jobs.metrics._events import Calendar, timeline
from jobs.metrics.prs import size_buckets
from jobs.model import PullRequest, QueueItem, QueueSample, Turn
from jobs.queue import sample_of

PASSING = frozenset({"success", "neutral", "skipped"})  # as jobs.queue.PASSING
_US_PER_S = 1_000_000.0


def queue_items(
    prs: Sequence[PullRequest] | Columns,
    *,
    identity: Identity,
    calendar: Calendar,
    now: datetime,
    required_approvals: int = 1,
) -> tuple[QueueSample, tuple[QueueItem, ...]]:
    """The queue sample at ``now`` and its items, oldest first: what
    ``jobs.queue.queue_now`` returns for the same PRs (pass the team's)."""
    cols = columns(prs, identity=identity)
    now_us = us(now)
    tl = timeline(cols, now=now_us, required_approvals=required_approvals)
    live = np.flatnonzero(cols.open & ~cols.draft & (cols.created <= now_us) & ~cols.bot)

    # age: from ready (opened, if never ready) to now, less the draft spans after it
    start = np.where(np.isnan(tl.ready), cols.created, tl.ready)
    span = tl.d_end > start[tl.d_pr]
    d_pr, d_s, d_e = tl.d_pr[span], np.maximum(tl.d_start[span], start[tl.d_pr[span]]), tl.d_end[span]
    age = (now_us - start[live]) / _US_PER_S / 3600 - _sum_by(d_pr, (d_e - d_s) / _US_PER_S, live) / 3600
    ends = np.full(live.size, now_us)
    biz = calendar.business_hours(_utc(start[live]), _utc(ends))
    if d_pr.size:
        drafted = calendar.business_hours(_utc(d_s), _utc(d_e))
        biz = biz - _sum_by(d_pr, drafted, live)

    turn = _turns(cols, tl.human_review, live, now_us=now_us, required=required_approvals)
    sizes = size_buckets(cols.size[live])
    ev_at = np.searchsorted(cols.ev_pr, np.arange(cols.n + 1))  # each PR's rows: [at[i], at[i+1])
    rv_at = np.searchsorted(cols.rv_pr, np.arange(cols.n + 1))
    items = []
    for k, i in enumerate(live.tolist()):
        t = turn[k]
        author = cols.author[i]
        if t == "reviewer":
            waiting: tuple[str, ...] = _pending_reviewers(
                cols, slice(ev_at[i], ev_at[i + 1]), slice(rv_at[i], rv_at[i + 1]), now_us)
        elif t == "ci":
            waiting = ("CI",)
        else:
            waiting = (author or "author",)
        items.append(QueueItem(
            repo=cols.repo[i], number=int(cols.number[i]), title=cols.title[i], url=cols.url[i],
            author=author, turn=t, waiting_on=waiting, age_hours=max(0.0, float(age[k])),
            age_business_hours=max(0.0, float(biz[k])), size=sizes[k],
            ai_assisted=bool(cols.ai_assisted[i]),
        ))
    return sample_of(items, now=now)


def _turns(cols: Columns, human: np.ndarray, live: np.ndarray, *, now_us: float,
           required: int) -> list[Turn]:
    """Whose turn each live PR is in (jobs.queue._turn, first match wins)."""
    n = cols.n
    # approved: each reviewer's latest verdict (a comment changes nothing; a deleted account's
    # reviews are each their own reviewer) counted, no request for changes standing
    rows = np.flatnonzero(human & (cols.rv_state != COMMENTED))  # (PR, time) order
    approvals = np.zeros(n, dtype=np.int64)
    blocked = np.zeros(n, dtype=bool)
    if rows.size:
        who, _ = pd.factorize(cols.rv_lower[rows], use_na_sentinel=True)
        who = np.where(who < 0, -1 - np.arange(rows.size), who)
        pr = cols.rv_pr[rows]
        last = np.lexsort((np.arange(rows.size), who, pr))  # by (PR, reviewer, time)
        is_last = np.ones(rows.size, dtype=bool)
        is_last[:-1] = (pr[last][1:] != pr[last][:-1]) | (who[last][1:] != who[last][:-1])
        verdict = cols.rv_state[rows][last][is_last]
        owner = pr[last][is_last]
        approvals = np.bincount(owner[verdict == APPROVED], minlength=n)
        blocked = np.bincount(owner[verdict == CHANGES], minlength=n) > 0
    approved = (approvals >= required) & ~blocked

    # CI: the latest attempt of each check (by name) on the head commit failed or is not done
    on_head = cols.ck_head_sha == cols.head_sha[cols.ck_pr]
    ck = np.flatnonzero(on_head)
    failing_pr = np.zeros(n, dtype=bool)
    if ck.size:
        name, _ = pd.factorize(cols.ck_name[ck])
        # latest = greatest (created, attempt); on a full tie the first in record order, which
        # is the column order for equal times (stable sort): sort position descending last
        order = np.lexsort((-np.arange(ck.size), cols.ck_attempt[ck], cols.ck_created[ck],
                            name, cols.ck_pr[ck]))
        pr_s, name_s = cols.ck_pr[ck][order], name[order]
        is_last = np.ones(ck.size, dtype=bool)
        is_last[:-1] = (pr_s[1:] != pr_s[:-1]) | (name_s[1:] != name_s[:-1])
        latest = ck[order][is_last]
        done = cols.ck_completed[latest]
        passing = np.fromiter((c in PASSING for c in cols.ck_conclusion[latest].tolist()),
                              np.bool_, latest.size)
        bad = np.isnan(done) | (done > now_us) | ~passing
        failing_pr[cols.ck_pr[latest][bad]] = True

    # author: the latest human review asks for changes, and no push or request came since
    hrows = np.flatnonzero(human)  # (PR, time) order
    hp = cols.rv_pr[hrows]
    ends_group = np.ones(hp.size, dtype=bool)
    ends_group[:-1] = hp[1:] != hp[:-1]
    last_human = np.full(n, -1, dtype=np.int64)
    last_human[hp[ends_group]] = hrows[ends_group]  # each PR's latest human review
    has_human = last_human >= 0
    changes = np.zeros(n, dtype=bool)
    changes[has_human] = cols.rv_state[last_human[has_human]] == CHANGES
    since = np.full(n, np.nan)
    since[has_human] = cols.rv_at[last_human[has_human]]
    moves = ((cols.ev_kind == PUSHED) | (cols.ev_kind == REQUESTED)) & (cols.ev_at <= now_us)
    moved = np.zeros(n, dtype=bool)
    mp = cols.ev_pr[moves]
    moved_any = cols.ev_at[moves] > since[mp]
    moved[mp[moved_any]] = True

    out: list[Turn] = []
    for i in live.tolist():
        if approved[i]:
            out.append("approved")
        elif failing_pr[i]:
            out.append("ci")
        elif changes[i] and not moved[i]:
            out.append("author")
        else:
            out.append("reviewer")
    return out


def _pending_reviewers(cols: Columns, ev: slice, rv: slice, now_us: float) -> tuple[str, ...]:
    """Requested reviewers (or ``team:slug``) of a PR not yet answered and not removed
    (jobs.queue._pending_reviewers, over the PR's event rows ``ev`` and review rows ``rv``)."""
    pending: dict[str, float] = {}
    for kind, at, who in zip(cols.ev_kind[ev].tolist(), cols.ev_at[ev].tolist(),
                             cols.ev_requested[ev].tolist(), strict=True):
        if at > now_us:
            break
        if who is None:
            continue
        if kind == REQUESTED:
            pending[who] = at
        elif kind == REMOVED:
            pending.pop(who, None)
    if pending:
        for author, at in zip(cols.rv_author[rv].tolist(), cols.rv_at[rv].tolist(), strict=True):
            if author is not None and author in pending and at >= pending[author]:
                pending.pop(author)
    return tuple(pending) or ("reviewers",)


def _sum_by(group: np.ndarray, values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Per row of ``rows`` (PR indexes), the sum of ``values`` whose ``group`` is that PR, in
    their order (as Python's ``sum`` adds them)."""
    if not group.size:
        return np.zeros(rows.size)
    n = int(max(group.max(), rows.max() if rows.size else 0)) + 1
    return np.bincount(group, weights=values, minlength=n)[rows]  # type: ignore[no-any-return]


def _utc(t: np.ndarray) -> np.ndarray:
    """Float microseconds as ``datetime64[us]`` (UTC) for ``calendar.business_hours``."""
    return t.astype(np.int64).view("datetime64[us]")


__all__ = ["queue_items"]
