"""The requests the sampler makes, one function each: pagination and conditional requests.

Each returns GitHub's payloads (plain JSON); :mod:`jobs.github.parse` makes records of them.
Which request does what, and what it costs:

- :func:`poll_pulls`: ``GET /repos/{o}/{r}/pulls?state=all&sort=updated&direction=desc
  &per_page=1`` with ``If-None-Match``: a ``304`` (free) means no PR changed at all.
- :func:`pull_pages`: GraphQL, 100 PRs per request (fewer when GitHub keeps failing a page), newest update first, with everything the
  metrics read except CI (reviews, timeline, commits with trailers).
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

from jobs.errors import BudgetExhausted, GitHubError, PermissionDenied
from jobs.github import queries
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
    return dict(source.rest(f"/repos/{repo}").data or {})


def poll_pulls(source: GitHubSource, repo: str, *, etag: str | None) -> Response:
    """The newest-updated PR of ``repo``, conditionally: 304 when nothing changed."""
    return source.rest(
        f"/repos/{repo}/pulls",
        params={"state": "all", "sort": "updated", "direction": "desc", "per_page": 1},
        etag=etag,
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
            data = source.graphql(queries.PULL_PAGE, variables)
        except GitHubError as err:
            if size <= MIN_PAGE or isinstance(err, (PermissionDenied, BudgetExhausted)):
                raise
            size = max(MIN_PAGE, size // 2)  # heavy pages time out on GitHub's side: ask less
            continue
        repository = data.get("repository")
        if repository is None:
            raise PermissionDenied(f"{repo}: repository not found or not visible to this token")
        conn = repository.get("pullRequests") or {}
        info = conn.get("pageInfo") or {}
        page = PullPage(
            nodes=[n for n in conn.get("nodes") or [] if n],
            end_cursor=info.get("endCursor"),
            has_next=bool(info.get("hasNextPage")),
            archived=bool(repository.get("isArchived")),
        )
        yield page
        if not page.has_next or page.archived:
            return
        if first is not None and size == first:
            size = source.page_size
        cursor = page.end_cursor


def workflow_runs(
    source: GitHubSource, repo: str, *, since: datetime, etag: str | None = None
) -> tuple[Response, list[dict[str, Any]]]:
    """Every Actions run of ``repo`` created at or after ``since`` (latest attempt each).

    ``etag`` makes the first page conditional: ``(304 response, [])`` when no run changed.
    """
    stamp = since.strftime("%Y-%m-%dT%H:%M:%SZ")
    first = source.rest(f"/repos/{repo}/actions/runs",
                        params={"created": f">={stamp}", "per_page": 100}, etag=etag)
    if first.status == 304:
        return first, []
    runs = list((first.data or {}).get("workflow_runs") or [])
    nxt = first.next_url()
    while nxt:
        page = source.rest(nxt)
        runs += list((page.data or {}).get("workflow_runs") or [])
        nxt = page.next_url()
    return first, runs


def run_jobs(source: GitHubSource, repo: str, run_id: int) -> list[dict[str, Any]]:
    """Jobs of every attempt of one run (a rerun's attempts queue from their jobs)."""
    jobs: list[dict[str, Any]] = []
    for page in source.rest_pages(
        f"/repos/{repo}/actions/runs/{run_id}/jobs",
        params={"filter": "all", "per_page": 100},
        key="jobs",
    ):
        jobs += page
    return jobs


def org_repositories(
    source: GitHubSource, org: str, *, etag: str | None
) -> tuple[Response, list[dict[str, Any]]]:
    """The organisation's repositories; ``([], 304 response)`` when unchanged since ``etag``.

    Only the first page is conditional; when it changed, every page is read.
    """
    first = source.rest(f"/orgs/{org}/repos", params={"per_page": 100, "type": "all"}, etag=etag)
    if first.status == 304:
        return first, []
    repos = list(first.data or [])
    nxt = first.next_url()
    while nxt:
        page = source.rest(nxt)
        repos += list(page.data or [])
        nxt = page.next_url()
    return first, repos
