"""Threshold overrides from `/flow set`, and `/flow` through Bolt as Socket Mode delivers it."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import parse_qsl

import pytest
from slack_bolt.request import BoltRequest

from bot.app import BotDeps, create_app
from jobs.alerts import effective_thresholds as alerts_view
from jobs.overrides import InvalidThreshold, effective_thresholds, set_threshold, threshold_history
from jobs.ports import FixedClock
from jobs.store import Store
from tests.factories import T0, snapshot
from tests.fakes.slack_api import FakeSlack, iter_blocks_text
from tests.slack_helpers import BOB, LEAD, settings, slash_body


def test_override_layers_on_config_and_is_audited(store: Store) -> None:
    """A lead's change wins over config, keeps the other levels, and is logged with who and when."""
    s = settings()
    change = set_threshold(s, store, "platform", "queue_length", 30, level="critical", who=LEAD, now=T0)
    assert (change.old, change.new) == (20, 30)
    levels = effective_thresholds(s, store, "platform")
    assert (levels["queue_length"].warn, levels["queue_length"].critical) == (10, 30)
    assert effective_thresholds(s, store, "web")["queue_length"].critical == 20  # other teams untouched
    assert alerts_view(s, store, "platform")["queue_length"].critical == 30  # what the alerts read
    [entry] = threshold_history(store, "platform")
    assert entry["who"] == LEAD and entry["rule"] == "queue_length" and entry["at"].startswith("2026-03-02")


@pytest.mark.parametrize(
    ("rule", "value", "level", "message"),
    [
        ("queue_lenght", 5, "warn", "unknown threshold"),
        ("queue_length", 5, "loud", "unknown level"),
        ("queue_length", 0, "warn", "must be more than 0 and at most 1000 PRs"),
        ("queue_length", 50, "warn", "critical"),  # warn above critical
    ],
)
def test_inconsistent_override_is_refused(store: Store, rule: str, value: float, level: str, message: str) -> None:
    """Typos and levels that contradict each other are refused with the reason, and nothing is stored."""
    with pytest.raises(InvalidThreshold, match=message):
        set_threshold(settings(), store, "platform", rule, value, level=level, who=LEAD, now=T0)  # type: ignore[arg-type]
    assert threshold_history(store, "platform") == []


def test_socket_mode_request_through_bolt(store: Store, fake_slack: FakeSlack) -> None:
    """A Socket Mode slash command (unsigned, as the socket delivers it) is answered by the same app."""
    store.put_snapshot(snapshot())
    deps = BotDeps(settings=settings(), store=store, clock=FixedClock(T0 + timedelta(minutes=10)))
    app = create_app(deps, mode="socket", client=fake_slack.client())
    body = dict(parse_qsl(slash_body("reviewers", user=BOB).decode()))
    response = app.dispatch(BoltRequest(body=body, mode="socket_mode"))
    assert response.status == 200
    payload = json.loads(response.body)
    assert "Reviewers: platform" in "\n".join(iter_blocks_text(payload["blocks"]))
