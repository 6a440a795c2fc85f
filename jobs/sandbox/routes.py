"""The sandbox's REST endpoints: path patterns to payloads, as of one moment.

Each handler returns a :class:`Result`; lists (or a wrapped list under ``items_key``) are
paginated by the server, which also does auth, rate limits, ETags and faults.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from jobs.sandbox import actions, rest
from jobs.sandbox.org import Org
from jobs.sandbox.records import PR, Commit, Repo, members_by_slug
from jobs.sandbox.view import PRView, RunView, status_of, view_pr, view_run

Query = dict[str, str]
PR_COMMITS_CAP = 250  # GET /pulls/{n}/commits lists at most this many (GitHub's documented cap)


@dataclass
class Result:
    """An answer: status, JSON body, extra headers; ``items_key`` names a wrapped list.

    With ``render``, the list holds raw items and only the requested page is rendered.
    """

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    items_key: str | None = None
    render: Callable[[Any], Any] | None = None


class NotFound(Exception):
    """The resource does not exist (or is hidden from the token)."""


@dataclass
class Context:
    """One request's view of the org."""

    org: Org
    api: str
    now: datetime
    user_login: str

    def repo(self, owner: str, name: str) -> Repo:
        repo = self.org.repos.get(name)
        if owner.lower() != self.org.name.lower() or repo is None:
            raise NotFound
        return repo

    def pr(self, owner: str, name: str, number: str) -> tuple[Repo, PRView]:
        repo = self.repo(owner, name)
        pr = self.org.pull(repo.name, int(number))
        view = view_pr(pr, self.now) if pr else None
        if view is None:
            raise NotFound
        return repo, view

    @property
    def slugs(self) -> dict[str, Any]:
        return {t.slug: t for t in self.org.teams}


Handler = Callable[..., Result]
ROUTES: list[tuple[str, re.Pattern[str], Handler]] = []


def route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    """Register a handler for ``METHOD /path/{param}``."""
    regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$")

    def deco(fn: Handler) -> Handler:
        ROUTES.append((method, regex, fn))
        return fn

    return deco


def match(method: str, path: str) -> tuple[Handler, dict[str, str]] | None:
    """The handler and path parameters for a request, or ``None``."""
    for m, regex, fn in ROUTES:
        if m == method:
            found = regex.match(path)
            if found:
                return fn, found.groupdict()
    return None


# ------------------------------------------------------------------------------ account


@route("GET", "/user")
def get_user(ctx: Context, q: Query) -> Result:
    account = ctx.org.accounts.get(ctx.user_login) or ctx.org.teams[0].members[0]
    return Result(200, rest.private_user(ctx.api, account, ctx.org.start))


@route("GET", "/orgs/{org}/repos")
def org_repos(ctx: Context, q: Query, org: str) -> Result:
    if org.lower() != ctx.org.name.lower():
        raise NotFound
    repos = sorted(ctx.org.repos.values(), key=lambda r: r.name.lower())
    sort, direction = q.get("sort", "full_name"), q.get("direction")
    if sort in ("created", "updated", "pushed"):
        key = {"created": lambda r: r.created_at, "updated": lambda r: r.pushed_at,
               "pushed": lambda r: r.pushed_at}[sort]
        repos.sort(key=key, reverse=(direction or "desc") == "desc")
    elif direction == "desc":
        repos.reverse()
    body = [rest.repository(ctx.api, ctx.org.name, ctx.org.owner_id, r, full=False) for r in repos]
    return Result(200, body)


@route("GET", "/orgs/{org}/teams/{slug}/members")
def team_members(ctx: Context, q: Query, org: str, slug: str) -> Result:
    team = next((t for t in ctx.org.teams if t.slug == slug), None)
    if team is None or org.lower() != ctx.org.name.lower():
        raise NotFound
    return Result(200, [rest.user(ctx.api, m) for m in team.members])


@route("GET", "/repos/{owner}/{repo}")
def get_repo(ctx: Context, q: Query, owner: str, repo: str) -> Result:
    r = ctx.repo(owner, repo)
    return Result(200, rest.repository(ctx.api, ctx.org.name, ctx.org.owner_id, r))


# ------------------------------------------------------------------------------ pulls


@route("GET", "/repos/{owner}/{repo}/pulls")
def list_pulls(ctx: Context, q: Query, owner: str, repo: str) -> Result:
    r = ctx.repo(owner, repo)
    state = q.get("state", "open")
    views = [v for v in (view_pr(p, ctx.now) for p in ctx.org.prs.get(r.name, [])) if v]
    if state in ("open", "closed"):
        views = [v for v in views if v.state == state]
    if q.get("base"):
        views = [v for v in views if v.pr.base_ref == q["base"]]
    sort = q.get("sort", "created")
    default_dir = "desc" if sort == "created" else "asc"  # GitHub's documented defaults
    key: Callable[[PRView], Any] = {
        "updated": lambda v: (v.updated_at, v.pr.number),
        "popularity": lambda v: (len(v.events), v.pr.number),
        "long-running": lambda v: (v.pr.created_at, v.pr.number),
    }.get(sort, lambda v: (v.pr.created_at, v.pr.number))
    views.sort(key=key, reverse=q.get("direction", default_dir) == "desc")
    slugs = ctx.slugs
    return Result(200, views, render=lambda v: rest.pull(
        ctx.api, ctx.org.name, ctx.org.owner_id, r, v, full=False, slugs=slugs))


