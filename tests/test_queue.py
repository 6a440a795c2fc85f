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
