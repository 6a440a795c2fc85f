"""Benchmark: App Home under `flowbot web`, from Slack's signed event to ``views.publish`` at Slack.

What a user waits for when they open Flowbot's Home tab: Slack POSTs a signed
``app_home_opened`` event (the ``event_callback`` envelope, carrying the Home view the user has
now, as Slack sends it) to ``/slack/events``; Bolt acknowledges it, then a lazy listener
(``bot/home.py``) builds the view and calls ``views.publish``. Timed here from the moment the
event is sent to the moment ``views.publish`` for that user has arrived at Slack (the fake Slack
API, ``tests/fakes/slack_api.py``, in a process of its own, stamps each arrival with
``time.monotonic()``, one clock for every process on Linux, and tells this process). The HTTP
acknowledgement is timed apart.

Seeds ``--teams`` team snapshots of ``--open-prs`` open PRs each (``bench/slash_latency.py``'s
seeding: sandbox-shaped records, ``jobs.snapshot.compute_team_snapshot``), with ``--users``
Slack users, each a member of every team with a GitHub login of their own and every third PR
also waiting on one of them in turn (so each Home lists 30 team cards and PRs waiting on them).
Starts ``flowbot web`` (the Procfile's command: gunicorn, ``--workers`` uvicorn workers) with
``SLACK_API_URL`` at the fake. Two scenarios, each after a warm-up not counted:

* steady, closed loop: ``--concurrency`` clients, client i opens user i's Home, waits for the
  publish, and again, for ``--seconds``;
* burst: every client opens its user's Home at the same instant (a barrier), ``--bursts``
  times, ``--pause`` seconds apart; the percentiles are over every open of every burst.

``--first-open`` sends the events without the view the user has (Slack leaves it out until one
was published), which Bolt copies for its lazy listener. ``--stages`` also cuts each open into
its stages inside the server, from stamps it writes (``bench/home_stages.py``, installed like
``--naive``'s swap): event sent to ``publish_home`` started (Bolt's lazy listener, or the fast
lane's pool), the view's build, and the publish.

A publish not arrived ``--timeout`` seconds after its event counts as an error (and is waited
for a while longer, so it is never taken for the next one's). Printed per scenario:
p50/p90/p99/max from event to publish, the acknowledgement's p50/p99/max, opens, opens/s,
errors, the web server's CPU per open (gunicorn's master and workers) and each worker's share
of it, the fake's CPU per publish and the load generator's per open (all three share the
machine's cores), and the load average before and after.

Each client keeps its connection open; they are opened one at a time, 20 ms apart, as Slack's
would arrive: 50 opened at once (as wrk does) are all accepted by one worker's event loop and
stay there, so the other worker idles (the shares show it: 100% / 0%). ``--no-keep-alive``
opens a connection per event instead.

The same load, in the same run, goes first to ``flowbot web --no-fast-lane`` (every event
through a2wsgi and Bolt, whose lazy listener builds the view; ``--only-now`` leaves it out),
then to the Procfile's (``bot/fastlane.py`` takes App Home opens). ``--naive`` adds, before
them, the path as it was before issue 14: ``--no-fast-lane`` with ``bot.home.records_view`` as
the view (cards and waiting lists decoded as records and rendered). No flag selects that view:
the bench assigns it to ``bot.home.home_view`` in the server's master before gunicorn forks.

Target (issue 14): p99 under 100 ms at 50 concurrent with 50 teams of 2,000 open PRs each.

    .venv/bin/python bench/home_latency.py [--teams 50] [--open-prs 2000] [--users 50]
        [--concurrency 50] [--seconds 15] [--bursts 20] [--workers 2] [--only-now] [--naive] [--stages]
        [--first-open] [--no-keep-alive]

Uses ``REDIS_URL`` as given (its database included), else an embedded Redis in a temp dir; the
data lives under a prefix of its own (``flowhome``), removed afterwards.
"""

from __future__ import annotations

import argparse
import bisect
import http.client
import itertools
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from slack_sdk.signature import SignatureVerifier

