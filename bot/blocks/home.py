"""The App Home dashboard: the user's teams at a glance and the PRs waiting on them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.blocks import (
    MAX_NAME,
    Block,
    clock,
    context,
    divider,
    escape,
    header,
    section,
)
from bot.blocks.frame import data_age, web_link
from bot.blocks.status import NO_MERGED, bottleneck, latency_line, queue_summary
from jobs.model import QueueItem, TeamSnapshot

MAX_HOME_BLOCKS = 100  # a Home tab view holds at most 100 blocks
MAX_WAITING = 20


def team_card(team: str, snapshot: TeamSnapshot | None, *, now: datetime, unavailable: bool) -> list[Block]:
    """A team's queue, pickup and bottleneck in two blocks (or why there is no data)."""
    if snapshot is None:
        why = "data temporarily unavailable" if unavailable else "no data yet: the first sample has not run"
        return [section(f"*{escape(team, MAX_NAME)}*: {why}")]
    return [card_section(team, snapshot), context(data_age(snapshot, now, unavailable=unavailable))]


def card_section(team: str, snapshot: TeamSnapshot) -> Block:
    """The card's first block: all of it but the data age (so it can be rendered ahead)."""
    pickup = latency_line(snapshot.pickup) if snapshot.pickup.calendar.count else NO_MERGED
    return section(f"*{escape(team, MAX_NAME)}*\n{queue_summary(snapshot)}\npickup wait p50 {pickup}"
                   f" · bottleneck {bottleneck(snapshot).splitlines()[0]}")


def waiting_line(item: QueueItem, login: str | None = None) -> str:
    """``• <url|acme/api#412 title> by alice, waiting 18.5 working h (52.5 h)``, plus ``· asked
    of your team backend`` when the request went to a team of ``login``'s, not to them."""
    if login is not None and login.lower() not in {w.lower() for w in item.waiting_on}:
        return waiting_base(item) + asked_of_team(item)
    return waiting_base(item)


def waiting_base(item: QueueItem) -> str:
    """:func:`waiting_line` without what depends on who reads it."""
    label = f"{item.repo}#{item.number} {item.title}"
    author = escape(item.author or "a deleted account", MAX_NAME)
    return f"• {web_link(item.url, label, limit=200)} by {author}, waiting {clock(item.age_business_hours, item.age_hours)}"


def asked_of_team(item: QueueItem) -> str:
    """`` · asked of your team backend`` (the first team asked), or "" when no team was."""
    teams = [w.removeprefix("team:") for w in item.waiting_on if w.startswith("team:")]
    return f" · asked of your team {escape(teams[0], MAX_NAME)}" if teams else ""


def render_home(cards: Sequence[tuple[str, TeamSnapshot | None, bool]], waiting: Sequence[QueueItem],
                *, login: str | None, now: datetime, total: int | None = None,
                exact: bool = True) -> dict[str, object]:
    """The Home view: PRs waiting on the user (oldest first), then each of their teams.

    ``cards`` holds (team, snapshot or None, unavailable); ``waiting`` the queue items whose
    turn is the user's (the oldest of them, when ``total`` says there are more; ``exact``
    False when ``total`` is only a lower bound). Returns a ``{"type": "home", "blocks": [...]}`` view.
    """
    ordered = sorted(waiting, key=lambda i: i.age_hours, reverse=True)
    return home_layout([team_card(team, snapshot, now=now, unavailable=unavailable)
                        for team, snapshot, unavailable in cards],
                       [waiting_line(i, login) for i in ordered[:MAX_WAITING]], login=login,
                       total=max(total or 0, len(ordered)), exact=exact)


def home_layout(cards: Sequence[list[Block]], lines: Sequence[str], *, login: str | None,
                total: int, exact: bool = True) -> dict[str, object]:
    """The Home view from rendered parts: each team's card blocks, and the lines of the PRs
    waiting on the user, oldest first (at least the first :data:`MAX_WAITING` of ``total``)."""
    blocks: list[Block] = [header("Flowbot")]
    if login is None:
        blocks.append(section("You are not listed as a member of any team in Flowbot's config, "
                              "so nothing waits on you here. Ask an admin to add your Slack ID."))
    elif lines:
        shown = list(lines[:MAX_WAITING])
        total = max(total, len(lines))
        if total > MAX_WAITING:
            shown = [*shown[: MAX_WAITING - 1],
                     (f"and {'' if exact else 'at least '}{total - MAX_WAITING + 1:,} more:"
                      " `/flow queue` lists the team's queue")]
        blocks.append(section(f"*Waiting on you ({escape(login, MAX_NAME)}), oldest first*\n" + "\n".join(shown)))
    else:
        blocks.append(section(f"Nothing is waiting on you ({escape(login, MAX_NAME)}). :tada:"))
    for card in cards:
        blocks.append(divider())
        blocks += card
    blocks.append({"type": "actions", "elements": [{"type": "button", "action_id": "flow_home_refresh",
                                                    "text": {"type": "plain_text", "text": "Refresh"}}]})
    blocks.append(context("`/flow help` lists everything Flowbot can answer."))
    if len(blocks) > MAX_HOME_BLOCKS:
        blocks = [*blocks[: MAX_HOME_BLOCKS - 1], context("More teams than fit: use `/flow status TEAM`.")]
    return {"type": "home", "blocks": blocks}
