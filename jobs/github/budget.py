"""Rate-limit accounting: what a cycle may spend, and what an answer says about waiting.

GitHub meters REST (``core``) and GraphQL (``graphql``) apart, each with its own hourly limit.
Every answer carries ``x-ratelimit-*`` headers (GraphQL answers also carry the query's
``rateLimit`` object); :class:`Budget` reads them all. On the first answer of a cycle from a
resource, the cycle's allowance for it becomes ``share x remaining`` (``github.budget_share``);
:meth:`Budget.check` raises :class:`BudgetExhausted` before a request once that allowance is
spent or the remaining budget is down to the safety margin, so the cycle stops cleanly and
the next one resumes where it stopped.

Shared across workers (:class:`SharedBudget`): every worker process using the same credential
(a token, or a GitHub App installation) draws on one account in Redis, keyed by a hash of the
credential's identity (never the credential) and the resource. Together they may spend
``share x limit`` in each rate-limit window GitHub names (``x-ratelimit-reset``): before each
request a worker reserves its points atomically (REST 1; GraphQL the query's last cost), and
after the answer settles what GitHub actually charged (a ``304`` or an unmetered failure is
refunded; a request that got no answer at all keeps its reservation, as GitHub may have run it). A refused reservation is :class:`BudgetExhausted` before anything is sent, so N
workers never exceed what one would. A window GitHub has reset starts a new allowance; the
account expires a minute after its window ends. When Redis cannot be reached the process falls
back to its own accounting (said once in the log).

Points are counted as GitHub charged them: a REST answer that carries ``x-ratelimit-*``
headers costs 1 (a ``304 Not Modified`` nothing), a GraphQL answer its ``rateLimit.cost``
(when the answer cannot be read, the rise of ``x-ratelimit-used`` since the previous one). An
attempt GitHub never metered (a timeout, a dropped connection, a ``5xx`` or an HTML page from
a proxy, without rate-limit headers) is a request but not a point.

:func:`classify` decides what a failed answer means. The split matters: a secondary rate
limit is waited out (``Retry-After``, else ``x-ratelimit-reset``, else a minute), a primary
one stops the cycle, and a ``403`` that is about access is a :class:`PermissionDenied` naming
what is missing (``x-accepted-github-permissions`` / ``x-accepted-oauth-scopes``), never
mistaken for a rate limit.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

from jobs.errors import BudgetExhausted, StoreUnavailable

if TYPE_CHECKING:
    from jobs.store import Store

log = logging.getLogger(__name__)

Verdict = Literal["ok", "not_modified", "secondary", "primary", "permission", "retry", "fail"]

DEFAULT_MARGIN = 50  # requests left untouched for people and other tools on the same token
SECONDARY_DEFAULT_WAIT = 60.0


@dataclass(frozen=True, slots=True)
class RateLimit:
    """One resource's limit as last reported."""

    resource: str
    limit: int
    remaining: int
    reset_at: datetime | None
    used: int | None = None


def identity(base_url: str, credential: str) -> str:
    """The name of a credential's shared account: a hash of where and what it is (a token,
    or ``app:ID:installation:ID``). The credential itself never reaches Redis or a log."""
    digest = hashlib.sha256(f"{base_url.rstrip('/')}\0{credential}".encode()).hexdigest()
    return digest[:24]


class SharedBudget:
    """One credential's account in Redis, shared by every worker (see the module docstring)."""

    def __init__(self, store: Store, identity: str, *, share: float,
                 wall: Callable[[], float] = time.time) -> None:
        self.store = store
        self.identity = identity
        self.share = share
        self._wall = wall  # GitHub's resets are wall-clock times
        self._offline = False  # Redis unreachable: said once, then local accounting only

    def take(self, resource: str, points: int) -> None:
        """Reserve ``points``; raises BudgetExhausted when all workers together have spent
        this window's share (nothing is reserved then)."""
        try:
            ok, account = self.store.take_budget(self.identity, resource, points,
                                                 now=self._wall())
        except StoreUnavailable as err:
            self._down(err)
            return
        self._offline = False
        if not ok:
            reset = datetime.fromtimestamp(account.reset, timezone.utc) if account.reset else None
            raise BudgetExhausted(
                f"the workers' share of the GitHub {resource} budget is spent"
                f" ({account.spent} of {account.allowance} this window, resets {_hhmm(reset)});"
                " resuming next cycle"
            )

    def settle(self, resource: str, correction: int, limit: RateLimit | None) -> None:
        """Settle the last reservation (``correction``: charged minus reserved) and date the
        account from ``limit`` (the window's reset and size as the answer told them)."""
        reset = int(limit.reset_at.timestamp()) if limit is not None and limit.reset_at else None
        allowance = (max(1, math.floor(limit.limit * self.share))
                     if limit is not None and limit.limit > 0 else None)
        try:
            self.store.settle_budget(self.identity, resource, correction=correction, reset=reset,
                                     allowance=allowance, limit=limit.limit if limit else None,
                                     now=self._wall())
        except StoreUnavailable as err:
            self._down(err)

    def _down(self, err: StoreUnavailable) -> None:
        if not self._offline:
            log.warning("shared GitHub budget unavailable (%s); this worker counts its own"
                        " spend until Redis answers", err)
        self._offline = True


