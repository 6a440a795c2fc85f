"""The per-PR table: timeline, the four stages, the latency clocks, handoff tax, CI wait.

docs/metrics.md "PR timeline events", "Stages of a merged PR" and "Precise readings". Vectorised:
the records are flattened once (:mod:`jobs.metrics._columns`), every clock of every PR is a
numpy column, and business hours come from one ``calendar.business_hours`` call.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import pandas as pd

from jobs.identity import Identity
from jobs.metrics._columns import (
    CHANGES,
    F64,
    I64,
    PUSHED,
    REQUESTED,
    Columns,
    columns,
    frame,
    group_sum,
    next_in_group,
    text_column,
    time_ranks,
    to_datetimes_many,
    us,
)
from jobs.metrics._events import Calendar, Timeline, Waits, timeline
from jobs.model import SIZE_BUCKETS, PullRequest

# the buckets of jobs.model.SIZE_BUCKETS (defined once there), as searchsorted edges
SIZE_LABELS: tuple[str, ...] = (*(name for name, _ in SIZE_BUCKETS), "XL")
SIZE_EDGES: tuple[int, ...] = tuple(limit for _, limit in SIZE_BUCKETS)
STAGES: tuple[str, ...] = ("coding", "pickup", "review", "merge")


def pr_table(
    prs: Sequence[PullRequest] | Columns,
    *,
    identity: Identity,
    calendar: Calendar,
    now: datetime,
    required_approvals: int = 1,
) -> pd.DataFrame:
    """One row per PR with its timeline and every per-PR duration, as of ``now``: the
    vectorised twin of ``jobs.timeline.pr_clocks``, equal to it within 1e-9 h on every clock.

    Columns (instants are ``datetime64[us, UTC]``, NaT when the event did not happen;
    durations are float hours, ``*_h`` calendar and ``*_bh`` the team's business hours):

    - facts: ``repo, number, key, url, title, author, state`` (open/merged/closed as of
      ``now``), ``bot`` (non-AI bot author: left out of latency), ``ai_assisted``, ``draft``
      (now), ``size`` (additions + deletions), ``size_bucket`` (XS/S/M/L/XL);
    - events: ``created_at, ready_at, first_request_at, first_human_review_at,
      first_reviewer`` (login, None for a deleted account), ``first_ai_review_at,
      approved_at, merged_at, closed_at``;
    - ``draft_h``: time back in draft after ready, up to the end (left out of every waiting
      clock, counted as coding);
    - the four stages, for every PR up to its end (merge, close, or ``now`` while open):
      ``coding_h`` (work start: the first commit authored, opened when unknown, no later
      than ready; to ready, plus draft time), ``pickup_h`` (ready to first human review), ``review_h`` (to approval),
      ``merge_h`` (to the end); a missing event collapses its stage to zero, so they add up
      to ``lead_h`` (work start to merge; running while open; NaN when closed unmerged);
    - latency clocks from ready (NaN if never ready), stopping no later than the end, running
      to ``now`` while open, NaN on a closed PR without the stop event:
      ``time_to_approval_h``, ``time_to_merge_h``, ``first_ai_review_h`` (NaN without an AI
      review); ``pickup_wait_h`` is ``pickup_h`` where a human review stopped it (ready and
      review at or before the end), else NaN: what pickup latency is over;
    - handoff tax: ``author_turn_h`` (review stage time after a human request for changes
      until the next push, review request or human review), ``reviewer_turn_h`` (the rest
      of review), ``handoff_h`` = pickup + reviewer turn + merge wait (CI waits fall inside
      these, so they are not added again);
    - ``ci_wait_h``: time from ready to the end during which any CI attempt on the PR was
      queued or running (their union), draft time left out.

    Use :func:`jobs.metrics.window` before taking percentiles: only merged PRs have final
    values. Raises nothing on odd data; events after ``now`` are ignored.
    """
    cols = columns(prs, identity=identity)
    n = cols.n
    now_us = us(now)
    tl = timeline(cols, now=now_us, required_approvals=required_approvals)
    waits = Waits(tl.d_pr, tl.d_start, tl.d_end, n)
    idx = np.arange(n, dtype=np.int64)

    merged, end, ready = tl.merged, tl.end, tl.ready
    is_open = np.isnan(merged) & np.isnan(tl.closed)
    # Stage boundaries (jobs.timeline's reading): work start (the first commit, opened when
    # there is none; never later than ready nor the end), ready, first human review, approval, end. An event missing or later than
    # ``end`` takes the next boundary that exists (never ready: all of it is coding); one
    # earlier than the boundary before it moves up to it. So a missing event collapses its
    # stage to zero and the four stages always add up to lead time.
    never_ready = np.isnan(ready)
    r1 = np.where(ready <= end, ready, np.nan)
    r2 = np.where(~never_ready & (tl.first_human_review <= end), tl.first_human_review, np.nan)
    r3 = np.where(~never_ready & (tl.approved <= end), tl.approved, np.nan)
    b0 = np.where(np.isnan(cols.first_commit), cols.created, cols.first_commit)
    b0 = np.minimum(np.fmin(b0, ready), end)  # fmin: a PR never ready keeps its start
    b3 = np.where(np.isnan(r3), end, r3)
    b2 = np.where(np.isnan(r2), b3, r2)
    b1 = np.where(np.isnan(r1), b2, r1)
    b1 = np.maximum(b1, b0)
    b2 = np.maximum(b2, b1)
    b3 = np.maximum(b3, b2)
    b4 = np.maximum(end, b3)
    h_coding = waits.add(idx, b0, b1, drafts=False)
    h_later = waits.add(idx, b1, b4)  # its draft part is the author's: it counts as coding
    h_pickup = waits.add(idx, b1, b2)
    h_review = waits.add(idx, b2, b3)
    h_merge = waits.add(idx, b3, b4)
    h_lead = waits.add(idx, b0, b4, drafts=False)
    closed_unmerged = ~np.isnan(tl.closed) & np.isnan(merged)

    # Clocks from ready (none if never ready), stopping no later than ``end``; a missing stop
    # runs to ``now`` while the PR is open, else the clock has no value; a stop before ready
    # reads zero.
    h_appr = waits.add(idx, ready, np.minimum(_stop(tl.approved, is_open, tl.now), end))
    h_ttm = waits.add(idx, ready, np.minimum(_stop(merged, is_open, tl.now), end))
    h_ai = waits.add(idx, ready, np.minimum(tl.first_ai_review, end))
    h_alive = waits.add(idx, ready, end)

    turn_pr, turn_s, turn_e = _author_turns(cols, tl, b2, b3)
    h_turn = waits.add(turn_pr, turn_s, turn_e)
    ci_pr, ci_s, ci_e = _ci_spans(cols, tl)
    h_ci = waits.add(ci_pr, ci_s, ci_e)
    waits.resolve(calendar)
    reviewed = ~np.isnan(r1) & ~np.isnan(r2)

    created_at, ready_at, first_request_at, first_human_review_at, first_ai_review_at, \
        approved_at, merged_at, closed_at = to_datetimes_many(
            cols.created, ready, tl.first_request, tl.first_human_review, tl.first_ai_review,
            tl.approved, merged, tl.closed)
    out: dict[str, object] = {
        "repo": cols.repo,
        "number": cols.number,
        "key": cols.key,
        "url": cols.url,
        "title": cols.title,
        "author": cols.author,
        "state": text_column(STATES, state_codes(tl)),
        "bot": cols.bot,
        "ai_assisted": cols.ai_assisted,
        "draft": cols.draft,
        "size": cols.size,
        "size_bucket": size_buckets(cols.size),
        "created_at": created_at,
        "ready_at": ready_at,
        "first_request_at": first_request_at,
        "first_human_review_at": first_human_review_at,
        "first_reviewer": tl.first_human_reviewer,
        "first_ai_review_at": first_ai_review_at,
        "approved_at": approved_at,
        "merged_at": merged_at,
        "closed_at": closed_at,
    }
    for unit, sfx in ((0, "_h"), (1, "_bh")):
        pickup, review, merge = (waits.get(h)[unit] for h in (h_pickup, h_review, h_merge))
        author_turn = group_sum(turn_pr, waits.get(h_turn)[unit], n)
        reviewer_turn = np.maximum(review - author_turn, 0.0)
        out["draft" + sfx] = waits.drafted(h_alive)[unit]
        lead = waits.raw(h_lead)[unit]
        out["coding" + sfx] = waits.raw(h_coding)[unit] + waits.drafted(h_later)[unit]
        out["pickup" + sfx] = pickup
        out["review" + sfx] = review
        out["merge" + sfx] = merge
        out["lead" + sfx] = np.where(closed_unmerged, np.nan, lead)
        out["pickup_wait" + sfx] = np.where(reviewed, pickup, np.nan)
        out["time_to_approval" + sfx] = waits.get(h_appr)[unit]
        out["time_to_merge" + sfx] = waits.get(h_ttm)[unit]
        out["first_ai_review" + sfx] = waits.get(h_ai)[unit]
        out["author_turn" + sfx] = author_turn
        out["reviewer_turn" + sfx] = reviewer_turn
        out["handoff" + sfx] = pickup + reviewer_turn + merge
        out["ci_wait" + sfx] = np.where(never_ready, np.nan, group_sum(ci_pr, waits.get(h_ci)[unit], n))
    return frame(out)


STATES: tuple[str, ...] = ("merged", "closed", "open")


def state_codes(tl: Timeline) -> I64:
    """Each PR's state as of the timeline's ``now``, as an index into :data:`STATES`."""
    return np.where(~np.isnan(tl.merged), 0, np.where(~np.isnan(tl.closed), 1, 2))


def size_buckets(size: I64) -> np.ndarray:
    """XS <= 50, S <= 200, M <= 400, L <= 800, XL above (docs/metrics.md "PR size")."""
    return np.asarray(SIZE_LABELS, dtype=object)[np.searchsorted(SIZE_EDGES, size, side="left")]


def _stop(t: F64, is_open: np.ndarray, now: float) -> F64:
    """A clock's stop: ``t``, or ``now`` for a PR still open without it (running)."""
    return np.where(np.isnan(t) & is_open, now, t)


def _author_turns(cols: Columns, tl: Timeline, t2: F64, t3: F64) -> tuple[I64, F64, F64]:
    """The author's turns inside each merged PR's review stage.

    A turn starts at a human request for changes and lasts until the next push, review
    request or human review (whichever comes first), as the queue's "author" bucket reads it.
    """
    ev_rank, rv_rank, width = time_ranks(cols)
    cr = tl.human_review & (cols.rv_state == CHANGES)
    q_pr, q_t = cols.rv_pr[cr], cols.rv_at[cr]
    seen = cols.ev_at <= tl.now
    moves = seen & ((cols.ev_kind == PUSHED) | (cols.ev_kind == REQUESTED))
    r_pr = np.concatenate([cols.ev_pr[moves], cols.rv_pr[tl.human_review]])
    r_t = np.concatenate([cols.ev_at[moves], cols.rv_at[tl.human_review]])
    r_rank = np.concatenate([ev_rank[moves], rv_rank[tl.human_review]])
    nxt = next_in_group(q_pr, rv_rank[cr], r_pr, r_rank, width, strict=True)
    stop = np.where(nxt >= 0, r_t[np.maximum(nxt, 0)], tl.end[q_pr])
    start = np.maximum(q_t, t2[q_pr])
    stop = np.minimum(stop, t3[q_pr])
    return q_pr, start, np.maximum(stop, start)


def _ci_spans(cols: Columns, tl: Timeline) -> tuple[I64, F64, F64]:
    """The union of each PR's CI attempts (queued or running), clipped to ready..end."""
    pr, start = cols.ck_pr, cols.ck_created
    stop = np.where(np.isnan(cols.ck_completed), tl.now, cols.ck_completed)
    keep = start <= tl.now
    pr, start, stop = pr[keep], start[keep], np.maximum(stop[keep], start[keep])
    if not pr.size:
        return pr, start, stop
    # each attempt's reach: the latest stop so far on its PR (a running maximum restarting
    # at each PR: rows are in PR order, so ranks offset by PR make one running maximum)
    universe, rank = np.unique(stop, return_inverse=True)
    offset = pr.astype(np.int64) * universe.size
    reach = universe[np.maximum.accumulate(offset + rank.reshape(-1)) - offset]
    new = np.ones(pr.size, dtype=bool)
    new[1:] = (pr[1:] != pr[:-1]) | (start[1:] > reach[:-1])
    heads = np.flatnonzero(new)
    seg_pr = pr[heads]
    seg_s = start[heads]
    seg_e = np.maximum.reduceat(stop, heads)
    seg_s = np.maximum(seg_s, tl.ready[seg_pr])
    seg_e = np.minimum(seg_e, tl.end[seg_pr])
    return seg_pr, seg_s, np.maximum(seg_e, seg_s)
