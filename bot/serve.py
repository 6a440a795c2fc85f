"""``flowbot web``: the WSGI app of ``bot.web`` under gunicorn's gevent workers.

Why gevent: docs/architecture.md, "Serving HTTP". What the master does before forking:
checks the settings once, prepares ``PROMETHEUS_MULTIPROC_DIR`` (each worker writes its
counters there, a scrape adds them up), and, without ``REDIS_URL``, starts the one embedded
Redis server the workers share through its socket.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from bot.web import BODY_SECONDS, FlowbotWeb, create_app
from jobs.errors import StoreUnavailable

if TYPE_CHECKING:
    from jobs.settings import Settings

HEADER_SECONDS = 5  # gunicorn's keep-alive: how long a connection may take to send its headers
WORKER_CONNECTIONS = 1000  # open connections per gevent worker (slow ones included)


def serve_gunicorn(config: str | None, *, host: str, port: int, workers: int = 2,
                   connections: int = WORKER_CONNECTIONS, body_seconds: float = BODY_SECONDS,
                   echo: Callable[[str], object] = print) -> None:
    """Run the WSGI app under gunicorn's gevent worker (``flowbot web``) until stopped.

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
                self.cfg.set("worker_class", "gevent")
                self.cfg.set("worker_connections", connections)
                self.cfg.set("keepalive", HEADER_SECONDS)
                self.cfg.set("accesslog", None)
                self.cfg.set("graceful_timeout", 10)
                self.cfg.set("control_socket_disable", True)  # one shared path per user: replicas would clash

            def load(self) -> FlowbotWeb:
                return create_app(config, body_seconds=body_seconds)

        echo(f"Serving Slack on http://{host}:{port}/slack/events (/healthz, /metrics)")
        _Server().run()


@contextmanager
def _metrics_dir() -> Iterator[None]:
    """``PROMETHEUS_MULTIPROC_DIR`` for the workers: the operator's (emptied) or a fresh one."""
    from bot.metrics_http import MULTIPROC_ENV

    given = os.environ.get(MULTIPROC_ENV)
    if given:
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
