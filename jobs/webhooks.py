"""Pure: what a GitHub webhook delivery asks Flowbot to refresh (event + action -> refreshes).

A delivery is never a record: it only says *where* to look again. The refresh reads GitHub's
state (:func:`jobs.sync.refresh_pr`, :func:`jobs.sync.refresh_ci`), so a delivery lost,
repeated or out of order costs freshness, never correctness, and the periodic sample stays the
reconciliation. Events that move a clock (docs/metrics.md "PR timeline events"):

- ``pull_request`` opened, ready_for_review, converted_to_draft, review_requested,
  review_request_removed, synchronize, closed, reopened, labeled, unlabeled (labels make a PR
  AI-assisted), and ``pull_request_review`` submitted, dismissed: refresh that PR;
- ``check_run``, ``check_suite``, ``workflow_run``, ``workflow_job``: refresh the repository's
  CI (one conditional listing attaches every run to its PRs, by number or head commit, as a
  sample does; a burst of check events is one refresh).

Anything else (``ping`` is answered before this, ``push``, ``issues``, another action) and any
repository no team watches is ignored, with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

PR_ACTIONS: dict[str, frozenset[str]] = {
    "pull_request": frozenset({
        "opened", "ready_for_review", "converted_to_draft", "review_requested",
        "review_request_removed", "synchronize", "closed", "reopened", "labeled", "unlabeled",
    }),
    "pull_request_review": frozenset({"submitted", "dismissed"}),
}
CI_EVENTS: frozenset[str] = frozenset({"check_run", "check_suite", "workflow_run", "workflow_job"})
EVENTS: frozenset[str] = frozenset(PR_ACTIONS) | CI_EVENTS
"""Every event a hook should send (docs/operations.md, "GitHub webhooks")."""


@dataclass(frozen=True, slots=True)
class Refresh:
    """One thing to read again: a PR (``kind="pr"``, ``number``) or a repository's CI."""

    kind: Literal["pr", "ci"]
    repo: str  # owner/name
    number: int | None = None
    reason: str = ""  # event.action, for logs and the job's description


@dataclass(frozen=True, slots=True)
class Plan:
    """What a delivery asks: the refreshes, or why there is none (``ignored``)."""

    refreshes: tuple[Refresh, ...] = ()
    ignored: str | None = None


def plan(event: str, payload: Mapping[str, Any], *, watched: Callable[[str], str | None]) -> Plan:
    """The refreshes a delivery of ``event`` with ``payload`` asks for.

    ``watched(full_name)`` is the repository as Flowbot names it (``owner/name`` as
    configured: GitHub's spelling may differ in case) when a team watches it, else None.
    A payload without the fields its event always carries is ignored with the reason, never
    raised: a delivery is only ever a hint.
    """
    action = payload.get("action")
    reason = f"{event}.{action}" if isinstance(action, str) else event
    if event not in EVENTS:
        return Plan(ignored=f"event {event} moves no clock")
    name = _repo(payload)
    if name is None:
        return Plan(ignored=f"{reason}: no repository.full_name")
    repo = watched(name)
    if repo is None:
        return Plan(ignored=f"{reason}: {name} is not watched by any team")
    if event in CI_EVENTS:
        return Plan((Refresh("ci", repo, reason=reason),))
    if action not in PR_ACTIONS[event]:
        return Plan(ignored=f"{reason}: this action moves no clock")
    pull = payload.get("pull_request")
    number = pull.get("number") if isinstance(pull, Mapping) else None
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        return Plan(ignored=f"{reason}: no pull_request.number")
    return Plan((Refresh("pr", repo, number, reason=reason),))


def watching(repositories: Iterable[str], *, organisations: Iterable[str] = ()) -> Callable[[str], str | None]:
    """``watched`` for :func:`plan`: the configured ``repositories`` (any case), and every
    repository of each of ``organisations`` (those read whole: ``all_repositories``)."""
    known = {r.lower(): r for r in repositories}
    owners = {o.lower() for o in organisations}

    def watched(full_name: str) -> str | None:
        found = known.get(full_name.lower())
        if found is None and full_name.split("/")[0].lower() in owners:
            return full_name
        return found

    return watched


def installation(payload: Mapping[str, Any]) -> int | None:
    """The GitHub App installation a delivery came through (``installation.id``), if any."""
    inst = payload.get("installation")
    value = inst.get("id") if isinstance(inst, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _repo(payload: Mapping[str, Any]) -> str | None:
    repository = payload.get("repository")
    name = repository.get("full_name") if isinstance(repository, Mapping) else None
    if not isinstance(name, str) or name.count("/") != 1 or not all(name.split("/")):
        return None
    return name
