"""Frozen domain records (what we collect) and results (what we compute).

Records are what ``jobs.github.parse`` produces from GitHub payloads and what ``jobs.store``
keeps; results are what ``jobs.metrics``/``jobs.analysis`` compute and what ``bot`` renders.
Every datetime is timezone-aware UTC. Durations are floats in hours unless the name says
otherwise (``_min`` for minutes). ``None`` means "no such event / not measurable", never ``-1``.

Serialisation (to JSON for Redis and back) goes through :mod:`jobs.codec`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

# --------------------------------------------------------------------------- records

EventKind = Literal[
    "ready_for_review",
    "convert_to_draft",
    "review_requested",
    "review_request_removed",
    "head_pushed",  # a commit pushed (or force-pushed) to the head branch: head changed
    "reopened",
    "closed",
    "merged",
]

ReviewState = Literal["APPROVED", "CHANGES_REQUESTED", "COMMENTED", "DISMISSED", "PENDING"]

ActorType = Literal["User", "Bot", "Organization", "Mannequin", "Deleted"]


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    """One event of a PR's timeline that a clock can start or stop on.

    ``actor`` is who did it (``None`` for a deleted account). For review requests exactly one
    of ``requested_reviewer`` (a login) or ``requested_team`` (a team slug) is set.
    """

    kind: EventKind
    at: datetime
    actor: str | None = None
    requested_reviewer: str | None = None
    requested_team: str | None = None
    sha: str | None = None  # for head_pushed: the new head


@dataclass(frozen=True, slots=True)
class Review:
    """A submitted review. ``author`` is ``None`` for a deleted account (it still counts as a
    human review for the clocks, attributed to no reviewer)."""

    author: str | None
    author_type: ActorType
    state: ReviewState
    submitted_at: datetime
    commit_sha: str | None = None


@dataclass(frozen=True, slots=True)
class CheckRun:
    """One attempt of a CI run (a workflow run attempt, or a check run) on a PR commit.

    ``run_id`` groups the attempts of one run; ``attempt`` starts at 1. An attempt queues from
    ``created_at`` (for a rerun: its job's creation), runs from ``started_at`` to
    ``completed_at``. ``conclusion`` is GitHub's (``success``, ``failure``, ``cancelled``,
    ``timed_out``, ...) or ``None`` while it has not completed.
    """

    name: str
    run_id: int
    attempt: int
    head_sha: str
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    conclusion: str | None


@dataclass(frozen=True, slots=True)
class PullRequest:
    """Everything Flowbot keeps about one PR: its facts and the events its clocks read."""

    repo: str  # "owner/name"
    number: int
    title: str
    url: str
    author: str | None
    author_type: ActorType
    draft: bool
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    merged_at: datetime | None
    head_sha: str
    base_ref: str
    additions: int
    deletions: int
    changed_files: int
    labels: tuple[str, ...] = ()
    first_commit_at: datetime | None = None
    co_authors: tuple[str, ...] = ()  # "Name <email>" from Co-authored-by trailers
    events: tuple[TimelineEvent, ...] = ()
    reviews: tuple[Review, ...] = ()
    checks: tuple[CheckRun, ...] = ()
    # what GitHub did not give in full ("commits", "reviews", "timeline"): the clocks of such a
    # PR may be wrong, and /flow why and doctor say so
    incomplete: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """``owner/name#number``: how people and the store name a PR."""
        return f"{self.repo}#{self.number}"

    @property
    def size(self) -> int:
        """Lines changed: additions + deletions (docs/metrics.md "PR size")."""
        return self.additions + self.deletions

    @property
    def state(self) -> Literal["open", "merged", "closed"]:
        if self.merged_at is not None:
            return "merged"
        return "closed" if self.closed_at is not None else "open"


SIZE_BUCKETS: tuple[tuple[str, int], ...] = (("XS", 50), ("S", 200), ("M", 400), ("L", 800))


