"""Wiring for the long-running commands: ``flowbot worker`` and ``flowbot run``.

``bot.cli`` calls these; they connect the pieces (store, Slack client, delivery, pipeline,
scheduler, Socket Mode) and block until SIGTERM/SIGINT, then stop gracefully: the running job
finishes, Socket Mode disconnects.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from slack_sdk import WebClient

from bot.delivery import SlackDelivery
from jobs.errors import FlowbotError
from jobs.ports import Clock, SystemClock
from jobs.scheduler import Pipeline, run_until_stopped
from jobs.settings import Settings
from jobs.store import Store

log = logging.getLogger(__name__)

Echo = Callable[[str], None]
APP_TOKEN_MISSING = (
    "SLACK_APP_TOKEN is not set: `flowbot run` connects over Socket Mode, which needs an "
    "app-level token (xapp-..., scope connections:write; create it in the app's settings under "
    "Basic Information > App-Level Tokens). Without one, run `flowbot web` and `flowbot worker`."
)


def build_pipeline(settings: Settings, store: Store, client: WebClient, *, clock: Clock) -> Pipeline:
    """The production pipeline: GitHub sampling, snapshots, alerts and digests posted to Slack."""
    from bot.charts import team_charts

    delivery = SlackDelivery(client, store, clock=clock)
    return Pipeline.from_settings(
        settings, store, delivery, clock=clock,
        chart=team_charts(settings),
    )


def app_token(settings: Settings) -> str:
    """The Socket Mode token; raises FlowbotError saying how to get one when it is missing."""
    token = settings.secrets.slack_app_token
    if token is None or not token.get_secret_value().startswith("xapp-"):
        raise FlowbotError(APP_TOKEN_MISSING if token is None else
                           "SLACK_APP_TOKEN must be an app-level token starting with xapp-")
    return token.get_secret_value()


def run_worker(
    settings: Settings, store: Store, client: WebClient, *, echo: Echo,
    clock: Clock | None = None, stop: threading.Event | None = None, schedule: bool = True,
) -> None:
    """``flowbot worker``: an RQ worker running queued units of work (``jobs.work``) and,
    unless ``schedule`` is False, the scheduler that queues them (active in one worker at a
    time: the ``scheduler`` lock), until SIGTERM/SIGINT (or ``stop``)."""
    from jobs import work
    from jobs.dispatch import Dispatch

    clock = clock or SystemClock()
    stop = stop or threading.Event()
    pipeline = build_pipeline(settings, store, client, clock=clock)
    work.install(work.Context(settings, store, clock, pipeline=pipeline))
    beating = threading.Event()
    scheduler = threading.Thread(
        target=run_until_stopped, args=(Dispatch(pipeline),), name="scheduler",
        kwargs={"clock": clock, "stop": stop, "handle_signals": False, "leader": True,
                "on_started": beating.set},
    ) if schedule else None
    if scheduler is not None:
        scheduler.start()
        beating.wait(10)  # its heartbeat is written: /flow health sees this worker at once
    started = (f"Worker started ({store.location}): queues {', '.join(work.QUEUES)}"
               + (f"; scheduling (when no other worker does) sampling every "
                  f"{settings.schedules.sample_interval_minutes} min, digests for "
                  f"{', '.join(settings.teams)}" if schedule else "; not scheduling")
               + ". Stop with Ctrl-C or SIGTERM.")
    try:
        work.serve(store, stop=stop, on_started=lambda: echo(started),
                   logging_level=logging.getLevelName(logging.getLogger().getEffectiveLevel()))
    finally:
        stop.set()
        if scheduler is not None:
            scheduler.join()
        work.install(None)
    echo("Worker stopped.")


def run_bot_and_worker(
    settings: Settings, store: Store, client: WebClient, *, echo: Echo,
    clock: Clock | None = None, stop: threading.Event | None = None,
) -> None:
    """``flowbot run``: Socket Mode bot and a worker (scheduler and jobs) in one process,
    until SIGTERM/SIGINT."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler
    from slack_sdk.errors import SlackApiError

    from bot.app import BotDeps, create_app

    token = app_token(settings)
    clock = clock or SystemClock()
    bolt = create_app(BotDeps(settings=settings, store=store, clock=clock), mode="socket", client=client)
    handler = SocketModeHandler(bolt, app_token=token)
    try:
        handler.connect()  # type: ignore[no-untyped-call]  # Bolt leaves it untyped; returns once connected
    except SlackApiError as err:  # a wrong or revoked app-level token: say which, no traceback
        code = err.response.get("error", "error") if err.response is not None else "error"
        raise FlowbotError(f"Slack refused the Socket Mode connection ({code}): check "
                           "SLACK_APP_TOKEN (an app-level xapp- token with connections:write)") from None
    echo("Connected to Slack over Socket Mode.")
    try:
        run_worker(settings, store, client, echo=echo, clock=clock, stop=stop)
    finally:
        handler.close()  # type: ignore[no-untyped-call]  # Bolt leaves it untyped
