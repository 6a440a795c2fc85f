"""Records to columns: one pass over the PRs, then numpy arrays for everything else.

Every instant becomes a float64 count of microseconds since the Unix epoch (exact for any
date this century: integers below 2**53), with ``NaN`` for a missing one. Identity questions
are memoised per distinct login, so a 100,000-PR organisation asks the regular expressions a
few hundred times, not a million.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain
from operator import attrgetter
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from jobs.codec import PrRow
from jobs.identity import Identity
from jobs.model import PullRequest

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]
Obj = npt.NDArray[np.object_]

US_PER_HOUR = 3_600_000_000.0
US_PER_MIN = 60_000_000.0

# event kinds as small integers (order matters only for readability)
READY, DRAFT, REQUESTED, REMOVED, PUSHED, REOPENED, CLOSED, MERGED, OTHER = range(9)
EVENT_CODES: dict[str, int] = {
    "ready_for_review": READY,
    "convert_to_draft": DRAFT,
    "review_requested": REQUESTED,
    "review_request_removed": REMOVED,
    "head_pushed": PUSHED,
    "reopened": REOPENED,
    "closed": CLOSED,
    "merged": MERGED,
}
# review states that count as a submitted review for the clocks (docs/metrics.md "PR timeline events")
APPROVED, CHANGES, COMMENTED, DISMISSED, PENDING = range(5)
STATE_CODES: dict[str, int] = {
    "APPROVED": APPROVED,
    "CHANGES_REQUESTED": CHANGES,
    "COMMENTED": COMMENTED,
    "DISMISSED": DISMISSED,
    "PENDING": PENDING,
}
KIND_NAMES: tuple[str, ...] = ("human", "bot", "ai", "deleted")
HUMAN, BOT, AI, DELETED = range(4)


@dataclass(frozen=True, slots=True)
class Columns:
    """The PRs, their events, reviews and check attempts as flat arrays (see module docstring).

    ``ev_*``, ``rv_*`` and ``ck_*`` rows are sorted by (PR index, time) with ties in record
    order; ``*_pr`` holds the index of the PR each row belongs to.
    """

    prs: Sequence[PullRequest]
    identity: Identity
    n: int
    repo: Obj
    number: I64
    title: Obj
    url: Obj
    author: Obj
    author_lower: Obj
    author_kind: npt.NDArray[np.int8]
    draft: B
    bot: B
    ai_assisted: B
    created: F64
    merged: F64
    closed: F64
    first_commit: F64
    size: I64
    head_sha: Obj
    ev_pr: I64
    ev_kind: npt.NDArray[np.int8]
    ev_at: F64
    ev_reviewer: Obj  # lower-cased login, or None
    ev_team: Obj  # team slug (lower-cased), or None
    ev_has_reviewer: B
    ev_has_team: B
    rv_pr: I64
    rv_author: Obj  # login as GitHub gave it, or None for a deleted account
    rv_lower: Obj
    rv_kind: npt.NDArray[np.int8]
    rv_state: npt.NDArray[np.int8]
    rv_at: F64
    rv_by_pr_author: B
    rv_has_author: B  # False for a deleted account
    ck_pr: I64
    ck_name: Obj
    ck_run_id: I64
    ck_attempt: I64
    ck_head_sha: Obj
    ck_created: F64
    ck_started: F64
    ck_completed: F64
    ck_conclusion: Obj
    ck_done: B  # has a conclusion
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def key(self) -> Obj:
        """``owner/name#number`` of every PR."""
        found = self.memo.get("key")
        if found is None:
            found = self.memo["key"] = np.array(
                [f"{r}#{k}" for r, k in zip(self.repo, self.number, strict=True)], dtype=object
            )
        return found


