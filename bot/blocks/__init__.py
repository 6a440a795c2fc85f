"""Block Kit building blocks: the one place that escapes text taken from GitHub.

Per-surface builders live beside this module (``status``, ``queue``, ``digest``,
``alerts``...). They all use these helpers so that every message stays within Slack's limits
and reads the same everywhere: durations in business and calendar time side by side, lists cut
with "and N more", a plain-text fallback for notifications.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from jobs.durations import clock, hours, minutes, number, percent

__all__ = ["clock", "hours", "minutes", "number", "percent"]  # re-exported: one format everywhere

Block = dict[str, Any]

MAX_BLOCKS = 50  # per message
MAX_SECTION_TEXT = 3000  # characters in a section's text
MAX_HEADER_TEXT = 150  # characters in a header's plain text
MAX_CONTEXT_ELEMENTS = 10
MAX_FIELDS = 10  # fields in one section
MAX_FIELD_TEXT = 2000
MAX_FALLBACK_TEXT = 4000  # the notification text Slack shows; longer is truncated by Slack


def escape(text: object) -> str:
    """Escape text for Slack mrkdwn: ``&``, ``<``, ``>`` become entities.

    Everything that came from GitHub (titles, logins, branch and workflow names) goes through
    here, so a PR titled ``<!channel>`` renders as text and pings nobody.
    """
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def link(url: str, label: object) -> str:
    """A mrkdwn link whose label is escaped (and whose URL cannot close the link early).

    Only plain http(s) URLs are linked; anything else renders as the escaped label alone.
    """
    if not url.startswith(("https://", "http://")) or len(url) <= len("https://"):
        return escape(label)
    safe_url = url.replace("|", "%7C").replace("<", "%3C").replace(">", "%3E").replace(" ", "%20")
    return f"<{safe_url}|{escape(label).replace('|', '¦')}>"


def clip(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` characters, ending with an ellipsis when cut."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def age(since: datetime | None, now: datetime) -> str:
    """How old data is, for "data as of ..." lines: ``4 min old``, ``2.5 h old``."""
    if since is None:
        return "age unknown"
    seconds = max(0.0, (now - since).total_seconds())
    if seconds < 90:
        return "just now"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min old"
    if seconds < 172800:
        return f"{number(seconds / 3600)} h old"
    return f"{number(seconds / 86400)} d old"


def truncate_list(lines: Sequence[str], limit: int, *, more: str = "and {n} more") -> list[str]:
    """At most ``limit`` lines; when cut, the last line says how many were left out."""
    if len(lines) <= limit:
        return list(lines)
    keep = max(0, limit - 1)
    return [*lines[:keep], more.format(n=len(lines) - keep)]


def header(text: str) -> Block:
    """A header block (plain text, at most 150 characters)."""
    return {"type": "header", "text": {"type": "plain_text", "text": clip(text, MAX_HEADER_TEXT)}}


def section(text: str, *, fields: Sequence[str] = ()) -> Block:
    """A mrkdwn section; text and fields are clipped to Slack's limits. Escape before calling."""
    block: Block = {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, MAX_SECTION_TEXT)}}
    if fields:
        block["fields"] = [
            {"type": "mrkdwn", "text": clip(f, MAX_FIELD_TEXT)} for f in fields[:MAX_FIELDS]
        ]
    return block


def lines_section(lines: Sequence[str]) -> list[Block]:
    """Lines of mrkdwn packed into as few sections as fit 3,000 characters each."""
    blocks: list[Block] = []
    current: list[str] = []
    size = 0
    for line in lines:
        line = clip(line, MAX_SECTION_TEXT)
        if current and size + len(line) + 1 > MAX_SECTION_TEXT:
            blocks.append(section("\n".join(current)))
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
    if current:
        blocks.append(section("\n".join(current)))
    return blocks


def context(*texts: str) -> Block:
    """A context block of small mrkdwn texts (at most 10)."""
    return {
        "type": "context",
        "elements": [
            {"type": "mrkdwn", "text": clip(t, MAX_SECTION_TEXT)} for t in texts[:MAX_CONTEXT_ELEMENTS]
        ],
    }


def divider() -> Block:
    return {"type": "divider"}


def fit(blocks: list[Block], *, note: str = "More in `/flow` or the App Home.") -> list[Block]:
    """At most 50 blocks: when cut, the last block says so."""
    if len(blocks) <= MAX_BLOCKS:
        return blocks
    return [*blocks[: MAX_BLOCKS - 1], context(f"…{len(blocks) - MAX_BLOCKS + 1} more blocks. {note}")]


def fallback(text: str) -> str:
    """The plain-text ``text`` of a message (notifications, screen readers), clipped."""
    return clip(text, MAX_FALLBACK_TEXT)