def size_bucket(lines: int) -> str:
    """XS <= 50, S <= 200, M <= 400, L <= 800 lines changed, XL above (docs/metrics.md "PR size")."""
    for name, limit in SIZE_BUCKETS:
        if lines <= limit:
            return name
    return "XL"


@dataclass(frozen=True, slots=True)
class RepoCursor:
    """Where one repository's incremental sync stands. Moves only after a good write."""

    repo: str
    updated_at: datetime | None  # newest PR ``updated_at`` fully stored
    collect_version: int  # what is collected; a change resets the cursor
    etag: str | None = None  # of the last PR-list poll
    resume_after: str | None = None  # page cursor of an interrupted backfill
    synced_at: datetime | None = None  # when this repository last completed a sync
    # (sampler, additive) an unfinished pass: the newest update it saw, the list ETag taken
    # when it started, and the oldest update it goes back to
    pass_top: datetime | None = None
    pass_stop: datetime | None = None  # the update time the unfinished pass goes down to
    pass_etag: str | None = None
    horizon: datetime | None = None  # the oldest update time collected so far
    runs_since: datetime | None = None  # CI runs created before this are stored


@dataclass(frozen=True, slots=True)
class QueueSample:
    """The team's queue at one sampling moment, by whose turn it is (docs/metrics.md "Queue")."""

    at: datetime
    reviewer: int
    author: int
    ci: int
    approved: int  # approved, waiting to merge (sampled beside the queue length)
    oldest_hours: float | None  # calendar, draft time excluded
    oldest_business_hours: float | None

    @property
    def length(self) -> int:
        """Queue length: open, non-draft, non-bot PRs with no human approval."""
        return self.reviewer + self.author + self.ci


# --------------------------------------------------------------------------- results

Stage = Literal["coding", "pickup", "review", "merge"]
Turn = Literal["reviewer", "author", "ci", "approved"]


@dataclass(frozen=True, slots=True)
class Percentiles:
    """p50/p75/p90 in hours (linear interpolation) over ``count`` PRs; ``None`` when empty."""

    count: int = 0
    p50: float | None = None
    p75: float | None = None
    p90: float | None = None


@dataclass(frozen=True, slots=True)
class Latency:
    """One latency metric reported two ways: calendar hours and the team's business hours."""

    calendar: Percentiles = field(default_factory=Percentiles)
    business: Percentiles = field(default_factory=Percentiles)


@dataclass(frozen=True, slots=True)
class QueueItem:
    """One waiting PR as the bot lists it."""

    repo: str
    number: int
    title: str
    url: str
    author: str | None
    turn: Turn
    waiting_on: tuple[str, ...]  # logins (or "team:slug") whose turn it is
    age_hours: float
    age_business_hours: float
    size: str  # XS/S/M/L/XL
    ai_assisted: bool


@dataclass(frozen=True, slots=True)
class ReviewerLoad:
    """One reviewer's week (docs/metrics.md "Reviewer interruptions")."""

    login: str
    slack_id: str | None
    requests_direct: int
    requests_via_team: int
    re_requests: int
    context_switches: int
    reviews: int
    pending: int  # PRs waiting on them right now
    focus_hours: float  # interruptions x recovery minutes, in hours
    requests_per_day: float  # per working day, max over the window's days


@dataclass(frozen=True, slots=True)
class FocusLoad:
    """One person's review sessions against their review windows over the snapshot's window
    (docs/metrics.md "Review windows: interruptions inside and outside them").

    ``on``: they have windows turned on; ``since``: when (``None``: off, or unknown). ``review_starts`` =
    ``inside + outside``; ``batches`` are the window sessions the inside starts made;
    interruptions = ``batches + outside``. ``saved_hours``: what batching saved;
    ``would_save_hours``: what batching the outside starts would save. ``pickup_before`` and
    ``pickup_after``: the pickup wait of the PRs they picked up in the 28 days before ``since``
    and since then (empty without windows).
    """

    login: str
    on: bool = False
    since: datetime | None = None
    review_starts: int = 0
    inside: int = 0
    batches: int = 0
    outside: int = 0
    saved_hours: float = 0.0
    would_save_hours: float = 0.0
    pickup_before: Latency = field(default_factory=Latency)
    pickup_after: Latency = field(default_factory=Latency)

    @property
    def interruptions(self) -> int:
        """Separate review sessions: one per window batch, one per start outside a window."""
        return self.batches + self.outside


