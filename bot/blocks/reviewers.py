"""`/flow reviewers`: requests and interruptions per reviewer, focus-hours, concentration."""

from __future__ import annotations

from datetime import datetime

from bot.blocks import (
    MAX_NAME,
    MAX_SECTION_TEXT,
    Block,
    escape,
    fallback,
    fit,
    header,
    lines_section,
    number,
    percent,
    section,
    truncate_list,
)
from bot.blocks.frame import Message, footer
from jobs.digest_text import interruptions_text
from jobs.focus_text import person_line, team_lines
from jobs.model import ReviewerLoad, TeamSnapshot

MAX_REVIEWERS = 20


def reviewer_line(load: ReviewerLoad) -> str:
    """One reviewer's week. Names are GitHub logins, never Slack mentions: nobody is pinged.

    The focus-hours follow the interruptions they count (requests received directly and via a
    team, re-requests and context switches), so the reader sees what they are made of.
    """
    return (f"• *{escape(load.login, MAX_NAME)}*: {interruptions_text(load)}, about {number(load.focus_hours)} focus-hours lost · "
            f"{load.pending} waiting on them now · peak {load.requests_per_day:g} requests/day")


def render_reviewers(snapshot: TeamSnapshot, *, now: datetime, unavailable: bool = False) -> Message:
    """Reviewer load: team focus-hours and concentration, then one line per reviewer."""
    summary = f"*About {number(snapshot.focus_hours_week)} focus-hours* lost to review interruptions this week."
    if snapshot.load_concentration is not None:
        summary += f" The top two reviewers hold *{percent(snapshot.load_concentration)}* of requests."
    if snapshot.request_response.calendar.count:
        summary += f" Per-request response p50: {_h(snapshot)}."
    blocks = [header(f"Reviewers: {snapshot.team}"), section(summary)]
    if snapshot.reviewers:
        blocks += lines_section(truncate_list([reviewer_line(r) for r in snapshot.reviewers], MAX_REVIEWERS))
    else:
        blocks[-1] = section(f"No review requests in the last {snapshot.window_days} days, so no focus-hours "
                             "lost to them.")
    blocks += windows_blocks(snapshot)
    blocks.append(footer(snapshot, now, unavailable=unavailable))
    text = f"{escape(snapshot.team, MAX_NAME)}: about {number(snapshot.focus_hours_week)} focus-hours lost"
    if not snapshot.reviewers:
        text = f"{escape(snapshot.team, MAX_NAME)}: no review requests in the last {snapshot.window_days} days"
    elif snapshot.load_concentration is not None:
        text += f"; top two hold {percent(snapshot.load_concentration)} of requests"
    return fit(blocks), fallback(text)


def windows_blocks(snapshot: TeamSnapshot) -> list[Block]:
    """Review windows' effect: the team's interruptions with and without windows, focus-hours
    saved and within reach, pickup before and after, then one line per person (escaped:
    logins come from GitHub)."""
    focus = snapshot.focus
    lines = ["*Review windows*", *(escape(x) for x in team_lines(focus, window_days=snapshot.window_days))]
    people = [f"• {escape(person_line(p), MAX_SECTION_TEXT - 2)}" for p in focus.people]
    return lines_section([*lines, *truncate_list(people, MAX_REVIEWERS)])


def _h(snapshot: TeamSnapshot) -> str:
    from bot.blocks.status import latency_line

    return latency_line(snapshot.request_response)