@route("GET", "/repos/{owner}/{repo}/pulls/{number}")
def get_pull(ctx: Context, q: Query, owner: str, repo: str, number: str) -> Result:
    r, v = ctx.pr(owner, repo, number)
    return Result(200, rest.pull(ctx.api, ctx.org.name, ctx.org.owner_id, r, v, full=True,
                                 slugs=ctx.slugs))


@route("GET", "/repos/{owner}/{repo}/pulls/{number}/reviews")
def list_reviews(ctx: Context, q: Query, owner: str, repo: str, number: str) -> Result:
    r, v = ctx.pr(owner, repo, number)
    return Result(200, [rest.review(ctx.api, ctx.org.name, r.name, v.pr, x) for x in v.reviews])


@route("GET", "/repos/{owner}/{repo}/pulls/{number}/commits")
def list_commits(ctx: Context, q: Query, owner: str, repo: str, number: str) -> Result:
    r, v = ctx.pr(owner, repo, number)
    # GitHub lists at most 250 commits here ("use the List commits endpoint" for more)
    return Result(200, [rest.commit(ctx.api, ctx.org.name, r.name, c)
                        for c in v.commits[:PR_COMMITS_CAP]])


@route("GET", "/repos/{owner}/{repo}/pulls/{number}/requested_reviewers")
def requested_reviewers(ctx: Context, q: Query, owner: str, repo: str, number: str) -> Result:
    _r, v = ctx.pr(owner, repo, number)
    users, teams = v.requested(members_by_slug(ctx.slugs))
    return Result(200, {
        "users": [rest.user(ctx.api, ctx.org.accounts[u]) for u in users
                  if u in ctx.org.accounts],
        "teams": [rest.team(ctx.api, ctx.org.name, ctx.slugs[t]) for t in teams if t in ctx.slugs],
    })


@route("GET", "/repos/{owner}/{repo}/issues/{number}")
def get_issue(ctx: Context, q: Query, owner: str, repo: str, number: str) -> Result:
    _r, v = ctx.pr(owner, repo, number)
    return Result(200, rest.issue(ctx.api, ctx.org.name, v))


@route("GET", "/repos/{owner}/{repo}/issues/{number}/events")
def issue_events(ctx: Context, q: Query, owner: str, repo: str, number: str) -> Result:
    r, v = ctx.pr(owner, repo, number)
    name = ctx.org.full_name(r.name)
    return Result(200, [rest.issue_event(ctx.api, name, e, ctx.slugs) for e in v.events])


@route("GET", "/repos/{owner}/{repo}/issues/{number}/timeline")
def timeline(ctx: Context, q: Query, owner: str, repo: str, number: str) -> Result:
    r, v = ctx.pr(owner, repo, number)
    return Result(200, rest.timeline(ctx.api, ctx.org.name, r.name, v, ctx.slugs))


# ------------------------------------------------------------------------------ checks, actions


@route("GET", "/repos/{owner}/{repo}/commits/{ref}")
def get_commit(ctx: Context, q: Query, owner: str, repo: str, ref: str) -> Result:
    r = ctx.repo(owner, repo)
    c = ctx.org.commits_by_sha.get((r.name, ref))
    if c is None or c.pushed_at > ctx.now:
        raise NotFound
    body = rest.commit(ctx.api, ctx.org.name, r.name, c)
    body["stats"] = {"additions": 0, "deletions": 0, "total": 0}
    body["files"] = []
    return Result(200, body)


@route("GET", "/repos/{owner}/{repo}/commits/{ref}/check-runs")
def check_runs(ctx: Context, q: Query, owner: str, repo: str, ref: str) -> Result:
    r = ctx.repo(owner, repo)
    latest_only = q.get("filter", "latest") == "latest"
    runs = [v for v in (view_run(x, ctx.now) for x in ctx.org.runs_by_sha.get((r.name, ref), []))
            if v]
    out = []
    for v in runs:
        attempts = v.attempts[-1:] if latest_only else v.attempts
        for a in attempts:
            for j in a.jobs:
                if q.get("check_name") and j.name != q["check_name"]:
                    continue
                if q.get("status") and status_of(j, ctx.now)[0] != q["status"]:
                    continue
                out.append(actions.check_run(ctx.api, ctx.org.name, v, a, j))
    out.sort(key=lambda c: c["id"], reverse=True)
    return Result(200, {"total_count": len(out), "check_runs": out}, items_key="check_runs")


