"""What a GitHub webhook delivery asks to refresh (pure): GitHub's own example payloads in,
refreshes out; anything else is ignored with a reason, never raised."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from jobs.webhooks import EVENTS, Plan, Refresh, installation, plan, watching

EXAMPLES: dict[str, list[dict[str, Any]]] = json.loads(
    (Path(__file__).parent / "fixtures" / "github" / "webhook_examples.json").read_text())
REPO = "Codertocat/Hello-World"  # the examples' repository
WATCHED = watching(["codertocat/hello-world", "acme/api"])


def example(event: str, action: str | None = None) -> dict[str, Any]:
    return next(e for e in EXAMPLES[event] if e.get("action") == action)


def test_pr_events_that_move_a_clock_refresh_that_pr() -> None:
    """A push to a PR, a review request and a submitted review each refresh that one PR."""
    for event, action in (("pull_request", "synchronize"), ("pull_request", "review_requested"),
                          ("pull_request_review", "submitted")):
        got = plan(event, example(event, action), watched=WATCHED)
        assert got == Plan((Refresh("pr", "codertocat/hello-world", 2,
                                    reason=f"{event}.{action}"),)), event


@pytest.mark.parametrize("event", ["check_run", "check_suite", "workflow_run", "workflow_job"])
def test_ci_events_refresh_the_repositorys_ci(event: str) -> None:
    """Any CI event refreshes the repository's CI (one listing attaches runs to their PRs)."""
    payload = EXAMPLES[event][0]
    got = plan(event, payload, watched=WATCHED)
    assert got.refreshes == (Refresh("ci", "codertocat/hello-world",
                                     reason=f"{event}.{payload['action']}"),)


def test_other_actions_events_and_repositories_are_ignored_with_a_reason() -> None:
    """An assignment, a push, or a repository no team watches asks for nothing, and says why."""
    assigned = plan("pull_request", example("pull_request", "assigned"), watched=WATCHED)
    assert assigned.refreshes == () and "moves no clock" in (assigned.ignored or "")
    push = plan("push", {"repository": {"full_name": REPO}}, watched=WATCHED)
    assert push.refreshes == () and push.ignored == "event push moves no clock"
    other = plan("pull_request", example("pull_request", "synchronize"),
                 watched=watching(["acme/api"]))
    assert other.refreshes == () and f"{REPO} is not watched" in (other.ignored or "")


def test_payloads_missing_what_their_event_carries_are_ignored_not_raised() -> None:
    """A PR event without a number, or no repository at all, is a reason, not an exception."""
    for payload in ({}, {"repository": None}, {"repository": {"full_name": "no-slash"}},
                    {"action": "opened", "repository": {"full_name": REPO}},
                    {"action": "opened", "repository": {"full_name": REPO},
                     "pull_request": {"number": True}}):
        got = plan("pull_request", payload, watched=WATCHED)
        assert got.refreshes == () and got.ignored, payload


def test_all_repositories_watches_the_whole_organisation_as_github_spells_it() -> None:
    """With ``all_repositories`` any repository of the organisation counts; others do not."""
    watched = watching(["acme/api"], organisation="Codertocat")
    assert watched(REPO) == REPO
    assert watched("ACME/API") == "acme/api"
    assert watched("someone/else") is None


def test_the_installation_comes_from_the_payload_when_an_app_sent_it() -> None:
    """An App's delivery names its installation; a repository hook's does not."""
    assert installation(example("pull_request", "synchronize")) == 1
    assert installation(example("pull_request_review", "submitted")) is None
    assert installation({"installation": {"id": "1"}}) is None


def test_every_event_a_hook_should_send_has_an_example() -> None:
    """The events docs/operations.md asks for are the ones planned (and exampled here)."""
    assert EVENTS == {"pull_request", "pull_request_review", "check_run", "check_suite",
                      "workflow_run", "workflow_job"}
    assert EVENTS <= set(EXAMPLES)