def columns(prs: Sequence[PullRequest] | Columns, *, identity: Identity) -> Columns:
    """Flatten ``prs`` once (a :class:`Columns` passes through unchanged)."""
    if isinstance(prs, Columns):
        return prs
    prs = list(prs)
    n = len(prs)
    ai_of = _memo_ai(identity)

    author = _objects([p.author for p in prs])
    author_kind = _kinds(identity, author, _objects([p.author_type for p in prs]))
    ai_assisted = np.fromiter(map(ai_of, prs), np.bool_, n)
    author_lower, _ = _mapped(author, _lower, object)

    per_pr = list(map(attrgetter("events"), prs))
    events = list(chain.from_iterable(per_pr))
    ev_pr = np.repeat(np.arange(n, dtype=np.int64), np.fromiter(map(len, per_pr), np.int64, n))
    ev_kind, _ = _mapped(
        _objects(list(map(attrgetter("kind"), events))), lambda k: EVENT_CODES.get(k, OTHER), np.int8
    )
    ev_reviewer, ev_has_reviewer = _mapped(
        _objects(list(map(attrgetter("requested_reviewer"), events))), _lower, object
    )
    ev_team, ev_has_team = _mapped(_objects(list(map(attrgetter("requested_team"), events))), _lower, object)

    per_pr = list(map(attrgetter("reviews"), prs))
    reviews = list(chain.from_iterable(per_pr))
    rv_pr = np.repeat(np.arange(n, dtype=np.int64), np.fromiter(map(len, per_pr), np.int64, n))
    rv_author = _objects(list(map(attrgetter("author"), reviews)))
    rv_kind = _kinds(identity, rv_author, _objects(list(map(attrgetter("author_type"), reviews))))
    rv_state, _ = _mapped(
        _objects(list(map(attrgetter("state"), reviews))),
        lambda s: STATE_CODES.get(s, PENDING),
        np.int8,
    )
    rv_lower, rv_has_author = _mapped(rv_author, _lower, object)
    rv_by_author = (rv_lower == author_lower[rv_pr]) & rv_has_author

    per_pr = list(map(attrgetter("checks"), prs))
    checks = list(chain.from_iterable(per_pr))
    m = len(checks)
    ck_pr = np.repeat(np.arange(n, dtype=np.int64), np.fromiter(map(len, per_pr), np.int64, n))
    ck_conclusion, ck_done = _mapped(_objects(list(map(attrgetter("conclusion"), checks))), _same, object)

    # every instant in one conversion (one pass of pandas' parser instead of nine)
    (created, merged, closed, first_commit, ev_at, rv_at, ck_created, ck_started,
     ck_completed) = _times_of(
        [p.created_at for p in prs],
        [p.merged_at for p in prs],
        [p.closed_at for p in prs],
        [p.first_commit_at for p in prs],
        list(map(attrgetter("at"), events)),
        list(map(attrgetter("submitted_at"), reviews)),
        list(map(attrgetter("created_at"), checks)),
        list(map(attrgetter("started_at"), checks)),
        list(map(attrgetter("completed_at"), checks)),
    )
    order = _by_pr_then_time(ev_pr, ev_at)
    rorder = _by_pr_then_time(rv_pr, rv_at)
    corder = _by_pr_then_time(ck_pr, ck_created)

    return Columns(
        prs=prs,
        identity=identity,
        n=n,
        repo=np.array([p.repo for p in prs], dtype=object),
        number=np.fromiter((p.number for p in prs), np.int64, n),
        title=np.array([p.title for p in prs], dtype=object),
        url=np.array([p.url for p in prs], dtype=object),
        author=author,
        author_lower=author_lower,
        author_kind=author_kind,
        draft=np.fromiter((p.draft for p in prs), np.bool_, n),
        bot=author_kind == BOT,
        ai_assisted=ai_assisted,
        created=created,
        merged=merged,
        closed=closed,
        first_commit=first_commit,
        size=np.fromiter((p.additions + p.deletions for p in prs), np.int64, n),
        head_sha=np.array([p.head_sha for p in prs], dtype=object),
        ev_pr=ev_pr[order],
        ev_kind=ev_kind[order],
        ev_at=ev_at[order],
        ev_reviewer=ev_reviewer[order],
        ev_team=ev_team[order],
        ev_has_reviewer=ev_has_reviewer[order],
        ev_has_team=ev_has_team[order],
        rv_pr=rv_pr[rorder],
        rv_author=rv_author[rorder],
        rv_lower=rv_lower[rorder],
        rv_kind=rv_kind[rorder],
        rv_state=rv_state[rorder],
        rv_at=rv_at[rorder],
        rv_by_pr_author=rv_by_author[rorder],
        rv_has_author=rv_has_author[rorder],
        ck_pr=ck_pr[corder],
        ck_name=np.array(list(map(attrgetter("name"), checks)), dtype=object)[corder],
        ck_run_id=np.fromiter(map(attrgetter("run_id"), checks), np.int64, m)[corder],
        ck_attempt=np.fromiter(map(attrgetter("attempt"), checks), np.int64, m)[corder],
        ck_head_sha=np.array(list(map(attrgetter("head_sha"), checks)), dtype=object)[corder],
        ck_created=ck_created[corder],
        ck_started=ck_started[corder],
        ck_completed=ck_completed[corder],
        ck_conclusion=ck_conclusion[corder],
        ck_done=ck_done[corder],
    )


