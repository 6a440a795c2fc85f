"""Small factories for test data: keyword defaults, fixed timestamps."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from jobs.model import CheckRun, PullRequest, Review, TimelineEvent

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
