"""`/flow help` and the usage line that answers unknown subcommands and bad arguments."""

from __future__ import annotations

from bot.blocks import context, escape, fallback, header, section
from bot.blocks.frame import Message

USAGE = ("Usage: `/flow [status|queue|reviewers|ci|digest|alerts|thresholds] [team] [share]`, "
         "`/flow why OWNER/REPO#N`, `/flow set THRESHOLD VALUE [team]`, `/flow windows [HH:MM-HH:MM ...|off]`, `/flow health`, `/flow help`")

COMMANDS: tuple[tuple[str, str], ...] = (
    ("status [team]", "the team's flow at a glance: queue, pickup, merge, CI, focus lost, bottleneck"),
    ("queue [team]", "the waiting PRs, oldest first, whose turn and for how long"),
    ("reviewers [team]", "review requests, interruptions and focus-hours per reviewer; with and without review windows"),
    ("ci [team]", "the slowest and flakiest workflows"),
    ("why OWNER/REPO#N", "one PR's clocks: which event started and stopped each"),
    ("digest [team]", "a preview of this week's digest"),
    ("alerts [team]", "active, snoozed and recently recovered alerts"),
    ("thresholds [team]", "the alert levels in force"),
    ("set THRESHOLD VALUE [team]", "change a level (the team's leads, or its members when it has none); e.g. `set pickup_p50_hours 8`"),
    ("windows [HH:MM-HH:MM ...|off]", "your review windows: one DM per window with what waits on you; up to three, or off"),
    ("health", "when the sampling, alert and digest jobs last ran"),
)


def render_help() -> Message:
    """What `/flow` can do, one line per subcommand."""
    lines = "\n".join(f"• `/flow {cmd}`: {what}" for cmd, what in COMMANDS)
    blocks = [
        header("Flowbot: where your team's delivery is waiting"),
        section(lines),
        context("The team defaults to yours (or this channel's). Answers are only visible to you; "
                "add `share` to post one to the channel. Durations read "
                "`working hours (calendar time)`."),
    ]
    return blocks, fallback("Flowbot commands: " + ", ".join(c for c, _ in COMMANDS))


def render_usage(problem: str = "") -> Message:
    """The usage line, after what was wrong (``problem`` is escaped here)."""
    text = (f"{escape(problem, 500)}\n" if problem else "") + USAGE
    return [section(text)], fallback(text)
