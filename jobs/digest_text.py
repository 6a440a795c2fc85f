"""The digest's words: its headline and the plain text of each section (pure).

Each function turns part of a team's snapshot into sentences a lead reads in a terminal, in
Slack's notification text or in Block Kit (``bot.blocks.digest`` escapes them there). The
wording follows docs/metrics.md "The digest's why"; durations read ``6.5 working h (1.2 d)``, the
same format ``bot.blocks`` uses (both from :mod:`jobs.durations`). :mod:`jobs.digest` assembles the sections.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from jobs.contributors import STAGE_NAMES
from jobs.durations import clock, clock_number, minutes, number
from jobs.focus_text import person_line, team_lines
from jobs.durations import hours as duration
from jobs.model import (
    Analysis,
    Contributor,
    Latency,
    QueueSample,
    ReviewerLoad,
    TeamSnapshot,
)
from jobs.settings import WorkHours

if TYPE_CHECKING:  # jobs.analysis brings pandas: the web tier imports this module without it
    from jobs.analysis import AIGap

# Section titles (``Digest.sections``): ``bot.blocks.digest`` renders some of them specially.
SHARES = "Where the waiting went"
QUEUE = "Queue"
LATENCY = "Review latency"
REVIEWERS = "Reviewers"
WINDOWS = "Review windows"
CI = "CI"
AI = "AI-assisted PRs"
SIZE = "PR size"
WAITS = "Longest waits"
ACTION = "Suggested action"
DATA = "About this data"
WARNING = "Data warning"  # present only when the data is stale or partial

STAGE_ORDER = ("coding", "pickup", "review", "merge")
STAGE_LABELS = STAGE_NAMES  # "pickup wait", "merge wait": the names every surface uses
STALE_AFTER = timedelta(hours=6)  # older data gets a warning at the top of the digest
BASELINE_SLACK = timedelta(days=1)  # how far from the week's start a sample still is "a week ago"


# --------------------------------------------------------------------------- sections


def shares_text(a: Analysis) -> str:
    """Each stage's share of lead time this week vs the four before, the shift, Amdahl."""
    if not any(s.share_this_week or s.share_before for s in a.stage_shares):
        return "No PRs were merged this week or the four before: no stage breakdown yet."
    by_stage = {s.stage: s for s in a.stage_shares}
    lines = ["Share of lead time by stage, this week vs the four weeks before (working hours):"]
    for stage in STAGE_ORDER:
        s = by_stage.get(stage)  # type: ignore[call-overload]
        if s is None:
            continue
        lines.append(
            f"  {STAGE_LABELS[stage]:<11} {_pct(s.share_this_week):>4} (was {_pct(s.share_before)}),"
            f" {number(s.hours_this_week)} working h"
        )
    if a.merged_this_week or a.merged_before:
        lines.append(
            f"From {a.merged_this_week} PRs merged this week and {a.merged_before} in the four"
            " weeks before."
        )
    if a.shifted and a.dominant_stage and a.previous_dominant_stage:
        lines.append(
            f"The bottleneck moved from {STAGE_LABELS[a.previous_dominant_stage]}"
            f" to {STAGE_LABELS[a.dominant_stage]}."
        )
    if a.amdahl_drop_pct is not None:  # Amdahl, per PR, in the shares' business hours
        lines.append(
            f"If coding got 2x faster, the median PR's lead time would drop only"
            f" {a.amdahl_drop_pct:.0f}%: the waiting, not the typing, sets the pace."
        )
    return "\n".join(lines)


