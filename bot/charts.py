"""The digest's chart: stage shares week over week, and the queue trend by whose turn.

One PNG, two panels, drawn with matplotlib's object API on the Agg canvas (no pyplot state,
no display, safe in a worker thread). matplotlib is imported on first use so the bot's start
is not slowed by it. The output is deterministic for the same input (no timestamp in the PNG
metadata) and small (about 40 KB at 800 x 340 px).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import Any

from jobs.contributors import STAGE_NAMES
from jobs.model import Digest, QueueSample, StageShare, TeamSnapshot
from jobs.settings import Settings

STAGE_ORDER = ("coding", "pickup", "review", "merge")
STAGE_LABELS = STAGE_NAMES  # the stage names every surface uses
# Colour-blind-safe (Okabe-Ito), and no colour means two things: "on reviewers" (a share of the
# queue) is vermillion, not the orange of the "pickup wait" stage beside it, darker by ~17 L*
# so the two stay apart under deuteranopia and protanopia too (tests/test_charts.py checks it).
STAGE_COLOURS = {"coding": "#999999", "pickup": "#E69F00", "review": "#0072B2", "merge": "#009E73"}
TURN_COLOURS = {"reviewer": "#D55E00", "author": "#56B4E9", "ci": "#CC79A7"}
TURN_LABELS = {"reviewer": "on reviewers", "author": "on authors", "ci": "on CI"}
SHARES_AXIS = "% of lead time (working hours)"  # "working hours", as every text says
WIDTH_IN, HEIGHT_IN, DPI = 8.0, 3.4, 100
WEEK = timedelta(days=7)


def digest_chart(
    source: Digest | TeamSnapshot,
    samples: Sequence[QueueSample] | None = None,
    *,
    tz: tzinfo | None = None,
) -> bytes:
    """A PNG of the stage shares (this week vs the four before) and the week's queue trend.

    ``source`` is a digest (its own ``queue_samples`` are used when ``samples`` is None) or a
    snapshot (its ``queue_trend``). ``tz`` is the team's time zone for the day labels (UTC when
    None). Returns the PNG bytes; raises nothing for empty data (the panels say so).
    """
    snapshot = source.snapshot if isinstance(source, Digest) else source
    if samples is None:
        carried = source.queue_samples if isinstance(source, Digest) else ()
        samples = carried or snapshot.queue_trend
    title = f"{snapshot.team}: where the waiting went"
    if isinstance(source, Digest):
        title += f", week of {source.week_start:%d %b %Y}"

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    fig.suptitle(title, fontsize=11, fontweight="bold")
    left, right = fig.subplots(1, 2, width_ratios=(1, 1.25))
    span = week_span(source.week_start, source.week_end, tz) if isinstance(source, Digest) else None
    _shares_panel(left, snapshot.analysis.stage_shares)
    _queue_panel(right, sorted(samples, key=lambda s: s.at), tz, span)
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=DPI, metadata={"Software": None})
    return out.getvalue()


def team_charts(settings: Settings) -> Callable[[Digest], bytes]:
    """The ``chart`` argument of ``jobs.digest.build_digest``: each team's chart in its zone."""

    def draw(digest: Digest) -> bytes:
        team = settings.teams.get(digest.team)
        return digest_chart(digest, tz=team.zone if team is not None else None)

    return draw


def attach_chart(digest: Digest, *, tz: tzinfo | None = None) -> Digest:
    """``digest`` with its chart drawn (kept when it already has one)."""
    if digest.chart_png is not None:
        return digest
    return replace(digest, chart_png=digest_chart(digest, tz=tz))


def chart_alt_text(digest: Digest) -> str:
    """What the chart shows, in words: the image's alt text for screen readers."""
    shares = ", ".join(
        f"{STAGE_LABELS[s.stage]} {s.share_this_week * 100:.0f}% (was {s.share_before * 100:.0f}%)"
        for s in _ordered(digest.snapshot.analysis.stage_shares)
    )
    q = digest.snapshot.queue
    text = f"Share of lead time by stage this week vs the four weeks before: {shares or 'no data'}."
    return text + f" Queue now {q.length} waiting ({q.reviewer} on reviewers)."


# --------------------------------------------------------------------------- panels


def _ordered(shares: Sequence[StageShare]) -> list[StageShare]:
    by_stage = {s.stage: s for s in shares}
    return [by_stage[s] for s in STAGE_ORDER if s in by_stage]