@route("GET", "/repos/{owner}/{repo}/actions/runs")
def list_runs(ctx: Context, q: Query, owner: str, repo: str) -> Result:
    r = ctx.repo(owner, repo)
    views = [v for v in (view_run(x, ctx.now) for x in ctx.org.runs_of(r.name)) if v]
    if q.get("head_sha"):
        views = [v for v in views if v.run.head_sha == q["head_sha"]]
    if q.get("event"):
        views = [v for v in views if v.run.event == q["event"]]
    if q.get("branch"):
        views = [v for v in views if v.run.head_branch == q["branch"]]
    if q.get("status"):
        views = [v for v in views if _run_matches_status(v, q["status"], ctx.now)]
    if q.get("created"):
        lo, hi = date_range(q["created"])
        views = [v for v in views if lo <= v.run.created_at <= hi]
    return Result(200, {"total_count": len(views), "workflow_runs": views},
                  items_key="workflow_runs",
                  render=lambda v: actions.workflow_run(ctx.api, ctx.org.name, ctx.org.owner_id,
                                                        r, v, head=_head(ctx, v)))


@route("GET", "/repos/{owner}/{repo}/actions/workflows")
def list_workflows(ctx: Context, q: Query, owner: str, repo: str) -> Result:
    r = ctx.repo(owner, repo)
    flows = [actions.workflow(ctx.api, ctx.org.name, w, r.created_at)
             for w in ctx.org.workflows.get(r.name, [])]
    return Result(200, {"total_count": len(flows), "workflows": flows}, items_key="workflows")


def _run(ctx: Context, owner: str, repo: str, run_id: str) -> tuple[Repo, RunView]:
    r = ctx.repo(owner, repo)
    run = ctx.org.run(int(run_id)) if run_id.isdigit() else None
    v = view_run(run, ctx.now) if run and run.repo == r.name else None
    if v is None:
        raise NotFound
    return r, v


@route("GET", "/repos/{owner}/{repo}/actions/runs/{run_id}")
def get_run(ctx: Context, q: Query, owner: str, repo: str, run_id: str) -> Result:
    r, v = _run(ctx, owner, repo, run_id)
    return Result(200, actions.workflow_run(ctx.api, ctx.org.name, ctx.org.owner_id, r, v,
                                            head=_head(ctx, v)))


@route("GET", "/repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{n}")
def get_attempt(ctx: Context, q: Query, owner: str, repo: str, run_id: str, n: str) -> Result:
    r, v = _run(ctx, owner, repo, run_id)
    a = v.attempt(int(n)) if n.isdigit() else None
    if a is None:
        raise NotFound
    return Result(200, actions.workflow_run(ctx.api, ctx.org.name, ctx.org.owner_id, r, v, a,
                                            head=_head(ctx, v)))


@route("GET", "/repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{n}/jobs")
def attempt_jobs(ctx: Context, q: Query, owner: str, repo: str, run_id: str, n: str) -> Result:
    _r, v = _run(ctx, owner, repo, run_id)
    a = v.attempt(int(n)) if n.isdigit() else None
    if a is None:
        raise NotFound
    jobs = [actions.job(ctx.api, ctx.org.name, v, a, j) for j in a.jobs]
    return Result(200, {"total_count": len(jobs), "jobs": jobs}, items_key="jobs")


@route("GET", "/repos/{owner}/{repo}/actions/runs/{run_id}/jobs")
def run_jobs(ctx: Context, q: Query, owner: str, repo: str, run_id: str) -> Result:
    _r, v = _run(ctx, owner, repo, run_id)
    attempts = v.attempts if q.get("filter") == "all" else v.attempts[-1:]
    jobs = [actions.job(ctx.api, ctx.org.name, v, a, j) for a in attempts for j in a.jobs]
    return Result(200, {"total_count": len(jobs), "jobs": jobs}, items_key="jobs")


def _head(ctx: Context, v: RunView) -> Commit | None:
    return ctx.org.commits_by_sha.get((v.run.repo, v.run.head_sha))


def _run_matches_status(v: RunView, wanted: str, now: datetime) -> bool:
    status, conclusion = status_of(v.latest, now)
    return wanted in (status, conclusion)


def date_range(text: str) -> tuple[datetime, datetime]:
    """GitHub's date filter: ``>=D``, ``<=D``, ``>D``, ``<D``, ``D..D``, ``D``."""
    lo, hi = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
    text = text.strip()
    if ".." in text:
        a, b = text.split("..", 1)
        return (_parse(a) if a != "*" else lo), (_parse(b, end=True) if b != "*" else hi)
    for op in (">=", "<=", ">", "<"):
        if text.startswith(op):
            at = _parse(text[len(op):], end=op.startswith("<"))
            return (at, hi) if op.startswith(">") else (lo, at)
    return _parse(text), _parse(text, end=True)


def _parse(text: str, *, end: bool = False) -> datetime:
    text = text.strip()
    if len(text) == 10:  # a date: the whole day
        day = datetime.fromisoformat(text).replace(tzinfo=UTC)
        return day.replace(hour=23, minute=59, second=59) if end else day
    at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def pr_of(ctx: Context, pr: PR) -> PRView | None:
    """A PR as of the request's moment (for GraphQL)."""
    return view_pr(pr, ctx.now)
