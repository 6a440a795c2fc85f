"""Secrets stay secret: URLs and DSNs are redacted wherever printed, and DEBUG logs carry no
response URL and no token."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest

from bot import logs
from bot.app import BotDeps, create_app
from bot.blocks.alerts import render_alert
from jobs.errors import StoreUnavailable
from jobs.model import Alert
from jobs.ports import FixedClock
from jobs.store import Store, redact_url
from tests.factories import T0
from tests.fakes.slack_api import FakeSlack
from tests.slack_helpers import BOB, LEAD, settings


@pytest.mark.parametrize(("url", "shown"), [
    ("redis://:hunter2@db:6379/0", "redis://:***@db:6379/0"),
    ("redis://db:6379/0?password=hunter2", "redis://db:6379/0?password=***"),
    ("rediss://user:hunter2@db/1?ssl_cert_reqs=none&password=hunter2", "rediss://user:***@db/1?ssl_cert_reqs=none&password=***"),
    ("https://ghp_hunter2@ghe.example/api/v3", "https://***@ghe.example/api/v3"),
    ("https://slack.example/api?token=xoxb-hunter2&channel=C1", "https://slack.example/api?token=***&channel=C1"),
    ("redis://db:6379/0", "redis://db:6379/0"),
    ("http://[::1", "(a URL that does not parse)"),
])
def test_urls_and_dsns_lose_their_credentials(url: str, shown: str) -> None:
    """Userinfo passwords, a token as the user part and credential query parameters are masked."""
    assert redact_url(url) == shown


def test_store_errors_never_print_a_query_string_password() -> None:
    """An unreachable `REDIS_URL=...?password=X` is named without X."""
    with pytest.raises(StoreUnavailable) as caught:
        Store.connect("redis://127.0.0.1:1/0?password=hunter2", timeout=0.5)
    assert "hunter2" not in str(caught.value) and "password=***" in str(caught.value)


def test_log_lines_are_masked() -> None:
    """Tokens, Slack response URLs and URL credentials are masked in any log line."""
    line = ("Sending a request - url: https://hooks.slack.com/commands/T0/123/abcSECRET, token xoxb-1-2-SECRET, "
            "xapp-1-A0-SECRET, ghp_SECRETSECRET, redis://:SECRET@db/0 and redis://db/0?password=SECRET, "
            "upload_url: https://files.slack.com/upload/v1/SECRET")
    assert "SECRET" not in logs.redact_text(line)
    assert "https://hooks.slack.com/***" in logs.redact_text(line)


@pytest.fixture
def debug_logging(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Everything at DEBUG, through Flowbot's log setup; levels restored afterwards."""
    before = {name: logging.getLogger(name).level for name in (*logs.QUIET_LOGGERS, *logs.LEVEL_TESTED)}
    caplog.set_level(logging.DEBUG)
    logs.install()
    try:
        yield caplog
    finally:
        for name, level in before.items():
            logging.getLogger(name).setLevel(level)


def test_debug_logging_writes_no_response_url_and_no_token(debug_logging: pytest.LogCaptureFixture, store: Store,
                                                           fake_slack: FakeSlack) -> None:
    """At DEBUG, a button click answered through its response_url leaves neither that URL nor the token in the log."""
    from slack_bolt.request import BoltRequest

    deps = BotDeps(settings=settings(), store=store, clock=FixedClock(T0 + timedelta(minutes=5)))
    app = create_app(deps, mode="socket", client=fake_slack.client())
    alert = Alert(team="platform", rule="queue_length", severity="warn", value=12.0, threshold=10.0, unit="PRs",
                  message="Review queue length is above warning level", at=T0, idempotency_key="k",
                  recipients=("C0",), episode="e1")
    blocks, text = render_alert(alert)
    (button,) = [e for b in blocks if b["type"] == "actions" for e in b["elements"]
                 if e["action_id"] == "flow_alert_ack"]
    response_url = fake_slack.response_url("posting-capability-SECRET")
    payload = {"type": "block_actions", "user": {"id": LEAD}, "team": {"id": "T0FAKE"}, "api_app_id": "A0FLOWBOT",
               "container": {"type": "message"}, "channel": {"id": "C0"}, "response_url": response_url,
               "message": {"type": "message", "text": text, "blocks": blocks, "ts": "1.2"},
               "actions": [{**button, "block_id": "b", "action_ts": "1.3"}], "trigger_id": "1.2.3"}
    assert app.dispatch(BoltRequest(body=payload, mode="socket_mode")).status == 200
    assert "Acknowledged by" in json.dumps(fake_slack.responses("posting-capability-SECRET"))
    logged = "\n".join(debug_logging.handler.format(r) for r in debug_logging.records)
    assert "auth.test" in logged or debug_logging.records  # DEBUG was really on
    assert response_url not in logged and "posting-capability-SECRET" not in logged
    assert fake_slack.token not in logged


class _Watched(str):
    """A string in a request body that counts how often it is rendered into text by repr()."""

    reprs = 0

    def __repr__(self) -> str:
        _Watched.reprs += 1
        return super().__repr__()


def test_slack_request_bodies_are_not_rendered_for_debug_lines_nobody_reads(
    caplog: pytest.LogCaptureFixture, fake_slack: FakeSlack
) -> None:
    """Above DEBUG, the Web API client does not render each request's JSON body into a debug
    line that is then thrown away (0.45 ms of CPU per App Home publish); at DEBUG it still logs."""
    name = logs.LEVEL_TESTED[0]
    before = logging.getLogger(name).level
    client = fake_slack.client()
    view = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": _Watched("hi")}}]}
    try:
        caplog.set_level(logging.WARNING)
        logging.getLogger(name).setLevel(logging.NOTSET)
        logs.install()
        client.views_publish(user_id=BOB, view=view)
        assert _Watched.reprs == 0
        caplog.set_level(logging.DEBUG)
        logging.getLogger(name).setLevel(logging.NOTSET)
        logs.install()
        client.views_publish(user_id=BOB, view=view)
        assert _Watched.reprs > 0 and "Sending a request" in caplog.text
    finally:
        logging.getLogger(name).setLevel(before)
