"""Threshold alerts: fire once, escalate, recover once, respect snoozes, quiet hours and budgets."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest

from jobs import alerts
from jobs.alerts import AlertEngine, Reading, RuleState, list_alerts, read_rules
from jobs.model import Alert, Digest, FlowDay, QueueSample, TeamSnapshot
from jobs.settings import Settings, Thresholds
from jobs.store import Store
from jobs.worktime import WorkCalendar
from tests.factories import T0, snapshot

LEAD = "U0LEAD001"
LEADS_CHANNEL = "C0LEADS01"


@dataclass
class Recorder:
    """A Deliver that records what it was asked to post (and can refuse on request)."""

    alerts: list[Alert] = field(default_factory=list)
    refuse: bool = False

    def alert(self, alert: Alert) -> bool:
        if self.refuse:
            return False
        self.alerts.append(alert)
        return True

    def digest(self, digest: Digest) -> bool:  # pragma: no cover - not used here
        return True

    def kinds(self) -> list[tuple[str, str, bool]]:
        return [(a.rule, a.severity, a.recovered) for a in self.alerts]


def settings(**alert_overrides: Any) -> Settings:
    return Settings.model_validate(
        {
            "github": {"organisation": "acme"},
            "teams": {
                "platform": {
                    "members": [{"github": "alice"}],
                    "repositories": ["api"],
                    "channel": "C0TEAM001",
                    "leads": [LEAD],
                    "leads_channel": LEADS_CHANNEL,
                    "timezone": "UTC",
                }
            },
            "alerts": {"cooldown_hours": 4, **alert_overrides},
        }
    )


def calm(*, queue: int = 2, oldest: float = 2.0, at: datetime = T0, **kw: Any) -> TeamSnapshot:
    """The factory snapshot with every rule below its warning level except what is passed."""
    sample = QueueSample(at=at, reviewer=queue, author=0, ci=0, approved=0,
                         oldest_hours=oldest, oldest_business_hours=oldest)
    base: dict[str, Any] = {"queue": sample, "queue_items": (), "reviewers": (), "workflows": (), "flow": ()}
    base.update(kw)
    return snapshot(**base)


def engine(store: Store, rec: Recorder, **alert_overrides: Any) -> AlertEngine:
    return AlertEngine(settings(**alert_overrides), store, rec)


def run(eng: AlertEngine, snap: TeamSnapshot, hours: float) -> alerts.EvaluationReport:
    """Evaluate at T0 + ``hours`` on ``snap`` as freshly synced data."""
    now = T0 + timedelta(hours=hours)
    return eng.evaluate("platform", now=now, snapshot=replace(snap, data_as_of=now))


def test_breach_posts_once_to_leads_dm_and_channel(store: Store) -> None:
    """A queue above its warning level is posted once, to the lead's DM and the leads channel."""
    rec = Recorder()
    eng = engine(store, rec)
    for h in (0.0, 0.25, 0.5, 1.0):
        run(eng, calm(queue=12), h)
    assert rec.kinds() == [("queue_length", "warn", False)]
    assert rec.alerts[0].recipients == (LEAD, LEADS_CHANNEL)
    assert rec.alerts[0].idempotency_key.startswith("alert:platform:queue_length:")
    assert "12 PRs" in rec.alerts[0].message


def test_escalation_to_critical_is_posted_once(store: Store) -> None:
    """A warning that reaches the critical level is posted again, once, as critical."""
    rec = Recorder()
    eng = engine(store, rec)
    run(eng, calm(queue=12), 0)
    run(eng, calm(queue=25), 0.5)
    run(eng, calm(queue=26), 1.0)
    run(eng, calm(queue=12), 1.5)  # severity never drops inside an episode
    assert rec.kinds() == [("queue_length", "warn", False), ("queue_length", "critical", False)]
    assert rec.alerts[0].episode == rec.alerts[1].episode


def test_recovery_needs_the_clear_level_and_is_posted_once(store: Store) -> None:
    """Dropping just under the threshold is not a recovery; below the clear level posts one notice."""
    rec = Recorder()
    eng = engine(store, rec)
    run(eng, calm(queue=12), 0)
    run(eng, calm(queue=9), 0.5)  # below warn (10), above clear (8): still active
    assert len(rec.alerts) == 1
    run(eng, calm(queue=5), 1.0)
    run(eng, calm(queue=4), 1.5)
    assert rec.kinds() == [("queue_length", "warn", False), ("queue_length", "warn", True)]
    assert "recovered" in rec.alerts[1].message


