"""HTTP mode: a WSGI app for gunicorn (``bot.web:create_app()``) serving Slack, GitHub webhooks
(``/github/webhook``, :mod:`bot.webhook`), /healthz, /metrics.

Slack requests are checked here before Bolt sees them: a body over the size limit gets 413,
a missing, malformed, stale (over 5 minutes) or forged signature gets 401, and a signed body
that Bolt could not parse gets 400; in every case nothing runs and one line is logged. Bolt
parses bodies before it verifies them and has no size limit, so this front closes both.
The check uses the injected clock, so tests sign requests at any fixed time.

``flowbot web`` (the Procfile's command, ``bot/serve.py``) reads each body in its event loop,
under a deadline, before this app runs in a thread (docs/architecture.md, "Serving HTTP").
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from jobs.errors import ConfigError, StoreUnavailable
from jobs.ports import Clock, SystemClock

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

    from slack_sdk import WebClient

    from bot.app import BotDeps
    from bot.webhook import Enqueue, GitHubWebhook
    from jobs.settings import Settings
    from jobs.store import Store

log = logging.getLogger(__name__)

SLACK_PATH = "/slack/events"
MAX_BODY_BYTES = 512 * 1024  # Slack's largest payloads (view submissions) stay well below
MAX_AGE_SECONDS = 5 * 60


class FlowbotWeb:
    """The WSGI application: ``/slack/events`` (verified, then Bolt), ``/healthz``, ``/metrics``."""

    def __init__(self, deps: BotDeps, bolt_handler: WSGIApplication, *, signing_secret: str,
                 max_body: int = MAX_BODY_BYTES, github: GitHubWebhook | None = None,
                 slack_client: WebClient | None = None) -> None:
        self.deps = deps
        self._bolt = bolt_handler
        self.slack_client = slack_client  # what the fast lane publishes App Home with (build_web)
        self._secret = signing_secret.encode()
        self.max_body = max_body
        self.github = github

    def body_limits(self) -> dict[str, int]:
        """The largest body each path takes (others: Slack's limit), for the server's reader."""
        from bot.webhook import MAX_WEBHOOK_BYTES, PATH

        return {PATH: self.github.max_body if self.github is not None else MAX_WEBHOOK_BYTES}

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        self.deps.telemetry.begin()
        if path == SLACK_PATH and method == "POST":
            return self._slack(environ, start_response)
        if path == "/github/webhook" and method == "POST":
            return self._github(environ, start_response)
        if path == "/healthz" and method in ("GET", "HEAD"):
            status, body = self.health()
            return _reply(start_response, status, json.dumps(body), "application/json")
        if path == "/metrics" and method == "GET":
            from bot.metrics_http import CONTENT_TYPE, StoredGauges

            gauges = StoredGauges(self.deps.store, self.deps.settings.teams, now=self.deps.clock.now())
            return _reply(start_response, 200, self.deps.telemetry.render(gauges), CONTENT_TYPE)
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
        if length > self.max_body:
            return self._refuse(start_response, 413, "too_large")
        body = environ["wsgi.input"].read(length) if length else b""
        reason = self._check_signature(environ, body)
        if reason is not None:
            return self._refuse(start_response, 401, reason)
        problem = malformed(body, environ.get("CONTENT_TYPE", ""))
        if problem is not None:
            self.deps.telemetry.rejected("malformed")
            log.warning("refused a signed Slack request: malformed body (%s)", problem)
            return _reply(start_response, 400, "malformed", "text/plain")
        environ["wsgi.input"] = io.BytesIO(body)
        return self._bolt(environ, start_response)

    def _github(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if self.github is None:
            self.deps.telemetry.rejected("webhook_not_set_up")
            log.info("refused a GitHub webhook: not_set_up (404)")
            return _reply(start_response, 404, "GitHub webhooks are not set up here:"
                          " GITHUB_WEBHOOK_SECRET is not set (Flowbot polls GitHub instead)", "text/plain")
        answer = self.github.handle(environ)
        return _reply(start_response, answer.status, answer.text, "text/plain")

    def _check_signature(self, environ: WSGIEnvironment, body: bytes) -> str | None:
        return self.unsigned_because(environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP", ""),
                                     environ.get("HTTP_X_SLACK_SIGNATURE", ""), body)

    def unsigned_because(self, timestamp: str, signature: str, body: bytes) -> str | None:
        """None when ``body`` is signed by Slack (``signature``, ``timestamp``: the
        ``X-Slack-*`` headers) within 5 minutes; else why not (the reason counted and logged)."""
        if not timestamp or not signature:
            return "unsigned"
        if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
            return "bad_timestamp"
        if abs(self.deps.clock.now().timestamp() - int(timestamp)) > MAX_AGE_SECONDS:
            return "stale"
        if not hmac.compare_digest(self.signature(body, timestamp), signature.encode("utf-8", "replace")):
            return "forged"
        return None

    def signature(self, body: bytes, timestamp: str) -> bytes:
        """Slack's ``v0=`` signature of ``body``: what slack_sdk's ``SignatureVerifier`` computes,
        over the raw bytes (it decodes the body as UTF-8 first, and raises on a body that is not)."""
        base = b"v0:" + timestamp.encode() + b":" + body
        return b"v0=" + hmac.new(self._secret, base, hashlib.sha256).hexdigest().encode()

    def _refuse(self, start_response: StartResponse, status: int, reason: str) -> Iterable[bytes]:
        self.deps.telemetry.rejected(reason)
        log.info("refused a Slack request: %s", reason)
        return _reply(start_response, status, reason, "text/plain")


def malformed(body: bytes, content_type: str) -> str | None:
    """Why Bolt could not parse this body (it would raise, a 500 with a traceback); else None.

    Mirrors ``slack_bolt.request.internals.parse_body``: JSON when the content type says so or
    the body starts with ``{``; else a form, whose ``payload`` field, when present, is JSON.
    Whatever is JSON must be an object.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8"
    if not text:
        return None
    if content_type.split(";")[0].strip() == "application/json" or text.startswith("{"):
        return _not_an_object(text, "body")
    if "payload" in text:
        payload = dict(parse_qsl(text, keep_blank_values=True)).get("payload")
        if payload is not None:
            return _not_an_object(payload, "payload")
    return None


def _not_an_object(text: str, what: str) -> str | None:
    try:
        value = json.loads(text)
    except ValueError as err:  # JSONDecodeError, and the RecursionError-free ValueErrors
        return f"{what} is not JSON: {err.msg if isinstance(err, json.JSONDecodeError) else err}"
    except RecursionError:
        return f"{what} nests too deep"
    if not isinstance(value, dict):
        return f"{what} is a JSON {type(value).__name__}, not an object"
    return None


def build_web(deps: BotDeps, *, signing_secret: str, client: Any = None,
              enqueue: Enqueue | None = None) -> FlowbotWeb:
    """The WSGI app over a fresh Bolt app for ``deps`` (tests pass their own client), with
    ``/github/webhook`` when a webhook secret is configured (its refreshes go to ``enqueue``,
    by default the work queue on the store's Redis)."""
    from slack_bolt.adapter.wsgi import SlackRequestHandler

    from bot.app import create_app as create_bolt_app

    bolt = create_bolt_app(deps, mode="http", client=client)
    return FlowbotWeb(deps, SlackRequestHandler(bolt, path=SLACK_PATH), signing_secret=signing_secret,
                      github=github_webhook(deps, enqueue=enqueue), slack_client=kept_alive(bolt.client))


def kept_alive(client: WebClient) -> WebClient:
    """``client``'s settings (token, Slack's address, timeout, TLS, retry handlers) in a
    :class:`bot.slack_keepalive.KeptAliveClient`, for the fast lane's ``views.publish``: a
    call safe to repeat, so its connections may stay open (that module's doc)."""
    from bot.slack_keepalive import KeptAliveClient

    return KeptAliveClient(token=client.token, base_url=client.base_url, timeout=client.timeout, ssl=client.ssl,
                           proxy=client.proxy, headers=dict(client.headers), logger=client.logger,
                           retry_handlers=list(client.retry_handlers))


def github_webhook(deps: BotDeps, *, enqueue: Enqueue | None = None) -> GitHubWebhook | None:
    """The webhook endpoint for ``deps``'s settings; None when no webhook secret is set."""
    from bot.webhook import GitHubWebhook, queue_refreshes
    from jobs.webhooks import watching

    settings = deps.settings
    secrets = settings.secrets.github_webhook_secrets
    if not secrets:
        return None
    whole = [o for o in settings.github.organisation_names if settings.github.lists_all(o)]
    return GitHubWebhook(secrets=[s.get_secret_value() for s in secrets], store=deps.store,
                         enqueue=enqueue or queue_refreshes(deps.store),
                         watched=watching(settings.repositories, organisations=whole),
                         clock=deps.clock, telemetry=deps.telemetry)


def create_app(config: str | None = None, *, clock: Clock | None = None) -> FlowbotWeb:
    """The gunicorn entry point (``bot.web:create_app()``): settings from ``FLOWBOT_CONFIG``.

    Boots whether or not Redis answers (a worker restarted during an outage must come up, or
    gunicorn's master stops the whole tier): commands then say data is unavailable, or answer
    from the last copy once they have one, and ``/healthz`` is 503 until Redis is back.
    Raises ConfigError when the settings are invalid or a Slack secret is missing, and
    StoreUnavailable when Redis holds another schema or the embedded server cannot start.
    """
    from bot.app import BotDeps
    from bot.cli import load_settings

    settings = load_settings(None if config is None else Path(config))
    secret = settings.secrets.slack_signing_secret
    if secret is None:
        raise ConfigError([("SLACK_SIGNING_SECRET: not set; HTTP mode refuses unsigned requests, "
                           "copy it from the Slack app's Basic Information page")])
    if settings.secrets.slack_bot_token is None:
        raise ConfigError([("SLACK_BOT_TOKEN: not set; copy the Bot User OAuth Token (xoxb-...) from the "
                           "Slack app's Install App page (docs/slack-setup.md)")])
    deps = BotDeps(settings=settings, store=_open_store(settings), clock=clock or SystemClock())
    try:
        return build_web(deps, signing_secret=secret.get_secret_value())
    except BaseException:
        deps.store.close()
        raise


def _open_store(settings: Settings) -> Store:
    """The store for a web worker: connected lazily when Redis is down, schema checked when up."""
    from jobs.store import Store

    url = settings.secrets.redis_url
    store = Store.connect(url.get_secret_value() if url else None, data_path=settings.storage.path,
                          prefix=settings.storage.prefix, check_schema=False)
    try:
        store.ping()
    except StoreUnavailable as err:
        log.warning("serving without Redis for now (%s): answers say data is unavailable and "
                    "/healthz is 503 until it answers", err)
        return store
    try:
        store.ensure_schema()
    except BaseException:
        store.close()
        raise
    return store


def _reply(start_response: StartResponse, status: int, body: str, content_type: str) -> Iterable[bytes]:
    data = body.encode()
    start_response(f"{status} {_REASONS.get(status, 'OK')}",
                   [("Content-Type", content_type), ("Content-Length", str(len(data)))])
    return [data]


_REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            408: "Request Timeout", 411: "Length Required", 413: "Payload Too Large",
            415: "Unsupported Media Type", 503: "Service Unavailable"}
