"""Records to columns: one pass over the PRs, then numpy arrays for everything else.

Every instant becomes a float64 count of microseconds since the Unix epoch (exact for any
date this century: integers below 2**53), with ``NaN`` for a missing one. Identity questions
are memoised per distinct login, so a 100,000-PR organisation asks the regular expressions a
few hundred times, not a million.
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from jobs import columnar
from jobs.columnar import PrBlock
from jobs.identity import Identity
from jobs.model import PullRequest

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]
Obj = npt.NDArray[np.object_]

US_PER_HOUR = 3_600_000_000.0
NAT_NS = int(np.iinfo(np.int64).min)  # NaT as int64
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
    open: B  # state is "open" (not merged, not closed)
    ev_pr: I64
    ev_kind: npt.NDArray[np.int8]
    ev_at: F64
    ev_reviewer: Obj  # lower-cased login, or None
    ev_team: Obj  # team slug (lower-cased), or None
    ev_has_reviewer: B
    ev_has_team: B
    ev_requested: Obj  # who a request names, as the queue lists them: login or "team:slug" (case kept)
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
            found = self.memo["key"] = _objects(
                [f"{r}#{k}" for r, k in zip(self.repo.tolist(), self.number.tolist(), strict=True)]
            )
        return found


def columns(prs: Sequence[PullRequest] | PrBlock | Sequence[PrBlock] | Columns, *,
            identity: Identity) -> Columns:
    """Flatten ``prs`` once: records (in their order), or the column blocks the store keeps
    (``jobs.columnar``, one per repository, one after another); a :class:`Columns` passes
    through unchanged. Both ways go through the same block, so they agree by construction."""
    if isinstance(prs, Columns):
        return prs
    if isinstance(prs, PrBlock):
        block = prs
    else:
        items = list(prs)
        if items and all(isinstance(b, PrBlock) for b in items):
            block = columnar.concat(items)  # type: ignore[arg-type]  # checked just above
        else:
            block = columnar.from_records(items)  # type: ignore[arg-type]  # records
    return _from_block(block, identity)


def _from_block(b: PrBlock, identity: Identity) -> Columns:
    """The :class:`Columns` of a block: identity asked once per distinct login (or PR trait
    combination), child rows put in (PR, time) order."""
    n = b.n
    a = b.arrays
    pr_index = np.arange(n, dtype=np.int64)
    ev_pr = np.repeat(pr_index, a["ev_count"])
    rv_pr = np.repeat(pr_index, a["rv_count"])
    ck_pr = np.repeat(pr_index, a["ck_count"])

    author_lower = b.mapped("author", _lower, object)
    author_kind = _kinds(identity, b, "author", "author_type")
    rv_lower = b.mapped("rv_author", _lower, object)
    rv_has_author = b.mapped("rv_author", _present, np.bool_)
    rv_by_author = (rv_lower == author_lower[rv_pr]) & rv_has_author

    order = _by_pr_then_time(ev_pr, a["ev_at"])
    rorder = _by_pr_then_time(rv_pr, a["rv_at"])
    corder = _by_pr_then_time(ck_pr, a["ck_created"])
    ev: dict[str, Any] = {"ev_pr": ev_pr, "ev_kind": b.mapped("ev_kind", lambda k: EVENT_CODES.get(k, OTHER), np.int8),
          "ev_at": a["ev_at"], "ev_reviewer": b.mapped("ev_reviewer", _lower, object),
          "ev_team": b.mapped("ev_team", _lower, object),
          "ev_has_reviewer": b.mapped("ev_reviewer", _present, np.bool_),
          "ev_has_team": b.mapped("ev_team", _present, np.bool_),
          "ev_requested": np.where(b.mapped("ev_reviewer", bool, np.bool_),
                                   b.text("ev_reviewer"),
                                   b.mapped("ev_team", lambda t: f"team:{t}" if t else None, object))}
    rv: dict[str, Any] = {"rv_pr": rv_pr, "rv_author": b.text("rv_author"), "rv_lower": rv_lower,
          "rv_kind": _kinds(identity, b, "rv_author", "rv_type"),
          "rv_state": b.mapped("rv_state", lambda s: STATE_CODES.get(s, PENDING), np.int8),
          "rv_at": a["rv_at"], "rv_by_pr_author": rv_by_author, "rv_has_author": rv_has_author}
    ck: dict[str, Any] = {"ck_pr": ck_pr, "ck_name": b.text("ck_name"), "ck_run_id": a["ck_run_id"],
          "ck_attempt": a["ck_attempt"], "ck_head_sha": b.text("ck_head_sha"),
          "ck_created": a["ck_created"], "ck_started": a["ck_started"],
          "ck_completed": a["ck_completed"], "ck_conclusion": b.text("ck_conclusion"),
          "ck_done": b.mapped("ck_conclusion", _present, np.bool_)}
    children: dict[str, Any] = {}
    for rows, order_of in ((ev, order), (rv, rorder), (ck, corder)):
        if order_of is None:  # already in (PR, time) order: the usual case, nothing to copy
            children.update(rows)
        else:
            children.update({k: np.ascontiguousarray(v[order_of]) for k, v in rows.items()})
    return Columns(
        identity=identity,
        n=n,
        repo=b.text("repo"),
        number=a["number"].astype(np.int64),
        title=_objects(b.texts["title"]),
        url=_objects(b.texts["url"]),
        author=b.text("author"),
        author_lower=author_lower,
        author_kind=author_kind,
        draft=a["draft"].astype(np.bool_),
        bot=author_kind == BOT,
        ai_assisted=_ai_assisted(identity, b),
        created=a["created"].astype(np.float64),
        merged=a["merged"].astype(np.float64),
        closed=a["closed"].astype(np.float64),
        first_commit=a["first_commit"].astype(np.float64),
        size=a["size"].astype(np.int64),
        head_sha=_objects(b.texts["head_sha"]),
        open=a["open"].astype(np.bool_),
        **children,
    )


def frame(data: dict[str, Any]) -> pd.DataFrame:
    """A DataFrame from equal-length columns; object arrays stay ``object`` (inferring pandas'
    string dtype costs more than every other step of a table).

    Built with ``DataFrame._from_arrays`` without pandas' per-column checks, which cost more
    than the numbers in the tables (~20 us a column, ~60 columns, five tables a team): numeric,
    bool and object arrays are stored as they are, an index's array as it is, anything else
    (``<U`` text, ``datetime64[D]``) converted as the public constructor would convert it;
    equal to ``pd.DataFrame`` of the same columns (tested). Falls back to the public
    constructor on a pandas without the private one."""
    if _FROM_ARRAYS is None or not data:
        return _frame_public(data)
    arrays = []
    size = None
    for v in data.values():
        if isinstance(v, np.ndarray) and v.ndim == 1 and v.dtype.kind in "biufO":
            arr: Any = v
        elif isinstance(v, pd.Index):
            arr = v.array
        elif isinstance(v, np.ndarray) and v.dtype == _DAYS:  # pandas keeps dates as seconds
            arr = pd.array(v.astype("datetime64[s]"))
        elif isinstance(v, pd.api.extensions.ExtensionArray) and not isinstance(
                v, pd.arrays.NumpyExtensionArray):
            arr = v  # made as pandas makes it (text_column)
        else:
            arr = pd.Series(v, copy=False).array
        if size is None:
            size = len(arr)
        elif len(arr) != size:
            return _frame_public(data)  # let pandas say what is wrong
        arrays.append(arr)
    names = tuple(data)
    labels = _COLUMN_LABELS.get(names)
    if labels is None:  # an Index is immutable: one per table layout serves every table
        labels = _COLUMN_LABELS[names] = pd.Index(list(names))
    out: pd.DataFrame = _FROM_ARRAYS(arrays, columns=labels, index=pd.RangeIndex(size or 0),
                                     verify_integrity=False)
    return out


_FROM_ARRAYS = getattr(pd.DataFrame, "_from_arrays", None)
_DAYS = np.dtype("datetime64[D]")
_COLUMN_LABELS: dict[tuple[str, ...], pd.Index] = {}
_TEXTS: dict[tuple[str, ...], Any] = {}


def text_column(labels: tuple[str, ...], codes: I64) -> Any:
    """``labels[codes]`` as the column pandas makes of such strings (its string dtype where
    strings are inferred), taken from the labels made once instead of checked row by row."""
    base = _TEXTS.get(labels)
    if base is None:
        base = _TEXTS[labels] = pd.Series(np.array(labels), copy=False).array
    return base.take(codes)


def _frame_public(data: dict[str, Any]) -> pd.DataFrame:
    """:func:`frame` by the public constructor."""
    return pd.DataFrame(
        {
            k: pd.Series(v, dtype=object, copy=False)
            if isinstance(v, np.ndarray) and v.dtype == object
            else v
            for k, v in data.items()
        },
        copy=False,
    )


def _by_pr_then_time(pr: I64, at: F64) -> I64 | None:
    """The order sorting rows by (PR, time), ties in record order; None when the records
    already come that way (the usual case: no sort, no copy)."""
    if pr.size < 2:
        return None
    step_pr = np.diff(pr)
    if np.all((step_pr > 0) | ((step_pr == 0) & (np.diff(at) >= 0))):
        return None
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
    if at.tzinfo is None:  # naive: read as UTC, as times() does
        at = at.replace(tzinfo=UTC)
    return float((at - _EPOCH) // _ONE_US)  # exact: whole microseconds, no index built


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


def to_datetimes(t: F64) -> pd.DatetimeIndex:
    """Float microseconds (NaN missing) back to a UTC ``DatetimeIndex`` (unit: us)."""
    return pd.DatetimeIndex(utc_datetime64(t), tz="UTC")


def to_datetimes_many(*ts: F64) -> list[Any]:
    """:func:`to_datetimes` of each of ``ts``, as the arrays a table stores, converted in one
    go: a table's instant columns share one conversion instead of paying one each."""
    both = to_datetimes(np.concatenate(ts)).array
    cuts = np.cumsum([t.size for t in ts]).tolist()
    return [both[a:b] for a, b in zip([0, *cuts[:-1]], cuts, strict=True)]