from bench.shape import load
from bench.slash_latency import (
    _codec_dumps,
    _ms,
    _pct,
    _tree_cpu,
    _wait_healthy,
    config_text,
    cpu_by_process,
    start_web,
    stop_all,
    team_snapshot,
    web_env,
)
from jobs.store import Store
from tests.slack_helpers import SECRET

PREFIX = "flowhome"
TEAM_ID = "T0FAKE"  # the fake Slack's workspace (auth.test): the workspace guard lets it in
APP_ID = "A0FLOWBOT"
NAIVE_PRELUDE = "import bot.home as h; h.home_view = h.records_view; "  # run in the master, before the fork
CONNECT_GAP = 0.02  # seconds between the clients' first connections
LATE_WAIT = 30.0  # seconds a timed-out publish is still waited for, so it is never taken for the next


def users(n: int) -> tuple[tuple[str, str], ...]:
    """``n`` members: (GitHub login, Slack user ID)."""
    return tuple((f"dev{i:03d}", f"U0HOME{i:04d}") for i in range(n))


# --------------------------------------------------------------------------- the fake Slack


def serve_fake_slack() -> None:
    """In the fake's own process: serve the fake Slack API; write ``URL TOKEN``, then one line
    per ``views.publish`` (``user arrival ok blocks``; the first one's view as ``VIEW json``)
    to stdout; stop when stdin closes. Calls are forgotten every second (memory stays flat)."""
    from tests.fakes.slack_api import Call, FakeSlack

    lock = threading.Lock()
    first = [True]

    def told(call: Call) -> None:
        if call.method != "views.publish":
            return
        view = call.params.get("view")
        blocks = len(view.get("blocks", [])) if isinstance(view, dict) else 0
        lines = f"{call.params.get('user_id')} {call.at:.6f} {int(bool(call.response.get('ok')))} {blocks}\n"
        with lock:
            if first[0] and call.response.get("ok"):
                first[0] = False
                lines = f"VIEW {json.dumps(view)}\n{lines}"
            sys.stdout.write(lines)
            sys.stdout.flush()

    fake = FakeSlack(on_call=told).start()
    print(f"{fake.api_url} {fake.token}", flush=True)
    done = threading.Event()

    def forget() -> None:
        while not done.wait(1.0):
            fake.reset()

    threading.Thread(target=forget, daemon=True).start()
    sys.stdin.read()
    done.set()
    fake.stop()


@dataclass(frozen=True, slots=True)
class Published:
    at: float  # time.monotonic() when views.publish had arrived at the fake
    ok: bool
    blocks: int


class FakeSlackProcess:
    """The fake Slack API in a process of its own; each views.publish's arrival, per user."""

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--serve-fake-slack"],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                        start_new_session=True)
        assert self.process.stdout is not None
        first = self.process.stdout.readline().split()
        if len(first) != 2:
            self.stop()
            raise SystemExit("the fake Slack did not start")
        self.api_url, self.token = first
        self.view: dict[str, Any] | None = None  # the first view published, as Slack sends it back
        self._arrivals: dict[str, queue.Queue[Published]] = {}
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def arrivals(self, user: str) -> queue.Queue[Published]:
        with self._lock:
            return self._arrivals.setdefault(user, queue.Queue())

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("VIEW "):
                self.view = json.loads(line[5:])
                continue
            user, at, ok, blocks = line.split()
            self.arrivals(user).put(Published(float(at), ok == "1", int(blocks)))

    @property
    def cpu(self) -> float:
        return _tree_cpu(self.process.pid)

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


# --------------------------------------------------------------------------- Slack's side


_event_ids = itertools.count(1)


