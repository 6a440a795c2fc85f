"""PR records as columns: what the metrics read, and what the store keeps per repository.

The one definition of a PR stays :class:`jobs.model.PullRequest`; a :class:`PrBlock` is derived
from records here and nowhere else. It holds a set of PRs as flat numpy arrays: one row per
PR, one row per event, review and check attempt (``*_count`` says how many rows each PR has,
in PR order), instants as float microseconds since the epoch (``NaN`` when missing), and every
repeated text (logins, event kinds, states, check names, ...) as int32 codes into a short list
of its distinct values. Titles, URLs and head commits are plain lists.

Why (issue 14): the store keeps one encoded block per repository beside the records, updated
in the transaction that writes them, so reading 100,000 PRs for the snapshots is a GET of a
few hundred blobs (each array a ``memcpy``), not 100,000 JSON decodes; and the metrics
(``jobs.metrics.columns``) build their table from a block, whichever way it was made.

Encoded with msgpack (msgspec): arrays as raw little-endian bytes, shape-checked on decode
(:func:`decode` raises :data:`DecodeError` for a value of another shape).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from jobs.model import PullRequest

DecodeError = msgspec.DecodeError
VERSION = 1  # of the encoded layout; a block of another version is rebuilt from the records

Array = npt.NDArray[Any]

# name -> dtype, per group: the numeric columns. Groups: "pr" (one row per PR), and one per
# kind of child row, each with its "<group>_count" column in the "pr" group.
NUMERIC: dict[str, dict[str, str]] = {
    "pr": {"number": "<i8", "draft": "?", "open": "?", "created": "<f8", "merged": "<f8",
           "closed": "<f8", "first_commit": "<f8", "size": "<i8",
           "ev_count": "<i4", "rv_count": "<i4", "ck_count": "<i4"},
    "ev": {"ev_at": "<f8"},
    "rv": {"rv_at": "<f8"},
    "ck": {"ck_run_id": "<i8", "ck_attempt": "<i8", "ck_created": "<f8", "ck_started": "<f8",
           "ck_completed": "<f8"},
}
# coded texts (a value may be None; labels and co-authors are tuples of strings), per group
CODED: dict[str, tuple[str, ...]] = {
    "pr": ("repo", "author", "author_type", "labels", "co_authors"),
    "ev": ("ev_kind", "ev_reviewer", "ev_team"),
    "rv": ("rv_author", "rv_type", "rv_state"),
    "ck": ("ck_name", "ck_head_sha", "ck_conclusion"),
}
PLAIN = ("title", "url", "head_sha")  # one string per PR, mostly distinct: not coded
CHILDREN = ("ev", "rv", "ck")
_GROUP = {name: g for g, names in NUMERIC.items() for name in names} | {
    name: g for g, names in CODED.items() for name in names}

Value = str | None | tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PrBlock:
    """PRs as columns (see the module docstring). ``arrays`` holds the numeric columns,
    ``codes``/``values`` the coded texts (``values[name][codes[name][i]]`` is row i's),
    ``texts`` the plain per-PR strings. ``unusable`` lists the numbers of PRs left out because
    their record cannot be put on a clock (a naive datetime): the store names them."""

    n: int
    arrays: dict[str, Array]
    codes: dict[str, npt.NDArray[np.int32]]
    values: dict[str, list[Value]]
    texts: dict[str, list[str]]
    unusable: tuple[int, ...] = ()

    def rows(self, group: str) -> int:
        """How many rows ``group`` ("pr", "ev", "rv", "ck") has."""
        return self.n if group == "pr" else int(self.arrays[f"{group}_count"].sum())

    def text(self, name: str) -> npt.NDArray[np.object_]:
        """The coded column ``name`` as an object array, one value per row."""
        return _objects(self.values[name])[self.codes[name]]

    def mapped(self, name: str, fn: Any, dtype: Any) -> Array:
        """``fn`` applied once per distinct value of ``name``, spread to every row."""
        table = np.empty(len(self.values[name]), dtype=dtype)
        table[:] = [fn(v) for v in self.values[name]]
        return table[self.codes[name]]


def empty() -> PrBlock:
    """A block of no PRs."""
    return from_records([])


def from_records(prs: Iterable[PullRequest]) -> PrBlock:
    """The block of ``prs``, in their order; child rows in record order. A PR with a naive
    datetime is left out and its number kept in ``unusable``."""
    usable: list[PullRequest] = []
    unusable: list[int] = []
    for pr in prs:
        try:
            _check_aware(pr)
        except ValueError:
            unusable.append(pr.number)
            continue
        usable.append(pr)
    prs = usable
    n = len(prs)
    ev = [e for p in prs for e in p.events]
    rv = [r for p in prs for r in p.reviews]
    ck = [c for p in prs for c in p.checks]
    col: dict[str, list[Any]] = {
        "number": [p.number for p in prs], "draft": [p.draft for p in prs],
        "open": [p.state == "open" for p in prs], "created": [_us(p.created_at) for p in prs],
        "merged": [_us(p.merged_at) for p in prs], "closed": [_us(p.closed_at) for p in prs],
        "first_commit": [_us(p.first_commit_at) for p in prs],
        "size": [p.additions + p.deletions for p in prs],
        "ev_count": [len(p.events) for p in prs], "rv_count": [len(p.reviews) for p in prs],
        "ck_count": [len(p.checks) for p in prs],
        "repo": [p.repo for p in prs], "author": [p.author for p in prs],
        "author_type": [p.author_type for p in prs], "labels": [tuple(p.labels) for p in prs],
        "co_authors": [tuple(p.co_authors) for p in prs],
        "ev_at": [_us(e.at) for e in ev], "ev_kind": [e.kind for e in ev],
        "ev_reviewer": [e.requested_reviewer for e in ev],
        "ev_team": [e.requested_team for e in ev],
        "rv_at": [_us(r.submitted_at) for r in rv], "rv_author": [r.author for r in rv],
        "rv_type": [r.author_type for r in rv], "rv_state": [r.state for r in rv],
        "ck_run_id": [c.run_id for c in ck], "ck_attempt": [c.attempt for c in ck],
        "ck_created": [_us(c.created_at) for c in ck], "ck_started": [_us(c.started_at) for c in ck],
        "ck_completed": [_us(c.completed_at) for c in ck], "ck_name": [c.name for c in ck],
        "ck_head_sha": [c.head_sha for c in ck], "ck_conclusion": [c.conclusion for c in ck],
    }
    arrays = {name: np.array(col[name], dtype=dtype).reshape(-1)
              for group in NUMERIC.values() for name, dtype in group.items()}
    codes: dict[str, npt.NDArray[np.int32]] = {}
    values: dict[str, list[Value]] = {}
    for group in CODED.values():
        for name in group:
            codes[name], values[name] = _code(col[name])
    texts = {"title": [p.title for p in prs], "url": [p.url for p in prs],
             "head_sha": [p.head_sha for p in prs]}
    return PrBlock(n, arrays, codes, values, texts, tuple(unusable))


def concat(blocks: Sequence[PrBlock]) -> PrBlock:
    """The PRs of ``blocks`` one after another, in one block."""
    if len(blocks) == 1:
        return blocks[0]
    if not blocks:
        return empty()
    arrays = {name: np.concatenate([b.arrays[name] for b in blocks]) for name in blocks[0].arrays}
    codes: dict[str, npt.NDArray[np.int32]] = {}
    values: dict[str, list[Value]] = {}
    for name in blocks[0].codes:
        offset = 0
        parts = []
        values[name] = []
        for b in blocks:
            parts.append(b.codes[name] + np.int32(offset))
            values[name].extend(b.values[name])
            offset += len(b.values[name])
        codes[name] = np.concatenate(parts).astype(np.int32, copy=False)
    texts = {name: [t for b in blocks for t in b.texts[name]] for name in PLAIN}
    return PrBlock(sum(b.n for b in blocks), arrays, codes, values, texts,
                   tuple(u for b in blocks for u in b.unusable))


def take(block: PrBlock, index: npt.NDArray[np.int64]) -> PrBlock:
    """The PRs at ``index`` (in that order), with their child rows."""
    rows: dict[str, npt.NDArray[np.int64]] = {"pr": index}
    for group in CHILDREN:
        count = block.arrays[f"{group}_count"].astype(np.int64)
        start = np.cumsum(count) - count
        picked = count[index]
        total = int(picked.sum())
        rows[group] = (np.repeat(start[index] - (np.cumsum(picked) - picked), picked)
                       + np.arange(total, dtype=np.int64))
    arrays = {name: a[rows[_GROUP[name]]] for name, a in block.arrays.items()}
    codes = {name: c[rows[_GROUP[name]]] for name, c in block.codes.items()}
    texts = {name: [t[i] for i in index.tolist()] for name, t in block.texts.items()}
    return PrBlock(int(index.size), arrays, codes, dict(block.values), texts, block.unusable)


def upsert(block: PrBlock, prs: Sequence[PullRequest]) -> PrBlock:
    """``block`` with ``prs`` added or replacing the PRs of the same number, in number order
    (the store keeps one block per repository, so a number names a PR); values no row uses
    any more are dropped."""
    new = from_records(prs)
    numbers = np.array([p.number for p in prs], dtype=np.int64)
    keep = np.flatnonzero(~np.isin(block.arrays["number"], numbers))
    old_unusable = tuple(u for u in block.unusable if u not in set(numbers.tolist()))
    merged = concat([take(block, keep), new])
    order = np.argsort(merged.arrays["number"], kind="stable")
    out = _compact(take(merged, order))
    return PrBlock(out.n, out.arrays, out.codes, out.values, out.texts,
                   tuple(sorted(set(old_unusable) | set(new.unusable))))


def without(block: PrBlock, numbers: Iterable[int]) -> PrBlock:
    """``block`` without the PRs of ``numbers``."""
    drop = np.array(sorted(set(numbers)), dtype=np.int64)
    out = _compact(take(block, np.flatnonzero(~np.isin(block.arrays["number"], drop))))
    gone = set(drop.tolist())
    return PrBlock(out.n, out.arrays, out.codes, out.values, out.texts,
                   tuple(u for u in block.unusable if u not in gone))


def pending_checks(block: PrBlock) -> npt.NDArray[np.float64]:
    """When each check attempt of an open PR that has not completed was created (us)."""
    open_rows = np.repeat(block.arrays["open"], block.arrays["ck_count"])
    waiting = open_rows & np.isnan(block.arrays["ck_completed"])
    return block.arrays["ck_created"][waiting]


# --------------------------------------------------------------------------- encoding


class _Wire(msgspec.Struct, array_like=True, frozen=True, gc=False):
    version: int
    generation: int
    n: int
    arrays: dict[str, bytes]
    codes: dict[str, bytes]
    values: dict[str, list[str | tuple[str, ...] | None]]
    texts: dict[str, list[str]]
    unusable: tuple[int, ...]


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(_Wire)


def encode(block: PrBlock, generation: int) -> bytes:
    """The block as stored, stamped with the repository's write counter it reflects."""
    return _ENCODER.encode(_Wire(
        VERSION, generation, block.n,
        {name: np.ascontiguousarray(a).tobytes() for name, a in block.arrays.items()},
        {name: c.astype("<i4", copy=False).tobytes() for name, c in block.codes.items()},
        block.values, block.texts, block.unusable))


def decode(raw: bytes) -> tuple[int, PrBlock]:
    """(the write counter it was stamped with, the block); raises :data:`DecodeError` when
    ``raw`` is not a block of this layout (lengths and codes are checked, not trusted)."""
    wire = _DECODER.decode(raw)
    if wire.version != VERSION:
        raise msgspec.ValidationError(f"column block layout v{wire.version}, expected v{VERSION}")
    n = wire.n
    arrays: dict[str, Array] = {}
    want_rows = {"pr": n}
    for group, names in NUMERIC.items():
        for name, dtype in names.items():
            buf = wire.arrays.get(name)
            if buf is None:
                raise msgspec.ValidationError(f"column block lacks {name}")
            a = np.frombuffer(buf, dtype=dtype)
            if group == "pr" and a.size != n:
                raise msgspec.ValidationError(f"column block: {name} has {a.size} rows, not {n}")
            arrays[name] = a
    for group in CHILDREN:
        count = arrays[f"{group}_count"]
        if count.size and int(count.min()) < 0:
            raise msgspec.ValidationError(f"column block: negative {group}_count")
        want_rows[group] = int(count.sum())
    for name, a in arrays.items():
        if a.size != want_rows[_GROUP[name]]:
            raise msgspec.ValidationError(f"column block: {name} has {a.size} rows")
    codes: dict[str, npt.NDArray[np.int32]] = {}
    for group, coded in CODED.items():
        for name in coded:
            buf = wire.codes.get(name)
            values = wire.values.get(name)
            if buf is None or values is None:
                raise msgspec.ValidationError(f"column block lacks {name}")
            c = np.frombuffer(buf, dtype="<i4")
            if c.size != want_rows[group] or (c.size and not 0 <= int(c.min()) <= int(c.max()) < len(values)):
                raise msgspec.ValidationError(f"column block: {name} codes do not fit")
            codes[name] = c
    for name in PLAIN:
        if len(wire.texts.get(name, ())) != n:
            raise msgspec.ValidationError(f"column block: {name} has not {n} rows")
    return wire.generation, PrBlock(n, arrays, codes, dict(wire.values),
                                    {name: wire.texts[name] for name in PLAIN}, wire.unusable)


# --------------------------------------------------------------------------- helpers

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _us(at: datetime | None) -> float:
    """An aware datetime as microseconds since the epoch (exact below 2**53), NaN for None."""
    if at is None:
        return float("nan")
    delta = at - _EPOCH
    return float((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds)


def _check_aware(pr: PullRequest) -> None:
    """ValueError when one of the PR's instants has no time zone (it has no place on a clock)."""
    instants = [pr.created_at, pr.merged_at, pr.closed_at, pr.first_commit_at,
                *(e.at for e in pr.events), *(r.submitted_at for r in pr.reviews),
                *(t for c in pr.checks for t in (c.created_at, c.started_at, c.completed_at))]
    for at in instants:
        if at is not None and at.tzinfo is None:
            raise ValueError(f"naive datetime {at.isoformat()} in {pr.key}")


def _code(column: list[Any]) -> tuple[npt.NDArray[np.int32], list[Value]]:
    """Codes into the distinct values of ``column``, in order of first appearance."""
    index: dict[Any, int] = {}
    codes = np.fromiter((index.setdefault(v, len(index)) for v in column), np.int32, len(column))
    return codes, list(index)


def _compact(block: PrBlock) -> PrBlock:
    """The same rows with each coded column's values distinct and all in use."""
    codes: dict[str, npt.NDArray[np.int32]] = {}
    values: dict[str, list[Value]] = {}
    for name, c in block.codes.items():
        used, inverse = np.unique(c, return_inverse=True)
        old = block.values[name]
        index: dict[Any, int] = {}
        remap = np.fromiter((index.setdefault(old[u], len(index)) for u in used.tolist()),
                            np.int32, used.size)
        codes[name] = remap[inverse.reshape(-1)].astype(np.int32) if c.size else c
        values[name] = list(index)
    return PrBlock(block.n, block.arrays, codes, values, block.texts, block.unusable)


def _objects(values: Sequence[Any]) -> npt.NDArray[np.object_]:
    """An object array of ``values`` (one by one: a tuple value is one element, not a row)."""
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        out[i] = v
    return out


__all__ = ["CHILDREN", "CODED", "NUMERIC", "PLAIN", "PrBlock", "concat", "decode", "empty",
           "encode", "from_records", "pending_checks", "take", "upsert", "without"]
