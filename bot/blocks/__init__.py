"""Block Kit building blocks: the one place that makes untrusted text safe for Slack.

Per-surface builders live beside this module (``status``, ``queue``, ``digest``,
``alerts``...). They all use these helpers so that every message stays within Slack's limits
and reads the same everywhere: durations in business and calendar time side by side, lists cut
with "and N more", a plain-text fallback for notifications.

Safe by construction: every text that came from GitHub, from a user's command or from a
button's value enters a message through :func:`escape` (mrkdwn) or :func:`plain` (plain text),
which strip bidi and control characters, cut the raw text to its limit, then escape. Builders
compose mrkdwn from those pieces and Flowbot's own markup; :func:`clip` cuts composed mrkdwn
without splitting an entity, a link or a character, and the block helpers apply Slack's limits
(section 3,000, field 2,000, header 150, 10 fields, 10 context elements, 50 blocks).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from datetime import datetime
from itertools import accumulate
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
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_NAME = 200  # a name, login or title quoted inside a line: one long name must not eat a block


# Text that must never reach Slack, whatever its source: bidi embeddings, overrides, isolates
# and marks (they reorder what a reader sees: "Trojan Source"), C0 controls but newline, DEL,
# C1 controls, and lone surrogates (not encodable as UTF-8: Slack would reject the message).
_UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_TAB = "\t"
_ENTITY_COST = {"&": 5, "<": 4, ">": 4}  # escaped lengths: &amp; &lt; &gt;
ELLIPSIS = "…"
EMPTY = "(no text)"  # Slack refuses an empty text object
# A cut must not separate what is read as one character: a base from its combining mark,
# variation selector, skin tone or tag, or the two halves of a ZWJ sequence or a flag.
_JOINERS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe00-\ufe0f\ufe20-\ufe2f"
                      "\u200d\U0001f3fb-\U0001f3ff\U000e0020-\U000e007f]")
_REGIONAL = re.compile("[\U0001f1e6-\U0001f1ff]")
# Markup Flowbot itself writes into mrkdwn: entities, links and user mentions. A clip never
# cuts inside one of these.
_TOKEN = re.compile(r"&(?:amp|lt|gt);|<[^<>]*>")


def clean(text: object, *, multiline: bool = True) -> str:
    """``text`` without bidi controls, control characters or lone surrogates.

    A tab reads as a space; a newline stays when ``multiline`` (else it reads as a space too).
    This is the first step of :func:`escape` and :func:`plain`, applied to every text from
    GitHub, from a user or from a button before anything else.
    """
    raw = str(text)
    if not multiline:
        raw = raw.replace("\r\n", " ").replace("\n", " ")
    return _UNSAFE.sub("", raw.replace(_TAB, " ").replace("\r\n", "\n"))


def escape(text: object, limit: int | None = None, *, multiline: bool = True) -> str:
    """Untrusted text as safe Slack mrkdwn: the one place that makes GitHub, user and button
    text safe to show.

    In this order: :func:`clean` strips bidi and control characters; the raw text is cut on a
    character boundary so that its *escaped* form, ellipsis included, fits ``limit`` (so an
    entity is never cut in half); then ``&``, ``<``, ``>`` become entities. A PR titled
    ``<!channel>`` renders as text and pings nobody.
    """
    raw = clean(text, multiline=multiline)
    if limit is not None:
        raw = _cut(raw, limit, escaped=True)
    return raw.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plain(text: object, limit: int | None = None, *, multiline: bool = False) -> str:
    """Untrusted text for a ``plain_text`` field (headers, button labels): cleaned like
    :func:`escape` and cut on a character boundary to ``limit``, but not escaped (Slack shows
    plain text as is)."""
    raw = clean(text, multiline=multiline)
    return raw if limit is None else _cut(raw, limit)


def link(url: str, label: object, *, limit: int = 300) -> str:
    """A mrkdwn link whose label is escaped (and whose URL cannot close the link early).

    Only plain http(s) URLs are linked; anything else renders as the escaped label alone.
    The label is cut to ``limit`` characters; a URL longer than 2,000 characters is not linked.
    """
    if not url.startswith(("https://", "http://")) or len(url) <= len("https://") or len(url) > 2000:
        return escape(label, limit, multiline=False)
    safe_url = clean(url, multiline=False).replace("&", "&amp;").replace("|", "%7C").replace(
        "<", "%3C").replace(">", "%3E").replace(" ", "%20")  # & as Slack wants it in a link: &amp;
    return f"<{safe_url}|{escape(label, limit, multiline=False).replace('|', '¦')}>"


def clip(text: str, limit: int) -> str:
    """Cut mrkdwn ``text`` (already safe) to at most ``limit`` characters, ending with an
    ellipsis when cut, never inside an entity (``&amp;``), a link or a mention, nor between
    the parts of one visible character."""
    if len(text) <= limit:
        return text
    budget = max(0, limit - len(ELLIPSIS))
    end = budget
    for match in _TOKEN.finditer(text, max(0, budget - 4000), budget + 4000):
        if match.start() < budget < match.end():
            end = match.start()
            break
    return text[:_boundary(text, end)] + ELLIPSIS


def _cut(raw: str, limit: int, *, escaped: bool = False) -> str:
    """``raw`` cut on a character boundary so that it (escaped, when ``escaped``) and an
    ellipsis fit ``limit``; as is when it fits already."""
    size = len(raw)
    if escaped:
        size += 4 * raw.count("&") + 3 * (raw.count("<") + raw.count(">"))
    if size <= limit:
        return raw
    budget = max(0, limit - len(ELLIPSIS))
    if escaped:  # every character costs at least 1: only the first ``budget`` can fit
        end = bisect_right(list(accumulate(_ENTITY_COST.get(c, 1) for c in raw[:budget])), budget)
    else:
        end = budget
    return raw[:_boundary(raw, end)] + ELLIPSIS


def _boundary(text: str, end: int) -> int:
    """The nearest cut at or before ``end`` that does not split one visible character."""
    while 0 < end < len(text) and (_JOINERS.match(text, end) or text[end - 1] == "\u200d"):
        end -= 1
    if 0 < end < len(text) and _REGIONAL.match(text, end) and _REGIONAL.match(text, end - 1):
        run = end
        while run > 0 and _REGIONAL.match(text, run - 1):
            run -= 1
        if (end - run) % 2:  # a flag is two regional indicators: do not keep half of one
            end -= 1
    return end


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
    """A header block: ``text`` is raw (plain text is shown as is), cleaned and cut to 150."""
    return {"type": "header", "text": {"type": "plain_text", "text": plain(text, MAX_HEADER_TEXT) or EMPTY}}


def section(text: str, *, fields: Sequence[str] = ()) -> Block:
    """A mrkdwn section; text and fields are clipped to Slack's limits. Escape before calling."""
    block: Block = {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, MAX_SECTION_TEXT) or EMPTY}}
    if fields:
        block["fields"] = [
            {"type": "mrkdwn", "text": clip(f, MAX_FIELD_TEXT) or EMPTY} for f in fields[:MAX_FIELDS]
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
            {"type": "mrkdwn", "text": clip(t, MAX_SECTION_TEXT)} for t in texts[:MAX_CONTEXT_ELEMENTS] if t
        ] or [{"type": "mrkdwn", "text": EMPTY}],
    }


def divider() -> Block:
    return {"type": "divider"}


def fit(blocks: list[Block], *, note: str = "More in `/flow` or the App Home.") -> list[Block]:
    """At most 50 blocks: when cut, the last block says so."""
    if len(blocks) <= MAX_BLOCKS:
        return blocks
    return [*blocks[: MAX_BLOCKS - 1], context(f"…{len(blocks) - MAX_BLOCKS + 1} more blocks. {note}")]


def fallback(text: str) -> str:
    """The ``text`` of a message (notifications, screen readers): mrkdwn like a section's, so
    escape what it quotes before calling; clipped to 4,000 characters."""
    return clip(text, MAX_FALLBACK_TEXT) or EMPTY
