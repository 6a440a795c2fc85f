"""A team's weekly digest: where the waiting accumulated, and the one thing to do about it.

Implements METRICS.md "The digest's why" on top of the team's latest computed snapshot
(``jobs.snapshot``): the digest never recomputes metrics, it explains them. The content is
plain text (``Digest.sections``: (title, body) pairs) so it reads the same in a terminal, in
Slack's notification text and in Block Kit; ``bot.blocks.digest`` escapes and lays it out.

Decisions:

* **The week** is the 7 days before the digest's send time in the team's time zone
  (wall-clock arithmetic, so a DST switch inside the week still gives 7 local days).
  ``week_start``/``week_end`` are the local dates of its first and last full day.
* **The idempotency key** is ``digest:<team>:<ISO week of the local send date>``: one digest
  per team per week, whoever (scheduler replica, ``flowbot digest --post``) sends it.
* **Last week's latency** is not in the snapshot (it holds one window), so each digest keeps
  its key numbers in the store under its ISO week (``store.set_json``, 10 weeks TTL); the next
  week's digest compares against them. The first digest built in a week sets that week's
  numbers (a later ``--print`` in the same week does not overwrite them). Without a previous
  digest the comparison is left out rather than guessed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from jobs.errors import FlowbotError
from jobs.model import (
    Analysis,
    Contributor,
    Digest,
    Latency,
    QueueSample,
    StageShare,
    TeamSnapshot,
)
from jobs.settings import Settings, WorkHours

if TYPE_CHECKING:
    from jobs.store import Store

log = logging.getLogger(__name__)

# Section titles: ``bot.blocks.digest`` renders some of them specially (links, emphasis).
SHARES = "Where the waiting went"
QUEUE = "Queue"
LATENCY = "Review latency"
REVIEWERS = "Reviewers"
CI = "CI"
AI = "AI-assisted PRs"
SIZE = "PR size"
WAITS = "Longest waits"
ACTION = "Suggested action"
DATA = "About this data"
WARNING = "Data warning"  # present only when the data is stale or partial

STAGE_ORDER = ("coding", "pickup", "review", "merge")
STAGE_LABELS = {"coding": "coding", "pickup": "pickup", "review": "review", "merge": "merge wait"}
NUMBERS_TTL = timedelta(weeks=10)
STALE_AFTER = timedelta(hours=6)
BASELINE_SLACK = timedelta(days=1)  # how far from the week's start a sample still is "a week ago"
_CHART_POINTS_PER_HOUR = 1


class DigestUnavailable(FlowbotError):
    """The digest cannot be built yet: unknown team, or no snapshot computed for it."""


@dataclass(frozen=True, slots=True)
class WeekNumbers:
    """A digest's key numbers, kept so next week's digest can say "vs last week".

    Latencies are p50/p90 in business hours (METRICS.md "Review latency"); ``None`` when no PR
    had the clock's stop event.
    """

    week: str
    pickup_p50: float | None
    pickup_p90: float | None
    approval_p50: float | None
    approval_p90: float | None
    merge_p50: float | None
    merge_p90: float | None
    lead_p50: float | None
    queue_length: int
    merged: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> WeekNumbers | None:
        """Parse a stored value; None when it is missing or of another shape."""
        if not isinstance(data, dict):
            return None
        try:
            return cls(**data)
        except TypeError:
            return None


# --------------------------------------------------------------------------- public


def digest_window(hours: WorkHours, now: datetime) -> tuple[datetime, datetime]:
    """The UTC instants ``[start, end)`` a digest sent at ``now`` covers: 7 local days back."""
    local = now.astimezone(hours.zone)
    start = (local.replace(tzinfo=None) - timedelta(days=7)).replace(tzinfo=hours.zone)
    return start.astimezone(timezone.utc), now


def week_label(hours: WorkHours, now: datetime) -> str:
    """``2026-W10``: the ISO week of the digest's local send date."""
    iso = now.astimezone(hours.zone).date().isocalendar()
    return f"{iso.year}-W{iso.week:02d}"


def idempotency_key(team: str, week: str) -> str:
    """One digest per team per ISO week."""
    return f"digest:{team}:{week}"


def week_numbers(snapshot: TeamSnapshot, week: str) -> WeekNumbers:
    """The numbers of ``snapshot`` worth comparing next week."""
    pickup, approval = snapshot.pickup.business, snapshot.approval.business
    merge, lead = snapshot.merge.business, snapshot.lead_time.business
    return WeekNumbers(
        week=week,
        pickup_p50=pickup.p50,
        pickup_p90=pickup.p90,
        approval_p50=approval.p50,
        approval_p90=approval.p90,
        merge_p50=merge.p50,
        merge_p90=merge.p90,
        lead_p50=lead.p50,
        queue_length=snapshot.queue.length,
        merged=snapshot.merged_count,
    )