def queue_text(
    snapshot: TeamSnapshot,
    inside: Sequence[QueueSample],
    baseline: QueueSample | None,
    start: datetime,
    hours: WorkHours,
    *,
    latest: Sequence[QueueSample] | None = None,
) -> str:
    """The queue now by whose turn, against ``baseline`` (a week ago, or the first sample),
    the week's peak among ``inside`` samples (only those inside the digest's week), the oldest
    wait and Little's law's verdict. "Now" is the freshest of the snapshot's queue and
    ``latest`` (default: the last inside sample)."""
    fresh = inside[-1:] if latest is None else latest
    q = max((snapshot.queue, *fresh), key=lambda s: s.at)  # freshest; snapshot on ties
    lines = [
        (f"Now {q.length} waiting ({q.reviewer} on reviewers, {q.author} on authors, {q.ci} on CI),"
        f" and {q.approved} approved waiting to merge.")
    ]
    if baseline is not None:
        change = q.length - baseline.length
        trend = "up" if change > 0 else "down" if change < 0 else "no change"
        when = (
            "A week ago"
            if baseline.at - start < BASELINE_SLACK
            else f"At the first sample, {baseline.at.astimezone(hours.zone):%a %H:%M}"
        )
        why = ""
        if change <= 0 and snapshot.analysis.queue_growing:  # the headline says "growing"
            why = ("; yet the week's samples trend upward and more PRs arrived than were"
                   " reviewed, which is why it counts as growing")
        lines.append(f"{when}: {baseline.length} ({trend}{f' {abs(change)}' if change else ''}{why}).")
    if len(inside) > 1:
        peak = max(inside, key=lambda s: (s.length, s.at))
        when = peak.at.astimezone(hours.zone).strftime("%a %H:%M")
        lines.append(f"Peak this week: {peak.length} ({when}).")
    if q.oldest_business_hours is not None:
        lines.append(f"The oldest has waited {clock(q.oldest_business_hours, q.oldest_hours)}.")
    a = snapshot.analysis
    verdict = (
        "more arrive than get reviewed, so the queue grows"
        if a.queue_growing
        else "reviews keep up with arrivals"
    )
    lines.append(
        f"Arrivals {a.arrivals_per_day:.1f}/day vs completions {a.completions_per_day:.1f}/day:"
        f" {verdict}."
    )
    return "\n".join(lines)


def latency_text(snapshot: TeamSnapshot, last: Mapping[str, Any] | None) -> str:
    """Pickup, approval and merge p50/p90 (docs/metrics.md "Review latency"), with last week's
    (``WeekNumbers.to_json()`` of the previous digest) when there was one."""
    rows: list[tuple[str, Latency, float | None, float | None]] = [
        ("Pickup wait", snapshot.pickup, *(_last(last, "pickup"))),
        ("Time to approval", snapshot.approval, *(_last(last, "approval"))),
        ("Time to merge", snapshot.merge, *(_last(last, "merge"))),
    ]
    lines = []
    if snapshot.window_days != 7:
        lines.append(f"Over the last {snapshot.window_days} days (the configured window):")
    for name, lat, l50, l90 in rows:
        b, c = lat.business, lat.calendar
        if not b.count:
            lines.append(f"{name}: no PRs measured this week.")
            continue
        line = f"{name} ({_plural(b.count, 'PR')}): p50 {duration(b.p50, c.p50)}, p90 {duration(b.p90, c.p90)}"
        if last is not None and (l50 is not None or l90 is not None):
            line += f"; last week p50 {duration(l50)}, p90 {duration(l90)}"
        lines.append(line + ".")
    lead = snapshot.lead_time
    if lead.business.count:
        lines.append(
            f"Lead time (first commit to merge): p50 {duration(lead.business.p50, lead.calendar.p50)}."
        )
    if last is None:
        lines.append("No digest from last week to compare with yet.")
    return "\n".join(lines)


def reviewers_text(snapshot: TeamSnapshot, recovery_minutes: float) -> str:
    """The busiest reviewers, load concentration and focus-hours (docs/metrics.md "Reviewer
    interruptions")."""
    if not snapshot.reviewers:
        return "No review requests this week."
    lines = []
    for r in snapshot.reviewers[:3]:
        lines.append(
            f"{r.login}: {interruptions_text(r)}, about {number(r.focus_hours)} focus-hours lost;"
            f" {r.pending} waiting on them now."
        )
    if snapshot.load_concentration is not None:
        lines.append(
            f"The top two reviewers held {_pct(snapshot.load_concentration)} of the team's"
            " review requests."
        )
    lines.append(
        f"Interruptions cost about {number(snapshot.focus_hours_week)} focus-hours this week"
        f" ({recovery_minutes:g} min to refocus after each)."
    )
    return "\n".join(lines)


def windows_text(snapshot: TeamSnapshot, *, people: int = 3) -> str:
    """Review windows' effect (docs/metrics.md "Review windows: interruptions inside and
    outside them"): the team's interruptions with and without windows, focus-hours saved and
    within reach, pickup before and after, then the ``people`` most interrupted."""
    lines = team_lines(snapshot.focus, window_days=snapshot.window_days)
    lines += [f"  {person_line(p)}" for p in snapshot.focus.people[:people] if p.review_starts or p.on]
    return "\n".join(lines)


