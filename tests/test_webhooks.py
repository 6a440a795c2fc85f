"""What a GitHub webhook delivery asks to refresh (pure): GitHub's own example payloads in
(tests/fixtures/webhooks), refreshes out; anything else is ignored with a reason, never raised."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from jobs.webhooks import CI_EVENTS, EVENTS, PR_ACTIONS, Plan, Refresh, installation, plan, watching

EXAMPLES: dict[str, dict[str, Any]] = json.loads(
    (Path(__file__).parent / "fixtures" / "webhooks" / "examples.json").read_text())
WATCHED = watching(["codertocat/hello-world", "octo-org/octo-repo", "acme/api"])


@pytest.mark.parametrize("name", sorted(k for k in EXAMPLES if k.split(".")[0] in PR_ACTIONS))
def test_each_pr_event_that_moves_a_clock_refreshes_that_pr(name: str) -> None:
    """Every published example of a PR or review event that moves a clock refreshes its PR."""
    event = name.split(".")[0]
    assert plan(event, EXAMPLES[name], watched=WATCHED) == Plan(
        (Refresh("pr", "codertocat/hello-world", 2, reason=name),))


@pytest.mark.parametrize("name", sorted(k for k in EXAMPLES if k.split(".")[0] in CI_EVENTS))
def test_each_ci_event_refreshes_the_repositorys_ci(name: str) -> None:
    """Any CI event refreshes its repository's CI (one listing attaches runs to their PRs)."""
    payload = EXAMPLES[name]
    got = plan(name.split(".")[0], payload, watched=WATCHED)
    assert got.refreshes == (Refresh("ci", payload["repository"]["full_name"].lower(), reason=name),)


def test_other_actions_events_and_repositories_are_ignored_with_a_reason() -> None:
    """An assignment, a push, or a repository no team watches asks for nothing, and says why."""
    assigned = plan("pull_request", {**EXAMPLES["pull_request.opened"], "action": "assigned"},
                    watched=WATCHED)
    assert assigned.refreshes == () and "moves no clock" in (assigned.ignored or "")
    push = plan("push", {"repository": {"full_name": "Codertocat/Hello-World"}}, watched=WATCHED)
    assert push.refreshes == () and push.ignored == "event push moves no clock"
    other = plan("pull_request", EXAMPLES["pull_request.synchronize"], watched=watching(["acme/api"]))
    assert other.refreshes == () and "Codertocat/Hello-World is not watched" in (other.ignored or "")


def test_payloads_missing_what_their_event_carries_are_ignored_not_raised() -> None:
    """A PR event without a number, or no repository at all, is a reason, not an exception."""
    repo = {"full_name": "Codertocat/Hello-World"}
    for payload in ({}, {"repository": None}, {"repository": {"full_name": "no-slash"}},
                    {"action": "opened", "repository": repo},
                    {"action": "opened", "repository": repo, "pull_request": {"number": True}}):
        got = plan("pull_request", payload, watched=WATCHED)
        assert got.refreshes == () and got.ignored, payload


def test_all_repositories_watches_the_whole_organisation_as_github_spells_it() -> None:
    """Any repository of an organisation read whole (``all_repositories``) counts; others not."""
    watched = watching(["acme/api"], organisations=["Codertocat", "octo-org"])
    assert watched("Codertocat/Hello-World") == "Codertocat/Hello-World"
    assert watched("ACME/API") == "acme/api"
    assert watched("octo-org/octo-repo") == "octo-org/octo-repo"
    assert watched("someone/else") is None


def test_the_installation_comes_from_the_payload_when_an_app_sent_it() -> None:
    """An App's delivery names its installation; a repository hook's does not."""
    assert installation(EXAMPLES["pull_request.synchronize"]) == 1
    assert installation(EXAMPLES["pull_request.converted_to_draft"]) is None
    assert installation({"installation": {"id": "1"}}) is None


def test_every_event_a_hook_should_send_has_an_example() -> None:
    """The events docs/operations.md asks for are the ones planned, each with an example."""
    assert EVENTS == {"pull_request", "pull_request_review", "check_run", "check_suite",
                      "workflow_run", "workflow_job"}
    assert EVENTS <= {k.split(".")[0] for k in EXAMPLES}