def test_nothing_is_posted_while_snoozed(store: Store) -> None:
    """Snoozed for a day: no reminder, no escalation, no recovery; the day over, reminders resume."""
    rec = Recorder()
    eng = engine(store, rec)
    run(eng, calm(queue=12), 0)
    alerts.snooze(store, "platform", "queue_length", "day", now=T0, by=LEAD)
    for h in (5, 9, 13):
        run(eng, calm(queue=30), h)  # would escalate
    assert len(rec.alerts) == 1
    assert [a.status for a in list_alerts(store, "platform", now=T0 + timedelta(hours=13))] == ["snoozed"]
    run(eng, calm(queue=30), 24 + 1)  # Tuesday 10:00, snooze over
    assert rec.kinds()[-1] == ("queue_length", "critical", False)


def test_unreadable_snooze_or_ack_neither_stops_alerts_nor_the_list(store: Store) -> None:
    """A snooze or acknowledgement record that cannot be read is ignored, not a crash."""
    rec = Recorder()
    store.set_json("alerts", "platform", "snooze", "queue_length", value={"mode": "day", "at": "?"})
    store.set_json("alerts", "platform", "ack", "queue_length", value=["not", "a", "record"])
    run(engine(store, rec), calm(queue=12), 0)
    assert rec.kinds() == [("queue_length", "warn", False)]
    assert [a.status for a in list_alerts(store, "platform", now=T0)] == ["active"]


def test_snooze_until_recovery_ends_at_recovery(store: Store) -> None:
    """'Until it recovers' silences reminders, then the recovery is told and the snooze is gone."""
    rec = Recorder()
    eng = engine(store, rec)
    run(eng, calm(queue=12), 0)
    alerts.snooze(store, "platform", "queue_length", "recovery", now=T0, by=LEAD)
    run(eng, calm(queue=25), 5)
    assert len(rec.alerts) == 1
    run(eng, calm(queue=3), 6)
    assert rec.kinds()[-1] == ("queue_length", "warn", True)
    run(eng, calm(queue=12), 7)  # a later episode is not silenced any more (cooldown aside)
    assert store.get_json("alerts", "platform", "snooze", "queue_length") is None


def test_outside_working_hours_held_and_sent_at_next_opening(store: Store) -> None:
    """A breach at night is not posted; it is listed as held and posted when work starts."""
    rec = Recorder()
    eng = engine(store, rec)
    night = 12.0  # Monday 21:00 UTC
    report = run(eng, calm(queue=12), night)
    assert rec.alerts == [] and report.held == ("queue_length",)
    held = list_alerts(store, "platform", now=T0 + timedelta(hours=night))
    assert held[0].status == "held"
    assert held[0].held_until == datetime(2026, 3, 3, 9, 0, tzinfo=timezone.utc)
    run(eng, calm(queue=12), 20)  # 05:00 Tuesday: still quiet
    assert rec.alerts == []
    run(eng, calm(queue=12), 24.0)  # 09:00 Tuesday
    assert rec.kinds() == [("queue_length", "warn", False)]
    assert rec.alerts[0].at == datetime(2026, 3, 3, 9, 0, tzinfo=timezone.utc)


def test_weekend_recovery_is_told_on_monday(store: Store) -> None:
    """A recovery on Saturday is held to Monday's opening, and told only once then."""
    rec = Recorder()
    eng = engine(store, rec)
    run(eng, calm(queue=12), 4 * 24)  # Friday 09:00
    saturday = 5 * 24 + 3
    run(eng, calm(queue=2), saturday)
    assert len(rec.alerts) == 1
    run(eng, calm(queue=2), 7 * 24)  # Monday 09:00
    run(eng, calm(queue=2), 7 * 24 + 1)
    assert rec.kinds() == [("queue_length", "warn", False), ("queue_length", "warn", True)]


def test_reminders_come_every_three_days_and_acknowledge_stops_them(store: Store) -> None:
    """A lasting breach is repeated after three days, not every cycle or day; an ack stops it."""
    rec = Recorder()
    eng = engine(store, rec)
    for h in (0, 1, 24, 48, 71.9):
        run(eng, calm(queue=12), h)
    assert len(rec.alerts) == 1
    run(eng, calm(queue=12), 72.0)  # Thursday 09:00, inside working hours
    assert len(rec.alerts) == 2 and "still" in rec.alerts[1].message
    assert rec.alerts[1].idempotency_key != rec.alerts[0].idempotency_key
    alerts.acknowledge(store, "platform", "queue_length", now=T0 + timedelta(hours=72), by=LEAD)
    for h in (96, 144, 168):
        run(eng, calm(queue=12), h)
    assert len(rec.alerts) == 2
    assert list_alerts(store, "platform")[0].acknowledged_by == LEAD


