"""What GitHub shows of the simulated org at one moment.

The org holds the whole history; a view as of ``now`` hides PRs created later and everything
that happened after ``now``, and derives state (open/closed/merged, draft, head, ``updated_at``)
from what is left. Run attempts show ``queued``/``in_progress`` until they have started/ended.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from jobs.sandbox.records import PR, Attempt, Commit, Event, Job, ReviewRec, Run


@dataclass(frozen=True, slots=True)
class PRView:
    """One PR as of ``now``."""

    pr: PR
    now: datetime
    commits: tuple[Commit, ...]  # on the head branch now (force-pushed-away ones dropped)
    events: tuple[Event, ...]
    reviews: tuple[ReviewRec, ...]
    runs: tuple[Run, ...]
    draft: bool
    merged_at: datetime | None
    closed_at: datetime | None
    updated_at: datetime

    @property
    def state(self) -> str:
        """REST state: ``open`` or ``closed`` (merged PRs are closed)."""
        return "closed" if self.closed_at is not None else "open"

    @property
    def head_sha(self) -> str:
        return self.commits[-1].sha if self.commits else self.pr.base_sha

    def requested(
        self, teams_of: dict[str, frozenset[str]] | None = None
    ) -> tuple[list[str], list[str]]:
        """Pending requested reviewers (logins) and teams (slugs), as GitHub lists them.

        Read in time order: a review answers its author's pending request (and a pending
        request of a team in ``teams_of`` they belong to); a later re-request makes it pending
        again.
        """
        teams_of = teams_of or {}
        users: dict[str, None] = {}
        teams: dict[str, None] = {}
        steps: list[tuple[datetime, int, Event | ReviewRec]]
        steps = [(e.at, e.id, e) for e in self.events]
        steps += [(r.submitted_at, r.id, r) for r in self.reviews]
        for _, _, step in sorted(steps, key=lambda t: (t[0], t[1])):
            if isinstance(step, ReviewRec):
                if step.author is not None:
                    users.pop(step.author.login, None)
                    for slug in [t for t in teams if step.author.login in teams_of.get(t, ())]:
                        teams.pop(slug)
            elif step.event in ("review_requested", "review_request_removed"):
                add = step.event == "review_requested"
                target, key = (users, step.reviewer.login) if step.reviewer else (teams, step.team)
                if key is None:
                    continue
                if add:
                    target[key] = None
                else:
                    target.pop(key, None)
        return list(users), list(teams)


def view_pr(pr: PR, now: datetime) -> PRView | None:
    """``pr`` as of ``now``; ``None`` when it did not exist yet."""
    if pr.created_at > now:
        return None
    commits = tuple(
        c for c in pr.commits if c.pushed_at <= now and (c.dropped_at is None or c.dropped_at > now)
    )
    events = tuple(e for e in pr.events if e.at <= now)
    reviews = tuple(r for r in pr.reviews if r.submitted_at <= now)
    runs = tuple(r for r in pr.runs if r.created_at <= now)
    draft = pr.opened_as_draft
    merged_at = closed_at = None
    for e in events:
        if e.event == "ready_for_review":
            draft = False
        elif e.event == "convert_to_draft":
            draft = True
        elif e.event == "merged":
            merged_at = e.at
        elif e.event == "closed":
            closed_at = e.at
        elif e.event == "reopened":
            closed_at = None
    stamps = [pr.created_at]
    stamps += [e.at for e in events[-1:]]
    stamps += [r.submitted_at for r in reviews[-1:]]
    stamps += [c.pushed_at for c in pr.commits if c.pushed_at <= now]
    return PRView(pr, now, commits, events, reviews, runs, draft, merged_at, closed_at,
                  max(stamps))


@dataclass(frozen=True, slots=True)
class RunView:
    """A workflow run as of ``now``: its visible attempts (at least one)."""

    run: Run
    now: datetime
    attempts: tuple[Attempt, ...]

    @property
    def latest(self) -> Attempt:
        return self.attempts[-1]

    def attempt(self, number: int) -> Attempt | None:
        return next((a for a in self.attempts if a.number == number), None)

    @property
    def updated_at(self) -> datetime:
        return stamp_of(self.latest, self.now)


def view_run(run: Run, now: datetime) -> RunView | None:
    """``run`` as of ``now``; ``None`` when it had not been created yet."""
    attempts = tuple(a for a in run.attempts if a.created_at <= now)
    return RunView(run, now, attempts) if attempts else None


def status_of(item: Attempt | Job, now: datetime) -> tuple[str, str | None]:
    """GitHub's ``status`` and ``conclusion`` of an attempt or job at ``now``."""
    if item.started_at > now:
        return "queued", None
    if item.completed_at > now:
        return "in_progress", None
    return "completed", item.conclusion


def stamp_of(item: Attempt | Job, now: datetime) -> datetime:
    """The latest visible change of an attempt or job."""
    if item.started_at > now:
        return item.created_at
    return item.started_at if item.completed_at > now else item.completed_at
