"""JSON encoding of :mod:`jobs.model` records and results, for Redis and for the bot.

One pydantic ``TypeAdapter`` per type, built once: validation on the way back in means a
stored value written by an older schema fails loudly instead of half-loading.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import TypeAdapter

T = TypeVar("T")


_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


def _adapter(kind: Any) -> TypeAdapter[Any]:
    """The adapter for ``kind``, built once (building one costs far more than using it)."""
    adapter = _ADAPTERS.get(kind)
    if adapter is None:
        adapter = _ADAPTERS[kind] = TypeAdapter(kind)
    return adapter


def dumps(value: Any) -> bytes:
    """Encode a record or result (or a list of them) as JSON bytes."""
    return _adapter(type(value)).dump_json(value)


def dumps_list(kind: type[T], values: list[T]) -> bytes:
    """Encode a list of ``kind`` as a JSON array."""
    return _adapter(list[kind]).dump_json(values)  # type: ignore[valid-type]  # kind is a runtime type


def loads(kind: type[T], data: bytes | str) -> T:
    """Decode JSON into ``kind``; raises ``pydantic.ValidationError`` on a shape mismatch."""
    return _adapter(kind).validate_json(data)  # type: ignore[no-any-return]  # adapter of kind


def loads_list(kind: type[T], data: bytes | str) -> list[T]:
    """Decode a JSON array of ``kind``."""
    return _adapter(list[kind]).validate_json(data)  # type: ignore[valid-type,no-any-return]


def to_jsonable(value: Any) -> Any:
    """Plain JSON-compatible Python (dicts, lists, strings) for printing or Block Kit JSON."""
    return _adapter(type(value)).dump_python(value, mode="json")
