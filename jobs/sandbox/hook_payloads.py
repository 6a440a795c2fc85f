"""Webhook payloads of the sandbox's events, in the shapes of GitHub's published examples.

Built from the same records as the REST answers (:mod:`jobs.sandbox.rest`,
:mod:`jobs.sandbox.actions`), then cut to what a webhook carries: a webhook's ``user`` has no
``user_view_type``, its ``repository`` carries ``custom_properties``, a review event's
``pull_request`` is the simple form, workflow runs name a ``repository-lite``. The shapes are
checked in the tests against npm ``@octokit/webhooks-schemas`` and compared with
``@octokit/webhooks-examples`` (tests/fixtures/webhooks).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jobs.sandbox import actions, rest
from jobs.sandbox.org import Org
from jobs.sandbox.records import (
    GHOST,
    Account,
    Attempt,
    Job,
    Repo,
    ReviewRec,
    TeamDef,
    node_id,
)
from jobs.sandbox.view import PRView, RunView, status_of

Json = dict[str, Any]

_ZEN = "Design for failure."
_SIMPLE_PULL_DROPS = ("merged", "mergeable", "rebaseable", "mergeable_state", "merged_by",
                      "comments", "review_comments", "maintainer_can_modify", "commits",
                      "additions", "deletions", "changed_files")
_REPO_LITE = ("archive_url", "assignees_url", "blobs_url", "branches_url", "collaborators_url",
              "comments_url", "commits_url", "compare_url", "contents_url", "contributors_url",
              "deployments_url", "description", "downloads_url", "events_url", "fork",
              "forks_url", "full_name", "git_commits_url", "git_refs_url", "git_tags_url",
              "hooks_url", "html_url", "id", "issue_comment_url", "issue_events_url",
              "issues_url", "keys_url", "labels_url", "languages_url", "merges_url",
              "milestones_url", "name", "node_id", "notifications_url", "owner", "private",
              "pulls_url", "releases_url", "stargazers_url", "statuses_url", "subscribers_url",
              "subscription_url", "tags_url", "teams_url", "trees_url", "url")


@dataclass(frozen=True, slots=True)
class Where:
    """What every payload of one organisation needs: the API root the URLs point at, the org."""

    api: str
    org: Org

    @property
    def slugs(self) -> dict[str, TeamDef]:
        return {t.slug: t for t in self.org.teams}

    def repo(self, name: str) -> Repo:
        return self.org.repos[name]


def user(where: Where, account: Account | None) -> Json:
    """A webhook ``user`` (a deleted account is GitHub's ``ghost``)."""
    out = rest.user(where.api, account or GHOST) or {}
    out.pop("user_view_type", None)
    return out


def organization(where: Where) -> Json:
    """The webhook ``organization`` object."""
    org = where.org
    u = f"{where.api}/orgs/{org.name}"
    return {
        "login": org.name, "id": org.owner_id,
        "node_id": Account(org.name, org.owner_id, "Organization", "human").node_id,
        "url": u, "repos_url": f"{u}/repos", "events_url": f"{u}/events",
        "hooks_url": f"{u}/hooks", "issues_url": f"{u}/issues",
        "members_url": f"{u}/members{{/member}}",
        "public_members_url": f"{u}/public_members{{/member}}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{org.owner_id}?v=4",
        "description": None,
    }


def repository(where: Where, repo: Repo) -> Json:
    """A webhook ``repository`` (the REST repository with webhook-only fields)."""
    out = rest.repository(where.api, where.org.name, where.org.owner_id, repo, full=False)
    out["owner"] = _scrub(out["owner"])
    out["custom_properties"] = {}
    return out


def repository_lite(where: Where, repo: Repo) -> Json:
    """A ``repository-lite``, as inside a workflow run."""
    full = repository(where, repo)
    return {k: full[k] for k in _REPO_LITE}


def pull_request(where: Where, view: PRView, *, simple: bool = False) -> Json:
    """The ``pull_request`` object; ``simple`` for review events (no counts, no merge state)."""
    org = where.org
    repo = where.repo(view.pr.repo)
    out: Json = _scrub(rest.pull(where.api, org.name, org.owner_id, repo, view, full=True,
                           slugs=where.slugs))
    for side in ("head", "base"):
        out[side]["repo"] = repository(where, repo)
    for team in out["requested_teams"]:
        team.pop("type", None)
    if simple:
        for key in _SIMPLE_PULL_DROPS:
            out.pop(key, None)
    return out


def pull_request_event(where: Where, view: PRView, action: str, sender: Account | None,
                       **extra: Json | str) -> Json:
    """A ``pull_request`` event: ``extra`` carries ``requested_reviewer``/``requested_team``,
    ``label``, ``before``/``after`` as the action has them."""
    return {"action": action, "number": view.pr.number, "pull_request": pull_request(where, view),
            **extra, **_common(where, view.pr.repo, sender)}


def pull_request_review_event(where: Where, view: PRView, review: ReviewRec, action: str,
                              sender: Account | None) -> Json:
    """A ``pull_request_review`` event (``submitted`` or ``dismissed``; state in lower case)."""
    body: Json = _scrub(rest.review(where.api, where.org.name, view.pr.repo, view.pr, review))
    body["state"] = review.state.lower()
    return {"action": action, "review": body,
            "pull_request": pull_request(where, view, simple=True),
            **_common(where, view.pr.repo, sender)}


def requested_team(where: Where, slug: str) -> Json:
    """A ``team`` as in ``requested_team``."""
    team = where.slugs.get(slug) or TeamDef(slug, slug, 0, (), (), "", (), "UTC", None, "")
    out = rest.team(where.api, where.org.name, team)
    out.pop("type", None)
    return out


def label(where: Where, repo: str, name: str) -> Json:
    """A ``label`` as the REST answers show it."""
    return rest.label(where.api, where.org.full_name(repo), name)


def check_run_event(where: Where, view: RunView, attempt: Attempt, job: Job, action: str,
                    sender: Account | None) -> Json:
    """A ``check_run`` event for the check run GitHub Actions keeps for ``job``."""
    org = where.org
    run = actions.check_run(where.api, org.name, view, attempt, job)
    run["app"] = _app(run["app"])
    suite = check_suite(where, view)
    for key in ("latest_check_runs_count", "check_runs_url", "head_commit", "rerequestable",
                "runs_rerequestable"):  # a check run's suite is the short form
        suite.pop(key)
    run["check_suite"] = suite
    if run["status"] != "completed":  # the schema of ``created`` wants a string here too
        run["completed_at"] = None
    return {"action": action, "check_run": run, **_common(where, view.run.repo, sender)}


def check_suite(where: Where, view: RunView) -> Json:
    """The ``check_suite`` a workflow run reports to (one per run here, as Actions does)."""
    org = where.org
    run = view.run
    name = org.full_name(run.repo)
    attempt = view.latest
    status, conclusion = status_of(attempt, view.now)
    wr = actions.workflow_run(where.api, org.name, org.owner_id, where.repo(run.repo), view)
    return {
        "id": run.check_suite_id, "node_id": node_id("CS", run.check_suite_id),
        "head_branch": run.head_branch, "head_sha": run.head_sha, "status": status,
        "conclusion": conclusion, "url": f"{where.api}/repos/{name}/check-suites/"
        f"{run.check_suite_id}", "before": None, "after": run.head_sha,
        "pull_requests": wr["pull_requests"], "app": _app(actions.actions_app(where.api)),
        "created_at": rest.iso(run.created_at), "updated_at": rest.iso(view.updated_at),
        "rerequestable": True, "runs_rerequestable": True,
        "latest_check_runs_count": len(attempt.jobs),
        "check_runs_url": f"{where.api}/repos/{name}/check-suites/{run.check_suite_id}"
        "/check-runs",
        "head_commit": wr["head_commit"],
    }


def check_suite_event(where: Where, view: RunView, action: str,
                      sender: Account | None) -> Json:
    """A ``check_suite`` event (``completed``)."""
    return {"action": action, "check_suite": check_suite(where, view),
            **_common(where, view.run.repo, sender)}


def workflow_run_event(where: Where, view: RunView, action: str,
                       sender: Account | None) -> Json:
    """A ``workflow_run`` event (``requested``, ``in_progress``, ``completed``)."""
    org = where.org
    repo = where.repo(view.run.repo)
    head = org.commits_by_sha.get((repo.name, view.run.head_sha))
    run = actions.workflow_run(where.api, org.name, org.owner_id, repo, view, head=head)
    run = _scrub(run)
    run["repository"] = run["head_repository"] = repository_lite(where, repo)
    if action == "requested":
        run["status"] = "requested" if run["status"] == "queued" else run["status"]
    created: datetime = view.run.created_at
    workflow = actions.workflow(where.api, org.name, view.run.workflow, created)
    workflow["node_id"] = node_id("W", view.run.workflow.id)
    return {"action": action, "workflow": workflow, "workflow_run": run,
            **_common(where, repo.name, sender)}


def workflow_job_event(where: Where, view: RunView, attempt: Attempt, job: Job, action: str,
                       sender: Account | None) -> Json:
    """A ``workflow_job`` event (``queued``, ``in_progress``, ``completed``)."""
    body = actions.job(where.api, where.org.name, view, attempt, job)
    return {"action": action, "workflow_job": body, **_common(where, view.run.repo, sender)}


def ping_event(where: Where, *, hook_id: int, hook_type: str, url: str, created: datetime,
               signed: bool) -> Json:
    """The ``ping`` GitHub sends when a hook is created (a set secret shows as asterisks)."""
    base = f"{where.api}/orgs/{where.org.name}/hooks/{hook_id}"
    hook = {
        "type": hook_type, "id": hook_id, "name": "web", "active": True,
        "events": ["check_run", "check_suite", "pull_request", "pull_request_review",
                   "workflow_job", "workflow_run"],
        "config": {"content_type": "json", "insecure_ssl": "0", "url": url,
                   **({"secret": "********"} if signed else {})},
        "updated_at": rest.iso(created), "created_at": rest.iso(created), "url": base,
        "ping_url": f"{base}/pings", "deliveries_url": f"{base}/deliveries",
    }
    sender = where.org.teams[0].members[0]
    return {"zen": _ZEN, "hook_id": hook_id, "hook": hook, "organization": organization(where),
            "sender": user(where, sender)}


# ---------------------------------------------------------------------- helpers


def _common(where: Where, repo: str, sender: Account | None) -> Json:
    return {"repository": repository(where, where.repo(repo)),
            "organization": organization(where), "sender": user(where, sender)}


def _app(app: Json) -> Json:
    out = dict(app)
    out["owner"] = _scrub(out["owner"])
    return out


def _scrub(value: Any) -> Any:
    """A copy of a REST payload without the REST-only ``user_view_type`` of its users."""
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items() if k != "user_view_type"}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value
