"""Slack's side of ``bench/home_latency.py``: the signed events, the records, and the old harness.

A harness is the two parties standing in for Slack: a fake Slack API in a process of its own
(``flowbot web`` calls it; it stamps each ``views.publish``'s arrival and tells the bench) and
the load generator (Slack's connections to the server, each opening one user's Home). Both run
on the cores the server runs on, which Slack's do not in production; their CPU is measured
apart and printed.

This module holds what both harnesses share (the event as Slack sends it, :class:`Open`,
:class:`Published`, the :class:`Harness` interface) and the old harness (``--harness old``):
``tests/fakes/slack_api.py``'s ``FakeSlack`` (``http.server``, a thread per connection) and
threads with ``http.client``, the event ``json.dumps``-ed and signed per open. The lean one is
``bench/home_lean.py``.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import itertools
import json
import queue
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from slack_sdk.signature import SignatureVerifier

from bench.slash_latency import _tree_cpu
from tests.slack_helpers import SECRET

TEAM_ID = "T0FAKE"  # the fake Slack's workspace (auth.test): the workspace guard lets it in
APP_ID = "A0FLOWBOT"
CONNECT_GAP = 0.02  # seconds between the clients' first connections
LATE_WAIT = 30.0  # seconds a timed-out publish is still waited for, so it is never taken for the next
SCRIPT = Path(__file__).resolve().parent / "home_latency.py"  # the fakes' processes run its --serve-* modes


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class Published:
    at: float  # time.monotonic() when views.publish had arrived at the fake
    ok: bool
    blocks: int


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


class Load(Protocol):
    """One harness's clients against one server (``--concurrency`` of them, a user each)."""

    @property
    def late(self) -> int:
        """Publishes that arrived after their timeout, so far."""

    def connect(self) -> None:
        """Open each client's kept-alive connection, ``CONNECT_GAP`` apart."""

    def steady(self, seconds: float) -> tuple[list[Open], float]:
        """Closed loop: each client opens its user's Home again as soon as the last was
        published, for ``seconds``. Returns the opens sent in that time and the wall time."""

    def bursts(self, count: int, pause: float) -> tuple[list[Open], list[float]]:
        """Every client opens its user's Home at once, ``count`` times, ``pause`` seconds apart.
        Returns every open, and per burst the time until its last publish."""

    def event_size(self) -> int:
        """Bytes of an event as the clients send it now."""

    def close(self) -> None:
        """Close the clients' connections."""


class Harness(Protocol):
    """A fake Slack API in its own process and the load generator that goes with it."""

    name: str
    api_url: str
    token: str
    pid: int  # the fake's process

    def cpu(self) -> float:
        """CPU seconds the fake's process has used so far."""

    def load(self, port: int, users: list[str], *, timeout: float, carry_view: bool, keep_alive: bool) -> Load:
        """Clients for ``users`` against the server on ``port``."""

    def stop(self) -> None:
        """Stop the fake."""


# --------------------------------------------------------------------------- the event


def _envelope(view: dict[str, Any] | None, **put: Any) -> dict[str, Any]:
    """The ``event_callback`` Slack POSTs for an ``app_home_opened``, with the Home view the user
    has now inside (once one was published); ``put``: user, channel, event_ts, hash, event_id,
    event_time."""
    event: dict[str, Any] = {"type": "app_home_opened", "user": put["user"], "channel": put["channel"],
                             "tab": "home", "event_ts": put["event_ts"]}
    if view is not None:
        event["view"] = {"id": "V0HOME0001", "team_id": TEAM_ID, "type": "home", "private_metadata": "",
                         "callback_id": "", "state": {"values": {}}, "hash": put["hash"],
                         "clear_on_close": False, "notify_on_close": False, "root_view_id": "V0HOME0001",
                         "previous_view_id": None, "app_id": APP_ID, "external_id": "",
                         "app_installed_team_id": TEAM_ID, "bot_id": "B0FLOWBOT", **view}
    return {
        "token": "deprecated-verification-token", "team_id": TEAM_ID, "api_app_id": APP_ID, "event": event,
        "type": "event_callback", "event_id": put["event_id"], "event_time": put["event_time"],
        "authorizations": [{"enterprise_id": None, "team_id": TEAM_ID, "user_id": "U0FLOWBOT", "is_bot": True,
                            "is_enterprise_install": False}],
        "is_ext_shared_channel": False, "event_context": "4-eyJldCI6ImFwcF9ob21lX29wZW5lZCJ9",
    }


def _fields(user: str, now: float, number: int) -> dict[str, Any]:
    return {"user": user, "channel": f"D0{user[2:]}", "event_ts": f"{now:.6f}", "hash": f"{int(now)}.abcdef12",
            "event_id": f"Ev0HOME{number:08d}", "event_time": int(now)}


