"""JSON encoding of :mod:`jobs.model` records and results, for Redis and for the bot.

msgspec, with one typed decoder per type built once. Decoding checks the shape against the
dataclass (types, literals, required fields) in C, so a stored value of another shape fails
loudly (:data:`DecodeError`) instead of half-loading, at a few microseconds per record: data
Flowbot wrote itself is not validated again field by field in Python (issue 14: pydantic's
``validate_json`` cost 111 us per PR and ~75% of a slash command).

The wire form is plain JSON objects with ISO 8601 datetimes, the same form the earlier pydantic
codec wrote, so values stored before this change still decode.

The column form of PRs that the store keeps per repository for the metrics is
:mod:`jobs.columnar` (derived from :class:`jobs.model.PullRequest`, never written by hand).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import msgspec

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


def encoded(data: bytes) -> Any:
    """JSON already encoded by :func:`dumps`, to place as it is inside a value being encoded
    (a record's field): the same bytes as encoding the value it came from again, without the
    cost."""
    return msgspec.Raw(data)


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
