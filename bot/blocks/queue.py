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


def more_line(n: int, shown: list[QueueItem]) -> str:
    """``and 1,975 more: all open PRs on GitHub``, linking GitHub's list of the open PRs of the
    repositories shown."""
    repos = sorted({i.repo for i in shown})
    host = next((i.url.split("/")[2] for i in shown if i.url.startswith("https://")), "github.com")
    query = "+".join(["is:pr", "is:open", *(f"repo:{r}" for r in repos[:10])])
    return f"and {n:,} more: {web_link(f'https://{host}/pulls?q={query}', 'all open PRs on GitHub')}"


def render_queue(snapshot: TeamSnapshot, *, now: datetime, unavailable: bool = False,
                 total: int | None = None) -> Message:
    """The queue message: a summary line, then one line per waiting PR, oldest first.

    ``snapshot.queue_items`` may be the first page only (the store keeps them oldest first);
    ``total`` is then how many there are, and the last line says how many more and where to
    see them.
    """
    items = sorted(snapshot.queue_items, key=lambda i: i.age_hours, reverse=True)
    total = max(total or 0, len(items))
    blocks = [header(f"Review queue: {snapshot.team}"), section(queue_summary(snapshot))]
    if items:
        lines = [item_line(i) for i in items[:MAX_ITEMS]]
        if total > MAX_ITEMS:
            lines = [*lines[: MAX_ITEMS - 1], more_line(total - MAX_ITEMS + 1, items)]
        blocks += lines_section(lines)
    else:
        blocks.append(section("Nothing is waiting. :tada:"))
    blocks.append(footer(snapshot, now, unavailable=unavailable))
    q = snapshot.queue
    text = f"{escape(snapshot.team, MAX_NAME)}: {q.length} PRs waiting, {q.approved} approved"
    return fit(blocks), fallback(text)
