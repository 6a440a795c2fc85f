"""What each key under Flowbot's prefix must hold, and how a bad value is named.

Every key family Flowbot writes (``prs:<repo>``, ``runs:<job>``, ``alerts:<team>:state``, ...)
has one :class:`Family` here: the Redis type it must be and how one value (a string's value, a
hash field, a list entry, a set or sorted-set member) decodes. :class:`jobs.store.Store` reads
through these decoders; a value that does not decode is *quarantined*: skipped, counted and
named (a :class:`BadRecord`), never fatal. ``flowbot doctor`` lists them with the command that
removes each one, and ``flowbot doctor --purge-bad`` removes exactly those.

Pure: no Redis here (``jobs.store`` is the only module that talks to it). A key whose family is
not listed is never judged: other parts of Flowbot may add families of their own; list one
here when its readers should be guarded and doctor should check it.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jobs import codec
from jobs.model import PullRequest, QueueItem, QueueSample, RepoCursor, TeamSnapshot
from jobs.windows import ReviewWindows

Decoder = Callable[[bytes], object]


@dataclass(frozen=True, slots=True)
class Family:
    """One kind of key: what it holds (for people), its Redis type, how a value decodes."""

    label: str
    pattern: re.Pattern[str]  # the key after ``prefix:v1:``
    rtype: str  # "string", "hash", "list", "set", "zset", or "any"
    decode: Decoder | None = None  # raises on a bad value; None: any value is fine


@dataclass(frozen=True, slots=True)
class BadRecord:
    """A stored value that does not decode (or a key of the wrong Redis type).

    ``field`` is the hash field, or ``None`` for the whole key; ``member`` the raw list entry
    or set member when the bad value is one of those (what ``LREM``/``ZREM`` need).
    """

    key: str
    reason: str
    field: str | None = None
    member: bytes | None = None
    rtype: str = "string"  # the key's Redis type (how a member is removed)

    @property
    def name(self) -> str:
        """The key, and the field or entry when the bad value is one of a key's values."""
        if self.field is not None:
            return f"{self.key} field {self.field}"
        if self.member is not None:
            return f"{self.key} entry {_show(self.member)}"
        return self.key

    def removal(self, cli: str) -> str:
        """The ``redis-cli`` command (``cli`` names the server) that removes this value only."""
        q = shlex.quote
        rtype = self.rtype
        if self.field is not None:
            return f"{cli} HDEL {q(self.key)} {q(self.field)}"
        if self.member is not None and _printable(self.member):
            value = q(self.member.decode())
            if rtype == "list":
                return f"{cli} LREM {q(self.key)} 0 {value}"
            if rtype == "zset":
                return f"{cli} ZREM {q(self.key)} {value}"
            if rtype == "set":
                return f"{cli} SREM {q(self.key)} {value}"
        if self.member is not None:  # not printable: only the purge can name it exactly
            return "flowbot doctor --purge-bad"
        return f"{cli} DEL {q(self.key)}"


def family_of(rest: str) -> Family | None:
    """The family of a key, given the part after ``prefix:v1:``; None when not listed."""
    for fam in FAMILIES:
        if fam.pattern.fullmatch(rest):
            return fam
    return None


def why(err: BaseException) -> str:
    """A one-line reason for a decoding error, short enough for doctor's list."""
    text = str(err).strip().splitlines()
    first = next((line for line in text if line.strip()), type(err).__name__)
    return f"{type(err).__name__}: {first.strip()}"[:160]


# ------------------------------------------------------------------------------ decoders


def record(kind: type[Any]) -> Decoder:
    """A :mod:`jobs.model` record through :mod:`jobs.codec` (the one definition of it)."""
    return lambda raw: codec.loads(kind, raw)