@dataclass(slots=True)
class _Spend:
    allowance: int | None = None
    spent: int = 0


@dataclass
class Budget:
    """What this cycle may still spend, per resource; fed by every answer.

    ``requests`` counts every HTTP request sent (304s included); ``cost`` counts what the
    rate limit was charged (REST: 1 per counted request; GraphQL: the query's ``cost``).
    """

    share: float = 0.25
    margin: int = DEFAULT_MARGIN
    limits: dict[str, RateLimit] = field(default_factory=dict)
    requests: int = 0
    cost: int = 0
    not_modified: int = 0
    _spend: dict[str, _Spend] = field(default_factory=dict)
    shared: SharedBudget | None = None  # all workers' account in Redis (None: this process only)
    _metered: bool = False  # the last answer carried rate-limit headers
    _rise: int | None = None  # how much x-ratelimit-used rose with the last answer
    _graphql_points: int = 1  # the last GraphQL query's cost: what the next one reserves
    _unanswered: bool = False  # the request inside ``spending`` got no answer

    def start_cycle(self) -> None:
        """Forget the previous cycle's allowances and limits; the next answers set new ones
        (a limit seen spent last cycle may have been reset since)."""
        self._spend = {}
        self.limits = {}

    def check(self, resource: str = "core") -> None:
        """Raise BudgetExhausted when ``resource`` has no allowance left for this cycle."""
        seen = self.limits.get(resource)
        spend = self._spend.get(resource)
        if seen is not None and seen.remaining <= self.margin:
            raise BudgetExhausted(
                f"GitHub {resource} rate limit nearly spent ({seen.remaining} of {seen.limit}"
                f" left, resets {_hhmm(seen.reset_at)}); resuming next cycle"
            )
        if spend is not None and spend.allowance is not None and spend.spent >= spend.allowance:
            raise BudgetExhausted(
                f"this cycle's share of the GitHub {resource} budget is spent"
                f" ({spend.spent} of {spend.allowance}); resuming next cycle"
            )

    @contextmanager
    def spending(self, resource: str) -> Iterator[None]:
        """Around one request: reserve its points in the shared account (raising
        BudgetExhausted before it is sent when the workers' share is spent), then settle what
        the answers observed inside charged, whatever happens."""
        if self.shared is None:
            yield
            return
        points = self._graphql_points if resource == "graphql" else 1
        self.shared.take(resource, points)
        before = self.cost
        self._unanswered = False
        try:
            yield
        finally:
            # no answer (a timeout, a dropped connection): GitHub may have charged it, so the
            # reservation stands (this process's own count, ``cost``, leaves it out)
            charged = points if self._unanswered else self.cost - before
            self.shared.settle(resource, charged - points, self.limits.get(resource))

    def unanswered(self) -> None:
        """The request just sent got no answer: it counts as a request, and in the shared
        account it keeps its reservation (GitHub may have run it)."""
        self.requests += 1
        self._unanswered = True

    def observe(self, headers: Mapping[str, str], *, status: int) -> None:
        """Account for one answer from its headers (any status)."""
        self.requests += 1
        if status == 304:
            self.not_modified += 1
        limit = read_headers(headers)
        self._metered = limit is not None
        self._rise = None
        if limit is None:
            return  # not metered (no rate limiting, or an answer GitHub never counted)
        prior = self.limits.get(limit.resource)
        if prior is not None and prior.used is not None and limit.used is not None \
                and prior.reset_at == limit.reset_at:
            self._rise = max(0, limit.used - prior.used)
        if prior is not None and _later(limit.reset_at, prior.reset_at):
            self._spend.pop(limit.resource, None)  # GitHub reset the limit: a new allowance
        self.limits[limit.resource] = limit
        spend = self._spend.setdefault(limit.resource, _Spend())
        if spend.allowance is None:
            spend.allowance = max(1, math.floor(limit.remaining * self.share))
        if status != 304 and limit.resource != "graphql":
            self._charge(limit.resource, 1)

    def observe_graphql(self, rate: Mapping[str, Any] | None, *, fallback: int = 1) -> None:
        """Account for a GraphQL answer's ``rateLimit`` object (its ``cost`` is the charge)."""
        cost = int(rate.get("cost") or fallback) if rate else fallback
        self._graphql_points = max(1, cost)
        if rate and rate.get("remaining") is not None:
            self.limits["graphql"] = RateLimit(
                resource="graphql",
                limit=int(rate.get("limit") or 0),
                remaining=int(rate["remaining"]),
                reset_at=_iso(rate.get("resetAt")),
                used=int(rate["used"]) if rate.get("used") is not None else None,
            )
            spend = self._spend.setdefault("graphql", _Spend())
            if spend.allowance is None:
                spend.allowance = max(1, math.floor((int(rate["remaining"]) + cost) * self.share))
        self._charge("graphql", cost)

    def charge_unread_graphql(self) -> None:
        """Account for a GraphQL answer whose ``rateLimit`` could not be read: what its
        headers say GitHub charged (the rise of ``x-ratelimit-used``), else 1 when it was
        metered, else nothing."""
        if not self._metered:
            return
        self._charge("graphql", self._rise if self._rise is not None else 1)

    def left(self, resource: str = "core") -> int | None:
        """Remaining requests (or points) of ``resource`` as last reported."""
        seen = self.limits.get(resource)
        return seen.remaining if seen else None

    def _charge(self, resource: str, amount: int) -> None:
        self.cost += amount
        self._spend.setdefault(resource, _Spend()).spent += amount


