"""A lean stand-in for Slack's Web API: ``auth.test`` and ``views.publish``, for a benchmark.

``bench/home_latency.py`` times App Home opens until ``views.publish`` arrives at Slack, with
the stand-in on the same cores as the server under test. Slack's own CPU is not on our cores in
production, so the stand-in must cost little: :class:`~tests.fakes.slack_api.FakeSlack`
(``http.server``'s email-based header parsing, a thread per connection, every call recorded)
took 1.8 ms of CPU a publish, half the server's own. This one is one asyncio event loop (in a
thread of its own) with httptools' parser (uvicorn's), keeps nothing, decodes with msgspec only
what it checks, and echoes the published view without re-encoding it.

It answers as Slack (and ``tests/fakes/slack_methods.py``) does, for any HTTP/1.1 client, kept
alive or not (slack_sdk's urllib client sends ``Connection: close``), bodies JSON or
form-encoded, the token as ``Authorization: Bearer`` or a ``token`` parameter:

* ``auth.test``: the fake workspace (``team_id`` ``T0FAKE``...), as :class:`FakeSlack` answers;
* ``views.publish``: ``{"ok": true, "view": {...}}``, the view echoed whole with the fields Slack
  adds (``id``, ``team_id``, ``hash``, ``app_id``...); a view that is not a Home view answers
  ``invalid_arguments``, more than 100 blocks ``invalid_blocks``;
* a missing token ``not_authed``, another one ``invalid_auth``; any other method
  ``unknown_method``.

``on_publish`` is told of every ``views.publish`` (answered ``ok`` or not), from the loop's
thread, with ``time.monotonic()`` once the whole request had arrived (one clock for every
process on Linux).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl

import httptools
import msgspec

from tests.fakes.slack_api import DEFAULT_SCOPES, DEFAULT_TOKEN

MAX_VIEW_BLOCKS = 100  # Slack's limit for a Home view


@dataclass(frozen=True, slots=True)
class Publish:
    """One ``views.publish`` as it arrived: for whom, when, answered ok or not, and the view."""

    user: str
    at: float  # time.monotonic() once the whole request had arrived
    ok: bool
    blocks: int  # the view's blocks (0 when refused)
    view: bytes  # the view's JSON as published (b"" when refused)


class _Params(msgspec.Struct):
    """The parameters the stand-in reads from a JSON body; the rest is skipped, not decoded."""

    token: str | None = None
    user_id: str | None = None
    view: str | dict[str, Any] | None = None  # a string holding the view's JSON (Slack's form), or an object


class _View(msgspec.Struct):
    type: str = ""
    blocks: list[msgspec.Raw] = []  # counted, not decoded


_PARAMS = msgspec.json.Decoder(_Params)
_VIEW = msgspec.json.Decoder(_View)


class LeanSlack:
    """``auth.test`` and ``views.publish`` on 127.0.0.1 port 0, served by an event loop thread."""

    def __init__(self, *, token: str = DEFAULT_TOKEN, team_id: str = "T0FAKE", team: str = "Fake Workspace",
                 bot_user_id: str = "U0FLOWBOT", bot_id: str = "B0FLOWBOT", app_id: str = "A0FLOWBOT",
                 on_publish: Callable[[Publish], None] | None = None, latency: float = 0.0) -> None:
        self.token = token
        self.latency = latency  # seconds from a request's arrival to its answer (Slack's own time)
        self.team_id = team_id
        self._on_publish = on_publish
        self._auth_test = msgspec.json.encode({
            "ok": True, "url": "https://fake-workspace.slack.com/", "team": team, "user": "flowbot",
            "team_id": team_id, "user_id": bot_user_id, "bot_id": bot_id, "is_enterprise_install": False})
        self._scopes = f"x-oauth-scopes: {','.join(DEFAULT_SCOPES)}\r\n".encode()
        self._view_fields = (f'"team_id":"{team_id}","app_id":"{app_id}","bot_id":"{bot_id}",'
                             f'"app_installed_team_id":"{team_id}","state":{{"values":{{}}}},'
                             '"previous_view_id":null,"clear_on_close":false,"notify_on_close":false')
        self._seq = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._port = 0

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> LeanSlack:
        """Serve on an ephemeral loopback port from a thread of its own; returns self."""
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            self._server = loop.run_until_complete(
                loop.create_server(lambda: _Connection(self), "127.0.0.1", 0, backlog=1024))
            self._port = self._server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()
            self._server.close()
            loop.run_until_complete(self._server.wait_closed())
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="lean-slack", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        self._loop = self._thread = self._server = None

    def __enter__(self) -> LeanSlack:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        if not self._port:
            raise RuntimeError("LeanSlack is not started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_url(self) -> str:
        """The ``base_url`` for ``WebClient``: ``http://127.0.0.1:PORT/api/``."""
        return self.url + "/api/"

    # -- answering (in the loop's thread) ----------------------------------------------------

    def answer(self, target: bytes, authorization: bytes, content_type: bytes, body: bytes,
               arrived: float) -> tuple[bytes, bytes]:
        """The JSON answer to one request, and extra header lines (each ending in CRLF)."""
        path, _, query = target.partition(b"?")
        method = path.strip(b"/").removeprefix(b"api/").decode("utf-8", "replace")
        if method not in ("auth.test", "views.publish"):
            return _error("unknown_method", req_method=method), b""
        try:
            token, user, view = _params(query, content_type, body)
        except (msgspec.DecodeError, UnicodeDecodeError):
            return _error("invalid_json"), b""
        if authorization[:7].lower() == b"bearer ":
            token = authorization[7:].strip().decode("utf-8", "replace") or None
        if token is None:
            return _error("not_authed"), b""
        if token != self.token:
            return _error("invalid_auth"), b""
        if method == "auth.test":
            return self._auth_test, self._scopes
        return self._publish(user, view, arrived), b""

    def _publish(self, user: str | None, view: bytes, arrived: float) -> bytes:
        """Slack's answer to ``views.publish``: the view echoed with Slack's own fields."""
        try:
            shape = _VIEW.decode(view) if view else None
        except msgspec.DecodeError:
            shape = None
        error = ("invalid_arguments" if not user or shape is None or shape.type != "home" else
                 "invalid_blocks" if len(shape.blocks) > MAX_VIEW_BLOCKS else None)
        if self._on_publish is not None:
            self._on_publish(Publish(user or "", arrived, error is None, 0 if error or shape is None
                                     else len(shape.blocks), b"" if error else view))
        if error is not None:
            return _error(error)
        number = next(self._seq)
        inner = view.strip()[1:-1].strip()  # the view's own fields: a JSON object's, as decoded above
        return (f'{{"ok":true,"view":{{"id":"V{number:08d}","root_view_id":"V{number:08d}",'
                f'"hash":"{int(time.time())}.{number:08x}",{self._view_fields}'.encode()
                + (b"," + inner if inner else b"") + b"}}")


