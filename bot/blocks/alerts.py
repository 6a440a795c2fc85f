"""A threshold alert (or recovery notice, or noise-budget summary) as Block Kit.

The alert's message is plain text built by ``jobs.alerts``; its details may name PRs, logins
and workflows from GitHub, so everything is escaped here. Active alerts carry four buttons
(snooze a day, a week, until it recovers; acknowledge) that ``bot.alert_actions`` handles; the
button value names the team, rule and episode so a click silences exactly this alert.
"""

from __future__ import annotations

import json

from bot.blocks import (
    MAX_BUTTON_TEXT,
    MAX_BUTTON_VALUE,
    MAX_FALLBACK_TEXT,
    MAX_SECTION_TEXT,
    Block,
    context,
    escape,
    fallback,
    plain,
    section,
)
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
    blocks: list[Block] = [section(f"{icon} {escape(alert.message, MAX_SECTION_TEXT - 30)}")]
    if alert.details:
        blocks.append(context(*(escape(d, 1000) for d in alert.details[:5])))
    if not alert.recovered and alert.rule != SUMMARY_RULE and alert.episode and (actions := buttons(alert)):
        blocks.append(actions)
    return blocks, fallback(escape(alert.message, MAX_FALLBACK_TEXT))  # it already says "is critical", "recovered"...


def buttons(alert: Alert) -> Block | None:
    """The snooze/acknowledge actions block for an active alert (None when its value would not
    fit a button's 2,000 characters: a cut value could not name the alert)."""
    value = json.dumps({"team": alert.team, "rule": alert.rule, "episode": alert.episode},
                       separators=(",", ":"))
    if len(value) > MAX_BUTTON_VALUE:
        return None
    return {
        "type": "actions",
        "block_id": f"flow_alert:{alert.team}:{alert.rule}"[:255],
        "elements": [
            {
                "type": "button",
                "action_id": ACTION_PREFIX + name,
                "text": {"type": "plain_text", "text": plain(label, MAX_BUTTON_TEXT)},
                "value": value,
                **({"style": "primary"} if name == "ack" else {}),
            }
            for name, label in ACTIONS
        ],
    }


def handled(alert_text: str, note: str) -> Message:
    """The alert message after a lead acted on it: the buttons give way to who did what.

    Both texts are mrkdwn: escape what they quote before calling."""
    return [section(alert_text), context(note)], fallback(note)
