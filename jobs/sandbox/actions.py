"""GitHub Actions payloads for the sandbox: workflow runs, their attempts and jobs, and the
check runs Actions creates for jobs (same id). Status and conclusion follow the view's moment:
``queued`` before a job starts, ``in_progress`` until it completes.
"""

from __future__ import annotations

from datetime import datetime

from jobs.sandbox.records import (
    Account,
    Attempt,
    Commit,
    Job,
    Repo,
    Run,
    Workflow,
    node_id,
)
from jobs.sandbox.rest import HTML, Json, git_user, iso, repository, user
from jobs.sandbox.view import RunView, stamp_of, status_of


def check_run(api: str, org: str, view: RunView, attempt: Attempt, job: Job) -> Json:
    """The check run GitHub Actions creates for a job (same id as the job)."""
    name = f"{org}/{view.run.repo}"
    now = view.now
    status, conclusion = status_of(job, now)
    pr_ref = {
        "url": f"{api}/repos/{name}/pulls/{view.run.pr_number}", "id": view.run.pr_number,
        "number": view.run.pr_number,
        "head": {"ref": view.run.head_branch, "sha": view.run.head_sha,
                 "repo": {"id": 0, "url": f"{api}/repos/{name}", "name": view.run.repo}},
        "base": {"ref": "main", "sha": view.run.head_sha[::-1],
                 "repo": {"id": 0, "url": f"{api}/repos/{name}", "name": view.run.repo}},
    }
    return {
        "id": job.id, "head_sha": view.run.head_sha, "node_id": node_id("CR", job.id),
        "external_id": str(job.id), "url": f"{api}/repos/{name}/check-runs/{job.id}",
        "html_url": f"{HTML}/{name}/actions/runs/{view.run.id}/job/{job.id}",
        "details_url": f"{HTML}/{name}/actions/runs/{view.run.id}/job/{job.id}",
        "status": status, "conclusion": conclusion,
        "started_at": iso(job.started_at if status != "queued" else job.created_at),
        "completed_at": iso(job.completed_at) if status == "completed" else None,
        "output": {"title": None, "summary": None, "text": None, "annotations_count": 0,
                   "annotations_url": f"{api}/repos/{name}/check-runs/{job.id}/annotations"},
        "name": f"{job.name}", "check_suite": {"id": view.run.check_suite_id},
        "app": actions_app(api), "pull_requests": [pr_ref],
    }


def actions_app(api: str) -> Json:
    """The GitHub Actions app, as checks name it."""
    owner = user(api, Account("github", 9919, "Organization", "human"))
    return {
        "id": 15368, "slug": "github-actions", "node_id": "MDM6QXBwMTUzNjg=", "owner": owner,
        "name": "GitHub Actions", "description": "Automate your workflow from idea to production",
        "external_url": "https://help.github.com/en/actions",
        "html_url": "https://github.com/apps/github-actions",
        "created_at": "2018-07-30T09:30:17Z", "updated_at": "2024-04-10T20:33:16Z",
        "permissions": {"actions": "write", "checks": "write", "contents": "write",
                        "metadata": "read", "pull_requests": "write"},
        "events": ["check_run", "check_suite", "pull_request", "push", "workflow_run"],
    }


