"""Review windows in Slack, over HTTP and Socket Mode: `/flow windows`, the App Home modal and
the DM's menu and buttons."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from slack_bolt import App
from slack_bolt.request import BoltRequest

from bot.app import BotDeps, create_app
from bot.blocks.windows import ITEM_ACTION, MODAL_ID, MUTE_ACTION, OPEN_ACTION, render_window_dm
from bot.home import home_view
from bot.web import build_web
from jobs.model import QueueItem
from jobs.ports import FixedClock
from jobs.store import Store
from jobs.window_dm import not_mine_of
from jobs.windows import DmItem, WindowDM
from tests.factories import T0, event, pr, snapshot
from tests.fakes.slack_api import FakeSlack, iter_blocks_text
from tests.slack_helpers import ALICE, BOB, OUTSIDER, SECRET, post, serve, settings, signed_headers, slash_body

NOW = T0 + timedelta(minutes=10)  # Monday 10:10 in Berlin


@dataclass
class Driver:
    """Sends what Slack sends, over HTTP (signed, through the WSGI front) or Socket Mode."""

    mode: str
    fake: FakeSlack
    store: Store
    clock: FixedClock
    app: App | None = None
    url: str = ""

    def _send(self, body: dict[str, Any], *, form: bool) -> tuple[int, str]:
        if self.mode == "socket":
            assert self.app is not None
            answer = self.app.dispatch(BoltRequest(body=body, mode="socket_mode"))
            return answer.status, answer.body
        raw = urlencode(body if form else {"payload": json.dumps(body)}).encode()
        got = post(self.url + "/slack/events", raw, signed_headers(raw, self.clock, secret=SECRET))
        return got.status, got.body.decode()

    def command(self, text: str, *, user: str = BOB) -> str:
        """`/flow TEXT`: every text of the acknowledgement."""
        status, body = self._send(dict(parse_qsl(slash_body(text, user=user).decode())), form=True)
        assert status == 200
        answer = json.loads(body)
        return "\n".join([answer.get("text", ""), *iter_blocks_text(answer.get("blocks", []))])

    def click(self, action: dict[str, Any], *, user: str, key: str) -> str:
        """A block action in a message; what the user was told through ``response_url``."""
        payload = {"type": "block_actions", "user": {"id": user}, "team": {"id": "T0FAKE"},
                   "api_app_id": "A0FLOWBOT", "container": {"type": "message"}, "channel": {"id": "D0BOB"},
                   "response_url": self.fake.response_url(key), "trigger_id": "1337.42.abcdef",
                   "message": {"type": "message", "text": "x", "ts": "1.2", "blocks": []},
                   "actions": [{"block_id": "b", "action_ts": "1.3", **action}]}
        status, _ = self._send(payload, form=False)
        assert status == 200
        if action["action_id"] == OPEN_ACTION:
            return ""
        assert self.fake.wait_for_response(key, timeout=10)
        return json.dumps(self.fake.responses(key)[-1])

    def submit(self, times: dict[str, str | None], *, user: str = BOB) -> dict[str, Any]:
        """Submit the windows modal with these picked times (block id -> HH:MM); Slack's answer."""
        values = {block: {"time": {"type": "timepicker", "selected_time": t}} for block, t in times.items()}
        payload = {"type": "view_submission", "user": {"id": user}, "team": {"id": "T0FAKE"},
                   "api_app_id": "A0FLOWBOT", "trigger_id": "1.2.3",
                   "view": {"id": "V1", "type": "modal", "callback_id": MODAL_ID, "blocks": [],
                            "state": {"values": values}}}
        status, body = self._send(payload, form=False)
        assert status == 200
        return json.loads(body) if body else {}


@pytest.fixture(params=["http", "socket"])
def driver(request: pytest.FixtureRequest, store: Store, fake_slack: FakeSlack) -> Iterator[Driver]:
    store.put_snapshot(snapshot())
    clock = FixedClock(NOW)
    deps = BotDeps(settings=settings(), store=store, clock=clock)
    if request.param == "socket":
        yield Driver("socket", fake_slack, store, clock, app=create_app(deps, mode="socket",
                                                                         client=fake_slack.client()))
        return
    with serve(build_web(deps, signing_secret=SECRET, client=fake_slack.client())) as url:
        yield Driver("http", fake_slack, store, clock, url=url)


def test_flow_windows_shows_sets_and_turns_off(driver: Driver) -> None:
    """`/flow windows` says they are off, sets up to three in the team's hours, refuses bad ones
    with what is wrong, and turns them off."""
    assert "Your review windows are *off*" in driver.command("windows")
    said = driver.command("windows 15:00-15:30 10:00-10:30")
    assert "Saved." in said and "10:00-10:30, 15:00-15:30 (Europe/Berlin)" in said and "chosen by you" in said
    assert "Next: Mon 02 Mar 15:00" in said  # it is 10:10 in Berlin: the morning one has started
    assert [w.label for w in driver.store.get_review_windows(["bob"])["bob"].windows] == ["10:00-10:30", "15:00-15:30"]
    bad = driver.command("windows 10-11")
    assert "`10-11` is not a window like `10:00-10:30`." in bad and "Usage:" in bad
    late = driver.command("windows 18:00-18:30")
    assert "Not changed: window 18:00-18:30 is outside the working hours 09:00-17:00" in late
    assert "overlap" in driver.command("windows 10:00-11:00 10:30-11:30")
    assert "at most 3" in driver.command("windows 09:00-09:10 10:00-10:10 11:00-11:10 12:00-12:10")
    assert "Your review windows are *off*" in driver.command("windows off")
    assert not driver.store.get_review_windows(["bob"])["bob"].on
    assert "not listed as a member" in driver.command("windows 10:00-10:30", user=OUTSIDER)


