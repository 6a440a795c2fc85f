"""Review windows in Slack: the App Home modal, the DM's buttons, and what `/flow windows` changes.

Thin listeners (``register``): acknowledge, find who clicked (their GitHub login from config),
act through :mod:`jobs.window_dm` / the store, answer through ``bot.blocks.windows``. The
permission rule: a member changes only their own windows and their own list; the button and
option values name a PR, never a person, so a forwarded or forged click cannot touch another
member's list. Someone on no team is told so and nothing changes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.blocks import MAX_NAME, escape, fallback
from bot.blocks.windows import (
    ITEM_ACTION,
    MODAL_ID,
    MUTE_ACTION,
    OPEN_ACTION,
    modal_errors,
    modal_times,
    windows_modal,
)
from jobs.errors import StoreUnavailable
from jobs.settings import Settings, Team
from jobs.store import Store
from jobs.windows import ReviewWindows, Window, check_windows, team_of, within_hours

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_sdk import WebClient

    from bot.app import BotDeps

log = logging.getLogger(__name__)

_REF = re.compile(r"^(snooze|notmine):([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)#(\d{1,9})$")
NOT_A_MEMBER = ("You are not listed as a member of any team in Flowbot's config, so you have no "
                "review windows. Ask an admin to add your Slack ID.")


@dataclass(frozen=True, slots=True)
class Choice:
    """The outcome of choosing windows: the saved record, or the problems by where they are."""

    saved: ReviewWindows | None
    problems: dict[str, str]  # "w2_end" (a modal block) or "" (the command) -> what is wrong


def member(settings: Settings, user_id: str | None) -> tuple[str, str] | None:
    """(GitHub login lower case, team) of a Slack user, or None for someone on no team."""
    if not user_id:
        return None
    for name, team in settings.teams.items():
        for m in team.members:
            if m.slack == user_id:
                return m.github.lower(), team_of(settings, m.github) or name
    return None


def current(deps: BotDeps, login: str) -> ReviewWindows | None:
    """The member's windows as they apply now (their own, else the team default)."""
    from jobs.window_dm import windows_of

    return windows_of(deps.settings, deps.store, login)


def choose(settings: Settings, store: Store, login: str, team: str, spans: Sequence[tuple[str, str]],
           *, now: datetime, by: str) -> Choice:
    """Save ``spans`` (start, end texts) as ``login``'s windows, in their team's time zone.

    Refused, with the problem, when a time is not HH:MM, a window ends before it starts, windows
    overlap, are more than three, or lie outside the team's working hours.
    """
    cfg = settings.teams[team]
    windows = []
    for start, end in spans:
        try:
            windows.append(Window.parse(f"{start}-{end}"))
        except ValueError as err:
            return Choice(None, {"": str(err)})
    try:
        check_windows(windows, hours=cfg)
    except ValueError as err:
        return Choice(None, {"": str(err)})
    base = store.get_review_windows([login]).get(login) or ReviewWindows(login, (), cfg.timezone)
    saved = base.changed(windows, now=now, by=by, tz=cfg.timezone)
    store.set_review_windows(saved)
    return Choice(saved, {})


