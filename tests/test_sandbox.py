"""The sandbox GitHub: a deterministic simulated org served over real HTTP on loopback.

PyGithub and plain HTTP clients talk to it as they would to GitHub; payloads are checked
against GitHub's published REST schemas and GraphQL documents against its schema.
"""

from __future__ import annotations

import json
import statistics
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from github import Auth, Github, GithubException

from bot.config import from_mapping
from jobs.ports import FixedClock
from jobs.sandbox import Org, SandboxServer, build_org
from jobs.sandbox import graphql as gql
from jobs.sandbox.view import view_pr
from tests.spec.validate import errors, validate_response

END = datetime(2026, 11, 20, 17, 0, tzinfo=UTC)  # a Friday
MID = END - timedelta(days=12, hours=3)  # a Sunday afternoon two weeks before the end


@pytest.fixture(scope="module")
def org() -> Org:
    return build_org(seed=7, end=END)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(END)


@pytest.fixture
def server(org: Org, clock: FixedClock) -> Iterator[SandboxServer]:
    with SandboxServer(org, clock=clock) as srv:
        yield srv


def github(srv: SandboxServer, per_page: int = 30, base: str | None = None, **kw: Any) -> Github:
    return Github(base_url=base or srv.base_url, auth=Auth.Token("sandbox-token"),
                  per_page=per_page, seconds_between_requests=0, seconds_between_writes=0, **kw)


def call(srv: SandboxServer, path: str, *, method: str = "GET", token: str | None = "sandbox-token",
         headers: dict[str, str] | None = None, data: Any = None) -> tuple[int, dict[str, str], Any]:
    """One raw HTTP request; returns status, headers (lower-case names) and parsed body."""
    hdrs = dict(headers or {})
    if token:
        hdrs["Authorization"] = f"token {token}" if "." not in token else f"Bearer {token}"
    body = json.dumps(data).encode() if data is not None else None
    req = urllib.request.Request(srv.base_url + path, method=method, headers=hdrs, data=body)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            raw, status, h = resp.read(), resp.status, resp.headers
    except urllib.error.HTTPError as err:
        raw, status, h = err.read(), err.code, err.headers
    return status, {k.lower(): v for k, v in h.items()}, json.loads(raw) if raw else None


def _key(pr: Any) -> tuple[Any, ...]:
    return (pr.repo, pr.number, pr.created_at, pr.author.login, pr.title,
            tuple((e.event, e.at) for e in pr.events), tuple(c.sha for c in pr.commits),
            tuple((r.state, r.submitted_at) for r in pr.reviews),
            tuple((a.started_at, a.conclusion) for run in pr.runs for a in run.attempts))


# ------------------------------------------------------------------------------ the org


def test_same_seed_builds_the_same_org() -> None:
    """Demo runs and tests see the same organisation every time for a seed, another for another."""
    a, b, c = build_org(seed=3, end=END), build_org(seed=3, end=END), build_org(seed=4, end=END)
    flat = [lambda o: [_key(p) for prs in o.prs.values() for p in prs]]
    assert flat[0](a) == flat[0](b)
    assert flat[0](a) != flat[0](c)


def test_org_has_the_variety_the_metrics_must_handle(org: Org) -> None:
    """Drafts, team requests, re-requests, force pushes, bots, AI, deleted accounts and reruns all occur."""
    prs = [p for prs in org.prs.values() for p in prs]
    events = Counter(e.event for p in prs for e in p.events)
    for kind in ("ready_for_review", "convert_to_draft", "review_requested",
                 "review_request_removed", "head_ref_force_pushed", "merged", "closed"):
        assert events[kind] > 0, kind
    assert any(e.team for p in prs for e in p.events)
    assert any(Counter((e.reviewer.login if e.reviewer else e.team) for e in p.events
                       if e.event == "review_requested").most_common(1)[0][1] > 1 for p in prs
               if any(e.event == "review_requested" for e in p.events))
    authors = {p.author.login for p in prs}
    assert {"dependabot[bot]", "renovate[bot]", "copilot-swe-agent[bot]", "ghost"} <= authors
    assert any(r.author is None for p in prs for r in p.reviews)  # deleted reviewer
    assert any(r.author and r.author.login == "coderabbitai[bot]" for p in prs for r in p.reviews)
    assert any("ai-assisted" in p.labels for p in prs)
    assert any("Co-authored-by: Claude" in c.message for p in prs for c in p.commits)
    assert any(len(run.attempts) > 1 for p in prs for run in p.runs)
    assert any(r.archived for r in org.repos.values())
    assert org.bottleneck == "pickup" and org.flaky_workflow == "E2E"