def test_reminders_can_be_turned_off(store: Store) -> None:
    """With remind_every_hours = 0 a lasting breach is told once; only changes are posted."""
    rec = Recorder()
    eng = engine(store, rec, remind_every_hours=0)
    for h in (0, 24, 48, 72):
        run(eng, calm(queue=12), h)
    assert len(rec.alerts) == 1
    run(eng, calm(queue=25), 73)
    assert [a.severity for a in rec.alerts] == ["warn", "critical"]


def test_flapping_rule_waits_out_the_cooldown(store: Store) -> None:
    """A rule that recovers and breaches again within the cooldown posts its new alert after it."""
    rec = Recorder()
    eng = engine(store, rec)
    run(eng, calm(queue=12), 0)
    run(eng, calm(queue=2), 0.5)
    run(eng, calm(queue=12), 1)
    run(eng, calm(queue=12), 3)
    assert rec.kinds() == [("queue_length", "warn", False), ("queue_length", "warn", True)]
    run(eng, calm(queue=12), 4)
    assert rec.kinds()[-1] == ("queue_length", "warn", False)
    assert rec.alerts[-1].episode != rec.alerts[0].episode


def test_noise_budget_folds_alerts_into_one_summary(store: Store) -> None:
    """Past the weekly budget a recipient gets one summary instead of each further alert."""
    rec = Recorder()
    eng = engine(store, rec, weekly_noise_budget=2, deliver_to="channel")
    loud = snapshot(queue=QueueSample(at=T0, reviewer=30, author=0, ci=0, approved=0,
                                      oldest_hours=50, oldest_business_hours=45))
    report = run(eng, loud, 0)
    rules = [a.rule for a in rec.alerts]
    assert rules.count("noise_budget") == 1
    assert len(rec.alerts) == 3  # two alerts within budget + one summary
    assert len(report.folded) >= 2
    run(eng, loud, 0.5)
    assert len(rec.alerts) == 3
    assert {a.rule for a in list_alerts(store, "platform")} >= {"queue_length", "ci_p90_minutes"}
    next_week = 7 * 24 + 1
    run(eng, loud, next_week)  # reminders in a new week get a new budget (and one summary)
    assert [a.rule == "noise_budget" for a in rec.alerts[3:]] == [False, False, True]


def test_a_leads_flow_set_override_moves_the_threshold(store: Store) -> None:
    """After a lead raises the queue warning to 15 with /flow set, a queue of 12 raises nothing."""
    from jobs.overrides import set_threshold

    set_threshold(settings(), store, "platform", "queue_length", 15, level="warn", who=LEAD, now=T0)
    rec = Recorder()
    run(engine(store, rec), calm(queue=12), 0)
    assert rec.alerts == []
    run(engine(store, rec), calm(queue=16), 1)
    assert rec.kinds() == [("queue_length", "warn", False)]


def test_state_survives_a_restart(store: Store) -> None:
    """A new engine (a restarted worker) on the same Redis does not post the same alert again."""
    rec = Recorder()
    run(engine(store, rec), calm(queue=12), 0)
    run(engine(store, rec), calm(queue=12), 1)
    assert len(rec.alerts) == 1


def test_stale_data_raises_no_alert(store: Store) -> None:
    """When GitHub data is hours old (sync failing), alerts wait instead of paging on old news."""
    rec = Recorder()
    eng = engine(store, rec)
    now = T0 + timedelta(hours=5)
    report = eng.evaluate("platform", now=now, snapshot=calm(queue=30))  # data from T0 - 7 min
    assert rec.alerts == [] and "old" in report.skipped
    run(eng, calm(queue=30), 5)
    assert rec.kinds() == [("queue_length", "critical", False)]


def test_failed_delivery_is_retried_next_evaluation(store: Store) -> None:
    """When Slack refuses the post, the next evaluation tries again."""
    rec = Recorder(refuse=True)
    eng = engine(store, rec)
    assert run(eng, calm(queue=12), 0).failed
    rec.refuse = False
    run(eng, calm(queue=12), 0.25)
    assert rec.kinds() == [("queue_length", "warn", False)]