def columns_from_rows(rows: Sequence[PrRow], *, identity: Identity) -> Columns:
    """The same :class:`Columns` as :func:`columns`, from the PRs' stored column rows
    (``jobs.codec.PrRow``): lists concatenated into arrays, no record or datetime object made
    per event, review or attempt (issue 14: reading 100k PRs must not cost more than the
    metrics). Rows come in any order; PRs are put in (repo, number) order."""
    rows = sorted(rows, key=attrgetter("repo", "number"))
    n = len(rows)
    ai_of = _memo_ai(identity)

    def flat(name: str) -> list[Any]:
        return list(chain.from_iterable(map(attrgetter(name), rows)))

    def instants(values: list[Any]) -> F64:
        return np.array(values, dtype=np.float64) if values else np.zeros(0, dtype=np.float64)

    def counts(name: str) -> I64:
        return np.fromiter(map(len, map(attrgetter(name), rows)), np.int64, n)

    pr_index = np.arange(n, dtype=np.int64)
    author = _objects([r.author for r in rows])
    author_kind = _kinds(identity, author, _objects([r.author_type for r in rows]))
    author_lower, _ = _mapped(author, _lower, object)

    ev_pr = np.repeat(pr_index, counts("ev_at"))
    ev_kind, _ = _mapped(_objects(flat("ev_kind")), lambda k: EVENT_CODES.get(k, OTHER), np.int8)
    ev_reviewer, ev_has_reviewer = _mapped(_objects(flat("ev_reviewer")), _lower, object)
    ev_team, ev_has_team = _mapped(_objects(flat("ev_team")), _lower, object)
    ev_at = instants(flat("ev_at"))

    rv_pr = np.repeat(pr_index, counts("rv_at"))
    rv_author = _objects(flat("rv_author"))
    rv_kind = _kinds(identity, rv_author, _objects(flat("rv_type")))
    rv_state, _ = _mapped(_objects(flat("rv_state")), lambda s: STATE_CODES.get(s, PENDING), np.int8)
    rv_lower, rv_has_author = _mapped(rv_author, _lower, object)
    rv_by_author = (rv_lower == author_lower[rv_pr]) & rv_has_author
    rv_at = instants(flat("rv_at"))

    ck_pr = np.repeat(pr_index, counts("ck_created"))
    ck_conclusion, ck_done = _mapped(_objects(flat("ck_conclusion")), _same, object)
    ck_created = instants(flat("ck_created"))
    m = ck_created.size

    order = _by_pr_then_time(ev_pr, ev_at)
    rorder = _by_pr_then_time(rv_pr, rv_at)
    corder = _by_pr_then_time(ck_pr, ck_created)
    return Columns(
        prs=(),
        identity=identity,
        n=n,
        repo=_objects([r.repo for r in rows]),
        number=np.fromiter((r.number for r in rows), np.int64, n),
        title=_objects([r.title for r in rows]),
        url=_objects([r.url for r in rows]),
        author=author,
        author_lower=author_lower,
        author_kind=author_kind,
        draft=np.fromiter((r.draft for r in rows), np.bool_, n),
        bot=author_kind == BOT,
        ai_assisted=np.fromiter(map(ai_of, rows), np.bool_, n),
        created=instants([r.created for r in rows]),
        merged=instants([r.merged for r in rows]),
        closed=instants([r.closed for r in rows]),
        first_commit=instants([r.first_commit for r in rows]),
        size=np.fromiter((r.size for r in rows), np.int64, n),
        head_sha=_objects([r.head_sha for r in rows]),
        ev_pr=ev_pr[order],
        ev_kind=ev_kind[order],
        ev_at=ev_at[order],
        ev_reviewer=ev_reviewer[order],
        ev_team=ev_team[order],
        ev_has_reviewer=ev_has_reviewer[order],
        ev_has_team=ev_has_team[order],
        rv_pr=rv_pr[rorder],
        rv_author=rv_author[rorder],
        rv_lower=rv_lower[rorder],
        rv_kind=rv_kind[rorder],
        rv_state=rv_state[rorder],
        rv_at=rv_at[rorder],
        rv_by_pr_author=rv_by_author[rorder],
        rv_has_author=rv_has_author[rorder],
        ck_pr=ck_pr[corder],
        ck_name=_objects(flat("ck_name"))[corder],
        ck_run_id=np.fromiter(chain.from_iterable(map(attrgetter("ck_run_id"), rows)), np.int64, m)[corder],
        ck_attempt=np.fromiter(chain.from_iterable(map(attrgetter("ck_attempt"), rows)), np.int64, m)[corder],
        ck_head_sha=_objects(flat("ck_head_sha"))[corder],
        ck_created=ck_created[corder],
        ck_started=instants(flat("ck_started"))[corder],
        ck_completed=instants(flat("ck_completed"))[corder],
        ck_conclusion=ck_conclusion[corder],
        ck_done=ck_done[corder],
    )