def interruptions_text(r: ReviewerLoad) -> str:
    """``10 interruptions (8 direct requests, 2 context switches)``: what the focus-hours count.

    Focus-hours are interruptions x recovery minutes (docs/metrics.md "Reviewer interruptions"),
    interruptions being requests received directly and via a team, re-requests and context
    switches; the parts that are zero are left out, so "0 context switches" never stands
    beside focus-hours it did not cause."""
    parts = [
        _plural(r.requests_direct, "direct request") if r.requests_direct else "",
        f"{r.requests_via_team} via a team" if r.requests_via_team else "",
        _plural(r.re_requests, "re-request") if r.re_requests else "",
        _plural(r.context_switches, "context switch", "context switches") if r.context_switches else "",
    ]
    total = r.requests_direct + r.requests_via_team + r.re_requests + r.context_switches
    if not total:
        return "no interruptions"
    return f"{_plural(total, 'interruption')} ({', '.join(p for p in parts if p)})"


def ci_text(snapshot: TeamSnapshot) -> str:
    """The slowest and flakiest workflows and the hours PRs waited on CI."""
    flows = snapshot.workflows
    if not flows:
        return "No CI runs on PR commits this week."
    lines = ["Slowest workflows on PR commits:"]
    for w in flows[:2]:
        parts = [f"run p90 {minutes(w.run_p90_min)}", f"queued p90 {minutes(w.queue_p90_min)}"]
        if w.failure_rate is not None:
            parts.append(f"{_pct(w.failure_rate)} of attempts failed")
        lines.append(f"  {w.name}: {', '.join(parts)}.")
    flaky = max(flows, key=lambda w: w.rerun_rate or 0.0)
    if flaky.rerun_rate:
        lines.append(f"Flakiest: {flaky.name}, {_pct(flaky.rerun_rate)} of runs needed a rerun.")
    lines.append(f"PRs waited {number(snapshot.ci_wait_hours)} calendar h on CI this week.")
    return "\n".join(lines)


# metric -> (verb, what): "AI-assisted PRs waited 2x longer for approval"
AI_GAP_WORDS = {
    "pickup": ("waited", "for a first review"),
    "approval": ("waited", "for approval"),
    "merge": ("took", "from ready to merge"),
    "lead": ("took", "from first commit to merge"),
}


def ai_text(snapshot: TeamSnapshot) -> str:
    """How many merged PRs were AI-assisted and, where it explains something, how their
    latency differs from the others' (docs/metrics.md "AI split"): one sentence per metric
    whose p50s differ by at least ``AI_GAP_FACTOR`` with ``AI_GAP_MIN_PRS`` PRs on each side
    (``jobs.analysis.ai_gaps``), largest first; bot PRs counted apart."""
    from jobs.analysis import AI_GAP_FACTOR, AI_GAP_MIN_PRS, ai_gaps

    n, ai = snapshot.merged_count, snapshot.ai_assisted_count
    lines = []
    if ai and n:
        lines.append(f"{ai} of {n} merged PRs were AI-assisted ({_pct(ai / n)}).")
        split = snapshot.ai_split()
        gaps = ai_gaps(split)
        lines += [_ai_gap(g) for g in gaps]
        if not gaps:
            enough = any(min(a.business.count, o.business.count) >= AI_GAP_MIN_PRS
                         for _, a, o in split)
            lines.append(
                f"Their latency was within {number(AI_GAP_FACTOR)}x of the other PRs'."
                if enough else
                f"Too few PRs to compare their latency with the others' (each side needs "
                f"{AI_GAP_MIN_PRS})."
            )
    else:
        lines.append(f"No AI-assisted PRs among the {n} merged this week.")
    if snapshot.bot_pr_count:
        lines.append(f"{_plural(snapshot.bot_pr_count, 'bot PR')} counted apart.")
    return "\n".join(lines)


def _ai_gap(g: AIGap) -> str:
    """``AI-assisted PRs waited 2.1x longer for approval than the others (p50 14 vs 6.8
    working h; 6 vs 10 PRs).``"""
    verb, what = AI_GAP_WORDS[g.metric]
    slower, than = ("AI-assisted PRs", "the others") if g.ratio > 1 else ("Other PRs", "AI-assisted ones")
    times = max(g.ratio, 1 / g.ratio)
    return (f"{slower} {verb} {times:.1f}x longer {what} than {than} (p50 {number(g.ai_p50)} vs "
            f"{number(g.other_p50)} working h; {g.ai_count} vs {g.other_count} PRs).")


