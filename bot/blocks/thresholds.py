"""`/flow thresholds` and `/flow set`: the alert levels in force, and the audited changes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from bot.blocks import context, escape, fallback, header, section
from bot.blocks.frame import Message
from jobs.settings import Thresholds


def render_thresholds(team: str, levels: Mapping[str, Thresholds], history: Sequence[Mapping[str, Any]],
                      *, now: datetime) -> Message:
    """One line per rule (warn / critical / clear) and the latest changes with who and when."""
    lines = "\n".join(
        f"• `{escape(rule)}`: warn {t.warn:g} · critical {t.critical:g} · clears below {t.clear_level:g}"
        for rule, t in levels.items()
    )
    blocks = [header(f"Alert thresholds: {team}"), section(lines)]
    if history:
        changes = "\n".join(_change(h) for h in history[:5])
        blocks.append(section(f"*Recent changes*\n{changes}"))
    blocks.append(context(f"Leads change them with `/flow set THRESHOLD VALUE {escape(team)}` "
                          f"(`THRESHOLD` may end in `.critical` or `.clear`) · as of {now:%Y-%m-%d %H:%M} UTC"))
    return blocks, fallback(f"Alert thresholds for {team}")


def render_set(team: str, rule: str, level: str, old: float | None, new: float) -> Message:
    """The confirmation of a change."""
    before = "unset" if old is None else f"{old:g}"
    text = f":white_check_mark: *{escape(team)}* `{escape(rule)}.{escape(level)}` is now {new:g} (was {before})."
    return [section(text)], fallback(text)


def _change(entry: Mapping[str, Any]) -> str:
    who = str(entry.get("who", "someone"))
    who_text = escape(who)
    return (f"• `{escape(entry.get('rule', '?'))}.{escape(entry.get('level', 'warn'))}` "
            f"{escape(entry.get('old'))} → {escape(entry.get('new'))} by {who_text}, "
            f"{escape(str(entry.get('at', ''))[:16].replace('T', ' '))} UTC")
