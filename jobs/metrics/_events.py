"""The timeline events of every PR at once (docs/metrics.md "PR timeline events"), as arrays.

Vectorised twin of the per-PR reading in ``jobs.timeline`` / ``jobs.queue``: ``ready_at``,
the intervals spent back in draft, first request, first human and AI review, approval. Also
the :class:`Waits` helper that measures many clocks in calendar and business hours with draft
time taken out, with one call of the calendar for all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd

from jobs.metrics._columns import (
    AI,
    APPROVED,
    CHANGES,
    COMMENTED,
    DELETED,
    DRAFT,
    F64,
    HUMAN,
    I64,
    READY,
    REQUESTED,
    NAT_NS,
    US_PER_HOUR,
    B,
    Columns,
    group_min,
    utc_datetime64,
)


HOUR_NS = 3_600_000_000_000  # as jobs.worktime divides working ns into hours


class Calendar(Protocol):
    """What metrics need of a team's calendar (``jobs.worktime.WorkCalendar``)."""

    def business_hours(self, starts: Any, ends: Any) -> npt.NDArray[np.float64]: ...


@dataclass(frozen=True, slots=True)
class Timeline:
    """Per-PR event times (float us, NaN missing) and the draft intervals after ``ready``.

    ``end`` is when the PR's clocks stop running: merged, else closed, else ``now``.
    ``d_pr``/``d_start``/``d_end``: intervals spent back in draft after ``ready`` (an open one
    ends at ``now``), sorted by PR. ``valid_review``: the reviews that count for the clocks
    (submitted by ``now``, approve / request changes / comment, not by the PR's author).
    """

    now: float
    ready: F64
    opened_draft: B
    end: F64
    merged: F64
    closed: F64
    first_request: F64
    first_human_review: F64
    first_human_reviewer: npt.NDArray[np.object_]
    first_ai_review: F64
    approved: F64
    d_pr: I64
    d_start: F64
    d_end: F64
    valid_review: B
    human_review: B


def timeline(cols: Columns, *, now: float, required_approvals: int = 1) -> Timeline:
    """Read every PR's timeline as of ``now`` (float us); events after ``now`` are ignored.

    Memoised on ``cols``: the tables of one team share one reading.
    """
    found = cols.memo.get(("timeline", now, required_approvals))
    if found is None:
        found = cols.memo[("timeline", now, required_approvals)] = _timeline(
            cols, now=now, required_approvals=required_approvals
        )
    return found


def _timeline(cols: Columns, *, now: float, required_approvals: int) -> Timeline:
    n = cols.n
    merged = np.where(cols.merged <= now, cols.merged, np.nan)
    closed = np.where(cols.closed <= now, cols.closed, np.nan)
    end = np.where(~np.isnan(merged), merged, np.where(~np.isnan(closed), closed, now))

    seen = cols.ev_at <= now
    marks = seen & ((cols.ev_kind == READY) | (cols.ev_kind == DRAFT))
    mp, mk, mt = cols.ev_pr[marks], cols.ev_kind[marks], cols.ev_at[marks]
    new_pr = np.ones(mp.size, dtype=bool)
    new_pr[1:] = mp[1:] != mp[:-1]
    has_marks = np.zeros(n, dtype=bool)
    has_marks[mp] = True
    first_kind = np.full(n, -1, dtype=np.int8)
    first_kind[mp[new_pr]] = mk[new_pr]
    opened_draft = np.where(has_marks, first_kind == READY, cols.draft)
    ready = np.where(opened_draft, np.nan, cols.created)
    readies = mk == READY
    first_ready = group_min(mp[readies], mt[readies], n)
    ready = np.where(opened_draft, first_ready, ready)

    # A convert_to_draft at or after ready opens an interval that the next ready_for_review
    # closes (or ``now``, if none); repeats collapse, so after dropping earlier conversions
    # and collapsing runs of the same mark, the marks alternate.
    usable = (mk == READY) | (mt >= ready[mp])
    mp, mk, mt = mp[usable], mk[usable], mt[usable]
    keep = np.ones(mp.size, dtype=bool)
    keep[1:] = (mp[1:] != mp[:-1]) | (mk[1:] != mk[:-1])
    kp, kk, kt = mp[keep], mk[keep], mt[keep]
    starts = np.flatnonzero(kk == DRAFT)
    nxt = starts + 1
    closes = nxt < kp.size
    closes[closes] = kp[nxt[closes]] == kp[starts[closes]]
    d_end = np.full(starts.size, now)
    d_end[closes] = kt[nxt[closes]]
    d_pr = kp[starts]
    d_start = kt[starts]
    after_ready = d_start >= ready[d_pr]  # NaN ready (never ready) compares False
    d_pr, d_start, d_end = d_pr[after_ready], d_start[after_ready], d_end[after_ready]

    req = seen & (cols.ev_kind == REQUESTED)
    req &= cols.ev_at >= ready[cols.ev_pr]
    first_request = group_min(cols.ev_pr[req], cols.ev_at[req], n)

    state = cols.rv_state
    valid = (
        (cols.rv_at <= now)
        & ((state == APPROVED) | (state == CHANGES) | (state == COMMENTED))
        & ~cols.rv_by_pr_author
    )
    human = valid & ((cols.rv_kind == HUMAN) | (cols.rv_kind == DELETED))
    ai = valid & (cols.rv_kind == AI)
    first_human = group_min(cols.rv_pr[human], cols.rv_at[human], n)
    first_reviewer = np.full(n, None, dtype=object)
    hp = cols.rv_pr[human]
    first_of = np.ones(hp.size, dtype=bool)
    first_of[1:] = hp[1:] != hp[:-1]
    first_reviewer[hp[first_of]] = cols.rv_author[human][first_of]
    if required_approvals <= 1:
        ok = human & (state == APPROVED)
        approved = group_min(cols.rv_pr[ok], cols.rv_at[ok], n)
    else:
        approved = _approved_by_many(cols, human, required_approvals)
    return Timeline(
        now=now,
        ready=ready,
        opened_draft=opened_draft,
        end=end,
        merged=merged,
        closed=closed,
        first_request=first_request,
        first_human_review=first_human,
        first_human_reviewer=first_reviewer,
        first_ai_review=group_min(cols.rv_pr[ai], cols.rv_at[ai], n),
        approved=approved,
        d_pr=d_pr,
        d_start=d_start,
        d_end=d_end,
        valid_review=valid,
        human_review=human,
    )


