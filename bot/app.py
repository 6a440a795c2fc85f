"""The Bolt ``App`` factory shared by Socket Mode and HTTP mode.

It wires listeners and nothing else: each listener module's ``register(app, deps)``, and one
``@app.error`` handler that answers the user kindly and logs the error once.
"""

from __future__ import annotations

import importlib
import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from slack_bolt import App, BoltResponse
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.logger.messages import (
    warning_client_prioritized_and_token_skipped,
    warning_token_skipped,
)
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from bot.guard import Workspace
from bot.metrics_http import Telemetry
from bot.reader import SnapshotReader
from jobs.errors import ConfigError
from jobs.parts_cache import PartsCache
from jobs.ports import Clock, SystemClock
from jobs.settings import Settings
from jobs.store import Store

log = logging.getLogger(__name__)

Mode = Literal["socket", "http"]
LISTENER_MODULES = ("bot.guard", "bot.commands", "bot.home", "bot.actions", "bot.windows")  # bot.guard: the workspace check, first
OPTIONAL_LISTENER_MODULES = ("bot.alert_actions",)  # the alerts' snooze/acknowledge buttons
KIND_ERROR = ("Sorry, something went wrong answering that. It has been logged; "
              "please try again in a minute, or `/flow health` to see if Flowbot is struggling.")
SLACK_API_URL = "https://slack.com/api/"
BOLT_LOGGER = "flowbot.bolt"


@dataclass(frozen=True, slots=True)
class BotDeps:
    """What listeners need: settings, the store, a clock, the snapshot reader, counters, and
    the installed workspace (bot.guard)."""

    settings: Settings
    store: Store
    clock: Clock = field(default_factory=SystemClock)
    reader: SnapshotReader = None  # type: ignore[assignment]  # filled in __post_init__
    telemetry: Telemetry = field(default_factory=Telemetry)
    workspace: Workspace = field(default_factory=Workspace)  # where requests must come from
    parts: PartsCache[Any] = field(default_factory=PartsCache)  # App Home's copies (jobs.parts_cache)

    def __post_init__(self) -> None:
        if self.reader is None:
            object.__setattr__(self, "reader", SnapshotReader(self.store, clock=self.clock))


def make_client(settings: Settings) -> WebClient:
    """The Web API client: the bot token, Slack (or ``SLACK_API_URL``), 429s retried."""
    token = settings.secrets.slack_bot_token
    client = WebClient(
        token=token.get_secret_value() if token else None,
        base_url=settings.secrets.slack_api_url or SLACK_API_URL,
        timeout=10,
    )
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=2))
    return client


def create_app(deps: BotDeps, *, mode: Mode, client: WebClient | None = None) -> App:
    """A Bolt app with every listener registered.

    In HTTP mode ``bot.web`` verifies signatures and timestamps (with the injected clock)
    before Bolt sees a request, so Bolt's own verification is off; Socket Mode needs none.
    Requests are authorized by :class:`BotIdentity` (``auth.test`` once, not per request).
    Raises ConfigError when there is no bot token.
    """
    client = client or make_client(deps.settings)
    if not client.token:
        raise ConfigError([("SLACK_BOT_TOKEN: not set; copy the Bot User OAuth Token (xoxb-...) from the "
                           "Slack app's Install App page (docs/slack-setup.md)")])
    app = App(
        client=client,
        authorize=_plain(BotIdentity(client, clock=deps.clock, workspace=deps.workspace)),
        process_before_response=True,  # answers are ready at ack time; slow work goes to lazy listeners
        request_verification_enabled=False,  # see above: bot.web (HTTP) or the socket (Socket Mode)
        listener_executor=ThreadPoolExecutor(max_workers=16, thread_name_prefix="flowbot-listener"),
        name="flowbot",
        logger=_bolt_logger(),
    )
    for name in LISTENER_MODULES:
        importlib.import_module(name).register(app, deps)
    for name in OPTIONAL_LISTENER_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name != name:
                raise
            continue
        module.register(app, deps)

    def on_error(error: Exception, body: dict[str, Any], response: BoltResponse | None,
                 respond: Any) -> BoltResponse | None:
        kind = _kind(body)
        deps.telemetry.error(kind)
        log.exception("unexpected error answering %s", kind, exc_info=error)
        if response is not None:  # not acknowledged yet: the kind answer is the acknowledgement
            return BoltResponse(status=200, body=json.dumps({"response_type": "ephemeral", "text": KIND_ERROR}),
                                headers={"content-type": "application/json;charset=utf-8"})
        if body.get("response_url"):
            try:
                respond(response_type="ephemeral", text=KIND_ERROR, replace_original=False)
            except Exception:  # noqa: BLE001 - the error is already logged; this is best effort
                log.warning("could not tell the user about the error")
        return None

    app.error(on_error)
    return app


