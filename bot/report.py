"""The team view in a terminal: rich tables for the numbers, sentences for the analysis.

What ``flowbot report`` prints. Everything comes from one :class:`jobs.model.TeamSnapshot`;
nothing here computes a metric. Text taken from GitHub (titles, logins, workflow and repo
names) enters rich only as :class:`rich.text.Text`, never as markup, so a PR titled
``[red]x[/red]`` prints as written.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from bot.blocks import age, clock, percent
from jobs.durations import clock_number
from jobs.model import Analysis, Latency, Percentiles, TeamSnapshot

_STAGE = {"coding": "coding", "pickup": "pickup wait", "review": "review", "merge": "merge wait"}
_METRIC = {"pickup": "pickup wait", "approval": "time to approval", "merge": "time to merge",
           "lead": "lead time"}
_TURN = {"reviewer": "reviewer", "author": "author", "ci": "CI", "approved": "merge"}
MAX_QUEUE_ROWS = 12


def print_report(snapshots: Iterable[TeamSnapshot], *, now: datetime, console: Console) -> None:
    """Print each team's view on ``console``, one after the other."""
    for i, snap in enumerate(snapshots):
        if i:
            console.rule()
        console.print(team_view(snap, now=now))


def team_view(snap: TeamSnapshot, *, now: datetime) -> RenderableType:
    """The whole team view as one renderable: headline first, then tables, then the why."""
    parts: list[RenderableType] = [
        _title(snap, now),
        Panel(Text(snap.analysis.headline or "No analysis yet."), title="Headline", box=box.ROUNDED),
    ]
    if snap.errors:
        parts.append(Text("Degraded: " + "; ".join(snap.errors), style="yellow"))
    parts += [
        _queue(snap),
        _latency(snap),
        _ai_split(snap),
        _breakdowns(snap),
        _reviewers(snap),
        _workflows(snap),
        _flow(snap),
        _mix(snap),
        _why(snap.analysis),
    ]
    return Group(*parts)


def analysis_sentences(analysis: Analysis) -> list[str]:
    """The analysis as plain sentences, most important first (no markup, no escaping)."""
    out: list[str] = []
    if analysis.dominant_stage is None:
        out.append("No PR merged this week, so there is no stage breakdown yet.")
    else:
        shares = {s.stage: s for s in analysis.stage_shares}
        parts = [
            f"{_STAGE[s.stage]} {s.share_this_week:.0%} (before {s.share_before:.0%})"
            for s in analysis.stage_shares
        ]
        out.append(
            f"Of the lead time of {analysis.merged_this_week} PRs merged this week, in working hours: "
            + ", ".join(parts) + "."
        )
        dom = shares[analysis.dominant_stage]
        if analysis.shifted and analysis.previous_dominant_stage is not None:
            out.append(
                f"The bottleneck moved from {_STAGE[analysis.previous_dominant_stage]} to "
                f"{_STAGE[analysis.dominant_stage]} ({dom.share_before:.0%} -> {dom.share_this_week:.0%})."
            )
        else:
            # the bottleneck is the largest *waiting* stage: coding may be larger (docs/metrics.md)
            out.append(f"{_STAGE[analysis.dominant_stage].capitalize()} is the largest waiting stage, as before."
                       if analysis.previous_dominant_stage else
                       f"{_STAGE[analysis.dominant_stage].capitalize()} is the largest waiting stage.")
    if analysis.amdahl_drop_pct is not None:
        out.append(
            f"If coding were 2x faster, the median PR's lead time would drop only "
            f"{analysis.amdahl_drop_pct:.0f}%."
        )
    balance = (
        f"{analysis.arrivals_per_day:.1f} PRs arrived a day and {analysis.completions_per_day:.1f} "
        "were completed"
    )
    if analysis.queue_growing:
        trend = (
            f" (the sampled queue grows by {analysis.queue_trend_per_day:.1f} a day)"
            if analysis.queue_trend_per_day is not None else ""
        )
        out.append(f"The queue is growing: {balance}{trend}.")
    else:
        out.append(f"The queue is not growing: {balance}.")
    if analysis.top_repos:
        out.append("Most waiting by repository: " + _contributors(analysis.top_repos) + ".")
    if analysis.top_reviewers:
        out.append("Reviewers holding the most requests: " + _contributors(analysis.top_reviewers) + ".")
    if analysis.slowest_workflows:
        out.append("Slowest workflows: " + _contributors(analysis.slowest_workflows) + ".")
    if analysis.longest_waits:
        out.append("Longest waits: " + _contributors(analysis.longest_waits, per_pr=True) + ".")
    if analysis.large_prs_dominate:
        out.append("Large (L/XL) PRs hold most of this week's waiting.")
    if analysis.action is not None:
        out.append(f"Suggested: {analysis.action.text} Because {analysis.action.because}.")
    return out


