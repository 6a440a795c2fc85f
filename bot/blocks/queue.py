"""`/flow queue`: the waiting PRs, oldest first, whose turn it is and for how long, linked."""

from __future__ import annotations

from datetime import datetime

from bot.blocks import (
    MAX_NAME,
    clock,
    escape,
    fallback,
    fit,
    header,
    lines_section,
    section,
    truncate_list,
)
from bot.blocks.frame import Message, footer, web_link
from bot.blocks.status import queue_summary
from jobs.model import QueueItem, TeamSnapshot

TURN_NAMES = {"reviewer": "reviewer's turn", "author": "author's turn", "ci": "waiting on CI",
              "approved": "approved, waiting to merge"}
MAX_ITEMS = 25


def waiting_on_name(who: str) -> str:
    """A login as is; a team request (``team:backend``) as ``backend team``. Escaped."""
    return escape(f"{who.removeprefix('team:')} team" if who.startswith("team:") else who, MAX_NAME)


def item_line(item: QueueItem) -> str:
    """``• <url|acme/api#412 title> reviewer's turn (bob) for 18.5 working h (52.5 h) · L``."""
    names = [w for w in item.waiting_on if not (item.turn == "ci" and w.lower() == "ci")]  # not "CI (CI)"
    who = ", ".join(waiting_on_name(w) for w in names[:4])
    if len(names) > 4:
        who += f" and {len(names) - 4} more"
    label = f"{item.repo}#{item.number} {item.title}"
    tags = [item.size] + (["AI-assisted"] if item.ai_assisted else [])
    return (f"• {web_link(item.url, label, limit=200)} {TURN_NAMES.get(item.turn, escape(item.turn, 40))}"
            f"{f' ({who})' if who else ''} for {clock(item.age_business_hours, item.age_hours)}"
            f" · {' · '.join(escape(t, 20) for t in tags)}")


def render_queue(snapshot: TeamSnapshot, *, now: datetime, unavailable: bool = False) -> Message:
    """The queue message: a summary line, then one line per waiting PR, oldest first."""
    items = sorted(snapshot.queue_items, key=lambda i: i.age_hours, reverse=True)
    blocks = [header(f"Review queue: {snapshot.team}"), section(queue_summary(snapshot))]
    if items:
        blocks += lines_section(truncate_list([item_line(i) for i in items], MAX_ITEMS))
    else:
        blocks.append(section("Nothing is waiting. :tada:"))
    blocks.append(footer(snapshot, now, unavailable=unavailable))
    q = snapshot.queue
    text = f"{escape(snapshot.team, MAX_NAME)}: {q.length} PRs waiting, {q.approved} approved"
    return fit(blocks), fallback(text)
