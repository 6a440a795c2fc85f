"""Pure: the team's review queue right now, by whose turn it is (docs/metrics.md "Queue").

The queue counts open, non-draft, non-bot PRs with no human approval; approved PRs waiting to
merge are counted beside it. Each PR sits in exactly one bucket, first match wins:
approved; CI (the latest attempt of a check on the head commit failed or has not completed);
author (the latest human review asks for changes and nothing was pushed or requested since);
reviewer. Age is ``now`` minus ``ready_at``, less time spent back in draft.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol

from jobs.identity import Identity
from jobs.model import CheckRun, PullRequest, QueueItem, QueueSample, Turn, size_bucket
from jobs.timeline import read_events

PASSING = frozenset({"success", "neutral", "skipped"})


class BusinessHours(Protocol):
    """What the queue needs of a team's calendar (``jobs.worktime.WorkCalendar``)."""

    def hours_between(self, start: datetime, end: datetime) -> float: ...


def queue_now(
    prs: Iterable[PullRequest],
    *,
    identity: Identity,
    calendar: BusinessHours,
    now: datetime,
    required_approvals: int = 1,
) -> tuple[QueueSample, tuple[QueueItem, ...]]:
    """The queue sample at ``now`` and its items, oldest first.

    Pass the team's PRs (those of its repositories). Returns the counts per bucket and the
    oldest waiting age (calendar and business hours, draft time excluded) over the unapproved
    queue.
    """
    items: list[QueueItem] = []
    for pr in prs:
        if pr.state != "open" or pr.draft or pr.created_at > now:
            continue
        if identity.is_excluded_bot_pr(pr):
            continue
        items.append(_item(pr, identity=identity, calendar=calendar, now=now,
                           required_approvals=required_approvals))
    return sample_of(items, now=now)


def sample_of(items: list[QueueItem], *, now: datetime) -> tuple[QueueSample, tuple[QueueItem, ...]]:
    """The queue's sample (how many PRs in each turn, the oldest waiting) and its items,
    oldest first: one assembly for the per-PR rules here and the vectorised twin
    (``jobs.metrics.queue``)."""
    items = sorted(items, key=lambda i: (-i.age_hours, i.repo, i.number))
    counts = dict.fromkeys(("reviewer", "author", "ci", "approved"), 0)
    for item in items:
        counts[item.turn] += 1
    waiting = [i for i in items if i.turn != "approved"]
    sample = QueueSample(
        at=now,
        reviewer=counts["reviewer"],
        author=counts["author"],
        ci=counts["ci"],
        approved=counts["approved"],
        oldest_hours=max((i.age_hours for i in waiting), default=None),
        oldest_business_hours=max((i.age_business_hours for i in waiting), default=None),
    )
    return sample, tuple(items)


def latest_attempts(checks: Sequence[CheckRun], sha: str) -> list[CheckRun]:
    """The latest attempt of each check (by name) on commit ``sha``."""
    latest: dict[str, CheckRun] = {}
    for run in checks:
        if run.head_sha != sha:
            continue
        seen = latest.get(run.name)
        if seen is None or (run.created_at, run.attempt) > (seen.created_at, seen.attempt):
            latest[run.name] = run
    return list(latest.values())


def _item(
    pr: PullRequest,
    *,
    identity: Identity,
    calendar: BusinessHours,
    now: datetime,
    required_approvals: int,
) -> QueueItem:
    # ready_at and the time back in draft as jobs.timeline reads them (one definition)
    events = read_events(pr, identity=identity, now=now)
    start = events.ready_at.at if events.ready_at is not None else pr.created_at
    drafted = [(max(a, start), b) for a, b in events.draft_spans if b > start]
    age = (now - start).total_seconds() / 3600 - sum((b - a).total_seconds() for a, b in drafted) / 3600
    age_bh = calendar.hours_between(start, now) - sum(calendar.hours_between(a, b) for a, b in drafted)
    turn, waiting_on = _turn(pr, identity=identity, now=now, required_approvals=required_approvals)
    return QueueItem(
        repo=pr.repo,
        number=pr.number,
        title=pr.title,
        url=pr.url,
        author=pr.author,
        turn=turn,
        waiting_on=waiting_on,
        age_hours=max(0.0, age),
        age_business_hours=max(0.0, age_bh),
        size=size_bucket(pr.size),
        ai_assisted=identity.is_ai_assisted(pr),
    )


def _turn(
    pr: PullRequest, *, identity: Identity, now: datetime, required_approvals: int
) -> tuple[Turn, tuple[str, ...]]:
    author = (pr.author or "").lower()
    human = sorted(
        (
            r
            for r in pr.reviews
            if r.submitted_at <= now
            and r.state in ("APPROVED", "CHANGES_REQUESTED", "COMMENTED")
            and identity.is_human_reviewer(r.author, r.author_type)
            and (r.author is None or r.author.lower() != author)
        ),
        key=lambda r: r.submitted_at,
    )
    verdicts: dict[str, str] = {}
    for i, r in enumerate(human):
        if r.state != "COMMENTED":  # a deleted account's verdict counts, attributed to no one
            verdicts[r.author.lower() if r.author else f"(deleted {i})"] = r.state
    approvals = sum(1 for v in verdicts.values() if v == "APPROVED")
    blocked = any(v == "CHANGES_REQUESTED" for v in verdicts.values())
    if approvals >= required_approvals and not blocked:
        return "approved", ((pr.author or "author"),)
    attempts = latest_attempts(pr.checks, pr.head_sha)
    if any(a.completed_at is None or a.completed_at > now or (a.conclusion or "") not in PASSING
           for a in attempts):
        return "ci", ("CI",)
    if human and human[-1].state == "CHANGES_REQUESTED":
        since = human[-1].submitted_at
        moved = any(
            e.kind in ("head_pushed", "review_requested") and since < e.at <= now for e in pr.events
        )
        if not moved:
            return "author", ((pr.author or "author"),)
    return "reviewer", _pending_reviewers(pr, now=now)


def _pending_reviewers(pr: PullRequest, *, now: datetime) -> tuple[str, ...]:
    """Requested reviewers (or ``team:slug``) not yet answered and not removed."""
    pending: dict[str, datetime] = {}
    for e in sorted(pr.events, key=lambda e: e.at):
        if e.at > now:
            break
        who = e.requested_reviewer or (f"team:{e.requested_team}" if e.requested_team else None)
        if who is None:
            continue
        if e.kind == "review_requested":
            pending[who] = e.at
        elif e.kind == "review_request_removed":
            pending.pop(who, None)
    for r in pr.reviews:
        if r.author is not None and r.author in pending and r.submitted_at >= pending[r.author]:
            pending.pop(r.author)
    return tuple(pending) or ("reviewers",)
