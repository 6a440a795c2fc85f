"""The fake Slack Web API behaves like Slack for the real slack_sdk client."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from tests.fakes.slack_api import Call, FakeSlack


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as running:
        yield running


def test_posted_message_reads_back(fake: FakeSlack) -> None:
    """A message posted through slack_sdk is read back from the fake with its blocks."""
    client = WebClient(base_url=fake.api_url, token=fake.token)
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "hello"}}]
    answer = client.chat_postMessage(channel="C1", text="hello", blocks=blocks)
    assert answer["ok"] and answer["channel"] == "C1" and answer["message"]["text"] == "hello"
    assert fake.messages("C1")[0]["blocks"] == blocks
    assert fake.calls("chat.postMessage")[0].params["blocks"] == blocks


def test_base_url_without_api_prefix_works(fake: FakeSlack) -> None:
    """``WebClient(base_url=fake.url)`` reaches the same methods as ``fake.api_url``."""
    client = WebClient(base_url=fake.url, token=fake.token)
    assert client.auth_test()["user_id"] == fake.bot_user_id


def test_auth_test_sends_scopes_header(fake: FakeSlack) -> None:
    """auth.test carries the granted scopes in ``x-oauth-scopes`` as Slack does."""
    answer = fake.client().auth_test()
    assert "chat:write" in answer.headers["x-oauth-scopes"].split(",")


def test_bad_and_missing_tokens(fake: FakeSlack) -> None:
    """An unknown token answers invalid_auth; a missing one not_authed."""
    with pytest.raises(SlackApiError) as bad:
        WebClient(base_url=fake.api_url, token="xoxb-wrong").auth_test()
    assert bad.value.response["error"] == "invalid_auth"
    with pytest.raises(SlackApiError) as missing:
        WebClient(base_url=fake.api_url).api_call("auth.test")
    assert missing.value.response["error"] == "not_authed"


def test_programmed_failure_then_success(fake: FakeSlack) -> None:
    """fail() answers the programmed error once, then the method works again."""
    fake.fail("chat.postMessage", error="channel_not_found")
    client = fake.client()
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel="C1", text="x")
    assert err.value.response["error"] == "channel_not_found"
    assert client.chat_postMessage(channel="C1", text="x")["ok"]


class _RecordingRateLimitHandler(RateLimitErrorRetryHandler):
    """slack_sdk's 429 handler, recording the Retry-After it would sleep instead of sleeping."""

    def __init__(self) -> None:
        super().__init__(max_retry_count=1)
        self.waits: list[str] = []

    def prepare_for_next_attempt(self, *, state, request, response=None, error=None):  # type: ignore[no-untyped-def]
        assert response is not None
        self.waits += [v for k, vs in response.headers.items() if k.lower() == "retry-after" for v in vs]
        state.next_attempt_requested = True
        state.increment_current_attempt()


def test_rate_limit_honoured_by_retry_handler(fake: FakeSlack) -> None:
    """A 429 with Retry-After is retried by slack_sdk's handler and then succeeds."""
    fake.rate_limit("chat.postMessage", retry_after=3)
    client = fake.client()
    handler = _RecordingRateLimitHandler()
    client.retry_handlers.append(handler)
    assert client.chat_postMessage(channel="C1", text="x")["ok"]
    statuses = [c.status for c in fake.calls("chat.postMessage")]
    assert statuses == [429, 200]
    assert set(handler.waits) == {"3"}  # the Retry-After the fake sent


def test_rate_limit_without_retry_surfaces_retry_after(fake: FakeSlack) -> None:
    """Without a retry handler the 429 reaches the caller with its Retry-After header."""
    fake.rate_limit("chat.postMessage", retry_after=7)
    with pytest.raises(SlackApiError) as err:
        fake.client().chat_postMessage(channel="C1", text="x")
    assert err.value.response.status_code == 429
    assert err.value.response.headers["Retry-After"] == "7"


def test_not_in_channel_and_join(fake: FakeSlack) -> None:
    """Posting to a channel the bot is not in fails until it joins."""
    fake.set_bot_channels({"C1"})
    client = fake.client()
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel="C2", text="x")
    assert err.value.response["error"] == "not_in_channel"
    client.conversations_join(channel="C2")
    assert client.chat_postMessage(channel="C2", text="x")["ok"]


