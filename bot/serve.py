"""``flowbot web``: gunicorn with uvicorn workers; bodies read by the event loop, then the WSGI app.

A Slack request's body must be read before its signature can be checked. Here each worker's
event loop reads it (a slow client costs a coroutine, not a thread), under one total deadline
and the size limit (:class:`BufferedBodies`); only a request whose body has fully arrived is
handed to ``bot.web.FlowbotWeb`` in a thread of a2wsgi's pool, where Bolt runs as under any WSGI
server. A connection that has not sent its first request's headers within ``HEADER_SECONDS``
is closed. Why this model: docs/architecture.md, "Serving HTTP".

What the master does before forking: checks the settings once, prepares
``PROMETHEUS_MULTIPROC_DIR`` (each worker writes its counters there, a scrape adds them up),
and, without ``REDIS_URL``, starts the one embedded Redis server the workers share through
its socket.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn_worker import UvicornWorker

from bot.web import MAX_BODY_BYTES, create_app
from jobs.errors import StoreUnavailable

if TYPE_CHECKING:
    from bot.metrics_http import Telemetry
    from jobs.settings import Settings

log = logging.getLogger(__name__)

BODY_SECONDS = 5.0  # a whole body must arrive within this; Slack sends a few KiB at once
HEADER_SECONDS = 5  # a new connection's first request headers, and keep-alive idleness
WORKER_CONNECTIONS = 1000  # connections and requests at once per worker; beyond, 503
APP_THREADS = 16  # per worker: requests whose body has arrived, run by the WSGI app

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def serve_gunicorn(config: str | None, *, host: str, port: int, workers: int = 2,
                   connections: int = WORKER_CONNECTIONS, body_seconds: float = BODY_SECONDS,
                   echo: Callable[[str], object] = print, fast_lane: bool = True) -> None:
    """Run ``flowbot web`` (gunicorn, :class:`FlowbotWorker` workers) until stopped.

    Before forking, this process (gunicorn's master) checks the settings once, prepares the
    directory where every worker writes its counters (``PROMETHEUS_MULTIPROC_DIR``), and, when
    no ``REDIS_URL`` is set, starts the one embedded Redis server all workers share through its
    socket. Each worker builds its own app (Redis connections do not survive a fork).
    Raises ConfigError or StoreUnavailable (see :func:`create_app`) before serving.
    """
    from gunicorn.app.base import BaseApplication

    from bot.cli import load_settings

    settings = load_settings(None if config is None else Path(config))
    with _metrics_dir(), _shared_embedded_redis(settings):
        create_app(config).deps.store.close()  # fail here, once, clearly

        class _Server(BaseApplication):  # type: ignore[misc]  # gunicorn ships no type hints
            def load_config(self) -> None:
                self.cfg.set("bind", f"{host}:{port}")
                self.cfg.set("workers", workers)
                self.cfg.set("worker_class", "bot.serve.FlowbotWorker")
                self.cfg.set("worker_connections", connections)  # FlowbotWorker: limit_concurrency
                self.cfg.set("keepalive", HEADER_SECONDS)
                self.cfg.set("accesslog", None)
                self.cfg.set("graceful_timeout", 10)
                self.cfg.set("control_socket_disable", True)  # one shared path per user: replicas would clash

            def load(self) -> ASGIApp:
                return asgi_app(config, body_seconds=body_seconds, fast_lane=fast_lane)

        also = "/github/webhook, " if settings.secrets.github_webhook_secrets else ""
        echo(f"Serving Slack on http://{host}:{port}/slack/events ({also}/healthz, /metrics)")
        _Server().run()


@contextmanager
def _metrics_dir() -> Iterator[None]:
    """``PROMETHEUS_MULTIPROC_DIR`` for the workers: the operator's (emptied) or a fresh one."""
    from bot.metrics_http import MULTIPROC_ENV

    given = os.environ.get(MULTIPROC_ENV)
    if given:
        Path(given).mkdir(parents=True, exist_ok=True)
        for stale in Path(given).glob("*.db"):  # a previous run's counters would be added in
            stale.unlink()
        yield
        return
    path = tempfile.mkdtemp(prefix="flowbot-metrics-")
    os.environ[MULTIPROC_ENV] = path
    try:
        yield
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def _shared_embedded_redis(settings: Settings) -> Iterator[None]:
    """Without ``REDIS_URL``: start the embedded server here, once, and point the workers at
    its socket through ``REDIS_URL``, so they never start one each on the same data file."""
    from bot.cli import open_store

    if settings.secrets.redis_url is not None:
        yield
        return
    store = open_store(settings)
    url = store.socket_url()
    if url is None:  # pragma: no cover - an embedded store always has a socket
        raise StoreUnavailable(f"{store.location} has no socket to share with the workers")
    os.environ["REDIS_URL"] = url
    try:
        yield
    finally:
        os.environ.pop("REDIS_URL", None)
        store.close()



def asgi_app(config: str | None, *, body_seconds: float = BODY_SECONDS, fast_lane: bool = True) -> ASGIApp:
    """A worker's app: :func:`bot.web.create_app` behind :class:`BufferedBodies` and a2wsgi,
    with the fast lane (``bot.fastlane``: `/flow status` and `queue` without Bolt) between."""
    from a2wsgi import WSGIMiddleware

    from bot.fastlane import FastLane

    web = create_app(config)
    # a2wsgi types scopes and messages as TypedDicts, and WSGI apps by its own protocol; the
    # plain ASGI and WSGI call shapes are the same
    app: ASGIApp = WSGIMiddleware(web, workers=APP_THREADS)  # type: ignore[arg-type,assignment]
    if fast_lane:
        app = FastLane(app, web)
    return BufferedBodies(app, telemetry=web.deps.telemetry, seconds=body_seconds, limits=web.body_limits())


class HeaderDeadline(HttpToolsProtocol):
    """uvicorn's httptools protocol (the C parser: h11, pure Python, served a third as many
    requests a second), closing a connection whose first request's headers are not complete
    within ``HEADER_SECONDS`` (uvicorn times out idle keep-alive connections, not new ones)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._headers_seen = False
        self.loop.call_later(HEADER_SECONDS, self._no_request_yet)

    def on_headers_complete(self) -> None:
        self._headers_seen = True
        super().on_headers_complete()

    def _no_request_yet(self) -> None:
        if not self._headers_seen and not self.transport.is_closing():
            self.transport.close()


class FlowbotWorker(UvicornWorker):  # type: ignore[misc]  # uvicorn-worker ships no type hints
    """gunicorn's worker for ``flowbot web``: uvicorn on asyncio and httptools, with
    :class:`HeaderDeadline`, no lifespan, at most ``worker_connections`` at once."""

    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {"loop": "asyncio", "http": HeaderDeadline, "lifespan": "off"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.config.limit_concurrency = self.cfg.worker_connections


class BufferedBodies:
    """ASGI app: reads each HTTP body whole (deadline, size limit), then calls ``app`` with it.

    A body not complete within ``seconds`` is answered ``408`` and the connection closed; a body
    announced or found larger than ``max_body`` (or its path's entry in ``limits``: GitHub's
    webhook takes up to 25 MB) is not read further, and ``app`` answers 413.
    """

    def __init__(self, app: ASGIApp, *, telemetry: Telemetry, seconds: float = BODY_SECONDS,
                 max_body: int = MAX_BODY_BYTES, limits: dict[str, int] | None = None) -> None:
        self._app = app
        self._telemetry = telemetry
        self._seconds = seconds
        self._max_body = max_body
        self._limits = dict(limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan and websockets: nothing to start, nothing served
        limit = self._limits.get(scope.get("path", ""), self._max_body)
        announced = _content_length(scope)
        if announced is not None and announced > limit:
            await self._app(scope, receive, send)  # answered 413 without reading on
            return
        chunks: list[bytes] = []
        try:
            async with asyncio.timeout(self._seconds):
                size, more = 0, True
                while more:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    chunk = message.get("body", b"")
                    chunks.append(chunk)
                    size += len(chunk)
                    more = bool(message.get("more_body")) and size <= limit
        except TimeoutError:
            self._telemetry.rejected("slow_body")
            log.info("refused a request to %s: slow_body", scope.get("path", ""))
            await send({"type": "http.response.start", "status": 408,
                        "headers": [(b"content-type", b"text/plain"), (b"connection", b"close")]})
            await send({"type": "http.response.body", "body": b"slow_body"})
            return
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self._app(scope, replay, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
