"""Parsing GitHub payloads into records: real payload shapes, the odd cases real GitHub sends.

Fixtures in ``tests/fixtures/github/`` were built from GitHub's published REST examples
(``@octokit/openapi``) and its GraphQL schema: one merged bot PR seen through both APIs, with
a ``null`` reviewer, the ``ghost`` user, an AI bot reviewer, a team review request (then
removed), a re-request after a force push, a pending review and ``Co-authored-by`` trailers;
and a workflow run rerun once, with its jobs.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from graphql import GraphQLSchema, build_schema, parse, validate

from jobs.github import parse as gh
from jobs.github.queries import DOCUMENTS, TIMELINE_TYPES
from jobs.model import CheckRun, Review, TimelineEvent

FIXTURES = Path(__file__).parent / "fixtures" / "github"
ROOT = Path(__file__).parent.parent
SCHEMAS = (
    ROOT / "jobs" / "sandbox" / "schema.graphql",
    Path("/tmp/octo/octokit-graphql-schema-15.26.1/package/schema.graphql"),
)
SHA1, SHA3 = "c1" * 20, "c3" * 20


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def utc(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, second, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def schema() -> GraphQLSchema:
    path = next(p for p in SCHEMAS if p.exists())
    return build_schema(path.read_text(), assume_valid_sdl=True, assume_valid=True)


@pytest.fixture(scope="module")
def from_graphql() -> Any:
    return gh.pull_from_graphql("acme/api", load("graphql_pull.json"))


def test_every_graphql_document_validates_against_githubs_schema(schema: GraphQLSchema) -> None:
    """Every query the sampler sends is valid against GitHub's published GraphQL schema."""
    for name, document in DOCUMENTS.items():
        assert validate(schema, parse(document)) == [], name


def test_timeline_item_types_exist_in_the_schema(schema: GraphQLSchema) -> None:
    """The timeline filter names only item types GitHub knows."""
    enum = schema.get_type("PullRequestTimelineItemsItemType")
    assert set(TIMELINE_TYPES) <= set(enum.values)  # type: ignore[union-attr]


def test_graphql_pr_facts(from_graphql: Any) -> None:
    """A PR's facts come through: bot author without [bot], size, labels, trailers, dates."""
    pr = from_graphql
    assert (pr.repo, pr.number, pr.title) == ("acme/api", 42, "Add retry logic")
    assert (pr.author, pr.author_type) == ("dependabot", "Bot")
    assert pr.state == "merged" and pr.merged_at == utc(3, 15)
    assert (pr.additions, pr.deletions, pr.changed_files) == (120, 30, 4)
    assert pr.labels == ("dependencies",) and pr.base_ref == "main" and pr.head_sha == SHA3
    assert pr.first_commit_at == utc(1, 17)
    assert pr.co_authors == ("Claude <noreply@anthropic.com>", "Bob <bob@example.com>")
    assert pr.checks == ()


def test_graphql_reviews_keep_deleted_accounts_and_drop_pending(from_graphql: Any) -> None:
    """Null and ghost reviewers count as deleted accounts; a pending review is not a review."""
    assert from_graphql.reviews == (
        Review("coderabbitai", "Bot", "COMMENTED", utc(2, 9, 30), SHA1),
        Review("alice", "User", "CHANGES_REQUESTED", utc(2, 10, 30), SHA1),
        Review(None, "Deleted", "COMMENTED", utc(2, 11), SHA1),
        Review(None, "Deleted", "CHANGES_REQUESTED", utc(2, 12), SHA1),
        Review("alice", "User", "APPROVED", utc(3, 14), SHA3),
    )


def test_graphql_timeline_team_requests_force_push_and_re_request(from_graphql: Any) -> None:
    """Team requests carry the slug, a force push is a head change, a re-request is kept."""
    assert from_graphql.events == (
        TimelineEvent("head_pushed", utc(1, 17), sha=SHA1),
        TimelineEvent("review_requested", utc(2, 9, 5), actor="dependabot", requested_team="payments"),
        TimelineEvent("review_requested", utc(2, 9, 5), actor="dependabot", requested_reviewer="alice"),
        TimelineEvent("review_request_removed", utc(2, 10), actor="dependabot",
                      requested_team="payments"),
        TimelineEvent("head_pushed", utc(3, 11)),
        TimelineEvent("head_pushed", utc(3, 11), sha=SHA3),
        TimelineEvent("review_requested", utc(3, 11, 5), actor=None, requested_reviewer="alice"),
        TimelineEvent("closed", utc(3, 15), actor="alice"),
        TimelineEvent("merged", utc(3, 15), actor="alice"),
    )


