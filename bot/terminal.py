"""Plain text for terminals: what ``flowbot digest --print`` and ``flowbot demo`` show.

No Slack markup and no escaping (nothing here reaches Slack); lines wrapped to a width, with
a section's indented rows kept indented. The wording comes from ``jobs.digest`` so the
terminal and Slack say the same thing.
"""

from __future__ import annotations

import textwrap
from datetime import datetime

from jobs.digest_text import ACTION, STAGE_LABELS, WARNING
from jobs.durations import hours as duration
from jobs.model import Alert, Digest, TeamSnapshot

WIDTH = 80  # a classic terminal, and what rich assumes when output is not a terminal


def digest_text(digest: Digest, *, width: int = WIDTH) -> str:
    """The whole digest: title, headline, the suggested action, then every section."""
    title = (
        f"Weekly flow digest: {digest.team}"
        f" ({digest.week_start:%a %d %b} to {digest.week_end:%a %d %b %Y})"
    )
    out = [title, "=" * min(width, len(title)), *_wrap(digest.headline, width), ""]
    first = (WARNING, ACTION)  # what is wrong with the data, and what to do, come first
    ordered = sorted(digest.sections, key=lambda s: first.index(s[0]) if s[0] in first else 2)
    for name, body in ordered:
        out.append(name)
        out.append("-" * len(name))
        for line in body.splitlines():
            out += _wrap(line, width, indent="  ")
        out.append("")
    if digest.chart_png is not None:
        out.append(f"(chart: {len(digest.chart_png) // 1024} KB PNG)")
    return "\n".join(out).rstrip() + "\n"


def alert_text(alert: Alert, *, width: int = WIDTH) -> str:
    """One alert or recovery notice: ``[WARN] Review queue is above ... for platform: ...``."""
    level = "RECOVERED" if alert.recovered else alert.severity.upper()
    out = _wrap(f"[{level}] {alert.message}", width)  # the message names the team and numbers
    for detail in alert.details:
        out += _wrap(f"- {detail}", width, indent="  ")
    return "\n".join(out) + "\n"


def status_text(snapshot: TeamSnapshot, *, now: datetime, width: int = WIDTH) -> str:
    """A few lines on a team: queue, pickup, bottleneck, the suggested action, data age."""
    q, a = snapshot.queue, snapshot.analysis
    pickup, pickup_cal = snapshot.pickup.business, snapshot.pickup.calendar
    lines = [
        (f"{snapshot.team}: {q.length} waiting ({q.reviewer} on reviewers, {q.author} on authors,"
        f" {q.ci} on CI), {q.approved} approved waiting to merge"),
        (f"pickup wait p50 {duration(pickup.p50, pickup_cal.p50)},"
        f" p90 {duration(pickup.p90, pickup_cal.p90)}"
        f" ({snapshot.merged_count} PRs merged in {snapshot.window_days} days)"),
    ]
    if a.dominant_stage is not None:
        moved = (
            f", moved from {STAGE_LABELS[a.previous_dominant_stage]}"
            if a.shifted and a.previous_dominant_stage
            else ""
        )
        lines.append(f"bottleneck: {STAGE_LABELS[a.dominant_stage]}{moved}")
    if a.action is not None:
        lines.append(f"try: {a.action.text}")
    as_of = snapshot.data_as_of or snapshot.computed_at
    minutes = max(0.0, (now - as_of).total_seconds() / 60)
    lines.append(f"data {minutes:.0f} min old" if minutes < 90 else f"data {minutes / 60:.1f} h old")
    for error in snapshot.errors:
        lines.append(f"partial data: {error}")
    return "\n".join(w for line in lines for w in _wrap(line, width)) + "\n"


def _wrap(text: str, width: int, *, indent: str = "") -> list[str]:
    """Wrap one line, keeping its own leading spaces (plus ``indent``) on every row."""
    if not text.strip():
        return [""]
    lead = indent + " " * (len(text) - len(text.lstrip()))
    return textwrap.wrap(
        text.strip(), width=width, initial_indent=lead, subsequent_indent=lead + "  ",
        break_long_words=False, break_on_hyphens=False,
    )
