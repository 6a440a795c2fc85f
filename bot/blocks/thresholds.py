"""`/flow thresholds` and `/flow set`: the alert levels in force, and the audited changes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from bot.blocks import MAX_NAME, context, escape, fallback, header, number, section
from bot.blocks.frame import Message, person
from jobs.alert_rules import RULE_TITLES, RULE_UNITS
from jobs.settings import Thresholds


def render_thresholds(team: str, levels: Mapping[str, Thresholds], history: Sequence[Mapping[str, Any]],
                      *, now: datetime) -> Message:
    """One line per rule (its title, the id `/flow set` takes, warn / critical / clear with the
    rule's unit) and the latest changes with who and when."""
    lines = "\n".join(_level_line(rule, t) for rule, t in levels.items())
    blocks = [header(f"Alert thresholds: {team}"), section(lines)]
    if history:
        changes = "\n".join(_change(h) for h in history[:5])
        blocks.append(section(f"*Recent changes*\n{changes}"))
    blocks.append(context(f"Leads (or, in a team with none, members) change them with `/flow set THRESHOLD VALUE {escape(team, MAX_NAME)}` "
                          f"(`THRESHOLD` may end in `.critical` or `.clear`) · as of {now:%Y-%m-%d %H:%M} UTC"))
    return blocks, fallback(f"Alert thresholds for {escape(team, MAX_NAME)}")


def render_set(team: str, rule: str, level: str, old: float | None, new: float) -> Message:
    """The confirmation of a change."""
    before = "unset" if old is None else _amount(rule, old)
    title = escape(RULE_TITLES.get(rule, rule), MAX_NAME)
    text = (f":white_check_mark: *{escape(team, MAX_NAME)}* {title} `{escape(rule, 60)}.{escape(level, 20)}` is now "
            f"{_amount(rule, new)} (was {before}).")
    return [section(text)], fallback(text)


def _amount(rule: str, value: object) -> str:
    """``8 working h``: a level with its rule's unit; anything not a number, escaped as is."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{number(float(value))} {escape(RULE_UNITS.get(rule, ''))}".rstrip()
    return "unset" if value is None else escape(value, 40)


def _level_line(rule: str, t: Thresholds) -> str:
    title = escape(RULE_TITLES.get(rule, rule), MAX_NAME)
    return (f"• *{title}* `{escape(rule, 60)}`: warn {_amount(rule, t.warn)} · critical "
            f"{_amount(rule, t.critical)} · clears below {_amount(rule, t.clear_level)}")


def _change(entry: Mapping[str, Any]) -> str:
    """A change: who made it as a Slack mention (a user id), else the escaped name stored."""
    who_text = person(entry.get("who", "someone"))
    rule = str(entry.get("rule", "?"))
    return (f"• `{escape(rule, 60)}.{escape(entry.get('level', 'warn'), 20)}` "
            f"{_amount(rule, entry.get('old'))} → {_amount(rule, entry.get('new'))} by {who_text}, "
            f"{escape(str(entry.get('at', ''))[:16].replace('T', ' '), 16)} UTC")