def build_digest(
    settings: Settings,
    store: Store,
    team: str,
    *,
    now: datetime,
    chart: Callable[[Digest], bytes | None] | None = None,
) -> Digest:
    """Build ``team``'s digest for the week before ``now`` from its latest snapshot.

    Reads the snapshot, the week's queue samples and last week's numbers from ``store``
    (a :class:`jobs.store.Store`), and records this week's numbers when none are recorded yet.
    ``chart`` (injected by the composition root, e.g. ``bot.charts.digest_chart``) draws the
    PNG; a chart that fails is logged and left out, the digest still goes as text.

    Raises DigestUnavailable for an unknown team or when no snapshot exists yet, and
    StoreUnavailable when Redis fails.
    """
    if team not in settings.teams:
        names = ", ".join(sorted(settings.teams))
        raise DigestUnavailable(f"unknown team {team!r}; configured teams: {names}")
    snapshot = store.get_snapshot(team)
    if snapshot is None:
        raise DigestUnavailable(
            f"no data for team {team!r} yet: run `flowbot sample` (or start the worker) first"
        )
    hours = settings.teams[team]
    start, _ = digest_window(hours, now)
    samples = store.queue_samples(team, since=start - timedelta(days=1), until=now)
    week = week_label(hours, now)
    previous = week_label(hours, now - timedelta(days=7))
    last_week = WeekNumbers.from_json(store.get_json("digest", "numbers", team, previous))
    titles = _titles(store, snapshot.analysis.longest_waits[:5])
    digest = digest_from_snapshot(
        settings, team, snapshot, samples, now=now, last_week=last_week, titles=titles
    )
    if store.get_json("digest", "numbers", team, week) is None:
        store.set_json(
            "digest", "numbers", team, week,
            value=week_numbers(snapshot, week).to_json(), ttl=NUMBERS_TTL,
        )
    if chart is not None:
        try:
            digest = replace(digest, chart_png=chart(digest))
        except Exception:  # the chart is optional: the digest still goes out as text
            log.exception("digest chart failed for team %s; sending text only", team)
    return digest


def digest_from_snapshot(
    settings: Settings,
    team: str,
    snapshot: TeamSnapshot,
    samples: Sequence[QueueSample],
    *,
    now: datetime,
    last_week: WeekNumbers | None = None,
    titles: Mapping[str, str] | None = None,
) -> Digest:
    """Pure: the digest of ``team`` for the week before ``now``.

    ``samples`` are the team's queue samples (any range: those before the week give the
    "a week ago" baseline, those inside it the trend); without any, the snapshot's own
    ``queue_trend`` is used. ``last_week`` (from :func:`build_digest`) adds "vs last week";
    ``titles`` (``owner/name#123`` -> title) names the merged PRs among the longest waits.
    """
    hours = settings.teams[team]
    start, end = digest_window(hours, now)
    local_start = start.astimezone(hours.zone)
    week_start = local_start.date()
    week_end = max(week_start, (now.astimezone(hours.zone) - timedelta(days=1)).date())
    ordered = sorted(samples or snapshot.queue_trend, key=lambda s: s.at)
    inside = [s for s in ordered if start <= s.at <= end]
    before = [s for s in ordered if start - BASELINE_SLACK <= s.at < start]
    if before:
        baseline: QueueSample | None = before[-1]
    else:  # sampling began inside the week: compare with its first sample, said as such
        baseline = inside[0] if len(inside) > 1 else None
    a = snapshot.analysis
    warning = _warning_text(snapshot, now)
    sections: list[tuple[str, str]] = [(WARNING, warning)] if warning else []
    sections += [
        (SHARES, _shares_text(a)),
        (QUEUE, _queue_text(snapshot, inside, baseline, start, hours)),
        (LATENCY, _latency_text(snapshot, last_week)),
        (REVIEWERS, _reviewers_text(snapshot, settings.metrics.recovery_minutes)),
        (CI, _ci_text(snapshot)),
        (AI, _ai_text(snapshot)),
    ]
    if a.large_prs_dominate:
        sections.append((SIZE, _size_text(snapshot)))
    waits = _waits_text(snapshot, titles or {})
    if waits:
        sections.append((WAITS, waits))
    sections.append((ACTION, _action_text(a)))
    sections.append((DATA, _data_text(snapshot, week_start, week_end, hours)))
    week = week_label(hours, now)
    return Digest(
        team=team,
        channel=hours.channel,
        week_start=week_start,
        week_end=week_end,
        headline=headline(a),
        snapshot=snapshot,
        idempotency_key=idempotency_key(team, week),
        sections=tuple(sections),
        queue_samples=_thin(inside),
    )


