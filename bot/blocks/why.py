"""`/flow why OWNER/REPO#N`: one PR's clocks, and which event started and stopped each.

Reads the result of ``jobs.timeline.pr_clocks`` by shape (``Clock(name, start, stop,
calendar_hours, business_hours, note)`` with ``EventRef(kind, at, who)``), so this module does
not depend on how that result groups its clocks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import datetime, tzinfo
from typing import Any

from bot.blocks import (
    MAX_NAME,
    age,
    clock,
    context,
    escape,
    fallback,
    fit,
    header,
    lines_section,
    section,
)
from bot.blocks.frame import Message, web_link
from jobs.model import PullRequest


def clocks_of(result: Any) -> list[Any]:
    """The clock objects inside a ``PRClocks`` result, in their declared order."""
    explicit = getattr(result, "clocks", None)
    if explicit is not None:
        return list(explicit.values() if isinstance(explicit, dict) else explicit)
    if dataclasses.is_dataclass(result):
        values = (getattr(result, f.name) for f in dataclasses.fields(result))
        return [v for v in values if hasattr(v, "calendar_hours") and hasattr(v, "business_hours")]
    return []


CLOCK_NAMES = {"pickup": "pickup wait", "merge": "merge wait", "first_ai_review": "first AI review"}


def event_text(ref: Any, tz: tzinfo, *, started: bool = True) -> str:
    """``ready_for_review by alice, Mon 02 Mar 10:00`` (team-local time); ``not yet``.

    ``now`` (the PR is still open) reads ``still running`` for a clock that started, and
    ``not yet`` for one whose start has not happened (``started`` False).
    """
    if ref is None:
        return "not yet"
    if getattr(ref, "kind", None) == "now":
        return "still running" if started else "not yet"
    at = getattr(ref, "at", None)
    who = getattr(ref, "who", None)
    text = escape(str(getattr(ref, "kind", "event")).replace("_", " "), 60)
    if who:
        text += f" by {escape(who, MAX_NAME)}"
    if isinstance(at, datetime):
        text += f", {at.astimezone(tz):%a %d %b %H:%M}"
    return text


def clock_line(c: Any, tz: tzinfo) -> str:
    """``• *pickup wait*: 10.5 working h (23.5 h) — from … to …``, with the clock's note
    (one decimal below 100 h: the clock as measured, :func:`jobs.durations.clock`)."""
    raw = str(getattr(c, "name", "clock"))
    name = escape(CLOCK_NAMES.get(raw, raw.replace("_", " ")), MAX_NAME)
    duration = clock(getattr(c, "business_hours", None), getattr(c, "calendar_hours", None))
    start = getattr(c, "start", None)
    started = start is not None and getattr(start, "kind", None) != "now"
    line = (f"• *{name}*: {duration}\n    started: {event_text(start, tz, started=started)}"
            f"\n    stopped: {event_text(getattr(c, 'stop', None), tz, started=started)}")
    note = getattr(c, "note", "")
    if note:
        line += f"\n    _{escape(note, 1000, multiline=False)}_"
    return line


def render_why(pr: PullRequest, result: Any, *, now: datetime, tz: tzinfo,
               data_as_of: datetime | None = None,
               not_mine: Mapping[str, datetime] | None = None) -> Message:
    """A PR's clocks, each with the events that started and stopped it (docs/metrics.md stages)."""
    title = f"{pr.key} {pr.title}"
    blocks = [header(f"Why: {pr.key}"),
              section(f"{web_link(pr.url, title, limit=300)}\nby {escape(pr.author or 'a deleted account', MAX_NAME)} · "
                      f"{escape(pr.state, 40)} · {pr.size} lines changed")]
    filters: Iterable[Any] = getattr(result, "filters", ()) or ()
    filter_text = [escape(str(getattr(f, "reason", f)), 500) for f in filters]
    if filter_text:
        blocks.append(section(":information_source: " + "; ".join(filter_text)))
    cut = getattr(pr, "incomplete", ())
    if cut:
        blocks.append(section(
            f":warning: History incomplete: GitHub gave only part of this PR's"
            f" {escape(' and '.join(cut))}, so these clocks may be wrong."))
    lines = [clock_line(c, tz) for c in clocks_of(result)]
    blocks += lines_section(lines) if lines else [section("No clocks could be computed for this PR.")]
    if not_mine:
        said = ", ".join(f"{escape(login, MAX_NAME)} ({at.astimezone(tz):%a %d %b %H:%M})"
                         for login, at in sorted(not_mine.items())[:10])
        blocks.append(section(f"Marked *not mine* from a review-window DM by {said}: off their "
                              "window DMs, still requested on GitHub."))
    blocks.append(context(f"Durations: working hours in the team's calendar ({escape(str(tz))}), calendar "
                          f"time in brackets · PR data {age(data_as_of, now)}"))
    return fit(blocks), fallback(f"Clocks of {escape(pr.key, MAX_NAME)}")
