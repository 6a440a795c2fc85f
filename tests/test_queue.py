"""The live queue: one bucket per PR by whose turn it is, ages without draft time."""

from __future__ import annotations

from datetime import datetime

from jobs.identity import Identity
from jobs.model import PullRequest, QueueItem, QueueSample
from jobs.queue import queue_now
from jobs.settings import IdentitySettings
from tests.factories import at, check, event, pr, review

IDENTITY = Identity(IdentitySettings())


class CalendarHours:
    """Business hours = calendar hours: keeps these tests about the queue rules only."""

    def hours_between(self, start: datetime, end: datetime) -> float:
        return max(0.0, (end - start).total_seconds() / 3600)


def _queue(*prs: PullRequest, now_h: float = 100.0) -> tuple[QueueSample, tuple[QueueItem, ...]]:
    return queue_now(prs, identity=IDENTITY, calendar=CalendarHours(), now=at(now_h))


def test_each_pr_lands_in_exactly_one_bucket_first_match_wins() -> None:
    """approved > CI > author > reviewer, and approved PRs are not in the queue length."""
    approved = pr(1, reviews=(review("bob", "APPROVED", 5),),
                  checks=(check(conclusion="failure"),))  # approved wins over failing CI
    ci = pr(2, checks=(check(conclusion="failure"),))
    running = pr(3, checks=(check(started=1, completed=None, conclusion=None),))
    author = pr(4, reviews=(review("bob", "CHANGES_REQUESTED", 5),))
    pushed = pr(5, reviews=(review("bob", "CHANGES_REQUESTED", 5),),
                events=(event("head_pushed", 6, sha="def"),))
    reviewer = pr(6, events=(event("review_requested", 1, requested_reviewer="carol"),))
    sample, items = _queue(approved, ci, running, author, pushed, reviewer)
    turns = {i.number: i.turn for i in items}
    assert turns == {1: "approved", 2: "ci", 3: "ci", 4: "author", 5: "reviewer", 6: "reviewer"}
    assert (sample.reviewer, sample.author, sample.ci, sample.approved) == (2, 1, 2, 1)
    assert sample.length == 5
    assert {i.number: i.waiting_on for i in items}[6] == ("carol",)


def test_drafts_bots_and_closed_prs_are_not_waiting() -> None:
    """Drafts, non-AI bot PRs and closed PRs stay out; an AI agent's PR waits like anyone's."""
    _sample, items = _queue(
        pr(1, draft=True),
        pr(2, author="dependabot[bot]", author_type="Bot"),
        pr(3, merged=5),
        pr(4, author="copilot-swe-agent[bot]", author_type="Bot"),
    )
    assert [i.number for i in items] == [4]
    assert items[0].ai_assisted


def test_age_excludes_time_back_in_draft_and_oldest_is_first() -> None:
    """Age counts from ready_at and leaves out time spent re-drafted."""
    redrafted = pr(1, created=0, draft=False, events=(
        event("convert_to_draft", 10), event("ready_for_review", 30)))
    opened_draft = pr(2, created=0, events=(event("ready_for_review", 50),))
    sample, items = _queue(redrafted, opened_draft, now_h=100)
    assert [(i.number, i.age_hours) for i in items] == [(1, 80.0), (2, 50.0)]
    assert sample.oldest_hours == 80.0


def test_ai_and_author_reviews_do_not_approve() -> None:
    """An AI approval or the author's own review leaves the PR waiting for a human."""
    _sample, items = _queue(pr(1, reviews=(
        review("coderabbitai[bot]", "APPROVED", 2, author_type="Bot"),
        review("alice", "COMMENTED", 3))))
    assert items[0].turn == "reviewer"


def test_deleted_account_approval_counts() -> None:
    """A review by a deleted account counts as a human review."""
    _, items = _queue(pr(1, reviews=(review(None, "APPROVED", 2, author_type="Deleted"),)))
    assert items[0].turn == "approved"