def test_update_ephemeral_and_views(fake: FakeSlack) -> None:
    """chat.update edits the posted message; ephemerals and App Home views are kept apart."""
    client = fake.client()
    ts = client.chat_postMessage(channel="C1", text="v1")["ts"]
    client.chat_update(channel="C1", ts=ts, text="v2")
    assert fake.messages("C1")[0]["text"] == "v2"
    client.chat_postEphemeral(channel="C1", user="U1", text="only you")
    assert fake.ephemerals("U1")[0]["text"] == "only you"
    client.views_publish(user_id="U1", view={"type": "home", "blocks": []})
    assert fake.views()["U1"]["type"] == "home"


def test_each_call_is_told_as_it_arrives_with_its_arrival_time() -> None:
    """``on_call`` hears of a views.publish before the client has its answer, stamped with the
    monotonic time the request arrived (what a bench times App Home by, from another process)."""
    told: list[tuple[str, str, float, bool]] = []

    def on_call(call: Call) -> None:
        told.append((call.method, call.params["user_id"], call.at, "U1" in slack.views()))

    with FakeSlack(on_call=on_call) as slack:
        before = time.monotonic()
        slack.client().views_publish(user_id="U1", view={"type": "home", "blocks": []})
        after = time.monotonic()
    [(method, user, at, stored)] = told
    assert (method, user, stored) == ("views.publish", "U1", True)
    assert before <= at <= after


def test_invalid_blocks_refused(fake: FakeSlack) -> None:
    """More than 50 blocks or a section over 3000 characters is refused like Slack does."""
    client = fake.client()
    too_many = [{"type": "divider"}] * 51
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel="C1", text="x", blocks=too_many)
    assert err.value.response["error"] == "invalid_blocks"
    long = [{"type": "section", "text": {"type": "mrkdwn", "text": "a" * 3001}}]
    with pytest.raises(SlackApiError):
        client.chat_postMessage(channel="C1", text="x", blocks=long)


def test_lookups(fake: FakeSlack) -> None:
    """Users, channels, members and DMs answer from what the test registered."""
    fake.add_user("U1", name="ada", email="ada@example.com")
    fake.add_channel("C1", name="payments", members=["U1", "U2", "U3"])
    client = fake.client()
    assert client.users_lookupByEmail(email="ada@example.com")["user"]["id"] == "U1"
    assert client.users_info(user="U1")["user"]["name"] == "ada"
    with pytest.raises(SlackApiError) as err:
        client.users_info(user="U9")
    assert err.value.response["error"] == "user_not_found"
    assert client.conversations_info(channel="C1")["channel"]["name"] == "payments"
    with pytest.raises(SlackApiError):
        client.conversations_info(channel="C9")
    first = client.conversations_members(channel="C1", limit=2)
    rest = client.conversations_members(channel="C1", cursor=first["response_metadata"]["next_cursor"])
    assert first["members"] + rest["members"] == ["U1", "U2", "U3"]
    assert client.conversations_open(users="U1")["channel"]["id"].startswith("D")


def test_files_upload_v2(fake: FakeSlack) -> None:
    """files_upload_v2 goes through all three steps and the bytes arrive at the fake."""
    answer = fake.client().files_upload_v2(channel="C1", content=b"\x89PNG...", filename="chart.png",
                                           title="Chart")
    assert answer["file"]["title"] == "Chart"
    [stored] = fake.files()
    assert stored["content"] == b"\x89PNG..." and stored["channel"] == "C1"
    assert [c.method for c in fake.calls()] == [
        "files.getUploadURLExternal", "upload", "files.completeUploadExternal"]


