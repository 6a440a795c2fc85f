"""Resolver objects for the sandbox's GraphQL: plain dicts (and callables for fields with
arguments) built from the org's view at the request's moment. See :mod:`jobs.sandbox.graphql`
for the fields served.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from graphql import GraphQLError

from jobs.sandbox.records import (
    Account,
    Attempt,
    Commit,
    Event,
    Job,
    ReviewRec,
    members_by_slug,
)
from jobs.sandbox.rest import iso
from jobs.sandbox.routes import Context, date_range
from jobs.sandbox.view import PRView, RunView, status_of, view_pr, view_run

Obj = dict[str, Any]
HTML = "https://github.com"


# ---------------------------------------------------------------------------------- helpers


def _cursor(i: int) -> str:
    return base64.b64encode(f"cursor:v2:{i}".encode()).decode()


def _index(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        return int(base64.b64decode(cursor).decode().rsplit(":", 1)[1])
    except (ValueError, IndexError):
        raise GraphQLError(f"`{cursor}` does not appear to be a valid cursor.") from None


def connection(items: list[Any], to_node: Callable[[Any], Obj | None], name: str,
               first: int | None = None, after: str | None = None, last: int | None = None,
               before: str | None = None, extra: Obj | None = None) -> Obj:
    """A Relay connection over ``items`` with GitHub's page-size rules (1..100, required)."""
    if first is None and last is None:
        raise GraphQLError(
            f"You must provide a `first` or `last` value to properly paginate the `{name}` "
            "connection."
        )
    for arg, value in (("first", first), ("last", last)):
        if value is not None and not 0 <= value <= 100:
            raise GraphQLError(
                f"Requesting {value} records on the `{name}` connection exceeds the `{arg}` "
                "limit of 100 records."
            )
    lo, hi = 0, len(items)
    a, b = _index(after), _index(before)
    if a is not None:
        lo = a + 1
    if b is not None:
        hi = min(hi, b)
    if first is not None:
        hi = min(hi, lo + first)
    if last is not None:
        lo = max(lo, hi - last)
    window = list(range(lo, max(lo, hi)))
    nodes = [to_node(items[i]) for i in window]
    out = {
        "totalCount": len(items),
        "nodes": nodes,
        "edges": [{"cursor": _cursor(i), "node": n} for i, n in zip(window, nodes, strict=True)],
        "pageInfo": {
            "hasNextPage": (window[-1] if window else lo - 1) < len(items) - 1,
            "hasPreviousPage": lo > 0,
            "startCursor": _cursor(window[0]) if window else None,
            "endCursor": _cursor(window[-1]) if window else None,
        },
    }
    out.update(extra or {})
    return out


# ---------------------------------------------------------------------------------- objects