@dataclass(frozen=True, slots=True)
class FocusSummary:
    """A team's review windows effect: its people (most interruptions first) and the team's
    pickup before and after windows, pooled over its members with windows. ``defaults`` names
    the windows the would-save figure moves starts into for people without their own
    (``"09:00-09:30"``...). The team's counts are its people's sums."""

    people: tuple[FocusLoad, ...] = ()
    pickup_before: Latency = field(default_factory=Latency)
    pickup_after: Latency = field(default_factory=Latency)
    defaults: tuple[str, ...] = ()

    def total(self) -> FocusLoad:
        """The team's sums as one row (login ``""``; ``since`` the earliest of its people's)."""
        sinces = [p.since for p in self.people if p.since is not None]
        return FocusLoad(
            login="",
            on=any(p.on for p in self.people),
            since=min(sinces) if sinces else None,
            review_starts=sum(p.review_starts for p in self.people),
            inside=sum(p.inside for p in self.people),
            batches=sum(p.batches for p in self.people),
            outside=sum(p.outside for p in self.people),
            saved_hours=sum(p.saved_hours for p in self.people),
            would_save_hours=sum(p.would_save_hours for p in self.people),
            pickup_before=self.pickup_before,
            pickup_after=self.pickup_after,
        )


@dataclass(frozen=True, slots=True)
class WorkflowStats:
    """CI per workflow on PR commits (docs/metrics.md "CI duration")."""

    name: str
    attempts: int
    queue_p50_min: float | None
    queue_p90_min: float | None
    run_p50_min: float | None
    run_p90_min: float | None
    failure_rate: float | None
    rerun_rate: float | None
    # Runs as people count them: a rerun is one run with two attempts. ``in_progress``: runs
    # whose latest attempt has no conclusion yet. 0 in snapshots stored before they existed.
    runs: int = 0
    in_progress: int = 0


@dataclass(frozen=True, slots=True)
class StageShare:
    """A stage's share of total waiting, this week vs the previous four."""

    stage: Stage
    hours_this_week: float  # business hours summed over PRs merged this week
    share_this_week: float  # 0..1
    share_before: float  # 0..1, the four weeks before


@dataclass(frozen=True, slots=True)
class Contributor:
    """A name that explains part of the waiting, with the number that makes it so."""

    name: str
    value: float
    unit: str  # "h", "requests", "min", "PRs"
    detail: str = ""
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Action:
    """The one suggested action, with the numbers that justify it."""

    code: str  # stable id of the rule that chose it, e.g. "spread_reviews"
    text: str
    because: str


@dataclass(frozen=True, slots=True)
class Analysis:
    """The "why" (docs/metrics.md "The digest's why")."""

    stage_shares: tuple[StageShare, ...]
    dominant_stage: Stage | None
    previous_dominant_stage: Stage | None
    shifted: bool
    amdahl_drop_pct: float | None  # median lead time drop if coding got 2x faster
    arrivals_per_day: float
    completions_per_day: float
    queue_growing: bool
    top_repos: tuple[Contributor, ...] = ()
    top_reviewers: tuple[Contributor, ...] = ()
    slowest_workflows: tuple[Contributor, ...] = ()
    longest_waits: tuple[Contributor, ...] = ()
    large_prs_dominate: bool = False
    action: Action | None = None
    headline: str = ""
    queue_trend_per_day: float | None = None  # sampled queue length slope, PRs per day
    merged_this_week: int = 0  # PRs the stage shares of this week are computed from
    merged_before: int = 0  # PRs behind the shares of the four weeks before


