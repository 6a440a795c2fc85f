"""Delivery: every alert and digest reaches Slack once, 429s wait, broken channels are reported."""

from __future__ import annotations

import logging
import subprocess
import sys
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
    with FakeSlack(clock=T0.timestamp) as fake:
        yield fake


def delivery(store: Store, fake: FakeSlack, sleeps: list[float] | None = None) -> SlackDelivery:
    seasoned(store)
    client = WebClient(base_url=fake.api_url, token=fake.token)
    waits = sleeps if sleeps is not None else []
    return SlackDelivery(client, store, clock=FixedClock(T0), sleep=waits.append)


def seasoned(store: Store) -> None:
    """Delivery records kept for a week: no post is looked up in Slack without cause."""
    if store.get_json("delivery", "ledger") is None:
        store.set_json("delivery", "ledger", value={"since": (T0 - timedelta(days=7)).isoformat()})


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
    lease = store.try_lock("post:digest:platform:2026-W10", ttl=timedelta(minutes=10))
    assert lease.acquired  # a live replica (this very process) is posting it
    assert not delivery(store, slack).digest(digest())
    assert slack.messages() == []
    store.unlock(lease)  # that attempt ended without posting
    assert delivery(store, slack).digest(digest())
    assert len(slack.messages("C0TEAM001")) == 1


# ----------------------------------------------------------------- outcome unknown: ask Slack


def slow_delivery(store: Store, fake: FakeSlack, *, timeout: float = 0.2,
                  clock: FixedClock | None = None) -> SlackDelivery:
    """A delivery whose client gives up after ``timeout`` seconds (Slack's is 30 s)."""
    client = WebClient(base_url=fake.api_url, token=fake.token, timeout=timeout)  # type: ignore[arg-type]
    seasoned(store)
    return SlackDelivery(client, store, clock=clock or FixedClock(T0), sleep=lambda s: None)


def test_every_post_carries_its_idempotency_key_in_slack(store: Store, slack: FakeSlack) -> None:
    """Slack stores each message with metadata naming its idempotency key and team."""
    d = delivery(store, slack)
    assert d.digest(digest()) and d.alert(alert(recipients=("U0LEAD001",)))
    by_key = {m["metadata"]["event_payload"]["key"]: m for m in slack.messages()}
    assert set(by_key) == {"digest:platform:2026-W10", "alert:platform:queue_length:e1:warn:U0LEAD001"}
    assert all(m["metadata"]["event_type"] == "flowbot_delivery" for m in by_key.values())
    assert by_key["digest:platform:2026-W10"]["metadata"]["event_payload"]["team"] == "platform"


def test_slack_answering_after_the_timeout_gets_exactly_one_copy(store: Store, slack: FakeSlack) -> None:
    """Slack stores the digest but answers too late, and stays slow: later ticks post no copy."""
    slack.delay("*", seconds=5, times=None)  # every method: stored, answered after 5 s
    d = slow_delivery(store, slack)
    assert not d.digest(digest(png=None))  # timed out: outcome unknown
    assert not d.digest(digest(png=None))  # still slow: the lookup times out too, nothing sent
    slack.clear_faults()
    assert d.digest(digest(png=None))  # Slack answers again: found in the history
    assert len(slack.messages("C0TEAM001")) == 1
    assert len(slack.calls("chat.postMessage")) == 1
    assert d.digest(digest(png=None)) and len(slack.calls("conversations.history")) == 2


def test_connection_dropped_after_slack_stored_it_is_not_resent(store: Store, slack: FakeSlack) -> None:
    """A post whose connection drops after Slack stored it is neither retried blindly by
    slack_sdk nor posted again by the next attempt."""
    slack.drop_after_store("chat.postMessage")
    d = delivery(store, slack)
    assert not d.alert(alert(recipients=("U0LEAD001",)))
    assert d.alert(alert(recipients=("U0LEAD001",)))
    assert len(slack.calls("chat.postMessage")) == 1 and len(slack.messages()) == 1
    (opened,) = slack.calls("conversations.open")  # a DM's history is the IM's
    assert opened.params["users"] == "U0LEAD001"


def test_timed_out_post_slack_never_stored_is_posted_after_the_lookup(
    store: Store, slack: FakeSlack
) -> None:
    """When the lookup finds nothing (Slack failed before storing), the next attempt posts."""
    slack.fail("chat.postMessage", status=503, times=1)
    d = delivery(store, slack)
    assert not d.digest(digest(png=None))
    assert d.digest(digest(png=None))
    assert len(slack.messages("C0TEAM001")) == 1
    assert [c.method for c in slack.calls()][-2:] == ["conversations.history", "chat.postMessage"]


