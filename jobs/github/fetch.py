"""The requests the sampler makes, one function each: pagination and conditional requests.

Each returns GitHub's payloads (plain JSON), checked against the shape it reads
(:mod:`jobs.github.shapes`: a bad answer is retried, then fails the repository, and is never
read as data); :mod:`jobs.github.parse` makes records of them.
Which request does what, and what it costs:

- :func:`poll_pulls`: ``GET /repos/{o}/{r}/pulls?state=all&sort=updated&direction=desc
  &per_page=1`` with ``If-None-Match``: a ``304`` (free) means no PR changed at all.
- :func:`pull_pages`: GraphQL, 100 PRs per request (fewer when GitHub keeps failing a page),
  newest update first, with everything the metrics read except CI (reviews, timeline,
  commits with trailers), the first 100 of each.
- :func:`one_pull`: GraphQL, one PR by number with the same fields as a page (a webhook's
  refresh): one request, one point.
- :func:`complete_pull`: GraphQL, only for a PR with more than 100 commits, reviews or
  timeline items: one request per further page (all its long connections at once), up to
  ``source.more_pages`` (:data:`jobs.github.queries.MORE_PAGES`); what is still missing then is said on the record
  (``PullRequest.incomplete``).
- :func:`workflow_runs`: ``GET /repos/{o}/{r}/actions/runs?created=>=...`` (100 per page): CI of
  every PR in one listing; each run as listed is its latest attempt.
- :func:`run_jobs`: ``GET /repos/{o}/{r}/actions/runs/{id}/jobs?filter=all``: only for reruns,
  the one place a rerun attempt's own queue start is visible.
- :func:`org_repositories`: ``GET /orgs/{org}/repos`` (conditional).
- :func:`repository`: ``GET /repos/{o}/{r}``, once, for a repository with no PRs at all (is
  it archived?).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jobs.errors import (
    BadAnswer,
    BudgetExhausted,
    Deferred,
    GitHubError,
    PermissionDenied,
)
from jobs.github import queries, shapes
from jobs.github.client import GitHubSource, Response

MIN_PAGE = 10


@dataclass(frozen=True, slots=True)
class PullPage:
    """One GraphQL page of a repository's PRs."""

    nodes: list[dict[str, Any]]
    end_cursor: str | None
    has_next: bool
    archived: bool


def split(repo: str) -> tuple[str, str]:
    owner, _, name = repo.partition("/")
    return owner, name


def repository(source: GitHubSource, repo: str) -> dict[str, Any]:
    """``GET /repos/{o}/{r}``: the repository's own facts (``archived``, ``pushed_at``)."""
    return dict(source.rest(f"/repos/{repo}", expect=shapes.repository).data)


def poll_pulls(source: GitHubSource, repo: str, *, etag: str | None) -> Response:
    """The newest-updated PR of ``repo``, conditionally: 304 when nothing changed."""
    return source.rest(
        f"/repos/{repo}/pulls",
        params={"state": "all", "sort": "updated", "direction": "desc", "per_page": 1},
        etag=etag,
        expect=shapes.pull_list,
    )


