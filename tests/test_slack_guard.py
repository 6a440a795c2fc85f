"""Who may change a team's alerting, and from which workspace: one rule for snooze,
acknowledge and `/flow set`, checked through the real Bolt app (Socket Mode dispatch)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl

import pytest
from slack_bolt import App
from slack_bolt.request import BoltRequest

from bot.app import BotDeps, create_app
from bot.blocks.alerts import render_alert
from bot.guard import OTHER_WORKSPACE, deciders
from jobs.model import Alert
from jobs.overrides import threshold_history
from jobs.ports import FixedClock
from jobs.store import Store
from tests.factories import T0, snapshot
from tests.fakes.slack_api import FakeSlack, iter_blocks_text
from tests.slack_helpers import ALICE, BOB, LEAD, OUTSIDER, settings, slash_body

DAN = "U0DAN0001"  # the one member of "web", a team with no leads
ACTIONS = ("snooze", "acknowledge", "set")
# (team, user, allowed): leads of a team that has them; members of one that has none.
CASES = [
    ("platform", LEAD, True),
    ("platform", BOB, False),  # a member, but the team has a lead
    ("platform", OUTSIDER, False),  # in no team
    ("platform", DAN, False),  # another team's member
    ("web", DAN, True),  # no leads: its members decide
    ("web", OUTSIDER, False),
    ("web", LEAD, False),  # another team's lead
]


@dataclass
class Bot:
    app: App
    store: Store
    fake: FakeSlack

    def command(self, text: str, *, user: str, team_id: str = "T0FAKE",
                app_id: str = "A0FLOWBOT") -> dict[str, Any]:
        """Dispatch a slash command as the socket delivers it; returns the acknowledgement."""
        body: dict[str, Any] = dict(parse_qsl(slash_body(text, user=user).decode()))
        body.update(team_id=team_id, api_app_id=app_id)
        response = self.app.dispatch(BoltRequest(body=body, mode="socket_mode"))
        assert response.status == 200
        return json.loads(response.body) if response.body else {}

    def click(self, action: str, *, team: str, user: str, team_id: str = "T0FAKE",
              app_id: str = "A0FLOWBOT") -> str:
        """Press an alert button of ``team``'s queue alert; returns what the user was told."""
        alert = Alert(team=team, rule="queue_length", severity="warn", value=12.0, threshold=10.0, unit="PRs",
                      message=f"Review queue length is above warning level for {team}: 12 PRs", at=T0,
                      idempotency_key="k", recipients=("C0",), episode="e1")
        blocks, text = render_alert(alert)
        action_id = "flow_alert_ack" if action == "acknowledge" else "flow_alert_snooze_day"
        (button,) = [e for b in blocks if b["type"] == "actions" for e in b["elements"]
                     if e["action_id"] == action_id]
        key = f"{action}-{team}-{user}-{team_id}-{app_id}"
        payload = {"type": "block_actions", "user": {"id": user, "team_id": team_id}, "team": {"id": team_id},
                   "api_app_id": app_id, "container": {"type": "message"}, "channel": {"id": "C0"},
                   "response_url": self.fake.response_url(key),
                   "message": {"type": "message", "text": text, "blocks": blocks, "ts": "1.2"},
                   "actions": [{**button, "block_id": "b", "action_ts": "1.3"}], "trigger_id": "1.2.3"}
        response = self.app.dispatch(BoltRequest(body=payload, mode="socket_mode"))
        assert response.status == 200
        replies = self.fake.responses(key)
        return json.dumps(replies[-1]) if replies else ""

    def changed(self, action: str, team: str) -> bool:
        """Whether the action left its mark in Redis."""
        if action == "set":
            return bool(threshold_history(self.store, team))
        kind = "ack" if action == "acknowledge" else "snooze"
        return self.store.get_json("alerts", team, kind, "queue_length") is not None


@pytest.fixture
def bot(store: Store, fake_slack: FakeSlack) -> Bot:
    store.put_snapshot(snapshot())
    deps = BotDeps(settings=settings(), store=store, clock=FixedClock(T0 + timedelta(minutes=10)))
    return Bot(create_app(deps, mode="socket", client=fake_slack.client()), store, fake_slack)


def _act(bot: Bot, action: str, team: str, user: str, **where: str) -> str:
    if action == "set":
        answer = bot.command(f"set pickup_p50_hours 8 {team}", user=user, **where)
        return str(answer.get("text", "")) + "\n".join(iter_blocks_text(answer.get("blocks", [])))
    return bot.click(action, team=team, user=user, **where)


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize(("team", "user", "allowed"), CASES)
def test_one_rule_decides_snooze_acknowledge_and_set(bot: Bot, action: str, team: str, user: str,
                                                     allowed: bool) -> None:
    """Leads change their team's alerting; a team with no leads is changed by its members; nobody else."""
    told = _act(bot, action, team, user)
    assert bot.changed(action, team) is allowed, told
    if not allowed:
        who = "leads" if team == "platform" else "members"
        assert f"only the {who} of *{team}*" in told


def test_the_rule_names_its_deciders() -> None:
    """The deciders are a team's leads, else its members with a Slack ID; none for an unknown team."""
    s = settings()
    assert deciders(s, "platform") == (LEAD,)
    assert deciders(s, "web") == (DAN,)
    assert deciders(s, "nope") == ()
    assert ALICE not in deciders(s, "platform")


@pytest.mark.parametrize("action", ACTIONS)
def test_another_workspace_is_refused_for_every_action(bot: Bot, action: str) -> None:
    """A lead's request from another workspace changes nothing and is told why (commands) or ignored (clicks)."""
    told = _act(bot, action, "platform", LEAD, team_id="T0ELSEWHERE")
    assert not bot.changed(action, "platform")
    if action == "set":
        assert told.startswith(OTHER_WORKSPACE)


@pytest.mark.parametrize("action", ACTIONS)
def test_another_app_is_refused_for_every_action(bot: Bot, action: str) -> None:
    """Once the app is known, a request naming another app id changes nothing."""
    bot.command("help", user=BOB)  # the first request from the installed workspace pins the app
    _act(bot, action, "platform", LEAD, app_id="A0IMPOSTOR")
    assert not bot.changed(action, "platform")
    _act(bot, action, "platform", LEAD)
    assert bot.changed(action, "platform")


def test_another_workspace_reads_nothing_and_cannot_share(bot: Bot) -> None:
    """`/flow status share` from another workspace gets the refusal, ephemeral, with none of the team's data."""
    answer = bot.command("status platform share", user=BOB, team_id="T0ELSEWHERE")
    assert answer == {"response_type": "ephemeral", "text": OTHER_WORKSPACE}
    same = bot.command("status platform share", user=BOB)
    assert same["response_type"] == "in_channel" and "Flow status: platform" in json.dumps(same)