def register(app: App, deps: BotDeps) -> None:
    """The modal (opened from App Home), its submission, and the DM's buttons."""

    def on_open(ack: Callable[..., Any], body: dict[str, Any], client: WebClient) -> None:
        ack()
        user = str(body.get("user", {}).get("id", ""))
        who = member(deps.settings, user)
        if who is None:
            return  # App Home shows no button to them; a forged click opens nothing
        login, team = who
        cfg = deps.settings.teams[team]
        view = windows_modal(current(deps, login), working_hours=cfg.working_hours, tz=cfg.timezone)
        client.views_open(trigger_id=body["trigger_id"], view=view)

    def on_submit(ack: Callable[..., Any], body: dict[str, Any], view: dict[str, Any],
                  client: WebClient) -> None:
        user = str(body.get("user", {}).get("id", ""))
        who = member(deps.settings, user)
        if who is None:
            ack(**modal_errors({"w1_start": NOT_A_MEMBER}))
            return
        login, team = who
        problems, spans = _spans(modal_times(view.get("state", {}).get("values", {})),
                                 deps.settings.teams[team])
        if not problems:
            try:
                choice = choose(deps.settings, deps.store, login, team, spans, now=deps.clock.now(), by=user)
            except StoreUnavailable:
                ack(**modal_errors({"w1_start": "Flowbot cannot save right now (its storage is "
                                                 "unreachable); please try again in a minute."}))
                return
            if choice.problems:  # the modal checked each window; what is left concerns them all
                problems = {"w1_start": next(iter(choice.problems.values()))}
        if problems:
            ack(**modal_errors(problems))
            return
        ack()
        try:
            from bot.home import publish_home

            publish_home(client, deps, user)
        except Exception:  # noqa: BLE001 - saved; the Home tab refreshes on its next opening
            log.warning("could not refresh App Home after saving review windows")

    def on_item(ack: Callable[..., Any], body: dict[str, Any], action: dict[str, Any],
                respond: Callable[..., Any]) -> None:
        ack()
        from jobs.window_dm import mark_not_mine, snooze_pr

        user = str(body.get("user", {}).get("id", ""))
        value = str((action.get("selected_option") or {}).get("value") or action.get("value") or "")
        match = _REF.match(value)
        who = member(deps.settings, user)
        if who is None:
            respond(response_type="ephemeral", replace_original=False, text=NOT_A_MEMBER)
            return
        if match is None:
            respond(response_type="ephemeral", replace_original=False,
                    text="This menu is from an older Flowbot; `/flow windows` shows your windows.")
            return
        login, _team = who
        what, repo, number = match[1], match[2], int(match[3])
        ref = escape(f"{repo}#{number}", MAX_NAME)
        now = deps.clock.now()
        if what == "snooze":
            until = snooze_pr(deps.store, deps.settings, login, repo, number, now=now)
            rw = current(deps, login)
            when = (f"your next window ({until.astimezone(rw.zone):%a %H:%M})"
                    if until is not None and rw is not None else "tomorrow")
            text = f"Snoozed {ref} until {when}."
        else:
            mark_not_mine(deps.store, login, repo, number, now=now, by=user)
            text = (f"{ref} is off your list: Flowbot will not remind you of it. "
                    f"`/flow why {ref}` says you marked it not yours.")
        respond(response_type="ephemeral", replace_original=False, text=fallback(text))

    def on_mute(ack: Callable[..., Any], body: dict[str, Any], respond: Callable[..., Any]) -> None:
        ack()
        from jobs.window_dm import mute_today

        user = str(body.get("user", {}).get("id", ""))
        who = member(deps.settings, user)
        if who is None:
            respond(response_type="ephemeral", replace_original=False, text=NOT_A_MEMBER)
            return
        day = mute_today(deps.store, deps.settings, who[0], now=deps.clock.now(), by=user)
        respond(response_type="ephemeral", replace_original=False,
                text=f"Muted for today ({day:%a %d %b}): no review DM until tomorrow's first window.")

    app.action(OPEN_ACTION)(on_open)
    app.view(MODAL_ID)(on_submit)
    app.action(ITEM_ACTION)(on_item)
    app.action(MUTE_ACTION)(on_mute)


def _spans(times: dict[int, tuple[str | None, str | None]],
           hours: Team) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """The modal's windows as (start, end) pairs, or the problems by block: a window with only
    one of its times, ending before it starts, outside the working hours, or overlapping an
    earlier one."""
    problems: dict[str, str] = {}
    spans: list[tuple[int, Window]] = []
    for n, (start, end) in times.items():
        if start is None and end is None:
            continue
        if start is None:
            problems[f"w{n}_start"] = "Give this window a start, or clear its end."
        elif end is None:
            problems[f"w{n}_end"] = "Give this window an end, or clear its start."
        else:
            try:
                w = Window.parse(f"{start}-{end}")
            except ValueError as err:
                problems[f"w{n}_end"] = str(err)
                continue
            if not within_hours(w, hours):
                problems[f"w{n}_start"] = f"Outside your working hours ({hours.working_hours})."
                continue
            clash = next((m for m, other in spans if w.start < other.end and other.start < w.end), None)
            if clash is not None:
                problems[f"w{n}_start"] = f"Overlaps window {clash}."
                continue
            spans.append((n, w))
    return problems, [(f"{w.start:%H:%M}", f"{w.end:%H:%M}") for _, w in spans]
