"""The live queue: one bucket per PR by whose turn it is, ages without draft time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from jobs.identity import Identity
from jobs.metrics.queue import queue_items
from jobs.model import PullRequest, QueueItem, QueueSample
from jobs.queue import queue_now
from jobs.settings import IdentitySettings, WorkHours
from jobs.worktime import WorkCalendar
from tests.factories import at, check, event, pr, review
from tests.test_metrics import generated_prs

IDENTITY = Identity(IdentitySettings())
QueueFn = Callable[..., tuple[QueueSample, tuple[QueueItem, ...]]]


class CalendarHours:
    """Business hours = calendar hours: keeps these tests about the queue rules only."""

    def hours_between(self, start: datetime, end: datetime) -> float:
        return max(0.0, (end - start).total_seconds() / 3600)

    def business_hours(self, starts: Any, ends: Any) -> npt.NDArray[np.float64]:
        span = (np.asarray(ends, dtype="datetime64[us]") - np.asarray(starts, dtype="datetime64[us]"))
        out: npt.NDArray[np.float64] = np.maximum(0.0, span / np.timedelta64(1, "s") / 3600)
        return out


@pytest.fixture(params=[queue_now, queue_items], ids=["per PR", "columns"])
def queue(request: pytest.FixtureRequest) -> QueueFn:
    """Each rule holds for the per-PR queue and for its vectorised twin the snapshots use."""
    fn: QueueFn = request.param
    return fn


def _queue(queue: QueueFn, *prs: PullRequest,
           now_h: float = 100.0) -> tuple[QueueSample, tuple[QueueItem, ...]]:
    return queue(prs, identity=IDENTITY, calendar=CalendarHours(), now=at(now_h))


@pytest.mark.parametrize("required", [1, 2])
def test_the_columns_queue_equals_the_per_pr_queue_on_generated_prs(required: int) -> None:
    """Same buckets, order, waiting lists and ages to the last bit (business hours in a
    real team calendar), on PRs that hit every reading: drafts, ties, late events, bots."""
    cal = WorkCalendar.for_team(WorkHours())
    prs = generated_prs(seed=7 + required, n=400)
    seen: set[str] = set()
    for now in (at(150), at(260), at(400) + timedelta(minutes=7)):
        want = queue_now(prs, identity=IDENTITY, calendar=cal, now=now, required_approvals=required)
        got = queue_items(prs, identity=IDENTITY, calendar=cal, now=now, required_approvals=required)
        assert got == want
        assert len(want[1]) > 20
        seen |= {i.turn for i in want[1]} | {w for i in want[1] for w in i.waiting_on}
    assert {"reviewer", "author", "ci", "approved", "reviewers", "team:core"} <= seen


def test_each_pr_lands_in_exactly_one_bucket_first_match_wins(queue: QueueFn) -> None:
    """approved > CI > author > reviewer, and approved PRs are not in the queue length."""
    approved = pr(1, reviews=(review("bob", "APPROVED", 5),),
                  checks=(check(conclusion="failure"),))  # approved wins over failing CI
    ci = pr(2, checks=(check(conclusion="failure"),))
    running = pr(3, checks=(check(started=1, completed=None, conclusion=None),))
    author = pr(4, reviews=(review("bob", "CHANGES_REQUESTED", 5),))
    pushed = pr(5, reviews=(review("bob", "CHANGES_REQUESTED", 5),),
                events=(event("head_pushed", 6, sha="def"),))
    reviewer = pr(6, events=(event("review_requested", 1, requested_reviewer="carol"),))
    sample, items = _queue(queue, approved, ci, running, author, pushed, reviewer)
    turns = {i.number: i.turn for i in items}
    assert turns == {1: "approved", 2: "ci", 3: "ci", 4: "author", 5: "reviewer", 6: "reviewer"}
    assert (sample.reviewer, sample.author, sample.ci, sample.approved) == (2, 1, 2, 1)
    assert sample.length == 5
    assert {i.number: i.waiting_on for i in items}[6] == ("carol",)


def test_drafts_bots_and_closed_prs_are_not_waiting(queue: QueueFn) -> None:
    """Drafts, non-AI bot PRs and closed PRs stay out; an AI agent's PR waits like anyone's."""
    _sample, items = _queue(
        queue,
        pr(1, draft=True),
        pr(2, author="dependabot[bot]", author_type="Bot"),
        pr(3, merged=5),
        pr(4, author="copilot-swe-agent[bot]", author_type="Bot"),
    )
    assert [i.number for i in items] == [4]
    assert items[0].ai_assisted


def test_age_excludes_time_back_in_draft_and_oldest_is_first(queue: QueueFn) -> None:
    """Age counts from ready_at and leaves out time spent re-drafted."""
    redrafted = pr(1, created=0, draft=False, events=(
        event("convert_to_draft", 10), event("ready_for_review", 30)))
    opened_draft = pr(2, created=0, events=(event("ready_for_review", 50),))
    sample, items = _queue(queue, redrafted, opened_draft, now_h=100)
    assert [(i.number, i.age_hours) for i in items] == [(1, 80.0), (2, 50.0)]
    assert sample.oldest_hours == 80.0


def test_ai_and_author_reviews_do_not_approve(queue: QueueFn) -> None:
    """An AI approval or the author's own review leaves the PR waiting for a human."""
    _sample, items = _queue(queue, pr(1, reviews=(
        review("coderabbitai[bot]", "APPROVED", 2, author_type="Bot"),
        review("alice", "COMMENTED", 3))))
    assert items[0].turn == "reviewer"