class Root:
    """Builds the resolver dicts for one request."""

    def __init__(self, ctx: Context, rate: Any, cost: int, nodes: int) -> None:
        self.ctx, self.rate, self.cost, self.nodes = ctx, rate, cost, nodes
        self.org = ctx.org
        self.now = ctx.now
        self.teams = {t.slug: t for t in ctx.org.teams}

    def obj(self) -> Obj:
        return {
            "rateLimit": lambda info, dryRun=False: {  # noqa: N803 - GraphQL's name
                "cost": self.cost, "limit": self.rate.limit, "nodeCount": self.nodes,
                "remaining": self.rate.remaining, "used": self.rate.used,
                "resetAt": iso(datetime.fromtimestamp(self.rate.reset, UTC)),
            },
            "viewer": lambda info: self.actor(self.org.teams[0].members[0]),
            "repository": lambda info, owner, name, followRenames=True: self.repository(owner, name),  # noqa: N803,E501
            "node": lambda info, id: self.node(id),  # noqa: A006 - GraphQL's argument name
            "nodes": lambda info, ids: [self.node(i) for i in ids],
            "search": self.search,
        }

    # ---------------------------------------------------------------- actors

    def actor(self, account: Account | None) -> Obj | None:
        if account is None:
            return None
        url = (f"{HTML}/{account.login}" if account.type != "Bot"
               else f"{HTML}/apps/{account.graphql_login}")
        return {
            "__typename": account.type, "login": account.graphql_login, "id": account.node_id,
            "databaseId": account.id, "name": account.name, "url": url,
            "resourcePath": url.removeprefix(HTML), "email": account.email or "",
            "avatarUrl": lambda info, size=None: f"https://avatars.githubusercontent.com/u/{account.id}",
        }

    def team(self, slug: str) -> Obj:
        t = self.teams.get(slug)
        return {
            "__typename": "Team", "slug": slug, "name": slug, "id": f"T_{slug}",
            "databaseId": t.id if t else None, "combinedSlug": f"{self.org.name}/{slug}",
            "url": f"{HTML}/orgs/{self.org.name}/teams/{slug}",
        }

    # ---------------------------------------------------------------- repository

    def repository(self, owner: str, name: str) -> Obj | None:
        repo = self.org.repos.get(name)
        if owner.lower() != self.org.name.lower() or repo is None:
            raise GraphQLError(f"Could not resolve to a Repository with the name '{owner}/{name}'.",
                               extensions={"type": "NOT_FOUND"})
        full = f"{self.org.name}/{repo.name}"
        return {
            "__typename": "Repository", "id": f"R_{repo.id}", "databaseId": repo.id,
            "name": repo.name, "nameWithOwner": full, "isArchived": repo.archived,
            "isPrivate": repo.private, "url": f"{HTML}/{full}",
            "owner": {"__typename": "Organization", "login": self.org.name, "id": "O_1"},
            "defaultBranchRef": {"name": repo.default_branch},
            "pullRequests": lambda info, **a: self.pull_requests(repo.name, **a),
            "pullRequest": lambda info, number: self.pull_request(repo.name, number),
        }

    def pull_requests(self, repo: str, first: int | None = None, after: str | None = None,
                      last: int | None = None, before: str | None = None,
                      states: list[str] | None = None, orderBy: Obj | None = None,  # noqa: N803
                      baseRefName: str | None = None, headRefName: str | None = None,  # noqa: N803
                      labels: list[str] | None = None) -> Obj:
        views = [v for v in (view_pr(p, self.now) for p in self.org.prs.get(repo, [])) if v]
        if states:
            views = [v for v in views if _state(v) in states]
        if baseRefName:
            views = [v for v in views if v.pr.base_ref == baseRefName]
        if headRefName:
            views = [v for v in views if v.pr.head_ref == headRefName]
        if labels:
            views = [v for v in views if set(labels) & set(v.pr.labels)]
        order = orderBy or {"field": "CREATED_AT", "direction": "ASC"}
        if order.get("field") == "UPDATED_AT":
            views.sort(key=lambda v: (v.updated_at, v.pr.number))
        else:
            views.sort(key=lambda v: (v.pr.created_at, v.pr.number))
        if order.get("direction") == "DESC":
            views.reverse()
        return connection(views, self.pull, "pullRequests", first, after, last, before)

    def pull_request(self, repo: str, number: int) -> Obj | None:
        pr = self.org.pull(repo, number)
        view = view_pr(pr, self.now) if pr else None
        if view is None:
            raise GraphQLError(f"Could not resolve to a PullRequest with the number of {number}.",
                               extensions={"type": "NOT_FOUND"})
        return self.pull(view)

    def node(self, node_id: str) -> Obj | None:
        pr = self.org.by_node_id.get(node_id)
        view = view_pr(pr, self.now) if pr else None
        if view is None:
            raise GraphQLError(f"Could not resolve to a node with the global id of '{node_id}'",
                               extensions={"type": "NOT_FOUND"})
        return self.pull(view)

    def search(self, info: Any, query: str, type: str, first: int | None = None,  # noqa: A002
               after: str | None = None, last: int | None = None,
               before: str | None = None) -> Obj:
        """Issue search over PRs: ``repo:``, ``is:pr``/``is:open``/``is:merged``, ``updated:``
        and ``created:`` qualifiers; newest first."""
        repos: list[str] = []
        ranges: list[tuple[str, tuple[datetime, datetime]]] = []
        states: list[str] = []
        for term in query.split():
            key, _, value = term.partition(":")
            if key == "repo" and value.lower().startswith(self.org.name.lower() + "/"):
                repos.append(value.split("/", 1)[1])
            elif key in ("updated", "created"):
                ranges.append((key, date_range(value)))
            elif key == "is" and value in ("open", "closed", "merged", "draft"):
                states.append(value)
            elif key == "org" and value.lower() == self.org.name.lower():
                repos.extend(self.org.repos)
        views = [v for r in repos for v in (view_pr(p, self.now) for p in self.org.prs.get(r, []))
                 if v]
        for key, (lo, hi) in ranges:
            if key == "updated":
                views = [v for v in views if lo <= v.updated_at <= hi]
            else:
                views = [v for v in views if lo <= v.pr.created_at <= hi]
        for state in states:
            if state == "draft":
                views = [v for v in views if v.draft]
            elif state == "merged":
                views = [v for v in views if v.merged_at is not None]
            else:
                views = [v for v in views if v.state == state]
        views.sort(key=lambda v: (v.pr.created_at, v.pr.id), reverse=True)
        found = connection(views, self.pull, "search", first, after, last, before)
        found.update({"issueCount": len(views), "repositoryCount": 0, "userCount": 0,
                      "codeCount": 0, "discussionCount": 0, "wikiCount": 0})
        return found

    # ---------------------------------------------------------------- pull request

    def pull(self, v: PRView) -> Obj:
        pr = v.pr
        full = f"{self.org.name}/{pr.repo}"
        url = f"{HTML}/{full}/pull/{pr.number}"
        merged = next((e for e in v.events if e.event == "merged"), None)
        return {
            "__typename": "PullRequest", "id": pr.node_id, "databaseId": pr.id,
            "number": pr.number, "title": pr.title, "body": pr.body, "url": url,
            "permalink": url, "resourcePath": url.removeprefix(HTML), "isDraft": v.draft,
            "state": _state(v), "closed": v.closed_at is not None,
            "merged": v.merged_at is not None, "createdAt": iso(pr.created_at),
            "updatedAt": iso(v.updated_at), "closedAt": iso(v.closed_at),
            "mergedAt": iso(v.merged_at), "headRefOid": v.head_sha, "headRefName": pr.head_ref,
            "baseRefName": pr.base_ref, "baseRefOid": pr.base_sha, "additions": pr.additions,
            "deletions": pr.deletions, "changedFiles": pr.changed_files,
            "author": self.actor(pr.author),
            "authorAssociation": "MEMBER" if pr.author.kind == "human" else "NONE",
            "mergedBy": self.actor(merged.actor) if merged else None,
            "mergeCommit": {"oid": merged.commit_id} if merged else None,
            "repository": lambda info: self.repository(self.org.name, pr.repo),
            "labels": lambda info, **a: connection(
                list(pr.labels), lambda n: {"name": n, "id": f"LA_{n}", "color": "ededed"},
                "labels", **_page(a)),
            "reviewRequests": lambda info, **a: connection(
                self._requests(v), lambda r: r, "reviewRequests", **_page(a)),
            "reviews": lambda info, states=None, author=None, **a: connection(
                [r for r in v.reviews if not states or r.state in states],
                lambda r: self.review(v, r), "reviews", **_page(a)),
            "commits": lambda info, **a: connection(
                list(v.commits), lambda c: self.pr_commit(v, c), "commits", **_page(a)),
            "timelineItems": lambda info, **a: self.timeline(v, **a),
        }

    def _requests(self, v: PRView) -> list[Obj]:
        users, teams = v.requested(members_by_slug(self.teams))
        out = [{"requestedReviewer": self.actor(self.org.accounts.get(u)) or
                {"__typename": "User", "login": u}, "asCodeOwner": False} for u in users]
        out += [{"requestedReviewer": self.team(t), "asCodeOwner": False} for t in teams]
        return out

    def review(self, v: PRView, r: ReviewRec) -> Obj:
        full = f"{self.org.name}/{v.pr.repo}"
        url = f"{HTML}/{full}/pull/{v.pr.number}#pullrequestreview-{r.id}"
        return {
            "__typename": "PullRequestReview", "id": f"PRR_{r.id}", "databaseId": r.id,
            "author": self.actor(r.author), "state": r.state, "body": r.body,
            "submittedAt": iso(r.submitted_at), "createdAt": iso(r.submitted_at),
            "publishedAt": iso(r.submitted_at), "url": url,
            "authorAssociation": "MEMBER" if r.author and r.author.kind == "human" else "NONE",
            "commit": self.commit_ref(v, r.commit_id),
        }

    def commit_ref(self, v: PRView, sha: str | None) -> Obj | None:
        if sha is None:
            return None
        found = next((c for c in v.pr.commits if c.sha == sha), None)
        return self.commit(v, found) if found else {"__typename": "Commit", "oid": sha,
                                                    "abbreviatedOid": sha[:7]}

    def pr_commit(self, v: PRView, c: Commit) -> Obj:
        url = f"{HTML}/{self.org.name}/{v.pr.repo}/pull/{v.pr.number}/commits/{c.sha}"
        return {"__typename": "PullRequestCommit", "id": f"PRC_{c.sha[:16]}", "url": url,
                "resourcePath": url.removeprefix(HTML), "commit": self.commit(v, c)}

    def commit(self, v: PRView, c: Commit) -> Obj:
        headline, _, rest_ = c.message.partition("\n")
        person = {"name": c.author.name if c.author else "Deleted user",
                  "email": c.author.email if c.author else None,
                  "date": iso(c.authored_at), "user": self.actor(c.author)}
        runs = [r for r in v.runs if r.head_sha == c.sha]
        return {
            "__typename": "Commit", "oid": c.sha, "abbreviatedOid": c.sha[:7],
            "message": c.message, "messageHeadline": headline, "messageBody": rest_.strip(),
            "authoredDate": iso(c.authored_at), "committedDate": iso(c.committed_at),
            "pushedDate": iso(c.pushed_at), "author": person,
            "committer": {**person, "date": iso(c.committed_at)},
            "url": f"{HTML}/{self.org.name}/{v.pr.repo}/commit/{c.sha}",
            "checkSuites": lambda info, filterBy=None, **a: connection(  # noqa: N803
                [x for x in (view_run(r, self.now) for r in runs) if x],
                self.check_suite, "checkSuites", **_page(a)),
        }

    # ---------------------------------------------------------------- CI

    def check_suite(self, rv: RunView) -> Obj:
        run = rv.run
        status, conclusion = status_of(rv.latest, self.now)
        url = f"{HTML}/{self.org.name}/{run.repo}/actions/runs/{run.id}"
        return {
            "__typename": "CheckSuite", "id": f"CS_{run.check_suite_id}",
            "databaseId": run.check_suite_id, "status": status.upper(),
            "conclusion": conclusion.upper() if conclusion else None,
            "createdAt": iso(run.created_at), "updatedAt": iso(rv.updated_at), "url": url,
            "app": {"name": "GitHub Actions", "slug": "github-actions", "databaseId": 15368},
            "workflowRun": {
                "id": f"WFR_{run.id}", "databaseId": run.id, "runNumber": run.run_number,
                "event": run.event, "createdAt": iso(run.created_at),
                "updatedAt": iso(rv.updated_at), "url": url,
                "resourcePath": url.removeprefix(HTML),
                "workflow": {"id": f"W_{run.workflow.id}", "databaseId": run.workflow.id,
                             "name": run.workflow.name},
            },
            "checkRuns": lambda info, filterBy=None, **a: connection(  # noqa: N803
                self._check_items(rv, filterBy), self.check_run, "checkRuns", **_page(a)),
        }

    def _check_items(self, rv: RunView,
                     filter_by: Obj | None) -> list[tuple[RunView, Attempt, Job]]:
        attempts = rv.attempts if (filter_by or {}).get("checkType") == "ALL" else rv.attempts[-1:]
        return [(rv, a, j) for a in attempts for j in a.jobs]

    def check_run(self, item: tuple[RunView, Attempt, Job]) -> Obj:
        rv, _attempt, job = item
        status, conclusion = status_of(job, self.now)
        url = f"{HTML}/{self.org.name}/{rv.run.repo}/actions/runs/{rv.run.id}/job/{job.id}"
        return {
            "__typename": "CheckRun", "id": f"CR_{job.id}", "databaseId": job.id,
            "name": job.name, "status": status.upper(),
            "conclusion": conclusion.upper() if conclusion else None,
            "startedAt": iso(job.started_at if status != "queued" else None),
            "completedAt": iso(job.completed_at if status == "completed" else None),
            "url": url, "detailsUrl": url,
        }

    # ---------------------------------------------------------------- timeline

    def timeline(self, v: PRView, first: int | None = None, after: str | None = None,
                 last: int | None = None, before: str | None = None,
                 itemTypes: list[str] | None = None, since: str | None = None,  # noqa: N803
                 skip: int | None = None) -> Obj:
        items: list[tuple[datetime, int, str, Callable[[], Obj]]] = []
        for c in v.commits:
            items.append((c.committed_at, 0, "PULL_REQUEST_COMMIT", partial(self.pr_commit, v, c)))
        for r in v.reviews:
            items.append((r.submitted_at, r.id, "PULL_REQUEST_REVIEW", partial(self.review, v, r)))
        for e in v.events:
            kind = _EVENT_TYPES.get(e.event)
            if kind:
                items.append((e.at, e.id, kind, partial(self.event, v, e)))
        items.sort(key=lambda t: (t[0], t[1]))
        if itemTypes:
            items = [i for i in items if i[2] in itemTypes]
        total = len(items)
        if since:
            cut = datetime.fromisoformat(since.replace("Z", "+00:00"))
            items = [i for i in items if i[0] >= cut]
        if skip:
            items = items[skip:]
        updated = iso(v.updated_at)
        return connection(items, lambda i: i[3](), "timelineItems", first, after, last, before,
                          {"filteredCount": len(items), "pageCount": len(items),
                           "updatedAt": updated, "totalCount": total})

    def event(self, v: PRView, e: Event) -> Obj:
        typename = _TYPENAMES[e.event]
        out: Obj = {"__typename": typename, "id": f"E_{e.id}", "createdAt": iso(e.at),
                    "actor": self.actor(e.actor)}
        if e.event in ("review_requested", "review_request_removed"):
            out["requestedReviewer"] = self.team(e.team) if e.team else self.actor(e.reviewer)
        elif e.event == "head_ref_force_pushed":
            out["beforeCommit"] = self.commit_ref(v, e.before_sha)
            out["afterCommit"] = self.commit_ref(v, e.after_sha)
            out["ref"] = {"name": v.pr.head_ref}
        elif e.event == "merged":
            out["commit"] = {"__typename": "Commit", "oid": e.commit_id,
                             "abbreviatedOid": (e.commit_id or "")[:7]}
            out["mergeRefName"] = v.pr.base_ref
        elif e.event == "closed":
            out["stateReason"] = None
        return out


