"""Rate-limit accounting and what a refused answer means (no network: headers in, verdict out)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from jobs.errors import BudgetExhausted
from jobs.github.budget import (
    Budget,
    SharedBudget,
    classify,
    identity,
    missing_access,
    read_headers,
    wait_seconds,
)
from jobs.store import Store
from tests.processes import free_port

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def limits(remaining: int, *, limit: int = 5000, resource: str = "core") -> dict[str, str]:
    return {"x-ratelimit-limit": str(limit), "x-ratelimit-remaining": str(remaining),
            "x-ratelimit-reset": str(int(NOW.timestamp()) + 1800),
            "x-ratelimit-used": str(limit - remaining), "x-ratelimit-resource": resource}


def test_cycle_stops_when_its_share_is_spent() -> None:
    """With 4,000 left and a 25% share, the cycle may spend 1,000 requests, then stops."""
    budget = Budget(share=0.25)
    budget.observe(limits(4000), status=200)
    for left in range(3999, 3000, -1):
        budget.check()
        budget.observe(limits(left), status=200)
    with pytest.raises(BudgetExhausted, match="share"):
        budget.check()
    budget.start_cycle()
    budget.check()  # a new cycle has a new share


def test_not_modified_answers_cost_nothing() -> None:
    """304s are counted as requests but never charged against the share."""
    budget = Budget(share=0.001)
    budget.observe(limits(4000), status=200)
    for _ in range(50):
        budget.observe(limits(3999), status=304)
    assert (budget.requests, budget.cost, budget.not_modified) == (51, 1, 50)


def test_margin_is_kept_for_others() -> None:
    """Near the bottom of the hourly limit the cycle stops whatever its share."""
    budget = Budget(share=1.0, margin=50)
    budget.observe(limits(50), status=200)
    with pytest.raises(BudgetExhausted, match="nearly spent"):
        budget.check()


def test_graphql_is_charged_its_query_cost() -> None:
    """GraphQL is metered apart, by each query's cost."""
    budget = Budget(share=0.5)
    budget.observe(limits(4990, resource="graphql"), status=200)
    budget.observe_graphql({"cost": 3, "remaining": 4987, "limit": 5000,
                            "resetAt": "2026-03-02T10:00:00Z", "used": 13})
    assert budget.cost == 3 and budget.left("graphql") == 4987 and budget.left("core") is None


@pytest.mark.parametrize(
    ("status", "headers", "message", "verdict"),
    [
        (403, {"retry-after": "30"}, "You have exceeded a secondary rate limit.", "secondary"),
        (429, {"retry-after": "5"}, "", "secondary"),
        (403, {"x-ratelimit-remaining": "0"}, "API rate limit exceeded for user.", "primary"),
        (403, {"x-accepted-github-permissions": "actions=read"},
         "Resource not accessible by integration", "permission"),
        (404, {}, "Not Found", "permission"),
        (502, {}, "Server Error", "retry"),
        (304, {}, "", "not_modified"),
        (422, {}, "Validation Failed", "fail"),
    ],
)
def test_classify(status: int, headers: dict[str, str], message: str, verdict: str) -> None:
    """Secondary limits, primary limits and permission refusals are told apart."""
    assert classify(status, headers, {"message": message}) == verdict


def test_waits_follow_retry_after_then_reset() -> None:
    """Retry-After wins; otherwise wait until the reset; otherwise a minute."""
    assert wait_seconds({"retry-after": "7"}, now=NOW) == 7
    reset = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW.timestamp()) + 90)}
    assert wait_seconds(reset, now=NOW) == 90
    assert wait_seconds({}, now=NOW) == 60


def test_missing_access_names_the_permission_or_scope() -> None:
    """A permission refusal says what to grant, and only when the credentials lack it."""
    assert missing_access({"x-accepted-github-permissions": "actions=read"}) == (
        "GitHub App permission actions=read"
    )
    lacking = {"X-Accepted-OAuth-Scopes": "repo", "X-OAuth-Scopes": "read:org"}
    assert missing_access(lacking) == "token scope repo"
    assert missing_access({"X-Accepted-OAuth-Scopes": "repo", "X-OAuth-Scopes": "repo, read:org"}) is None
    assert missing_access({"X-Accepted-OAuth-Scopes": "read:org", "X-OAuth-Scopes": "admin:org"}) is None
    assert missing_access(lacking, status=401) is None  # bad credentials: no scope would help
    assert missing_access({"X-Accepted-OAuth-Scopes": "repo"}) is None  # scopes unknown: no claim
    assert missing_access({}) is None


def test_headers_without_rate_limits_are_tolerated() -> None:
    """Enterprise servers with rate limiting off send no x-ratelimit headers: nothing is
    charged, and nothing stops the cycle."""
    assert read_headers({}) is None
    budget = Budget()
    budget.observe({}, status=200)
    budget.check()
    assert (budget.requests, budget.cost) == (1, 0)


def test_points_are_counted_as_github_charged_them() -> None:
    """A metered REST answer costs 1, a 304 and an unmetered failure (a 502 or an HTML page
    from a proxy) nothing; an unreadable GraphQL answer costs what x-ratelimit-used rose by."""
    budget = Budget(share=1.0)
    budget.observe(limits(4000), status=200)
    budget.observe(limits(4000), status=304)
    budget.observe({}, status=502)
    budget.observe({}, status=200)
    assert (budget.requests, budget.cost) == (4, 1)
    gql = limits(4990, resource="graphql")
    budget.observe(gql, status=200)
    budget.observe_graphql({"cost": 1, "remaining": 4990, "limit": 5000,
                            "resetAt": "2026-03-02T09:30:00Z", "used": 10})
    budget.observe({**gql, "x-ratelimit-remaining": "4986", "x-ratelimit-used": "14"},
                   status=200)
    budget.charge_unread_graphql()  # a truncated answer GitHub charged 4 points for
    budget.observe({}, status=200)
    budget.charge_unread_graphql()  # an HTML page GitHub never saw
    assert budget.cost == 1 + 1 + 4


