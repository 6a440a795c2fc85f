"""The lean harness of ``bench/home_latency.py`` (its default): Slack's side at little CPU.

Slack's own CPU is not on our cores in production; on the bench it is, and the old harness
(``bench/home_harness.py``: ``FakeSlack``, threads with ``http.client``) took about 3 ms of CPU
an open on the two cores the server under test has, about as much as the server itself, which
inflated the latency measured at 50 in flight. What is timed is the same: from the moment the
signed event is sent to the moment ``views.publish`` for that user has arrived (read whole) at
the fake, stamped there with ``time.monotonic()``.

* The fake: ``tests/fakes/slack_lean.py``'s ``LeanSlack`` (asyncio and httptools, HTTP/1.1 kept
  alive or not; ``auth.test`` and ``views.publish`` as Slack answers them, the view echoed
  whole) in a process of its own, writing a line per publish to its stdout (``user arrival ok
  blocks``; before the first one, its view as ``VIEW json``).
* The load generator: one asyncio event loop in this process, a connection per client parsed
  by httptools, the event made from :class:`~bench.home_harness.EventTemplate` (the view
  serialised once: per open only the user, the times, the event ID and the HMAC change), the
  fake's lines read by the same loop and handed to the client waiting for that user.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections import deque
from typing import Any

import httptools

from bench.home_harness import CONNECT_GAP, LATE_WAIT, SCRIPT, EventTemplate, Load, Open, Published
from bench.slash_latency import _tree_cpu

REQUEST_TIMEOUT = 10.0  # seconds for the HTTP exchange (the old harness's socket timeout)


LATENCY_ENV = "FLOWBOT_BENCH_SLACK_SECONDS"  # the fake's time to answer (home_latency.py --slack-ms)


def serve_lean_slack() -> None:
    """In the fake's own process: serve ``LeanSlack``; write ``URL TOKEN``, then one line per
    ``views.publish`` (``user arrival ok blocks``; the first one's view as ``VIEW json``) to
    stdout, those of one pass of its event loop in one write; stop when stdin closes."""
    from tests.fakes.slack_lean import LeanSlack, Publish

    first = [True]
    lines: list[bytes] = []

    def flush() -> None:
        os.write(1, b"".join(lines))
        lines.clear()

    def told(publish: Publish) -> None:  # in LeanSlack's loop: written once the loop's events are handled
        if not lines:
            asyncio.get_running_loop().call_soon(flush)
        if first[0] and publish.ok:
            first[0] = False
            lines.append(b"VIEW " + publish.view + b"\n")
        lines.append(b"%s %.6f %d %d\n" % (publish.user.encode(), publish.at, publish.ok, publish.blocks))

    fake = LeanSlack(on_publish=told, latency=float(os.environ.get(LATENCY_ENV, "0") or 0)).start()
    os.write(1, f"{fake.api_url} {fake.token}\n".encode())
    sys.stdin.read()
    fake.stop()


class LeanHarness:
    """``LeanSlack`` in a process of its own, and asyncio clients in this one."""

    name = "lean"

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, str(SCRIPT), "--serve-lean-slack"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, bufsize=0, start_new_session=True)
        assert self.process.stdout is not None
        first = self.process.stdout.readline().split()  # unbuffered: nothing past the line is read
        if len(first) != 2:
            self.stop()
            raise SystemExit("the lean fake Slack did not start")
        self.api_url, self.token = (part.decode() for part in first)
        self.pid = self.process.pid
        self.loop = asyncio.new_event_loop()
        self.view: dict[str, Any] | None = None  # the first view published
        self.waiting: dict[str, LeanClient] = {}  # by user: the clients of the load running now
        self.loop.run_until_complete(self.loop.connect_read_pipe(lambda: _Lines(self), self.process.stdout))

    def cpu(self) -> float:
        return _tree_cpu(self.process.pid)

    def load(self, port: int, users: list[str], *, timeout: float, carry_view: bool, keep_alive: bool) -> Load:
        return LeanLoad(self, port, users, timeout=timeout, carry_view=carry_view, keep_alive=keep_alive)

    def published(self, line: bytes) -> None:
        if line.startswith(b"VIEW "):
            self.view = json.loads(line[5:])
            return
        user, at, ok, blocks = line.split()
        client = self.waiting.get(user.decode())
        if client is not None:
            client.arrived(Published(float(at), ok == b"1", int(blocks)))

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self.loop.run_until_complete(asyncio.sleep(0))  # the pipe's transport sees its end
        self.loop.close()


class _Lines(asyncio.Protocol):
    """The fake's stdout, split into lines for :meth:`LeanHarness.published`."""

    def __init__(self, harness: LeanHarness) -> None:
        self.harness = harness
        self.rest = b""

    def data_received(self, data: bytes) -> None:
        *lines, self.rest = (self.rest + data).split(b"\n")
        for line in lines:
            self.harness.published(line)


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection to the server: a request written, its answer parsed by httptools."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.answer: asyncio.Future[int] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as err:
            self._fail(ConnectionError(f"bad answer: {err}"))
            self.close()

    def on_message_complete(self) -> None:
        if self.answer is not None and not self.answer.done():
            self.answer.set_result(self.parser.get_status_code())

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionResetError("the server closed the connection"))

    def _fail(self, err: Exception) -> None:
        if self.answer is not None and not self.answer.done():
            self.answer.set_exception(err)

    async def exchange(self, request: bytes) -> int:
        """Write ``request``; returns the answer's HTTP status once it was read whole."""
        if self.closed or self.transport is None:
            raise ConnectionResetError("the server closed the connection")
        self.answer = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        try:
            return await self.answer
        finally:
            self.answer = None

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class LeanClient:
    """One of Slack's connections to the server, opening one user's Home (a coroutine's)."""

    def __init__(self, harness: LeanHarness, port: int, user: str, *, timeout: float, carry_view: bool,
                 keep_alive: bool) -> None:
        self.harness = harness
        self.port = port
        self.user = user
        self.timeout = timeout
        self.carry_view = carry_view
        self.keep_alive = keep_alive
        self.conn: _Connection | None = None
        self.arrivals: deque[Published] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.late = 0  # publishes that arrived after their timeout

    def arrived(self, published: Published) -> None:
        self.arrivals.append(published)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def connect(self) -> None:
        """Open the kept-alive connection now (accepted by whichever worker wakes first)."""
        _, self.conn = await asyncio.get_running_loop().create_connection(_Connection, "127.0.0.1", self.port)

    async def open_home(self) -> Open:
        request = self.request()
        sent = time.monotonic()
        status = 0
        for attempt in range(2):  # a keep-alive connection the server closed: once more, anew
            sent = time.monotonic()
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT):
                    if self.conn is None or self.conn.closed:
                        await self.connect()
                    assert self.conn is not None
                    status = await self.conn.exchange(request)
                if not self.keep_alive:
                    self.close()
                break
            except OSError:  # refused, reset, closed, a bad answer; TimeoutError too
                self.close()
                if attempt:
                    return Open(self.user, sent, None, None, "http")
        acked = time.monotonic()
        if status != 200:
            return Open(self.user, sent, acked, None, f"status {status}")
        published = await self._publish_after(sent, sent + self.timeout)
        if published is None:  # still waited for (not timed), so it is never taken for the next open's
            if await self._publish_after(sent, time.monotonic() + LATE_WAIT) is not None:
                self.late += 1
            return Open(self.user, sent, acked, None, "timeout")
        if not published.ok:
            return Open(self.user, sent, acked, None, "publish refused")
        return Open(self.user, sent, acked, published.at, blocks=published.blocks)

    def request(self) -> bytes:
        return self.template().request(self.user, time.time(), next(_numbers))

    def template(self) -> EventTemplate:
        return _template(self.harness.view if self.carry_view else None, self.port)

    async def _publish_after(self, sent: float, deadline: float) -> Published | None:
        """The first publish for this user stamped at or after ``sent``; None at ``deadline``
        (``time.monotonic()``, the loop's clock)."""
        while True:
            while self.arrivals:
                got = self.arrivals.popleft()
                if got.at >= sent:
                    return got
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout_at(deadline):
                    await self.waiter
            except TimeoutError:
                return None
            finally:
                self.waiter = None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


