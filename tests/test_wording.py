"""What digests and alerts say agrees with itself: who "they" are, why a recovery cleared
where it did, and why an unchanged queue is called growing."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from jobs.alert_rules import Notice, RuleState, build_alert
from jobs.digest_text import ai_text, queue_text
from jobs.model import QueueSample
from jobs.settings import Thresholds, WorkHours
from jobs.store import Store
from tests.factories import T0, snapshot
from tests.test_alerts import Recorder, calm, engine, run


def test_a_recovery_says_why_it_cleared_below_the_threshold() -> None:
    """"below 12.8 working h" with a 16 h threshold names the hysteresis: 80% of the warning level."""
    state = RuleState("oldest_waiting_hours", severity="warn", episode="e1", value=9.0, threshold=12.8)
    notice = Notice("recovery", "oldest_waiting_hours", "warn", "e1", "recovered")
    alert = build_alert("payments", state, notice, recipients=("U1",), now=T0,
                        levels=Thresholds(warn=16, critical=40))
    assert alert.message == (
        "Oldest waiting PR recovered for payments: 9 working h, below the clear level of 12.8"
        " working h (80% of the 16 working h warning level: an alert clears a little below where"
        " it fired, so a value hovering at the line does not flap).")
    configured = build_alert("payments", replace(state, threshold=10.0), notice, recipients=(), now=T0,
                             levels=Thresholds(warn=16, critical=40, clear=10))
    assert "below the clear level of 10 working h (the configured clear level; the warning level is 16" in (
        configured.message)


def test_the_alert_engine_posts_the_reason_with_the_recovery(store: Store) -> None:
    """The recovery the engine posts carries the levels it was evaluated against."""
    rec = Recorder()
    eng = engine(store, rec)
    run(eng, calm(queue=12), 0)
    run(eng, calm(queue=5), 1.0)
    assert "below the clear level of 8 PRs (80% of the 10 PRs warning level" in rec.alerts[-1].message


def test_the_ai_comparison_names_who_was_picked_up_faster() -> None:
    """"(they were picked up faster)" is gone: each comparison names whose PRs waited longer."""
    snap = snapshot()
    faster = replace(snap, pickup_ai=snap.pickup_other, pickup_other=snap.pickup_ai)
    assert "Other PRs waited 2.3x longer for a first review than AI-assisted ones" in ai_text(faster)
    assert "AI-assisted PRs waited 2.3x longer for a first review than the others" in ai_text(snap)
    assert "they were" not in ai_text(faster) + ai_text(snap)


def test_an_unchanged_queue_called_growing_says_why() -> None:
    """"A week ago: 12 (no change)" under "the queue is growing" explains the trend behind it."""
    snap = snapshot()
    assert snap.analysis.queue_growing
    start = T0 - timedelta(days=7)
    baseline = QueueSample(at=start, reviewer=snap.queue.reviewer, author=snap.queue.author,
                           ci=snap.queue.ci, approved=0, oldest_hours=1.0, oldest_business_hours=1.0)
    text = queue_text(snap, [baseline, snap.queue], baseline, start, WorkHours())
    assert (f"A week ago: {snap.queue.length} (no change; yet the week's samples trend upward and"
            " more PRs arrived than were reviewed, which is why it counts as growing).") in text
    calm_week = replace(snap, analysis=replace(snap.analysis, queue_growing=False))
    assert f"A week ago: {snap.queue.length} (no change)." in queue_text(
        calm_week, [baseline, snap.queue], baseline, start, WorkHours())