def headline(analysis: Analysis) -> str:
    """One sentence naming the stage where the time accumulated and how it moved.

    Shares are of lead time (first commit to merge) in business hours, as ``jobs.analysis``
    computes them; "before" is the four weeks before this one.
    """
    shares = {s.stage: s for s in analysis.stage_shares}
    dominant = analysis.dominant_stage
    if dominant is None or dominant not in shares or not shares[dominant].share_this_week:
        return "No PRs were merged this week, so there is no stage breakdown yet."
    share = shares[dominant]
    label = STAGE_LABELS[dominant]
    now_pct, was_pct = _pct(share.share_this_week), _pct(share.share_before)
    if dominant == "coding":
        return (
            f"Most of this week's lead time was the authors' own coding ({now_pct},"
            f" {was_pct} before): no handoff stands out."
        )
    if analysis.shifted and analysis.previous_dominant_stage:
        led = STAGE_LABELS[analysis.previous_dominant_stage]
        return (
            f"Waiting moved to {label}: {now_pct} of this week's lead time, {_moved(share)}"
            f" {was_pct} ({led} held the most in the four weeks before)."
        )
    if share.share_this_week - share.share_before >= 0.05:
        return f"Waiting piled up in {label}: {now_pct} of this week's lead time, up from {was_pct}."
    if share.share_before - share.share_this_week >= 0.05:
        return (
            f"{label.capitalize()} still holds the most waiting: {now_pct} of this week's lead"
            f" time, down from {was_pct}."
        )
    return (
        f"{label.capitalize()} holds the most waiting again: {now_pct} of this week's lead time,"
        f" {was_pct} in the four weeks before."
    )


# --------------------------------------------------------------------------- sections


