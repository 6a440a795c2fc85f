"""The fast lane: signed `/flow status`, `/flow queue` and App Home opens served in the ASGI
layer, not by Bolt.

These two are most of what people type, and through ``bot.web`` and Bolt each cost about 2 ms
of CPU beside their one Redis read (a2wsgi's thread hop, Bolt's request, middleware chain and
listener matching), which at 50 at once on 2 cores is what the wait was made of (issue 14).
Here a worker's event loop makes every check the Bolt path makes, with the same code, then
answers from the answer rendered for the snapshot (``bot.answers``) in one store read:

- body size and ``Content-Length``; signature and timestamp (``FlowbotWeb.unsigned_because``);
- the body parsed as Bolt parses it (``slack_bolt.request.internals.parse_body``), a form
  without ``payload``; no ``ssl_check``; the command named ``/flow``;
- the workspace and app (``bot.guard.Workspace``, the state Bolt's ``WorkspaceGuard`` uses;
  before Slack has said which workspace the token belongs to, Bolt answers);
- the text parsed (``bot.commands.parse``) to ``status`` or ``queue`` and the team resolved
  (``resolve_team``); reading is open to everyone in the workspace (``bot.guard``).

Any request that does not pass all of them, or that this way cannot answer (no snapshot yet,
Redis down with no copy read before), goes on to the app behind, unchanged: it is refused,
counted and logged there, or answered by Bolt, exactly as without the fast lane. The store
read runs in a small thread pool, so a hanging Redis holds a thread, not the event loop.

App Home opens (a signed ``app_home_opened`` event for the Home tab, from the installed
workspace and app, not the bot's own) are acknowledged at once, as Bolt's listener does, and
the view is built and published (``bot.home.home_json`` and ``send_home``, what the listener's
``publish_home`` does) by threads of their own (:class:`_Publishers`), over kept-alive
connections to Slack (``bot.slack_keepalive``): a few threads build views (CPU), many send them
(mostly waiting on Slack), so a slow Slack holds senders, neither the builds nor the slash
commands' reads, and a fast one does not have dozens of threads contend for the GIL with the
event loop (with 8 threads each building and sending, an open waited 27 ms for its
acknowledgement, 1.6 ms with 2 builders).
The event is decoded without the Home view it carries (``bot.envelope``). Through Bolt, an
open cost about 5 ms more CPU than here, 7.4 ms against 2.2 (``bench/home_latency.py``: the
request deep-copied for the lazy listener with the view the user has open, the listeners
matched and their arguments built twice): with 50 people opening Home at once on 2 cores, that
was most of the wait.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import queue
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_bolt.request.internals import extract_enterprise_id, extract_team_id, parse_body

from bot.answers import SLASH, Answers
from bot.commands import COMMAND, Caller, UsageError, parse, resolve_team
from bot.envelope import envelope
from bot.web import SLACK_PATH

if TYPE_CHECKING:
    from bot.web import FlowbotWeb

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

THREADS = 8  # per worker: store reads of the fast lane at once
HOME_BUILDERS = 2  # per worker: App Home views built at once (CPU: more only contend for the GIL)
HOME_SENDERS = 64  # per worker: views.publish calls at once (each mostly waits on Slack's answer)
_JSON = b"application/json;charset=utf-8"  # what Bolt's acknowledgement carries
_TEXT = b"text/plain;charset=utf-8"  # Bolt's empty acknowledgement of an event


@dataclass(frozen=True, slots=True)
class Asked:
    """A request the fast lane may answer: `/flow {sub}` about ``team``."""

    team: str
    sub: str
    share: bool


@dataclass(frozen=True, slots=True)
class HomeOpened:
    """A request the fast lane serves: ``user`` opened Flowbot's Home tab."""

    user: str


