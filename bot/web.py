"""HTTP mode: a WSGI app for gunicorn (``bot.web:create_app()``) serving Slack, /healthz, /metrics.

Slack requests are checked here before Bolt sees them: a body over the size limit gets 413,
a missing, malformed, stale (over 5 minutes) or forged signature gets 401, and nothing runs.
Bolt parses bodies before it verifies them and has no size limit, so this front closes both.
The check uses the injected clock, so tests sign requests at any fixed time.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slack_sdk.signature import Clock as SlackClock
from slack_sdk.signature import SignatureVerifier

from jobs.errors import StoreUnavailable
from jobs.ports import Clock, SystemClock

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

    from bot.app import BotDeps

log = logging.getLogger(__name__)

SLACK_PATH = "/slack/events"
MAX_BODY_BYTES = 512 * 1024  # Slack's largest payloads (view submissions) stay well below
MAX_AGE_SECONDS = 5 * 60


class _EpochClock(SlackClock):
    """slack_sdk's clock interface (``now() -> epoch seconds``) over our ``Clock``."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def now(self) -> float:
        return self.clock.now().timestamp()


class FlowbotWeb:
    """The WSGI application: ``/slack/events`` (verified, then Bolt), ``/healthz``, ``/metrics``."""

    def __init__(self, deps: BotDeps, bolt_handler: WSGIApplication, *, signing_secret: str,
                 max_body: int = MAX_BODY_BYTES) -> None:
        self.deps = deps
        self._bolt = bolt_handler
        self._verifier = SignatureVerifier(signing_secret, clock=_EpochClock(deps.clock))
        self._max_body = max_body

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == SLACK_PATH and method == "POST":
            return self._slack(environ, start_response)
        if path == "/healthz" and method in ("GET", "HEAD"):
            status, body = self.health()
            return _reply(start_response, status, json.dumps(body), "application/json")
        if path == "/metrics" and method == "GET":
            text = self.deps.telemetry.render(self.deps.store)
            return _reply(start_response, 200, text, "text/plain; version=0.0.4; charset=utf-8")
        return _reply(start_response, 404, "not found", "text/plain")

    def health(self) -> tuple[int, dict[str, Any]]:
        """200 with the newest snapshot's age per team, or 503 when Redis does not answer."""
        now = self.deps.clock.now()
        try:
            self.deps.store.ping()
            ages: dict[str, float | None] = {}
            for team in self.deps.settings.teams:
                snap = self.deps.store.get_snapshot_head(team)
                ages[team] = None if snap is None else round((now - snap.computed_at).total_seconds(), 1)
        except StoreUnavailable:
            return 503, {"status": "unavailable", "redis": "unreachable"}
        known = [a for a in ages.values() if a is not None]
        return 200, {"status": "ok", "redis": "ok", "snapshot_age_seconds": ages,
                     "newest_snapshot_age_seconds": min(known) if known else None}

    def _slack(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            return self._refuse(start_response, 411, "length_required")
        if length < 0:
            return self._refuse(start_response, 400, "bad_length")
        if length > self._max_body:
            return self._refuse(start_response, 413, "too_large")
        body = environ["wsgi.input"].read(length) if length else b""
        reason = self._check_signature(environ, body)
        if reason is not None:
            return self._refuse(start_response, 401, reason)
        environ["wsgi.input"] = io.BytesIO(body)
        return self._bolt(environ, start_response)

    def _check_signature(self, environ: WSGIEnvironment, body: bytes) -> str | None:
        """None when the request is signed by Slack within 5 minutes; else why not."""
        timestamp = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP", "")
        signature = environ.get("HTTP_X_SLACK_SIGNATURE", "")
        if not timestamp or not signature:
            return "unsigned"
        if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
            return "bad_timestamp"
        if abs(self.deps.clock.now().timestamp() - int(timestamp)) > MAX_AGE_SECONDS:
            return "stale"
        if not self._verifier.is_valid(body=body, timestamp=timestamp, signature=signature):
            return "forged"
        return None

    def _refuse(self, start_response: StartResponse, status: int, reason: str) -> Iterable[bytes]:
        self.deps.telemetry.rejected(reason)
        log.info("refused a Slack request: %s", reason)
        return _reply(start_response, status, reason, "text/plain")


def build_web(deps: BotDeps, *, signing_secret: str, client: Any = None) -> FlowbotWeb:
    """The WSGI app over a fresh Bolt app for ``deps`` (tests pass their own client)."""
    from slack_bolt.adapter.wsgi import SlackRequestHandler

    from bot.app import create_app as create_bolt_app

    bolt = create_bolt_app(deps, mode="http", client=client)
    return FlowbotWeb(deps, SlackRequestHandler(bolt, path=SLACK_PATH), signing_secret=signing_secret)


def create_app(config: str | None = None, *, clock: Clock | None = None) -> FlowbotWeb:
    """The gunicorn entry point (``bot.web:create_app()``): settings from ``FLOWBOT_CONFIG``.

    Raises ConfigError when the settings are invalid or a Slack secret is missing,
    and StoreUnavailable when Redis cannot be reached, so the server does not start half-wired.
    """
    from bot.app import BotDeps
    from bot.cli import load_settings, open_store
    from jobs.errors import ConfigError

    settings = load_settings(None if config is None else Path(config))
    secret = settings.secrets.slack_signing_secret
    if secret is None:
        raise ConfigError(["SLACK_SIGNING_SECRET: not set; HTTP mode refuses unsigned requests, "
                           "copy it from the Slack app's Basic Information page"])
    if settings.secrets.slack_bot_token is None:
        raise ConfigError(["SLACK_BOT_TOKEN: not set; copy the Bot User OAuth Token (xoxb-...) from the "
                           "Slack app's Install App page (docs/slack-setup.md)"])
    deps = BotDeps(settings=settings, store=open_store(settings), clock=clock or SystemClock())
    try:
        return build_web(deps, signing_secret=secret.get_secret_value())
    except BaseException:
        deps.store.close()
        raise


def serve_gunicorn(config: str | None, *, host: str, port: int, workers: int = 2, threads: int = 8) -> None:
    """Run the WSGI app under gunicorn (``flowbot web``) until stopped.

    Each worker builds its own app (Redis connections and Bolt's thread pool do not survive a
    fork); the caller should validate the settings first so a bad config fails once, clearly.
    """
    from gunicorn.app.base import BaseApplication

    class _Server(BaseApplication):  # type: ignore[misc]  # gunicorn ships no type hints
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("threads", threads)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("accesslog", None)
            self.cfg.set("graceful_timeout", 10)

        def load(self) -> FlowbotWeb:
            return create_app(config)

    _Server().run()


def _reply(start_response: StartResponse, status: int, body: str, content_type: str) -> Iterable[bytes]:
    data = body.encode()
    start_response(f"{status} {_REASONS.get(status, 'OK')}",
                   [("Content-Type", content_type), ("Content-Length", str(len(data)))])
    return [data]


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 411: "Length Required",
            413: "Payload Too Large", 503: "Service Unavailable"}