# ---------------------------------------------------------------------------- sections


def _title(snap: TeamSnapshot, now: datetime) -> Text:
    """Two short lines (each fits 80 columns), so a wrap never strands a lone separator."""
    text = Text()
    text.append("Flow report: ", style="bold")
    text.append(snap.team, style="bold cyan")
    text.append(f" · last {snap.window_days} days", style="dim")
    text.append(
        f"\ncomputed {age(snap.computed_at, now)} · data {age(snap.data_as_of, now)}"
        f" · {snap.merged_count} merged, {snap.ai_assisted_count} AI-assisted,"
        f" {snap.bot_pr_count} bot PRs apart",
        style="dim",
    )
    return text


def _section(title: str, table: Table, note: str | None = None) -> Group:
    """A bold heading line (wraps at any width), the table, and an optional dim note."""
    parts: list[RenderableType] = [Text(title, style="bold"), table]
    if note:
        parts.append(Text(note, style="dim"))
    parts.append(Text(""))
    return Group(*parts)


def _table() -> Table:
    return Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)


def _queue(snap: TeamSnapshot) -> Group:
    """One row per PR: at 80 columns the title (then the PR) and the names are cut with an
    ellipsis rather than folded mid-word onto extra lines."""
    q = snap.queue
    title = (f"Queue now: {q.length} waiting (reviewer {q.reviewer}, author {q.author}, "
             f"CI {q.ci}), {q.approved} approved")
    oldest = f"oldest {clock(q.oldest_business_hours, q.oldest_hours)}; " if q.length else ""
    if not snap.queue_items:
        return _section(title, _table(), "Nothing is waiting.")
    rows = [
        (
            _one_line(Text(f"{item.repo}#{item.number}").append(" " + item.title, style="dim")),
            _TURN.get(item.turn, item.turn),
            _one_line(Text(", ".join(item.waiting_on) or "-")),
            _dur(item.age_business_hours, item.age_hours, per_pr=True),
            item.size + (" AI" if item.ai_assisted else ""),
        )
        for item in snap.queue_items[:MAX_QUEUE_ROWS]
    ]
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, padding=(0, 1, 0, 0))
    # One line per PR. When the terminal is narrow the PR column gives way first (its title
    # cut with "…"), then the names (capped at 24): rich narrows only columns it may wrap,
    # widest first, so those two are left wrappable and their text is not. The short cells
    # (turn, age, size) never shrink.
    table.add_column("PR")
    table.add_column("turn", no_wrap=True)
    table.add_column("waiting on", max_width=24)
    table.add_column("age", no_wrap=True, justify="right")
    table.add_column("size", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    more = len(snap.queue_items) - MAX_QUEUE_ROWS
    note = (oldest + (f"and {more} more not shown" if more > 0 else "")).rstrip("; ")
    note = "\n".join(filter(None, (note, "age in working hours (calendar in brackets)")))
    return _section(title, table, note)


def _latency(snap: TeamSnapshot) -> Group:
    table = _latency_table("metric")
    rows: Sequence[tuple[str, Latency]] = (
        ("pickup wait", snap.pickup),
        ("time to approval", snap.approval),
        ("time to merge", snap.merge),
        ("lead time", snap.lead_time),
        ("request response", snap.request_response),
    )
    for name, lat in rows:
        table.add_row(name, *_lat_cells(lat))
    return _section(f"Latency of PRs merged in the last {snap.window_days} days "
                    "(working hours, calendar in brackets)", table)


def _ai_split(snap: TeamSnapshot) -> Group:
    """Each latency metric for AI-assisted PRs beside the others (docs/metrics.md "AI split"):
    PR counts, p50 each, and how many times longer the AI-assisted PRs waited."""
    table = _table()
    table.add_column("metric", overflow="fold")
    for col in ("AI PRs", "AI p50", "other PRs", "other p50", "AI/other"):
        table.add_column(col, justify="right", no_wrap=True)
    for metric, ai, other in snap.ai_split():
        table.add_row(_METRIC[metric], str(max(ai.business.count, ai.calendar.count)),
                      _pair(ai.business, ai.calendar, "p50"),
                      str(max(other.business.count, other.calendar.count)),
                      _pair(other.business, other.calendar, "p50"), _ratio(ai, other))
    return _section("AI-assisted vs other PRs merged in the last "
                    f"{snap.window_days} days (p50, working hours)", table,
                    "AI/other: the AI-assisted p50 over the others' (working hours)")


def _ratio(ai: Latency, other: Latency) -> str:
    a, o = ai.business.p50, other.business.p50
    if a is None or o is None or o <= 0:
        return "-"
    return f"{a / o:.1f}x"


def _breakdowns(snap: TeamSnapshot) -> Group:
    table = _latency_table("by")
    for name, lat in snap.pickup_by_repo:
        table.add_row(Text(name), *_lat_cells(lat))
    for name, lat in snap.pickup_by_size:
        table.add_row(f"size {name}", *_lat_cells(lat))
    return _section("Pickup wait by repository and by PR size", table)


def _latency_table(first: str) -> Table:
    table = _table()
    table.add_column(first, overflow="fold")
    for col in ("PRs", "p50", "p75", "p90"):
        table.add_column(col, justify="right", no_wrap=True)
    return table


def _reviewers(snap: TeamSnapshot) -> Group:
    title = (f"Reviewer load: the top two hold {percent(snap.load_concentration)} of requests; "
             f"{snap.focus_hours_week:.1f} focus-hours lost a week")
    if not snap.reviewers:
        return _section(title, _table(), "No review requests in the window.")
    table = _table()
    table.add_column("reviewer", overflow="fold")
    for col in ("asked", "re-asked", "reviews", "pending", "switches", "focus h", "peak/day"):
        table.add_column(col, justify="right", no_wrap=True)
    for r in snap.reviewers[:10]:
        table.add_row(Text(r.login), f"{r.requests_direct}+{r.requests_via_team}",
                      str(r.re_requests), str(r.reviews), str(r.pending), str(r.context_switches),
                      f"{r.focus_hours:.1f}", f"{r.requests_per_day:.0f}")
    return _section(title, table, "asked: direct + via a team; switches: extra PRs reviewed on one day\n"
                    "focus h: every request, re-request and switch costs a refocus")


def _workflows(snap: TeamSnapshot) -> Group:
    title = f"CI on PR commits: PRs waited {snap.ci_wait_hours:.1f} h on CI"
    if not snap.workflows:
        return _section(title, _table(), "No CI runs recorded.")
    table = _table()
    table.add_column("workflow", overflow="fold")
    for col in ("runs", "attempts", "running", "queued", "duration", "failed", "rerun"):
        table.add_column(col, justify="right", no_wrap=True)
    for w in snap.workflows[:8]:
        known = w.runs > 0  # a snapshot stored before runs were counted has none
        table.add_row(Text(w.name), str(w.runs) if known else "-", str(w.attempts),
                      str(w.in_progress) if known else "-",
                      _mins(w.queue_p50_min, w.queue_p90_min),
                      _mins(w.run_p50_min, w.run_p90_min), percent(w.failure_rate),
                      percent(w.rerun_rate))
    return _section(title, table, "a rerun is one run with two attempts; running: runs in "
                    "progress now\nqueued, duration: p50 / p90 minutes per attempt; failed: "
                    "share of attempts; rerun: share of runs")


def _flow(snap: TeamSnapshot) -> Group:
    a = snap.analysis
    title = (f"Flow balance: {a.arrivals_per_day:.1f} arrivals vs {a.completions_per_day:.1f} "
             "completions a day this week" + (" (queue growing)" if a.queue_growing else ""))
    days = snap.flow[-7:]
    table = _table()
    table.add_column("", no_wrap=True)
    for d in days:
        table.add_column(d.day.strftime("%a %d"), justify="right", no_wrap=True)
    table.add_row("arrived", *(str(d.arrivals) for d in days))
    table.add_row("completed", *(str(d.completions) for d in days))
    return _section(title, table)


def _mix(snap: TeamSnapshot) -> Group:
    week = dict(snap.size_mix_week)
    before = dict(snap.size_mix_before)
    table = _table()
    buckets = [b for b in ("XS", "S", "M", "L", "XL") if b in week or b in before]
    table.add_column("", no_wrap=True)
    for b in buckets:
        table.add_column(b, justify="right", no_wrap=True)
    table.add_row("this week", *(percent(week.get(b)) for b in buckets))
    table.add_row("4 weeks before", *(percent(before.get(b)) for b in buckets))
    return _section("PR size mix of merged PRs (XS <= 50 lines ... XL > 800)", table)


def _one_line(text: Text) -> Text:
    """``text`` kept on one line, ellipsized when its column is narrower."""
    text.no_wrap = True
    text.overflow = "ellipsis"
    return text


def _mins(p50: float | None, p90: float | None) -> str:
    def one(v: float | None) -> str:
        return "-" if v is None else _num(v)
    return f"{one(p50)} / {one(p90)}"


def _why(analysis: Analysis) -> Panel:
    sentences = analysis_sentences(analysis)
    body = Text()
    for i, line in enumerate(sentences):
        if i:
            body.append("\n")
        style = "bold green" if line.startswith("Suggested:") else ""
        body.append("• " + line, style=style)
    return Panel(body, title="Why", box=box.ROUNDED)


def _lat_cells(lat: Latency) -> tuple[str, str, str, str]:
    b, c = lat.business, lat.calendar
    return (str(max(b.count, c.count)), _pair(b, c, "p50"), _pair(b, c, "p75"), _pair(b, c, "p90"))


def _pair(b: Percentiles, c: Percentiles, name: str) -> str:
    return _dur(getattr(b, name), getattr(c, name))


def _dur(business: float | None, calendar: float | None, *, per_pr: bool = False) -> str:
    """``12 (2.5 d)``: working hours, calendar time in brackets (hours below two days).
    ``per_pr``: one PR's clock as measured, ``18.5 (52.5 h)`` (jobs.durations.clock)."""
    if business is None and calendar is None:
        return "-"
    num = clock_number if per_pr else _num
    left = num(business) if business is not None else "-"
    if calendar is None:
        return left
    if per_pr:
        cal = clock(None, calendar)
    else:
        cal = f"{_num(calendar / 24)} d" if calendar >= 48 else f"{_num(calendar)} h"
    return f"{left} ({cal})"


def _num(value: float) -> str:
    if abs(value) >= 10:
        return f"{value:.0f}"
    return f"{value:.1f}".removesuffix(".0") if value else "0"


def _contributors(items: Sequence[Any], *, per_pr: bool = False) -> str:
    """``name 12 h (detail); ...``; ``per_pr``: each value is one PR's clock, as measured."""
    parts = []
    for c in items:
        value = c.value
        unit = c.unit
        if per_pr and unit == "h":
            num = clock_number(value)
        else:
            num = f"{value:.0f}" if unit != "h" or value >= 10 else f"{value:.1f}"
        detail = c.detail
        parts.append(f"{c.name} {num} {unit}" + (f" ({detail})" if detail else ""))
    return "; ".join(parts)
