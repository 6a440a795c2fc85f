"""HTTP mode: signed slash commands through the WSGI front and Bolt, refusals, health, metrics."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from bot.app import BotDeps
from bot.web import build_web, create_app
from jobs.errors import ConfigError
from jobs.ports import FixedClock
from jobs.store import JobRun, Store
from tests.conftest import CliStorage
from tests.factories import T0, snapshot
from tests.fakes.slack_api import FakeSlack, iter_blocks_text
from tests.slack_helpers import (
    LEAD,
    OUTSIDER,
    SECRET,
    Answer,
    get,
    post,
    serve,
    settings,
    signed_headers,
    slash_body,
)

NOW = T0 + timedelta(minutes=10)


@dataclass
class Web:
    url: str
    fake: FakeSlack
    clock: FixedClock
    deps: BotDeps

    def flow(self, text: str, *, user: str = "U0BOB0001", skew: int = 0, secret: str = SECRET,
             response_url: str | None = None) -> Answer:
        body = slash_body(text, user=user, response_url=response_url or self.fake.response_url())
        return post(self.url + "/slack/events", body, signed_headers(body, self.clock, secret=secret, skew=skew))


@pytest.fixture
def web(store: Store, fake_slack: FakeSlack) -> Iterator[Web]:
    clock = FixedClock(NOW)
    deps = BotDeps(settings=settings(), store=store, clock=clock)
    app = build_web(deps, signing_secret=SECRET, client=fake_slack.client())
    with serve(app) as url:
        yield Web(url, fake_slack, clock, deps)


def _text(answer: Answer) -> str:
    payload = answer.json()
    return "\n".join([payload.get("text", ""), *iter_blocks_text(payload.get("blocks", []))])


def test_signed_status_answers_with_blocks(web: Web, store: Store) -> None:
    """A signed `/flow status` gets the team's status, ephemeral, saying how old the data is."""
    store.put_snapshot(snapshot())
    answer = web.flow("status")
    assert answer.status == 200
    payload = answer.json()
    assert payload["response_type"] == "ephemeral"
    assert payload["blocks"][0] == {"type": "header", "text": {"type": "plain_text", "text": "Flow status: platform"}}
    text = _text(answer)
    assert "data 17 min old" in text
    assert "pickup wait p50 4 working h (9 h)" in text


def test_share_posts_in_channel(web: Web, store: Store) -> None:
    """`share` makes the answer visible to the channel."""
    store.put_snapshot(snapshot())
    assert web.flow("queue platform share").json()["response_type"] == "in_channel"


def test_unsigned_forged_stale_refused(web: Web, store: Store, caplog: pytest.LogCaptureFixture) -> None:
    """Unsigned, forged, stale and junk-timestamp requests get 401 and run nothing; a forged
    one is logged where docs/slack-setup.md says (INFO, shown by FLOWBOT_LOG_LEVEL=INFO)."""
    body = slash_body("status")
    url = web.url + "/slack/events"
    assert post(url, body, {"Content-Type": "application/x-www-form-urlencoded"}).status == 401
    with caplog.at_level(logging.INFO, logger="bot.web"):
        assert web.flow("status", secret="not-the-secret").status == 401
    [refused] = [r for r in caplog.records if r.getMessage() == "refused a Slack request: forged"]
    assert refused.levelname == "INFO"
    doc = (Path(__file__).resolve().parent.parent / "docs" / "slack-setup.md").read_text()
    assert "FLOWBOT_LOG_LEVEL=INFO` logs `refused a Slack request: forged`" in doc
    assert web.flow("status", skew=-301).status == 401
    assert web.flow("status", skew=+400).status == 401
    junk = {**signed_headers(body, web.clock), "X-Slack-Request-Timestamp": "yesterday"}
    assert post(url, body, junk).status == 401
    assert web.fake.calls("auth.test") == []  # Bolt never saw them
    metrics = get(web.url + "/metrics").body.decode()
    assert 'flowbot_requests_rejected_total{reason="forged"} 1.0' in metrics
    assert 'flowbot_requests_rejected_total{reason="stale"} 2.0' in metrics


def test_within_five_minutes_accepted(web: Web) -> None:
    """A request signed 4 minutes ago is still answered."""
    assert web.flow("help", skew=-240).status == 200


def test_oversized_body_refused(web: Web) -> None:
    """A body over the size limit gets 413 before anything reads it."""
    host, port = web.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.putrequest("POST", "/slack/events")
    for name, value in signed_headers(b"", web.clock).items():
        conn.putheader(name, value)
    conn.putheader("Content-Length", str(600 * 1024))
    conn.endheaders()  # the body is never sent: the answer must not wait for it
    assert conn.getresponse().status == 413
    conn.close()