def size_text(snapshot: TeamSnapshot) -> str:
    """The share of large PRs this week vs before, and pickup by size bucket."""
    week, before = dict(snapshot.size_mix_week), dict(snapshot.size_mix_before)
    large = week.get("L", 0.0) + week.get("XL", 0.0)
    was = before.get("L", 0.0) + before.get("XL", 0.0)
    lines = [f"Large PRs (L and XL): {_pct(large)} of this week's PRs, {_pct(was)} before."]
    by_size = [
        f"{bucket} {duration(lat.business.p50)}"
        for bucket, lat in snapshot.pickup_by_size
        if lat.business.p50 is not None
    ]
    if by_size:
        lines.append(f"Pickup p50 by size: {', '.join(by_size)}: bigger PRs wait longer.")
    return "\n".join(lines)


def waits_text(snapshot: TeamSnapshot, titles: Mapping[str, str]) -> str:
    """The PRs that waited longest (titled when known) and the repositories holding the most
    waiting; empty when there are none."""
    a = snapshot.analysis
    known = {**titles, **{f"{i.repo}#{i.number}": i.title for i in snapshot.queue_items}}
    lines = [_contributor(c, known.get(c.name), per_pr=True) for c in a.longest_waits[:5]]
    if a.top_repos:
        repos = "; ".join(_contributor(c) for c in a.top_repos[:3])
        lines.append(f"Most waiting by repository: {repos}.")
    return "\n".join(lines)


def action_text(a: Analysis) -> str:
    """The one suggested action and why, or that nothing stands out."""
    if a.action is None:
        return "Nothing stands out enough this week to suggest a change."
    because = a.action.because.rstrip(".")
    return f"{a.action.text}\nWhy: {because}."


def data_text(snapshot: TeamSnapshot, start: date, end: date, hours: WorkHours) -> str:
    """The week covered and how fresh the GitHub data is, in the team's time zone."""
    local = (snapshot.data_as_of or snapshot.computed_at).astimezone(hours.zone)
    return (
        f"Week {start:%a %d %b} to {end:%a %d %b %Y}; GitHub data as of"
        f" {local:%a %d %b %H:%M} {hours.timezone}."
    )


def warning_text(snapshot: TeamSnapshot, now: datetime) -> str:
    """Empty when the data is fresh and whole; else what is wrong with it and what to do."""
    lines = []
    old = now - (snapshot.data_as_of or snapshot.computed_at)
    if old > STALE_AFTER:
        hours = old.total_seconds() / 3600
        age = f"{number(hours / 24)} days" if hours >= 48 else f"{number(hours)} h"
        lines.append(
            f"This data is {age} old: sampling may have stopped (run `flowbot doctor`)."
        )
    if snapshot.errors:
        more = f" (and {len(snapshot.errors) - 5} more)" if len(snapshot.errors) > 5 else ""
        lines.append("Some data is missing: " + "; ".join(snapshot.errors[:5]) + more + ".")
    return "\n".join(lines)


# --------------------------------------------------------------------------- helpers


def _contributor(c: Contributor, title: str | None = None, *, per_pr: bool = False) -> str:
    """``acme/api#412 "Fix login": 52.5 working h, waiting on bob`` (the name comes first);
    ``per_pr``: the value is one PR's clock, shown as measured (one decimal below 100 h)."""
    unit = "working h" if c.unit == "h" else c.unit  # jobs.analysis sums business hours
    named = f'{c.name} "{title}"' if title else c.name
    value = clock_number(c.value) if per_pr and c.unit == "h" else number(c.value)
    return f"{named}: {value} {unit}" + (f", {c.detail}" if c.detail else "")


def _last(last: Mapping[str, Any] | None, metric: str) -> tuple[float | None, float | None]:
    if last is None:
        return None, None
    return last.get(f"{metric}_p50"), last.get(f"{metric}_p90")


def _plural(n: int, word: str, words: str | None = None) -> str:
    return f"{n} {word if n == 1 else words or word + 's'}"


def _pct(share: float) -> str:
    return f"{share * 100:.0f}%"
