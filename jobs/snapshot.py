"""Each team's snapshot: everything the bot shows, computed after a sample, swapped in whole.

:func:`compute_team_snapshot` is pure (records and samples in, a :class:`TeamSnapshot` out);
:func:`refresh_all` reads the store, computes every team under its own failure boundary and
writes each snapshot atomically, so the bot only ever reads (ARCHITECTURE.md "Data flow").
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from jobs import metrics
from jobs.analysis import analyse
from jobs.columnar import PrBlock
from jobs.errors import StoreUnavailable
from jobs.identity import for_settings as identity_for
from jobs.metrics._columns import within
from jobs.metrics.checks import workflow_stats
from jobs.metrics.latency import LATENCY_COLUMNS
from jobs.metrics.focus import Windows, team_windows, window_effect, windows_of
from jobs.model import PullRequest, QueueItem, QueueSample, ReviewerLoad, TeamSnapshot
from jobs.settings import Settings
from jobs.store import Store, TeamSources
from jobs.worktime import WorkCalendar

log = logging.getLogger(__name__)

HISTORY = timedelta(days=35)  # this week and the four before: what the analysis compares
FLOW_DAYS = 28  # flow balance days kept in the snapshot (the digest's chart reads them)
TREND_POINTS = 200  # at most this many queue samples in a snapshot (older ones thinned)


def compute_team_snapshot(
    settings: Settings,
    team_name: str,
    prs: Iterable[PullRequest] | metrics.Columns,
    samples: Sequence[QueueSample],
    *,
    now: datetime,
    errors: Sequence[str] = (),
    data_as_of: datetime | None = None,
    windows: Mapping[str, Windows] | None = None,
) -> TeamSnapshot:
    """The team's snapshot at ``now`` from ``prs`` (any repositories: only the team's are used).

    ``prs`` may instead be the team's PRs already as columns (``jobs.metrics.columns`` over
    its repositories' stored column blocks: the worker's path).

    Latency, reviewer load, CI and size mix are over ``settings.metrics.window_days`` (PRs
    merged, requests made, attempts created in it: docs/metrics.md "Window"); the queue is computed
    now (``jobs.metrics.queue_items``, the vectorised twin of ``jobs.queue.queue_now``); ``samples`` become the queue trend (the last
    ``max(window, 7)`` days); the analysis compares this week with the four before. ``errors``
    are the lines that degraded this snapshot; ``data_as_of`` the oldest sync among the team's
    repositories. ``windows`` (login -> the review windows on, ``jobs.metrics.focus.windows_of``)
    feed the review windows' effect (``jobs.metrics.focus``). Raises KeyError for an unknown
    team.
    """
    team = settings.teams[team_name]
    repos = {settings.full_repo(r) for r in team.repositories}
    if isinstance(prs, metrics.Columns):
        cols = prs
    else:
        cols = metrics.columns([pr for pr in prs if pr.repo in repos],
                               identity=identity_for(settings.identity))
    calendar = WorkCalendar.for_team(team)
    identity = identity_for(settings.identity)
    days = settings.metrics.window_days
    approvals = settings.metrics.required_approvals

    table = metrics.pr_table(cols, identity=identity, calendar=calendar, now=now,
                             required_approvals=approvals)
    requests = metrics.request_table(cols, identity=identity, team_members=_team_members(settings),
                                     calendar=calendar, now=now)
    reviews = metrics.review_table(cols, identity=identity, calendar=calendar, now=now)
    checks = metrics.check_table(cols, identity=identity)

    merged = metrics.window(table, now, days, LATENCY_COLUMNS)
    pickup_ai, pickup_other = metrics.ai_split(merged, "pickup")
    approval_ai, approval_other = metrics.ai_split(merged, "approval")
    merge_ai, merge_other = metrics.ai_split(merged, "merge")
    lead_ai, lead_other = metrics.ai_split(merged, "lead")
    loads = metrics.reviewer_loads(
        requests, reviews, now=now, window_days=days,
        recovery_minutes=settings.metrics.recovery_minutes,
        slack_ids={m.github: m.slack for m in team.members}, members=team.logins,
    )
    concentration = metrics.load_concentration(loads)
    workflows = workflow_stats(checks, since=now - timedelta(days=days), until=now)
    flow = metrics.flow_days(table, calendar=calendar, since=now - timedelta(days=FLOW_DAYS),
                             until=now)
    queue, items = metrics.queue_items(cols, identity=identity, calendar=calendar, now=now,
                                       required_approvals=approvals)
    loads = pending_from_queue(loads, items, members=team.logins,
                               slack_ids={m.github: m.slack for m in team.members})
    trend = _trend(samples, queue, now=now, days=max(days, 7))

    analysis = analyse(
        table,
        now=now,
        flow=flow,
        samples=trend,
        reviewers=loads,
        workflows=workflows,
        load_concentration=concentration,
        queue_items=items,
        ci_wait_hours=metrics.ci_wait_hours(table, now=now, days=7, business=True),
        tz=calendar.tz,
    )
    in_window = within(table["merged_at"], now - timedelta(days=days), now)
    focus = window_effect(reviews, table, windows=windows or {}, calendar=calendar, now=now,
                          members=team.logins, defaults=team_windows(settings, team_name), window_days=days,
                          recovery_minutes=settings.metrics.recovery_minutes)
    return TeamSnapshot(
        team=team_name,
        computed_at=now,
        data_as_of=data_as_of,
        window_days=days,
        queue=queue,
        queue_items=items,
        queue_trend=trend,
        pickup=metrics.pr_latency(merged, "pickup"),
        approval=metrics.pr_latency(merged, "approval"),
        merge=metrics.pr_latency(merged, "merge"),
        lead_time=metrics.pr_latency(merged, "lead"),
        pickup_ai=pickup_ai,
        pickup_other=pickup_other,
        request_response=metrics.request_latency(requests, now, days),
        pickup_by_repo=metrics.latency_by(merged, "repo", "pickup"),
        pickup_by_size=metrics.latency_by(merged, "size_bucket", "pickup"),
        reviewers=loads,
        load_concentration=concentration,
        focus_hours_week=round(metrics.focus_hours_per_week(loads, days), 2),
        workflows=workflows,
        ci_wait_hours=round(metrics.ci_wait_hours(table, now=now, days=days), 2),
        flow=flow,
        size_mix_week=metrics.size_mix(table, since=now - timedelta(days=7), until=now),
        size_mix_before=metrics.size_mix(table, since=now - HISTORY, until=now - timedelta(days=7)),
        merged_count=len(merged),
        ai_assisted_count=int(merged["ai_assisted"].astype(bool).sum()),
        bot_pr_count=int((in_window & table["bot"].to_numpy(dtype=bool)).sum()),
        analysis=analysis,
        errors=tuple(errors),
        approval_ai=approval_ai,
        approval_other=approval_other,
        merge_ai=merge_ai,
        merge_other=merge_other,
        lead_time_ai=lead_ai,
        lead_time_other=lead_other,
        focus=focus,
    )


RECOMPUTE_AFTER = timedelta(minutes=30)  # an unchanged team is computed again this often
# (ages in the queue and the windows move with time, not only with the records)


def refresh_all(
    settings: Settings,
    store: Store,
    *,
    now: datetime,
    errors: Sequence[str] = (),
    force: bool = False,
) -> dict[str, TeamSnapshot]:
    """Bring every team's snapshot up to date; returns each team's current snapshot, by team
    (a team whose computation failed is absent: its previous snapshot stays).

    Each team is :func:`refresh_team`: recomputed only when its inputs changed (or ``force``),
    under its own failure boundary (logged once, the other teams go on), written with one
    atomic ``store.put_snapshot``. Every team's sources are read first in one round trip
    (``Store.team_sources``), then the column blocks of every team whose inputs changed in
    one more (``Store.pr_blocks``; a repository shared by teams is read once). An unchanged
    team's entry is its stored snapshot's head (without queue items and trend). ``errors``
    (lines from the cycle, ``"owner/repo: ..."`` or ``"team name: ..."``) go to the snapshots
    they concern. Raises StoreUnavailable when Redis is down (nothing can be read or kept
    then).
    """
    out: dict[str, TeamSnapshot] = {}
    sources = store.team_sources({name: _reads(settings, name) for name in settings.teams},
                                 since=now - HISTORY, until=now)
    blocks: dict[str, PrBlock] = {}
    changed = [name for name in settings.teams if force or _changed(settings, name, sources[name], errors)]
    try:
        blocks.update(store.pr_blocks(r for name in changed for r in _reads(settings, name)[0]))
    except StoreUnavailable:
        raise
    except Exception:  # a block that cannot be read: each team reads its own, failing alone
        log.exception("column blocks could not be read together; reading them team by team")
    for name in settings.teams:
        try:
            snap = refresh_team(settings, store, name, now=now, errors=errors, force=force,
                                blocks_cache=blocks, sources=sources[name])
        except StoreUnavailable:
            raise
        except Exception:  # a team's bad data must not stop the other teams
            log.exception("snapshot failed for team %s", name)
            continue
        if snap is not None:
            out[name] = snap
    return out


def refresh_team(
    settings: Settings,
    store: Store,
    name: str,
    *,
    now: datetime,
    errors: Sequence[str] = (),
    force: bool = False,
    blocks_cache: dict[str, PrBlock] | None = None,
    sources: TeamSources | None = None,
) -> TeamSnapshot | None:
    """Compute and store one team's snapshot when its inputs changed; the unit of work a
    worker job runs per team (teams are independent of each other).

    Inputs: its repositories' write counters, the team's settings and error lines, its
    members' review windows (read in one round trip, ``Store.team_sources``, unless
    ``sources`` brings them); an unchanged team is left as stored unless its snapshot
    is older than :data:`RECOMPUTE_AFTER` (or ``force``). Reads the team's PRs as one column
    block per repository (``Store.pr_blocks``: no record object, the queue included; those
    in ``blocks_cache`` are not read again). Returns the new snapshot, or the stored head
    when nothing changed (None if there is none). Raises StoreUnavailable, and whatever the
    computation raises on bad data.
    """
    repos = _reads(settings, name)[0]
    if sources is None:
        sources = store.team_sources({name: _reads(settings, name)}, since=now - HISTORY,
                                     until=now)[name]
    mine = _errors_for(errors, name, repos)
    synced = [c.synced_at for c in sources.cursors if c is not None and c.synced_at is not None]
    # sync times move every cycle even when nothing changed: not an input (an unchanged
    # snapshot says its data is as old as when it was computed, which errs on the safe side)
    windows = _windows(settings, name, sources)
    inputs = _inputs_of(settings, name, sources, errors)
    if not force and sources.inputs == inputs:
        head = store.get_snapshot_head(name)
        if head is not None and head.computed_at <= now < head.computed_at + RECOMPUTE_AFTER:
            return head
    cache = blocks_cache if blocks_cache is not None else {}
    cache.update(store.pr_blocks([r for r in repos if r not in cache]))
    identity = identity_for(settings.identity)
    mine_blocks = [cache[repo] for repo in sorted(set(repos))]
    cols = metrics.columns(mine_blocks, identity=identity)
    snap = compute_team_snapshot(settings, name, cols, sources.samples, now=now, errors=mine,
                                 data_as_of=min(synced) if synced else None, windows=windows)
    store.put_snapshot(snap, inputs=inputs)
    return snap


def _reads(settings: Settings, name: str) -> tuple[list[str], frozenset[str]]:
    """The team's repositories (full names) and its members' logins: what its sources are."""
    team = settings.teams[name]
    return [settings.full_repo(r) for r in team.repositories], team.logins


def _changed(settings: Settings, name: str, sources: TeamSources, errors: Sequence[str]) -> bool:
    """Whether the team's inputs differ from its stored snapshot's (True when they cannot be
    told: its own refresh then meets the problem, under its failure boundary)."""
    try:
        return sources.inputs != _inputs_of(settings, name, sources, errors)
    except Exception:  # noqa: BLE001  (raised again, and logged, by the team's own refresh)
        return True


def _windows(settings: Settings, name: str, sources: TeamSources) -> dict[str, Windows]:
    return windows_of(settings, name, sources.windows, default_since=sources.default_since)


def _inputs_of(settings: Settings, name: str, sources: TeamSources, errors: Sequence[str]) -> str:
    """The fingerprint of what the team's snapshot is computed from (see :func:`refresh_team`)."""
    team = settings.teams[name]
    repos = _reads(settings, name)[0]
    return _fingerprint(sources.generations, team.model_dump_json(),
                        settings.metrics.model_dump_json(), _errors_for(errors, name, repos),
                        sorted(_windows(settings, name, sources).items()))