def test_unknown_subcommand_gets_usage(web: Web) -> None:
    """An unknown subcommand gets the usage line, not a traceback."""
    text = _text(web.flow("stauts"))
    assert "I don't know `stauts`" in text and "Usage: `/flow" in text


def test_no_snapshot_says_when_next_sample_runs(web: Web, store: Store) -> None:
    """Before the first snapshot, the answer says so and, a worker running, when the next sample runs."""
    store.record_run(JobRun(job="sample", started_at=NOW - timedelta(minutes=5), seconds=3.0, outcome="ok"))
    store.beat("host:1", at=NOW, ttl=timedelta(seconds=90))  # a worker's heartbeat
    text = _text(web.flow("status"))
    assert "No data for *platform* yet" in text and "in about 10 min" in text


def test_set_threshold_only_for_leads(web: Web, store: Store) -> None:
    """A lead changes a threshold (recorded with who and when); anyone else is refused politely."""
    refused = _text(web.flow("set pickup_p50_hours 8 platform", user=OUTSIDER))
    assert "only the leads of *platform*" in refused
    done = _text(web.flow("set pickup_p50_hours 8 platform", user=LEAD))
    assert "is now 8 working h (was 6 working h)" in done
    listing = _text(web.flow("thresholds platform", user=LEAD))
    assert "`pickup_p50_hours`: warn 8 working h" in listing
    assert f"6 working h → 8 working h by <@{LEAD}>" in listing


def test_healthz_and_metrics(web: Web, store: Store) -> None:
    """/healthz reports Redis and snapshot age; /metrics counts commands and job outcomes."""
    store.put_snapshot(snapshot())
    store.record_run(JobRun(job="sample", started_at=NOW, seconds=2.5, outcome="ok"))
    web.flow("status")
    health = get(web.url + "/healthz")
    assert health.status == 200
    assert health.json()["snapshot_age_seconds"] == {"platform": 600.0, "web": None}
    metrics = get(web.url + "/metrics").body.decode()
    assert 'flowbot_commands_total{outcome="ok",subcommand="status"} 1.0' in metrics
    assert 'flowbot_command_seconds_bucket{le="+Inf",subcommand="status"} 1.0' in metrics
    assert 'flowbot_job_runs{job="sample",outcome="ok"} 1.0' in metrics


def test_digest_preview_answers_through_response_url(web: Web, store: Store) -> None:
    """`/flow digest` acknowledges at once, then posts the preview to the response_url."""
    store.put_snapshot(snapshot())
    url = web.fake.response_url("digest")
    ack = web.flow("digest platform", response_url=url)
    assert ack.status == 200 and "Building" in ack.json()["text"]
    assert web.fake.wait_for_response("digest", timeout=10)
    [preview] = web.fake.responses("digest")
    assert preview["response_type"] == "ephemeral" and preview["blocks"]


_CONFIG = """
[github]
organisation = "acme"

{storage}
[teams.platform]
members = [{{ github = "bob", slack = "U0BOB0001" }}]
repositories = ["api"]
channel = "C0PLATFORM"
"""


def test_gunicorn_entry_point_reads_config_and_refuses_without_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli_storage: CliStorage,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """`bot.web:create_app()` builds from FLOWBOT_CONFIG, says what to do when the signing secret
    is missing, and starts without Bolt's "`token` will be unused" warning."""
    config = tmp_path / "config.toml"
    config.write_text(_CONFIG.format(storage=cli_storage.toml))
    monkeypatch.setenv("FLOWBOT_CONFIG", str(config))
    if cli_storage.redis_url:
        monkeypatch.setenv("REDIS_URL", cli_storage.redis_url)
    else:
        monkeypatch.delenv("REDIS_URL", raising=False)
    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET"):
        create_app()
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)
    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN"):
        create_app()
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-not-used-here")
    with caplog.at_level(logging.WARNING):
        app = create_app(clock=FixedClock(NOW))
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    try:
        with serve(app) as url:
            assert get(url + "/healthz").json()["snapshot_age_seconds"] == {"platform": None}
            assert get(url + "/nowhere").status == 404
    finally:
        app.deps.store.close()