def test_response_url_records_json(fake: FakeSlack) -> None:
    """JSON posted to a response_url is recorded for the test to read."""
    url = fake.response_url("abc")
    request = urllib.request.Request(url, data=json.dumps({"text": "hi"}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert answer.status == 200
    assert fake.responses("abc") == [{"text": "hi"}]


def test_server_error_status(fake: FakeSlack) -> None:
    """fail(status=500) answers a bare HTTP 500 the way an outage looks."""
    fake.fail("chat.postMessage", status=500)
    with pytest.raises(SlackApiError) as err:
        fake.client().chat_postMessage(channel="C1", text="x")
    assert err.value.response.status_code == 500


def test_history_pages_newest_first_with_metadata_on_request(fake: FakeSlack) -> None:
    """conversations.history: newest first, limit per page, next_cursor, metadata only with
    include_all_metadata, as Slack answers it."""
    client = WebClient(base_url=fake.api_url, token=fake.token)
    meta = {"event_type": "flowbot_delivery", "event_payload": {"key": "k1"}}
    first = client.chat_postMessage(channel="C1", text="one", metadata=meta)
    for n in range(4):
        client.chat_postMessage(channel="C1", text=f"more {n}")
    page = client.conversations_history(channel="C1", limit=3)
    assert [m["text"] for m in page["messages"]] == ["more 3", "more 2", "more 1"]
    assert page["has_more"] and page["response_metadata"]["next_cursor"]
    rest = client.conversations_history(channel="C1", limit=3, include_all_metadata=True,
                                        cursor=page["response_metadata"]["next_cursor"])
    assert [m["text"] for m in rest["messages"]] == ["more 0", "one"]
    assert rest["messages"][-1]["metadata"] == meta and not rest["has_more"]
    assert "metadata" not in client.conversations_history(channel="C1")["messages"][-1]
    newer = client.conversations_history(channel="C1", oldest=first["ts"])
    assert len(newer["messages"]) == 4  # oldest is exclusive unless inclusive=true


def test_post_to_a_user_lands_in_the_dm_conversations_open_names(fake: FakeSlack) -> None:
    """Posting to U... answers with the DM's D... ID; its history (im:history) holds the post."""
    client = WebClient(base_url=fake.api_url, token=fake.token)
    posted = client.chat_postMessage(channel="U0LEAD001", text="psst")
    dm = client.conversations_open(users="U0LEAD001")["channel"]["id"]
    assert posted["channel"] == dm and dm.startswith("D")
    assert [m["text"] for m in client.conversations_history(channel=dm)["messages"]] == ["psst"]


def test_history_errors_like_slack(fake: FakeSlack) -> None:
    """Without the history scope: missing_scope naming what is needed; outside a channel:
    not_in_channel."""
    from tests.fakes.slack_api import DEFAULT_SCOPES

    with FakeSlack(scopes=[s for s in DEFAULT_SCOPES if s != "im:history"]) as narrow:
        client = WebClient(base_url=narrow.api_url, token=narrow.token)
        client.chat_postMessage(channel="U1", text="hi")
        with pytest.raises(SlackApiError) as err:
            client.conversations_history(channel=client.conversations_open(users="U1")["channel"]["id"])
        assert err.value.response["error"] == "missing_scope"
        assert err.value.response["needed"] == "im:history"
    fake.set_bot_channels({"C1"})
    with pytest.raises(SlackApiError) as err:
        WebClient(base_url=fake.api_url, token=fake.token).conversations_history(channel="C2")
    assert err.value.response["error"] == "not_in_channel"


def test_delayed_answer_stores_first_and_times_the_client_out(fake: FakeSlack) -> None:
    """delay(): the post is stored at once; a client with a shorter timeout gets no answer."""
    fake.delay("chat.postMessage", seconds=5)
    client = WebClient(base_url=fake.api_url, token=fake.token, timeout=0.2)  # type: ignore[arg-type]
    with pytest.raises(TimeoutError):
        client.chat_postMessage(channel="C1", text="slow")
    assert [m["text"] for m in fake.messages("C1")] == ["slow"]
    fake.release_delayed()


def test_dropped_connection_after_store_is_resent_by_slack_sdks_default_retry(fake: FakeSlack) -> None:
    """drop_after_store(): stored, then hung up on; slack_sdk's default connection retry then
    posts it a second time (why Flowbot posts through a client without that retry)."""
    fake.drop_after_store("chat.postMessage")
    WebClient(base_url=fake.api_url, token=fake.token).chat_postMessage(channel="C1", text="twice")
    assert [m["text"] for m in fake.messages("C1")] == ["twice", "twice"]