def _approved_by_many(cols: Columns, human: B, required: int) -> F64:
    """The moment ``required`` approvals stand with no outstanding request for changes.

    Each reviewer's latest verdict (approve or request changes; a comment changes nothing)
    counts; each deleted-account review is a reviewer of its own. Vectorised: every verdict
    changes the PR's running count of standing approvals and of standing change requests by
    (new verdict - the same reviewer's previous one); cumulative sums per PR in time order
    give both counts after each review, and the first review where the approvals reach
    ``required`` with no change request standing is the approval.
    """
    n = cols.n
    out = np.full(n, np.nan)
    rows = np.flatnonzero(human & (cols.rv_state != COMMENTED))  # (PR, time) order
    if not rows.size:
        return out
    pr = cols.rv_pr[rows]
    state = cols.rv_state[rows]
    who, _ = pd.factorize(cols.rv_lower[rows], use_na_sentinel=True)
    who = np.where(who < 0, -1 - np.arange(rows.size), who)  # deleted: each on its own
    # the same reviewer's previous verdict on the PR (none for their first)
    by_reviewer = np.lexsort((np.arange(rows.size), who, pr))
    same = np.zeros(rows.size, dtype=bool)
    same[by_reviewer[1:]] = (pr[by_reviewer][1:] == pr[by_reviewer][:-1]) & (
        who[by_reviewer][1:] == who[by_reviewer][:-1]
    )
    previous = np.full(rows.size, -1, dtype=np.int64)
    previous[by_reviewer[1:]] = np.where(same[by_reviewer[1:]], state[by_reviewer][:-1], -1)
    d_approve = (state == APPROVED).astype(np.int64) - (previous == APPROVED)
    d_block = (state == CHANGES).astype(np.int64) - (previous == CHANGES)
    starts = np.flatnonzero(np.r_[True, pr[1:] != pr[:-1]])
    approvals = _cumsum_by_group(d_approve, starts)
    blocks = _cumsum_by_group(d_block, starts)
    hit = (approvals >= required) & (blocks == 0)
    return group_min(pr[hit], cols.rv_at[rows][hit], n)


def _cumsum_by_group(values: I64, starts: I64) -> I64:
    """Running sums restarting at each group start (rows grouped contiguously)."""
    total = np.cumsum(values)
    before = np.repeat(total[starts] - values[starts], np.diff(np.r_[starts, values.size]))
    return total - before