def test_manifest_declares_what_flowbot_uses() -> None:
    """The one-paste manifest has /flow, the Home tab event, interactivity and every scope doctor checks."""
    from bot.doctor import REQUIRED_SLACK_SCOPES

    manifest = (Path(__file__).resolve().parent.parent / "slack-manifest.yaml").read_text()
    lines = {line.split("#")[0].strip() for line in manifest.splitlines()}
    for scope in (*REQUIRED_SLACK_SCOPES, "commands", "chat:write.public"):
        assert f"- {scope}" in lines, scope
    assert "- command: /flow" in lines and "- app_home_opened" in lines
    assert "socket_mode_enabled: true" in lines and "home_tab_enabled: true" in lines


def test_run_with_slack_unreachable_ends_with_one_line(tmp_path: Path, cli_storage: CliStorage) -> None:
    """`flowbot run` when Slack refuses connections ends with one line saying what to check,
    exit code 1, no traceback."""
    import socket

    from typer.testing import CliRunner

    from bot.cli import app

    with socket.socket() as sock:  # a port nothing listens on: connections are refused
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}/api/"
    config = tmp_path / "config.toml"
    config.write_text(_CONFIG.format(storage=cli_storage.toml))
    result = CliRunner().invoke(app, ["run", "--config", str(config)], env={
        "SLACK_BOT_TOKEN": "xoxb-not-used-here", "SLACK_APP_TOKEN": "xapp-1-not-used-here",
        "SLACK_API_URL": closed, **cli_storage.env})
    assert result.exit_code == 1, result.exception
    assert isinstance(result.exception, SystemExit)
    assert result.output.splitlines()[-1] == (
        f"flowbot: cannot reach Slack at {closed} (Connection refused): check the network"
        " (proxy, firewall), and SLACK_API_URL if it is set")
    assert "Traceback" not in result.output


