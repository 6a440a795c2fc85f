"""A threshold alert (or recovery notice, or noise-budget summary) as Block Kit.

The alert's message is plain text built by ``jobs.alerts``; its details may name PRs, logins
and workflows from GitHub, so everything is escaped here. Active alerts carry four buttons
(snooze a day, a week, until it recovers; acknowledge) that ``bot.alert_actions`` handles; the
button value names the team, rule and episode so a click silences exactly this alert.
"""

from __future__ import annotations

import json

from bot.blocks import Block, context, escape, fallback, section
from bot.blocks.frame import Message
from jobs.model import Alert

SUMMARY_RULE = "noise_budget"  # jobs.alerts.SUMMARY_RULE
ACTION_PREFIX = "flow_alert_"
ACTIONS: tuple[tuple[str, str], ...] = (
    ("snooze_day", "Snooze a day"),
    ("snooze_week", "Snooze a week"),
    ("snooze_recovery", "Until it recovers"),
    ("ack", "Acknowledge"),
)


def render_alert(alert: Alert) -> Message:
    """``(blocks, text)`` for one alert; ``text`` reads well alone (notifications, fallback): the
    message itself, which names the level, rather than a ``[warn]`` tag in front of it."""
    if alert.recovered:
        icon = ":white_check_mark:"
    elif alert.rule == SUMMARY_RULE:
        icon = ":mute:"
    else:
        icon = ":red_circle:" if alert.severity == "critical" else ":large_orange_circle:"
    blocks: list[Block] = [section(f"{icon} {escape(alert.message)}")]
    if alert.details:
        blocks.append(context(*(escape(d) for d in alert.details[:5])))
    if not alert.recovered and alert.rule != SUMMARY_RULE and alert.episode:
        blocks.append(buttons(alert))
    return blocks, fallback(alert.message)  # it already says "is critical", "recovered"...


def buttons(alert: Alert) -> Block:
    """The snooze/acknowledge actions block for an active alert."""
    value = json.dumps({"team": alert.team, "rule": alert.rule, "episode": alert.episode},
                       separators=(",", ":"))
    return {
        "type": "actions",
        "block_id": f"flow_alert:{alert.team}:{alert.rule}"[:255],
        "elements": [
            {
                "type": "button",
                "action_id": ACTION_PREFIX + name,
                "text": {"type": "plain_text", "text": label},
                "value": value,
                **({"style": "primary"} if name == "ack" else {}),
            }
            for name, label in ACTIONS
        ],
    }


def handled(alert_text: str, note: str) -> Message:
    """The alert message after a lead acted on it: the buttons give way to who did what."""
    return [section(alert_text), context(note)], fallback(note)