_TYPENAMES = {
    "review_requested": "ReviewRequestedEvent",
    "review_request_removed": "ReviewRequestRemovedEvent",
    "ready_for_review": "ReadyForReviewEvent",
    "convert_to_draft": "ConvertToDraftEvent",
    "head_ref_force_pushed": "HeadRefForcePushedEvent",
    "merged": "MergedEvent",
    "closed": "ClosedEvent",
    "reopened": "ReopenedEvent",
}
_EVENT_TYPES = {
    "review_requested": "REVIEW_REQUESTED_EVENT",
    "review_request_removed": "REVIEW_REQUEST_REMOVED_EVENT",
    "ready_for_review": "READY_FOR_REVIEW_EVENT",
    "convert_to_draft": "CONVERT_TO_DRAFT_EVENT",
    "head_ref_force_pushed": "HEAD_REF_FORCE_PUSHED_EVENT",
    "merged": "MERGED_EVENT",
    "closed": "CLOSED_EVENT",
    "reopened": "REOPENED_EVENT",
}


def _state(v: PRView) -> str:
    if v.merged_at is not None:
        return "MERGED"
    return "CLOSED" if v.closed_at is not None else "OPEN"


def _page(args: Obj) -> Obj:
    return {k: args.get(k) for k in ("first", "after", "last", "before")}
