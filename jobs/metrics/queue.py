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
    among,
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
    sizes = size_buckets(cols.size[live]).tolist()
    in_turn = [k for k, t in enumerate(turn) if t == "reviewer"]
    who = dict(zip(in_turn, waiting_on(cols, live[in_turn], now_us=now_us), strict=True))
    # plain Python values of the live PRs read once (an item per numpy scalar cost more)
    fields = zip(cols.repo[live].tolist(), cols.number[live].tolist(),
                 cols.title[live].tolist(), cols.url[live].tolist(), cols.author[live].tolist(),
                 cols.ai_assisted[live].tolist(), np.where(age > 0.0, age, 0.0).tolist(),
                 np.where(biz > 0.0, biz, 0.0).tolist(), strict=True)  # as max(0.0, x)
    items = []
    for k, (repo, number, title, url, author, ai, age_h, biz_h) in enumerate(fields):
        t = turn[k]
        if t == "reviewer":
            waiting: tuple[str, ...] = who[k]
        elif t == "ci":
            waiting = ("CI",)
        else:
            waiting = (author or "author",)
        items.append(QueueItem(
            repo=repo, number=number, title=title, url=url,
            author=author, turn=t, waiting_on=waiting, age_hours=age_h,
            age_business_hours=biz_h, size=sizes[k], ai_assisted=ai,
        ))
    return sample_of(items, now=now)


def _turns(cols: Columns, human: np.ndarray, live: np.ndarray, *, now_us: float,
           required: int) -> list[Turn]:
    """Whose turn each live PR is in (jobs.queue._turn, first match wins)."""
    n = cols.n
    # only the live PRs' rows are read: a PR's turn depends on its own rows alone
    on_live = np.zeros(n, dtype=bool)
    on_live[live] = True
    rv_live = on_live[cols.rv_pr]
    # approved: each reviewer's latest verdict (a comment changes nothing; a deleted account's
    # reviews are each their own reviewer) counted, no request for changes standing
    rows = np.flatnonzero(human & (cols.rv_state != COMMENTED) & rv_live)  # (PR, time) order
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
    ck = np.flatnonzero(on_live[cols.ck_pr])
    ck = ck[cols.ck_head_sha[ck] == cols.head_sha[cols.ck_pr[ck]]]  # on the head commit
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
        passing = among(cols.ck_conclusion[latest], PASSING)
        bad = np.isnan(done) | (done > now_us) | ~passing
        failing_pr[cols.ck_pr[latest][bad]] = True

    # author: the latest human review asks for changes, and no push or request came since
    hrows = np.flatnonzero(human & rv_live)  # (PR, time) order
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
    moves = (((cols.ev_kind == PUSHED) | (cols.ev_kind == REQUESTED)) & (cols.ev_at <= now_us)
             & on_live[cols.ev_pr])
    moved = np.zeros(n, dtype=bool)
    mp = cols.ev_pr[moves]
    moved_any = cols.ev_at[moves] > since[mp]
    moved[mp[moved_any]] = True

    turns = np.full(live.size, 3, dtype=np.int8)  # first match wins: set from the last rule up
    turns[changes[live] & ~moved[live]] = 2
    turns[failing_pr[live]] = 1
    turns[approved[live]] = 0
    names: tuple[Turn, ...] = ("approved", "ci", "author", "reviewer")
    return [names[t] for t in turns.tolist()]


def waiting_on(cols: Columns, prs: np.ndarray, *, now_us: float) -> list[tuple[str, ...]]:
    """For each PR of ``prs`` (indexes), its requested reviewers (login, or ``team:slug``)
    not yet answered and not removed, in the order they were asked: ``("reviewers",)`` when
    none. The per-PR reading (``jobs.queue._pending_reviewers``) over arrays, all PRs at once.

    Per PR, its requests and removals up to ``now`` are read in time order: a request asks
    someone (asking again keeps their place and moves their time), a removal forgets them (a
    later request asks them anew, last in line). Someone still asked is answered by any
    review of theirs (the same name) submitted at or after the time they were last asked."""
    want = np.zeros(cols.n, dtype=bool)
    want[prs] = True
    kind = cols.ev_kind
    rows = np.flatnonzero(want[cols.ev_pr] & (cols.ev_at <= now_us)
                          & ((kind == REQUESTED) | (kind == REMOVED)))
    rows = rows[pd.notna(cols.ev_requested[rows])]  # (PR, time) order, ties in record order
    out: dict[int, list[str]] = {}
    if rows.size:
        reviews = np.flatnonzero(want[cols.rv_pr] & cols.rv_has_author)
        names = np.concatenate([cols.ev_requested[rows], cols.rv_author[reviews]])
        code, uniq = pd.factorize(names)
        width = np.int64(len(uniq))
        group = cols.ev_pr[rows].astype(np.int64) * width + code[: rows.size]
        keys, of = np.unique(group, return_inverse=True)
        of = of.reshape(-1)
        pos = np.arange(rows.size, dtype=np.int64)
        removed = kind[rows] == REMOVED
        last_removed = np.full(keys.size, -1, dtype=np.int64)
        np.maximum.at(last_removed, of[removed], pos[removed])
        asked = ~removed & (pos > last_removed[of])  # requests since the person's last removal
        first = np.full(keys.size, rows.size, dtype=np.int64)  # their place in line
        np.minimum.at(first, of[asked], pos[asked])
        last = np.full(keys.size, -1, dtype=np.int64)  # the request that set their time
        np.maximum.at(last, of[asked], pos[asked])
        pending = np.flatnonzero(last >= 0)
        since = cols.ev_at[rows][last[pending]]
        # answered: a review by the same name at or after that time (any review of the PR)
        answered = np.zeros(pending.size, dtype=bool)
        if reviews.size:
            r_group = cols.rv_pr[reviews].astype(np.int64) * width + code[rows.size:]
            at = np.searchsorted(keys[pending], r_group)
            hit = at < pending.size
            hit[hit] = keys[pending][at[hit]] == r_group[hit]
            latest = np.full(pending.size, -np.inf)
            np.fmax.at(latest, at[hit], cols.rv_at[reviews][hit])
            answered = latest >= since
        still = pending[~answered]
        order = still[np.argsort(first[still], kind="stable")]  # rows are in PR order already
        for pr, name in zip(cols.ev_pr[rows][first[order]].tolist(),
                            cols.ev_requested[rows][first[order]].tolist(), strict=True):
            out.setdefault(pr, []).append(name)
    return [tuple(out[pr]) if pr in out else ("reviewers",) for pr in np.asarray(prs).tolist()]


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


__all__ = ["queue_items", "waiting_on"]
