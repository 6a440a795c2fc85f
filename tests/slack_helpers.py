"""Shared helpers for the Slack tests: settings, a served WSGI app, signed slash commands."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import urlencode
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from slack_sdk.signature import SignatureVerifier

from bot.config import from_mapping
from jobs.ports import Clock
from jobs.settings import Settings

SECRET = "test-signing-secret"
LEAD = "U0LEAD0001"
BOB = "U0BOB0001"
ALICE = "U0ALICE01"
OUTSIDER = "U0OUTSIDE1"
PLATFORM_CHANNEL = "C0PLATFORM"


def settings(**env: str) -> Settings:
    """Two teams; bob and alice on platform (lead LEAD), dan on web."""
    data = {
        "github": {"organisation": "acme"},
        "teams": {
            "platform": {
                "members": [{"github": "bob", "slack": BOB}, {"github": "alice", "slack": ALICE},
                            {"github": "erin"}],
                "repositories": ["api", "acme/web"],
                "github_teams": ["backend"],
                "channel": PLATFORM_CHANNEL,
                "leads": [LEAD],
                "timezone": "Europe/Berlin",
            },
            "web": {
                "members": [{"github": "dan", "slack": "U0DAN0001"}],
                "repositories": ["acme/site"],
                "channel": "C0WEB0001",
            },
        },
    }
    return from_mapping(data, env=env)


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Quiet: tests assert on responses."""


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve a WSGI app on 127.0.0.1:0 in a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, server_class=_Server, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    headers: Mapping[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


def slash_body(text: str, *, user: str = BOB, channel: str = PLATFORM_CHANNEL,
               response_url: str = "https://hooks.slack.com/commands/T0/1/x") -> bytes:
    """A slash command form-encoded exactly as Slack sends it."""
    return urlencode({
        "token": "deprecated-verification-token",
        "team_id": "T0FAKE",
        "team_domain": "fake-workspace",
        "channel_id": channel,
        "channel_name": "platform",
        "user_id": user,
        "user_name": "someone",
        "command": "/flow",
        "text": text,
        "api_app_id": "A0FLOWBOT",
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": "1337.42.abcdef",
    }).encode()


def signed_headers(body: bytes, clock: Clock, *, secret: str = SECRET, skew: int = 0) -> dict[str, str]:
    """Slack's signature headers for ``body`` at the clock's time (plus ``skew`` seconds)."""
    timestamp = str(int(clock.now().timestamp()) + skew)
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body.decode()) or ""
    return {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature,
            "Content-Type": "application/x-www-form-urlencoded"}


def post(url: str, body: bytes, headers: Mapping[str, str], *, timeout: float = 10) -> Answer:
    """POST and return the answer whatever its status."""
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(response.status, response.read(), dict(response.headers))
    except urllib.error.HTTPError as err:
        return Answer(err.code, err.read(), dict(err.headers))


def get(url: str, *, timeout: float = 10) -> Answer:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return Answer(response.status, response.read(), dict(response.headers))
    except urllib.error.HTTPError as err:
        return Answer(err.code, err.read(), dict(err.headers))