def test_app_home_modal_opens_validates_and_saves(driver: Driver) -> None:
    """App Home has the button; it opens the modal; mistakes come back as Slack's per-field
    errors; a good choice is saved and the Home tab is published again."""
    view = home_view(BotDeps(settings=settings(), store=driver.store, clock=driver.clock), BOB)
    buttons = [b["accessory"] for b in view["blocks"] if b.get("accessory", {}).get("action_id") == OPEN_ACTION]  # type: ignore[attr-defined]
    assert len(buttons) == 1
    driver.click(buttons[0], user=BOB, key="open")
    (opened,) = driver.fake.calls("views.open")
    modal = opened.params["view"]
    modal = json.loads(modal) if isinstance(modal, str) else modal
    assert modal["callback_id"] == MODAL_ID and len([b for b in modal["blocks"] if b["type"] == "input"]) == 6

    answer = driver.submit({"w1_start": "10:00", "w1_end": None, "w2_start": "18:00", "w2_end": "18:30",
                            "w3_start": "12:00", "w3_end": "11:00"})
    assert answer["response_action"] == "errors"
    assert set(answer["errors"]) == {"w1_end", "w2_start", "w3_end"}
    assert "working hours" in answer["errors"]["w2_start"]
    overlap = driver.submit({"w1_start": "10:00", "w1_end": "11:00", "w2_start": "10:30", "w2_end": "11:30"})
    assert overlap["errors"] == {"w2_start": "Overlaps window 1."}
    assert "bob" not in driver.store.get_review_windows(["bob"])

    assert driver.submit({"w1_start": "14:00", "w1_end": "14:30", "w2_start": "09:30", "w2_end": "10:00"}) == {}
    saved = driver.store.get_review_windows(["bob"])["bob"]
    assert saved.describe() == "09:30-10:00, 14:00-14:30 (Europe/Berlin)" and saved.changed_by == BOB
    assert driver.fake.wait_for_call("views.publish")
    assert "09:30-10:00, 14:00-14:30" in json.dumps(driver.fake.views()[BOB])
    assert driver.submit({}, user=OUTSIDER)["response_action"] == "errors"


def _dm() -> WindowDM:
    item = QueueItem(repo="acme/api", number=7, title="Fix <!channel> & co", url="https://github.com/acme/api/pull/7",
                     author="alice", turn="reviewer", waiting_on=("bob",), age_hours=20.0, age_business_hours=7.5,
                     size="M", ai_assisted=False)
    return WindowDM(kind="window", team="platform", login="bob", slack_id=BOB, at=NOW, window="10:00-10:30",
                    tz="Europe/Berlin", to_review=(DmItem(item, "asked of you", "green"),), as_author=(),
                    next_window=NOW + timedelta(hours=5), idempotency_key="window:bob:2026-03-02T10:00")


def test_dm_menu_snoozes_says_not_mine_and_mutes(driver: Driver) -> None:
    """The DM's menu snoozes a PR until the next window or takes it off the list (and `/flow why`
    says so); "mute today" mutes the day; someone on no team changes nothing."""
    driver.store.put_prs("acme/api", [pr(7, author="alice", events=(
        event("review_requested", 1.0, actor="alice", requested_reviewer="bob"),))])
    driver.command("windows 10:00-10:30 15:00-15:30")
    blocks, _ = render_window_dm(_dm())
    assert "Fix &lt;!channel&gt; &amp; co" in json.dumps(blocks) and "CI green" in json.dumps(blocks)
    (menu,) = [b["accessory"] for b in blocks if b.get("accessory", {}).get("action_id") == ITEM_ACTION]
    snooze, mine = menu["options"]
    said = driver.click({"type": "overflow", "action_id": ITEM_ACTION, "selected_option": snooze}, user=BOB, key="s")
    assert "until your next window (Mon 15:00)" in said
    until = driver.store.get_hash_json("windows-snooze", "bob")["acme/api#7"]
    assert datetime.fromisoformat(until) == datetime(2026, 3, 2, 14, 0, tzinfo=UTC)

    driver.click({"type": "overflow", "action_id": ITEM_ACTION, "selected_option": mine}, user=OUTSIDER, key="o")
    assert not_mine_of(driver.store, "acme/api", 7) == {}
    said = driver.click({"type": "overflow", "action_id": ITEM_ACTION, "selected_option": mine}, user=BOB, key="m")
    assert "off your list" in said and set(not_mine_of(driver.store, "acme/api", 7)) == {"bob"}
    assert "Marked *not mine* from a review-window DM by bob" in driver.command("why acme/api#7")

    (mute,) = [e for b in blocks if b["type"] == "actions" for e in b["elements"] if e["action_id"] == MUTE_ACTION]
    assert "Muted for today (Mon 02 Mar)" in driver.click(mute, user=BOB, key="u")
    assert driver.store.get_json("windows-mute", "bob", "2026-03-02") is not None
    forged = {"type": "overflow", "action_id": ITEM_ACTION, "selected_option": {"value": "notmine:<!here>#1"}}
    assert "older Flowbot" in driver.click(forged, user=BOB, key="f")


def test_alice_and_bob_change_only_their_own(driver: Driver) -> None:
    """One member's choice never touches another's."""
    driver.command("windows 10:00-10:30", user=ALICE)
    driver.command("windows 11:00-11:30", user=BOB)
    stored = driver.store.get_review_windows()
    assert stored["alice"].describe() == "10:00-10:30 (Europe/Berlin)"
    assert stored["bob"].describe() == "11:00-11:30 (Europe/Berlin)"