def read_headers(headers: Mapping[str, str]) -> RateLimit | None:
    """The ``x-ratelimit-*`` headers as a RateLimit, or None when absent (Enterprise may omit)."""
    h = {k.lower(): v for k, v in headers.items()}
    if "x-ratelimit-remaining" not in h:
        return None
    reset = h.get("x-ratelimit-reset")
    return RateLimit(
        resource=h.get("x-ratelimit-resource", "core"),
        limit=_int(h.get("x-ratelimit-limit")),
        remaining=_int(h.get("x-ratelimit-remaining")),
        reset_at=datetime.fromtimestamp(int(reset), timezone.utc) if reset else None,
        used=_int(h.get("x-ratelimit-used")) if "x-ratelimit-used" in h else None,
    )


def classify(status: int, headers: Mapping[str, str], body: Mapping[str, Any] | None) -> Verdict:
    """What an answer means for the caller (see the module docstring)."""
    if status == 304:
        return "not_modified"
    if status < 400:
        return "ok"
    h = {k.lower(): v for k, v in headers.items()}
    message = str((body or {}).get("message") or "").lower()
    if status in (403, 429):
        if "secondary rate limit" in message or "retry-after" in h or "abuse" in message:
            return "secondary"
        if h.get("x-ratelimit-remaining") == "0" or message.startswith("api rate limit exceeded"):
            return "primary"
        if status == 429:
            return "secondary"
        return "permission"
    if status in (401, 404):
        return "permission"
    if status >= 500 or status == 408:
        return "retry"
    return "fail"


def wait_seconds(headers: Mapping[str, str], *, now: datetime) -> float:
    """How long to wait out a secondary rate limit: ``Retry-After``, else until
    ``x-ratelimit-reset``, else a minute (GitHub's documented advice)."""
    h = {k.lower(): v for k, v in headers.items()}
    if h.get("retry-after"):
        try:
            return max(0.0, float(h["retry-after"]))
        except ValueError:
            pass
    if h.get("x-ratelimit-reset") and h.get("x-ratelimit-remaining") == "0":
        return max(1.0, int(h["x-ratelimit-reset"]) - now.timestamp())
    return SECONDARY_DEFAULT_WAIT


# A classic token's scope grants the scopes under it (GitHub's scope hierarchy).
_IMPLIED_SCOPES: dict[str, tuple[str, ...]] = {
    "repo": ("public_repo", "repo:status", "repo_deployment", "repo:invite", "security_events"),
    "admin:org": ("write:org", "read:org"),
    "write:org": ("read:org",),
    "user": ("read:user", "user:email", "user:follow"),
}


def missing_access(headers: Mapping[str, str], *, status: int = 403) -> str | None:
    """What a refused request needed that the credentials lack, or None when a missing scope
    or permission is not what the refusal was about, or cannot be told.

    GitHub sends ``x-accepted-oauth-scopes`` on most answers, a ``401`` or a ``404`` included:
    it names what the endpoint accepts, not what is missing. A scope is missing only when the
    token's own ``x-oauth-scopes`` (classic tokens) grant none of the accepted ones. A ``401``
    is about the credentials themselves (wrong, expired, revoked): no scope would help. An
    App's or fine-grained token's ``x-accepted-github-permissions`` on a ``403`` names the
    permission; on a ``404`` the repository may as well not exist, so nothing is claimed.
    """
    if status == 401:
        return None
    h = {k.lower(): v for k, v in headers.items()}
    perms = (h.get("x-accepted-github-permissions") or "").strip()
    if perms and status == 403:
        return f"GitHub App permission {perms}"
    accepted = {s.strip() for s in (h.get("x-accepted-oauth-scopes") or "").split(",") if s.strip()}
    granted = h.get("x-oauth-scopes")
    if accepted and granted is not None:
        have = {s.strip() for s in granted.split(",") if s.strip()}
        have |= {implied for scope in have for implied in _IMPLIED_SCOPES.get(scope, ())}
        if not accepted & have:
            return f"token scope {', '.join(sorted(accepted))}"
    return None


def refusal_reason(status: int, missing: str | None) -> str:
    """The clause a refused request's message ends with: what is actually wrong."""
    if missing:
        return f"; needs {missing}"
    if status == 401:
        return "; the credentials are wrong, expired or revoked"
    if status == 404:
        return "; not found, or not visible to these credentials"
    return ""


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def _iso(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _later(new: datetime | None, old: datetime | None) -> bool:
    return new is not None and old is not None and new > old


def _hhmm(at: datetime | None) -> str:
    return at.strftime("%H:%M UTC") if at else "soon"
