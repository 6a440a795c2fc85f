"""What every `/flow` answer shares: the data-age footer, outage and "no data yet" notices.

Every answer says how old its data is; these builders are the one place that wording lives.
"""

from __future__ import annotations

import re
from datetime import datetime

from bot.blocks import MAX_NAME, Block, age, context, escape, fallback, link, section
from jobs.model import TeamSnapshot

Message = tuple[list[Block], str]  # (blocks, plain-text fallback)

_WEB_URL = re.compile(r"^https?://[^\s<>|]+$")
_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,20}$")


def person(who: object) -> str:
    """Who did something in Slack: a user id as a mention Slack renders as their name
    (``<@U0123>``), anything else escaped as stored."""
    text = str(who)
    return f"<@{text}>" if _SLACK_USER.match(text) else escape(text, MAX_NAME)


def web_link(url: str | None, label: object, *, limit: int = 300) -> str:
    """A link when ``url`` is a plain http(s) URL; else just the escaped label.

    GitHub's URLs always qualify; anything else (empty, whitespace, other schemes) would
    render as broken mrkdwn, so it is shown as text instead.
    """
    if url and _WEB_URL.match(url):
        return link(url, label, limit=limit)
    return escape(label, limit, multiline=False)


def as_of(snapshot: TeamSnapshot) -> datetime | None:
    """The instant an answer's data age counts from: the oldest sync, else the computation."""
    return snapshot.data_as_of or snapshot.computed_at


def data_age(snapshot: TeamSnapshot, now: datetime, *, unavailable: bool = False) -> str:
    """``data 7 min old``: how old the GitHub data behind an answer is."""
    return age_text(as_of(snapshot), now, unavailable=unavailable)


def age_text(since: datetime | None, now: datetime, *, unavailable: bool = False) -> str:
    """:func:`data_age` from the instant alone (what a pre-rendered answer keeps)."""
    text = f"data {age(since, now)}"
    if unavailable:
        text = "Redis unreachable: showing the last good copy, " + text
    return text


def footer(snapshot: TeamSnapshot, now: datetime, *, unavailable: bool = False) -> Block:
    """A context block: team, window and data age, plus what degraded the data, if anything."""
    before, after = footer_parts(snapshot)
    return footer_block(before, data_age(snapshot, now, unavailable=unavailable), after)


def footer_parts(snapshot: TeamSnapshot) -> tuple[str, str]:
    """The footer's text before and after its data age: all of it but what changes with
    ``now`` (a pre-rendered answer keeps these and adds the age when it is served)."""
    before = f"*{escape(snapshot.team, MAX_NAME)}* · {snapshot.window_days}-day window · "
    after = ""
    if snapshot.errors:
        shown = "; ".join(escape(e, 300) for e in snapshot.errors[:3])
        more = f" (and {len(snapshot.errors) - 3} more)" if len(snapshot.errors) > 3 else ""
        after = f" · :warning: partial data: {shown}{more}"
    return before, after


def footer_block(before: str, data_age_text: str, after: str) -> Block:
    """The footer from :func:`footer_parts` and the data age at the moment it is served."""
    return context(before + data_age_text + after)


def unavailable(team: str, last: TeamSnapshot | None, now: datetime) -> Message:
    """Redis is down: say so, and how old the last good copy is (or that there is none)."""
    return unavailable_since(team, now, copy=last is not None, since=None if last is None else as_of(last))


def unavailable_since(team: str, now: datetime, *, copy: bool, since: datetime | None) -> Message:
    """:func:`unavailable` from the last copy's :func:`as_of` alone (``copy``: there is one)."""
    if not copy:
        detail = "No earlier copy is held by this server."
    else:
        detail = f"The last good copy here is {age_text(since, now)}."
    text = (f":hourglass: Data for *{escape(team, MAX_NAME)}* is temporarily unavailable (Flowbot's "
            f"storage is not answering). {detail} Try again in a minute.")
    return [section(text)], fallback(f"Data for {escape(team, MAX_NAME)} is temporarily unavailable. {detail}")


def no_snapshot(team: str, next_sample: datetime | None, now: datetime, *,
                last_sample: datetime | None = None, worker_seen: bool | None = None) -> Message:
    """No snapshot computed yet: say so and when the next sample runs, promising a time only
    while a worker is seen (``worker_seen`` False: none is; None: not known)."""
    if worker_seen is False:
        ran = (f"The last sample ran {age(last_sample, now).replace(' old', ' ago')}" if last_sample
               else "No sample has run yet")
        tail = (f"{ran}, and no worker has been seen since: start `flowbot worker` (or"
                " `flowbot run`) to sample again." if last_sample else
                f"{ran}, and no worker is running: start `flowbot worker` (or `flowbot run`),"
                " which samples on start.")
        text = f":seedling: No data for *{escape(team)}* yet. {tail}"
        return [section(text)], fallback(f"No data for {team} yet. {tail}")
    if next_sample is None:
        when = ("once the worker runs its first sample (`flowbot worker`, or `flowbot run`, "
                "samples on start)")
    elif next_sample <= now:
        when = "any moment now"
    else:
        minutes = max(1, round((next_sample - now).total_seconds() / 60))
        when = f"in about {minutes} min (at {next_sample:%H:%M} UTC)"
    text = f":seedling: No data for *{escape(team, MAX_NAME)}* yet. The next sample runs {when}."
    return [section(text)], fallback(f"No data for {escape(team, MAX_NAME)} yet. The next sample runs {when}.")


def notice(text: str) -> Message:
    """A one-section message; ``text`` must already be escaped mrkdwn."""
    return [section(text)], fallback(text)
