"""Delivery: every alert and digest reaches Slack once, 429s wait, broken channels are reported."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta

import pytest
from slack_sdk import WebClient

from bot.delivery import SlackDelivery, delivery_problems
from jobs.model import Alert, Digest
from jobs.ports import FixedClock
from jobs.store import Store
from tests.factories import T0, snapshot
from tests.fakes.slack_api import FakeSlack

PNG = b"\x89PNG\r\n\x1a\nfake-chart"


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


def delivery(store: Store, fake: FakeSlack, sleeps: list[float] | None = None) -> SlackDelivery:
    client = WebClient(base_url=fake.api_url, token=fake.token)
    waits = sleeps if sleeps is not None else []
    return SlackDelivery(client, store, clock=FixedClock(T0), sleep=waits.append)


def alert(**kw: object) -> Alert:
    base = Alert(team="platform", rule="queue_length", severity="warn", value=12, threshold=10,
                 unit="PRs", message="Review queue length is above warning level: 12 PRs",
                 at=T0, idempotency_key="alert:platform:queue_length:e1:warn",
                 recipients=("U0LEAD001", "C0LEADS01"), details=("PR <!channel> title",),
                 episode="e1")
    return replace(base, **kw)  # type: ignore[arg-type]


def digest(team: str = "platform", channel: str = "C0TEAM001", png: bytes | None = PNG) -> Digest:
    return Digest(team=team, channel=channel, week_start=date(2026, 2, 23), week_end=date(2026, 3, 1),
                  headline="Waiting moved to pickup.", snapshot=snapshot(team=team),
                  idempotency_key=f"digest:{team}:2026-W10", chart_png=png,
                  sections=(("Queue", "10 PRs waiting"),))


def test_alert_is_posted_once_per_recipient_even_when_retried(store: Store, slack: FakeSlack) -> None:
    """Delivering the same alert again (a retry, a restart, a second replica) posts nothing more."""
    d = delivery(store, slack)
    assert d.alert(alert())
    assert d.alert(alert())
    assert delivery(store, slack).alert(alert())
    posts = slack.calls("chat.postMessage")
    assert sorted(c.params["channel"] for c in posts) == ["C0LEADS01", "U0LEAD001"]
    text = str(posts[0].params["blocks"])
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    assert any(e["action_id"] == "flow_alert_snooze_week"
               for b in posts[0].params["blocks"] if b["type"] == "actions" for e in b["elements"])


def test_rate_limited_post_is_retried_after_retry_after(store: Store, slack: FakeSlack) -> None:
    """A 429 from Slack waits the Retry-After seconds, then the post goes through."""
    sleeps: list[float] = []
    slack.rate_limit("chat.postMessage", retry_after=3, times=2)
    assert delivery(store, slack, sleeps).alert(alert(recipients=("C0LEADS01",)))
    assert sleeps == [3.0, 3.0]
    assert [c.status for c in slack.calls("chat.postMessage")] == [429, 429, 200]


def test_failed_post_is_released_and_retried(store: Store, slack: FakeSlack) -> None:
    """A post Slack failed (500) is not marked sent: the next attempt posts it."""
    slack.fail("chat.postMessage", status=500, times=1)
    d = delivery(store, slack)
    assert not d.alert(alert(recipients=("C0LEADS01",)))
    assert d.alert(alert(recipients=("C0LEADS01",)))
    assert [c.status for c in slack.calls("chat.postMessage")] == [500, 200]


def test_channel_not_found_is_reported_once_and_others_still_get_theirs(
    store: Store, slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    """A wrong channel is logged once with the fix, shown to doctor, and other posts go on."""
    slack.add_channel("C0TEAM001")
    slack.add_channel("C0OTHER01")
    d = delivery(store, slack)
    with caplog.at_level(logging.ERROR, logger="bot.delivery"):
        assert not d.digest(digest(channel="C0GONE001"))
        assert not d.digest(digest(channel="C0GONE001"))
        assert d.digest(digest(team="other", channel="C0OTHER01"))
    refusals = [r for r in caplog.records if "channel_not_found" in r.getMessage()]
    assert len(refusals) == 1 and "check the channel ID" in refusals[0].getMessage()
    problems = delivery_problems(store)
    assert [(p.channel, p.code, p.count) for p in problems] == [("C0GONE001", "channel_not_found", 2)]
    assert [m["channel"] for m in slack.messages()] == ["C0OTHER01"]


def test_problem_clears_after_a_good_post(store: Store, slack: FakeSlack) -> None:
    """Once the bot is invited, the next post goes through and doctor no longer lists it."""
    slack.set_bot_channels({"C0TEAM001"})
    d = delivery(store, slack)
    assert not d.alert(alert(recipients=("C0LEADS01",)))
    assert delivery_problems(store)[0].code == "not_in_channel"
    slack.set_bot_channels(None)
    assert d.alert(alert(recipients=("C0LEADS01",)))
    assert delivery_problems(store) == []


def test_invalid_auth_is_workspace_wide(store: Store, slack: FakeSlack) -> None:
    """A revoked token is one problem for the workspace, with what to do."""
    client = WebClient(base_url=slack.api_url, token="xoxb-wrong")
    d = SlackDelivery(client, store, clock=FixedClock(T0), sleep=lambda s: None)
    assert not d.alert(alert())
    (problem,) = delivery_problems(store)
    assert problem.channel == "*" and problem.code == "invalid_auth"
    assert "SLACK_BOT_TOKEN" in problem.fix


def test_digest_posts_text_and_uploads_the_chart_in_its_thread(store: Store, slack: FakeSlack) -> None:
    """A digest is posted once with its chart attached by files upload v2."""
    d = delivery(store, slack)
    assert d.digest(digest())
    assert d.digest(digest())
    (message,) = slack.messages("C0TEAM001")
    (chart,) = slack.files()
    assert chart["content"] == PNG and chart["thread_ts"] == message["ts"]
    assert "Waiting moved to pickup" in message["text"]


def test_digest_stays_text_only_when_the_upload_fails(store: Store, slack: FakeSlack) -> None:
    """When the chart upload fails, the digest is still delivered as text."""
    slack.fail("files.getUploadURLExternal", error="internal_error", times=None)
    assert delivery(store, slack).digest(digest())
    assert len(slack.messages("C0TEAM001")) == 1 and slack.files() == []


def test_in_flight_post_elsewhere_is_not_duplicated(store: Store, slack: FakeSlack) -> None:
    """While another replica holds the post's lease, this one does not post; after it, it does."""
    key = "digest:platform:2026-W10"
    assert store.claim_once(key, ttl=timedelta(minutes=10))  # a replica that died mid-post
    assert not delivery(store, slack).digest(digest())
    assert slack.messages() == []
    store.release_claim(key)  # the lease expired
    assert delivery(store, slack).digest(digest())
    assert len(slack.messages("C0TEAM001")) == 1
