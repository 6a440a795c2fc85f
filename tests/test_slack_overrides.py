"""Threshold overrides from `/flow set`, and `/flow` through Bolt as Socket Mode delivers it."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
from slack_bolt.request import BoltRequest

from bot.app import BotDeps, create_app
from bot.config import load
from jobs.alerts import effective_thresholds as alerts_view
from jobs.errors import ConfigError
from jobs.overrides import (
    InvalidThreshold,
    effective_thresholds,
    set_threshold,
    threshold_history,
)
from jobs.ports import FixedClock
from jobs.settings import RULE_THRESHOLDS
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


def _said(store: Store, fake_slack: FakeSlack, text: str, *, user: str = LEAD) -> str:
    deps = BotDeps(settings=settings(), store=store, clock=FixedClock(T0))
    app = create_app(deps, mode="socket", client=fake_slack.client())
    body = dict(parse_qsl(slash_body(text, user=user).decode()))
    payload = json.loads(app.dispatch(BoltRequest(body=body, mode="socket_mode")).body)
    return "\n".join(iter_blocks_text(payload["blocks"]))


@pytest.mark.parametrize(("value", "said"), [
    ("1e308", "`pickup_p50_hours.critical` must be more than 0 and at most 500 working h (got 1e+308)"),
    ("1e309", "`pickup_p50_hours.critical` must be more than 0 and at most 500 working h"),
    ("nan", "must be a finite number"),
    ("-3", "must be more than 0 and at most 500 working h (got -3)"),
])
def test_slack_refuses_levels_outside_the_rules_range(store: Store, fake_slack: FakeSlack, value: str,
                                                      said: str) -> None:
    """`/flow set` of a huge, infinite, NaN or negative level is refused with the rule's range; nothing stored."""
    text = _said(store, fake_slack, f"set pickup_p50_hours.critical {value} platform")
    assert said in text.replace("pickup_p50_hours.critical must", "`pickup_p50_hours.critical` must")
    assert threshold_history(store, "platform") == []


@pytest.mark.parametrize("rule", sorted(RULE_THRESHOLDS))
def test_each_rule_accepts_its_top_and_refuses_above(store: Store, rule: str) -> None:
    """Every rule takes a level up to its HIGH and refuses anything above, naming the range."""
    high = RULE_THRESHOLDS[rule].HIGH
    set_threshold(settings(), store, "platform", rule, high, level="critical", who=LEAD, now=T0)
    with pytest.raises(InvalidThreshold, match=f"at most {high:g} "):
        set_threshold(settings(), store, "platform", rule, high * 1.01, level="critical", who=LEAD, now=T0)
    assert effective_thresholds(settings(), store, "platform")[rule].critical == high


def test_config_refuses_infinity_and_huge_levels_with_key_path(tmp_path: Path) -> None:
    """`critical = 1e309` (TOML's infinity) and `1e308` in config are refused with the key path and the range."""
    example = Path(__file__).parents[1] / "config.example.toml"
    text = example.read_text(encoding="utf-8")
    for table, old, new in (("pickup_p50_hours", "critical = 16", "critical = 1e309"),
                            ("ci_p90_minutes", "critical = 40", "critical = 1e308")):
        head, _, tail = text.partition(f"[alerts.thresholds.{table}]")
        text = head + f"[alerts.thresholds.{table}]" + tail.replace(old, new, 1)
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load(path, env={})
    problems = "\n".join(caught.value.problems)
    assert "alerts.thresholds.pickup_p50_hours.critical: must be more than 0 and at most 500 working h (got inf)" \
        in problems
    assert "alerts.thresholds.ci_p90_minutes.critical: must be more than 0 and at most 1440 min (got 1e+308)" \
        in problems


def test_a_stored_level_outside_the_range_is_ignored(store: Store) -> None:
    """An override stored before ranges existed (1e308) no longer applies; the config level does."""
    store.set_json("overrides", "platform", value={"pickup_p50_hours": {"critical": 1e308}}, ttl=timedelta(days=1))
    assert effective_thresholds(settings(), store, "platform")["pickup_p50_hours"].critical == 16