_numbers = iter(range(1, 1 << 62))
_templates: dict[tuple[int, int], EventTemplate] = {}  # by (id of the view, port): built once


def _template(view: dict[str, Any] | None, port: int) -> EventTemplate:
    key = (id(view), port)
    found = _templates.get(key)
    if found is None:
        found = _templates[key] = EventTemplate(view, port)
    return found


class LeanLoad:
    """The lean load generator: a coroutine per client on the harness's event loop."""

    def __init__(self, harness: LeanHarness, port: int, users: list[str], *, timeout: float, carry_view: bool,
                 keep_alive: bool) -> None:
        self.harness = harness
        self.clients = [LeanClient(harness, port, user, timeout=timeout, carry_view=carry_view,
                                   keep_alive=keep_alive) for user in users]
        harness.waiting = {client.user: client for client in self.clients}

    @property
    def late(self) -> int:
        return sum(c.late for c in self.clients)

    def connect(self) -> None:
        async def one_by_one() -> None:
            for client in self.clients:
                await client.connect()
                await asyncio.sleep(CONNECT_GAP)

        self.harness.loop.run_until_complete(one_by_one())

    def steady(self, seconds: float) -> tuple[list[Open], float]:
        began = time.monotonic()
        until = began + seconds

        async def loop(client: LeanClient) -> list[Open]:
            mine = []
            while time.monotonic() < until:
                mine.append(await client.open_home())
            return mine

        async def every() -> list[list[Open]]:
            return await asyncio.gather(*(loop(client) for client in self.clients))

        opens = [o for mine in self.harness.loop.run_until_complete(every()) for o in mine]
        return [o for o in opens if o.sent < until], time.monotonic() - began

    def bursts(self, count: int, pause: float) -> tuple[list[Open], list[float]]:
        opens: list[Open] = []
        spans = []

        async def every() -> None:
            for _ in range(count):
                burst = await asyncio.gather(*(client.open_home() for client in self.clients))
                opens.extend(burst)
                done = [o.published for o in burst if o.published is not None]
                if done:
                    spans.append(max(done) - min(o.sent for o in burst))
                await asyncio.sleep(pause)

        self.harness.loop.run_until_complete(every())
        return opens, spans

    def event_size(self) -> int:
        template = self.clients[0].template()
        return len(template.body(self.clients[0].user, time.time(), 0))

    def close(self) -> None:
        for client in self.clients:
            client.close()
        self.harness.loop.run_until_complete(asyncio.sleep(0))  # the transports' close callbacks