class BotIdentity:
    """Bolt's ``authorize`` (:meth:`authorize`): the configured bot token, and the workspace it
    belongs to, asked of Slack (``auth.test``) once and remembered. Thread-safe.

    Bolt's default asks ``auth.test`` on the first request and again on every request while
    that fails, so with Slack unreachable every answer, `/flow help` included, became "something
    went wrong" with two tracebacks. Here a failed question is logged once (one line) and asked
    again at most every ``retry``, with a short timeout; meanwhile requests are authorized with
    the token alone: the installed workspace is unknown, so the workspace guard (bot/guard.py)
    lets them through until Slack answers. Commands answer from Redis either way.
    """

    def __init__(self, client: WebClient, *, clock: Clock, retry: timedelta = timedelta(minutes=1),
                 timeout: float = 2.0, workspace: Workspace | None = None) -> None:
        token = client.token
        if not token:
            raise ValueError("BotIdentity needs a client with the bot token")
        self._token = token
        # one attempt, and no log of its own: a failure is said once, below, in one line
        quiet = logging.getLogger(f"{__name__}.identity")
        quiet.setLevel(logging.CRITICAL)
        self._client = WebClient(token=token, base_url=client.base_url, timeout=max(1, round(timeout)),
                                 logger=quiet, retry_handlers=[])
        self._clock = clock
        self._retry = retry
        self._known: dict[str, Any] | None = None
        self._next_try: datetime | None = None
        self._failed = False
        self._lock = threading.Lock()
        self._workspace = workspace  # told the answer, for the fast lane's workspace check

    def authorize(self, enterprise_id: str | None, team_id: str | None, user_id: str | None) -> AuthorizeResult:
        """The ``authorize`` function for Bolt (which passes arguments by name)."""
        known = self.identity()
        if known is None:  # Slack not reachable yet: the token alone, the workspace unknown
            return AuthorizeResult(enterprise_id=None, team_id=None, user_id=user_id, bot_token=self._token)
        return AuthorizeResult(enterprise_id=known.get("enterprise_id"), team_id=known.get("team_id"),
                               bot_id=known.get("bot_id"), bot_user_id=known.get("user_id"),
                               user_id=user_id, bot_token=self._token)

    def identity(self) -> dict[str, Any] | None:
        """``auth.test``'s answer, asked once; None while Slack has not answered it."""
        with self._lock:
            if self._known is not None:
                return self._known
            now = self._clock.now()
            if self._next_try is not None and now < self._next_try:
                return None
            self._next_try = now + self._retry
        try:
            answer = self._client.auth_test()
        except (SlackApiError, OSError) as err:  # refused, timed out, no route; or not ok
            with self._lock:
                first, self._failed = not self._failed, True
            if first:
                log.warning("cannot ask Slack which workspace the bot token belongs to (auth.test: %s); "
                            "answering anyway, asking again every %d s", reason_of(err),
                            int(self._retry.total_seconds()))
            return None
        with self._lock:
            self._known = dict(answer.data) if isinstance(answer.data, dict) else {}
            if self._workspace is not None:
                self._workspace.remember(self._known)
            if self._failed:
                log.warning("Slack answered auth.test again: workspace %s", self._known.get("team_id"))
            return self._known


def _plain(identity: BotIdentity) -> Callable[..., AuthorizeResult]:
    """``identity.authorize`` as a plain function: Bolt passes arguments by the names it finds
    with ``inspect``, which lists a bound method's ``self`` too."""

    def authorize(enterprise_id: str | None, team_id: str | None, user_id: str | None) -> AuthorizeResult:
        return identity.authorize(enterprise_id, team_id, user_id)

    return authorize


def reason_of(err: Exception) -> str:
    """What a Slack call failed with, in a word or a line: the API error, else the OS reason."""
    if isinstance(err, SlackApiError):
        return str(err.response.get("error", "error"))
    reason = getattr(err, "reason", err)
    return getattr(reason, "strerror", None) or str(reason) or type(reason).__name__


class _ClientOverEnvToken(logging.Filter):
    """Drops Bolt's two "`token` will be unused" notices.

    Bolt reads ``SLACK_BOT_TOKEN`` from the environment whenever no ``token`` is passed
    (``token or os.environ.get(...)``), so an ``App(client=...)`` built in a process that has the
    variable (every deployment: it is where the token comes from) always warns, although only
    the client is given and it carries that same token; and with ``authorize`` given it warns
    that the client's token is not used for authorization, which is what ``authorize`` is for.
    There is no argument that avoids either.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno == logging.WARNING
                    and record.getMessage() in (warning_client_prioritized_and_token_skipped(),
                                                warning_token_skipped()))


def _bolt_logger() -> logging.Logger:
    """Bolt's framework logger, without the client-over-token notice (added once)."""
    logger = logging.getLogger(BOLT_LOGGER)
    if not any(isinstance(f, _ClientOverEnvToken) for f in logger.filters):
        logger.addFilter(_ClientOverEnvToken())
    return logger


def _kind(body: dict[str, Any]) -> str:
    """``command:/flow``, ``block_actions``, ``event:app_home_opened``: for logs and metrics."""
    if "command" in body:
        return f"command:{body['command']}"
    event = body.get("event")
    if isinstance(event, dict):
        return f"event:{event.get('type', '?')}"
    return str(body.get("type", "unknown"))