def home_opened(user: str, view: dict[str, Any] | None) -> tuple[bytes, dict[str, str]]:
    """A signed ``app_home_opened`` event for ``user`` as Slack POSTs it (the Home view the user
    has now inside, once one was published), signed now."""
    now = time.time()
    event: dict[str, Any] = {"type": "app_home_opened", "user": user, "channel": f"D0{user[2:]}",
                             "tab": "home", "event_ts": f"{now:.6f}"}
    if view is not None:
        event["view"] = {"id": "V0HOME0001", "team_id": TEAM_ID, "type": "home", "private_metadata": "",
                         "callback_id": "", "state": {"values": {}}, "hash": f"{int(now)}.abcdef12",
                         "clear_on_close": False, "notify_on_close": False, "root_view_id": "V0HOME0001",
                         "previous_view_id": None, "app_id": APP_ID, "external_id": "",
                         "app_installed_team_id": TEAM_ID, "bot_id": "B0FLOWBOT", **view}
    body = json.dumps({
        "token": "deprecated-verification-token", "team_id": TEAM_ID, "api_app_id": APP_ID, "event": event,
        "type": "event_callback", "event_id": f"Ev0HOME{next(_event_ids):08d}", "event_time": int(now),
        "authorizations": [{"enterprise_id": None, "team_id": TEAM_ID, "user_id": "U0FLOWBOT", "is_bot": True,
                            "is_enterprise_install": False}],
        "is_ext_shared_channel": False, "event_context": "4-eyJldCI6ImFwcF9ob21lX29wZW5lZCJ9",
    }).encode()
    timestamp = str(int(now))
    signature = SignatureVerifier(SECRET).generate_signature(timestamp=timestamp, body=body.decode()) or ""
    return body, {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature,
                  "Content-Type": "application/json"}


@dataclass(frozen=True, slots=True)
class Open:
    """One Home opened: when its event was sent, acknowledged, and its view published."""

    user: str
    sent: float
    acked: float | None  # None: no HTTP answer
    published: float | None  # None: not within the timeout
    error: str | None = None  # "http", "status NNN", "timeout", "publish refused"
    blocks: int = 0

    @property
    def latency(self) -> float:
        assert self.published is not None
        return self.published - self.sent