def frame(data: dict[str, Any]) -> pd.DataFrame:
    """A DataFrame from columns; object arrays stay ``object`` (inferring pandas' string
    dtype costs more than every other step of a table)."""
    return pd.DataFrame(
        {
            k: pd.Series(v, dtype=object, copy=False)
            if isinstance(v, np.ndarray) and v.dtype == object
            else v
            for k, v in data.items()
        },
        copy=False,
    )


def _times_of(*columns: list[datetime | None]) -> list[F64]:
    """Several lists of instants converted in one call, split back."""
    joined = times(list(chain.from_iterable(columns)))
    return np.split(joined, np.cumsum([len(c) for c in columns[:-1]]))


def _by_pr_then_time(pr: I64, at: F64) -> I64:
    """The order sorting rows by (PR, time), ties in record order; the identity when the
    records already come that way (the usual case: no sort)."""
    if pr.size < 2:
        return np.arange(pr.size)
    step_pr = np.diff(pr)
    if np.all((step_pr > 0) | ((step_pr == 0) & (np.diff(at) >= 0))):
        return np.arange(pr.size)
    return np.lexsort((at, pr))


def times(values: list[datetime | None]) -> F64:
    """Aware datetimes (``None`` allowed) as float microseconds since the epoch, NaN missing."""
    if not values:
        return np.zeros(0, dtype=np.float64)
    try:
        idx = pd.DatetimeIndex(values)
    except (ValueError, TypeError):  # mixed zones: let pandas bring them all to UTC
        idx = pd.DatetimeIndex(pd.to_datetime(values, utc=True))
    if idx.tz is None:
        idx = idx.tz_localize("UTC")
    raw = idx.as_unit("us").asi8
    out: F64 = raw.astype(np.float64)  # a new array: safe to write into
    out[idx.isna()] = np.nan
    return out


def us(at: datetime) -> float:
    """One aware datetime as float microseconds since the epoch (same as :func:`times`)."""
    return float(times([at])[0])


def to_datetimes(t: F64) -> pd.DatetimeIndex:
    """Float microseconds (NaN missing) back to a UTC ``DatetimeIndex`` (unit: us)."""
    raw = np.full(t.shape, np.iinfo(np.int64).min, dtype=np.int64)
    ok = ~np.isnan(t)
    raw[ok] = t[ok].astype(np.int64)
    return pd.DatetimeIndex(raw.view("datetime64[us]")).tz_localize("UTC")


def hours(start: F64, end: F64) -> F64:
    """Calendar hours from ``start`` to ``end`` (NaN where either is missing)."""
    return (end - start) / US_PER_HOUR


def group_min(idx: I64, values: F64, n: int) -> F64:
    """The smallest value per group ``0..n-1`` (NaN for an empty group)."""
    out = np.full(n, np.inf)
    if idx.size:
        np.minimum.at(out, idx, values)
    out[np.isinf(out)] = np.nan
    return out


def group_sum(idx: I64, values: F64, n: int) -> F64:
    """The sum per group ``0..n-1`` (0 for an empty group)."""
    if not idx.size:
        return np.zeros(n)
    return np.bincount(idx, weights=values, minlength=n).astype(np.float64)


def _objects(values: list[Any]) -> Obj:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _lower(value: Any) -> Any:
    return value.lower() if value else None


def _same(value: Any) -> Any:
    return value


