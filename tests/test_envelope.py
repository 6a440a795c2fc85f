"""An event body decoded without its view (``bot.envelope``) decides as the whole body does:
Bolt's workspace and enterprise extraction, and the fast lane's App Home checks."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from slack_bolt.request.internals import extract_enterprise_id, extract_team_id

from bot.envelope import envelope

IDS = st.one_of(st.none(), st.sampled_from(["T0FAKE", "T0OTHER", "E0ORG", ""]), st.integers(0, 3))
TEAM = st.one_of(IDS, st.fixed_dictionaries({}, optional={"id": IDS, "enterprise_id": IDS, "domain": IDS}))
AUTH = st.fixed_dictionaries({}, optional={"team_id": IDS, "enterprise_id": IDS, "team": TEAM,
                                           "enterprise": TEAM, "user_id": IDS, "is_bot": st.booleans()})
VIEW = st.one_of(st.none(), st.fixed_dictionaries(
    {"blocks": st.lists(st.fixed_dictionaries({"type": st.just("section"), "text": st.text(max_size=20)}),
                        max_size=3)},
    optional={"app_installed_team_id": IDS, "team_id": IDS, "id": IDS, "hash": IDS}))
PARTS = {"team_id": IDS, "team": TEAM, "enterprise_id": IDS, "enterprise": TEAM,
         "authorizations": st.one_of(st.none(), st.lists(AUTH, max_size=2)), "user": st.one_of(IDS, AUTH)}
EVENT = st.fixed_dictionaries(
    {"type": st.sampled_from(["app_home_opened", "message", 7])},
    optional={**PARTS, "tab": st.sampled_from(["home", "messages", None]), "view": VIEW,
              "channel": IDS, "event_ts": IDS, "event": st.fixed_dictionaries({}, optional=PARTS)})
BODY = st.fixed_dictionaries(
    {"type": st.sampled_from(["event_callback", "url_verification", None])},
    optional={**PARTS, "api_app_id": IDS, "token": IDS, "event_id": IDS, "view": VIEW,
              "event": st.one_of(EVENT, IDS, st.lists(IDS, max_size=1)), "is_ext_shared_channel": st.booleans()})


def _read(body: dict[str, Any] | None) -> tuple[Any, ...]:
    """What the fast lane and Bolt's guard read of a body."""
    if body is None:
        return (None,)
    event = body.get("event")
    seen = (event.get("type"), event.get("tab", "home"), event.get("user")) if isinstance(event, dict) else event
    ids = []
    for extract in (extract_team_id, extract_enterprise_id):
        try:
            ids.append(extract(body))
        except (TypeError, AttributeError, KeyError) as err:  # Bolt's own, on odd shapes
            ids.append(type(err).__name__)
    return (body.get("type"), body.get("api_app_id"), seen, *ids)


@settings(max_examples=400, deadline=None)
@given(BODY)
def test_the_view_left_out_changes_nothing_read(body: dict[str, Any]) -> None:
    """For any envelope (keys present, absent or null, ids at every level Bolt looks), what is
    read of the body decoded without its views is what is read of the whole body."""
    raw = json.dumps(body).encode()
    assert _read(envelope(raw)) == _read(json.loads(raw))


def test_the_view_is_not_decoded() -> None:
    """The event's view keeps only the ids Bolt's extractors read, whatever else it holds."""
    raw = json.dumps({"type": "event_callback", "event": {"type": "app_home_opened", "user": "U1", "view": {
        "app_installed_team_id": "T1", "blocks": [{"type": "divider"}] * 50, "hash": "1.a"}}}).encode()
    assert envelope(raw) == {"type": "event_callback",
                             "event": {"type": "app_home_opened", "user": "U1", "view": {"app_installed_team_id": "T1"}}}


def test_not_an_object_or_not_json_is_none() -> None:
    """What Bolt could not read as an event is None, as the whole body's decoding gives."""
    assert envelope(b"[1, 2]") is None
    assert envelope(b'{"type": "event_callback",') is None
    assert envelope(b'{"a": NaN}') is None