def pull_pages(
    source: GitHubSource, repo: str, *, after: str | None, first: int | None = None
) -> Iterator[PullPage]:
    """Pages of ``repo``'s PRs, newest update first, starting after page cursor ``after``.

    ``first`` sizes the first page only (an incremental pass expects few changes, and a small
    page costs a quarter of a full one); later pages are ``source.page_size``. The caller
    stops iterating when it has reached what it already has.
    """
    owner, name = split(repo)
    cursor = after
    size = first or source.page_size
    while True:
        variables = {"owner": owner, "name": name, "first": size, "after": cursor}
        try:
            data = source.graphql(queries.PULL_PAGE, variables, expect=shapes.pull_page)
        except GitHubError as err:
            if size <= MIN_PAGE or isinstance(err, (PermissionDenied, BudgetExhausted,
                                                    Deferred, BadAnswer)):
                raise
            size = max(MIN_PAGE, size // 2)  # heavy pages time out on GitHub's side: ask less
            continue
        repository = data.get("repository")
        if repository is None:
            raise PermissionDenied(f"{repo}: repository not found or not visible to this token")
        conn = repository["pullRequests"]
        info = conn["pageInfo"]
        page = PullPage(
            nodes=[n for n in conn["nodes"] if n],
            end_cursor=info.get("endCursor"),
            has_next=bool(info["hasNextPage"]),
            archived=bool(repository["isArchived"]),
        )
        yield page
        if not page.has_next or page.archived:
            return
        if first is not None and size == first:
            size = source.page_size
        cursor = page.end_cursor


def one_pull(source: GitHubSource, repo: str, number: int) -> tuple[dict[str, Any] | None, bool]:
    """PR ``number`` of ``repo`` as a ``PullFields`` node (None when there is no such PR: an
    issue's number, or a PR deleted since), and whether the repository is archived.

    Raises PermissionDenied when the repository is not visible, and what
    :meth:`GitHubSource.graphql` raises.
    """
    owner, name = split(repo)
    data = source.graphql(queries.PULL_ONE, {"owner": owner, "name": name, "number": number},
                          expect=shapes.pull_one)
    repository = data.get("repository")
    if not isinstance(repository, dict):
        raise PermissionDenied(f"{repo}: repository not found or not visible to this token")
    node = repository.get("pullRequest")
    problem = shapes.pull_one({"repository": repository}) if node is not None else None
    if problem:  # beside an error GitHub's answer skips the shape check: a node must be whole
        raise BadAnswer(f"{repo}#{number}: {problem}")
    return node, bool(repository.get("isArchived"))


def complete_pull(source: GitHubSource, repo: str, node: dict[str, Any]) -> dict[str, Any]:
    """``node`` (a ``PullFields`` node) with every page of its commits, reviews and timeline.

    One ``PULL_MORE`` request per further page, asking only the connections that still have
    more; a PR within one page of each costs nothing here. After ``source.more_pages`` it is
    returned as far as it got (its ``pageInfo`` still says more): the parser marks the record
    incomplete. Raises what :meth:`GitHubSource.graphql` raises (BudgetExhausted: the page
    holding this PR is fetched again next cycle).
    """
    max_pages = source.more_pages
    pending = [name for name in queries.CONNECTIONS if _has_next(node.get(name))]
    if not pending:
        return node
    owner, name = split(repo)
    node = dict(node)
    for conn in pending:
        node[conn] = dict(node[conn], nodes=list(node[conn]["nodes"]))
    for _ in range(max_pages):
        if not pending:
            break
        variables: dict[str, Any] = {"owner": owner, "name": name, "number": node["number"]}
        for conn, (cursor, flag) in queries.CONNECTIONS.items():
            variables[flag] = conn in pending
            variables[cursor] = node[conn]["pageInfo"].get("endCursor") if conn in pending else None
        data = source.graphql(queries.PULL_MORE, variables, expect=shapes.pull_more(pending))
        more = data["repository"]["pullRequest"]
        for conn in pending:
            node[conn]["nodes"] += more[conn]["nodes"]
            node[conn]["pageInfo"] = more[conn]["pageInfo"]
            if "totalCount" in more[conn]:
                node[conn]["totalCount"] = more[conn]["totalCount"]
        pending = [c for c in pending if _has_next(node[c])]
    return node


def _has_next(connection: Any) -> bool:
    return bool(isinstance(connection, dict) and (connection.get("pageInfo") or {}).get("hasNextPage"))


def workflow_runs(
    source: GitHubSource, repo: str, *, since: datetime, etag: str | None = None
) -> tuple[Response, list[dict[str, Any]]]:
    """Every Actions run of ``repo`` created at or after ``since`` (latest attempt each).

    ``etag`` makes the first page conditional: ``(304 response, [])`` when no run changed.
    """
    stamp = since.strftime("%Y-%m-%dT%H:%M:%SZ")
    first = source.rest(f"/repos/{repo}/actions/runs",
                        params={"created": f">={stamp}", "per_page": 100}, etag=etag,
                        expect=shapes.runs_page)
    if first.status == 304:
        return first, []
    runs = list(first.data["workflow_runs"])
    nxt = first.next_url()
    while nxt:
        page = source.rest(nxt, expect=shapes.runs_page)
        runs += list(page.data["workflow_runs"])
        nxt = page.next_url()
    return first, runs


def run_jobs(source: GitHubSource, repo: str, run_id: int) -> list[dict[str, Any]]:
    """Jobs of every attempt of one run (a rerun's attempts queue from their jobs)."""
    jobs: list[dict[str, Any]] = []
    for page in source.rest_pages(
        f"/repos/{repo}/actions/runs/{run_id}/jobs",
        params={"filter": "all", "per_page": 100},
        key="jobs",
        expect=shapes.jobs_page,
    ):
        jobs += page
    return jobs


def org_repositories(
    source: GitHubSource, org: str, *, etag: str | None
) -> tuple[Response, list[dict[str, Any]]]:
    """The organisation's repositories; ``([], 304 response)`` when unchanged since ``etag``.

    Only the first page is conditional; when it changed, every page is read.
    """
    first = source.rest(f"/orgs/{org}/repos", params={"per_page": 100, "type": "all"}, etag=etag,
                        expect=shapes.repo_list)
    if first.status == 304:
        return first, []
    repos = list(first.data)
    nxt = first.next_url()
    while nxt:
        page = source.rest(nxt, expect=shapes.repo_list)
        repos += list(page.data)
        nxt = page.next_url()
    return first, repos