class FastLane:
    """ASGI app: answers what :func:`asked` accepts, hands everything else to ``app``."""

    def __init__(self, app: ASGIApp, web: FlowbotWeb, *, threads: int = THREADS,
                 home_builders: int = HOME_BUILDERS, home_senders: int = HOME_SENDERS) -> None:
        self._app = app
        self._web = web
        self._answers = Answers(web.deps)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="flowbot-fastlane")
        self._home = _Publishers(self._build_home, self._send_home, builders=home_builders, senders=home_senders)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or scope.get("path") != SLACK_PATH:
            await self._app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        length = headers.get("content-length", "")
        if not length.isdigit() or int(length) > self._web.max_body:
            await self._app(scope, receive, send)  # refused there, as it always was
            return
        first = await receive()
        replay = _replay(first, receive)
        body = first.get("body", b"")
        if first.get("type") != "http.request" or first.get("more_body") or len(body) != int(length):
            await self._app(scope, replay, send)
            return
        started = time.perf_counter()
        request = asked(self._web, headers, body)
        if isinstance(request, HomeOpened):
            self._home.put(request.user)
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", _TEXT), (b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        answer = None
        if request is not None:
            loop = asyncio.get_running_loop()
            answer = await loop.run_in_executor(self._pool, self._answer, request, started)
        if answer is None:
            await self._app(scope, replay, send)
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", _JSON), (b"content-length", str(len(answer)).encode())]})
        await send({"type": "http.response.body", "body": answer})

    def _answer(self, request: Asked, started: float) -> bytes | None:
        """The answer's body, or None for the app behind to answer (run in the pool)."""
        deps = self._web.deps
        deps.telemetry.begin()
        try:
            answer = self._answers.slash(request.team, request.sub, now=deps.clock.now(), share=request.share)
        except Exception:  # noqa: BLE001 - a fault here must not cost the answer: Bolt gives it
            log.exception("the fast lane failed on /flow %s; answering through Bolt", request.sub)
            return None
        if answer is not None:
            deps.telemetry.command(request.sub, time.perf_counter() - started, ok=True)
        return answer


    def _build_home(self, user: str) -> str | None:
        """``user``'s Home view as JSON (run by a builder), or None when it could not be built
        (logged, as Bolt logs a lazy listener's failure)."""
        from bot.app import reason_of
        from bot.home import home_json

        deps = self._web.deps
        deps.telemetry.begin()
        try:
            return home_json(deps, user)
        except Exception as err:  # noqa: BLE001 - nothing to answer: the event was acknowledged
            log.error("App Home not published for %s: %s", user, reason_of(err))
            return None

    def _send_home(self, user: str, view: str) -> None:
        """Publish ``view`` as ``user``'s Home (run by a sender); a failure is logged."""
        from bot.app import reason_of
        from bot.home import send_home

        client = self._web.slack_client
        assert client is not None  # checked by asked(): no client, no Home on this lane
        try:
            send_home(client, user, view)
        except Exception as err:  # noqa: BLE001 - nothing to answer: the event was acknowledged
            log.error("App Home not published for %s: %s", user, reason_of(err))


def asked(web: FlowbotWeb, headers: dict[str, str], body: bytes) -> Asked | HomeOpened | None:
    """The `/flow status` or `/flow queue` request, or the App Home open, that ``body`` makes,
    when it passes every check the Bolt path makes (module doc); None for anything else.
    Reads no store, logs nothing."""
    if web.unsigned_because(headers.get("x-slack-request-timestamp", ""),
                            headers.get("x-slack-signature", ""), body) is not None:
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    content_type = headers.get("content-type", "").split(";")[0]  # as Bolt reads it
    if content_type == "application/json" or text.startswith("{"):
        return _home_opened(web, envelope(body))
    if "payload" in text:
        return None  # an interaction: Bolt's
    form = parse_body(text, content_type)
    if "ssl_check" in form or form.get("command") != COMMAND:
        return None
    if not _from_here(web, form):
        return None
    try:
        cmd = parse(form.get("text") or "")
        if cmd.sub not in SLASH:
            return None
        team = resolve_team(web.deps.settings, cmd.team, Caller(form.get("user_id"), form.get("channel_id")))
    except UsageError:
        return None
    return Asked(team, cmd.sub, cmd.share)


