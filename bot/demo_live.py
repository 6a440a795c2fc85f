"""``flowbot demo``'s real-time section: a change in the simulated GitHub arrives by webhook.

After the simulated week, a PR is opened in the sandbox; the sandbox's webhook (signed like
GitHub's, with a secret made up for the run) goes to Flowbot's own ``POST /github/webhook``
(``bot.web.FlowbotWeb`` served on loopback), which verifies it and queues the PR's refresh on
the work queue; the queued work runs here (``jobs.work``: the refresh reads the PR from the
sandbox, the team's snapshot follows), and `/flow queue` (the snapshot it reads) lists the PR.
The figures are wall-clock seconds from the change. Nothing leaves the machine.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

    from jobs.ports import Clock
    from jobs.sandbox import SandboxServer
    from jobs.scheduler import Pipeline
    from jobs.settings import Settings
    from jobs.store import Store

LINK = re.compile(r"<[^|>]*\|([^>]*)>")  # mrkdwn <url|label> -> label


@dataclass(frozen=True)
class LiveChange:
    """What the section saw: the PR, the webhook's answer, and when each step was done."""

    pr: str  # owner/name#number
    title: str
    event: str  # event.action of the delivery
    status: int  # the endpoint's answer to it
    accepted_after: float  # seconds from the change to the endpoint's answer
    shown_after: float | None  # seconds from the change to `/flow queue` listing it
    team: str
    line: str  # the PR's `/flow queue` line, as text


def webhook_secret() -> str:
    """A secret for this run's hook only (never a credential of anything)."""
    return secrets.token_hex(16)


def show_a_change(settings: Settings, store: Store, sandbox: SandboxServer, *, clock: Clock,
                  source: Any, pipeline: Pipeline, secret: str) -> LiveChange:
    """Open a PR in the sandbox and follow it to `/flow queue` (the module docstring).

    ``settings`` carry ``secret`` as the webhook secret; ``source`` is the GitHub source the
    refresh reads with, ``pipeline`` what the team's alerts that follow it deliver through.
    Raises StoreUnavailable when Redis fails.
    """
    from bot.app import BotDeps
    from bot.blocks.queue import render_queue
    from bot.web import FlowbotWeb, github_webhook
    from jobs import work

    deps = BotDeps(settings=settings, store=store, clock=clock)
    app = FlowbotWeb(deps, _no_slack, signing_secret=secret, github=github_webhook(deps))
    team = next(iter(settings.teams))
    people = sandbox.org.team(team)
    repo = people.repos[0]
    work.install(work.Context(settings, store, clock, source=source, pipeline=pipeline))
    try:
        with _serve(app) as url:
            sandbox.send_webhooks_to(f"{url}/github/webhook", secret=secret)
            title = "Retry the invoice export on timeouts"
            started = time.monotonic()
            number = sandbox.changes.open_pr(repo, people.members[2].login, title=title,
                                             ci=False)
            sandbox.webhooks.flush(timeout=30)
            delivery = sandbox.webhooks.deliveries[-1]
            accepted = (delivery.sent_at[0] if delivery.sent_at else time.monotonic()) - started
            work.run_burst(store)
            head, items, total = store.get_queue_page(team, count=500)
            shown = time.monotonic() - started
        key = f"{sandbox.org.full_name(repo)}#{number}"
        line = ""
        if head is not None:
            blocks, _text = render_queue(replace(head, queue_items=tuple(items)),
                                         now=clock.now(), total=total)
            line = next((LINK.sub(r"\1", t) for t in _texts(blocks) if f"{key} " in t), "")
        return LiveChange(key, title, f"{delivery.event}.{delivery.action}",
                          delivery.statuses[0] if delivery.statuses else 0, accepted,
                          shown if line else None, team, line.strip())
    finally:
        sandbox.webhooks.configure(None)
        work.install(None)
        work.purge(store)


def _no_slack(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """Slack's path is not served here: the section only receives GitHub's webhook."""
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not served in the demo"]


def _texts(blocks: Iterable[dict[str, Any]]) -> Iterator[str]:
    for block in blocks:
        text = block.get("text")
        if isinstance(text, dict) and isinstance(text.get("text"), str):
            yield from text["text"].splitlines()
        for field in block.get("fields") or []:
            if isinstance(field, dict) and isinstance(field.get("text"), str):
                yield from field["text"].splitlines()


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
        """Quiet: the demo prints what matters."""


@contextmanager
def _serve(app: Any) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 (a free port) in a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, server_class=WSGIServer, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
