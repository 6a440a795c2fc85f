"""The alert buttons: snooze (a day, a week, until it recovers) and acknowledge.

Thin listeners: acknowledge the click, check the clicker may change the team's alerting (the
one rule in :func:`bot.guard.refusal`: its leads, or its members when it lists none), write the
snooze or acknowledgement through ``jobs.alerts`` and replace the buttons on the alert with who
did what. The next evaluation reads it from Redis. Whatever the button's value or an error
quotes is escaped before it is shown.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bot.blocks import context, escape, fallback
from bot.guard import SNOOZE, refusal
from jobs import alerts
from jobs.errors import FlowbotError

if TYPE_CHECKING:
    from slack_bolt import App

    from bot.app import BotDeps

log = logging.getLogger(__name__)

ALERT_ACTIONS = re.compile(r"^flow_alert_(snooze_(day|week|recovery)|ack)$")
_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")
SNOOZES: dict[str, alerts.SnoozeMode] = {
    "snooze_day": "day", "snooze_week": "week", "snooze_recovery": "recovery",
}
NOTES = {
    "snooze_day": "Snoozed for a day by {who}.",
    "snooze_week": "Snoozed for a week by {who}.",
    "snooze_recovery": "Snoozed by {who} until it recovers.",
    "ack": "Acknowledged by {who}: no more reminders for this one.",
}


def register(app: App, deps: BotDeps) -> None:
    """Listen for the four alert buttons (``bot.blocks.alerts.ACTIONS``)."""

    def on_alert_button(
        ack: Callable[[], None], body: dict[str, Any], action: dict[str, Any],
        respond: Callable[..., Any],
    ) -> None:
        ack()
        user = str(body.get("user", {}).get("id", ""))
        name = str(action.get("action_id", "")).removeprefix("flow_alert_")
        try:
            value = json.loads(action.get("value") or "{}")
            team, rule, episode = str(value["team"]), str(value["rule"]), str(value["episode"])
        except (ValueError, KeyError, TypeError):
            respond(response_type="ephemeral", replace_original=False,
                    text="This button is from an older Flowbot; use `/flow alerts` instead.")
            return
        refused = refusal(deps.settings, team, user, action=SNOOZE)
        if refused:
            respond(response_type="ephemeral", replace_original=False, text=refused)
            return
        now = deps.clock.now()
        try:
            if name == "ack":
                alerts.acknowledge(deps.store, team, rule, now=now, by=user, episode=episode)
            else:
                alerts.snooze(deps.store, team, rule, SNOOZES[name], now=now, by=user)
        except FlowbotError as err:
            respond(response_type="ephemeral", replace_original=False, text=f"Could not do that: {escape(err, 500)}")
            return
        who = f"<@{user}>" if _USER.match(user) else "someone"
        note = NOTES[name].format(who=who)
        blocks = [b for b in body.get("message", {}).get("blocks", []) if b.get("type") != "actions"]
        blocks.append(context(note))
        original = escape(_unescape(str(body.get("message", {}).get("text", ""))), 3000)
        respond(replace_original=True, blocks=blocks, text=fallback(f"{original} ({note})"))

    app.action(ALERT_ACTIONS)(on_alert_button)


def _unescape(text: str) -> str:
    """Slack's copy of a message text, entities back to characters (to be escaped again)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