def test_readings_follow_the_snapshot() -> None:
    """Rule readings: queue length, busiest reviewer, slowest CI wait, growth days in a row."""
    cal = WorkCalendar.for_team(settings().teams["platform"])
    got = read_rules(snapshot(), calendar=cal, now=T0)
    assert got["queue_length"].value == 10
    assert got["oldest_waiting_hours"].value == 18.0
    assert got["requests_per_reviewer_day"].value == 7.0
    assert got["ci_p90_minutes"].value == 43.5  # integration: p90 queue 9.5 + p90 run 34
    assert got["pickup_p50_hours"].value == pytest.approx(4.05)
    # Feb 23-27: arrivals above completions on the 26th and 27th only (weekend skipped)
    assert got["queue_growth_days"].value == 2
    flow = tuple(FlowDay(day=date(2026, 2, 23) + timedelta(days=d), arrivals=5, completions=1)
                 for d in range(8))  # includes today (Mar 2), which is not complete
    assert read_rules(snapshot(flow=flow), calendar=cal, now=T0)["queue_growth_days"].value == 5


def test_state_round_trips_through_json() -> None:
    """Alert state written to Redis reads back the same."""
    state = RuleState("queue_length", active=True, severity="warn", episode="x", since=T0,
                      value=3.0, details=("a",), last_alert_at=T0, held_until=T0)
    assert RuleState.from_json(state.to_json()) == state


def test_step_is_pure_and_holds_outside_work() -> None:
    """The decision core says what is due without touching anything."""
    policy = alerts.Policy(cooldown=timedelta(hours=4))
    levels = Thresholds(warn=10, critical=20)
    state, notice = alerts.step(RuleState("queue_length"), Reading(15.0), levels, now=T0,
                                policy=policy, at_work=False, next_opening=T0 + timedelta(hours=9))
    assert notice is None and state.active and state.held_until == T0 + timedelta(hours=9)
    state, notice = alerts.step(state, Reading(15.0), levels, now=T0, policy=policy,
                                at_work=True, next_opening=None)
    assert notice is not None and notice.kind == "breach" and state.sent_severity is None


def test_snooze_and_acknowledge_buttons_reach_the_alert_state(store: Store, fake_slack: Any) -> None:
    """A lead's 'Snooze a week' click silences the rule; a non-lead's click is refused."""
    import json
    from urllib.parse import urlencode

    from bot.app import BotDeps
    from bot.blocks.alerts import render_alert
    from bot.web import build_web
    from jobs.ports import FixedClock
    from tests.slack_helpers import SECRET, post, serve, signed_headers

    rec = Recorder()
    eng = engine(store, rec)
    run(eng, calm(queue=12), 0)
    blocks, text = render_alert(rec.alerts[0])
    clock = FixedClock(T0 + timedelta(minutes=5))
    deps = BotDeps(settings=settings(), store=store, clock=clock)

    clicks = iter(range(1, 100))

    def click(action_id: str, user: str) -> tuple[int, str]:
        key = f"click{next(clicks)}"
        (button,) = [e for b in blocks if b["type"] == "actions" for e in b["elements"]
                     if e["action_id"] == action_id]
        payload = {"type": "block_actions", "user": {"id": user}, "team": {"id": "T0FAKE"},
                   "api_app_id": "A0FLOWBOT", "container": {"type": "message"},
                   "channel": {"id": LEADS_CHANNEL}, "response_url": fake_slack.response_url(key),
                   "message": {"type": "message", "text": text, "blocks": blocks, "ts": "1.2"},
                   "actions": [{**button, "block_id": "b", "action_ts": "1.3"}],
                   "trigger_id": "1.2.3"}
        body = urlencode({"payload": json.dumps(payload)}).encode()
        answer = post(url + "/slack/events", body, signed_headers(body, clock, secret=SECRET))
        assert fake_slack.wait_for_response(key, timeout=10)
        return answer.status, json.dumps(fake_slack.responses(key)[-1])

    with serve(build_web(deps, signing_secret=SECRET, client=fake_slack.client())) as url:
        status, reply = click("flow_alert_snooze_week", "U0OTHER01")
        assert status == 200 and "only the leads of *platform*" in reply
        assert list_alerts(store, "platform")[0].status == "active"
        status, reply = click("flow_alert_snooze_week", LEAD)
        assert "Snoozed for a week" in reply and '"replace_original": true' in reply
        (listed,) = list_alerts(store, "platform", now=clock.now())
        assert listed.status == "snoozed" and listed.snoozed and listed.snoozed.mode == "week"
        click("flow_alert_ack", LEAD)
        assert list_alerts(store, "platform")[0].acknowledged_by == LEAD
    run(eng, calm(queue=30), 48)
    assert len(rec.alerts) == 1
