"""The words of review windows' measured effect (pure): the team's and each person's
interruptions with and without windows, the focus-hours batching saved or would save, and
pickup before and after windows (docs/metrics.md "Review windows: interruptions inside and
outside them").

Plain text, the same in the digest's "Review windows" section and in `/flow reviewers`; the
Slack side escapes it (logins come from GitHub).
"""

from __future__ import annotations

from jobs.durations import hours, number
from jobs.model import FocusLoad, FocusSummary, Latency

__all__ = ["MAX_PEOPLE", "person_line", "team_lines"]

MAX_PEOPLE = 5  # the digest lists the most interrupted people; /flow reviewers lists more


def team_lines(summary: FocusSummary, *, window_days: int = 7) -> list[str]:
    """The team's figures: with windows and without, focus-hours saved and would save, and
    pickup before and after (when someone has windows). Always at least one line."""
    t = summary.total()
    week = "this week" if window_days == 7 else f"in the last {window_days} days"
    on = [p for p in summary.people if p.on]
    defaults = " and ".join(summary.defaults) or "the default windows"
    if not on:
        if not t.review_starts:
            return [f"No reviews {week}, so no review interruptions to batch. No one has review windows yet."]
        return [(f"No one has review windows yet: {_n(t.review_starts, 'review interruption')} {week},"
                 f" each review on its own. Batching them into review windows ({defaults}) would save"
                 f" about {number(t.would_save_hours)} focus-hours.")]
    return [
        (f"{len(on)} of {len(summary.people)} reviewers have review windows."
         f" Review interruptions {week}: {t.interruptions} with windows"
         f" ({_batches(t)}, {_n(t.outside, 'review')} outside windows),"
         f" against {t.review_starts} without them."),
        ((f"Batching saved about {number(t.saved_hours)} focus-hours" if t.saved_hours
          else "Batching saved nothing yet (no two reviews shared a window)")
         + f"; batching the reviews done outside windows would save about {number(t.would_save_hours)} more."),
        (f"Pickup p50 before windows: {_pickup(summary.pickup_before)};"
         f" since: {_pickup(summary.pickup_after)}."),
    ]


def person_line(p: FocusLoad) -> str:
    """One person: ``bob (windows): 3 interruptions with windows, 8 without (2 window batches
    holding 7 reviews, 1 outside); saved about 1.9 focus-hours; pickup p50 3 working h (3 h) over
    12 PRs before, 3.5 working h (4 h) over 9 PRs since.``"""
    if not p.on:
        save = (f"about {number(p.would_save_hours)} focus-hours" if p.would_save_hours
                else "nothing (no two of them would share a window)")
        return f"{p.login} (no windows): {_n(p.review_starts, 'review interruption')}; windows would save {save}."
    text = (f"{p.login} (windows): {p.interruptions} interruptions with windows,"
            f" {p.review_starts} without ({_batches(p)}, {p.outside} outside);"
            + (f" saved about {number(p.saved_hours)} focus-hours" if p.saved_hours else " nothing saved yet"))
    if p.would_save_hours:
        text += f", about {number(p.would_save_hours)} focus-hours within reach"
    return text + f"; pickup p50 {_pickup(p.pickup_before)} before, {_pickup(p.pickup_after)} since."


def _batches(p: FocusLoad) -> str:
    if not p.batches:
        return "no review inside a window"
    return f"{_n(p.batches, 'window batch', 'window batches')} holding {_n(p.inside, 'review')}"


def _pickup(latency: Latency) -> str:
    n = latency.business.count
    if not n:
        return "no PRs picked up"
    return f"{hours(latency.business.p50, latency.calendar.p50)} over {_n(n, 'PR')}"


def _n(count: int, word: str, words: str | None = None) -> str:
    return f"{count} {word if count == 1 else (words or word + 's')}"
