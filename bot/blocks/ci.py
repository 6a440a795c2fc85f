"""`/flow ci`: the slowest and flakiest workflows on PR commits."""

from __future__ import annotations

from datetime import datetime

from bot.blocks import (
    MAX_NAME,
    escape,
    fallback,
    fit,
    header,
    lines_section,
    minutes,
    number,
    percent,
    section,
    truncate_list,
)
from bot.blocks.frame import Message, footer
from jobs.model import TeamSnapshot, WorkflowStats

MAX_WORKFLOWS = 15


def workflow_line(w: WorkflowStats) -> str:
    """``• *integration*: run p50 18 min / p90 34 min · queue p90 9.5 min · 19% failed · 12%
    rerun · 57 runs (64 attempts), 2 running now``: runs as people count them (a rerun is one
    run with two attempts) beside attempts; a snapshot from before runs were counted shows
    attempts only."""
    counts = (f"{w.runs} runs ({w.attempts} attempts), {w.in_progress} running now" if w.runs
              else f"{w.attempts} attempts")
    return (f"• *{escape(w.name, MAX_NAME)}*: run p50 {minutes(w.run_p50_min)} / p90 {minutes(w.run_p90_min)}"
            f" · queue p90 {minutes(w.queue_p90_min)} · {percent(w.failure_rate)} of attempts failed"
            f" · {percent(w.rerun_rate)} of runs rerun · {counts}")


def render_ci(snapshot: TeamSnapshot, *, now: datetime, unavailable: bool = False) -> Message:
    """CI: hours PRs waited on CI, the slowest workflows, then the flakiest by rerun rate."""
    summary = (f"PRs waited *{number(snapshot.ci_wait_hours)} calendar h* on CI in the last "
               f"{snapshot.window_days} days.")
    runs = sum(w.runs for w in snapshot.workflows)
    if runs:
        attempts = sum(w.attempts for w in snapshot.workflows)
        running = sum(w.in_progress for w in snapshot.workflows)
        summary += f"\n*{runs}* runs ({attempts} attempts); *{running}* in progress now."
    blocks = [header(f"CI: {snapshot.team}"), section(summary)]
    if snapshot.workflows:
        blocks.append(section("*Slowest* (run time p90)"))
        blocks += lines_section(truncate_list([workflow_line(w) for w in snapshot.workflows], MAX_WORKFLOWS))
        flaky = sorted((w for w in snapshot.workflows if w.rerun_rate),
                       key=lambda w: w.rerun_rate or 0.0, reverse=True)[:5]
        if flaky:
            blocks.append(section("*Flakiest* (rerun rate): " + ", ".join(
                f"{escape(w.name, MAX_NAME)} {percent(w.rerun_rate)}" for w in flaky)))
    else:
        blocks.append(section("No CI runs on PR commits in this window."))
    blocks.append(footer(snapshot, now, unavailable=unavailable))
    slowest = escape(snapshot.workflows[0].name, MAX_NAME) if snapshot.workflows else "none"
    text = f"{escape(snapshot.team, MAX_NAME)}: {number(snapshot.ci_wait_hours)} calendar h waiting on CI; slowest workflow {slowest}"
    return fit(blocks), fallback(text)