class Client:
    """One of Slack's connections to the server, opening one user's Home."""

    def __init__(self, port: int, user: str, fake: FakeSlackProcess, *, timeout: float, carry_view: bool,
                 keep_alive: bool) -> None:
        self.carry_view = carry_view
        self.keep_alive = keep_alive
        self.port = port
        self.user = user
        self.fake = fake
        self.timeout = timeout
        self.arrivals = fake.arrivals(user)
        self.conn: http.client.HTTPConnection | None = None
        self.late = 0  # publishes that arrived after their timeout

    def open_home(self) -> Open:
        body, headers = home_opened(self.user, self.fake.view if self.carry_view else None)
        sent = time.monotonic()
        status = 0
        for attempt in range(2):  # a keep-alive connection the server closed: once more, anew
            conn = self.conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            self.conn = conn
            sent = time.monotonic()
            try:
                conn.request("POST", "/slack/events", body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
                if not self.keep_alive:
                    self.close()
                break
            except (OSError, http.client.HTTPException):
                conn.close()
                self.conn = None
                if attempt:
                    return Open(self.user, sent, None, None, "http")
        acked = time.monotonic()
        if status != 200:
            return Open(self.user, sent, acked, None, f"status {status}")
        try:
            published = self._publish_after(sent, sent + self.timeout)
        except queue.Empty:
            try:  # still waited for (not timed), so it is never taken for the next open's
                self._publish_after(sent, time.monotonic() + LATE_WAIT)
                self.late += 1
            except queue.Empty:
                pass
            return Open(self.user, sent, acked, None, "timeout")
        if not published.ok:
            return Open(self.user, sent, acked, None, "publish refused")
        return Open(self.user, sent, acked, published.at, blocks=published.blocks)

    def _publish_after(self, sent: float, deadline: float) -> Published:
        while True:
            got = self.arrivals.get(timeout=max(0.0, deadline - time.monotonic()))
            if got.at >= sent:
                return got

    def connect(self) -> None:
        """Open the kept-alive connection now (accepted by whichever worker wakes first)."""
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        self.conn.connect()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


# --------------------------------------------------------------------------- scenarios


def steady(clients: list[Client], seconds: float) -> tuple[list[Open], float]:
    """Closed loop: each client opens its user's Home again as soon as the last was published,
    for ``seconds``. Returns the opens sent in that time and the wall time."""
    opens: list[Open] = []
    lock = threading.Lock()
    began = time.monotonic()
    until = began + seconds

    def loop(client: Client) -> None:
        mine = []
        while time.monotonic() < until:
            mine.append(client.open_home())
        with lock:
            opens.extend(mine)

    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        list(pool.map(loop, clients))
    return [o for o in opens if o.sent < until], time.monotonic() - began


def bursts(clients: list[Client], count: int, pause: float) -> tuple[list[Open], list[float]]:
    """Every client opens its user's Home at once (a barrier), ``count`` times, ``pause``
    seconds apart. Returns every open, and per burst the time until its last publish."""
    barrier = threading.Barrier(len(clients))
    opens: list[Open] = []
    spans = []

    def one(client: Client) -> Open:
        barrier.wait()
        return client.open_home()

    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        for _ in range(count):
            burst = list(pool.map(one, clients))
            opens.extend(burst)
            done = [o.published for o in burst if o.published is not None]
            if done:
                spans.append(max(done) - min(o.sent for o in burst))
            time.sleep(pause)
    return opens, spans


class Stages:
    """The server's stamps (``bench/home_stages.py``), per user and stage, in time order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.touch()

    def prelude(self) -> str:
        return (f"import sys; sys.path.insert(0, {str(ROOT)!r}); import bench.home_stages; "
                f"bench.home_stages.install({str(self.path)!r}); ")

    def report(self, opens: list[Open]) -> None:
        """Each published open cut into its stages, by the first stamps after its event."""
        stamps: dict[tuple[str, str], list[float]] = {}
        for line in self.path.read_text().splitlines():
            user, stage, at = line.split()
            stamps.setdefault((user, stage), []).append(float(at))
        for times in stamps.values():
            times.sort()

        def after(user: str, stage: str, t: float, until: float) -> float | None:
            times = stamps.get((user, stage), [])
            i = bisect.bisect_left(times, t)
            return times[i] if i < len(times) and times[i] <= until else None

        cuts: dict[str, list[float]] = {}
        for o in opens:
            if o.published is None:
                continue
            listener = after(o.user, "listener", o.sent, o.published)
            built = listener and after(o.user, "built", listener, o.published)
            publish = built and after(o.user, "publish", built, o.published)
            if not (listener and built and publish):
                continue
            for name, span in (("event sent -> publish_home started (HTTP, ack, queue)", listener - o.sent),
                               ("publish_home started -> view built (home_view)", built - listener),
                               ("view built -> views.publish called", publish - built),
                               ("views.publish called -> arrived at Slack (client, JSON, HTTP)",
                                o.published - publish)):
                cuts.setdefault(name, []).append(span)
        if not cuts:
            print("  stages: no stamps matched (bot.home.publish_home / home_view not called as traced)")
            return
        for name, spans in cuts.items():
            spans.sort()
            print(f"  stage {name}: p50 {_ms(_pct(spans, 0.5))}  p99 {_ms(_pct(spans, 0.99))}  "
                  f"mean {_ms(sum(spans) / len(spans))}  ({len(spans)} opens)")


@dataclass
class Measured:
    label: str
    opens: list[Open]
    wall: float
    server_cpu: float
    fake_cpu: float
    before: str
    after: str
    late: int
    workers_cpu: list[float]  # each web worker's CPU seconds, most first
    client_cpu: float  # this process's: the load generator's (and the reader of the fake's lines)

    @property
    def latencies(self) -> list[float]:
        return sorted(o.latency for o in self.opens if o.published is not None)

    def report(self) -> None:
        latencies = self.latencies
        errors = Counter(o.error for o in self.opens if o.error)
        named = ", ".join(f"{n} {e}" for e, n in sorted(errors.items())) or "none"
        print(f"{self.label}: {len(self.opens)} opens, {len(latencies)} published, errors: {named}"
              f"{f' ({self.late} published after the timeout)' if self.late else ''}")
        if not latencies:
            return
        acks = sorted(o.acked - o.sent for o in self.opens if o.acked is not None)
        blocks = sorted(o.blocks for o in self.opens if o.published is not None)
        print(f"  event -> views.publish: p50 {_ms(_pct(latencies, 0.5))}  p90 {_ms(_pct(latencies, 0.9))}  "
              f"p99 {_ms(_pct(latencies, 0.99))}  max {_ms(latencies[-1])}  (target p99 < 100 ms)")
        print(f"  acknowledgement (HTTP 200): p50 {_ms(_pct(acks, 0.5))}  p99 {_ms(_pct(acks, 0.99))}  "
              f"max {_ms(acks[-1])};  {len(latencies) / self.wall:.0f} opens/s, web server CPU "
              f"{self.cpu_per_open * 1000:.1f} ms per open, the fake Slack's "
              f"{self.fake_cpu / len(latencies) * 1000:.1f} ms per publish; {blocks[len(blocks) // 2]} blocks a view")
        share = " / ".join(f"{cpu / max(sum(self.workers_cpu), 1e-9) * 100:.0f}%" for cpu in self.workers_cpu)
        print(f"  the web workers' shares of their CPU: {share}; the load generator's CPU "
              f"{self.client_cpu / len(self.opens) * 1000:.1f} ms per open")
        print(f"  [before: {self.before}; after: {self.after}]")

    @property
    def cpu_per_open(self) -> float:
        return self.server_cpu / max(len(self.opens), 1)

    def p99(self) -> float | None:
        latencies = self.latencies
        return _pct(latencies, 0.99) if latencies else None


def measure(name: str, port: int, server: subprocess.Popen[bytes], fake: FakeSlackProcess,
            members: tuple[tuple[str, str], ...], args: argparse.Namespace,
            stages: Stages | None) -> dict[str, Measured]:
    """Both scenarios against one server, each after its warm-up."""
    clients = [Client(port, slack, fake, timeout=args.timeout, carry_view=not args.first_open,
                      keep_alive=not args.no_keep_alive) for _, slack in members[: args.concurrency]]
    out = {}

    def mark() -> tuple[int, dict[int, float], float, str, float]:
        return sum(c.late for c in clients), cpu_by_process(server.pid), fake.cpu, load(), time.process_time()

    def measured(label: str, opens: list[Open], wall: float,
                 since: tuple[int, dict[int, float], float, str, float]) -> Measured:
        late, cpu, fake_cpu, before, own = since
        now = cpu_by_process(server.pid)
        workers = sorted((now[p] - cpu.get(p, 0.0) for p in now if p != server.pid), reverse=True)
        return Measured(label, opens, wall, sum(now.values()) - sum(cpu.values()), fake.cpu - fake_cpu, before,
                        load(), sum(c.late for c in clients) - late, workers, time.process_time() - own)

    try:
        if not args.no_keep_alive:  # one at a time, as Slack's arrive: opened at once, one worker takes all
            for client in clients:
                client.connect()
                time.sleep(CONNECT_GAP)
        steady(clients, args.warmup)  # the rendered parts, connections, pools: not timed
        size = len(home_opened(clients[0].user, None if args.first_open else fake.view)[0]) / 1024
        since = mark()
        opens, wall = steady(clients, args.seconds)
        out["steady"] = measured(f"App Home, steady: {name}, {args.concurrency} user(s) each opening it again on "
                                 f"its publish, {args.seconds:.0f} s, events of {size:.1f} KB", opens, wall, since)
        bursts(clients, 2, args.pause)  # warm-up: not timed
        since = mark()
        opens, spans = bursts(clients, args.bursts, args.pause)
        out["burst"] = measured(f"App Home, burst: {name}, {args.concurrency} user(s) opening it at the same "
                                f"instant, {args.bursts} bursts {args.pause:g} s apart", opens,
                                sum(spans) or 1e-9, since)  # opens/s while a burst was being served
        out["burst"].label += (f"; the last publish of a burst after median {_ms(sorted(spans)[len(spans) // 2])}, "
                               f"worst {_ms(max(spans))}" if spans else "")
    finally:
        for client in clients:
            client.close()
    for result in out.values():
        result.report()
        if stages is not None:
            stages.report(result.opens)
    return out


def main() -> None:
    if sys.argv[1:] == ["--serve-fake-slack"]:
        serve_fake_slack()
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teams", type=int, default=50)
    parser.add_argument("--open-prs", type=int, default=2000, help="open PRs in each team's queue")
    parser.add_argument("--users", type=int, default=50, help="Slack users, each a member of every team")
    parser.add_argument("--concurrency", type=int, default=50, help="clients, each opening one user's Home")
    parser.add_argument("--seconds", type=float, default=15, help="steady scenario, after the warm-up")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of steady load not timed")
    parser.add_argument("--bursts", type=int, default=20)
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between bursts")
    parser.add_argument("--timeout", type=float, default=5.0, help="a publish later than this is an error")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--first-open", action="store_true",
                        help="events without the Home view the user has (as on a first open), not with it")
    parser.add_argument("--no-keep-alive", action="store_true",
                        help="a connection per event (by default each client keeps one open, as wrk does)")
    parser.add_argument("--stages", action="store_true",
                        help="also cut each open into stages, from stamps the server writes (bench/home_stages.py)")
    parser.add_argument("--only-now", action="store_true", help="only the Procfile's server, not --no-fast-lane's")
    parser.add_argument("--naive", action="store_true",
                        help="also load --no-fast-lane's server with bot.home.records_view swapped in")
    args = parser.parse_args()
    if args.concurrency > args.users:
        parser.error("--concurrency may not exceed --users: each client opens a Home of its own user")
    url = os.environ.get("REDIS_URL") or None
    members = users(args.users)

    base = team_snapshot(args.open_prs, url, waiting=tuple(login for login, _ in members))
    now = datetime.now(UTC)
    base = replace(base, computed_at=now - timedelta(minutes=2), data_as_of=now - timedelta(minutes=3))
    fake = FakeSlackProcess()
    servers: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "flowbot.rdb"
        config = Path(tmp) / "config.toml"
        config.write_text(config_text(data, args.teams, members=members, prefix=PREFIX))
        store = Store.connect(url, data_path=data, prefix=PREFIX)
        try:
            store.flush_prefix()
            store.ensure_schema()
            for t in range(args.teams):
                store.put_snapshot(replace(base, team=f"team{t}"))
            print(f"{args.teams} teams, {len(base.queue_items):,} PRs in each queue "
                  f"({len(_codec_dumps(base)) / 1024:.0f} KB a snapshot); {args.users} users on every team, "
                  f"each waited on by {sum(1 for i in base.queue_items if i.waiting_on[:1] == (members[0][0],))} "
                  f"PRs a team; Redis: {store.location}; flowbot web: {args.workers} workers; the fake Slack "
                  f"in its own process (pid {fake.process.pid})")
            env = web_env(fake.token, fake.api_url, url)
            stages = Stages(Path(tmp) / "stages.txt") if args.stages else None
            results = {}
            sides: list[tuple[str, str, list[str], str]] = [
                ("now", "now: flowbot web (the Procfile's: the fast lane)", [], "")]
            if not args.only_now:
                sides.insert(0, ("bolt", "bolt: flowbot web --no-fast-lane (Bolt's lazy listener, home_view)",
                                 ["--no-fast-lane"], ""))
            if args.naive:
                sides.insert(0, ("naive", "naive: flowbot web --no-fast-lane, records_view swapped in (issue 14's start)",
                                 ["--no-fast-lane"], NAIVE_PRELUDE))
            for key, name, extra, prelude in sides:
                prelude += stages.prelude() if stages else ""
                port, server = start_web(config, env, workers=args.workers, extra=extra, prelude=prelude)
                servers.append(server)
                _wait_healthy(port, server)
                results[key] = measure(name, port, server, fake, members, args, stages)
                stop_all([server])
            for key in ("naive", "bolt"):
                for scenario in ("steady", "burst") if key in results else ():
                    old, new = results[key][scenario], results["now"][scenario]
                    if old.p99() and new.p99():
                        print(f"  App Home {scenario}: {key} -> now: p99 {_ms(old.p99() or 0)} -> "
                              f"{_ms(new.p99() or 0)} ({(old.p99() or 0) / (new.p99() or 1):.1f}x), web CPU per open "
                              f"{old.cpu_per_open * 1000:.1f} -> {new.cpu_per_open * 1000:.1f} ms")
        finally:
            stop_all(servers)
            fake.stop()
            store.flush_prefix()
            store.close()


if __name__ == "__main__":
    main()