def test_rest_and_graphql_make_the_same_record(from_graphql: Any) -> None:
    """The same PR read through REST (reviews, timeline, commits) gives the same record."""
    rest = load("rest_pull.json")
    record = gh.pull_from_rest(
        "acme/api", rest["pull"], reviews=rest["reviews"], timeline=rest["timeline"],
        commits=rest["commits"],
    )
    assert record == from_graphql


def test_rerun_attempts_queue_from_their_jobs() -> None:
    """A rerun gives one record per attempt; the rerun queues from its own job's creation."""
    data = load("rerun.json")
    assert gh.run_attempts(data["run"], data["jobs"]["jobs"]) == (
        CheckRun("E2E", 777, 1, SHA3, utc(3, 11, 0, 10), utc(3, 11, 9), utc(3, 11, 40), "failure"),
        CheckRun("E2E", 777, 2, SHA3, utc(3, 12), utc(3, 12, 10), utc(3, 12, 40), "success"),
    )


def test_run_without_jobs_gives_its_latest_attempt_only() -> None:
    """Listed without jobs, a run is its latest attempt; a queued run has not started."""
    run = dict(load("rerun.json")["run"], run_attempt=1, status="queued", conclusion=None)
    (only,) = gh.run_attempts(run)
    assert (only.attempt, only.created_at, only.started_at, only.completed_at, only.conclusion) == (
        1, utc(3, 11, 0, 10), None, None, None,
    )


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (None, (None, "Deleted")),
        ({"login": "ghost", "type": "User"}, (None, "Deleted")),
        ({"login": "renovate[bot]", "type": "Bot"}, ("renovate", "Bot")),
        ({"__typename": "Bot", "login": "renovate"}, ("renovate", "Bot")),
        ({"__typename": "Mannequin", "login": "old-import"}, ("old-import", "Mannequin")),
        ({"__typename": "EnterpriseUserAccount", "login": "emu_bob"}, ("emu_bob", "User")),
        ({"login": "carol"}, ("carol", "User")),
    ],
)
def test_actor_shapes(payload: Any, expected: tuple[str | None, str]) -> None:
    """Every account shape GitHub sends maps to a login and an account type."""
    assert gh.actor(payload) == expected


def test_minimal_graphql_node_with_nulls_parses() -> None:
    """A PR with a deleted author and no connections at all still parses."""
    node = {"number": 7, "createdAt": "2026-03-02T09:00:00Z", "updatedAt": "2026-03-02T09:00:00Z",
            "author": None, "isDraft": True, "labels": None, "commits": None, "reviews": None,
            "timelineItems": {"nodes": [None, {"__typename": "ReviewRequestedEvent",
                                               "createdAt": "2026-03-02T09:01:00Z",
                                               "requestedReviewer": None}]}}
    pr = gh.pull_from_graphql("acme/api", node)
    assert (pr.author, pr.author_type, pr.draft, pr.events, pr.first_commit_at) == (
        None, "Deleted", True, (), None,
    )


def test_shape_checks_pass_githubs_examples_and_name_what_is_wrong() -> None:
    """The answers the sampler reads pass their shape checks as GitHub documents them; a
    list for an object, a missing field or a timestamp that is not one is named."""
    from jobs.github import shapes

    rest = load("rest_pull.json")
    assert shapes.pull_list([rest["pull"]]) is None
    run = load("rerun.json")
    assert shapes.runs_page({"total_count": 1, "workflow_runs": [run["run"]]}) is None
    assert shapes.jobs_page(run["jobs"]) is None
    node = load("graphql_pull.json")
    for conn in ("commits", "reviews", "timelineItems"):
        node[conn].setdefault("pageInfo", {"hasNextPage": False, "endCursor": None})
    page = {"repository": {"isArchived": False, "pullRequests": {
        "nodes": [node], "pageInfo": {"hasNextPage": False, "endCursor": None}}}}
    assert shapes.pull_page(page) is None
    assert shapes.pull_list({"message": "x"}) == "pulls: expected a list, got dict"
    assert shapes.repository([]) == "repository: expected an object, got list"
    assert shapes.pull_list([{"number": 1, "updated_at": "yesterday"}]) == (
        "pulls[0]: updated_at is not a time (str)")
    assert shapes.pull_page({}) == "data: repository missing"
    assert shapes.runs_page({"total_count": 0}) == "answer: workflow_runs missing"
