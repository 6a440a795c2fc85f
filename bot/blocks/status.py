"""`/flow status`: a team's flow at a glance."""

from __future__ import annotations

from datetime import datetime

from bot.blocks import (
    MAX_NAME,
    MAX_SECTION_TEXT,
    clip,
    clock,
    divider,
    escape,
    fallback,
    fit,
    header,
    hours,
    minutes,
    number,
    percent,
    section,
)
from bot.blocks.frame import Message, footer
from jobs.model import Latency, TeamSnapshot

NO_MERGED = "n/a (no PRs merged in the window)"
AI_SPLIT_NAMES = {"pickup": "pickup", "approval": "approval", "merge": "merge", "lead": "lead time"}
STAGE_NAMES = {"coding": "coding", "pickup": "pickup wait", "review": "review", "merge": "merge wait"}


def latency_line(latency: Latency, *, p: str = "p50") -> str:
    """``6.5 working h (1.2 d)`` for one percentile of a latency (``n/a`` when unmeasured)."""
    return hours(getattr(latency.business, p), getattr(latency.calendar, p))


def queue_summary(snapshot: TeamSnapshot) -> str:
    """``10 waiting: 7 on reviewers · 2 on authors · 1 on CI; 2 approved``, oldest age."""
    q = snapshot.queue
    text = (f"*{q.length}* waiting: {q.reviewer} on reviewers · {q.author} on authors · "
            f"{q.ci} on CI; {q.approved} approved, waiting to merge")
    if q.oldest_hours is not None:
        text += f"\noldest: {clock(q.oldest_business_hours, q.oldest_hours)}"
    return text


def bottleneck(snapshot: TeamSnapshot) -> str:
    """The bottleneck (largest waiting stage), its share of the lead time, and whether it moved.

    Shares are of the lead time (first commit to merge, coding included), as everywhere else
    (docs/metrics.md "Stage shares"), so the headline and this field quote the same number the same way.
    """
    a = snapshot.analysis
    if a.dominant_stage is None:
        return "not enough merged PRs this week to tell"
    share = next((s.share_this_week for s in a.stage_shares if s.stage == a.dominant_stage), None)
    text = f"*{STAGE_NAMES[a.dominant_stage]}* ({percent(share)} of lead time)"
    if a.shifted and a.previous_dominant_stage:
        text += f", moved from {STAGE_NAMES[a.previous_dominant_stage]}"
    if a.queue_growing:
        text += f"\nqueue growing: {a.arrivals_per_day:.1f} PRs/day in, {a.completions_per_day:.1f} PRs/day out"
    return text


def ai_split_lines(snapshot: TeamSnapshot) -> str:
    """Compact AI split, p50 in working hours, one line per latency metric (docs/metrics.md
    "AI split"): ``pickup 6.3 vs 2.7 h (2.3x)``; a metric one side has no PRs for reads ``n/a``."""
    if not snapshot.ai_assisted_count:
        return "no AI-assisted PRs merged in the window"
    lines = []
    for metric, ai, other in snapshot.ai_split():
        a, o = ai.business.p50, other.business.p50
        if a is None or o is None:
            lines.append(f"{AI_SPLIT_NAMES[metric]} n/a")
            continue
        ratio = f" ({a / o:.1f}x)" if o > 0 else ""
        lines.append(f"{AI_SPLIT_NAMES[metric]} {number(a)} vs {number(o)} h{ratio}")
    return "\n".join(lines)


def render_status(snapshot: TeamSnapshot, *, now: datetime, unavailable: bool = False) -> Message:
    """The status message: queue, pickup p50/p90, merge, CI p90, focus-hours, bottleneck, the
    AI split of the four latency metrics, age."""
    ci = snapshot.workflows[0] if snapshot.workflows else None
    ci_text = (f"{escape(ci.name, MAX_NAME)}: run p90 {minutes(ci.run_p90_min)}" if ci else "no CI runs seen")
    pickup = (f"{latency_line(snapshot.pickup)}\n{latency_line(snapshot.pickup, p='p90')}"
              if snapshot.pickup.calendar.count else NO_MERGED)
    focus = (f"about {number(snapshot.focus_hours_week)} focus-hours to review interruptions"
             if snapshot.focus_hours_week else "none: no review requests this week")
    fields = [
        f"*Queue*\n{queue_summary(snapshot)}",
        f"*Pickup wait* p50 / p90\n{pickup}",
        f"*Time to merge* p50\n{latency_line(snapshot.merge) if snapshot.merge.calendar.count else NO_MERGED}",
        f"*Slowest CI* p90\n{ci_text}",
        f"*Focus lost this week*\n{focus}",
        f"*Bottleneck*\n{bottleneck(snapshot)}",
        f"*AI-assisted vs other* p50, working h\n{ai_split_lines(snapshot)}",
    ]
    blocks = [header(f"Flow status: {snapshot.team}")]
    if snapshot.analysis.headline:
        blocks.append(section(escape(snapshot.analysis.headline, MAX_SECTION_TEXT)))
    blocks.append(section(f"{snapshot.merged_count} PRs merged in the last {snapshot.window_days} days",
                          fields=fields))
    action = snapshot.analysis.action
    if action is not None:
        blocks += [divider(), section(clip(f":bulb: *Try:* {escape(action.text, 1400)}\n_{escape(action.because, 1400)}_",
                                           MAX_SECTION_TEXT))]
    blocks.append(footer(snapshot, now, unavailable=unavailable))
    q = snapshot.queue
    text = (f"{escape(snapshot.team, MAX_NAME)}: {q.length} PRs waiting ({q.reviewer} on reviewers), pickup wait p50 "
            f"{latency_line(snapshot.pickup)}, time to merge p50 {latency_line(snapshot.merge)}")
    return fit(blocks), fallback(text)