def json_value(shape: type | tuple[type, ...], check: Callable[[Any], bool] | None = None,
               what: str = "") -> Decoder:
    """JSON of the given Python ``shape`` (and passing ``check``, when given)."""

    def decode(raw: bytes) -> object:
        value = json.loads(raw)
        if isinstance(value, bool) and shape in (int, float):  # JSON true is no count
            raise ValueError(f"expected {what or _names(shape)}, got {value!r}")
        if not isinstance(value, shape) or (check is not None and not check(value)):
            raise ValueError(f"expected {what or _names(shape)}, got {_show(raw)}")
        return value

    return decode


def _job_run(raw: bytes) -> object:
    from jobs.store import JobRun  # the store defines it; imported late (it imports us)

    return codec.loads(JobRun, raw)


def _int_member(raw: bytes) -> object:
    return int(raw)


def _dict_of_dicts(*required: str) -> Callable[[Any], bool]:
    return lambda value: all(isinstance(v, dict) and all(k in v for k in required)
                             for v in value.values())


def _names(shape: type | tuple[type, ...]) -> str:
    kinds = shape if isinstance(shape, tuple) else (shape,)
    return " or ".join({"dict": "an object", "list": "a list", "bool": "true/false",
                        "int": "a number"}.get(k.__name__, k.__name__) for k in kinds)


def _printable(raw: bytes) -> bool:
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        return False
    return len(text) <= 200 and text.isprintable()


def _show(raw: bytes) -> str:
    text = raw[:40].decode(errors="replace")
    return repr(text + ("..." if len(raw) > 40 else ""))


_SEG = r"[^:]+"  # one key segment: a team, repository, rule, job, week, recipient


def _f(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern.replace("{}", _SEG))


def _column_block(raw: bytes) -> object:
    """A repository's column block (jobs.columnar; imported here only when a block is checked:
    numpy is not for the web tier)."""
    from jobs import columnar

    return columnar.decode(raw)


PRS = Family("PR records of a repository", _f("prs:{}"), "hash", record(PullRequest))
OPEN = Family("open PR numbers of a repository", _f("open:{}"), "set", _int_member)
CURSOR = Family("a repository's sync cursor", _f("cursor:{}"), "string", record(RepoCursor))
QUEUE = Family("a team's queue samples", _f("queue:{}"), "zset", record(QueueSample))
SNAPSHOT = Family("a team's snapshot", _f("snapshot:{}"), "string", record(TeamSnapshot))
RUNS = Family("a job's run records", _f("runs:{}"), "list", _job_run)
JSON_LOG = json_value(dict, what="an object")
MOVED = Family("a value of the wrong type, moved aside", re.compile(r"quarantine:moved:.+"), "any")