def _shares_text(a: Analysis) -> str:
    if not any(s.share_this_week or s.share_before for s in a.stage_shares):
        return "No PRs were merged this week or the four before: no stage breakdown yet."
    by_stage = {s.stage: s for s in a.stage_shares}
    lines = ["Share of lead time by stage, this week vs the four weeks before (business hours):"]
    for stage in STAGE_ORDER:
        s = by_stage.get(stage)  # type: ignore[call-overload]
        if s is None:
            continue
        lines.append(
            f"  {STAGE_LABELS[stage]:<10} {_pct(s.share_this_week):>4} (was {_pct(s.share_before)}),"
            f" {_num(s.hours_this_week)} working h"
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
    if a.amdahl_drop_pct is not None:
        lines.append(
            f"If coding got 2x faster, median lead time would drop only {a.amdahl_drop_pct:.0f}%:"
            " the waiting, not the typing, sets the pace."
        )
    return "\n".join(lines)


def _queue_text(
    snapshot: TeamSnapshot,
    inside: Sequence[QueueSample],
    baseline: QueueSample | None,
    start: datetime,
    hours: WorkHours,
) -> str:
    q = max((snapshot.queue, *inside[-1:]), key=lambda s: s.at)  # freshest; snapshot on ties
    lines = [
        f"Now {q.length} waiting ({q.reviewer} on reviewers, {q.author} on authors, {q.ci} on CI),"
        f" and {q.approved} approved waiting to merge."
    ]
    if baseline is not None:
        change = q.length - baseline.length
        trend = "up" if change > 0 else "down" if change < 0 else "no change"
        when = (
            "A week ago"
            if baseline.at - start < BASELINE_SLACK
            else f"At the first sample, {baseline.at.astimezone(hours.zone):%a %H:%M}"
        )
        lines.append(f"{when}: {baseline.length} ({trend}{f' {abs(change)}' if change else ''}).")
    if len(inside) > 1:
        peak = max(inside, key=lambda s: (s.length, s.at))
        when = peak.at.astimezone(hours.zone).strftime("%a %H:%M")
        lines.append(f"Peak this week: {peak.length} ({when}).")
    if q.oldest_business_hours is not None:
        lines.append(f"The oldest has waited {_dur(q.oldest_business_hours, q.oldest_hours)}.")
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


def _latency_text(snapshot: TeamSnapshot, last: WeekNumbers | None) -> str:
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
        line = f"{name} ({_plural(b.count, 'PR')}): p50 {_dur(b.p50, c.p50)}, p90 {_dur(b.p90, c.p90)}"
        if last is not None and (l50 is not None or l90 is not None):
            line += f"; last week p50 {_dur(l50)}, p90 {_dur(l90)}"
        lines.append(line + ".")
    lead = snapshot.lead_time
    if lead.business.count:
        lines.append(
            f"Lead time (first commit to merge): p50 {_dur(lead.business.p50, lead.calendar.p50)}."
        )
    if last is None:
        lines.append("No digest from last week to compare with yet.")
    return "\n".join(lines)


def _reviewers_text(snapshot: TeamSnapshot, recovery_minutes: float) -> str:
    if not snapshot.reviewers:
        return "No review requests this week."
    lines = []
    for r in snapshot.reviewers[:3]:
        asked = [_plural(r.requests_direct, "direct request")]
        if r.requests_via_team:
            asked.append(f"{r.requests_via_team} via a team")
        if r.re_requests:
            asked.append(_plural(r.re_requests, "re-request"))
        lines.append(
            f"{r.login}: {', '.join(asked)};"
            f" {_plural(r.context_switches, 'context switch', 'context switches')},"
            f" about {_num(r.focus_hours)} focus-hours lost; {r.pending} waiting on them now."
        )
    if snapshot.load_concentration is not None:
        lines.append(
            f"The top two reviewers held {_pct(snapshot.load_concentration)} of the team's"
            " review requests."
        )
    lines.append(
        f"Interruptions cost about {_num(snapshot.focus_hours_week)} focus-hours this week"
        f" ({recovery_minutes:g} min to refocus after each)."
    )
    return "\n".join(lines)


def _ci_text(snapshot: TeamSnapshot) -> str:
    flows = snapshot.workflows
    if not flows:
        return "No CI runs on PR commits this week."
    lines = ["Slowest workflows on PR commits:"]
    for w in flows[:2]:
        parts = [f"run p90 {_minutes(w.run_p90_min)}", f"queued p90 {_minutes(w.queue_p90_min)}"]
        if w.failure_rate is not None:
            parts.append(f"{_pct(w.failure_rate)} of attempts failed")
        lines.append(f"  {w.name}: {', '.join(parts)}.")
    flaky = max(flows, key=lambda w: w.rerun_rate or 0.0)
    if flaky.rerun_rate:
        lines.append(f"Flakiest: {flaky.name}, {_pct(flaky.rerun_rate)} of runs needed a rerun.")
    lines.append(f"PRs waited {_num(snapshot.ci_wait_hours)} h on CI this week.")
    return "\n".join(lines)


def _ai_text(snapshot: TeamSnapshot) -> str:
    n, ai = snapshot.merged_count, snapshot.ai_assisted_count
    lines = []
    if ai and n:
        lines.append(f"{ai} of {n} merged PRs were AI-assisted ({_pct(ai / n)}).")
        p_ai, p_other = snapshot.pickup_ai.business.p50, snapshot.pickup_other.business.p50
        if p_ai is not None and p_other is not None:
            compare = (
                "they waited longer for a first review"
                if p_ai > p_other * 1.1
                else "they were picked up faster"
                if p_ai < p_other * 0.9
                else "about the same"
            )
            lines.append(
                f"Pickup p50: {_dur(p_ai)} for AI-assisted PRs vs {_dur(p_other)} for the others"
                f" ({compare})."
            )
    else:
        lines.append(f"No AI-assisted PRs among the {n} merged this week.")
    if snapshot.bot_pr_count:
        lines.append(f"{_plural(snapshot.bot_pr_count, 'bot PR')} counted apart.")
    return "\n".join(lines)


def _size_text(snapshot: TeamSnapshot) -> str:
    week, before = dict(snapshot.size_mix_week), dict(snapshot.size_mix_before)
    large = week.get("L", 0.0) + week.get("XL", 0.0)
    was = before.get("L", 0.0) + before.get("XL", 0.0)
    lines = [f"Large PRs (L and XL): {_pct(large)} of this week's PRs, {_pct(was)} before."]
    by_size = [
        f"{bucket} {_dur(lat.business.p50)}"
        for bucket, lat in snapshot.pickup_by_size
        if lat.business.p50 is not None
    ]
    if by_size:
        lines.append(f"Pickup p50 by size: {', '.join(by_size)}: bigger PRs wait longer.")
    return "\n".join(lines)


def _waits_text(snapshot: TeamSnapshot, titles: Mapping[str, str]) -> str:
    a = snapshot.analysis
    known = {**titles, **{f"{i.repo}#{i.number}": i.title for i in snapshot.queue_items}}
    lines = [_contributor(c, known.get(c.name)) for c in a.longest_waits[:5]]
    if a.top_repos:
        repos = "; ".join(_contributor(c) for c in a.top_repos[:3])
        lines.append(f"Most waiting by repository: {repos}.")
    return "\n".join(lines)


def _action_text(a: Analysis) -> str:
    if a.action is None:
        return "Nothing stands out enough this week to suggest a change."
    because = a.action.because.rstrip(".")
    return f"{a.action.text}\nWhy: {because}."


def _data_text(snapshot: TeamSnapshot, start: date, end: date, hours: WorkHours) -> str:
    local = (snapshot.data_as_of or snapshot.computed_at).astimezone(hours.zone)
    return (
        f"Week {start:%a %d %b} to {end:%a %d %b %Y}; GitHub data as of"
        f" {local:%a %d %b %H:%M} {hours.timezone}."
    )


def _warning_text(snapshot: TeamSnapshot, now: datetime) -> str:
    """Empty when the data is fresh and whole; else what is wrong with it and what to do."""
    lines = []
    old = now - (snapshot.data_as_of or snapshot.computed_at)
    if old > STALE_AFTER:
        hours = old.total_seconds() / 3600
        age = f"{_num(hours / 24)} days" if hours >= 48 else f"{_num(hours)} h"
        lines.append(
            f"This data is {age} old: sampling may have stopped (run `flowbot doctor`)."
        )
    if snapshot.errors:
        more = f" (and {len(snapshot.errors) - 5} more)" if len(snapshot.errors) > 5 else ""
        lines.append("Some data is missing: " + "; ".join(snapshot.errors[:5]) + more + ".")
    return "\n".join(lines)


# --------------------------------------------------------------------------- helpers


def _contributor(c: Contributor, title: str | None = None) -> str:
    """``acme/api#412 "Fix login": 52 working h, waiting on bob`` (the name comes first)."""
    unit = "working h" if c.unit == "h" else c.unit  # jobs.analysis sums business hours
    named = f'{c.name} "{title}"' if title else c.name
    return f"{named}: {_num(c.value)} {unit}" + (f", {c.detail}" if c.detail else "")


def _titles(store: Store, contributors: Sequence[Contributor]) -> dict[str, str]:
    """Titles of the PRs named ``owner/name#123`` among ``contributors``, from the store."""
    out = {}
    for c in contributors:
        repo, sep, number = c.name.rpartition("#")
        if sep and number.isdigit():
            pr = store.get_pr(repo, int(number))
            if pr is not None:
                out[c.name] = pr.title
    return out


def _last(last: WeekNumbers | None, metric: str) -> tuple[float | None, float | None]:
    if last is None:
        return None, None
    return getattr(last, f"{metric}_p50"), getattr(last, f"{metric}_p90")


def _moved(share: StageShare) -> str:
    diff = share.share_this_week - share.share_before
    return "up from" if diff >= 0.005 else "down from" if diff <= -0.005 else "the same as"


def _thin(samples: Sequence[QueueSample]) -> tuple[QueueSample, ...]:
    """At most one sample per hour (the last): enough for a week's chart, small to carry."""
    per_hour: dict[int, QueueSample] = {}
    for s in samples:
        per_hour[int(s.at.timestamp() // (3600 / _CHART_POINTS_PER_HOUR))] = s
    return tuple(per_hour[k] for k in sorted(per_hour))


def _plural(n: int, word: str, words: str | None = None) -> str:
    return f"{n} {word if n == 1 else words or word + 's'}"


def _pct(share: float) -> str:
    return f"{share * 100:.0f}%"


def _num(value: float) -> str:
    """``6.5``, ``12``, ``0.3``: one decimal below 10, none above (as ``bot.blocks``)."""
    if abs(value) >= 10:
        return f"{value:.0f}"
    return f"{value:.1f}".removesuffix(".0") if value != 0 else "0"


def _dur(business: float | None, calendar: float | None = None) -> str:
    """``6.5 working h (1.2 d)``, the format ``bot.blocks.hours`` uses."""
    if business is None and calendar is None:
        return "n/a"
    parts = []
    if business is not None:
        parts.append(f"{_num(business)} working h")
    if calendar is not None:
        cal = f"{_num(calendar / 24)} d" if calendar >= 48 else f"{_num(calendar)} h"
        parts.append(f"({cal})" if parts else cal)
    return " ".join(parts)


def _minutes(value: float | None) -> str:
    return "n/a" if value is None else f"{_num(value)} min"