# ------------------------------------------------------------------ shared across workers


class Wall:
    """The wall clock the shared account reads GitHub's resets against."""

    def __init__(self) -> None:
        self.now = NOW.timestamp()

    def __call__(self) -> float:
        return self.now


def worker(store: Store, *, share: float = 0.25, who: str = "token-a",
           wall: Wall | None = None) -> Budget:
    """One worker process's budget, drawing on the shared account of credential ``who``."""
    shared = SharedBudget(store, identity("https://api.github.com", who), share=share,
                          wall=wall or Wall())
    return Budget(share=share, shared=shared)


def answer(budget: Budget, remaining: int, *, status: int = 200, reset: int = 1800) -> None:
    """One REST request through ``budget``: reserved, answered, settled."""
    with budget.spending("core"):
        headers = limits(remaining)
        headers["x-ratelimit-reset"] = str(int(NOW.timestamp()) + reset)
        budget.observe(headers, status=status)


def test_workers_together_stay_within_the_share_of_the_limit(store: Store) -> None:
    """Four workers on one token, taking turns: together they spend 25% of the 5,000 limit,
    1,250 requests, and every further request is refused before it is sent."""
    workers = [worker(store) for _ in range(4)]
    sent, remaining = 0, 5000
    refused: set[int] = set()
    for _ in range(2000):
        if len(refused) == 4:
            break
        for i, budget in enumerate(workers):
            try:
                answer(budget, remaining - 1)
            except BudgetExhausted as err:
                assert "workers' share" in str(err) and "1250 of 1250" in str(err)
                refused.add(i)
                continue
            sent += 1
            remaining -= 1
    assert sent == 1250


def test_a_refused_request_is_not_sent(store: Store) -> None:
    """A worker whose reservation is refused never reaches GitHub: nothing is observed."""
    first, second = worker(store, share=0.001), worker(store, share=0.001)
    for _ in range(5):
        answer(first, 4000)
    with pytest.raises(BudgetExhausted), second.spending("core"):
        pytest.fail("the request was sent")  # pragma: no cover - the reservation raises first
    assert second.requests == 0


def test_not_modified_and_unmetered_answers_are_refunded(store: Store) -> None:
    """304s and answers GitHub never metered cost the shared account nothing; a GraphQL query
    costs what GitHub charged for it."""
    budget = worker(store)
    answer(budget, 4000)
    for _ in range(3):
        answer(budget, 4000, status=304)
    with budget.spending("core"):
        budget.observe({}, status=502)
    with budget.spending("graphql"):
        budget.observe(limits(4990, resource="graphql"), status=200)
        budget.observe_graphql({"cost": 3, "remaining": 4987, "limit": 5000,
                                "resetAt": "2026-03-02T09:30:00Z", "used": 13})
    ident = identity("https://api.github.com", "token-a")
    core, gql = store.budget_account(ident, "core"), store.budget_account(ident, "graphql")
    assert core is not None and (core.spent, core.allowance) == (1, 1250)
    assert gql is not None and gql.spent == 3


def test_a_request_without_an_answer_keeps_its_reservation(store: Store) -> None:
    """A request that timed out may have been run (and charged) by GitHub: the shared account
    keeps it, while this process's own count of points leaves it out."""
    budget = worker(store)
    answer(budget, 4000)
    with budget.spending("core"):
        budget.unanswered()
    account = store.budget_account(identity("https://api.github.com", "token-a"), "core")
    assert account is not None and account.spent == 2
    assert (budget.requests, budget.cost) == (2, 1)


def test_a_new_window_brings_a_new_allowance(store: Store) -> None:
    """Once the time GitHub named for the reset has passed, the workers' share starts over."""
    wall = Wall()
    budget, other = worker(store, share=0.001, wall=wall), worker(store, share=0.001, wall=wall)
    for _ in range(5):
        answer(budget, 4000)
    with pytest.raises(BudgetExhausted):
        answer(other, 4000)
    wall.now += 1801
    for _ in range(5):
        answer(other, 4999, reset=5400)  # the next window's answers
    with pytest.raises(BudgetExhausted):
        answer(budget, 4994, reset=5400)


def test_credentials_have_accounts_of_their_own(store: Store) -> None:
    """Another token (another organisation's) has its own budget; the token itself is never
    part of what is stored."""
    spent = worker(store, share=0.001, who="ghp_organisation_one")
    for _ in range(5):
        answer(spent, 4000)
    answer(worker(store, share=0.001, who="ghp_organisation_two"), 4000)
    keys = [k.decode() for k in store._r.scan_iter(store.key("*"))]
    assert not [k for k in keys if "ghp_" in k]


def test_redis_down_leaves_each_worker_its_own_accounting(tmp_path: Path) -> None:
    """Without Redis the shared account cannot be reached: requests still go, each worker
    keeps to its own per-cycle share, and nothing raises but the budget's own stop."""
    dead = Store.connect(f"redis://127.0.0.1:{free_port()}/0", check_schema=False, timeout=0.2)
    budget = worker(dead, share=0.001)
    answer(budget, 4000)
    answer(budget, 3999)
    assert budget.requests == 2