@dataclass(frozen=True, slots=True)
class FlowDay:
    """Little's law inputs for one day (team's local date)."""

    day: date
    arrivals: int  # PRs that became ready for review
    completions: int  # PRs that got their first human approval or were merged/closed


@dataclass(frozen=True, slots=True)
class TeamSnapshot:
    """Everything the bot shows about one team, computed after a sample, swapped in whole."""

    team: str
    computed_at: datetime
    data_as_of: datetime | None  # the oldest last-sync time among the team's repositories
    window_days: int
    queue: QueueSample
    queue_items: tuple[QueueItem, ...]  # oldest first
    queue_trend: tuple[QueueSample, ...]  # sampled, oldest first
    pickup: Latency
    approval: Latency
    merge: Latency
    lead_time: Latency
    pickup_ai: Latency  # AI-assisted PRs only
    pickup_other: Latency
    request_response: Latency  # per-request response time
    pickup_by_repo: tuple[tuple[str, Latency], ...]
    pickup_by_size: tuple[tuple[str, Latency], ...]
    reviewers: tuple[ReviewerLoad, ...]  # most requests first
    load_concentration: float | None  # share of requests held by the top two reviewers
    focus_hours_week: float
    workflows: tuple[WorkflowStats, ...]  # slowest p90 first
    ci_wait_hours: float  # hours PRs waited on CI in the window
    flow: tuple[FlowDay, ...]
    size_mix_week: tuple[tuple[str, float], ...]  # bucket -> share of PRs this week
    size_mix_before: tuple[tuple[str, float], ...]
    merged_count: int
    ai_assisted_count: int
    bot_pr_count: int  # non-AI bot PRs, excluded from latency and counted apart
    analysis: Analysis
    errors: tuple[str, ...] = ()  # what degraded this snapshot ("acme/api: GitHub 502")
    # The AI split of the other latency metrics (docs/metrics.md "AI split"); pickup's is
    # ``pickup_ai``/``pickup_other``. Defaults keep snapshots stored before them readable.
    approval_ai: Latency = field(default_factory=Latency)  # AI-assisted PRs only
    approval_other: Latency = field(default_factory=Latency)
    merge_ai: Latency = field(default_factory=Latency)
    merge_other: Latency = field(default_factory=Latency)
    lead_time_ai: Latency = field(default_factory=Latency)
    lead_time_other: Latency = field(default_factory=Latency)
    # Review windows' effect (docs/metrics.md "Review windows"); empty in older snapshots.
    focus: FocusSummary = field(default_factory=FocusSummary)

    def ai_split(self) -> tuple[tuple[str, Latency, Latency], ...]:
        """(metric, AI-assisted, other) for the four latency metrics, in the order every
        surface lists them: ``pickup``, ``approval``, ``merge``, ``lead``."""
        return (
            ("pickup", self.pickup_ai, self.pickup_other),
            ("approval", self.approval_ai, self.approval_other),
            ("merge", self.merge_ai, self.merge_other),
            ("lead", self.lead_time_ai, self.lead_time_other),
        )


Severity = Literal["warn", "critical"]


@dataclass(frozen=True, slots=True)
class Alert:
    """A threshold alert, or a recovery notice (``recovered=True``), ready to deliver."""

    team: str
    rule: str
    severity: Severity
    value: float
    threshold: float
    unit: str
    message: str
    at: datetime
    idempotency_key: str
    recipients: tuple[str, ...]  # Slack user IDs (DM) and/or channel IDs
    recovered: bool = False
    details: tuple[str, ...] = ()
    episode: str = ""  # which breach episode it belongs to (snooze/acknowledge buttons carry it)


@dataclass(frozen=True, slots=True)
class Digest:
    """A team's weekly digest, ready to deliver."""

    team: str
    channel: str
    week_start: date
    week_end: date
    headline: str
    snapshot: TeamSnapshot
    idempotency_key: str
    chart_png: bytes | None = None
    sections: tuple[tuple[str, str], ...] = ()  # (title, plain text body)
    queue_samples: tuple[QueueSample, ...] = ()  # the week's queue, thinned (for the chart)
