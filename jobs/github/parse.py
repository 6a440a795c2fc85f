"""Pure: GitHub payloads in, :mod:`jobs.model` records out.

Two front doors produce the same records: :func:`pull_from_graphql` (a ``PullFields`` node,
what the sampler fetches) and :func:`pull_from_rest` (a PR with its reviews, timeline and
commits from REST, what a straightforward crawl fetches; the benchmark checks both agree).
:func:`run_attempts` turns an Actions workflow run (and, for reruns, its jobs) into one
:class:`CheckRun` per attempt.

What real GitHub sends and is tolerated here: ``null`` users and the ``ghost`` user (deleted
accounts: author ``None``, type ``Deleted``), team review requests, bots (GraphQL gives
``dependabot`` typed ``Bot``, REST gives ``dependabot[bot]``: both become ``dependabot``
typed ``Bot`` so records compare equal whichever API they came from), pending reviews (no
``submittedAt``: skipped), missing optional fields.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from jobs.model import ActorType, CheckRun, EventKind, PullRequest, Review, TimelineEvent

Payload = Mapping[str, Any]

_ACTOR_TYPES: dict[str, ActorType] = {
    "User": "User",
    "Bot": "Bot",
    "Organization": "Organization",
    "Mannequin": "Mannequin",
    "EnterpriseUserAccount": "User",
}
_GRAPHQL_EVENTS: dict[str, EventKind] = {
    "ReadyForReviewEvent": "ready_for_review",
    "ConvertToDraftEvent": "convert_to_draft",
    "ReviewRequestedEvent": "review_requested",
    "ReviewRequestRemovedEvent": "review_request_removed",
    "HeadRefForcePushedEvent": "head_pushed",
    "ReopenedEvent": "reopened",
    "ClosedEvent": "closed",
    "MergedEvent": "merged",
}
_REST_EVENTS: dict[str, EventKind] = {
    "ready_for_review": "ready_for_review",
    "convert_to_draft": "convert_to_draft",
    "review_requested": "review_requested",
    "review_request_removed": "review_request_removed",
    "head_ref_force_pushed": "head_pushed",
    "reopened": "reopened",
    "closed": "closed",
    "merged": "merged",
}
_REVIEW_STATES = {"APPROVED", "CHANGES_REQUESTED", "COMMENTED", "DISMISSED"}
_WAITING = {"queued", "waiting", "pending", "requested"}
_TRAILER = re.compile(r"^\s*co-authored-by:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)
# Worst first: an attempt whose jobs disagree takes the worst job conclusion.
_CONCLUSION_RANK = (
    "failure",
    "timed_out",
    "startup_failure",
    "cancelled",
    "action_required",
    "stale",
    "neutral",
    "success",
    "skipped",
)


# --------------------------------------------------------------------------- small pieces


def when(value: str | None) -> datetime | None:
    """An ISO-8601 timestamp (``Z`` or offset) as an aware UTC datetime; ``None`` stays."""
    if not value:
        return None
    from datetime import timezone

    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc)


def _must(value: str | None) -> datetime:
    parsed = when(value)
    if parsed is None:
        raise ValueError("a required timestamp is missing")
    return parsed


def actor(user: Payload | None) -> tuple[str | None, ActorType]:
    """``(login, type)`` of a REST user or GraphQL actor; deleted accounts -> ``(None, Deleted)``.

    REST writes the type in ``type``, GraphQL in ``__typename``. A bot's ``[bot]`` suffix is
    dropped (GraphQL never has it), its type says it is a bot.
    """
    if not user or not user.get("login"):
        return None, "Deleted"
    login = str(user["login"])
    kind = _ACTOR_TYPES.get(str(user.get("__typename") or user.get("type") or "User"), "User")
    if login.lower() == "ghost":
        return None, "Deleted"
    if kind == "Bot" or login.endswith("[bot]"):
        return login.removesuffix("[bot]"), "Bot"
    return login, kind


def co_authors(messages: Iterable[str]) -> tuple[str, ...]:
    """``Co-authored-by:`` trailers of commit messages, each ``Name <email>`` once, in order."""
    seen: dict[str, None] = {}
    for message in messages:
        for match in _TRAILER.finditer(message or ""):
            seen.setdefault(match.group(1), None)
    return tuple(seen)


def _first_commit(dates: Iterable[datetime | None]) -> datetime | None:
    found = [d for d in dates if d is not None]
    return min(found) if found else None


def _ordered(events: Iterable[TimelineEvent]) -> tuple[TimelineEvent, ...]:
    """Events in time order; ties keep a stable, source-independent order."""
    return tuple(
        sorted(
            set(events),
            key=lambda e: (e.at, e.kind, e.sha or "", e.requested_reviewer or "", e.requested_team or ""),
        )
    )


def _reviews(rows: Iterable[Review]) -> tuple[Review, ...]:
    return tuple(sorted(rows, key=lambda r: (r.submitted_at, r.author or "", r.state)))


def _pushes(commits: Iterable[tuple[str, datetime | None]]) -> list[TimelineEvent]:
    """Every commit on the PR as a ``head_pushed`` at its committer date.

    GitHub no longer reports when a commit was pushed; the committer date is the closest
    it gives. Force pushes come from their own timeline event, with the push time and no
    sha (REST does not name the new head there; the new head is among the commits).
    """
    return [TimelineEvent(kind="head_pushed", at=at, sha=sha) for sha, at in commits if at is not None]


# --------------------------------------------------------------------------- GraphQL


def pull_from_graphql(repo: str, node: Payload) -> PullRequest:
    """A ``PullFields`` node (see :mod:`jobs.github.queries`) as a :class:`PullRequest`.

    CI is not part of the node: ``checks`` is empty here and filled by the sync from the
    repository's workflow runs. A connection whose ``pageInfo`` still says there is more
    (see :func:`jobs.github.fetch.complete_pull`), or whose commits fall short of their
    ``totalCount``, is named in ``incomplete``. Raises ``ValueError``/``KeyError`` on a node
    missing required fields (the caller reports the repository).
    """
    author, author_type = actor(node.get("author"))
    commits = [c["commit"] for c in _nodes(node.get("commits")) if c and c.get("commit")]
    events = _pushes((c["oid"], when(c.get("committedDate"))) for c in commits)
    for item in _nodes(node.get("timelineItems")):
        kind = _GRAPHQL_EVENTS.get(str(item.get("__typename")))
        if kind is None or not item.get("createdAt"):
            continue
        who, _ = actor(item.get("actor"))
        reviewer: str | None = None
        team: str | None = None
        if kind in ("review_requested", "review_request_removed"):
            target = item.get("requestedReviewer")
            if not target:
                continue  # the requested account was deleted: nobody is waited on
            if target.get("__typename") == "Team":
                team = target.get("slug")
            else:
                reviewer, _ = actor(target)
            if reviewer is None and team is None:
                continue
        events.append(
            TimelineEvent(
                kind=kind,
                at=_must(item["createdAt"]),
                actor=who,
                requested_reviewer=reviewer,
                requested_team=team,
            )
        )
    reviews = []
    for raw in _nodes(node.get("reviews")):
        state = str(raw.get("state") or "").upper()
        if state not in _REVIEW_STATES or not raw.get("submittedAt"):
            continue  # PENDING: not submitted yet
        login, kind_ = actor(raw.get("author"))
        reviews.append(
            Review(
                author=login,
                author_type=kind_,
                state=state,  # type: ignore[arg-type]
                submitted_at=_must(raw["submittedAt"]),
                commit_sha=(raw.get("commit") or {}).get("oid"),
            )
        )
    return PullRequest(
        repo=repo,
        number=int(node["number"]),
        title=str(node.get("title") or ""),
        url=str(node.get("url") or f"https://github.com/{repo}/pull/{node['number']}"),
        author=author,
        author_type=author_type,
        draft=bool(node.get("isDraft")),
        created_at=_must(node["createdAt"]),
        updated_at=_must(node["updatedAt"]),
        closed_at=when(node.get("closedAt")),
        merged_at=when(node.get("mergedAt")),
        head_sha=str(node.get("headRefOid") or ""),
        base_ref=str(node.get("baseRefName") or ""),
        additions=int(node.get("additions") or 0),
        deletions=int(node.get("deletions") or 0),
        changed_files=int(node.get("changedFiles") or 0),
        labels=tuple(sorted(str(n["name"]) for n in _nodes(node.get("labels")) if n)),
        first_commit_at=_first_commit(when(c.get("authoredDate")) for c in commits),
        co_authors=co_authors(str(c.get("message") or "") for c in commits),
        events=_ordered(events),
        reviews=_reviews(reviews),
        incomplete=_incomplete(node, len(commits)),
    )


_CONNECTION_NAMES = (("commits", "commits"), ("reviews", "reviews"), ("timelineItems", "timeline"))


def _incomplete(node: Payload, commits: int) -> tuple[str, ...]:
    """The connections of a ``PullFields`` node that GitHub did not give in full."""
    out = []
    for field, name in _CONNECTION_NAMES:
        conn = node.get(field) or {}
        more = bool((conn.get("pageInfo") or {}).get("hasNextPage"))
        short = field == "commits" and int(conn.get("totalCount") or 0) > commits
        if more or short:
            out.append(name)
    return tuple(out)


def _nodes(connection: Payload | None) -> list[Payload]:
    if not connection:
        return []
    return [n for n in connection.get("nodes") or [] if n]


# --------------------------------------------------------------------------- REST


def pull_from_rest(
    repo: str,
    pull: Payload,
    *,
    reviews: Sequence[Payload],
    timeline: Sequence[Payload],
    commits: Sequence[Payload],
) -> PullRequest:
    """A PR from REST: ``GET /pulls/{n}``, its ``/reviews``, ``/issues/{n}/timeline`` and
    ``/pulls/{n}/commits``; the same record :func:`pull_from_graphql` makes of the same PR.
    ``/pulls/{n}/commits`` lists 250 commits at most: a PR with more (``pull["commits"]``)
    is marked incomplete in ``commits``."""
    author, author_type = actor(pull.get("user"))
    commit_rows = [c for c in commits if c and c.get("sha")]
    events = _pushes(
        (c["sha"], when(((c.get("commit") or {}).get("committer") or {}).get("date")))
        for c in commit_rows
    )
    for item in timeline:
        kind = _REST_EVENTS.get(str(item.get("event")))
        if kind is None or not item.get("created_at"):
            continue
        who, _ = actor(item.get("actor"))
        reviewer: str | None = None
        team: str | None = None
        if kind in ("review_requested", "review_request_removed"):
            if item.get("requested_team"):
                team = item["requested_team"].get("slug")
            else:
                reviewer, _ = actor(item.get("requested_reviewer"))
            if reviewer is None and team is None:
                continue
        events.append(
            TimelineEvent(
                kind=kind,
                at=_must(item["created_at"]),
                actor=who,
                requested_reviewer=reviewer,
                requested_team=team,
            )
        )
    review_rows = []
    for raw in reviews:
        state = str(raw.get("state") or "").upper()
        if state not in _REVIEW_STATES or not raw.get("submitted_at"):
            continue
        login, kind_ = actor(raw.get("user"))
        review_rows.append(
            Review(
                author=login,
                author_type=kind_,
                state=state,  # type: ignore[arg-type]
                submitted_at=_must(raw["submitted_at"]),
                commit_sha=raw.get("commit_id"),
            )
        )
    return PullRequest(
        repo=repo,
        number=int(pull["number"]),
        title=str(pull.get("title") or ""),
        url=str(pull.get("html_url") or f"https://github.com/{repo}/pull/{pull['number']}"),
        author=author,
        author_type=author_type,
        draft=bool(pull.get("draft")),
        created_at=_must(pull["created_at"]),
        updated_at=_must(pull["updated_at"]),
        closed_at=when(pull.get("closed_at")),
        merged_at=when(pull.get("merged_at")),
        head_sha=str((pull.get("head") or {}).get("sha") or ""),
        base_ref=str((pull.get("base") or {}).get("ref") or ""),
        additions=int(pull.get("additions") or 0),
        deletions=int(pull.get("deletions") or 0),
        changed_files=int(pull.get("changed_files") or 0),
        labels=tuple(sorted(str(label["name"]) for label in pull.get("labels") or [] if label)),
        first_commit_at=_first_commit(
            when(((c.get("commit") or {}).get("author") or {}).get("date")) for c in commit_rows
        ),
        co_authors=co_authors(str((c.get("commit") or {}).get("message") or "") for c in commit_rows),
        events=_ordered(events),
        reviews=_reviews(review_rows),
        incomplete=("commits",) if int(pull.get("commits") or 0) > len(commit_rows) else (),
    )


# --------------------------------------------------------------------------- CI


def run_attempts(run: Payload, jobs: Sequence[Payload] = ()) -> tuple[CheckRun, ...]:
    """One :class:`CheckRun` per attempt of an Actions workflow run (docs/metrics.md "CI").

    The run as listed describes its latest attempt. Attempt 1 queues from the run's
    ``created_at``; a rerun's attempt queues from its first job's ``created_at`` (only REST
    shows it), so for a run with ``run_attempt > 1`` pass its jobs of every attempt
    (``/actions/runs/{id}/jobs?filter=all``): earlier attempts are rebuilt from their jobs.
    Without jobs, only the latest attempt is returned, queued from ``run_started_at``.
    """
    latest = int(run.get("run_attempt") or 1)
    by_attempt: dict[int, list[Payload]] = {}
    for job in jobs:
        by_attempt.setdefault(int(job.get("run_attempt") or 1), []).append(job)
    name = str(run.get("name") or run.get("display_title") or "workflow")
    sha = str(run.get("head_sha") or "")
    run_id = int(run["id"])
    out = []
    for attempt in range(1, latest):
        rows = by_attempt.get(attempt)
        if rows:
            out.append(_attempt_from_jobs(name, run_id, attempt, sha, rows))
    done = run.get("status") == "completed"
    own_jobs = by_attempt.get(latest, [])
    if latest == 1:
        created = _must(run["created_at"])
    else:
        created = _earliest(when(j.get("created_at")) for j in own_jobs) or _must(
            run.get("run_started_at") or run["created_at"]
        )
    out.append(
        CheckRun(
            name=name,
            run_id=run_id,
            attempt=latest,
            head_sha=sha,
            created_at=created,
            started_at=(
                when(run.get("run_started_at")) if run.get("status") not in _WAITING else None
            ),
            completed_at=when(run.get("updated_at")) if done else None,
            conclusion=(run.get("conclusion") or None) if done else None,
        )
    )
    return tuple(out)


def _earliest(values: Iterable[datetime | None]) -> datetime | None:
    found = [v for v in values if v is not None]
    return min(found) if found else None


def _attempt_from_jobs(
    name: str, run_id: int, attempt: int, sha: str, jobs: Sequence[Payload]
) -> CheckRun:
    """A superseded attempt, from its jobs: first created, first started, last completed."""
    created = _earliest(when(j.get("created_at")) for j in jobs)
    started = _earliest(when(j.get("started_at")) for j in jobs)
    ends = [when(j.get("completed_at")) for j in jobs]
    finished = all(e is not None for e in ends) and all(j.get("status") == "completed" for j in jobs)
    conclusions = [str(j.get("conclusion")) for j in jobs if j.get("conclusion")]
    worst = min(
        conclusions,
        key=lambda c: _CONCLUSION_RANK.index(c) if c in _CONCLUSION_RANK else 0,
        default=None,
    )
    return CheckRun(
        name=name,
        run_id=run_id,
        attempt=attempt,
        head_sha=sha,
        created_at=created or started or _must(None),
        started_at=started,
        completed_at=max(e for e in ends if e is not None) if finished else None,
        conclusion=worst if finished else None,
    )

