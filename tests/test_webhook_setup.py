"""Setting up GitHub webhooks: secrets from the environment, off without one, several hooks'
secrets, a store that is down, and what doctor says. The WSGI front is served on loopback
with a recording ``enqueue`` (the work queue itself is tested in test_webhook_http)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from bot.app import BotDeps
from bot.config import secrets_from_env
from bot.doctor import webhook_findings
from bot.web import build_web
from jobs.errors import StoreUnavailable
from jobs.ports import FixedClock
from jobs.store import Store
from jobs.webhooks import Refresh
from tests.factories import T0
from tests.fakes.slack_api import FakeSlack
from tests.slack_helpers import SECRET, Answer, post, serve, settings

PR = {"action": "opened", "number": 5, "pull_request": {"number": 5},
      "repository": {"full_name": "acme/api"}, "installation": {"id": 42}}


@dataclass
class Recorder:
    """``enqueue`` for the endpoint: keeps what it was given; coalesces equal refreshes."""

    queued: list[Refresh] = field(default_factory=list)
    down: bool = False

    def __call__(self, refresh: Refresh) -> bool:
        if self.down:
            raise StoreUnavailable("Redis at 127.0.0.1:1 unreachable")
        if refresh in self.queued:
            return False
        self.queued.append(refresh)
        return True


def deliver(url: str, payload: object, *, secret: str, delivery: str = "d-1",
            event: str = "pull_request") -> Answer:
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return post(url + "/github/webhook", body, {
        "Content-Type": "application/json", "X-GitHub-Event": event, "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": signature})


@pytest.fixture
def served(store: Store, fake_slack: FakeSlack) -> Iterator[tuple[str, Recorder]]:
    recorder = Recorder()
    env = {"GITHUB_WEBHOOK_SECRET": "first", "GITHUB_WEBHOOK_SECRET_PAYMENTS_ORG": "second"}
    deps = BotDeps(settings=settings(**env), store=store, clock=FixedClock(T0))
    with serve(build_web(deps, signing_secret=SECRET, client=fake_slack.client(),
                         enqueue=recorder)) as url:
        yield url, recorder


def test_secrets_come_from_the_environment_one_per_hook_and_never_show() -> None:
    """GITHUB_WEBHOOK_SECRET and each GITHUB_WEBHOOK_SECRET_<NAME> are accepted secrets; repr
    shows none of them; none set means none."""
    secrets, problems = secrets_from_env({"GITHUB_WEBHOOK_SECRET": "s3cr3t-one",
                                          "GITHUB_WEBHOOK_SECRET_ACME": "s3cr3t two",
                                          "GITHUB_WEBHOOK_SECRET_EMPTY": " "})
    assert problems == []
    assert [s.get_secret_value() for s in secrets.github_webhook_secrets] == ["s3cr3t-one", "s3cr3t two"]
    assert "s3cr3t" not in repr(secrets)
    assert secrets_from_env({})[0].github_webhook_secrets == ()


def test_without_a_secret_the_endpoint_says_it_is_not_set_up(store: Store, fake_slack: FakeSlack) -> None:
    """No secret: 404 naming GITHUB_WEBHOOK_SECRET, nothing stored; Flowbot polls as before."""
    deps = BotDeps(settings=settings(), store=store, clock=FixedClock(T0))
    with serve(build_web(deps, signing_secret=SECRET, client=fake_slack.client())) as url:
        answer = deliver(url, PR, secret="anything")
    assert answer.status == 404 and b"GITHUB_WEBHOOK_SECRET is not set" in answer.body
    assert store.webhook_deliveries() == {}


def test_a_delivery_signed_with_any_configured_secret_is_accepted(served: tuple[str, Recorder]) -> None:
    """A second hook's secret (another organisation's hook) verifies its deliveries too."""
    url, recorder = served
    assert deliver(url, PR, secret="second").status == 202
    assert recorder.queued == [Refresh("pr", "acme/api", 5, reason="pull_request.opened")]
    assert deliver(url, PR, secret="third", delivery="d-2").status == 401


def test_a_form_encoded_hook_is_told_to_send_json(served: tuple[str, Recorder]) -> None:
    """A hook set to application/x-www-form-urlencoded gets 415 saying what to change."""
    url, recorder = served
    body = b"payload=%7B%7D"
    signature = "sha256=" + hmac.new(b"first", body, hashlib.sha256).hexdigest()
    answer = post(url + "/github/webhook", body, {
        "Content-Type": "application/x-www-form-urlencoded", "X-GitHub-Event": "ping",
        "X-GitHub-Delivery": "d-3", "X-Hub-Signature-256": signature})
    assert answer.status == 415 and b"application/json" in answer.body
    assert recorder.queued == []


def test_an_unreachable_queue_answers_503_and_a_redelivery_is_handled(
        served: tuple[str, Recorder], caplog: pytest.LogCaptureFixture) -> None:
    """When the queue cannot be reached the delivery fails (GitHub shows it; redeliver it), with
    one warning and no traceback; its redelivery is then handled, not taken for a replay."""
    url, recorder = served
    recorder.down = True
    with caplog.at_level(logging.INFO):
        assert deliver(url, PR, secret="first", delivery="d-4").status == 503
    assert [r.levelname for r in caplog.records if r.name == "bot.webhook"] == ["WARNING"]
    assert not any(r.exc_info for r in caplog.records)
    recorder.down = False
    assert deliver(url, PR, secret="first", delivery="d-4").status == 202


def test_doctor_shows_each_hooks_last_delivery_and_a_refusal_after_it(
        served: tuple[str, Recorder], store: Store) -> None:
    """Doctor names each installation's last delivery, and warns when the newest delivery was
    refused (the usual cause: the hook's secret differs)."""
    url, _ = served
    config = settings(GITHUB_WEBHOOK_SECRET="first")
    now = T0 + timedelta(minutes=5)
    assert webhook_findings(store, config, now)[0].status == "warn"  # set up, nothing arrived
    deliver(url, PR, secret="first")
    (found,) = webhook_findings(store, config, now)
    assert (found.status, found.summary) == (
        "ok", "installation 42: last delivery 5 min ago, pull_request.opened: queued")
    deliver(url, PR, secret="wrong", delivery="d-9")
    assert "refused: forged" in webhook_findings(store, config, now)[-1].summary
    assert webhook_findings(store, settings(), now)[0].summary.startswith("off")


def test_check_config_says_whether_webhooks_are_on_without_the_secret() -> None:
    """The summary of check-config says webhooks are off, or on with how many secrets; never one."""
    from bot.summary import settings_summary

    assert "GitHub webhooks: off (set GITHUB_WEBHOOK_SECRET" in settings_summary(settings())
    on = settings_summary(settings(GITHUB_WEBHOOK_SECRET="hush-1", GITHUB_WEBHOOK_SECRET_B="hush-2"))
    assert "GitHub webhooks: on, /github/webhook on `flowbot web` (2 secret(s))" in on
    assert "hush" not in on
