"""The Bolt ``App`` factory shared by Socket Mode and HTTP mode.

It wires listeners and nothing else: each listener module's ``register(app, deps)``, and one
``@app.error`` handler that answers the user kindly and logs the error once.
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from slack_bolt import App, BoltResponse
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.logger.messages import (
    warning_client_prioritized_and_token_skipped,
    warning_token_skipped,
)
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from bot.metrics_http import Telemetry
from bot.reader import SnapshotReader
from jobs.errors import ConfigError
from jobs.ports import Clock, SystemClock
from jobs.settings import Settings
from jobs.store import Store

log = logging.getLogger(__name__)

Mode = Literal["socket", "http"]
LISTENER_MODULES = ("bot.guard", "bot.commands", "bot.home", "bot.actions")  # bot.guard: the workspace check, first
OPTIONAL_LISTENER_MODULES = ("bot.alert_actions",)  # the alerts' snooze/acknowledge buttons
KIND_ERROR = ("Sorry, something went wrong answering that. It has been logged; "
              "please try again in a minute, or `/flow health` to see if Flowbot is struggling.")
SLACK_API_URL = "https://slack.com/api/"
BOLT_LOGGER = "flowbot.bolt"


@dataclass(frozen=True, slots=True)
class BotDeps:
    """What listeners need: settings, the store, a clock, the snapshot reader, counters."""

    settings: Settings
    store: Store
    clock: Clock = field(default_factory=SystemClock)
    reader: SnapshotReader = None  # type: ignore[assignment]  # filled in __post_init__
    telemetry: Telemetry = field(default_factory=Telemetry)

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
    Requests are authorized with the bot token as configured, never with a call to Slack
    (see :func:`authorize_with`). Raises ConfigError when there is no bot token.
    """
    client = client or make_client(deps.settings)
    if not client.token:
        raise ConfigError([("SLACK_BOT_TOKEN: not set; copy the Bot User OAuth Token (xoxb-...) from the "
                           "Slack app's Install App page (docs/slack-setup.md)")])
    app = App(
        client=client,
        authorize=authorize_with(client.token),
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


def authorize_with(token: str) -> Callable[..., AuthorizeResult]:
    """Bolt's ``authorize``: every request is answered with the one bot token Flowbot has.

    Bolt's default for a single workspace asks Slack ``auth.test`` on the first request and
    again on every request while that fails, so with Slack unreachable every answer, `/flow
    help` included, became "something went wrong" with two tracebacks. Flowbot needs no bot
    identity to answer (it listens to no message events of its own); ``flowbot doctor``
    checks the token.
    """

    def authorize(enterprise_id: str | None, team_id: str | None, user_id: str | None) -> AuthorizeResult:
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, user_id=user_id, bot_token=token)

    return authorize


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
