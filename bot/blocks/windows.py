"""Review windows in Slack: the window DM, `/flow windows`, and the App Home modal that sets them.

Every GitHub or user text goes through :func:`bot.blocks.escape` (or ``plain`` for plain text);
button and option values carry only a PR reference, never shown back unescaped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from bot.blocks import (
    MAX_NAME,
    Block,
    clock,
    context,
    escape,
    fallback,
    fit,
    header,
    lines_section,
    plain,
    section,
)
from bot.blocks.frame import Message, web_link
from jobs.windows import MAX_WINDOWS, DmItem, ReviewWindows, Window, WindowDM

ITEM_ACTION = "flow_window_item"  # the overflow menu on each PR: snooze, not mine
MUTE_ACTION = "flow_window_mute"
OPEN_ACTION = "flow_windows_open"  # App Home: "Choose review windows"
MODAL_ID = "flow_windows_modal"
MAX_REVIEW = 20  # PRs with their own menu in one DM (a block each)
MAX_AUTHOR = 15
MAX_OPTION_VALUE = 150  # Slack's limit for an option's value
CI_TEXT = {"green": "CI green", "red": "CI red", "running": "CI running", "none": "no CI"}
USAGE = ("`/flow windows` shows your review windows; `/flow windows 10:00-10:30 15:00-15:30` sets "
         "up to three (your team's working hours and time zone); `/flow windows off` turns them off.")


# --------------------------------------------------------------------------- the DM


def item_line(d: DmItem) -> str:
    """``• <url|acme/api#12 title> · M · waited 7.5 working h (20 h) · CI green · asked of you``."""
    i = d.item
    label = f"{i.repo}#{i.number} {i.title}"
    by = f" by {escape(i.author, MAX_NAME)}" if i.author else ""
    return (f"• {web_link(i.url, label, limit=200)}{by} · {escape(i.size, 20)} · waited "
            f"{clock(i.age_business_hours, i.age_hours)} · {CI_TEXT[d.ci]} · {escape(d.why, 100)}")


def item_value(action: str, d: DmItem) -> str | None:
    """An option's value naming the PR (``snooze:acme/api#12``); None when it would not fit."""
    value = f"{action}:{d.item.repo}#{d.item.number}"
    return value if len(value) <= MAX_OPTION_VALUE else None


def _item_block(d: DmItem) -> Block:
    block = section(item_line(d))
    snooze, mine = item_value("snooze", d), item_value("notmine", d)
    if snooze and mine:
        block["accessory"] = {
            "type": "overflow", "action_id": ITEM_ACTION,
            "options": [
                {"text": {"type": "plain_text", "text": "Snooze until my next window"}, "value": snooze},
                {"text": {"type": "plain_text", "text": "Not mine"}, "value": mine},
            ],
        }
    return block


def render_window_dm(dm: WindowDM) -> Message:
    """The DM: PRs to review (each with snooze / not mine), then the member's own PRs waiting
    on them, when the next window is, and a "mute today" button."""
    zone = ZoneInfo(dm.tz)
    if dm.kind == "window":
        title = f"Your review window ({dm.window})"
        intro = (f"*{len(dm.to_review)} to review*, oldest first" if dm.to_review
                 else "Nothing waits on your review.")
    else:
        title = "Waiting past your team's pickup threshold"
        hours = f"{dm.threshold_hours:g} working h" if dm.threshold_hours is not None else "its threshold"
        intro = (f"These waited longer than *{escape(dm.team, MAX_NAME)}*'s pickup threshold ({hours}), "
                 "so Flowbot tells you now rather than at your next window, once per PR.")
    blocks: list[Block] = [header(title), section(intro)]
    blocks += [_item_block(d) for d in dm.to_review[:MAX_REVIEW]]
    if len(dm.to_review) > MAX_REVIEW:
        blocks.append(context(f"and {len(dm.to_review) - MAX_REVIEW} more: `/flow queue` lists them all."))
    if dm.as_author:
        lines = [item_line(d) for d in dm.as_author[:MAX_AUTHOR]]
        if len(dm.as_author) > MAX_AUTHOR:
            lines.append(f"and {len(dm.as_author) - MAX_AUTHOR} more")
        blocks.append(section(f"*Your PRs waiting on you* ({len(dm.as_author)})"))
        blocks += lines_section(lines)
    when = (f"next window {dm.next_window.astimezone(zone):%a %H:%M} ({escape(dm.tz, 60)})"
            if dm.next_window is not None else "no window ahead")
    notes = [when, "`/flow windows` to change them"]
    if dm.data_as_of is not None:
        notes.append(f"data as of {dm.data_as_of.astimezone(zone):%H:%M}")
    blocks.append(context(" · ".join(notes)))
    blocks.append({"type": "actions", "block_id": "flow_window_actions", "elements": [
        {"type": "button", "action_id": MUTE_ACTION, "value": "today",
         "text": {"type": "plain_text", "text": "Mute today"}}]})
    n = len(dm.to_review)
    text = (f"{title}: {n} PR{'s' if n != 1 else ''} to review" +
            (f", {len(dm.as_author)} of yours waiting on you" if dm.as_author else ""))
    return fit(blocks), fallback(escape(text, 500))