def utc_datetime64(t: F64) -> npt.NDArray[np.datetime64]:
    """Float microseconds (NaN missing) as naive ``datetime64[us]`` (UTC, NaT missing): what
    ``WorkCalendar`` reads without building an index."""
    raw = np.full(t.shape, NAT_NS, dtype=np.int64)
    ok = ~np.isnan(t)
    raw[ok] = t[ok].astype(np.int64)
    return raw.view("datetime64[us]")


def instants_ns(column: Any) -> I64:
    """A Series or Index of instants as UTC nanoseconds since the epoch, NaT as int64 min
    (naive ones read as UTC): what comparing with ``now`` needs, without a Timestamp per
    comparison (an aware column compared with a datetime costs ~10x the integers)."""
    if not isinstance(column.dtype, pd.DatetimeTZDtype):
        column = pd.to_datetime(column, utc=True)
    return np.asarray(column.array.as_unit("ns").asi8)


def ns(at: datetime) -> int:
    """One aware datetime as UTC nanoseconds since the epoch (as :func:`instants_ns`)."""
    return int(pd.Timestamp(at).as_unit("ns").value)


def within(column: Any, since: datetime, until: datetime, *, since_closed: bool = False,
           until_closed: bool = True) -> B:
    """Which instants of ``column`` lie in ``since < t <= until`` (either end closed or open
    as asked); NaT never does."""
    t = instants_ns(column)
    lo, hi = ns(since), ns(until)
    inside = (t >= lo if since_closed else t > lo) & (t <= hi if until_closed else t < hi)
    return np.asarray(inside & (t != NAT_NS))