def home_opened(user: str, view: dict[str, Any] | None, *, now: float, number: int) -> tuple[bytes, dict[str, str]]:
    """A signed ``app_home_opened`` event for ``user`` as Slack POSTs it (the Home view the user
    has now inside, once one was published), sent at unix time ``now``, the ``number``-th event;
    its body ``json.dumps``-ed and signed by slack_sdk's ``SignatureVerifier`` (the old harness's)."""
    body = json.dumps(_envelope(view, **_fields(user, now, number))).encode()
    timestamp = str(int(now))
    signature = SignatureVerifier(SECRET).generate_signature(timestamp=timestamp, body=body.decode()) or ""
    return body, {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature,
                  "Content-Type": "application/json"}


_MARK = re.compile(rb'"@@(\w+)@@"')


class EventTemplate:
    """:func:`home_opened`'s request, serialised once (the view with it): per open only the
    user, the times, the event's ID and the signature are put in (the lean harness's).
    Raises SystemExit when what it makes differs from :func:`home_opened`'s body."""

    def __init__(self, view: dict[str, Any] | None, port: int) -> None:
        marks = {name: f"@@{name}@@" for name in _fields("U0", 0.0, 0)}
        parts = _MARK.split(json.dumps(_envelope(view, **marks)).encode())
        self._literals = parts[0::2]
        self._names = [name.decode() for name in parts[1::2]]
        self._head = (b"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAccept-Encoding: identity\r\n"
                      b"Content-Type: application/json\r\n" % port)
        self._secret = SECRET.encode()
        now = time.time()
        if self.body("U0HOME0000", now, 1) != home_opened("U0HOME0000", view, now=now, number=1)[0]:
            raise SystemExit("the event template differs from home_opened's event")

    def body(self, user: str, now: float, number: int) -> bytes:
        """The event's body, as :func:`home_opened` makes it."""
        values = _fields(user, now, number)
        out = [self._literals[0]]
        for name, literal in zip(self._names, self._literals[1:], strict=True):
            value = values[name]
            out.append(str(value).encode() if isinstance(value, int) else b'"%s"' % value.encode())
            out.append(literal)
        return b"".join(out)

    def request(self, user: str, now: float, number: int) -> bytes:
        """The whole HTTP request: the signed event POSTed to ``/slack/events``."""
        body = self.body(user, now, number)
        timestamp = b"%d" % int(now)
        signature = hmac.new(self._secret, b"v0:%s:%s" % (timestamp, body), hashlib.sha256).hexdigest()
        return b"%sX-Slack-Request-Timestamp: %s\r\nX-Slack-Signature: v0=%s\r\nContent-Length: %d\r\n\r\n%s" % (
            self._head, timestamp, signature.encode(), len(body), body)


# --------------------------------------------------------------------------- the old fake Slack


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


class OldHarness:
    """``FakeSlack`` in a process of its own and threads with ``http.client`` (``--harness old``)."""

    name = "old"

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, str(SCRIPT), "--serve-fake-slack"],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                        start_new_session=True)
        assert self.process.stdout is not None
        first = self.process.stdout.readline().split()
        if len(first) != 2:
            self.stop()
            raise SystemExit("the fake Slack did not start")
        self.api_url, self.token = first
        self.pid = self.process.pid
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

    def cpu(self) -> float:
        return _tree_cpu(self.process.pid)

    def load(self, port: int, users: list[str], *, timeout: float, carry_view: bool, keep_alive: bool) -> Load:
        return OldLoad([Client(port, user, self, timeout=timeout, carry_view=carry_view, keep_alive=keep_alive)
                        for user in users])

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


_event_numbers = itertools.count(1)


class Client:
    """One of Slack's connections to the server, opening one user's Home (a thread's)."""

    def __init__(self, port: int, user: str, fake: OldHarness, *, timeout: float, carry_view: bool,
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

    def event(self) -> tuple[bytes, dict[str, str]]:
        return home_opened(self.user, self.fake.view if self.carry_view else None, now=time.time(),
                           number=next(_event_numbers))

    def open_home(self) -> Open:
        body, headers = self.event()
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


class OldLoad:
    """The old load generator: a thread per client, a barrier for each burst."""

    def __init__(self, clients: list[Client]) -> None:
        self.clients = clients

    @property
    def late(self) -> int:
        return sum(c.late for c in self.clients)

    def connect(self) -> None:
        for client in self.clients:
            client.connect()
            time.sleep(CONNECT_GAP)

    def steady(self, seconds: float) -> tuple[list[Open], float]:
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

        with ThreadPoolExecutor(max_workers=len(self.clients)) as pool:
            list(pool.map(loop, self.clients))
        return [o for o in opens if o.sent < until], time.monotonic() - began

    def bursts(self, count: int, pause: float) -> tuple[list[Open], list[float]]:
        barrier = threading.Barrier(len(self.clients))
        opens: list[Open] = []
        spans = []

        def one(client: Client) -> Open:
            barrier.wait()
            return client.open_home()

        with ThreadPoolExecutor(max_workers=len(self.clients)) as pool:
            for _ in range(count):
                burst = list(pool.map(one, self.clients))
                opens.extend(burst)
                done = [o.published for o in burst if o.published is not None]
                if done:
                    spans.append(max(done) - min(o.sent for o in burst))
                time.sleep(pause)
        return opens, spans

    def event_size(self) -> int:
        return len(self.clients[0].event()[0])

    def close(self) -> None:
        for client in self.clients:
            client.close()