def _fingerprint(*parts: object) -> str:
    """A short stable digest of what a snapshot was computed from."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


def pending_from_queue(
    loads: Sequence[ReviewerLoad],
    items: Sequence[QueueItem],
    *,
    members: Collection[str],
    slack_ids: Mapping[str, str | None] | None = None,
) -> tuple[ReviewerLoad, ...]:
    """``loads`` with ``pending`` counted from the team's queue, so the two agree by construction.

    A reviewer's ``pending`` is the number of the team's queue items in the reviewer's turn
    (``QueueItem.turn == "reviewer"``) whose first-named team member in ``waiting_on`` is
    them: ``waiting_on`` lists outstanding requests oldest first, so a PR naming several
    people is counted once, for whoever was asked first and still owes a review. Requests to
    a GitHub team (``team:slug``) name no one, so they count for nobody; PRs that are
    approved, in the author's or CI's turn, drafts, bot PRs, closed or outside the team's
    repositories are not in the queue and never count. Hence ``sum(pending) <= queue.reviewer
    <= queue.length``. Members (lower-case logins) named in the queue without a load row get
    one with zero requests. Ordered as ``jobs.metrics.reviewer_loads`` orders them.
    """
    allowed = {m.lower() for m in members}
    owed: Counter[str] = Counter()
    for item in items:
        if item.turn != "reviewer":
            continue
        first = next((w.lower() for w in item.waiting_on
                      if not w.startswith("team:") and w.lower() in allowed), None)
        if first is not None:
            owed[first] += 1
    out = [replace(r, pending=owed.pop(r.login.lower(), 0)) for r in loads]
    slack = {k.lower(): v for k, v in (slack_ids or {}).items()}
    out += [ReviewerLoad(login=login, slack_id=slack.get(login), requests_direct=0,
                         requests_via_team=0, re_requests=0, context_switches=0, reviews=0,
                         pending=n, focus_hours=0.0, requests_per_day=0.0)
            for login, n in sorted(owed.items())]
    out.sort(key=lambda r: (-(r.requests_direct + r.requests_via_team + r.re_requests),
                            -r.reviews, r.login))
    return tuple(out)


# ---------------------------------------------------------------------------- helpers


def _team_members(settings: Settings) -> dict[str, list[str]]:
    """GitHub team slug -> the logins of every configured team that lists the slug."""
    out: dict[str, list[str]] = {}
    for team in settings.teams.values():
        for slug in team.github_teams:
            out.setdefault(slug.lower(), []).extend(m.github for m in team.members)
    return out


def _trend(
    samples: Sequence[QueueSample], current: QueueSample, *, now: datetime, days: int
) -> tuple[QueueSample, ...]:
    """The samples of the last ``days`` up to ``now``, oldest first, ending with the current
    queue; thinned to one per hour (the last of each) when there are too many."""
    since = now - timedelta(days=days)
    recent = sorted((s for s in samples if since <= s.at < now), key=lambda s: s.at)
    recent.append(current)
    if len(recent) > TREND_POINTS:
        by_hour: dict[datetime, QueueSample] = {}
        for s in recent:
            by_hour[s.at.replace(minute=0, second=0, microsecond=0)] = s
        recent = list(by_hour.values())
        if len(recent) > TREND_POINTS:
            step = len(recent) / TREND_POINTS
            recent = [recent[int(i * step)] for i in range(TREND_POINTS - 1)] + [recent[-1]]
    return tuple(recent)


def _errors_for(errors: Iterable[str], team: str, repos: Sequence[str]) -> tuple[str, ...]:
    """The error lines about this team or one of its repositories (or about no one in
    particular, like the organisation listing)."""
    mine = []
    for line in errors:
        subject = line.partition(":")[0].strip()
        if subject in repos or subject == f"team {team}" or ("/" not in subject and not subject.startswith("team ")):
            mine.append(line)
    return tuple(mine)


__all__ = ["compute_team_snapshot", "pending_from_queue", "refresh_all", "refresh_team"]
