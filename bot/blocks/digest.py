"""The weekly digest as Block Kit, and as a plain-text message that reads well on its own.

The digest's content is plain text (``jobs.digest``); here it is escaped (PR titles, logins,
repository and workflow names come from GitHub) and laid out within Slack's limits. The
fallback ``text`` leads with the headline and the suggested action, so a notification or a
post whose chart upload failed still says what matters.
"""

from __future__ import annotations

from bot.blocks import (
    MAX_FALLBACK_TEXT,
    MAX_NAME,
    MAX_SECTION_TEXT,
    Block,
    context,
    divider,
    escape,
    fallback,
    fit,
    header,
    lines_section,
    link,
    section,
)
from bot.blocks.frame import Message
from jobs import digest as d
from jobs.model import Digest

_ICONS = {
    d.SHARES: ":bar_chart:",
    d.QUEUE: ":inbox_tray:",
    d.LATENCY: ":stopwatch:",
    d.REVIEWERS: ":busts_in_silhouette:",
    d.WINDOWS: ":calendar:",
    d.CI: ":gear:",
    d.AI: ":robot_face:",
    d.SIZE: ":straight_ruler:",
    d.WAITS: ":hourglass:",
    d.ACTION: ":bulb:",
}


def render_digest(digest: Digest) -> Message:
    """``(blocks, text)``: the digest message, at most 50 blocks, every GitHub text escaped.

    The chart is not a block: delivery uploads ``digest.chart_png`` beside the message.
    """
    sections = dict(digest.sections)
    blocks: list[Block] = [
        header(f"Weekly flow digest: {digest.team}"),
        context(f"{_dates(digest)} · {digest.snapshot.merged_count} PRs merged"),
        section(f"*{escape(digest.headline, MAX_SECTION_TEXT - 2)}*"),
    ]
    if d.WARNING in sections:
        blocks.append(section(f":warning: {escape(sections[d.WARNING], MAX_SECTION_TEXT - 20)}"))
    if d.ACTION in sections:
        blocks.append(_titled(d.ACTION, sections[d.ACTION]))
    blocks.append(divider())
    for title, body in digest.sections:
        if title in (d.ACTION, d.DATA, d.WARNING):
            continue
        lines = _waits_lines(digest, body) if title == d.WAITS else [_line(x) for x in body.splitlines()]
        blocks += lines_section([f"{_ICONS.get(title, '')} *{escape(title, MAX_NAME)}*".strip(), *lines])
    if d.DATA in sections:
        blocks.append(context(escape(sections[d.DATA], MAX_SECTION_TEXT // 2).replace("\n", " · ")))
    return fit(blocks, note="The whole digest is in `flowbot digest --print`."), digest_text(digest)


def digest_text(digest: Digest) -> str:
    """The plain-text fallback (escaped for mrkdwn): headline, any data warning, the action,
    then every section."""
    sections = dict(digest.sections)
    parts = [f"Weekly flow digest for {digest.team}, {_dates(digest)}: {digest.headline}"]
    first = [t for t in (d.WARNING, d.ACTION) if t in sections]
    parts += [f"{t}: {sections[t]}" for t in first]
    parts += [f"{t}:\n{body}" for t, body in digest.sections if t not in first]
    return fallback(escape("\n\n".join(parts), MAX_FALLBACK_TEXT))


def _line(text: str) -> str:
    """One escaped body line; the plain text's indented rows become bullets."""
    stripped = text.lstrip()
    if stripped == text:
        return escape(text, MAX_SECTION_TEXT)
    return f"• {escape(' '.join(stripped.split()), MAX_SECTION_TEXT - 2)}"  # column padding means nothing in Slack


def _titled(title: str, body: str) -> Block:
    lines = body.splitlines()
    text = f"{_ICONS.get(title, '')} *{escape(title, MAX_NAME)}:* {escape(lines[0], 2000) if lines else ''}"
    rest = [f"_{escape(x, 2000)}_" for x in lines[1:]]
    return section("\n".join([text.strip(), *rest]))


def _waits_lines(digest: Digest, body: str) -> list[str]:
    """The longest waits, each PR's ``owner/name#123`` linked, everything else escaped."""
    urls = {c.name: c.url for c in digest.snapshot.analysis.longest_waits if c.url}
    lines = []
    for line in body.splitlines():
        key = line.split(" ", 1)[0].removesuffix(":")
        if key in urls:
            lines.append(f"• {link(urls[key], key, limit=MAX_NAME)}{escape(line[len(key):], 2000)}")
        else:
            lines.append(escape(line, MAX_SECTION_TEXT))
    return lines


def _dates(digest: Digest) -> str:
    return f"{digest.week_start:%a %d %b} to {digest.week_end:%a %d %b %Y}"
