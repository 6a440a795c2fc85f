"""The GitHub connection: PyGithub's requester, with our retries and budget around it.

Who retries what (decided once, here): PyGithub's own retrying is switched off
(``retry=None``: its ``GithubRetry`` sleeps with ``time.sleep`` and cannot be told about our
budget). :class:`GitHubSource` does all of it, through an injected ``sleep``:

- ``5xx``, ``408`` and timeouts / dropped connections: retried with exponential backoff
  (1, 2, 4, 8 s), then :class:`GitHubError` (the caller skips that repository);
- a ``2xx`` that is not what was asked (not JSON: truncated, an HTML page; or failing the
  request's shape check from :mod:`jobs.github.shapes`): retried the same way, then
  :class:`BadAnswer`; a bad answer is never read as data;
- secondary rate limits (``403``/``429`` with ``Retry-After`` or ``x-ratelimit-reset``): waited
  out and retried, never counted as a failure, as long as the wait stays within
  ``github.max_wait_seconds`` (per request, all waits together); a longer one raises
  :class:`Deferred` and, until the time GitHub named, every request raises it at once without
  being sent: the repository waits for the next cycle instead of stalling this one;
- a primary limit at zero: :class:`BudgetExhausted` (the cycle stops; it resumes next cycle);
- a ``401``/``403``/``404`` about access: :class:`PermissionDenied` naming what is missing.

Throttling: PyGithub's ``seconds_between_requests`` / ``_writes`` (0.25 s / 1 s by default,
every GraphQL POST counting as a write) are kept in production, as GitHub asks for serial,
spaced requests; against a server on loopback they are 0 so tests do not crawl.

PyGithub objects never leave ``jobs/github/``: callers get JSON payloads here and records
from :mod:`jobs.github.parse`.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import jwt
import requests
from github import Auth, Github, GithubException

from jobs.errors import (
    BadAnswer,
    BudgetExhausted,
    Deferred,
    GitHubError,
    PermissionDenied,
)
from jobs.github import queries
from jobs.github.budget import (
    Budget,
    SharedBudget,
    classify,
    identity,
    missing_access,
    refusal_reason,
    wait_seconds,
)
from jobs.github.shapes import Check
from jobs.ports import Clock, SystemClock
from jobs.settings import Settings, token_variable

if TYPE_CHECKING:
    from jobs.store import Store

log = logging.getLogger(__name__)

Sleep = Callable[[float], None]
BACKOFF = (1.0, 2.0, 4.0, 8.0)
MAX_RATE_WAITS = 5
MAX_WAIT_SECONDS = 60.0  # github.max_wait_seconds' default


class _NotJson(ValueError):
    """A body that does not decode as JSON."""


@dataclass(frozen=True, slots=True)
class _Failed:
    """A request that got no usable answer: retried with backoff (``bad``: a 2xx that was
    not what was asked, BadAnswer when the retries run out)."""

    what: str
    bad: bool = False


@dataclass(frozen=True, slots=True)
class Response:
    """One REST answer: status, lower-cased headers, decoded JSON (None for 304/empty)."""

    status: int
    headers: Mapping[str, str]
    data: Any

    @property
    def etag(self) -> str | None:
        return self.headers.get("etag")

    def next_url(self) -> str | None:
        """The ``rel="next"`` URL of the ``Link`` header, if any."""
        for part in (self.headers.get("link") or "").split(","):
            url, _, rel = part.partition(";")
            if 'rel="next"' in rel:
                return url.strip().strip("<>")
        return None


class GitHubSource:
    """Sends requests through PyGithub's requester; retries, waits and budgets them.

    ``requests`` counts HTTP requests sent (retries included); ``budget`` holds the rate-limit
    view. Build with :func:`connect`.
    """

    def __init__(
        self,
        github: Github,
        *,
        budget: Budget,
        sleep: Sleep = time.sleep,
        clock: Clock | None = None,
        base_url: str = "https://api.github.com",
        page_size: int = queries.PAGE_SIZE,
        max_wait: float = MAX_WAIT_SECONDS,
        more_pages: int = queries.MORE_PAGES,
    ) -> None:
        self._gh = github
        self.page_size = page_size  # PRs per GraphQL page (smaller if GitHub times out)
        self.more_pages = more_pages  # further pages per PR of its long connections, at most
        self._req = github.requester
        self.budget = budget
        self._sleep = sleep
        self._clock = clock or SystemClock()
        self.base_url = base_url
        self.retried = 0
        self.waited = 0.0
        self.max_wait = max_wait
        self.blocked_until: datetime | None = None  # GitHub asked to wait past max_wait
        # where an App's installation id comes from, for a refusal to name it
        self.installation_setting = "GITHUB_APP_INSTALLATION_ID"

    @property
    def requests(self) -> int:
        return self.budget.requests

    def close(self) -> None:
        self._gh.close()

    # ------------------------------------------------------------------ REST

    def rest(
        self, path: str, *, params: Mapping[str, Any] | None = None, etag: str | None = None,
        expect: Check | None = None,
    ) -> Response:
        """GET ``path`` (relative to the base URL, or an absolute ``next`` link).

        ``etag`` makes it conditional: an unchanged resource answers 304 (``data`` None),
        which costs no rate limit. ``expect`` checks the shape of a ``2xx`` answer (see
        :mod:`jobs.github.shapes`); a body that is not JSON never passes. Raises
        PermissionDenied, BudgetExhausted, Deferred, BadAnswer, GitHubError.
        """
        headers = {"If-None-Match": etag} if etag else {}
        return self._send("GET", path, params=dict(params or {}), headers=headers,
                          resource="core", expect=expect)

    def rest_pages(self, path: str, *, params: Mapping[str, Any] | None = None,
                   key: str | None = None, expect: Check | None = None) -> Iterator[list[Any]]:
        """Every page of a REST listing (following ``Link: rel=next``), as lists of items.

        ``key`` names the list inside an object answer (``workflow_runs``, ``jobs``); each
        page must pass ``expect`` (by default: a list, or an object with a list at ``key``).
        """
        check = expect or _listing(key)
        response = self.rest(path, params=params, expect=check)
        while True:
            data = response.data
            items = data[key] if key else data
            yield list(items)
            nxt = response.next_url()
            if not nxt:
                return
            response = self.rest(nxt, expect=check)

    # ------------------------------------------------------------------ GraphQL

    def graphql(self, query: str, variables: Mapping[str, Any], *,
                expect: Check | None = None) -> dict[str, Any]:
        """Run a GraphQL query; returns its ``data``. Partial answers with errors about a
        missing object come back with that field ``None``; other errors raise GitHubError.
        ``expect`` checks ``data`` (an answer with ``errors`` is read as errors instead); an
        answer that fails it, or is no GraphQL answer at all, is retried, then BadAnswer."""
        body = {"query": query, "variables": dict(variables)}
        response = self._send("POST", self._graphql_path(), input=body, resource="graphql",
                              expect=_graphql_answer(expect))
        payload = response.data
        data = payload.get("data")
        data = data if isinstance(data, dict) else {}
        errors = [e if isinstance(e, dict) else {} for e in payload.get("errors") or []]
        if errors:
            kinds = {str(e.get("type") or "") for e in errors}
            if "RATE_LIMITED" in kinds:
                raise BudgetExhausted("GitHub GraphQL rate limit spent; resuming next cycle")
            if kinds - {"NOT_FOUND"} or not data:
                first = errors[0].get("message") or "unknown error"
                if kinds & {"FORBIDDEN", "INSUFFICIENT_SCOPES"}:
                    raise PermissionDenied(f"GitHub GraphQL refused: {first}",
                                           missing=missing_access(response.headers))
                raise GitHubError(f"GitHub GraphQL error: {first}")
        return data

    def _graphql_path(self) -> str:
        url = self._req.graphql_url
        return url

    # ------------------------------------------------------------------ the one loop

    def _send(self, verb: str, path: str, *, params: dict[str, Any] | None = None,
              headers: dict[str, str] | None = None, input: Any = None,  # noqa: A002 - PyGithub's name
              resource: str, expect: Check | None = None) -> Response:
        failures = 0
        rate_waits = 0
        waited = 0.0
        while True:
            self._check_blocked(path)
            self.budget.check(resource)
            with self.budget.spending(resource):
                answer = self._exchange(verb, path, params=params, headers=headers, input=input,
                                        resource=resource)
            if isinstance(answer, _Failed):
                failures = self._backoff(failures, answer.what, bad=answer.bad)
                continue
            status, hdrs, data = answer
            verdict = classify(status, hdrs, data if isinstance(data, dict) else None)
            if verdict == "not_modified":
                return Response(status, hdrs, data)
            if verdict == "ok":
                problem = expect(data) if expect is not None else None
                if problem is None:
                    return Response(status, hdrs, data)
                failures = self._backoff(
                    failures, f"{verb} {_short(path)}: unexpected answer ({problem})", bad=True)
                continue
            message = (data or {}).get("message") if isinstance(data, dict) else None
            if verdict == "secondary":
                rate_waits += 1
                if rate_waits > MAX_RATE_WAITS:
                    raise GitHubError(f"GitHub kept rate-limiting {_short(path)}")
                pause = wait_seconds(hdrs, now=self._clock.now())
                if waited + pause > self.max_wait:
                    self.blocked_until = self._clock.now() + timedelta(seconds=pause)
                    raise Deferred(
                        f"GitHub asked to wait {pause:.0f} s ({_short(path)}), beyond"
                        f" github.max_wait_seconds ({self.max_wait:.0f} s);"
                        " deferred to the next cycle", seconds=pause)
                log.info("secondary rate limit on %s; waiting %.0f s", _short(path), pause)
                waited += pause
                self.waited += pause
                self._sleep(pause)
                continue
            if verdict == "primary":
                raise BudgetExhausted(
                    f"GitHub {hdrs.get('x-ratelimit-resource', resource)} rate limit spent;"
                    " resuming next cycle"
                )
            if verdict == "permission":
                missing = missing_access(hdrs, status=status)
                raise PermissionDenied(
                    f"GitHub refused {_short(path)} ({status} {message or 'forbidden'})"
                    f"{refusal_reason(status, missing)}",
                    missing=missing, status=status,
                )
            if verdict == "retry":
                failures = self._backoff(failures, f"{verb} {_short(path)}: {status}")
                continue
            raise GitHubError(f"GitHub answered {status} to {_short(path)}: {message or ''}".rstrip(": "))

    def _exchange(self, verb: str, path: str, *, params: dict[str, Any] | None,
                  headers: dict[str, str] | None, input: Any,  # noqa: A002 - PyGithub's name
                  resource: str) -> tuple[int, dict[str, str], Any] | _Failed:
        """Send one request and account for its answer: ``(status, headers, data)``, or what
        failed in a way worth retrying (no answer; a ``2xx`` that is not JSON)."""
        try:
            status, raw_headers, body = self._req.requestJson(
                verb, path, params or None, headers or None, input
            )
        except (requests.exceptions.RequestException, OSError) as err:
            self.budget.unanswered()
            return _Failed(f"{verb} {_short(path)}: {type(err).__name__}")
        except GithubException as err:  # only the App's installation-token exchange raises
            self.budget.requests += 1
            if err.status >= 500:
                return _Failed(f"App installation token: {err.status}")
            said = err.data.get("message") if isinstance(err.data, dict) else None
            raise PermissionDenied(
                f"GitHub refused the App an installation token ({err.status} "
                f"{said or 'error'}): check GITHUB_APP_ID, {self.installation_setting}"
                " and the private key"
            ) from None
        hdrs = {k.lower(): v for k, v in raw_headers.items()}
        self.budget.observe(hdrs, status=status)
        try:
            data = _json(body)
        except _NotJson as err:
            if 200 <= status < 300:
                if resource == "graphql":
                    self.budget.charge_unread_graphql()  # GitHub ran it; we cannot read it
                return _Failed(f"{verb} {_short(path)}: {err}", bad=True)
            data = {"message": body[:200]}  # an error page: its status says what happened
        if resource == "graphql" and 200 <= status < 300:
            rate = data.get("data") if isinstance(data, dict) else None
            rate = rate.get("rateLimit") if isinstance(rate, dict) else None
            if isinstance(rate, dict):
                self.budget.observe_graphql(rate)
            else:
                self.budget.charge_unread_graphql()
        return status, hdrs, data

    def _check_blocked(self, path: str) -> None:
        """Raise Deferred while GitHub's last long wait has not passed (no request is sent:
        GitHub asks clients not to retry before then)."""
        if self.blocked_until is None:
            return
        left = (self.blocked_until - self._clock.now()).total_seconds()
        if left <= 0:
            self.blocked_until = None
            return
        raise Deferred(
            f"GitHub asked to wait until {self.blocked_until:%H:%M:%S} UTC ({left:.0f} s more);"
            f" {_short(path)} deferred to the next cycle", seconds=left)

    def _backoff(self, failures: int, what: str, *, bad: bool = False) -> int:
        if failures >= len(BACKOFF):
            error = BadAnswer if bad else GitHubError
            raise error(f"GitHub kept failing ({what}) after {failures + 1} tries")
        pause = BACKOFF[failures]
        log.info("transient GitHub failure (%s); retrying in %.0f s", what, pause)
        self.retried += 1
        self.waited += pause
        self._sleep(pause)
        return failures + 1


def connect(
    settings: Settings,
    *,
    sleep: Sleep = time.sleep,
    clock: Clock | None = None,
    seconds_between_requests: float | None = None,
    seconds_between_writes: float | None = None,
    page_size: int = queries.PAGE_SIZE,
    more_pages: int = queries.MORE_PAGES,
    organisation: str | None = None,
    store: Store | None = None,
) -> GitHubSource:
    """A :class:`GitHubSource` for ``settings.github`` (token or GitHub App; Enterprise by
    ``base_url``) with the credentials of ``organisation`` (default: the main one; see
    :func:`credentials`). Throttling defaults to PyGithub's for remote hosts and none on
    loopback. With ``store`` the rate-limit budget is shared with every other worker using the
    same credentials (:class:`jobs.github.budget.SharedBudget`); without it, this process's own.

    Raises GitHubError when no credentials are set or the App private key cannot be used.
    """
    gh = settings.github
    org = organisation or gh.organisation
    auth, who, where = credentials(settings, org)
    loopback = urlsplit(gh.base_url).hostname in ("127.0.0.1", "localhost", "::1")
    between = seconds_between_requests if seconds_between_requests is not None else (
        0.0 if loopback else 0.25
    )
    writes = seconds_between_writes if seconds_between_writes is not None else (
        0.0 if loopback else 1.0
    )
    client = Github(
        auth=auth,
        base_url=gh.base_url,
        timeout=max(1, math.ceil(gh.timeout_seconds)),  # PyGithub insists on whole seconds
        retry=None,
        per_page=100,
        seconds_between_requests=between or None,
        seconds_between_writes=writes or None,
    )
    shared = (SharedBudget(store, identity(gh.base_url, who), share=gh.budget_share)
              if store is not None else None)
    source = GitHubSource(
        client,
        budget=Budget(share=gh.budget_share, shared=shared),
        sleep=sleep,
        clock=clock,
        base_url=gh.base_url,
        page_size=page_size,
        max_wait=gh.max_wait_seconds,
        more_pages=more_pages,
    )
    source.installation_setting = where
    return source


def credentials(settings: Settings, organisation: str) -> tuple[Auth.Token | Auth.AppInstallationAuth, str, str]:
    """The PyGithub auth reading ``organisation``, what identifies it for the shared budget (a
    token, or ``app:ID:installation:ID``: never logged, only hashed), and where its App
    installation id is set (for error messages).

    A token: ``GITHUB_TOKEN_<ORG>`` (:func:`jobs.settings.token_variable`), else
    ``GITHUB_TOKEN``. A GitHub App: its installation on the organisation,
    ``github.organisations.<org>.installation_id``, or ``GITHUB_APP_INSTALLATION_ID`` for the
    main organisation. Raises GitHubError when none is usable.
    """
    secrets = settings.secrets
    own = secrets.github_org_tokens.get(token_variable(organisation))
    token = own or secrets.github_token
    if token is not None:
        value = token.get_secret_value()
        return Auth.Token(value), value, "GITHUB_APP_INSTALLATION_ID"
    other = settings.github.organisations.get(organisation)
    installation = other.installation_id if other is not None else secrets.github_app_installation_id
    where = (f"github.organisations.{organisation}.installation_id" if other is not None
             else "GITHUB_APP_INSTALLATION_ID")
    if secrets.github_app_id and secrets.github_app_private_key is not None:
        if installation is None:
            raise GitHubError(f"GitHub App auth needs {where} as well")
        try:
            app = Auth.AppAuth(secrets.github_app_id, secrets.github_app_private_key.get_secret_value())
            app.create_jwt()  # PyGithub reads the key lazily: a bad one would fail mid-cycle
            auth = app.get_installation_auth(installation)
        except (ValueError, TypeError, jwt.PyJWTError) as err:
            raise GitHubError(f"GitHub App private key unusable: {type(err).__name__}") from None
        return auth, f"app:{secrets.github_app_id}:installation:{installation}", where
    raise GitHubError(
        "no GitHub credentials: set GITHUB_TOKEN, or GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY"
        " and GITHUB_APP_INSTALLATION_ID for a GitHub App"
    )


def _json(body: str) -> Any:
    """The decoded body (None when empty); raises _NotJson for anything else."""
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        start = body.lstrip()[:15].replace("\n", " ")
        raise _NotJson(f"not JSON ({len(body)} bytes starting {start!r})") from None


def _listing(key: str | None) -> Check:
    """The default check of a REST listing page: a list, or an object with a list at ``key``."""

    def check(data: Any) -> str | None:
        items = data.get(key) if key and isinstance(data, dict) else data
        if not isinstance(items, list):
            want = f"an object with a list at {key!r}" if key else "a list"
            return f"expected {want}, got {type(data).__name__}"
        return None

    return check


def _graphql_answer(expect: Check | None) -> Check:
    """A GraphQL answer: an object with ``data`` or ``errors``; ``data`` passes ``expect``
    unless ``errors`` explain what is missing (the caller reads them)."""

    def check(payload: Any) -> str | None:
        if not isinstance(payload, dict):
            return f"expected a GraphQL answer object, got {type(payload).__name__}"
        errors = payload.get("errors")
        data = payload.get("data")
        if errors:  # the caller reads them: a refusal, a failed query, a missing object
            return None if isinstance(errors, list) else "errors is not a list"
        if not isinstance(data, dict):
            return "no data in the answer"
        return expect(data) if expect is not None else None

    return check


def _short(path: str) -> str:
    parts = urlsplit(path)
    return parts.path or path
