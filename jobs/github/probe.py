"""What ``flowbot doctor`` needs to know about GitHub access, in a few cheap requests.

Who we are (``/user``, or the App installation), whether a classic token carries the scopes
Flowbot needs, whether each configured repository can be read (and which are archived), and
the rate-limit headroom. Nothing is fetched beyond one request per repository.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from jobs.errors import BudgetExhausted, GitHubError, PermissionDenied
from jobs.github.client import GitHubSource
from jobs.settings import Settings

# Classic tokens list their scopes in x-oauth-scopes; each need may be met by several scopes.
NEEDED_SCOPES: dict[str, tuple[str, ...]] = {
    "repo": ("repo", "public_repo"),
    "read:org": ("read:org", "write:org", "admin:org"),
}


Failure = Literal["refused", "unreachable", "rate_limited"]


@dataclass
class GitHubProbe:
    """The verdicts ``doctor`` renders. ``error`` explains a failed authentication and
    ``failure`` says which kind it was: GitHub ``refused`` the credentials (401, 403, 404),
    was ``unreachable`` (connection refused, timeouts, 5xx or an unexpected answer, after the
    client's retries: the credentials were not checked), or its rate limit was spent."""

    authenticated: bool = False
    app: bool = False  # a GitHub App installation rather than a token
    login: str | None = None
    error: str | None = None
    failure: Failure | None = None
    status: int | None = None  # GitHub's HTTP status when it refused the credentials
    missing_scopes: list[str] = field(default_factory=list)
    repo_problems: list[tuple[str, str, str]] = field(default_factory=list)  # repo, what, fix
    archived: list[str] = field(default_factory=list)
    rate_remaining: int = 0
    rate_limit: int = 0


def probe(settings: Settings, source: GitHubSource) -> GitHubProbe:
    """Check credentials, scopes, each repository and the rate limit. Never raises for a
    failed check: problems are recorded in the result."""
    result = GitHubProbe()
    app = settings.secrets.github_token is None
    try:
        who = source.rest("/rate_limit" if app else "/user")
    except PermissionDenied as err:
        result.error, result.failure, result.status = str(err), "refused", err.status
        return result
    except BudgetExhausted as err:
        result.error, result.failure = str(err), "rate_limited"
        return result
    except GitHubError as err:
        result.error, result.failure = str(err), "unreachable"
        return result
    result.authenticated = True
    result.app = app
    if not app and isinstance(who.data, dict):
        result.login = who.data.get("login")
        scopes = who.headers.get("x-oauth-scopes")
        if scopes is not None:  # fine-grained tokens send none: their permissions show per repo
            have = {s.strip() for s in scopes.split(",") if s.strip()}
            result.missing_scopes = [
                need for need, ok in NEEDED_SCOPES.items() if not have & set(ok)
            ]
    for repo in settings.repositories:
        try:
            answer = source.rest(f"/repos/{repo}")
        except PermissionDenied as err:
            result.repo_problems.append((repo, *_repo_refusal(err, app=app)))
            continue
        except GitHubError as err:
            result.repo_problems.append((repo, str(err), ("check the network and github.base_url,"
                                         " then run `flowbot doctor` again")))
            continue
        if isinstance(answer.data, dict) and answer.data.get("archived"):
            result.archived.append(repo)
    core = source.budget.limits.get("core")
    if core is not None:
        result.rate_remaining, result.rate_limit = core.remaining, core.limit
    return result


def _repo_refusal(err: PermissionDenied, *, app: bool) -> tuple[str, str]:
    """What is wrong with one repository GitHub refused, and the fix: a scope or permission
    the credentials lack, a repository that does not exist (or is hidden from them), or a
    refusal GitHub explains itself (SAML enforcement, IP allow list)."""
    who = "the App installation" if app else "the token"
    if err.missing:
        fix = (f"give the GitHub App the {err.missing.removeprefix('GitHub App ')}" if
               err.missing.startswith("GitHub App") else
               f"create a new token with {err.missing.removeprefix('token ')} and set GITHUB_TOKEN")
        return f"not readable: needs {err.missing}, which {who} lacks ({err})", fix
    if err.status == 404:
        grant = ("install the App on it" if app else
                 "give the token access to it (a fine-grained token lists its repositories)")
        return (f"not found, or {who} cannot see it ({err})",
                f"check its spelling (owner/name) in the team's repositories, or {grant}")
    return (f"not readable ({err})", (f"grant {who} read access to it, or remove it from the"
            " team's repositories"))
