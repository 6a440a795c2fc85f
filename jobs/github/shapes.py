"""Pure: is a GitHub answer shaped as what was asked? Each check returns ``None`` when it is,
else a short description of what is wrong ("expected a list, got dict").

A ``200`` is not a promise: proxies answer with HTML pages, connections cut bodies short, and
a service under strain can send a body of another endpoint. The client runs the check of each
request before anything reads the answer (:meth:`jobs.github.client.GitHubSource.rest`,
``expect=``); a failed check is retried like a ``5xx`` and, after the retries, fails that
repository for this cycle (:class:`jobs.errors.BadAnswer`). Only what the sampler reads is
checked, and only as far as it reads it: an answer with more fields than expected passes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

Check = Callable[[Any], "str | None"]


# --------------------------------------------------------------------------- building blocks


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _stamp(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value)  # Python 3.11 reads GitHub's trailing Z
    except ValueError:
        return False
    return True


def _fields(item: Any, where: str, spec: Mapping[str, str]) -> str | None:
    """``spec``: field -> ``int``, ``str``, ``bool``, ``time``, ``list``, ``dict`` (a
    trailing ``?`` allows null or absence)."""
    if not isinstance(item, dict):
        return f"{where}: expected an object, got {_kind(item)}"
    for name, want in spec.items():
        optional = want.endswith("?")
        want = want.rstrip("?")
        value = item.get(name)
        if value is None:
            if optional:
                continue
            return f"{where}: {name} missing"
        ok = {
            "int": isinstance(value, int) and not isinstance(value, bool),
            "str": isinstance(value, str),
            "bool": isinstance(value, bool),
            "time": _stamp(value),
            "list": isinstance(value, list),
            "dict": isinstance(value, dict),
        }[want]
        if not ok:
            return f"{where}: {name} is not a {want} ({_kind(value)})"
    return None


def _each(items: Sequence[Any], where: str, spec: Mapping[str, str]) -> str | None:
    for i, item in enumerate(items):
        problem = _fields(item, f"{where}[{i}]", spec)
        if problem:
            return problem
    return None


def _list_of(data: Any, where: str, spec: Mapping[str, str]) -> str | None:
    if not isinstance(data, list):
        return f"{where}: expected a list, got {_kind(data)}"
    return _each(data, where, spec)


def _wrapped(data: Any, key: str, spec: Mapping[str, str]) -> str | None:
    """An object holding ``total_count`` and a list under ``key`` (Actions listings)."""
    problem = _fields(data, "answer", {"total_count": "int", key: "list"})
    return problem or _each(data[key], key, spec)


# --------------------------------------------------------------------------- REST


# What the sampler reads, as required as GitHub's REST description makes it (a listed
# repository may leave out ``archived``; a run's ``status`` may be null).
_PULL = {"number": "int", "updated_at": "time"}
_REPO = {"full_name": "str", "archived": "bool"}
_LISTED_REPO = {"full_name": "str", "archived": "bool?"}
_RUN = {"id": "int", "head_sha": "str", "status": "str?", "created_at": "time",
        "run_attempt": "int?", "pull_requests": "list?"}
_JOB = {"id": "int", "run_attempt": "int?", "status": "str", "created_at": "time?"}


def pull_list(data: Any) -> str | None:
    """``GET /repos/{o}/{r}/pulls``: a list of PRs with numbers and update times."""
    return _list_of(data, "pulls", _PULL)


def repository(data: Any) -> str | None:
    """``GET /repos/{o}/{r}``: the repository, with ``archived``."""
    return _fields(data, "repository", _REPO)


def repo_list(data: Any) -> str | None:
    """``GET /orgs/{org}/repos``: a list of repositories with names and ``archived``."""
    return _list_of(data, "repos", _LISTED_REPO)


def runs_page(data: Any) -> str | None:
    """``GET /repos/{o}/{r}/actions/runs``: ``{total_count, workflow_runs: [...]}``."""
    return _wrapped(data, "workflow_runs", _RUN)


def jobs_page(data: Any) -> str | None:
    """``GET /repos/{o}/{r}/actions/runs/{id}/jobs``: ``{total_count, jobs: [...]}``."""
    return _wrapped(data, "jobs", _JOB)


# --------------------------------------------------------------------------- GraphQL

_PAGE_INFO = {"hasNextPage": "bool", "endCursor": "str?"}
_NODE = {"number": "int", "createdAt": "time", "updatedAt": "time"}
INNER = ("commits", "reviews", "timelineItems")


def _connection(conn: Any, where: str) -> str | None:
    problem = _fields(conn, where, {"nodes": "list", "pageInfo": "dict"})
    return problem or _fields(conn["pageInfo"], f"{where}.pageInfo", _PAGE_INFO)


def _inner(node: Any, where: str, names: Sequence[str]) -> str | None:
    for name in names:
        problem = _connection(node.get(name), f"{where}.{name}")
        if problem:
            return problem
    return None


def pull_page(data: Any) -> str | None:
    """The ``PullPage`` query's data: the repository (``isArchived``), its ``pullRequests``
    connection, and per PR its number, dates and the three paged connections."""
    problem = _fields(data, "data", {"repository": "dict"})
    if problem:  # (a repository that is not there comes with a NOT_FOUND error instead)
        return problem
    repo = data["repository"]
    problem = _fields(repo, "repository", {"isArchived": "bool", "pullRequests": "dict"})
    problem = problem or _connection(repo["pullRequests"], "pullRequests")
    if problem:
        return problem
    for i, node in enumerate(repo["pullRequests"]["nodes"]):
        if node is None:
            continue  # GitHub nulls a node it could not resolve, and says so in ``errors``
        where = f"pullRequests.nodes[{i}]"
        problem = _fields(node, where, _NODE) or _inner(node, where, INNER)
        if problem:
            return problem
    return None


def pull_more(names: Sequence[str]) -> Check:
    """The ``PullMore`` query's data: the PR and the connections asked (``names``)."""

    def check(data: Any) -> str | None:
        problem = _fields(data, "data", {"repository": "dict"})
        problem = problem or _fields(data["repository"], "repository", {"pullRequest": "dict"})
        return problem or _inner(data["repository"]["pullRequest"], "pullRequest", names)

    return check


def pull_one(data: Any) -> str | None:
    """The ``PullOne`` query's data: the repository (``isArchived``) and the PR, or ``null``
    for a number that is no PR (GitHub says NOT_FOUND beside it)."""
    problem = _fields(data, "data", {"repository": "dict"})
    if problem:
        return problem
    repo = data["repository"]
    problem = _fields(repo, "repository", {"isArchived": "bool", "pullRequest": "dict?"})
    if problem or repo.get("pullRequest") is None:
        return problem
    node = repo["pullRequest"]
    return _fields(node, "pullRequest", _NODE) or _inner(node, "pullRequest", INNER)