def among(values: Obj, allowed: Set[Any]) -> B:
    """Which of ``values`` (strings, None) are in the set ``allowed``: ``pd.Series.isin``'s
    answer, each value hashed once in C (``map`` over the set's lookup) without building a
    Series and a hash table, which cost several times more on a team's few thousand rows
    (``np.isin`` sorts objects: slower still)."""
    return np.fromiter(map(allowed.__contains__, values.tolist()), dtype=np.bool_,
                       count=len(values))


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


def _present(value: Any) -> bool:
    return value is not None


def _kinds(identity: Identity, b: PrBlock, logins: str, types: str) -> npt.NDArray[np.int8]:
    """``identity.kind`` (as an index into KIND_NAMES) of each row's (login, account type),
    asked once per distinct pair of codes."""
    lv, tv = b.values[logins], b.values[types]
    width = max(1, len(tv))
    pair = b.codes[logins].astype(np.int64) * width + b.codes[types]
    if not pair.size:
        return np.zeros(0, dtype=np.int8)
    uniq, inverse = np.unique(pair, return_inverse=True)
    table = np.array([KIND_NAMES.index(identity.kind(lv[p // width], tv[p % width]))
                      for p in uniq.tolist()], dtype=np.int8)
    out: npt.NDArray[np.int8] = table[inverse.reshape(-1)]
    return out


def _ai_assisted(identity: Identity, b: PrBlock) -> B:
    """``identity.is_ai_assisted`` of each PR, asked once per distinct combination of author,
    account type, labels and co-authors."""
    names = ("author", "author_type", "labels", "co_authors")
    if not b.n:
        return np.zeros(0, dtype=np.bool_)
    # each PR's combination as one integer (mixed radix over the four code lists), so the
    # distinct ones come from a 1-D unique, not a row-wise one (which sorts rows as records)
    radix = [max(1, len(b.values[k])) for k in names]
    if float(np.prod(radix, dtype=np.float64)) < 2.0**62:
        key = np.zeros(b.n, dtype=np.int64)
        for k, r in zip(names, radix, strict=True):
            key = key * r + b.codes[k]
        uniq, inverse = np.unique(key, return_inverse=True)
        combos = []
        for packed in uniq.tolist():
            row = []
            for r in reversed(radix):
                packed, c = divmod(packed, r)
                row.append(c)
            combos.append(row[::-1])
    else:  # too many distinct values to pack (never in practice): rows as records
        rows, inverse = np.unique(np.stack([b.codes[k] for k in names], axis=1), axis=0,
                                  return_inverse=True)
        combos = rows.tolist()
    author, author_type, labels, co_authors = (b.values[k] for k in names)
    table = np.array([identity.ai_assisted(author[a], author_type[t], labels[lb], co_authors[c])
                      for a, t, lb, c in combos], dtype=np.bool_)
    return table[inverse.reshape(-1)]


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
        return np.asarray(dates(utc_datetime64(t)), dtype="datetime64[D]")
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
