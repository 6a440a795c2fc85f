"""A team's weekly digest: where the waiting accumulated, and the one thing to do about it.

Implements docs/metrics.md "The digest's why" on top of the team's latest computed snapshot
(``jobs.snapshot``): the digest never recomputes metrics, it explains them. The content is
plain text (``Digest.sections``: (title, body) pairs) so it reads the same in a terminal, in
Slack's notification text and in Block Kit; ``bot.blocks.digest`` escapes and lays it out.

Decisions:

* **The week** is the 7 whole local days before the digest's send date in the team's time
  zone: from midnight 7 days before the send date to midnight of the send date (wall-clock
  arithmetic, so a DST switch inside the week still gives 7 local days).
  ``week_start``/``week_end`` are its first and last day, the dates the title names, so the
  queue's peak and baseline come only from samples inside those days (a sample from the send
  morning is "now", never "this week's peak"). "Now" is the freshest queue known at sending.
* **The idempotency key** is ``digest:<team>:<ISO week of the local send date>``: one digest
  per team per week, whoever (scheduler replica, ``flowbot digest --post``) sends it.
* **Last week's latency** is not in the snapshot (it holds one window), so each digest keeps
  its key numbers in the store under its ISO week (``store.set_json``, 10 weeks TTL); the next
  week's digest compares against them. The first digest built at or after the week's
  scheduled time sets that week's numbers: a preview (``/flow digest``, ``--print``) before it
  records nothing, one after it finds them set. Without a previous digest the comparison is
  left out rather than guessed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, time, timedelta, timezone
from typing import TYPE_CHECKING, Any

from jobs import digest_text as text
from jobs.digest_text import (  # the section titles name Digest.sections: re-exported here
    ACTION,
    AI,
    CI,
    DATA,
    LATENCY,
    QUEUE,
    REVIEWERS,
    SHARES,
    SIZE,
    WAITS,
    WARNING,
    WINDOWS,
)
from jobs.analysis import headline as analysis_headline
from jobs.errors import FlowbotError
from jobs.model import Contributor, Digest, QueueSample, TeamSnapshot
from jobs.settings import WEEKDAYS, Settings, WorkHours

if TYPE_CHECKING:
    from jobs.store import Store

log = logging.getLogger(__name__)

__all__ = [
    "ACTION", "AI", "CI", "DATA", "LATENCY", "QUEUE", "REVIEWERS", "SHARES", "SIZE", "WAITS",
    "WARNING", "WINDOWS", "DigestUnavailable", "WeekNumbers", "build_digest", "digest_from_snapshot",
    "digest_window", "idempotency_key", "scheduled_in_week", "week_label",
    "week_numbers",
]

NUMBERS_TTL = timedelta(weeks=10)
_CHART_POINTS_PER_HOUR = 1


class DigestUnavailable(FlowbotError):
    """The digest cannot be built yet: unknown team, or no snapshot computed for it."""


@dataclass(frozen=True, slots=True)
class WeekNumbers:
    """A digest's key numbers, kept so next week's digest can say "vs last week".

    Latencies are p50/p90 in business hours (docs/metrics.md "Review latency"); ``None`` when no PR
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
    """The UTC instants ``[start, end)`` a digest sent at ``now`` covers: the 7 whole local
    days before the local send date (midnight to midnight, team time zone)."""
    day = now.astimezone(hours.zone).date()
    start = datetime.combine(day - timedelta(days=7), time(0), tzinfo=hours.zone)
    end = datetime.combine(day, time(0), tzinfo=hours.zone)
    return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


def week_label(hours: WorkHours, now: datetime) -> str:
    """``2026-W10``: the ISO week of the digest's local send date."""
    iso = now.astimezone(hours.zone).date().isocalendar()
    return f"{iso.year}-W{iso.week:02d}"


def idempotency_key(team: str, week: str) -> str:
    """One digest per team per ISO week."""
    return f"digest:{team}:{week}"


def scheduled_in_week(settings: Settings, team: str, now: datetime) -> datetime:
    """When ``team``'s digest is scheduled in the ISO week of ``now`` (team-local), in UTC."""
    day, at = settings.digest_schedule(team)
    zone = settings.teams[team].zone
    local = now.astimezone(zone).date()
    on = local - timedelta(days=local.weekday()) + timedelta(days=WEEKDAYS.index(day))
    return datetime.combine(on, at, tzinfo=zone).astimezone(timezone.utc)


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
    due = scheduled_in_week(settings, team, now)
    if now >= due and store.get_json("digest", "numbers", team, week) is None:
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
    "a week ago" baseline, those inside it the trend and the peak, the freshest up to ``now``
    the queue "now"); without any, the snapshot's own ``queue_trend`` is used.
    ``last_week`` (from :func:`build_digest`) adds "vs last week";
    ``titles`` (``owner/name#123`` -> title) names the merged PRs among the longest waits.
    """
    hours = settings.teams[team]
    start, end = digest_window(hours, now)
    local_start = start.astimezone(hours.zone)
    week_start = local_start.date()
    week_end = (end.astimezone(hours.zone) - timedelta(days=1)).date()
    ordered = sorted(samples or snapshot.queue_trend, key=lambda s: s.at)
    inside = [s for s in ordered if start <= s.at < end]
    latest = [s for s in ordered if s.at <= now][-1:]
    before = [s for s in ordered if start - text.BASELINE_SLACK <= s.at < start]
    if before:
        baseline: QueueSample | None = before[-1]
    else:  # sampling began inside the week: compare with its first sample, said as such
        baseline = inside[0] if len(inside) > 1 else None
    a = snapshot.analysis
    warning = text.warning_text(snapshot, now)
    sections: list[tuple[str, str]] = [(WARNING, warning)] if warning else []
    sections += [
        (SHARES, text.shares_text(a)),
        (QUEUE, text.queue_text(snapshot, inside, baseline, start, hours, latest=latest)),
        (LATENCY, text.latency_text(snapshot, last_week.to_json() if last_week else None)),
        (REVIEWERS, text.reviewers_text(snapshot, settings.metrics.recovery_minutes)),
        (WINDOWS, text.windows_text(snapshot)),
        (CI, text.ci_text(snapshot)),
        (AI, text.ai_text(snapshot)),
    ]
    if a.large_prs_dominate:
        sections.append((SIZE, text.size_text(snapshot)))
    waits = text.waits_text(snapshot, titles or {})
    if waits:
        sections.append((WAITS, waits))
    sections.append((ACTION, text.action_text(a)))
    sections.append((DATA, text.data_text(snapshot, week_start, week_end, hours)))
    week = week_label(hours, now)
    return Digest(
        team=team,
        channel=hours.channel,
        week_start=week_start,
        week_end=week_end,
        headline=analysis_headline(a),
        snapshot=snapshot,
        idempotency_key=idempotency_key(team, week),
        sections=tuple(sections),
        queue_samples=_thin(inside),
    )


# --------------------------------------------------------------------------- helpers


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


def _thin(samples: Sequence[QueueSample]) -> tuple[QueueSample, ...]:
    """At most one sample per hour (the last): enough for a week's chart, small to carry."""
    per_hour: dict[int, QueueSample] = {}
    for s in samples:
        per_hour[int(s.at.timestamp() // (3600 / _CHART_POINTS_PER_HOUR))] = s
    return tuple(per_hour[k] for k in sorted(per_hour))
