"""The simulated organisation's full history: accounts, repositories, PRs, commits, CI runs.

These are the sandbox's own mutable-at-build-time records, not :mod:`jobs.model` records: they
hold everything GitHub would know (ids, node ids, push times, attempts and jobs), and
:mod:`jobs.sandbox.view` derives what GitHub would show at a given moment.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

AccountType = Literal["User", "Bot", "Organization"]
Kind = Literal["human", "bot", "ai", "deleted"]


def node_id(prefix: str, number: int) -> str:
    """A GitHub-like global node id (``PR_kwDO...``), unique per prefix and number."""
    raw = base64.b64encode(f"{prefix}:{number}".encode()).decode().rstrip("=")
    return f"{prefix}_kwDO{raw}"


@dataclass(frozen=True, slots=True)
class Account:
    """A GitHub account. ``login`` is the REST login (bots end in ``[bot]``)."""

    login: str
    id: int
    type: AccountType
    kind: Kind
    name: str | None = None
    slack: str | None = None
    email: str | None = None

    @property
    def graphql_login(self) -> str:
        """GraphQL drops the ``[bot]`` suffix of a bot's login."""
        return self.login.removesuffix("[bot]")

    @property
    def node_id(self) -> str:
        prefix = {"User": "U", "Bot": "BOT", "Organization": "O"}[self.type]
        return node_id(prefix, self.id)


GHOST = Account("ghost", 10137, "User", "deleted", name="Deleted user")


@dataclass(frozen=True, slots=True)
class TeamDef:
    """A team of the organisation: members, GitHub team slug, repositories, Slack wiring."""

    name: str
    slug: str
    id: int
    members: tuple[Account, ...]
    repos: tuple[str, ...]  # repository names (without the owner)
    channel: str
    leads: tuple[str, ...]
    timezone: str
    holiday_country: str | None
    hot_reviewer: str  # the login holding most review requests


def members_by_slug(teams: dict[str, TeamDef]) -> dict[str, frozenset[str]]:
    """GitHub team slug -> the logins of its members."""
    return {slug: frozenset(m.login for m in t.members) for slug, t in teams.items()}


@dataclass(frozen=True, slots=True)
class Repo:
    """A repository of the organisation."""

    name: str
    id: int
    team: str | None
    archived: bool = False
    created_at: datetime | None = None
    pushed_at: datetime | None = None
    default_branch: str = "main"
    private: bool = True
    description: str = ""


@dataclass(slots=True)
class Commit:
    """A commit on a PR's head branch: pushed at ``pushed_at``; a later force push may drop it."""

    sha: str
    message: str
    author: Account | None
    authored_at: datetime
    committed_at: datetime
    pushed_at: datetime
    parent: str
    dropped_at: datetime | None = None  # when a force push replaced it


@dataclass(slots=True)
class Event:
    """One issue event of a PR's timeline, in REST terms (``event`` is GitHub's name)."""

    id: int
    event: str  # review_requested, review_request_removed, ready_for_review, ...
    at: datetime
    actor: Account | None
    reviewer: Account | None = None  # requested_reviewer
    team: str | None = None  # requested_team slug
    before_sha: str | None = None  # head_ref_force_pushed
    after_sha: str | None = None
    commit_id: str | None = None  # merged: the merge commit
    label: str | None = None  # labeled
    review_id: int | None = None  # review_dismissed


@dataclass(slots=True)
class ReviewRec:
    """A submitted review (state in GitHub's upper case)."""

    id: int
    author: Account | None  # None: a deleted account (REST ``user: null``)
    state: str
    submitted_at: datetime
    commit_id: str
    body: str = ""


@dataclass(slots=True)
class Job:
    """One job of one run attempt; GitHub's check run of the same id."""

    id: int
    name: str
    created_at: datetime
    started_at: datetime
    completed_at: datetime
    conclusion: str


@dataclass(slots=True)
class Attempt:
    """One attempt of a workflow run (attempt 1, then reruns)."""

    number: int
    created_at: datetime
    started_at: datetime
    completed_at: datetime
    conclusion: str
    jobs: list[Job] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Workflow:
    """A GitHub Actions workflow of a repository."""

    id: int
    name: str
    path: str
    repo: str


@dataclass(slots=True)
class Run:
    """A workflow run on a PR head commit, with its attempts."""

    id: int
    workflow: Workflow
    repo: str
    head_sha: str
    head_branch: str
    run_number: int
    pr_number: int
    actor: Account | None
    check_suite_id: int
    attempts: list[Attempt] = field(default_factory=list)
    event: str = "pull_request"

    @property
    def created_at(self) -> datetime:
        return self.attempts[0].created_at


@dataclass(slots=True)
class PR:
    """A pull request's whole history."""

    repo: str
    number: int
    id: int
    title: str
    body: str
    author: Account
    created_at: datetime
    opened_as_draft: bool
    head_ref: str
    base_ref: str
    additions: int
    deletions: int
    changed_files: int
    labels: tuple[str, ...]
    team: str | None
    ai_assisted: bool
    commits: list[Commit] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    reviews: list[ReviewRec] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    base_sha: str = ""

    @property
    def node_id(self) -> str:
        return node_id("PR", self.id)
