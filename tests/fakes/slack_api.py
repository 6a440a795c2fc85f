"""A fake Slack Web API on 127.0.0.1 port 0 that the real ``slack_sdk.WebClient`` talks to.

Usage::

    with FakeSlack() as fake:
        client = WebClient(base_url=fake.api_url, token=fake.token)   # or fake.client()
        client.chat_postMessage(channel="C1", text="hi")
        assert fake.calls("chat.postMessage")[0].params["text"] == "hi"

Methods are served at both ``/api/<method>`` and ``/<method>``, so ``base_url=fake.url`` and
``base_url=fake.url + "/api/"`` both work. Bodies are accepted form-encoded, as JSON, or in the
query string, as Slack does. Answers carry Slack's payload shapes (``{"ok": true, ...}``).

Programmable faults (each consumed per call, ``times=None`` for "until cleared"):

* ``fake.fail("chat.postMessage", error="channel_not_found", times=1)`` -> ``ok: false``;
  ``fake.fail(method, status=500)`` -> an HTTP 500 with a non-JSON body;
* ``fake.rate_limit("chat.postMessage", retry_after=1, times=1)`` -> HTTP 429 + ``Retry-After``;
* ``fake.delay("chat.postMessage", seconds=35, times=None)`` -> the call is carried out (a post
  is stored) and answered only ``seconds`` later: a client with a shorter timeout never learns
  that it worked (``fake.release_delayed()`` answers the waiting ones now);
* ``fake.drop_after_store("chat.postMessage")`` -> carried out, then the connection is closed
  without an answer;
* ``method="*"`` programs a fault for every method;
* ``fake.set_bot_channels({"C1"})`` -> posting elsewhere answers ``not_in_channel``;
* ``FakeSlack(scopes=...)`` without ``channels:history`` (``groups:``, ``im:``) ->
  ``conversations.history`` there answers ``missing_scope`` with ``needed``/``provided``.
* a missing token answers ``not_authed``; an unknown one ``invalid_auth``.

Messages keep their ``metadata`` (``event_type``/``event_payload``); ``conversations.history``
returns them newest first with ``has_more`` and ``response_metadata.next_cursor``, and the
metadata only with ``include_all_metadata=true``, as Slack does. A post to a user ID lands in the
bot's DM with that user (``conversations.open(users=U...)`` names the same ``D...`` channel).

Channels and users are permissive until the first ``add_channel``/``add_user``: from then on an
unknown ID answers ``channel_not_found``/``user_not_found``. Every call is recorded
(``fake.calls(method)``) with its params (JSON-valued form fields such as ``blocks`` decoded),
lower-cased headers, the token and what was answered, and when it arrived (``Call.at``,
``time.monotonic()`` once the whole request was read: one clock for every process on Linux).
``FakeSlack(on_call=...)`` is told of each call as it is recorded, before it is answered (a
benchmark timing ``views.publish`` from another process). Thread-safe.
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.fakes.slack_methods import (
    MAX_BLOCKS,
    MAX_TEXT,
    METHODS,
    PUBLIC_METHODS,
    Channel,
    Message,
    SlackApiError,
    check_blocks,
)

DEFAULT_TOKEN = "xoxb-fake-bot-token"
DEFAULT_APP_TOKEN = "xapp-1-fake-app-token"  # app-level: only apps.connections.open takes it
DEFAULT_SCOPES = (
    "app_mentions:read",
    "channels:join",
    "channels:read",
    "chat:write",
    "chat:write.public",
    "channels:history",
    "commands",
    "files:write",
    "groups:history",
    "groups:read",
    "im:history",
    "im:write",
    "users:read",
    "users:read.email",
)
_JSON_FIELDS = frozenset({"blocks", "attachments", "view", "files", "metadata", "users"})


@dataclass(frozen=True, slots=True)
class Call:
    """One request the fake received: which method, with what, and what it answered."""

    method: str
    params: Mapping[str, Any]
    headers: Mapping[str, str]
    token: str | None
    status: int
    response: Mapping[str, Any]
    at: float = 0.0  # time.monotonic() when the whole request had arrived (0.0: not stamped)


@dataclass(slots=True)
class _Fault:
    error: str | None
    status: int
    retry_after: int | None
    remaining: int | None  # None: until cleared
    delay: float = 0.0  # carry the call out, then answer this many seconds later
    drop: bool = False  # carry the call out, then close the connection without answering


class FakeSlack:
    """A threaded HTTP server on 127.0.0.1:0 answering the Slack Web API methods Flowbot uses."""

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        tokens: Iterable[str] = (),
        app_token: str = DEFAULT_APP_TOKEN,
        scopes: Iterable[str] = DEFAULT_SCOPES,
        team_id: str = "T0FAKE",
        team: str = "Fake Workspace",
        bot_user_id: str = "U0FLOWBOT",
        bot_id: str = "B0FLOWBOT",
        clock: Callable[[], float] = time.time,
        on_call: Callable[[Call], None] | None = None,
    ) -> None:
        self.token = token
        self._on_call = on_call  # told of every recorded call, from the handler's thread
        self._clock = clock  # unix seconds: message ``ts`` values are stamped from it
        self._last_ts = 0.0
        self.team_id = team_id
        self.team = team
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self._tokens = {token, *tokens}
        self.app_token = app_token
        self._scopes = tuple(scopes)
        self._lock = threading.RLock()
        self._responded = threading.Condition(self._lock)
        self._calls: list[Call] = []
        self._faults: dict[str, list[_Fault]] = {}
        self._bot_channels: set[str] | None = None
        self._channels: dict[str, Channel] = {}
        self._users: dict[str, dict[str, Any]] = {}
        self._messages: list[Message] = []
        self._opened: set[str] = set()
        self._release = threading.Event()
        self._views: dict[str, dict[str, Any]] = {}
        self._uploads: dict[str, bytes | None] = {}
        self._files: list[dict[str, Any]] = []
        self._responses: list[tuple[str, dict[str, Any]]] = []
        self._seq = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections = 0

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeSlack:
        """Start serving on an ephemeral loopback port; returns self."""
        handler = type("_Handler", (_Handler,), {"fake": self})
        self._server = _Server(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-slack", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        if self._server is None:
            raise RuntimeError("FakeSlack is not started")
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}"  # where start() binds

    @property
    def api_url(self) -> str:
        """The ``base_url`` for ``WebClient``: ``http://127.0.0.1:PORT/api/``."""
        return self.url + "/api/"

    def client(self, **kwargs: Any) -> Any:
        """A real ``slack_sdk.WebClient`` pointed at this fake with its valid token."""
        from slack_sdk import WebClient

        kwargs.setdefault("token", self.token)
        return WebClient(base_url=self.api_url, **kwargs)

    # -- programming -----------------------------------------------------------------------

    def fail(self, method: str, *, error: str = "internal_error", times: int | None = 1, status: int = 200) -> None:
        """Answer the next ``times`` calls of ``method`` with ``ok: false, error`` (or HTTP ``status``)."""
        with self._lock:
            self._faults.setdefault(method, []).append(_Fault(error, status, None, times))

    def rate_limit(self, method: str, *, retry_after: int = 1, times: int | None = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with HTTP 429 and ``Retry-After``."""
        with self._lock:
            self._faults.setdefault(method, []).append(_Fault("ratelimited", 429, retry_after, times))

    def delay(self, method: str, *, seconds: float, times: int | None = 1) -> None:
        """Carry out the next ``times`` calls of ``method`` (``"*"``: any), answer ``seconds`` later."""
        with self._lock:
            self._faults.setdefault(method, []).append(_Fault(None, 200, None, times, delay=seconds))
            self._release.clear()

    def drop_after_store(self, method: str, *, times: int | None = 1) -> None:
        """Carry out the next ``times`` calls of ``method``, then hang up without an answer."""
        with self._lock:
            self._faults.setdefault(method, []).append(_Fault(None, 200, None, times, drop=True))

    def release_delayed(self) -> None:
        """Answer every call held by :meth:`delay` now."""
        self._release.set()

    def clear_faults(self) -> None:
        """Forget every programmed failure (and answer the delayed calls now)."""
        with self._lock:
            self._faults.clear()
        self._release.set()

    def set_bot_channels(self, channels: Iterable[str] | None) -> None:
        """Restrict the channels the bot is in (``not_in_channel`` elsewhere); None: everywhere."""
        with self._lock:
            self._bot_channels = None if channels is None else set(channels)

    def add_token(self, token: str) -> None:
        """Accept another token (a user token, a rotated bot token)."""
        with self._lock:
            self._tokens.add(token)

    def revoke_token(self, token: str) -> None:
        """Answer ``invalid_auth`` (or ``token_revoked`` semantics) for this token from now on."""
        with self._lock:
            self._tokens.discard(token)

    def add_channel(self, channel_id: str, *, name: str | None = None, private: bool = False,
                    members: Iterable[str] = ()) -> None:
        """Register a channel; once any is registered, unknown channel IDs are not found."""
        with self._lock:
            self._channels[channel_id] = Channel(channel_id, name or channel_id.lower(), private, list(members))

    def add_user(self, user_id: str, *, name: str | None = None, email: str | None = None,
                 tz: str = "Europe/Berlin", is_bot: bool = False, deleted: bool = False) -> None:
        """Register a user; once any is registered, unknown user IDs are not found."""
        name = name or user_id.lower()
        with self._lock:
            self._users[user_id] = {
                "id": user_id,
                "team_id": self.team_id,
                "name": name,
                "real_name": name.title(),
                "deleted": deleted,
                "is_bot": is_bot,
                "tz": tz,
                "profile": {"email": email, "real_name": name.title(), "display_name": name},
            }

    def reset(self) -> None:
        """Forget calls, messages, views, files and responses (programming is kept)."""
        with self._lock:
            self._calls.clear()
            self._messages.clear()
            self._views.clear()
            self._uploads.clear()
            self._files.clear()
            self._responses.clear()
            self._opened.clear()

    def response_url(self, key: str = "") -> str:
        """A ``response_url`` served by this fake, as Slack puts in slash commands and actions."""
        return f"{self.url}/response/{key or next(self._seq)}"

    # -- reading what happened -------------------------------------------------------------

    @property
    def connections(self) -> int:
        """How many connections clients have opened to the fake so far."""
        with self._lock:
            return self._connections

    def calls(self, method: str | None = None) -> list[Call]:
        """Every recorded call, oldest first; only those of ``method`` when given."""
        with self._lock:
            return [c for c in self._calls if method is None or c.method == method]

    def messages(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Posted (non-ephemeral) messages as they stand now, after updates, oldest first."""
        with self._lock:
            return [
                {"channel": m.channel, "ts": m.ts, "text": m.text, "blocks": m.blocks,
                 "thread_ts": m.thread_ts, "edits": m.edits, "metadata": m.metadata,
                 "conversation": m.conversation}
                for m in self._messages
                if m.user is None and (channel is None or m.is_in(channel))
            ]

    def ephemerals(self, user: str | None = None) -> list[dict[str, Any]]:
        """Ephemeral messages posted via ``chat.postEphemeral``, oldest first."""
        with self._lock:
            return [
                {"channel": m.channel, "user": m.user, "ts": m.ts, "text": m.text, "blocks": m.blocks}
                for m in self._messages
                if m.user is not None and (user is None or m.user == user)
            ]

    def views(self) -> dict[str, dict[str, Any]]:
        """The App Home view last published per user ID."""
        with self._lock:
            return dict(self._views)

    def files(self) -> list[dict[str, Any]]:
        """Files completed with ``files.completeUploadExternal``: id, title, channel, bytes."""
        with self._lock:
            return [dict(f) for f in self._files]

    def responses(self, key: str | None = None) -> list[dict[str, Any]]:
        """JSON bodies posted to this fake's ``response_url`` endpoints (for ``key`` if given)."""
        with self._lock:
            return [body for k, body in self._responses if key is None or k == key]

    def wait_for_response(self, key: str | None = None, *, timeout: float = 5.0) -> bool:
        """Block until something was posted to the ``response_url`` ``key`` (any when None).

        Returns False when ``timeout`` seconds passed first. Bolt answers some commands through
        ``response_url`` from a worker thread after the HTTP reply: tests wait here, not sleep.
        """
        with self._responded:
            return self._responded.wait_for(lambda: any(key is None or k == key for k, _ in self._responses),
                                            timeout=timeout)

    def wait_for_call(self, method: str, *, count: int = 1, timeout: float = 5.0) -> bool:
        """Block until ``method`` was called ``count`` times; False when ``timeout`` passed first."""
        with self._responded:
            return self._responded.wait_for(
                lambda: sum(1 for c in self._calls if c.method == method) >= count, timeout=timeout)

    # -- serving (called by the handler thread) -------------------------------------------

    def _next_fault(self, method: str) -> _Fault | None:
        with self._lock:
            return self._take_fault(method) or self._take_fault("*")

    def _take_fault(self, method: str) -> _Fault | None:
        with self._lock:
            queue = self._faults.get(method) or []
            while queue:
                fault = queue[0]
                if fault.remaining is None:
                    return fault
                if fault.remaining > 0:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        queue.pop(0)
                    return fault
                queue.pop(0)
            return None

    def _record(self, call: Call) -> None:
        with self._responded:
            self._calls.append(call)
            self._responded.notify_all()
        if self._on_call is not None:
            self._on_call(call)

    def _dispatch(self, method: str, params: dict[str, Any], token: str | None) -> dict[str, Any]:
        if method == "apps.connections.open":  # Socket Mode: the app-level token, and only it
            if token == self.app_token:
                return {"ok": True, "url": "wss://127.0.0.1:9/link/?ticket=fake"}  # never dialled
            error = ("not_authed" if token is None else
                     "not_allowed_token_type" if token in self._tokens else "invalid_auth")
            return {"ok": False, "error": error}
        if method not in PUBLIC_METHODS:
            if token is None:
                return {"ok": False, "error": "not_authed"}
            if token not in self._tokens:
                return {"ok": False, "error": "invalid_auth"}
        handler = METHODS.get(method)
        if handler is None:
            return {"ok": False, "error": "unknown_method", "req_method": method}
        try:
            with self._lock:
                body = handler(self, params)
        except SlackApiError as exc:
            return {"ok": False, "error": exc.error, **getattr(exc, "extra", {})}
        return {"ok": True, **body}

    def _ts(self) -> str:
        """A message ``ts``: the clock's unix time in microseconds, unique and increasing."""
        self._last_ts = max(round(self._clock(), 6), round(self._last_ts + 0.000001, 6))
        return f"{self._last_ts:.6f}"

    def _channel(self, channel_id: str | None) -> Channel:
        if not channel_id:
            raise SlackApiError("channel_not_found")
        found = self._channels.get(channel_id)
        if found is not None:
            return found
        if self._channels and not channel_id.startswith("D"):
            raise SlackApiError("channel_not_found")
        return Channel(channel_id, channel_id.lstrip("#").lower(), private=channel_id.startswith("G"))

    def _user(self, user_id: str | None) -> dict[str, Any]:
        if not user_id:
            raise SlackApiError("user_not_found")
        if user_id in self._users:
            return self._users[user_id]
        if self._users:
            raise SlackApiError("user_not_found")
        return {"id": user_id, "team_id": self.team_id, "name": user_id.lower(), "real_name": user_id,
                "deleted": False, "is_bot": False, "tz": "Europe/Berlin", "profile": {"email": None}}

    def _bot_in(self, channel: Channel) -> bool:
        if channel.id.startswith("D"):
            return True
        if self._bot_channels is not None:
            return channel.id in self._bot_channels
        return True

    def _check_content(self, params: Mapping[str, Any], *, kind: str = "message") -> None:
        text = params.get("text")
        blocks = params.get("blocks")
        if not text and not blocks and not params.get("attachments"):
            raise SlackApiError("no_text")
        if isinstance(text, str) and len(text) > MAX_TEXT:
            raise SlackApiError("msg_too_long")
        if blocks is not None:
            check_blocks(blocks, limit=MAX_BLOCKS[kind])


class _Server(ThreadingHTTPServer):
    # slack_sdk opens a connection per call: with socketserver's backlog of 5, a burst of calls
    # overflows it and the kernel drops the SYNs, retried 1 s later; Slack's API never does that
    request_queue_size = 128

    def process_request(self, request: Any, client_address: Any) -> None:
        fake: FakeSlack = self.RequestHandlerClass.fake  # type: ignore[attr-defined]
        with fake._lock:
            fake._connections += 1
        super().process_request(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    fake: FakeSlack
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without TCP_NODELAY, Nagle plus the
    # client's delayed ACK add ~40 ms to every keep-alive request on loopback.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Stay quiet: tests read calls from the fake, not from stderr."""

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        arrived = time.monotonic()
        path = parts.path.strip("/")
        if path.startswith("upload/v1/"):
            self._upload(path.removeprefix("upload/v1/"), raw)
            return
        if path.startswith("response/"):
            self._response_url(path.removeprefix("response/"), raw)
            return
        method = path.removeprefix("api/")
        headers = {k.lower(): v for k, v in self.headers.items()}
        params = _decode_params(parts.query, raw, headers.get("content-type", ""))
        token = _token(headers, params)
        fault = self.fake._next_fault(method)
        extra: dict[str, str] = {}
        if fault is not None and fault.status == 429:
            status, body = 429, {"ok": False, "error": "ratelimited"}
            extra["Retry-After"] = str(fault.retry_after or 1)
        elif fault is not None and fault.status >= 500:
            status, body = fault.status, {"ok": False, "error": fault.error or "internal_error"}
        elif fault is not None and fault.error is not None:
            status, body = fault.status, {"ok": False, "error": fault.error}
        else:
            status, body = 200, self.fake._dispatch(method, params, token)
        if method == "auth.test" and body.get("ok"):
            extra["x-oauth-scopes"] = ",".join(self.fake._scopes)
        self.fake._record(Call(method, params, headers, token, status, body, at=arrived))
        if fault is not None and fault.drop:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault is not None and fault.delay:
            self.fake._release.wait(fault.delay)
        if status >= 500:
            self._send(status, b"upstream failure", "text/plain", extra)
        else:
            self._send(status, json.dumps(body).encode(), "application/json; charset=utf-8", extra)

    def _upload(self, file_id: str, raw: bytes) -> None:
        with self.fake._lock:
            known = file_id in self.fake._uploads
            if known:
                self.fake._uploads[file_id] = raw
        self.fake._record(Call("upload", {"file_id": file_id, "size": len(raw)},
                               {k.lower(): v for k, v in self.headers.items()}, None, 200 if known else 404, {}))
        if known:
            self._send(200, f"OK - {len(raw)}".encode(), "text/plain", {})
        else:
            self._send(404, b"unknown upload", "text/plain", {})

    def _response_url(self, key: str, raw: bytes) -> None:
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._send(400, b"invalid_payload", "text/plain", {})
            return
        with self.fake._responded:
            self.fake._responses.append((key, body))
            self.fake._responded.notify_all()
        self.fake._record(Call("response_url", body, {k.lower(): v for k, v in self.headers.items()},
                               None, 200, {"ok": True}))
        self._send(200, b"ok", "text/html", {})

    def _send(self, status: int, payload: bytes, content_type: str, extra: Mapping[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in extra.items():
            self.send_header(name, value)
        try:
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting (a timeout)
            self.close_connection = True


def _decode_params(query: str, raw: bytes, content_type: str) -> dict[str, Any]:
    """Merge query string, then a form or JSON body; decode JSON-valued form fields."""
    params: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    if raw:
        if "json" in content_type:
            try:
                loaded = json.loads(raw)
            except ValueError:
                loaded = {}
            if isinstance(loaded, dict):
                params.update(loaded)
        else:
            params.update(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    for key in _JSON_FIELDS & params.keys():
        value = params[key]
        if isinstance(value, str) and value[:1] in "[{":
            try:
                params[key] = json.loads(value)
            except ValueError:
                pass
    return params


def _token(headers: Mapping[str, str], params: Mapping[str, Any]) -> str | None:
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    token = params.get("token")
    return str(token) if token else None


def iter_blocks_text(blocks: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """Every text string inside Block Kit blocks (for assertions on what a user would read)."""
    for block in blocks:
        yield from _texts(block)


def _texts(node: Any) -> Iterator[str]:
    if isinstance(node, Mapping):
        if isinstance(node.get("text"), str):
            yield node["text"]
        for key, value in node.items():
            if key != "text" or not isinstance(value, str):
                yield from _texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from _texts(item)