def test_redis_restarted_empty_posts_no_digest_or_alert_again(store: Store, slack: FakeSlack) -> None:
    """Redis loses everything (no persistence): the digest and the alert DM are found in Slack,
    even an alert re-fired under a new episode because its state was lost."""
    clock = FixedClock(T0)
    d = SlackDelivery(WebClient(base_url=slack.api_url, token=slack.token), store, clock=clock,
                      sleep=lambda s: None)
    seasoned(store)  # an installation that has run for a week
    assert d.digest(digest(png=None)) and d.alert(alert())
    assert len(slack.calls("conversations.history")) == 0  # the fast path: nothing to look up
    store.flush_prefix()  # Redis restarted without persistence
    clock.advance(timedelta(minutes=15))
    assert d.digest(digest(png=None))
    assert d.alert(alert())
    assert d.alert(alert(episode="e2", idempotency_key="alert:platform:queue_length:e2:warn"))
    assert len(slack.calls("chat.postMessage")) == 3  # the first three posts only
    # a breach after the leads were told of its recovery is news, and is posted
    recovered = alert(recovered=True, idempotency_key="alert:platform:queue_length:e2:recovered")
    assert d.alert(recovered)
    assert d.alert(alert(episode="e3", idempotency_key="alert:platform:queue_length:e3:warn"))
    assert len(slack.calls("chat.postMessage")) == 3 + 2 + 2


def test_lookup_pages_through_history(store: Store, slack: FakeSlack) -> None:
    """A post buried under a busy channel's newer messages is still found (next_cursor)."""
    d = delivery(store, slack)
    assert d.digest(digest(png=None))
    client = WebClient(base_url=slack.api_url, token=slack.token)
    for n in range(250):
        client.chat_postMessage(channel="C0TEAM001", text=f"chatter {n}")
    store.flush_prefix()
    assert d.digest(digest(png=None))
    assert len(slack.calls("conversations.history")) == 2
    assert len(slack.messages("C0TEAM001")) == 251


def test_without_history_scopes_it_posts_again_and_says_why(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """Without channels:history the lookup is impossible: Flowbot posts (a duplicate is possible),
    warns with the fix, and doctor shows it."""
    from tests.fakes.slack_api import DEFAULT_SCOPES

    scopes = [s for s in DEFAULT_SCOPES if not s.endswith(":history")]
    with FakeSlack(scopes=scopes, clock=T0.timestamp) as fake:
        fake.drop_after_store("chat.postMessage")
        d = delivery(store, fake)
        with caplog.at_level(logging.WARNING, logger="bot.delivery"):
            assert not d.digest(digest(png=None))
            assert d.digest(digest(png=None))
        assert len(fake.messages("C0TEAM001")) == 2
    assert any("channels:history" in r.getMessage() for r in caplog.records)
    (problem,) = delivery_problems(store)
    assert problem.code == "history:missing_scope" and "im:history" in problem.fix


def test_lease_of_a_killed_worker_is_taken_over_and_its_post_found(store: Store, slack: FakeSlack) -> None:
    """kill -9 after Slack stored the post, before it answered: on restart the dead worker's
    lease is taken over at once (not after its 10 minutes) and the post is found in Slack."""
    slack.drop_after_store("chat.postMessage")  # Slack stored it; the worker never heard back
    assert not delivery(store, slack).digest(digest(png=None))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lease = store.try_lock("post:digest:platform:2026-W10", ttl=timedelta(minutes=10), pid=dead.pid)
    assert lease.acquired  # held in the name of a process that no longer exists
    assert delivery(store, slack).digest(digest(png=None))
    assert len(slack.messages("C0TEAM001")) == 1 and len(slack.calls("chat.postMessage")) == 1


def test_alert_refired_under_a_new_episode_after_a_crash_is_not_posted_again(
    store: Store, slack: FakeSlack
) -> None:
    """A worker dies while posting an alert (Slack stored it), before saving the episode: the
    restarted worker's re-fired alert, under a new key, is recognised in Slack."""
    slack.drop_after_store("chat.postMessage")
    assert not delivery(store, slack).alert(alert(recipients=("U0LEAD001",)))
    refired = alert(recipients=("U0LEAD001",), episode="e2",
                    idempotency_key="alert:platform:queue_length:e2:warn")
    assert delivery(store, slack).alert(refired)
    assert len(slack.messages()) == 1
    other_rule = alert(recipients=("U0LEAD001",), rule="ci_p90_minutes",
                       idempotency_key="alert:platform:ci_p90_minutes:e1:warn")
    assert delivery(store, slack).alert(other_rule)
    assert len(slack.messages()) == 2
