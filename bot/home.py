"""App Home: a per-user dashboard of their teams and the PRs waiting on them for review."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from bot.blocks.home import render_home
from jobs.model import QueueItem
from jobs.settings import Settings
from jobs.windows import ReviewWindows

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_sdk import WebClient

    from bot.app import BotDeps

log = logging.getLogger(__name__)
REFRESH_ACTION = "flow_home_refresh"
MAX_TEAMS = 30  # cards that fit a Home view (100 blocks, 3 a team): more are not read


def login_of(settings: Settings, user_id: str) -> str | None:
    """The GitHub login configured for this Slack user, if any."""
    return settings.people.login_of.get(user_id)


def home_view(deps: BotDeps, user_id: str) -> dict[str, object]:
    """The user's Home view, built from the stored snapshots only (never GitHub).

    Reads, for each of the user's teams in one round trip, its card and the PRs waiting on
    the user's login and GitHub teams as rendered for this snapshot (``bot.answers``: rendered
    by the first view that needs them), so it costs the same whatever the size of the queues.
    While Redis cannot be read, :func:`records_view` answers from the last copies read.
    """
    from bot.answers import Answers

    login, teams, who = _whose(deps.settings, user_id)
    found = Answers(deps).home(teams, who, login=login, now=deps.clock.now())
    if found is None:
        return records_view(deps, user_id)
    view, windows = found
    return view if login is None else windows_line(view, windows)


def with_windows(deps: BotDeps, login: str | None, view: dict[str, object]) -> dict[str, object]:
    """``view`` with the member's review-windows line and its button after the PRs waiting on
    them (nothing for someone on no team; left out while Redis cannot be read)."""
    if login is None:
        return view
    from bot.reader import DOWN
    from bot.windows import current

    windows = deps.reader.fetch(None, lambda: current(deps, login))  # not asked while Redis is failing
    if windows is DOWN:
        log.warning("App Home without the review windows line: Redis unavailable")
        return view
    return windows_line(view, windows)


def windows_line(view: dict[str, object], windows: ReviewWindows | None) -> dict[str, object]:
    """``view`` with the review-windows line for ``windows`` (None: off) and its button."""
    from bot.blocks.home import MAX_HOME_BLOCKS
    from bot.blocks.windows import home_button

    extra = home_button(windows)
    blocks = list(view["blocks"])  # type: ignore[call-overload]  # a view's blocks: a list of dicts
    blocks[2:2] = extra  # after the header and the "waiting on you" section
    if len(blocks) > MAX_HOME_BLOCKS:
        blocks = [*blocks[: MAX_HOME_BLOCKS - 2], blocks[-1]]
    return {**view, "blocks": blocks}


def records_view(deps: BotDeps, user_id: str) -> dict[str, object]:
    """:func:`home_view` rendered whole from the snapshots' cards and waiting lists (the
    reader's: its last good copies while Redis is down), as it was before ``bot.answers``."""
    now = deps.clock.now()
    login, teams, who = _whose(deps.settings, user_id)
    cards = []
    waiting: dict[tuple[str, int], QueueItem] = {}
    total = 0  # how many wait on the user: exact with one list per team, else a lower bound
    exact = True
    for card in deps.reader.read_home(teams, who):
        cards.append((card.team, card.snapshot, card.unavailable))
        total += max((found.total for found in card.waiting), default=0)
        exact = exact and len(card.waiting) <= 1
        for found in card.waiting:
            for item in found.items:
                if item.turn == "reviewer":
                    waiting.setdefault((item.repo, item.number), item)
    return with_windows(deps, login, render_home(cards, list(waiting.values()), login=login, now=now,
                                                 total=max(total, len(waiting)), exact=exact))


def _whose(settings: Settings, user_id: str) -> tuple[str | None, list[str], list[str]]:
    """The user's login, the teams their Home shows, and whom PRs may wait on for them
    (their login and their GitHub teams as ``team:slug``, lower case)."""
    from bot.commands import teams_of_user

    login = login_of(settings, user_id)
    teams = (teams_of_user(settings, user_id) or list(settings.teams)[:10])[:MAX_TEAMS]
    who = [] if login is None else [login.lower(), *(f"team:{slug.lower()}"
                                                     for slug in sorted(_github_teams_of(settings, login)))]
    return login, teams, who


def publish_home(client: WebClient, deps: BotDeps, user_id: str) -> None:
    """Build and publish the Home tab for ``user_id`` (raises slack_sdk errors)."""
    send_home(client, user_id, home_json(deps, user_id))


def home_json(deps: BotDeps, user_id: str) -> str:
    """:func:`home_view` as a JSON-encoded string, the form Slack's API documents for ``view``,
    encoded by msgspec: slack_sdk's ``json.dumps`` of the 95-block dict took 0.23 ms of CPU a
    publish, about a tenth of a Home open's."""
    return msgspec.json.encode(home_view(deps, user_id)).decode()


def send_home(client: WebClient, user_id: str, view: str) -> None:
    """Publish ``view`` (from :func:`home_json`) as ``user_id``'s Home tab (raises slack_sdk errors)."""
    client.views_publish(user_id=user_id, view=view)  # type: ignore[arg-type]  # a str: Slack's own form


def register(app: App, deps: BotDeps) -> None:
    """Publish the dashboard when a user opens the Home tab, or presses refresh on it."""

    def acknowledge(ack: Callable[[], None]) -> None:
        ack()

    def on_home_opened(event: dict[str, Any], client: WebClient) -> None:
        if event.get("tab", "home") != "home":
            return
        publish_home(client, deps, event["user"])

    def on_refresh(body: dict[str, Any], client: WebClient) -> None:
        publish_home(client, deps, body["user"]["id"])

    # Publishing calls Slack: done lazily, after the acknowledgement, so a slow API never makes
    # Slack retry the event.
    app.event("app_home_opened")(ack=acknowledge, lazy=[on_home_opened])
    app.action(REFRESH_ACTION)(ack=acknowledge, lazy=[on_refresh])


def _github_teams_of(settings: Settings, login: str) -> set[str]:
    """GitHub team slugs of the Flowbot teams this login is a member of."""
    return set(settings.people.github_teams_of.get(login.lower(), ()))
