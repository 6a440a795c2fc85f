"""`/flow alerts`: active, snoozed and recently recovered alerts (from ``jobs.alerts.list_alerts``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.blocks import (
    MAX_NAME,
    age,
    context,
    escape,
    fallback,
    header,
    lines_section,
    number,
    section,
    truncate_list,
)
from bot.blocks.frame import Message, person

STATUS_ICONS = {"active": ":rotating_light:", "held": ":hourglass:", "snoozed": ":zzz:",
                "recovered": ":white_check_mark:"}


def alert_line(status: Any, now: datetime) -> str:
    """One alert: icon, title, severity, value vs threshold, since when, who acknowledged it."""
    state = str(getattr(status, "status", "active"))
    title = escape(getattr(status, "title", None) or getattr(status, "rule", "alert"), MAX_NAME)
    line = f"{STATUS_ICONS.get(state, ':bell:')} *{title}*: {escape(state, 40)}"
    severity = getattr(status, "severity", None)
    if severity and state != "recovered":
        line += f" ({escape(severity, 40)})"
    value, threshold = getattr(status, "value", None), getattr(status, "threshold", None)
    unit = escape(getattr(status, "unit", "") or "", 40)
    if value is not None and threshold is not None:
        line += f" · {number(value)} {unit} vs threshold {number(threshold)} {unit}".rstrip()
    since = getattr(status, "recovered_at", None) if state == "recovered" else getattr(status, "since", None)
    if isinstance(since, datetime):
        ago = age(since, now).replace(" old", " ago")
        line += f" · {'recovered' if state == 'recovered' else 'since'} {ago}"
    snooze = getattr(status, "snoozed", None)
    until = getattr(snooze, "until", None)
    if state == "snoozed" and isinstance(until, datetime):
        line += f" until {until:%a %H:%M} UTC"
    acked = getattr(status, "acknowledged_by", None)
    if acked:
        line += f" · acknowledged by {person(acked)}"
    return line


def render_alert_list(team: str, statuses: Sequence[Any], *, now: datetime) -> Message:
    """The team's alerts, active first, or a line saying all is quiet."""
    blocks = [header(f"Alerts: {team}")]
    if statuses:
        blocks += lines_section(truncate_list([alert_line(s, now) for s in statuses], 30))
    else:
        blocks.append(section(":large_green_circle: No active, snoozed or recently recovered alerts."))
    blocks.append(context(f"as of {now:%Y-%m-%d %H:%M} UTC · thresholds: `/flow thresholds {escape(team, MAX_NAME)}`"))
    return blocks, fallback(f"{escape(team, MAX_NAME)}: {len(statuses)} alerts")