def _shares_panel(ax: Any, shares: Sequence[StageShare]) -> None:
    ax.set_title("Share of lead time by stage", fontsize=9)
    ordered = _ordered(shares)
    if not ordered:
        _empty(ax, "No PRs merged this week")
        return
    rows = ("4 weeks before", "this week")
    lefts = [0.0, 0.0]
    for s in ordered:
        values = (s.share_before * 100, s.share_this_week * 100)
        ax.barh(rows, values, left=lefts, color=STAGE_COLOURS[s.stage], height=0.6,
                label=STAGE_LABELS[s.stage], edgecolor="white", linewidth=0.8)
        for y, (x0, w) in enumerate(zip(lefts, values, strict=True)):
            if w >= 8:
                ax.text(x0 + w / 2, y, f"{w:.0f}%", ha="center", va="center", fontsize=8,
                        color="white" if s.stage != "coding" else "black")
        lefts = [a + b for a, b in zip(lefts, values, strict=True)]
    ax.invert_yaxis()  # read top to bottom: before, then this week
    ax.set_xlim(0, max(100.0, *lefts))
    ax.set_xlabel(SHARES_AXIS, fontsize=8)
    ax.tick_params(labelsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=4, fontsize=7, frameon=False)


def week_span(first: date, last: date, tz: tzinfo | None) -> tuple[datetime, datetime]:
    """The digest's week, team-local midnight of ``first`` to midnight after ``last``."""
    zone = tz or timezone.utc
    return (datetime.combine(first, time(0), tzinfo=zone),
            datetime.combine(last + timedelta(days=1), time(0), tzinfo=zone))


def day_ticks(start: datetime, end: datetime, tz: tzinfo | None) -> list[datetime]:
    """Each team-local midnight in ``[start, end)``: the queue panel's day ticks (a week's
    span has seven, the day after it none)."""
    zone = tz or timezone.utc
    day = start.astimezone(zone).date()
    if datetime.combine(day, time(0), tzinfo=zone) < start:
        day += timedelta(days=1)  # the first whole day inside
    ticks = []
    while (midnight := datetime.combine(day, time(0), tzinfo=zone)) < end:
        ticks.append(midnight)
        day += timedelta(days=1)
    return ticks


def _queue_panel(ax: Any, samples: Sequence[QueueSample], tz: tzinfo | None,
                 span: tuple[datetime, datetime] | None = None) -> None:
    """The queue by whose turn over ``span`` (a digest's week), else the week up to the last
    sample. A tick per team-local day inside it, never one for the day after."""
    ax.set_title("Queue by whose turn (sampled)", fontsize=9)
    if not samples:
        _empty(ax, "No queue samples yet")
        return
    import matplotlib.dates as mdates
    from matplotlib.ticker import FixedLocator

    times = [s.at for s in samples]
    series = {
        "reviewer": [s.reviewer for s in samples],
        "author": [s.author for s in samples],
        "ci": [s.ci for s in samples],
    }
    ax.stackplot(times, *series.values(), colors=[TURN_COLOURS[t] for t in series],
                 labels=[TURN_LABELS[t] for t in series], alpha=0.85, step="post")
    ax.plot(times, [s.length for s in samples], color="black", linewidth=1.0, label="queue length",
            drawstyle="steps-post", marker="o" if len(samples) < 3 else None, markersize=3)
    # Always a week wide: a few samples (a new team) must not make a degenerate axis.
    start, end = span or (min(times[0], times[-1] - WEEK), times[-1])
    ax.set_xlim(start, end)
    days = [mdates.date2num(d) for d in day_ticks(start, end, tz)]  # type: ignore[no-untyped-call]  # untyped in matplotlib
    ax.xaxis.set_major_locator(FixedLocator(days))
    ax.set_ylim(0, max(1, max(s.length for s in samples)) * 1.15)
    ax.set_ylabel("PRs waiting", fontsize=8)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%a\n%d %b", tz=tz))  # type: ignore[no-untyped-call]  # untyped in matplotlib
    ax.tick_params(labelsize=8)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=4, fontsize=7, frameon=False)
    if len(samples) < 3:
        ax.text(0.02, 0.95, f"{len(samples)} sample{'s' if len(samples) > 1 else ''} so far",
                transform=ax.transAxes, fontsize=8, color="#555555", va="top")


def _empty(ax: Any, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=9, color="#555555",
            transform=ax.transAxes)
    ax.set_axis_off()