FAMILIES: tuple[Family, ...] = (
    PRS, OPEN, CURSOR, QUEUE, SNAPSHOT, RUNS, MOVED,
    # beside the records and snapshots (jobs.store: "PR records", "snapshots")
    Family("PR column block of a repository", _f("cols:{}"), "string", _column_block),
    # per-PR column rows of an earlier version: deleted by the repository's next write
    Family("PR column rows of a repository (earlier version)", _f("rows:{}"), "hash"),
    Family("closing times of a repository's PRs", _f("closed:{}"), "zset", _int_member),
    Family("a repository's write counter", _f("gen:{}"), "string", _int_member),
    Family("a team's snapshot card", _f("snapshot_card:{}"), "string", record(TeamSnapshot)),
    Family("a team's queue items", _f("snapshot_items:{}"), "list", record(QueueItem)),
    Family("a team's waiting lists", _f("snapshot_waiting:{}"), "hash",
           json_value(dict, lambda v: isinstance(v.get("items"), list), what="a waiting list")),
    Family("a team's queue trend", _f("snapshot_trend:{}"), "string",
           record(tuple[QueueSample, ...])),
    Family("a team's snapshot inputs", _f("snapshot_inputs:{}"), "string"),
    Family("a team's pre-rendered answers", _f("snapshot_answers:{}"), "hash",
           json_value(dict, what="a rendered answer")),
    Family("a team's last queue sample basis", _f("queue_basis:{}"), "string", json_value(dict)),
    Family("a lock", _f("lock:{}"), "string"),
    Family("a credential's shared GitHub budget", _f("github:budget:{}:{}"), "hash", _int_member),
    Family("a delivery claim", re.compile(r"once:.+"), "string"),
    Family("a team's alert state", _f("alerts:{}:state"), "string",
           json_value(dict, lambda v: all(isinstance(s, dict) for s in v.values()),
                      what="an object of rule states")),
    Family("an alert snooze", _f("alerts:{}:snooze:{}"), "string", json_value(dict)),
    Family("an alert acknowledgement", _f("alerts:{}:ack:{}"), "string", json_value(dict)),
    Family("a recipient's alert count", _f("alerts:budget:{}:{}"), "string", json_value(int)),
    Family("a recipient's weekly summary mark", _f("alerts:summary:{}:{}"), "string",
           json_value((bool, int))),
    Family("folded alerts", _f("alerts:folded:{}:{}"), "list", JSON_LOG),
    Family("a repository's archived flag", _f("archived:{}"), "string", json.loads),
    Family("a repository's CI listing mark", _f("runs_etag:{}"), "string", json_value(dict)),
    Family("a repository's rerun backlog", _f("reruns:{}"), "string",
           json_value(dict, lambda v: all(isinstance(r, dict) and isinstance(r.get("pr"), int)
                                          and isinstance(r.get("run"), dict) for r in v.values()),
                      what="an object of reruns")),
    Family("the organisation's repository list", _f("org_repos:{}"), "string",
           json_value(dict, lambda v: isinstance(v.get("repos", []), list))),
    Family("a team's threshold overrides", _f("overrides:{}"), "string",
           json_value(dict, lambda v: all(isinstance(x, dict) for x in v.values()),
                      what="an object of rules")),
    Family("a team's override log", _f("overrides-log:{}"), "list", JSON_LOG),
    Family("a team's digest numbers", _f("digest:numbers:{}:{}"), "string", json_value(dict)),
    Family("a digest's done mark", _f("schedule:digest-done:{}:{}"), "string",
           json_value((bool, int))),
    Family("a unit of work's pending mark (jobs.work)", re.compile(r"work:pending:.+"), "string"),
    Family("the repositories' last sync errors (jobs.work)", re.compile(r"work:errors"), "hash",
           json_value(str)),
    # review windows (jobs.windows, jobs.window_dm)
    Family("a member's review windows", _f("windows:{}"), "string", record(ReviewWindows)),
    Family("a member's review-window changes", _f("windows-log:{}"), "list", JSON_LOG),
    Family("when a team's default windows began", _f("windows-default:{}"), "string",
           json_value(str, what="an ISO time")),
    Family("a member's snoozed PRs", _f("windows-snooze:{}"), "hash",
           json_value(str, what="an ISO time")),
    Family("PRs a member's last window DM listed", _f("windows-listed:{}"), "hash",
           json_value(str, what="an ISO time")),
    Family("who said 'not mine' on a PR", _f("windows-notmine:{}"), "hash", json_value(dict)),
    Family("the PRs a member said are not theirs", _f("windows-notmine-by:{}"), "hash",
           json_value(dict)),
    Family("a member's mute for a day", _f("windows-mute:{}:{}"), "string", json_value(dict)),
    Family("a sampling cycle's counts (jobs.work)", _f("work:cycle:{}"), "hash"),
    Family("a sampling cycle's counted repositories (jobs.work)", _f("work:cycle:{}:done"), "set"),
    Family("GitHub webhooks' last deliveries", re.compile(r"webhooks:last"), "hash",
           json_value(dict, lambda v: isinstance(v.get("at"), str) and isinstance(v.get("outcome"), str),
                      what="a delivery (at, outcome)")),
    Family("Slack delivery problems", _f("delivery:problems"), "string",
           json_value(dict, _dict_of_dicts("code", "first_at", "last_at"),
                      what="an object of problems")),
)
