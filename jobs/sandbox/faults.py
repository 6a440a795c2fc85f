"""Faults the sandbox server injects on request, and the request log it keeps.

``Faults.schedule("502", count=2)`` makes the next two matching requests fail; ``Faults.rate(
0.1, kinds=("502", "503"), seed=3)`` fails a seeded 10% of requests. Kinds:

- ``"500"``, ``"502"``, ``"503"``, ``"504"``: that status with GitHub's error body;
- ``"timeout"``: the server holds the request without answering (beyond the client's timeout),
  then drops the connection; ``"close"``: the connection is closed with no answer;
- ``"secondary_403"`` / ``"secondary_429"``: a secondary rate limit, with ``Retry-After``;
- ``"primary"``: the primary rate limit looks exhausted (403, ``x-ratelimit-remaining: 0``);
- ``"malformed"``: a ``200`` whose body is not shaped as GitHub documents it (a list of
  nonsense, wherever it is asked);
- ``"missing"``: a ``200`` that lacks what was asked (``{}`` for REST, ``{"data": {}}`` for
  GraphQL);
- ``"truncated"``: the real answer (metered as usual), its JSON cut in half on the way;
- ``"html"``: a ``200`` HTML error page from a proxy in front of GitHub (not metered).
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

KINDS = frozenset({"500", "502", "503", "504", "timeout", "close", "secondary_403",
                   "secondary_429", "primary", "malformed", "missing", "truncated", "html"})
BAD_200 = ("malformed", "missing", "truncated", "html")  # 200s that are not what was asked


@dataclass(frozen=True, slots=True)
class Request:
    """One request the server answered (or dropped: status 0)."""

    method: str
    path: str
    status: int
    cost: int  # primary (``core``) or GraphQL points spent; 0 for a 304 or a fault
    resource: str  # "core", "graphql" or "" when not counted
    fault: str | None = None


@dataclass
class _Scheduled:
    kind: str
    remaining: int
    path: str | None  # a substring of the path; None: any request
    retry_after: int


class Faults:
    """Thread-safe schedule of faults; the server asks :meth:`take` once per request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[_Scheduled] = []
        self._rate = 0.0
        self._rate_kinds: tuple[str, ...] = ()
        self._rng = random.Random(0)
        self.hang_seconds = 5.0  # how long a "timeout" holds the request
        self.retry_after = 1

    def schedule(self, kind: str, *, count: int = 1, path: str | None = None,
                 retry_after: int | None = None) -> None:
        """Fail the next ``count`` requests (whose path contains ``path``) with ``kind``."""
        if kind not in KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {sorted(KINDS)}")
        with self._lock:
            self._queue.append(_Scheduled(kind, count, path, retry_after or self.retry_after))

    def rate(self, share: float, *, kinds: tuple[str, ...] = ("502",), seed: int = 0) -> None:
        """Fail a seeded ``share`` of all later requests with one of ``kinds``."""
        for kind in kinds:
            if kind not in KINDS:
                raise ValueError(f"unknown fault {kind!r}")
        with self._lock:
            self._rate, self._rate_kinds, self._rng = share, kinds, random.Random(seed)

    def clear(self) -> None:
        """No more faults."""
        with self._lock:
            self._queue.clear()
            self._rate = 0.0

    def take(self, path: str) -> tuple[str, int] | None:
        """The fault for this request, with its Retry-After seconds, or ``None``."""
        with self._lock:
            for item in self._queue:
                if item.path is None or item.path in path:
                    item.remaining -= 1
                    if item.remaining <= 0:
                        self._queue.remove(item)
                    return item.kind, item.retry_after
            if self._rate and self._rng.random() < self._rate:
                return self._rng.choice(self._rate_kinds), self.retry_after
        return None


@dataclass
class Stats:
    """Every request the server saw, in order. Read-only for callers."""

    requests: list[Request] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def count(self, *, path: str | None = None, status: int | None = None,
              method: str | None = None) -> int:
        """How many requests matched (``path`` is a substring)."""
        with self._lock:
            return sum(
                1 for r in self.requests
                if (path is None or path in r.path) and (status is None or r.status == status)
                and (method is None or r.method == method)
            )

    @property
    def total(self) -> int:
        return len(self.requests)

    @property
    def primary_cost(self) -> int:
        """Points of the primary (``core``) budget spent."""
        return sum(r.cost for r in self.requests if r.resource == "core")

    @property
    def graphql_cost(self) -> int:
        return sum(r.cost for r in self.requests if r.resource == "graphql")

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
