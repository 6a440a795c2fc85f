"""The team view in a terminal: rich tables for the numbers, sentences for the analysis.

What ``flowbot report`` prints. Everything comes from one :class:`jobs.model.TeamSnapshot`;
nothing here computes a metric. Text taken from GitHub (titles, logins, workflow and repo
names) enters rich only as :class:`rich.text.Text`, never as markup, so a PR titled
``[red]x[/red]`` prints as written.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from rich import box
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from bot.blocks import age, hours, minutes, percent
from jobs.model import Analysis, Latency, Percentiles, TeamSnapshot

_STAGE = {"coding": "coding", "pickup": "pickup wait", "review": "review", "merge": "merge wait"}
_TURN = {"reviewer": "reviewer", "author": "author", "ci": "CI", "approved": "merge (approved)"}
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
            out.append(f"{_STAGE[analysis.dominant_stage].capitalize()} is the largest stage, as before."
                       if analysis.previous_dominant_stage else
                       f"{_STAGE[analysis.dominant_stage].capitalize()} is the largest stage.")
    if analysis.amdahl_drop_pct is not None:
        out.append(
            f"If coding were 2x faster, the median lead time would drop only {analysis.amdahl_drop_pct:.0f}%."
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
        out.append("Longest waits: " + _contributors(analysis.longest_waits) + ".")
    if analysis.large_prs_dominate:
        out.append("Large (L/XL) PRs hold most of this week's waiting.")
    if analysis.action is not None:
        out.append(f"Suggested: {analysis.action.text} Because {analysis.action.because}.")
    return out


# ---------------------------------------------------------------------------- sections


def _title(snap: TeamSnapshot, now: datetime) -> Text:
    text = Text()
    text.append("Flow report: ", style="bold")
    text.append(snap.team, style="bold cyan")
    text.append(
        f"  ·  last {snap.window_days} days  ·  computed {age(snap.computed_at, now)}"
        f"  ·  data {age(snap.data_as_of, now)}"
        f"  ·  {snap.merged_count} merged, {snap.ai_assisted_count} AI-assisted, "
        f"{snap.bot_pr_count} bot PRs apart",
        style="dim",
    )
    return text


def _queue(snap: TeamSnapshot) -> Table:
    q = snap.queue
    oldest = hours(q.oldest_business_hours, q.oldest_hours)
    table = Table(
        title=f"Queue now: {q.length} waiting (reviewer {q.reviewer}, author {q.author}, CI {q.ci}), "
        f"{q.approved} approved; oldest {oldest}",
        box=box.SIMPLE_HEAD, title_justify="left",
    )
    table.add_column("PR", no_wrap=True)
    table.add_column("title", overflow="fold", max_width=36)
    table.add_column("whose turn", no_wrap=True)
    table.add_column("waiting on", overflow="fold", max_width=28)
    table.add_column("age", no_wrap=True)
    table.add_column("size", no_wrap=True)
    table.add_column("AI", no_wrap=True)
    for item in snap.queue_items[:MAX_QUEUE_ROWS]:
        table.add_row(
            Text(f"{item.repo}#{item.number}"),
            Text(item.title),
            _TURN.get(item.turn, item.turn),
            Text(", ".join(item.waiting_on) or "-"),
            hours(item.age_business_hours, item.age_hours),
            item.size,
            "yes" if item.ai_assisted else "",
        )
    if len(snap.queue_items) > MAX_QUEUE_ROWS:
        table.caption = f"and {len(snap.queue_items) - MAX_QUEUE_ROWS} more"
    if not snap.queue_items:
        table.caption = "Nothing is waiting."
    return table


def _latency(snap: TeamSnapshot) -> Table:
    table = Table(title=f"Latency over {snap.window_days} days (working hours, calendar in brackets)",
                  box=box.SIMPLE_HEAD, title_justify="left")
    for col in ("metric", "PRs", "p50", "p75", "p90"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    rows: Sequence[tuple[str, Latency]] = (
        ("pickup wait", snap.pickup),
        ("time to approval", snap.approval),
        ("time to merge", snap.merge),
        ("lead time", snap.lead_time),
        ("request response", snap.request_response),
        ("pickup, AI-assisted PRs", snap.pickup_ai),
        ("pickup, other PRs", snap.pickup_other),
    )
    for name, lat in rows:
        table.add_row(name, *_lat_cells(lat))
    return table


def _breakdowns(snap: TeamSnapshot) -> Table:
    table = Table(title="Pickup wait by repository and by PR size", box=box.SIMPLE_HEAD,
                  title_justify="left")
    for col in ("by", "PRs", "p50", "p75", "p90"):
        table.add_column(col, justify="left" if col == "by" else "right")
    for name, lat in snap.pickup_by_repo:
        table.add_row(Text(name), *_lat_cells(lat))
    for name, lat in snap.pickup_by_size:
        table.add_row(f"size {name}", *_lat_cells(lat))
    return table


def _reviewers(snap: TeamSnapshot) -> Table:
    conc = percent(snap.load_concentration)
    table = Table(
        title=f"Reviewer load: top two hold {conc} of requests; "
        f"{snap.focus_hours_week:.1f} focus-hours lost this week",
        box=box.SIMPLE_HEAD, title_justify="left",
    )
    for col in ("reviewer", "requests", "via team", "re-requests", "reviews", "pending",
                "switches", "focus h", "max/day"):
        table.add_column(col, justify="left" if col == "reviewer" else "right")
    for r in snap.reviewers[:10]:
        table.add_row(Text(r.login), str(r.requests_direct), str(r.requests_via_team),
                      str(r.re_requests), str(r.reviews), str(r.pending), str(r.context_switches),
                      f"{r.focus_hours:.1f}", f"{r.requests_per_day:.0f}")
    if not snap.reviewers:
        table.caption = "No review requests in the window."
    return table


def _workflows(snap: TeamSnapshot) -> Table:
    table = Table(title=f"CI on PR commits: PRs waited {snap.ci_wait_hours:.1f} h on CI",
                  box=box.SIMPLE_HEAD, title_justify="left")
    for col in ("workflow", "attempts", "queue p50", "queue p90", "run p50", "run p90",
                "failed", "rerun"):
        table.add_column(col, justify="left" if col == "workflow" else "right")
    for w in snap.workflows[:8]:
        table.add_row(Text(w.name), str(w.attempts), minutes(w.queue_p50_min),
                      minutes(w.queue_p90_min), minutes(w.run_p50_min), minutes(w.run_p90_min),
                      percent(w.failure_rate), percent(w.rerun_rate))
    if not snap.workflows:
        table.caption = "No CI runs recorded."
    return table


def _flow(snap: TeamSnapshot) -> Table:
    a = snap.analysis
    table = Table(
        title=f"Flow balance: {a.arrivals_per_day:.1f} arrivals vs {a.completions_per_day:.1f} "
        "completions a day" + ("  (queue growing)" if a.queue_growing else ""),
        box=box.SIMPLE_HEAD, title_justify="left",
    )
    days = snap.flow[-7:]
    table.add_column("", no_wrap=True)
    for d in days:
        table.add_column(d.day.strftime("%a %d"), justify="right", no_wrap=True)
    table.add_row("arrivals", *(str(d.arrivals) for d in days))
    table.add_row("completions", *(str(d.completions) for d in days))
    return table


def _mix(snap: TeamSnapshot) -> Table:
    week = dict(snap.size_mix_week)
    before = dict(snap.size_mix_before)
    table = Table(title="PR size mix: this week vs the four before", box=box.SIMPLE_HEAD,
                  title_justify="left")
    buckets = [b for b in ("XS", "S", "M", "L", "XL") if b in week or b in before]
    table.add_column("")
    for b in buckets:
        table.add_column(b, justify="right")
    table.add_row("this week", *(percent(week.get(b)) for b in buckets))
    table.add_row("before", *(percent(before.get(b)) for b in buckets))
    return table


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
    return hours(getattr(b, name), getattr(c, name))


def _contributors(items: Sequence[object]) -> str:
    parts = []
    for c in items:
        value = getattr(c, "value")
        unit = getattr(c, "unit")
        num = f"{value:.0f}" if unit != "h" or value >= 10 else f"{value:.1f}"
        detail = getattr(c, "detail")
        parts.append(f"{getattr(c, 'name')} {num} {unit}" + (f" ({detail})" if detail else ""))
    return "; ".join(parts)