def _mapped(values: Obj, fn: Any, dtype: Any) -> tuple[Any, B]:
    """``fn`` applied to each distinct value only (``None`` included), then spread back; and
    which values were present (not ``None``)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    table = np.empty(len(uniques) + 1, dtype=dtype)
    table[:-1] = [fn(u) for u in uniques]
    table[-1] = fn(None)
    return table[codes], codes >= 0


def _kinds(identity: Identity, logins: Obj, types: Obj) -> npt.NDArray[np.int8]:
    """``identity.kind`` (as an index into KIND_NAMES) of each (login, account type), asked
    once per distinct pair."""
    lc, lu = pd.factorize(logins, use_na_sentinel=True)
    tc, tu = pd.factorize(types, use_na_sentinel=True)
    width = len(tu) + 1
    pair, pu = pd.factorize((lc.astype(np.int64) + 1) * width + (tc + 1))
    lu_, tu_ = [None, *lu], ["User", *tu]
    table = np.array(
        [KIND_NAMES.index(identity.kind(lu_[p // width], tu_[p % width])) for p in pu], dtype=np.int8
    )
    return table[pair] if len(pair) else np.zeros(0, dtype=np.int8)


def _memo_ai(identity: Identity) -> Any:
    cache: dict[tuple[Any, ...], bool] = {}

    def ai(pr: PullRequest | PrRow) -> bool:  # a row has the same four fields
        key = (pr.author, pr.author_type, pr.labels, pr.co_authors)
        found = cache.get(key)
        if found is None:
            found = cache[key] = identity.is_ai_assisted(pr)  # type: ignore[arg-type]  # duck-typed
        return found

    return ai


def time_ranks(cols: Columns) -> tuple[I64, I64, np.int64]:
    """Dense ranks of every event and review instant in one shared order (memoised), and
    the width that packs (group, rank) into one int64 key."""
    found = cols.memo.get("ranks")
    if found is None:
        both = np.concatenate([cols.ev_at, cols.rv_at])
        universe, rank = np.unique(both, return_inverse=True)
        found = cols.memo["ranks"] = (
            rank[: cols.ev_at.size],
            rank[cols.ev_at.size :],
            np.int64(universe.size + 1),
        )
    return found


def next_in_group(q_grp: I64, q_rank: I64, r_grp: I64, r_rank: I64, width: np.int64, *,
                  strict: bool) -> I64:
    """For each query (group, rank), the index of the first row of ``r`` in the same group at
    a later rank (``strict``) or at the same rank or later (ties: first in ``r`` order); -1
    when none. Ranks come from :func:`time_ranks`; groups are non-negative integers."""
    out = np.full(q_grp.size, -1, dtype=np.int64)
    if not q_grp.size or not r_grp.size:
        return out
    rk = r_grp.astype(np.int64) * width + r_rank
    order = np.argsort(rk, kind="stable")
    rks = rk[order]
    qk = q_grp.astype(np.int64) * width + q_rank
    pos = np.searchsorted(rks, qk, side="right" if strict else "left")
    ok = pos < rks.size
    ok[ok] = rks[pos[ok]] // width == q_grp[ok]
    out[ok] = order[pos[ok]]
    return out


def any_earlier_in_group(q_grp: I64, q_rank: I64, r_grp: I64, r_rank: I64,
                         width: np.int64) -> B:
    """For each query (group, rank), whether ``r`` has a row in the same group at an earlier
    rank."""
    if not q_grp.size or not r_grp.size:
        return np.zeros(q_grp.size, dtype=bool)
    rks = np.sort(r_grp.astype(np.int64) * width + r_rank)
    qk = q_grp.astype(np.int64) * width + q_rank
    prev = np.searchsorted(rks, qk, side="left") - 1
    ok = prev >= 0
    ok[ok] = rks[prev[ok]] // width == q_grp[ok]
    return ok


def local_days(calendar: Any, t: F64) -> npt.NDArray[np.datetime64]:
    """The team-local date of each instant as ``datetime64[D]`` (NaT where missing)."""
    if t.size == 0:
        return np.zeros(0, dtype="datetime64[D]")
    dates = getattr(calendar, "local_dates", None)
    if dates is not None:
        return np.asarray(dates(to_datetimes(t)), dtype="datetime64[D]")
    local = to_datetimes(t).tz_convert(calendar.tz).tz_localize(None)
    return np.asarray(local.values.astype("datetime64[D]"))


def expand(keys: I64, table_keys: I64, table_values: I64) -> tuple[I64, I64]:
    """Join each of ``keys`` with every row of a lookup table sorted by key.

    Returns (index into ``keys``, matching value) pairs, in ``keys`` order: a vectorised
    one-to-many lookup (team -> members, login -> teams) with no loop per row.
    """
    lo = np.searchsorted(table_keys, keys, side="left")
    hi = np.searchsorted(table_keys, keys, side="right")
    counts = hi - lo
    total = int(counts.sum())
    row = np.repeat(np.arange(keys.size, dtype=np.int64), counts)
    offset = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    return row, table_values[np.repeat(lo, counts) + offset]
