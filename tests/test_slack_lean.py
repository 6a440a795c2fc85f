"""The lean Slack stand-in (bench/home_latency.py's) answers the real slack_sdk client as Slack does."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable, Iterator

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_lean import LeanSlack, Publish

VIEW = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*3 PRs* wait on you"}},
                                   {"type": "divider"}], "private_metadata": "v1"}


@pytest.fixture
def told() -> list[Publish]:
    return []


@pytest.fixture
def lean(told: list[Publish]) -> Iterator[LeanSlack]:
    with LeanSlack(on_publish=told.append) as running:
        yield running


def test_auth_test_answers_as_the_fake_slack_does(lean: LeanSlack) -> None:
    """auth.test names the same workspace, bot and scopes as FakeSlack (the workspace guard's check)."""
    with FakeSlack() as fake:
        expected = fake.client().auth_test()
    answer = WebClient(base_url=lean.api_url, token=lean.token).auth_test()
    assert answer.data == expected.data and answer["team_id"] == "T0FAKE"
    assert answer.headers["x-oauth-scopes"] == expected.headers["x-oauth-scopes"]


def test_views_publish_echoes_the_view_with_slacks_fields(lean: LeanSlack, told: list[Publish]) -> None:
    """views.publish, the view as a dict or as a JSON string, answers the whole view echoed with
    its id, team and hash, and tells who it was for, when it arrived and its block count."""
    client = WebClient(base_url=lean.api_url, token=lean.token)
    as_dict = client.views_publish(user_id="U1", view=VIEW)
    as_text = client.views_publish(user_id="U2", view=json.dumps(VIEW))  # type: ignore[arg-type]  # Slack's own form
    for answer in (as_dict, as_text):
        view = answer["view"]
        assert {k: view[k] for k in VIEW} == VIEW
        assert view["team_id"] == "T0FAKE" and view["id"].startswith("V") and view["hash"]
    assert as_dict["view"]["id"] != as_text["view"]["id"]
    assert [(p.user, p.ok, p.blocks) for p in told] == [("U1", True, 2), ("U2", True, 2)]
    assert told[0].at <= told[1].at and json.loads(told[1].view) == VIEW


def test_form_encoded_publish_and_token_parameter(lean: LeanSlack, told: list[Publish]) -> None:
    """A form body with the token as a parameter (Slack's older form) is answered the same way."""
    answer = WebClient(base_url=lean.api_url).api_call(
        "views.publish", params={"token": lean.token, "user_id": "U3", "view": json.dumps(VIEW)})
    assert answer["view"]["blocks"] == VIEW["blocks"] and told[0].user == "U3"


def test_tokens_methods_and_views_refused_as_slack_does(lean: LeanSlack, told: list[Publish]) -> None:
    """A wrong token answers invalid_auth, none not_authed, a view not a Home one
    invalid_arguments, another method unknown_method; a refused publish is told as not ok."""
    cases: list[tuple[Callable[[], object], str]] = [
             (WebClient(base_url=lean.api_url, token="xoxb-wrong").auth_test, "invalid_auth"),
             (lambda: WebClient(base_url=lean.api_url).api_call("views.publish", json={"user_id": "U1", "view": VIEW}),
              "not_authed"),
             (lambda: WebClient(base_url=lean.api_url, token=lean.token).views_publish(
                 user_id="U1", view={"type": "modal", "blocks": []}), "invalid_arguments"),
             (lambda: WebClient(base_url=lean.api_url, token=lean.token).chat_postMessage(channel="C1", text="hi"),
              "unknown_method")]
    for call, error in cases:
        with pytest.raises(SlackApiError) as refused:
            call()
        assert refused.value.response["error"] == error
    assert [(p.user, p.ok) for p in told] == [("U1", False)]


def test_a_kept_alive_connection_carries_many_calls(lean: LeanSlack, told: list[Publish]) -> None:
    """One HTTP/1.1 connection kept open serves call after call (a server keeping Slack's open)."""
    conn = http.client.HTTPConnection("127.0.0.1", int(lean.url.rsplit(":", 1)[1]), timeout=5)
    body = json.dumps({"user_id": "U4", "view": json.dumps(VIEW)})
    for _ in range(3):
        conn.request("POST", "/api/views.publish", body=body,
                     headers={"Authorization": f"Bearer {lean.token}", "Content-Type": "application/json"})
        response = conn.getresponse()
        assert response.status == 200 and json.loads(response.read())["ok"] is True
    conn.close()
    assert [p.user for p in told] == ["U4"] * 3
