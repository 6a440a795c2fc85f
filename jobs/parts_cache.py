"""A process's copies of teams' rendered answers, each valid for one snapshot generation.

App Home reads, for each of the reader's teams (up to 30), the team's card and the PRs
waiting on the reader, as rendered for the team's current snapshot (``bot.answers``). Those
parts change only when the worker writes a new snapshot, yet reading them whole was most of a
Home open's cost on both sides of the wire: about 70 KB a reply, and 0.26 ms of Redis's CPU
for the script that gathered them (``bench/home_latency.py``).

``Store.put_snapshot`` gives every snapshot a generation of its own: a random token, the field
``generation`` of the team's answers hash, written in the ``MULTI`` that drops the answers
rendered from the snapshot before. A part rendered from a snapshot is only ever stored beside
it (``Store.fill_answers``), so parts read together with the generation, in one script, stay
right for as long as the hash holds the same one: a Home read sends the generation each team's
copies are of, and Redis returns the parts only of the teams whose generation moved on
(``Store.get_home_answers``). Whatever drops the hash drops the generation with it (a snapshot
written by a Flowbot from before generations, the hash's expiry): a team without one is read
whole on every open, as before.

A copy is kept per team and set of fields (a card and one reader's waiting lists), the decoded
parts themselves shared (``bot.answers.decode`` returns one object for the same bytes).
Thread-safe: entries are replaced whole (dict assignment is atomic under the GIL).
"""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")

LIMIT = 50_000  # rows kept per process (a row is a short list of shared parts): past it, start again

Row = tuple[str, tuple[str, ...]]  # a team and the fields read of it


class PartsCache(Generic[T]):
    """Decoded answer parts by team and fields, with the generation they were read under."""

    def __init__(self, limit: int = LIMIT) -> None:
        self._limit = limit
        self._rows: dict[Row, tuple[bytes, list[T | None]]] = {}
        self.hits = 0  # rows answered from the copies (counted loosely: not under a lock)
        self.misses = 0  # rows read whole

    def generation(self, row: Row) -> bytes | None:
        """The generation the copy of ``row`` is of; None without one (then it is read)."""
        entry = self._rows.get(row)
        return None if entry is None else entry[0]

    def get(self, row: Row, generation: bytes) -> list[T | None] | None:
        """The copy of ``row`` at ``generation``; None when it was replaced meanwhile (by
        another thread's read of a newer generation)."""
        entry = self._rows.get(row)
        if entry is None or entry[0] != generation:
            return None
        self.hits += 1
        return entry[1]

    def keep(self, row: Row, generation: bytes | None, values: list[T | None]) -> None:
        """Remember ``values`` of ``row`` read under ``generation``, when every field was found
        (a part not rendered yet is read again next time) and there is a generation (none for
        a snapshot written before generations existed)."""
        self.misses += 1
        if generation is None or any(v is None for v in values):
            return
        if len(self._rows) >= self._limit:
            self._rows.clear()  # many readers' rows: start again
        self._rows[row] = (generation, values)