def test_deleted_account_approval_counts(queue: QueueFn) -> None:
    """A review by a deleted account counts as a human review."""
    _, items = _queue(queue, pr(1, reviews=(review(None, "APPROVED", 2, author_type="Deleted"),)))
    assert items[0].turn == "approved"


def test_who_waits_read_for_all_prs_at_once_equals_the_per_pr_reading() -> None:
    """``jobs.metrics.queue.waiting_on`` (arrays, every PR at once) names whom each PR waits
    on exactly as ``jobs.queue._pending_reviewers`` does, PR by PR: asking again keeps one's
    place, a removal then a request puts one last, a team, a review before the request or
    by another spelling does not answer, events after ``now`` do not count."""
    from jobs import queue as per_pr
    from jobs.metrics import columns
    from jobs.metrics.queue import waiting_on

    def asked(who: str, h: float) -> Any:
        if who.startswith("team:"):
            return event("review_requested", h, requested_team=who[5:])
        return event("review_requested", h, requested_reviewer=who)

    def removed(who: str, h: float) -> Any:
        return event("review_request_removed", h, requested_reviewer=who)

    prs = [
        pr(1, events=(asked("bob", 1), asked("carol", 2), asked("bob", 3))),
        pr(2, events=(asked("bob", 1), asked("carol", 2), removed("bob", 3), asked("bob", 4))),
        pr(3, events=(asked("bob", 5), asked("team:core", 6)),
           reviews=(review("bob", "COMMENTED", 4), review("Bob", "APPROVED", 7))),
        pr(4, events=(asked("bob", 1), asked("carol", 2)),
           reviews=(review("carol", "APPROVED", 2), review(None, "APPROVED", 3, author_type="Deleted"))),
        pr(5, events=(asked("bob", 1), removed("bob", 2))),
        pr(6, events=(asked("dave", 1), asked("erin", 120), removed("dave", 130)),
           reviews=(review("dave", "APPROVED", 150),)),
        pr(7),
        pr(8, events=(removed("bob", 1), asked("bob", 2), asked("team:core", 3), removed("erin", 4)),
           reviews=(review("bob", "COMMENTED", 1),)),
    ]
    cols = columns(prs, identity=IDENTITY)
    for now_h in (1.5, 3.5, 100.0, 200.0):
        order = np.array([7, 0, 5, 2, 1, 4, 3, 6])  # any PRs, in any order
        got = waiting_on(cols, order, now_us=at(now_h).timestamp() * 1e6)
        want = [per_pr._pending_reviewers(prs[k], now=at(now_h)) for k in order.tolist()]
        assert got == want
    assert waiting_on(cols, np.array([2, 7]), now_us=at(100).timestamp() * 1e6) == [
        ("bob", "team:core"), ("bob", "team:core")]