class Waits:
    """Measure many clocks (per-PR spans) with the PR's draft intervals taken out.

    ``add`` registers spans and returns a handle; ``resolve`` measures all of them with one
    call of ``calendar.business_hours``; ``get`` returns (calendar hours, business hours).
    Spans with a missing side give NaN; a span that ends before it starts gives 0.
    """

    def __init__(self, d_pr: I64, d_start: F64, d_end: F64, n: int) -> None:
        self._d_pr, self._d_start, self._d_end = d_pr, d_start, d_end
        self._lo = np.searchsorted(d_pr, np.arange(n), side="left")
        self._hi = np.searchsorted(d_pr, np.arange(n), side="right")
        self._spans: list[tuple[I64, F64, F64, bool]] = []
        self._ends: list[tuple[F64, F64]] = []  # each span's start and end arrays as given
        self._out: list[tuple[F64, F64, F64, F64]] = []

    def add(self, pr: I64, start: F64, end: F64, *, drafts: bool = True) -> int:
        """Register spans ``start..end`` of PRs ``pr``; ``drafts=False`` keeps draft time in.
        Spans that share an end array (the same object: one stage's end is the next one's
        start) have its instants measured once."""
        self._spans.append((pr, start, np.maximum(end, start), drafts))
        self._ends.append((start, end))
        return len(self._spans) - 1

    def resolve(self, calendar: Calendar) -> None:
        """Measure every registered span: all of them, and their overlaps with draft time,
        in one pass and one business-hours call."""
        if not self._spans:
            return
        sizes = [pr.size for pr, _, _, _ in self._spans]
        pr = np.concatenate([x[0] for x in self._spans])
        s = np.concatenate([x[1] for x in self._spans])
        e = np.concatenate([x[2] for x in self._spans])
        drafts = np.repeat([x[3] for x in self._spans], sizes)
        q, os, oe = self._overlaps(np.where(drafts, pr, -1), s, e)
        worked = getattr(calendar, "worked_ns", None)
        if worked is None:
            bh = business_hours(calendar, np.concatenate([s, os]), np.concatenate([e, oe]))
        else:
            bh = self._business_hours(worked, os, oe)
        over_h = np.bincount(q, weights=(oe - os) / US_PER_HOUR, minlength=s.size).astype(float)
        over_b = np.bincount(q, weights=bh[s.size :], minlength=s.size).astype(float)
        h = (e - s) / US_PER_HOUR
        cuts = np.cumsum(sizes)[:-1]
        self._out = list(
            zip(
                np.split(h, cuts),
                np.split(bh[: s.size], cuts),
                np.split(over_h, cuts),
                np.split(over_b, cuts),
                strict=True,
            )
        )

    def _business_hours(self, worked: Any, os: F64, oe: F64) -> F64:
        """:func:`business_hours` of every span, then of every overlap ``os..oe``, to the
        last bit, with each distinct start or end array measured once (one
        ``calendar.worked_ns`` call; it reads the same instants the same way): a span's hours
        are its end's working ns less its start's, over an hour, 0 unless it ends after it
        starts, NaN when either is missing; an end clamped up to its start (``add``) gives
        the same."""
        arrays: list[F64] = []
        offset: dict[int, int] = {}
        size = 0
        for a in (x for pair in self._ends for x in pair):
            if id(a) not in offset:  # alive in self._ends: ids are not reused meanwhile
                offset[id(a)] = size
                size += a.size
                arrays.append(a)
        t = utc_datetime64(np.concatenate([*arrays, os, oe])).astype("datetime64[ns]")
        w = worked(t)
        t_ns = t.view(np.int64)

        def at(side: int) -> I64:
            rows = [offset[id(pair[side])] + np.arange(pair[side].size) for pair in self._ends]
            rows.append(size + np.arange(os.size) + (os.size if side else 0))
            return np.concatenate(rows)

        start, end = at(0), at(1)
        ts, te = t_ns[start], t_ns[end]
        diff = np.where(te > ts, np.maximum(w[end] - w[start], 0), 0)
        out: F64 = np.where((ts == NAT_NS) | (te == NAT_NS), np.nan, diff / HOUR_NS)
        return out

    def get(self, handle: int) -> tuple[F64, F64]:
        """(calendar hours, business hours) of the spans registered under ``handle``, draft
        time left out (when registered so) and floored at zero."""
        h, bh, over_h, over_bh = self._out[handle]
        return np.maximum(h - over_h, 0.0), np.maximum(bh - over_bh, 0.0)

    def raw(self, handle: int) -> tuple[F64, F64]:
        """(calendar hours, business hours) of the spans, draft time kept in."""
        h, bh, _, _ = self._out[handle]
        return h, bh

    def drafted(self, handle: int) -> tuple[F64, F64]:
        """(calendar hours, business hours) of draft time inside each span."""
        _, _, over_h, over_bh = self._out[handle]
        return over_h, over_bh

    def _overlaps(self, pr: I64, s: F64, e: F64) -> tuple[I64, F64, F64]:
        """For each span, its overlaps with its PR's draft intervals (query index, start,
        end); a span with ``pr`` -1 keeps its draft time."""
        keep = pr >= 0
        lo = np.where(keep, self._lo[pr], 0)
        counts = np.where(keep, self._hi[pr] - self._lo[pr], 0)
        total = int(counts.sum())
        if total == 0:
            return _no_overlap()
        q = np.repeat(np.arange(pr.size), counts)
        offset = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
        d = np.repeat(lo, counts) + offset
        os = np.maximum(s[q], self._d_start[d])
        oe = np.minimum(e[q], self._d_end[d])
        hit = oe > os  # NaN spans compare False
        return q[hit], os[hit], oe[hit]


def _no_overlap() -> tuple[I64, F64, F64]:
    return np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0)


def business_hours(calendar: Calendar, start: F64, end: F64) -> F64:
    """``calendar.business_hours`` on float-us columns (NaN where either side is missing)."""
    if start.size == 0:
        return np.zeros(0)
    return np.asarray(calendar.business_hours(utc_datetime64(start), utc_datetime64(end)),
                      dtype=float)
