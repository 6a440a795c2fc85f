"""Small factories for test data: keyword defaults, fixed timestamps."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from jobs.analysis import headline
from jobs.model import CheckRun, PullRequest, Review, TimelineEvent

if TYPE_CHECKING:
    from jobs.model import TeamSnapshot

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)  # Monday 09:00 UTC


def at(hours: float = 0.0, *, start: datetime = T0) -> datetime:
    """``T0`` plus ``hours``."""
    return start + timedelta(hours=hours)


def event(kind: str, hours: float, **kw: Any) -> TimelineEvent:
    return TimelineEvent(kind=kind, at=at(hours), **kw)  # type: ignore[arg-type]


def review(author: str | None, state: str, hours: float, *, author_type: str = "User") -> Review:
    return Review(author=author, author_type=author_type, state=state, submitted_at=at(hours))  # type: ignore[arg-type]


def check(name: str = "ci", *, run_id: int = 1, attempt: int = 1, created: float = 0.0,
          started: float | None = 0.1, completed: float | None = 0.5,
          conclusion: str | None = "success", sha: str = "abc123") -> CheckRun:
    return CheckRun(
        name=name, run_id=run_id, attempt=attempt, head_sha=sha, created_at=at(created),
        started_at=at(started) if started is not None else None,
        completed_at=at(completed) if completed is not None else None, conclusion=conclusion,
    )


def pr(number: int = 1, *, repo: str = "acme/api", author: str | None = "alice",
       author_type: str = "User", created: float = 0.0, updated: float | None = None,
       merged: float | None = None, closed: float | None = None, draft: bool = False,
       title: str | None = None, additions: int = 40, deletions: int = 10,
       first_commit: float | None = -2.0, labels: tuple[str, ...] = (),
       co_authors: tuple[str, ...] = (), events: tuple[TimelineEvent, ...] = (),
       reviews: tuple[Review, ...] = (), checks: tuple[CheckRun, ...] = (),
       head_sha: str = "abc123") -> PullRequest:
    """A PR with sensible defaults; hours are relative to ``T0``."""
    closed_at = closed if closed is not None else merged
    last = max([created] + [h for h in (merged, closed) if h is not None])
    return PullRequest(
        repo=repo, number=number, title=title or f"Change {number}",
        url=f"https://github.com/{repo}/pull/{number}", author=author,
        author_type=author_type, draft=draft, created_at=at(created),  # type: ignore[arg-type]
        updated_at=at(updated if updated is not None else last),
        closed_at=at(closed_at) if closed_at is not None else None,
        merged_at=at(merged) if merged is not None else None, head_sha=head_sha,
        base_ref="main", additions=additions, deletions=deletions, changed_files=3,
        labels=labels, first_commit_at=at(first_commit) if first_commit is not None else None,
        co_authors=co_authors, events=events, reviews=reviews, checks=checks,
    )


# --------------------------------------------------------------------------- snapshot


def snapshot(**overrides: Any) -> TeamSnapshot:
    """A realistic, hand-built team snapshot (team ``platform``, computed at ``T0``).

    The numbers tell one coherent story: pickup wait dominates this week (it was review
    before), the queue grows because arrivals exceed completions, and two reviewers hold most
    requests, so the suggested action is to spread reviews. Pass any ``TeamSnapshot`` field to
    override it (``queue=QueueSample(...)``, ``analysis=...``, ``errors=(...)``).
    """
    from dataclasses import replace
    from datetime import date

    from jobs.model import (
        Action,
        Analysis,
        Contributor,
        FlowDay,
        Latency,
        Percentiles,
        QueueItem,
        QueueSample,
        ReviewerLoad,
        StageShare,
        TeamSnapshot,
        WorkflowStats,
    )

    def lat(n: int, p50: float, p75: float, p90: float, bfac: float = 0.45) -> Latency:
        return Latency(
            calendar=Percentiles(count=n, p50=p50, p75=p75, p90=p90),
            business=Percentiles(
                count=n, p50=round(p50 * bfac, 2), p75=round(p75 * bfac, 2),
                p90=round(p90 * bfac, 2),
            ),
        )

    now = T0
    queue = QueueSample(at=now, reviewer=7, author=2, ci=1, approved=2,
                        oldest_hours=52.5, oldest_business_hours=18.0)
    trend = tuple(
        QueueSample(at=now - timedelta(days=6 - d), reviewer=r, author=2, ci=1, approved=1,
                    oldest_hours=20.0 + 5 * d, oldest_business_hours=8.0 + 2 * d)
        for d, r in enumerate((3, 4, 4, 5, 6, 6, 7))
    )
    items = (
        QueueItem(repo="acme/api", number=412, title="Add <!channel> rate limiter & retries",
                  url="https://github.com/acme/api/pull/412", author="alice", turn="reviewer",
                  waiting_on=("bob", "team:backend"), age_hours=52.5, age_business_hours=18.0,
                  size="L", ai_assisted=True),
        QueueItem(repo="acme/web", number=88, title="Fix login redirect",
                  url="https://github.com/acme/web/pull/88", author="carol", turn="author",
                  waiting_on=("carol",), age_hours=30.0, age_business_hours=11.0, size="S",
                  ai_assisted=False),
        QueueItem(repo="acme/api", number=415, title="Bump schema version",
                  url="https://github.com/acme/api/pull/415", author="dave", turn="ci",
                  waiting_on=("dave",), age_hours=6.0, age_business_hours=4.0, size="XS",
                  ai_assisted=False),
        QueueItem(repo="acme/api", number=409, title="Split billing service",
                  url="https://github.com/acme/api/pull/409", author="bob", turn="approved",
                  waiting_on=("bob",), age_hours=3.0, age_business_hours=3.0, size="M",
                  ai_assisted=False),
    )
    reviewers = (
        ReviewerLoad(login="bob", slack_id="U0BOB0001", requests_direct=14, requests_via_team=4,
                     re_requests=3, context_switches=9, reviews=12, pending=5,
                     focus_hours=11.5, requests_per_day=7.0),
        ReviewerLoad(login="erin", slack_id="U0ERIN001", requests_direct=9, requests_via_team=4,
                     re_requests=1, context_switches=5, reviews=10, pending=2,
                     focus_hours=7.3, requests_per_day=4.0),
        ReviewerLoad(login="carol", slack_id=None, requests_direct=3, requests_via_team=2,
                     re_requests=0, context_switches=2, reviews=4, pending=0,
                     focus_hours=2.7, requests_per_day=2.0),
    )
    workflows = (
        WorkflowStats(name="integration", attempts=64, queue_p50_min=2.0, queue_p90_min=9.5,
                      run_p50_min=18.0, run_p90_min=34.0, failure_rate=0.19, rerun_rate=0.12,
                      runs=57, in_progress=2),
        WorkflowStats(name="unit", attempts=120, queue_p50_min=0.5, queue_p90_min=2.0,
                      run_p50_min=4.0, run_p90_min=7.5, failure_rate=0.05, rerun_rate=0.02,
                      runs=118, in_progress=0),
    )
    flow = tuple(
        FlowDay(day=date(2026, 2, 23) + timedelta(days=d), arrivals=a, completions=c)
        for d, (a, c) in enumerate(((5, 3), (6, 4), (4, 4), (7, 3), (5, 4), (0, 0), (0, 1)))
    )
    analysis = Analysis(
        stage_shares=(
            StageShare(stage="coding", hours_this_week=40.0, share_this_week=0.2, share_before=0.25),
            StageShare(stage="pickup", hours_this_week=96.0, share_this_week=0.48, share_before=0.3),
            StageShare(stage="review", hours_this_week=44.0, share_this_week=0.22, share_before=0.35),
            StageShare(stage="merge", hours_this_week=20.0, share_this_week=0.1, share_before=0.1),
        ),
        dominant_stage="pickup",
        previous_dominant_stage="review",
        shifted=True,
        amdahl_drop_pct=9.0,
        arrivals_per_day=5.4,
        completions_per_day=3.6,
        queue_growing=True,
        top_repos=(Contributor(name="acme/api", value=120.0, unit="h", detail="14 PRs"),
                   Contributor(name="acme/web", value=40.0, unit="h", detail="6 PRs")),
        top_reviewers=(Contributor(name="bob", value=18, unit="requests", detail="5 pending"),
                       Contributor(name="erin", value=13, unit="requests", detail="2 pending")),
        slowest_workflows=(Contributor(name="integration", value=34.0, unit="min",
                                       detail="p90 run; 19% failed, 12% rerun"),),
        longest_waits=(Contributor(name="acme/api#412", value=52.5, unit="h",
                                   detail="waiting on bob",
                                   url="https://github.com/acme/api/pull/412"),),
        large_prs_dominate=False,
        action=Action(
            code="spread_reviews",
            text="Spread reviews: rotate a reviewer of the day so requests stop piling on bob and erin.",
            because="pickup wait is 48% of this week's lead time and bob and erin hold 72% of review requests",
        ),
        queue_trend_per_day=0.7,
        merged_this_week=18,
        merged_before=61,
    )
    analysis = replace(analysis, headline=headline(analysis))  # as jobs.analysis writes it
    base = TeamSnapshot(
        team="platform",
        computed_at=now,
        data_as_of=now - timedelta(minutes=7),
        window_days=7,
        queue=queue,
        queue_items=items,
        queue_trend=trend,
        pickup=lat(18, 9.0, 20.0, 40.0),
        approval=lat(16, 20.0, 34.0, 60.0),
        merge=lat(18, 26.0, 40.0, 70.0),
        lead_time=lat(18, 40.0, 62.0, 96.0),
        pickup_ai=lat(7, 14.0, 26.0, 48.0),
        pickup_other=lat(11, 6.0, 15.0, 30.0),
        request_response=lat(40, 5.0, 12.0, 26.0),
        pickup_by_repo=(("acme/api", lat(12, 11.0, 22.0, 44.0)),
                        ("acme/web", lat(6, 5.0, 10.0, 18.0))),
        pickup_by_size=(("XS", lat(3, 1.0, 2.0, 4.0)), ("S", lat(6, 4.0, 8.0, 12.0)),
                        ("M", lat(5, 9.0, 18.0, 30.0)), ("L", lat(3, 20.0, 30.0, 45.0)),
                        ("XL", lat(1, 50.0, 50.0, 50.0))),
        reviewers=reviewers,
        load_concentration=0.72,
        focus_hours_week=21.5,
        workflows=workflows,
        ci_wait_hours=14.5,
        flow=flow,
        size_mix_week=(("XS", 0.15), ("S", 0.3), ("M", 0.3), ("L", 0.15), ("XL", 0.1)),
        size_mix_before=(("XS", 0.2), ("S", 0.35), ("M", 0.3), ("L", 0.1), ("XL", 0.05)),
        merged_count=18,
        ai_assisted_count=7,
        bot_pr_count=4,
        analysis=analysis,
        errors=(),
        approval_ai=lat(6, 30.0, 44.0, 70.0),
        approval_other=lat(10, 15.0, 26.0, 50.0),
        merge_ai=lat(7, 33.0, 46.0, 80.0),
        merge_other=lat(11, 22.0, 36.0, 60.0),
        lead_time_ai=lat(7, 44.0, 66.0, 100.0),
        lead_time_other=lat(11, 38.0, 60.0, 90.0),
    )
    return replace(base, **overrides) if overrides else base