def test_config_mapping_is_valid_flowbot_config(org: Org) -> None:
    """The org's config loads with bot.config: teams, Slack IDs, channels, leads, time zones."""
    settings = from_mapping(org.config("http://127.0.0.1:1"), env={})
    assert settings.github.organisation == "acme"
    assert set(settings.teams) == {"payments", "platform", "mobile"}
    assert len({t.timezone for t in settings.teams.values()}) == 3
    payments = settings.teams["payments"]
    assert payments.channel == "C0PAYMENTS" and payments.leads
    assert payments.github_teams == ("payments-reviewers",)
    assert all(m.slack for m in payments.members)


def test_bottleneck_is_visible_in_the_raw_history(org: Org) -> None:
    """Arrivals rise, one reviewer per team holds most requests, and the review queue grows."""
    weeks: Counter[int] = Counter()
    for prs in org.prs.values():
        for pr in prs:
            weeks[(pr.created_at - org.start).days // 7] += 1
    assert weeks[6] + weeks[7] > 1.4 * (weeks[0] + weeks[1])
    for team in org.teams:
        asked = Counter(e.reviewer.login for r in team.repos for p in org.prs[r]
                        for e in p.events if e.event == "review_requested" and e.reviewer)
        (top, most), (_, second) = asked.most_common(2)
        assert top == team.hot_reviewer and most > 2 * second
    pickups: dict[bool, list[float]] = {True: [], False: []}
    for prs in org.prs.values():
        for pr in prs:
            merged = next((e.at for e in pr.events if e.event == "merged"), None)
            human = [r for r in pr.reviews if r.author is None or r.author.kind == "human"]
            if merged is None or not human or pr.author.kind == "bot":
                continue
            ready = next((e.at for e in pr.events if e.event == "ready_for_review"), pr.created_at)
            late = merged > org.end - timedelta(weeks=3)
            if late or merged < org.start + timedelta(weeks=3):
                pickups[late].append((human[0].submitted_at - ready).total_seconds() / 3600)
    assert statistics.median(pickups[True]) > 3 * statistics.median(pickups[False])


def test_scale_knobs_make_big_orgs_quickly() -> None:
    """A benchmark can ask for about 1,000 PRs in a repo set, or an org of 500 repositories."""
    big = build_org(end=END, scale=2.5)
    assert sum(len(v) for v in big.prs.values()) > 900
    wide = build_org(end=END, extra_repos=490)
    assert len(wide.repos) == 500


# ------------------------------------------------------------------------------ PyGithub


def test_pygithub_lists_prs_across_pages(server: SandboxServer, org: Org) -> None:
    """Listing every PR of a repo follows Link headers page by page and sees them all."""
    repo = github(server, per_page=10).get_repo("acme/payments-api")
    numbers = [p.number for p in repo.get_pulls(state="all", sort="created", direction="asc")]
    assert numbers == list(range(1, len(org.prs["payments-api"]) + 1))
    assert server.stats.count(path="/repos/acme/payments-api/pulls") >= len(numbers) // 10
    open_now = [p.number for p in repo.get_pulls(state="open")]
    assert open_now and len(open_now) < len(numbers)


def test_pygithub_reads_reviews_timeline_and_checks(server: SandboxServer, org: Org) -> None:
    """Reviews, timeline events (lower-case review states) and check runs come back as on GitHub."""
    pr_rec = next(p for p in org.prs["payments-api"]
                  if any(r.state == "CHANGES_REQUESTED" for r in p.reviews)
                  and any(e.event == "merged" for e in p.events))
    gh = github(server, per_page=50)
    repo = gh.get_repo("acme/payments-api")
    pr = repo.get_pull(pr_rec.number)
    assert pr.merged and pr.additions == pr_rec.additions
    states = [r.state for r in pr.get_reviews()]
    assert "CHANGES_REQUESTED" in states and "APPROVED" in states
    timeline = list(pr.as_issue().get_timeline())
    kinds = [t.event for t in timeline]
    assert {"committed", "review_requested", "reviewed", "merged", "closed"} <= set(kinds)
    reviewed = [t.raw_data["state"] for t in timeline if t.event == "reviewed"]
    assert "changes_requested" in reviewed
    requested = next(t.raw_data for t in timeline if t.event == "review_requested")
    assert "requested_reviewer" in requested or "requested_team" in requested
    checks = list(repo.get_commit(pr.head.sha).get_check_runs())
    assert {c.name for c in checks} >= {"lint", "test", "e2e"}
    assert all(c.status == "completed" for c in checks)
    runs = list(repo.get_workflow_runs(head_sha=pr.head.sha))
    assert {r.name for r in runs} == {"CI", "E2E"}


def test_etag_repeat_gets_304_and_costs_nothing(server: SandboxServer) -> None:
    """A conditional repeat answers 304 Not Modified and leaves x-ratelimit-remaining alone."""
    path = "/repos/acme/payments-api/pulls?state=all&per_page=5"
    status, headers, _ = call(server, path)
    assert status == 200 and headers["etag"]
    assert 'rel="next"' in headers["link"] and 'rel="last"' in headers["link"]
    status2, headers2, body2 = call(server, path, headers={"If-None-Match": headers["etag"]})
    assert status2 == 304 and body2 is None
    assert headers2["x-ratelimit-remaining"] == headers["x-ratelimit-remaining"]
    assert server.stats.requests[-1].cost == 0
    _status3, headers3, _ = call(server, path)
    assert int(headers3["x-ratelimit-remaining"]) == int(headers["x-ratelimit-remaining"]) - 1
    assert headers3["x-ratelimit-resource"] == "core" and headers3["x-ratelimit-limit"] == "5000"
    assert "repo" in headers3["x-oauth-scopes"]


# ------------------------------------------------------------------------------ schemas


def test_every_endpoint_validates_against_github_schemas(org: Org) -> None:
    """Each served endpoint's payloads (PRs in every state, runs in progress) match GitHub's REST schemas."""
    with SandboxServer(org, clock=FixedClock(MID + timedelta(days=1, hours=18))) as srv:
        checked: Counter[str] = Counter()

        def check(path: str, template: str, *, method: str = "GET", token: str = "sandbox-token",
                  status: int = 200) -> Any:
            got, _, body = call(srv, path, method=method, token=token)
            assert got == status, (path, got, body)
            validate_response(method, template, status, body)
            checked[template] += 1
            return body

        check("/user", "/user")
        check("/rate_limit", "/rate_limit")
        check("/orgs/acme/repos?per_page=100", "/orgs/{org}/repos")
        check("/orgs/acme/teams/payments-reviewers/members", "/orgs/{org}/teams/{team_slug}/members")
        jwt = "header.payload.signature"
        check("/app/installations", "/app/installations", token=jwt)
        check("/app/installations/4242", "/app/installations/{installation_id}", token=jwt)
        check("/app/installations/4242/access_tokens",
              "/app/installations/{installation_id}/access_tokens", method="POST", token=jwt,
              status=201)
        for name, limit in (("payments-api", 100), ("platform-web", 15), ("legacy-billing", 1)):
            base = f"/repos/acme/{name}"
            check(base, "/repos/{owner}/{repo}")
            pulls = check(f"{base}/pulls?state=all&per_page=100", "/repos/{owner}/{repo}/pulls")
            for p in pulls[:limit]:
                n = p["number"]
                check(f"{base}/pulls/{n}", "/repos/{owner}/{repo}/pulls/{pull_number}")
                check(f"{base}/pulls/{n}/reviews", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews")
                check(f"{base}/pulls/{n}/commits", "/repos/{owner}/{repo}/pulls/{pull_number}/commits")
                check(f"{base}/pulls/{n}/requested_reviewers",
                      "/repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers")
                check(f"{base}/issues/{n}", "/repos/{owner}/{repo}/issues/{issue_number}")
                check(f"{base}/issues/{n}/events", "/repos/{owner}/{repo}/issues/{issue_number}/events")
                check(f"{base}/issues/{n}/timeline?per_page=100",
                      "/repos/{owner}/{repo}/issues/{issue_number}/timeline")
                sha = p["head"]["sha"]
                check(f"{base}/commits/{sha}", "/repos/{owner}/{repo}/commits/{ref}")
                check(f"{base}/commits/{sha}/check-runs?filter=all",
                      "/repos/{owner}/{repo}/commits/{ref}/check-runs")
            check(f"{base}/actions/workflows", "/repos/{owner}/{repo}/actions/workflows")
            runs = check(f"{base}/actions/runs?per_page=100", "/repos/{owner}/{repo}/actions/runs")
            for run in runs["workflow_runs"][:limit]:
                r = f"{base}/actions/runs/{run['id']}"
                check(r, "/repos/{owner}/{repo}/actions/runs/{run_id}")
                check(f"{r}/jobs?filter=all", "/repos/{owner}/{repo}/actions/runs/{run_id}/jobs")
                for n in range(1, run["run_attempt"] + 1):
                    check(f"{r}/attempts/{n}",
                          "/repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt_number}")
                    check(f"{r}/attempts/{n}/jobs",
                          "/repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt_number}/jobs")
        check("/repos/acme/nope", "/repos/{owner}/{repo}", status=404)
        statuses = {r.status for r in srv.stats.requests}
    assert statuses == {200, 201, 404}
    assert checked["/repos/{owner}/{repo}/issues/{issue_number}/timeline"] >= 40


def test_run_states_follow_the_clock(org: Org) -> None:
    """A run queued or in progress at the moment of the view shows so, without a conclusion."""
    run = next(r for p in org.prs["payments-api"] for r in p.runs if r.workflow.name == "E2E")
    a = run.attempts[0]
    seen = {}
    for label, moment in (("queued", a.created_at + (a.started_at - a.created_at) / 2),
                          ("in_progress", a.started_at + (a.completed_at - a.started_at) / 2),
                          ("completed", a.completed_at)):
        with SandboxServer(org, clock=FixedClock(moment)) as srv:
            _, _, body = call(srv, f"/repos/acme/payments-api/actions/runs/{run.id}")
            _, _, jobs = call(srv, f"/repos/acme/payments-api/actions/runs/{run.id}/jobs")
        validate_response("GET", "/repos/{owner}/{repo}/actions/runs/{run_id}", 200, body)
        validate_response("GET", "/repos/{owner}/{repo}/actions/runs/{run_id}/jobs", 200, jobs)
        seen[label] = (body["status"], body["conclusion"], jobs["jobs"][0]["status"])
    assert seen["queued"] == ("queued", None, "queued")
    assert seen["in_progress"] == ("in_progress", None, "in_progress")
    assert seen["completed"][0] == "completed" and seen["completed"][1] in ("success", "failure")


# ------------------------------------------------------------------------------ the clock


def test_clock_hides_the_future(org: Org, server: SandboxServer, clock: FixedClock) -> None:
    """As of a past moment, later PRs are invisible and a PR merged later still shows open."""
    prs = org.prs["payments-api"]
    target = next(p for p in prs if any(e.event == "merged" for e in p.events)
                  and p.created_at > org.start + timedelta(weeks=3))
    merged_at = next(e.at for e in target.events if e.event == "merged")
    clock.current = merged_at - timedelta(minutes=1)
    visible = [p for p in prs if p.created_at <= clock.current]
    gh_repo = github(server, per_page=100).get_repo("acme/payments-api")
    numbers = {p.number for p in gh_repo.get_pulls(state="all")}
    assert numbers == {p.number for p in visible}
    pr = gh_repo.get_pull(target.number)
    assert pr.state == "open" and not pr.merged and pr.merged_at is None
    events = [t.event for t in pr.as_issue().get_timeline()]
    assert "merged" not in events
    later = max(visible, key=lambda p: p.number).number + 1
    with pytest.raises(GithubException) as err:
        gh_repo.get_pull(later)
    assert err.value.status == 404
    clock.current = merged_at
    assert gh_repo.get_pull(target.number).merged


def test_view_derives_draft_state_and_head_from_events(org: Org) -> None:
    """A PR converted back to draft reads as draft in between, and a force push moves the head."""
    redrafted = next(p for prs in org.prs.values() for p in prs
                     if any(e.event == "convert_to_draft" for e in p.events))
    flip = next(e.at for e in redrafted.events if e.event == "convert_to_draft")
    assert view_pr(redrafted, flip).draft  # type: ignore[union-attr]
    pushed = next(p for prs in org.prs.values() for p in prs
                  if any(e.event == "head_ref_force_pushed" for e in p.events))
    force = next(e for e in pushed.events if e.event == "head_ref_force_pushed")
    before = view_pr(pushed, force.at - timedelta(seconds=1))
    after = view_pr(pushed, force.at)
    assert before and after and before.head_sha == force.before_sha
    assert after.head_sha == force.after_sha
    assert force.before_sha not in {c.sha for c in after.commits}


def test_requested_reviewers_follow_requests_reviews_and_re_requests(org: Org) -> None:
    """A re-requested reviewer is pending again until they review; a team until a member reviews."""
    pr = next(p for p in org.prs["payments-api"]
              if any(r.state == "CHANGES_REQUESTED" for r in p.reviews)
              and sum(e.event == "review_requested" and e.reviewer is not None
                      for e in p.events) >= 2)
    first_review = next(r for r in pr.reviews if r.state == "CHANGES_REQUESTED")
    who = first_review.author.login  # type: ignore[union-attr]
    again = next(e for e in pr.events if e.event == "review_requested"
                 and e.at > first_review.submitted_at and e.reviewer and e.reviewer.login == who)
    path = f"/pulls/{pr.number}/requested_reviewers"
    for moment, pending in ((first_review.submitted_at, False), (again.at, True)):
        with SandboxServer(org, clock=FixedClock(moment)) as srv:
            _, _, body = call(srv, f"/repos/acme/payments-api{path}")
        assert (who in {u["login"] for u in body["users"]}) is pending
    bot = next(p for p in org.prs["payments-api"] if p.author.login == "dependabot[bot]"
               and p.reviews)
    requested = next(e.at for e in bot.events if e.event == "review_requested")
    for moment, slugs in ((requested, ["payments-reviewers"]), (bot.reviews[0].submitted_at, [])):
        with SandboxServer(org, clock=FixedClock(moment)) as srv:
            _, _, body = call(srv, f"/repos/acme/payments-api/pulls/{bot.number}")
        assert [t["slug"] for t in body["requested_teams"]] == slugs


# ------------------------------------------------------------------------------ GraphQL

SAMPLER_QUERY = """
query($owner: String!, $name: String!, $after: String) {
  rateLimit { cost remaining resetAt limit used }
  repository(owner: $owner, name: $name) {
    isArchived
    pullRequests(first: 20, after: $after, states: [OPEN, MERGED, CLOSED],
                 orderBy: {field: UPDATED_AT, direction: DESC}) {
      totalCount
      pageInfo { hasNextPage endCursor }
      nodes {
        id number title url isDraft state createdAt updatedAt closedAt mergedAt headRefOid
        baseRefName additions deletions changedFiles
        author { __typename login }
        labels(first: 20) { nodes { name } }
        timelineItems(first: 100, itemTypes: [READY_FOR_REVIEW_EVENT, CONVERT_TO_DRAFT_EVENT,
            REVIEW_REQUESTED_EVENT, REVIEW_REQUEST_REMOVED_EVENT, PULL_REQUEST_REVIEW,
            PULL_REQUEST_COMMIT, HEAD_REF_FORCE_PUSHED_EVENT, MERGED_EVENT, CLOSED_EVENT]) {
          pageInfo { hasNextPage endCursor } totalCount
          nodes {
            __typename
            ... on ReadyForReviewEvent { createdAt actor { login } }
            ... on ConvertToDraftEvent { createdAt }
            ... on ReviewRequestedEvent { createdAt requestedReviewer {
                __typename ... on User { login } ... on Bot { login } ... on Team { slug }
                ... on Mannequin { login } } }
            ... on ReviewRequestRemovedEvent { createdAt requestedReviewer { __typename } }
            ... on PullRequestReview { author { __typename login } state submittedAt
                                       reviewCommit: commit { oid } }
            ... on PullRequestCommit { commit { oid authoredDate committedDate message } }
            ... on HeadRefForcePushedEvent { createdAt afterCommit { oid } }
            ... on MergedEvent { createdAt }
            ... on ClosedEvent { createdAt }
          }
        }
        commits(last: 1) { nodes { commit { oid checkSuites(first: 10) { nodes {
          workflowRun { databaseId runNumber workflow { name } createdAt }
          checkRuns(first: 20) { nodes { name status conclusion startedAt completedAt databaseId } }
        } } } } }
      }
    }
  }
}
"""


def test_graphql_sampler_query_validates_and_is_answered(server: SandboxServer, org: Org) -> None:
    """A sampler-style query is valid against GitHub's schema, pages with cursors, and costs points."""
    assert gql.check(SAMPLER_QUERY) == []
    gh = github(server)
    seen: list[int] = []
    after = None
    while True:
        _, data = gh.requester.graphql_query(
            SAMPLER_QUERY, {"owner": "acme", "name": "payments-api", "after": after})
        conn = data["data"]["repository"]["pullRequests"]
        seen += [n["number"] for n in conn["nodes"]]
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert sorted(seen) == list(range(1, len(org.prs["payments-api"]) + 1))
    rate = data["data"]["rateLimit"]
    assert rate["cost"] == gql.cost(SAMPLER_QUERY) >= 1 and rate["limit"] == 5000
    assert server.stats.graphql_cost == rate["used"] == 5000 - rate["remaining"]
    assert server.stats.primary_cost == 0
    node = next(n for n in conn["nodes"] if n["state"] == "MERGED")
    kinds = {i["__typename"] for i in node["timelineItems"]["nodes"]}
    assert {"PullRequestCommit", "MergedEvent", "ClosedEvent"} <= kinds


def test_graphql_identities_follow_github(server: SandboxServer, org: Org) -> None:
    """Bots come without the [bot] suffix, typed Bot; team requests name the Team."""
    bot_pr = next(p for p in org.prs["payments-api"] if p.author.login == "dependabot[bot]")
    query = """query($n: Int!) { repository(owner: "acme", name: "payments-api") {
      pullRequest(number: $n) { id author { __typename login }
        timelineItems(first: 10, itemTypes: [REVIEW_REQUESTED_EVENT]) { nodes {
          ... on ReviewRequestedEvent { requestedReviewer { __typename ... on Team { slug } } } } } } } }"""
    _, data = github(server).requester.graphql_query(query, {"n": bot_pr.number})
    pr = data["data"]["repository"]["pullRequest"]
    assert pr["author"] == {"__typename": "Bot", "login": "dependabot"}
    assert pr["timelineItems"]["nodes"][0]["requestedReviewer"] == {
        "__typename": "Team", "slug": "payments-reviewers"}
    _, data = github(server).requester.graphql_query(
        "query($id: ID!) { node(id: $id) { ... on PullRequest { number } } }", {"id": pr["id"]})
    assert data["data"]["node"]["number"] == bot_pr.number


def test_graphql_search_finds_recently_updated_prs(server: SandboxServer, org: Org) -> None:
    """An issue search by repo and updated date returns exactly the PRs updated since then."""
    since = END - timedelta(days=3)
    query = """query($q: String!) { search(type: ISSUE, query: $q, first: 100) {
      issueCount nodes { ... on PullRequest { number updatedAt } } } }"""
    q = f"repo:acme/payments-api is:pr updated:>={since.strftime('%Y-%m-%dT%H:%M:%SZ')}"
    _, data = github(server).requester.graphql_query(query, {"q": q})
    found = {n["number"] for n in data["data"]["search"]["nodes"]}
    expected = {p.number for p in org.prs["payments-api"]
                if (v := view_pr(p, END)) is not None and v.updated_at >= since}
    assert found == expected and data["data"]["search"]["issueCount"] == len(expected) > 0


def test_graphql_errors_have_githubs_shape(server: SandboxServer) -> None:
    """An invalid query gets HTTP 200 with errors and locations; a too-big page is refused."""
    status, _, body = call(server, "/graphql", method="POST",
                           data={"query": "{ repository(owner: \"acme\", name: \"x\") { nope } }"})
    assert status == 200 and "data" not in body
    assert body["errors"][0]["locations"][0]["line"] == 1 and "nope" in body["errors"][0]["message"]
    status, _, body = call(server, "/graphql", method="POST", data={"query": "{ viewer { login "})
    assert status == 200 and body["errors"][0]["message"].startswith("Syntax Error")
    missing = '{ repository(owner: "acme", name: "gone") { id } }'
    _, _, body = call(server, "/graphql", method="POST", data={"query": missing})
    assert body["data"] == {"repository": None}
    assert body["errors"][0]["type"] == "NOT_FOUND" and body["errors"][0]["path"] == ["repository"]
    big = '{ repository(owner: "acme", name: "payments-api") { pullRequests(first: 101) { totalCount } } }'
    _, _, body = call(server, "/graphql", method="POST", data={"query": big})
    assert "exceeds the `first` limit of 100" in body["errors"][0]["message"]


def test_graphql_served_under_enterprise_base_url(server: SandboxServer) -> None:
    """With an Enterprise-style /api/v3 base URL, REST and PyGithub's /api/graphql both answer."""
    gh = github(server, base=server.base_url + "/api/v3")
    assert gh.get_repo("acme/payments-api").name == "payments-api"
    _, data = gh.requester.graphql_query("{ viewer { login } }", {})
    assert data["data"]["viewer"]["login"] == "alice"
    assert server.stats.count(path="/api/graphql") == 1


def test_graphql_cost_counts_nested_connections() -> None:
    """Cost follows GitHub's rule: nested pages multiply, the sum over 100 rounds, minimum 1."""
    assert gql.cost("{ viewer { login } }") == 1
    q = """{ repository(owner: "a", name: "b") { pullRequests(first: 100) { nodes {
        timelineItems(first: 100) { totalCount } reviews(first: 100) { totalCount } } } } }"""
    assert gql.cost(q) == 2  # 1 + 100 + 100 requests
    assert gql.check("{ viewer { nope } }")


# ------------------------------------------------------------------------------ limits, auth, faults


def test_bad_token_and_missing_things(server: SandboxServer) -> None:
    """A wrong token gets 401 Bad credentials; unknown paths and repos get GitHub's 404 body."""
    status, _, body = call(server, "/user", token="wrong")
    assert status == 401 and body["message"] == "Bad credentials"
    status, _, body = call(server, "/repos/acme/payments-api/pulls/99999")
    assert status == 404 and body["message"] == "Not Found"
    assert errors("GET", "/user", 404, body) == []


def test_denied_repository_answers_permission_403(server: SandboxServer) -> None:
    """A repository the token may not read says so the way GitHub Apps are told, or hides as 404."""
    server.deny("acme/platform-api")
    status, headers, body = call(server, "/repos/acme/platform-api/pulls")
    assert status == 403 and body["message"] == "Resource not accessible by integration"
    assert "pull_requests=read" in headers["x-accepted-github-permissions"]
    server.deny("platform-web", status=404)
    assert call(server, "/repos/acme/platform-web")[0] == 404
    server.allow("platform-api")
    assert call(server, "/repos/acme/platform-api/pulls")[0] == 200


def test_app_installation_token_flow(server: SandboxServer) -> None:
    """An App JWT buys an installation token that then reads repositories (but not /user)."""
    assert call(server, "/app/installations", token="sandbox-token")[0] == 401
    status, _, body = call(server, "/app/installations/4242/access_tokens", method="POST",
                           token="h.p.s")
    assert status == 201 and body["token"].startswith("ghs_")
    assert call(server, "/repos/acme/payments-api", token=body["token"])[0] == 200
    status, _, err = call(server, "/user", token=body["token"])
    assert status == 403 and err["message"] == "Resource not accessible by integration"


def test_primary_budget_runs_out(org: Org, clock: FixedClock) -> None:
    """When a token's hourly budget is spent, requests get GitHub's 403 rate-limit answer."""
    with SandboxServer(org, clock=clock, rate_limit=3) as srv:
        for _ in range(3):
            assert call(srv, "/repos/acme/payments-api")[0] == 200
        status, headers, body = call(srv, "/repos/acme/payments-api")
        _, _, limits = call(srv, "/rate_limit")
    assert status == 403 and body["message"].startswith("API rate limit exceeded")
    assert headers["x-ratelimit-remaining"] == "0"
    assert limits["resources"]["core"]["remaining"] == 0
    validate_response("GET", "/rate_limit", 200, limits)


def test_scheduled_faults(server: SandboxServer) -> None:
    """Scheduled 502s, 429/403 secondary limits with Retry-After and dropped connections happen in order."""
    server.faults.schedule("502", count=2, path="/pulls")
    assert call(server, "/repos/acme/payments-api/pulls")[0] == 502
    assert call(server, "/repos/acme/payments-api")[0] == 200  # other paths unaffected
    assert call(server, "/repos/acme/payments-api/pulls")[0] == 502
    assert call(server, "/repos/acme/payments-api/pulls")[0] == 200
    server.faults.schedule("secondary_429", retry_after=7)
    status, headers, body = call(server, "/repos/acme/payments-api")
    assert status == 429 and headers["retry-after"] == "7"
    assert body["message"].startswith("You have exceeded a secondary rate limit")
    server.faults.schedule("secondary_403")
    status, headers, _ = call(server, "/repos/acme/payments-api")
    assert status == 403 and "retry-after" in headers
    server.faults.schedule("close")
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        call(server, "/repos/acme/payments-api")
    assert call(server, "/repos/acme/payments-api")[0] == 200
    faults = [r.fault for r in server.stats.requests if r.fault]
    assert faults == ["502", "502", "secondary_429", "secondary_403", "close"]
    assert all(r.cost == 0 for r in server.stats.requests if r.fault)


def test_bad_200_faults(server: SandboxServer) -> None:
    """Bad 200s on the wire: a wrong-shape list, missing data, JSON cut in half (metered, as
    GitHub ran it) and a proxy's HTML page (not metered)."""
    path = "/repos/acme/payments-api"

    def raw(extra: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(server.base_url + path,
                                     headers={"Authorization": "token sandbox-token"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()

    whole = raw()[2]
    server.faults.schedule("malformed")
    assert isinstance(json.loads(raw()[2]), list)
    server.faults.schedule("missing")
    assert json.loads(raw()[2]) == {}
    server.faults.schedule("truncated")
    status, headers, body = raw()
    assert status == 200 and body == whole[: len(whole) // 2] and "x-ratelimit-used" in headers
    with pytest.raises(ValueError):
        json.loads(body)
    server.faults.schedule("html")
    status, headers, body = raw()
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert body.startswith(b"<!DOCTYPE html>") and "x-ratelimit-used" not in headers
    charged = {r.fault: r.cost for r in server.stats.requests if r.fault}
    assert charged == {"malformed": 0, "missing": 0, "truncated": 1, "html": 0}


def test_timeout_fault_outlasts_the_client(server: SandboxServer) -> None:
    """A hanging request makes the client time out rather than wait forever."""
    server.faults.hang_seconds = 1.0  # released early when the server stops
    server.faults.schedule("timeout")
    req = urllib.request.Request(server.base_url + "/repos/acme/payments-api",
                                 headers={"Authorization": "token sandbox-token"})
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        urllib.request.urlopen(req, timeout=0.2)
    assert call(server, "/repos/acme/payments-api")[0] == 200


def test_fault_rate_is_seeded(org: Org, clock: FixedClock) -> None:
    """A 30% fault rate fails about 30% of requests, the same ones for the same seed."""
    outcomes = []
    for _ in range(2):
        with SandboxServer(org, clock=clock) as srv:
            srv.faults.rate(0.3, kinds=("502", "503"), seed=5)
            outcomes.append([call(srv, "/repos/acme/payments-api")[0] for _ in range(60)])
    assert outcomes[0] == outcomes[1]
    failed = sum(s != 200 for s in outcomes[0])
    assert 8 <= failed <= 30 and set(outcomes[0]) <= {200, 502, 503}


def test_pygithub_retries_through_a_5xx(server: SandboxServer) -> None:
    """PyGithub's default retry rides over one 502 and the caller never notices."""
    server.faults.schedule("502")
    gh = Github(base_url=server.base_url, auth=Auth.Token("sandbox-token"),
                seconds_between_requests=0, seconds_between_writes=0,
                retry=__import__("urllib3").Retry(total=2, backoff_factor=0,
                                                  status_forcelist=[502]))
    assert gh.get_repo("acme/payments-api").archived is False
    assert [r.status for r in server.stats.requests] == [502, 200]


def test_pygithub_app_auth_gets_an_installation_token(server: SandboxServer) -> None:
    """PyGithub authenticating as a GitHub App (JWT, then installation token) reads the org."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from github import GithubIntegration

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    app = Auth.AppAuth(1001, pem)
    integration = GithubIntegration(auth=app, base_url=server.base_url)
    installation = integration.get_org_installation("acme")
    assert installation.id == 4242
    gh = Github(base_url=server.base_url, auth=app.get_installation_auth(installation.id),
                seconds_between_requests=0, seconds_between_writes=0)
    assert gh.get_repo("acme/payments-api").full_name == "acme/payments-api"
    assert server.stats.count(path="/access_tokens", status=201) == 1
