"""JSON encoding of :mod:`jobs.model` records and results, for Redis and for the bot.

msgspec, with one typed decoder per type built once. Decoding checks the shape against the
dataclass (types, literals, required fields) in C, so a stored value of another shape fails
loudly (:data:`DecodeError`) instead of half-loading, at a few microseconds per record: data
Flowbot wrote itself is not validated again field by field in Python (issue 14: pydantic's
``validate_json`` cost 111 us per PR and ~75% of a slash command).

The wire form is plain JSON objects with ISO 8601 datetimes, the same form the earlier pydantic
codec wrote, so values stored before this change still decode.

:func:`pr_row` / :func:`decode_rows` are the second, column-friendly form of a PR record that the
store keeps beside it for the metrics (see :mod:`jobs.metrics._columns`); it is derived from
:class:`jobs.model.PullRequest` here, never written by hand elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec

from jobs.model import PullRequest

T = TypeVar("T")

DecodeError = msgspec.DecodeError  # raised by every ``loads*`` on bad JSON or a shape mismatch
"""What a value that does not decode raises (``msgspec.ValidationError`` is a subclass)."""

_ENCODER = msgspec.json.Encoder()
_DECODERS: dict[Any, msgspec.json.Decoder[Any]] = {}


def _decoder(kind: Any) -> msgspec.json.Decoder[Any]:
    """The decoder for ``kind``, built once (building one costs far more than using it)."""
    found = _DECODERS.get(kind)
    if found is None:
        found = _DECODERS[kind] = msgspec.json.Decoder(kind)
    return found


def dumps(value: Any) -> bytes:
    """Encode a record or result (or a list of them) as JSON bytes."""
    return _ENCODER.encode(value)


def dumps_list(kind: type[T], values: Sequence[T]) -> bytes:
    """Encode a list of ``kind`` as a JSON array."""
    return _ENCODER.encode(list(values))


def loads(kind: type[T], data: bytes | str) -> T:
    """Decode JSON into ``kind``; raises :data:`DecodeError` on bad JSON or a shape mismatch."""
    return _decoder(kind).decode(data)  # type: ignore[no-any-return]  # decoder of kind


def loads_list(kind: type[T], data: bytes | str) -> list[T]:
    """Decode a JSON array of ``kind``."""
    return _decoder(list[kind]).decode(data)  # type: ignore[valid-type,no-any-return]


def from_jsonable(kind: type[T], value: Any) -> T:
    """``kind`` from plain JSON-compatible Python (the inverse of :func:`to_jsonable`); raises
    :data:`DecodeError` on a shape mismatch."""
    return msgspec.convert(value, kind)


def to_jsonable(value: Any) -> Any:
    """Plain JSON-compatible Python (dicts, lists, strings) for printing or Block Kit JSON."""
    return msgspec.to_builtins(value)


# --------------------------------------------------------------------------- column rows
#
# A PR as the metrics read it: its scalars, then one list per field of its events, reviews and
# check attempts (struct of arrays), instants as integer microseconds since the epoch (null when
# missing). Encoded as a JSON array (no keys), so decoding 100k of them creates lists of ints and
# strings in C and no datetime or dataclass per event: the column builder concatenates them.

ROW_VERSION = 1  # first element of every row; a change of the layout changes it


class PrRow(msgspec.Struct, array_like=True, gc=False, frozen=True):
    """The column form of one :class:`jobs.model.PullRequest` (see the section comment)."""

    version: int
    repo: str
    number: int
    title: str
    url: str
    author: str | None
    author_type: str
    draft: bool
    created: int
    merged: int | None
    closed: int | None
    first_commit: int | None
    size: int
    head_sha: str
    labels: tuple[str, ...]
    co_authors: tuple[str, ...]
    ev_kind: list[str]
    ev_at: list[int]
    ev_reviewer: list[str | None]
    ev_team: list[str | None]
    rv_author: list[str | None]
    rv_type: list[str]
    rv_state: list[str]
    rv_at: list[int]
    ck_name: list[str]
    ck_run_id: list[int]
    ck_attempt: list[int]
    ck_head_sha: list[str]
    ck_created: list[int]
    ck_started: list[int | None]
    ck_completed: list[int | None]
    ck_conclusion: list[str | None]


def _us(at: datetime) -> int:
    """An aware datetime as integer microseconds since the epoch (exact); ValueError for a
    naive one (a record without time zones has no place on a team's clocks)."""
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at.isoformat()}")
    delta = at - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _us_or_none(at: datetime | None) -> int | None:
    return None if at is None else _us(at)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


UNREADABLE_ROW = b'"unreadable"'  # kept for a record that has no column form: skipped on read


def pr_row(pr: PullRequest) -> bytes:
    """The column form of ``pr``, encoded (what ``Store.put_prs`` keeps beside the record);
    :data:`UNREADABLE_ROW` for a record that cannot have one (a naive datetime), so the
    reader skips and names it instead of a whole team failing on it."""
    try:
        return _row(pr)
    except ValueError:
        return UNREADABLE_ROW


def _row(pr: PullRequest) -> bytes:
    ev, rv, ck = pr.events, pr.reviews, pr.checks
    return _ENCODER.encode(PrRow(
        ROW_VERSION, pr.repo, pr.number, pr.title, pr.url, pr.author, pr.author_type, pr.draft,
        _us(pr.created_at), _us_or_none(pr.merged_at), _us_or_none(pr.closed_at),
        _us_or_none(pr.first_commit_at), pr.additions + pr.deletions, pr.head_sha,
        pr.labels, pr.co_authors,
        [e.kind for e in ev], [_us(e.at) for e in ev], [e.requested_reviewer for e in ev],
        [e.requested_team for e in ev],
        [r.author for r in rv], [r.author_type for r in rv], [r.state for r in rv],
        [_us(r.submitted_at) for r in rv],
        [c.name for c in ck], [c.run_id for c in ck], [c.attempt for c in ck],
        [c.head_sha for c in ck], [_us(c.created_at) for c in ck],
        [_us_or_none(c.started_at) for c in ck], [_us_or_none(c.completed_at) for c in ck],
        [c.conclusion for c in ck],
    ))


_ROW = msgspec.json.Decoder(PrRow)


def decode_row(data: bytes) -> PrRow:
    """One row; raises :data:`DecodeError` when it is not a row of this layout."""
    row = _ROW.decode(data)
    if row.version != ROW_VERSION:
        raise msgspec.ValidationError(f"row layout v{row.version}, expected v{ROW_VERSION}")
    return row


def decode_rows(raw: Iterable[tuple[str, bytes]],
                on_bad: Any = None) -> list[PrRow]:
    """Rows from ``(name, bytes)`` pairs; one that does not decode is skipped and passed to
    ``on_bad(name, error)`` (the quarantine hook) instead of failing the others."""
    out = []
    for name, data in raw:
        try:
            out.append(decode_row(data))
        except DecodeError as err:
            if on_bad is not None:
                on_bad(name, err)
    return out