def _home_opened(web: FlowbotWeb, body: dict[str, Any] | None) -> HomeOpened | None:
    """The Home open an event body is, when Bolt's App Home listener would publish for it: an
    ``app_home_opened`` event for the Home tab (``bot.home.register``), from the installed
    workspace and app, by someone other than the bot (Bolt ignores the bot's own events)."""
    if body is None or body.get("type") != "event_callback" or web.slack_client is None:
        return None
    event = body.get("event")
    if not isinstance(event, dict) or event.get("type") != "app_home_opened" or event.get("tab", "home") != "home":
        return None
    user = event.get("user")
    if not isinstance(user, str) or not user or not _from_here(web, body):
        return None
    installed = web.deps.workspace.installed or {}
    if user == installed.get("user_id"):
        return None
    return HomeOpened(user)


def _from_here(web: FlowbotWeb, body: dict[str, Any]) -> bool:
    """Whether Bolt's workspace guard lets ``body`` through (``bot.guard``); False too before
    Slack has said which workspace this is (Bolt asks it)."""
    workspace = web.deps.workspace
    installed = workspace.installed
    if installed is None:
        return False
    return workspace.problem(installed_team=installed.get("team_id"),
                             installed_enterprise=installed.get("enterprise_id"),
                             asked_team=extract_team_id(body), asked_enterprise=extract_enterprise_id(body),
                             app_id=body.get("api_app_id")) is None


class _Publishers:
    """Builders that take a user from one queue and ``build(user)`` their view, and senders
    that take each built view from a second queue and ``send(user, view)`` it.

    A ThreadPoolExecutor's ``submit`` (a future, a work item, its idle-thread semaphore) cost
    the event loop about 50 times this queue's ``put``, and nobody waits for the result. The
    threads are daemons, so a hanging Slack cannot hold the worker's exit forever; at exit,
    opens already taken are given up to :data:`EXIT_SECONDS` to be published. Senders start as
    views wait for one, up to ``senders``: a worker whose Slack answers at once keeps a few."""

    EXIT_SECONDS = 5.0

    def __init__(self, build: Callable[[str], str | None], send: Callable[[str, str], None], *,
                 builders: int, senders: int) -> None:
        self._build = build
        self._send = send
        self._builders = builders
        self._senders = senders
        self._users: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._views: queue.SimpleQueue[tuple[str, str] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []  # builders, started by the first put
        self._sending: list[threading.Thread] = []
        self._idle = 0  # senders waiting for a view
        self._lock = threading.Lock()

    def put(self, user: str) -> None:
        if not self._threads:
            self._start()
        self._users.put(user)

    def _start(self) -> None:
        with self._lock:
            if self._threads:
                return
            threads = [threading.Thread(target=self._run, name=f"flowbot-home_{i}", daemon=True)
                       for i in range(self._builders)]
            for thread in threads:
                thread.start()
            self._threads = threads
            atexit.register(self.stop)

    def stop(self) -> None:
        """Let the threads finish what was queued, then end (waits at most EXIT_SECONDS)."""
        deadline = time.monotonic() + self.EXIT_SECONDS
        for _ in self._threads:
            self._users.put(None)
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            sending = list(self._sending)
            self._senders = 0  # none started from now on
        for _ in sending:
            self._views.put(None)
        for thread in sending:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _run(self) -> None:
        while (user := self._users.get()) is not None:
            view = self._build(user)  # logs its own failures
            if view is not None:
                self._hand_on(user, view)

    def _hand_on(self, user: str, view: str) -> None:
        with self._lock:
            if self._idle:
                self._idle -= 1  # that sender takes it
            elif len(self._sending) < self._senders:
                thread = threading.Thread(target=self._sender, name=f"flowbot-home-send_{len(self._sending)}",
                                          daemon=True)
                self._sending.append(thread)
                thread.start()
        self._views.put((user, view))

    def _sender(self) -> None:
        while (built := self._views.get()) is not None:
            self._send(*built)  # logs its own failures
            with self._lock:
                self._idle += 1


def _replay(first: Message, receive: Receive) -> Receive:
    """``receive`` that gives ``first`` again, then what ``receive`` gives."""
    given = False

    async def again() -> Message:
        nonlocal given
        if not given:
            given = True
            return first
        return await receive()

    return again