# --------------------------------------------------------------------------- /flow windows


def render_windows(rw: ReviewWindows | None, *, login: str | None, team: str | None,
                   next_start: datetime | None, note: str = "") -> Message:
    """What `/flow windows` answers: the member's windows (or that they are off), whose they
    are (theirs or the team's default), when the next one opens, and how to change them."""
    if login is None or team is None:
        text = ("You are not listed as a member of any team in Flowbot's config, so you have no "
                "review windows. Ask an admin to add your Slack ID.")
        return [section(text)], fallback(text)
    lines = []
    if note:
        lines.append(note)
    if rw is None or not rw.on:
        lines.append(f"Your review windows are *off* ({escape(login, MAX_NAME)}, team "
                     f"*{escape(team, MAX_NAME)}*): Flowbot does not DM you about reviews.")
    else:
        whose = "your team's default" if rw.source == "team" else "chosen by you"
        lines.append(f"Your review windows: *{escape(rw.describe(), 300)}*, {whose}. At each, one DM "
                     "lists what waits on you; between them, nothing but PRs past the team's "
                     "pickup threshold (once each).")
        if next_start is not None:
            lines.append(f"Next: {next_start.astimezone(rw.zone):%a %d %b %H:%M}.")
    blocks = [section("\n".join(lines)), context(USAGE)]
    return blocks, fallback(escape(" ".join(lines), 1000))


# --------------------------------------------------------------------------- App Home + modal


def home_button(rw: ReviewWindows | None) -> list[Block]:
    """App Home's line about the member's windows, with the button that opens the modal."""
    state = "off" if rw is None or not rw.on else escape(rw.describe(), 300)
    return [section(f"*Review windows*: {state}. At each window one DM lists what waits on you.")
            | {"accessory": {"type": "button", "action_id": OPEN_ACTION, "value": "open",
                             "text": {"type": "plain_text", "text": "Choose review windows"}}}]


def windows_modal(rw: ReviewWindows | None, *, working_hours: str, tz: str) -> dict[str, Any]:
    """The modal: up to three windows, each a start and an end time (all optional: none is
    off), in the member's time zone."""
    current: Sequence[Window] = rw.windows if rw is not None else ()
    blocks: list[Block] = [section(
        f"Choose up to {MAX_WINDOWS} daily review windows inside your working hours "
        f"({escape(working_hours, 20)}, {escape(tz, 60)}). Leave them all empty to turn windows off.")]
    for n in range(1, MAX_WINDOWS + 1):
        w = current[n - 1] if n <= len(current) else None
        for part in ("start", "end"):
            element: dict[str, Any] = {"type": "timepicker", "action_id": "time",
                                       "placeholder": {"type": "plain_text", "text": "HH:MM"}}
            if w is not None:
                element["initial_time"] = f"{getattr(w, part):%H:%M}"
            blocks.append({"type": "input", "block_id": f"w{n}_{part}", "optional": True,
                           "label": {"type": "plain_text", "text": f"Window {n} {part}s"},
                           "element": element})
    return {"type": "modal", "callback_id": MODAL_ID,
            "title": {"type": "plain_text", "text": "Review windows"},
            "submit": {"type": "plain_text", "text": "Save"},
            "close": {"type": "plain_text", "text": "Cancel"},
            "blocks": blocks}


def modal_times(values: Mapping[str, Any]) -> dict[int, tuple[str | None, str | None]]:
    """The modal's state (``view.state.values``) as {window number: (start, end)} texts."""
    out: dict[int, tuple[str | None, str | None]] = {}
    for n in range(1, MAX_WINDOWS + 1):
        picked = []
        for part in ("start", "end"):
            block = values.get(f"w{n}_{part}")
            value = block.get("time", {}).get("selected_time") if isinstance(block, Mapping) else None
            picked.append(value if isinstance(value, str) and value else None)
        out[n] = (picked[0], picked[1])
    return out


def modal_errors(errors: Mapping[str, str]) -> dict[str, Any]:
    """Slack's answer to a submission with mistakes: ``response_action: errors`` by block id."""
    return {"response_action": "errors",
            "errors": {block: plain(text, 150) for block, text in errors.items()}}


def time_label(t: time) -> str:
    return f"{t:%H:%M}"