def _samples(metrics_text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus text answer, by name and labels."""
    from prometheus_client.parser import text_string_to_metric_families

    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(metrics_text) for s in family.samples}


def _closed_port_url() -> str:
    import socket

    with socket.socket() as sock:  # a port nothing listens on: connections are refused
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize(("body", "content_type"), [
    (b'{"type": "block_actions", "user": {"id"', "application/json"),  # truncated JSON
    (b"payload=%7Bnot+json", "application/x-www-form-urlencoded"),  # payload= that is not JSON
    (b"[1, 2, 3]", "application/json"),  # a JSON list
    (b"payload=%5B1%2C2%5D", "application/x-www-form-urlencoded"),  # payload= holding a list
    (b"\xff\xfe\x00\x81binary", "application/octet-stream"),  # not even UTF-8
])
def test_signed_malformed_body_is_400_in_one_line(web: Web, body: bytes, content_type: str,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    """A correctly signed body Bolt could not parse gets 400 and one log line, no traceback."""
    timestamp = str(int(web.clock.now().timestamp()))
    signature = "v0=" + hmac.new(SECRET.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    headers = {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature, "Content-Type": content_type}
    with caplog.at_level(logging.INFO):
        answer = post(web.url + "/slack/events", body, headers)
    assert answer.status == 400
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and lines[0].exc_info is None, [r.getMessage() for r in lines]
    assert lines[0].getMessage().startswith("refused a signed Slack request: malformed body (")
    assert "\n" not in lines[0].getMessage()
    assert _samples(get(web.url + "/metrics").body.decode())[
        ("flowbot_requests_rejected_total", frozenset({("reason", "malformed")}))] == 1


def test_signed_form_and_json_bodies_still_reach_bolt(web: Web) -> None:
    """The malformed-body check passes what Slack really sends: forms, payload= JSON objects."""
    assert web.flow("help").status == 200
    body = b'{"type": "url_verification", "challenge": "abc", "token": "t"}'
    headers = {**signed_headers(body, web.clock), "Content-Type": "application/json"}
    answer = post(web.url + "/slack/events", body, headers)
    assert answer.status == 200 and b"abc" in answer.body


def test_boots_and_answers_without_redis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         caplog: pytest.LogCaptureFixture) -> None:
    """With Redis down, the gunicorn entry point still builds the app: commands say the data is
    unavailable, help answers, /healthz is 503; boot logs one warning line."""
    config = tmp_path / "config.toml"
    config.write_text(_CONFIG.format(storage='[storage]\nprefix = "flowbot-down"\n'))
    for name, value in {"FLOWBOT_CONFIG": str(config), "REDIS_URL": f"redis://{_closed_port_url()}/0",
                        "SLACK_SIGNING_SECRET": SECRET, "SLACK_BOT_TOKEN": "xoxb-not-used-here"}.items():
        monkeypatch.setenv(name, value)
    with caplog.at_level(logging.WARNING):
        app = create_app(clock=FixedClock(NOW))
    [boot] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert boot.getMessage().startswith("serving without Redis for now (Redis ping failed (redis://127.0.0.1:")
    assert boot.exc_info is None
    try:
        with serve(app) as url:
            health = get(url + "/healthz")
            assert health.status == 503 and health.json()["redis"] == "unreachable"
            body = slash_body("status")
            answer = post(url + "/slack/events", body, signed_headers(body, app.deps.clock))
            assert answer.status == 200
            assert "temporarily unavailable" in _text(answer)
            body = slash_body("help")
            assert "Flowbot commands:" in _text(post(url + "/slack/events", body, signed_headers(body, app.deps.clock)))
            body = slash_body("alerts")
            assert "temporarily unavailable" in _text(post(url + "/slack/events", body,
                                                           signed_headers(body, app.deps.clock)))
            metrics = _samples(get(url + "/metrics").body.decode())
            assert metrics[("flowbot_store_up", frozenset())] == 0
            for sub, outcome in (("status", "unavailable"), ("alerts", "unavailable"), ("help", "ok")):
                assert metrics[("flowbot_commands_total",
                                frozenset({("subcommand", sub), ("outcome", outcome)}))] == 1, sub
    finally:
        app.deps.store.close()


def test_answer_from_last_copy_counts_as_stale(embedded_store: Store, fake_slack: FakeSlack) -> None:
    """When Redis goes away, an answer from the copy held in memory is counted `stale`, not `ok`."""
    clock = FixedClock(NOW)
    deps = BotDeps(settings=settings(), store=embedded_store, clock=clock)
    embedded_store.put_snapshot(snapshot())
    with serve(build_web(deps, signing_secret=SECRET, client=fake_slack.client())) as url:
        web = Web(url, fake_slack, clock, deps)
        assert "Flow status: platform" in _text(web.flow("status"))
        embedded_store.close()  # the server stops: Redis is gone
        stale = _text(web.flow("status"))
        assert "temporarily unavailable" in stale and "Flow status: platform" in stale
        metrics = _samples(get(url + "/metrics").body.decode())
    status = {dict(labels)["outcome"]: v for (name, labels), v in metrics.items()
              if name == "flowbot_commands_total" and dict(labels)["subcommand"] == "status"}
    assert status == {"ok": 1, "stale": 1}


def test_slack_unreachable_commands_still_answer(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    """With the Slack API unreachable, `/flow help` and `/flow status` answer from the store as
    usual, and the log has one line for it (Slack is asked which workspace the token belongs to
    once, not on every request)."""
    from slack_sdk import WebClient

    clock = FixedClock(NOW)
    deps = BotDeps(settings=settings(), store=store, clock=clock)
    store.put_snapshot(snapshot())
    client = WebClient(token="xoxb-not-used-here", base_url=f"http://{_closed_port_url()}/api/", timeout=1)
    with caplog.at_level(logging.WARNING), serve(build_web(deps, signing_secret=SECRET, client=client)) as url:
        web = Web(url, FakeSlack(), clock, deps)  # the fake is only a response_url target here
        for _ in range(3):
            assert "Flowbot commands:" in _text(web.flow("help", response_url="http://127.0.0.1:9/unused"))
            assert "Flow status: platform" in _text(web.flow("status", response_url="http://127.0.0.1:9/unused"))
    [line] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert line.getMessage().startswith("cannot ask Slack which workspace the bot token belongs to "
                                        "(auth.test: Connection refused); answering anyway")
    assert line.exc_info is None


def test_bot_identity_asked_once_and_again_after_a_failure(fake_slack: FakeSlack,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    """Slack is asked which workspace the token belongs to once; after a failure, not before a
    minute has passed, and the failure is one log line; then the answer is remembered."""
    from bot.app import BotIdentity

    clock = FixedClock(NOW)
    identity = BotIdentity(fake_slack.client(), clock=clock)
    fake_slack.fail("auth.test", error="internal_error", times=1)
    with caplog.at_level(logging.WARNING):
        first = [identity.authorize(None, "T0FAKE", "U1") for _ in range(3)]
    assert {r.team_id for r in first} == {None} and {r.bot_token for r in first} == {fake_slack.token}
    assert len(fake_slack.calls("auth.test")) == 1
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1
    clock.advance(timedelta(seconds=61))
    later = [identity.authorize(None, "T0FAKE", "U1") for _ in range(3)]
    assert {r.team_id for r in later} == {fake_slack.team_id}
    assert len(fake_slack.calls("auth.test")) == 2