def workflow_run(api: str, org: str, org_id: int, repo: Repo, view: RunView,
                 attempt: Attempt | None = None, head: Commit | None = None) -> Json:
    """A ``workflow-run`` showing ``attempt`` (default: the latest visible one)."""
    run = view.run
    a = attempt or view.latest
    name = f"{org}/{repo.name}"
    u = f"{api}/repos/{name}/actions/runs/{run.id}"
    status, conclusion = status_of(a, view.now)
    repo_json = repository(api, org, org_id, repo, full=False)
    return {
        "id": run.id, "name": run.workflow.name, "node_id": node_id("WFR", run.id),
        "check_suite_id": run.check_suite_id,
        "check_suite_node_id": node_id("CS", run.check_suite_id),
        "head_branch": run.head_branch, "head_sha": run.head_sha, "path": run.workflow.path,
        "run_number": run.run_number, "run_attempt": a.number, "referenced_workflows": [],
        "event": run.event, "status": status, "conclusion": conclusion,
        "workflow_id": run.workflow.id, "url": u,
        "html_url": f"{HTML}/{name}/actions/runs/{run.id}",
        "pull_requests": [{
            "url": f"{api}/repos/{name}/pulls/{run.pr_number}", "id": run.pr_number,
            "number": run.pr_number,
            "head": {"ref": run.head_branch, "sha": run.head_sha,
                     "repo": {"id": repo.id, "url": f"{api}/repos/{name}", "name": repo.name}},
            "base": {"ref": "main", "sha": run.head_sha[::-1],
                     "repo": {"id": repo.id, "url": f"{api}/repos/{name}", "name": repo.name}},
        }],
        "created_at": iso(run.created_at), "updated_at": iso(stamp_of(a, view.now)),
        "actor": user(api, run.actor), "triggering_actor": user(api, run.actor),
        "run_started_at": iso(a.started_at if a.started_at <= view.now else a.created_at),
        "jobs_url": f"{u}/jobs", "logs_url": f"{u}/logs", "check_suite_url":
        f"{api}/repos/{name}/check-suites/{run.check_suite_id}",
        "artifacts_url": f"{u}/artifacts", "cancel_url": f"{u}/cancel", "rerun_url": f"{u}/rerun",
        "previous_attempt_url": f"{u}/attempts/{a.number - 1}" if a.number > 1 else None,
        "workflow_url": f"{api}/repos/{name}/actions/workflows/{run.workflow.id}",
        "head_commit": _head_commit(run, head), "repository": repo_json,
        "head_repository": repo_json,
        "display_title": run.workflow.name,
    }


def _head_commit(run: Run, head: Commit | None) -> Json:
    """The run's ``head_commit`` (a ``simple-commit``)."""
    if head is None:
        at = run.attempts[0].created_at
        who = {"name": "unknown", "email": "unknown@example.com"}
        return {"id": run.head_sha, "tree_id": run.head_sha[::-1], "message": "",
                "timestamp": iso(at), "author": who, "committer": who}
    who = {k: v for k, v in git_user(head.author, head.authored_at).items() if k != "date"}
    return {"id": head.sha, "tree_id": head.sha[::-1], "message": head.message,
            "timestamp": iso(head.committed_at), "author": who, "committer": who}


def job(api: str, org: str, view: RunView, attempt: Attempt, j: Job) -> Json:
    """A workflow ``job`` of one attempt (``created_at`` is when it queued)."""
    run = view.run
    name = f"{org}/{run.repo}"
    status, conclusion = status_of(j, view.now)
    started = j.started_at if status != "queued" else j.created_at
    steps = []
    if status == "completed":
        mid = j.started_at + (j.completed_at - j.started_at) / 2
        for n, (title, s, c) in enumerate(
            (("Set up job", j.started_at, mid), (f"Run {j.name}", mid, j.completed_at)), start=1
        ):
            steps.append({"name": title, "status": "completed", "number": n,
                          "conclusion": "success" if n == 1 else conclusion,
                          "started_at": iso(s), "completed_at": iso(c)})
    return {
        "id": j.id, "run_id": run.id, "workflow_name": run.workflow.name,
        "head_branch": run.head_branch, "run_url": f"{api}/repos/{name}/actions/runs/{run.id}",
        "run_attempt": attempt.number, "node_id": node_id("CR", j.id), "head_sha": run.head_sha,
        "url": f"{api}/repos/{name}/actions/jobs/{j.id}",
        "html_url": f"{HTML}/{name}/actions/runs/{run.id}/job/{j.id}",
        "status": status, "conclusion": conclusion, "created_at": iso(j.created_at),
        "started_at": iso(started),
        "completed_at": iso(j.completed_at) if status == "completed" else None,
        "name": j.name, "steps": steps, "check_run_url": f"{api}/repos/{name}/check-runs/{j.id}",
        "labels": ["ubuntu-latest"], "runner_id": 1 if status != "queued" else None,
        "runner_name": "GitHub Actions 1" if status != "queued" else None,
        "runner_group_id": 1 if status != "queued" else None,
        "runner_group_name": "GitHub Actions" if status != "queued" else None,
    }


def workflow(api: str, org: str, wf: Workflow, created: datetime | None) -> Json:
    """A repository's ``workflow``."""
    name = f"{org}/{wf.repo}"
    return {
        "id": wf.id, "node_id": node_id("W", wf.id), "name": wf.name, "path": wf.path,
        "state": "active", "created_at": iso(created), "updated_at": iso(created),
        "url": f"{api}/repos/{name}/actions/workflows/{wf.id}",
        "html_url": f"{HTML}/{name}/blob/main/{wf.path}",
        "badge_url": f"{HTML}/{name}/workflows/{wf.name}/badge.svg",
    }