class _Connection(asyncio.Protocol):
    """One client's connection: requests parsed by httptools, answered in order."""

    def __init__(self, slack: LeanSlack) -> None:
        self.slack = slack
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.authorization = b""
        self.content_type = b""
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                self.transport.close()

    # httptools' callbacks

    def on_message_begin(self) -> None:
        self.url = self.authorization = self.content_type = b""
        self.body = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.lower()
        if lowered == b"authorization":
            self.authorization = value
        elif lowered == b"content-type":
            self.content_type = value

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        arrived = time.monotonic()
        payload, extra = self.slack.answer(self.url, self.authorization, self.content_type, b"".join(self.body),
                                           arrived)
        keep = self.parser.should_keep_alive()
        answer = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n"
                  b"Content-Length: %d\r\n%s%s\r\n%s" % (len(payload), extra,
                                                        b"" if keep else b"Connection: close\r\n", payload))
        if self.slack.latency > 0:  # answers keep their order: each waits the same time
            asyncio.get_running_loop().call_later(self.slack.latency, self._answer, answer, keep)
        else:
            self._answer(answer, keep)

    def _answer(self, answer: bytes, keep: bool) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(answer)
        if not keep:
            self.transport.close()


def _params(query: bytes, content_type: bytes, body: bytes) -> tuple[str | None, str | None, bytes]:
    """``token``, ``user_id`` and the view's JSON from the query string and a JSON or form body."""
    token = user = None
    view = b""
    if query or (body and b"json" not in content_type):
        for key, value in parse_qsl(query.decode() + "&" + body.decode() if body and b"json" not in content_type
                                    else query.decode(), keep_blank_values=True):
            if key == "token":
                token = value
            elif key == "user_id":
                user = value
            elif key == "view":
                view = value.encode()
    if body and b"json" in content_type:
        params = _PARAMS.decode(body)
        token, user = params.token or token, params.user_id or user
        if isinstance(params.view, str):
            view = params.view.encode()
        elif params.view is not None:
            view = msgspec.json.encode(params.view)
    return token, user, view


def _error(error: str, **extra: str) -> bytes:
    return msgspec.json.encode({"ok": False, "error": error, **extra})
