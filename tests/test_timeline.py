"""Per-PR clocks (`/flow why`): hand-built timelines pin every docs/metrics.md definition."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.blocks.why import render_why
from jobs.durations import clock as clock_text
from jobs.durations import clock_number
from jobs.identity import Identity
from jobs.model import PullRequest, Review
from jobs.settings import IdentitySettings, WorkHours
from jobs.timeline import PRClocks, RequestResponse, pr_clocks, request_responses
from jobs.worktime import WorkCalendar
from tests.factories import T0, at, event, pr, review

IDENTITY = Identity(IdentitySettings())
UTC_CAL = WorkCalendar.for_team(WorkHours())  # UTC, Mon-Fri 09:00-17:00
BERLIN = ZoneInfo("Europe/Berlin")
NOW = at(24 * 90)


def clocks(p: PullRequest, *, now: datetime = NOW, calendar: WorkCalendar = UTC_CAL,
           required_approvals: int = 1) -> PRClocks:
    return pr_clocks(p, identity=IDENTITY, calendar=calendar, now=now,
                     required_approvals=required_approvals)


def stage_hours(c: PRClocks) -> list[float | None]:
    return [s.calendar_hours for s in c.stages]


def assert_stages_add_up(c: PRClocks) -> None:
    assert sum(s.calendar_hours or 0.0 for s in c.stages) == pytest.approx(
        c.lead_time.calendar_hours, abs=1e-9)
    assert sum(s.business_hours or 0.0 for s in c.stages) == pytest.approx(
        c.lead_time.business_hours, abs=1e-9)


def hours_from_t0(when: datetime) -> float:
    return (when - T0) / timedelta(hours=1)


# ---------------------------------------------------------------------- stages


def test_a_reviewed_pr_splits_its_lead_time_into_four_stages() -> None:
    """First commit to ready is coding, then pickup, review and merge wait, each with its events."""
    p = pr(first_commit=-2, merged=6,
           events=(event("review_requested", 0.5, actor="alice", requested_reviewer="bob"),),
           reviews=(review("bob", "COMMENTED", 3), review("bob", "APPROVED", 5)))
    c = clocks(p)
    assert stage_hours(c) == [2.0, 3.0, 2.0, 1.0]
    assert [s.business_hours for s in c.stages] == [0.0, 3.0, 2.0, 1.0]  # 07:00-09:00 is off hours
    assert c.lead_time.calendar_hours == 8.0 and c.lead_time.business_hours == 6.0
    assert c.coding.start is not None and c.coding.start.kind == "first_commit"
    assert c.pickup.start == c.ready_at and c.ready_at is not None
    assert c.ready_at.kind == "opened"
    assert c.pickup.stop is not None and (c.pickup.stop.kind, c.pickup.stop.who) == ("commented", "bob")
    assert c.review.stop is not None and c.review.stop.kind == "approved"
    assert c.merge.stop is not None and c.merge.stop.kind == "merged"
    assert c.first_request_at is not None and c.first_request_at.at == at(0.5)
    assert c.time_to_approval.calendar_hours == 5.0 and c.time_to_merge.calendar_hours == 6.0
    assert c.filters == ()
    assert_stages_add_up(c)


def test_draft_time_after_a_redraft_leaves_every_waiting_clock_and_counts_as_coding() -> None:
    """Opened as draft, readied, re-drafted and readied again: the draft spell is coding."""
    p = pr(first_commit=-2, merged=10,
           events=(event("ready_for_review", 2, actor="alice"),
                   event("convert_to_draft", 4, actor="alice"),
                   event("ready_for_review", 7, actor="alice")),
           reviews=(review("bob", "APPROVED", 9),))
    c = clocks(p)
    assert c.ready_at is not None and c.ready_at.at == at(2)  # the first ready_for_review
    assert c.events.opened_as_draft
    assert stage_hours(c) == [7.0, 4.0, 0.0, 1.0]  # coding 4 h + 3 h back in draft
    assert c.time_to_approval.calendar_hours == 4.0
    assert c.time_to_merge.calendar_hours == 5.0
    assert c.lead_time.calendar_hours == 12.0
    assert [(d.start.kind, d.stop.kind, d.calendar_hours) for d in c.drafts  # type: ignore[union-attr]
            ] == [("convert_to_draft", "ready_for_review", 3.0)]
    assert "draft time left out" in c.pickup.note
    assert any(f.startswith("back in draft 1x") for f in c.filters)
    assert_stages_add_up(c)


def test_an_open_pr_back_in_draft_pauses_its_waiting_clocks() -> None:
    """A PR converted back to draft and still a draft stops accruing pickup time."""
    p = pr(draft=True, events=(event("convert_to_draft", 3),))
    c = clocks(p, now=at(10))
    assert stage_hours(c) == [9.0, 3.0, 0.0, 0.0]
    assert c.pickup.running
    assert "back in draft now: waiting clocks paused" in c.filters


def test_an_ai_review_before_the_first_human_review_does_not_stop_pickup() -> None:
    """Copilot's review starts and stops its own clock; pickup waits for the human."""
    p = pr(merged=8, reviews=(
        review("copilot-pull-request-reviewer[bot]", "COMMENTED", 1, author_type="Bot"),
        review("bob", "APPROVED", 5)))
    c = clocks(p)
    assert c.first_ai_review_at is not None and c.first_ai_review_at.at == at(1)
    assert c.first_ai_review.calendar_hours == 1.0
    assert c.pickup.calendar_hours == 5.0
    assert c.first_human_review_at is not None and c.first_human_review_at.who == "bob"
    assert "AI review by copilot-pull-request-reviewer[bot] did not stop" in c.pickup.note


def test_a_pr_merged_with_no_review_has_pickup_end_at_merge() -> None:
    """No review: pickup runs to merge, review and merge wait collapse to zero."""
    c = clocks(pr(merged=4))
    assert stage_hours(c) == [2.0, 4.0, 0.0, 0.0]
    assert c.pickup.stop is not None and c.pickup.stop.kind == "merged"
    assert c.pickup.note == "no human review: pickup ends at merge"
    assert c.review.note == "no human review: zero"
    assert c.time_to_approval.calendar_hours is None
    assert c.time_to_approval.note == "never approved"
    assert c.time_to_merge.calendar_hours == 4.0
    assert c.first_ai_review.calendar_hours is None
    assert_stages_add_up(c)


def test_changes_requested_then_approved() -> None:
    """The request for changes starts review; the approval ends it."""
    p = pr(merged=7, reviews=(review("bob", "CHANGES_REQUESTED", 2), review("bob", "APPROVED", 6)))
    c = clocks(p)
    assert stage_hours(c)[1:] == [2.0, 4.0, 1.0]
    assert c.first_human_review_at is not None
    assert c.first_human_review_at.kind == "changes_requested"


def test_required_approvals_wait_for_no_outstanding_changes_requested() -> None:
    """With two approvals required, approval comes when two stand and no changes are pending."""
    p = pr(merged=8, reviews=(review("bob", "CHANGES_REQUESTED", 2), review("carol", "APPROVED", 5),
                              review("dave", "COMMENTED", 5.5), review("bob", "APPROVED", 6)))
    one = clocks(p)
    two = clocks(p, required_approvals=2)
    three = clocks(p, required_approvals=3)
    assert one.approved_at is not None and one.approved_at.at == at(5)  # first approval
    assert two.approved_at is not None and (two.approved_at.at, two.approved_at.who) == (at(6), "bob")
    assert three.approved_at is None
    assert three.review.note == "no approval: review runs to merge"
    assert stage_hours(three)[1:] == [2.0, 6.0, 0.0]
    assert "approval needs 2 approvals and no outstanding changes requested" in two.filters
    with pytest.raises(ValueError, match="at least 1"):
        clocks(p, required_approvals=0)


def test_deleted_account_reviews_count_as_human() -> None:
    """A review by a deleted account stops pickup and is attributed to no one."""
    p = pr(merged=5, reviews=(review(None, "APPROVED", 3, author_type="Deleted"),))
    c = clocks(p)
    assert c.pickup.calendar_hours == 3.0
    assert c.first_human_review_at is not None and c.first_human_review_at.who is None
    assert c.approved_at is not None and c.approved_at.at == at(3)
    assert any("deleted account" in f for f in c.filters)


def test_the_authors_own_and_plain_bot_reviews_stop_nothing() -> None:
    """Only reviews by someone else, human or AI, count."""
    p = pr(merged=6, reviews=(review("Alice", "COMMENTED", 1),
                              review("codecov[bot]", "COMMENTED", 2, author_type="Bot"),
                              review("bob", "PENDING", 2.5), review("bob", "DISMISSED", 3)))
    c = clocks(p)
    assert c.first_human_review_at is None and c.first_ai_review_at is None
    assert c.pickup.calendar_hours == 6.0


def test_a_review_while_still_a_draft_makes_pickup_zero() -> None:
    """Reviewed before ready for review: pickup is zero, review runs from ready."""
    p = pr(merged=9, events=(event("ready_for_review", 3),),
           reviews=(review("bob", "COMMENTED", 1), review("bob", "APPROVED", 6)))
    c = clocks(p)
    assert stage_hours(c) == [5.0, 0.0, 3.0, 3.0]
    assert c.pickup.note == "reviewed before ready for review: zero"
    assert_stages_add_up(c)


def test_a_review_after_merge_does_not_stretch_the_stages() -> None:
    """A post-merge review leaves pickup ending at merge."""
    c = clocks(pr(merged=3, reviews=(review("bob", "APPROVED", 5),)))
    assert stage_hours(c) == [2.0, 3.0, 0.0, 0.0]
    assert c.lead_time.calendar_hours == 5.0
    assert c.pickup.note == "no human review: pickup ends at merge"
    assert c.merge.note == "a review after merge does not count for the stages"
    assert_stages_add_up(c)


def test_an_open_pr_runs_its_clocks_to_now() -> None:
    """Still open: every running clock stops at now, and says so."""
    p = pr(reviews=(review("bob", "CHANGES_REQUESTED", 2),))
    c = clocks(p, now=at(5))
    assert c.state == "open"
    assert stage_hours(c) == [2.0, 2.0, 3.0, 0.0]
    assert c.review.running and c.review.stop is not None and c.review.stop.at == at(5)
    assert c.time_to_approval.running and c.time_to_approval.calendar_hours == 5.0
    assert c.time_to_merge.running and c.lead_time.running
    assert "still open: clocks running to now" in c.filters
    assert_stages_add_up(c)


def test_events_after_now_are_not_seen() -> None:
    """Read as of an earlier moment, a later merge and review have not happened yet."""
    p = pr(merged=8, reviews=(review("bob", "APPROVED", 6),))
    c = clocks(p, now=at(4))
    assert c.state == "open" and c.merged_at is None and c.approved_at is None
    assert c.pickup.calendar_hours == 4.0 and c.pickup.running


def test_a_never_ready_draft_is_all_coding() -> None:
    """A draft that was never readied waits on no one: its time is coding."""
    p = pr(draft=True, reviews=(review("bob", "COMMENTED", 1),))
    c = clocks(p, now=at(6))
    assert stage_hours(c) == [8.0, 0.0, 0.0, 0.0]
    assert c.ready_at is None
    assert c.time_to_merge.calendar_hours is None and c.time_to_merge.note == "never ready for review"
    assert "still a draft: not ready for review yet" in c.filters


def test_a_pr_closed_without_merging() -> None:
    """Closed unmerged: the stages stop at close; no lead time; left out of latency metrics."""
    c = clocks(pr(closed=5))
    assert c.state == "closed"
    assert stage_hours(c) == [2.0, 5.0, 0.0, 0.0]
    assert c.lead_time.calendar_hours is None and c.time_to_merge.calendar_hours is None
    assert "closed without merging: left out of latency metrics" in c.filters


def test_review_requests_before_ready_are_ignored_for_the_first_request() -> None:
    """A request made while still a draft does not count as the first request."""
    p = pr(events=(event("review_requested", 1, requested_reviewer="bob"),
                   event("ready_for_review", 2), event("review_requested", 3, requested_team="web")))
    c = clocks(p, now=at(4))
    assert c.first_request_at is not None and c.first_request_at.at == at(3)


def test_lead_time_starts_at_open_without_a_commit_time() -> None:
    """No first-commit time: coding starts when the PR was opened."""
    c = clocks(pr(first_commit=None, merged=2))
    assert c.coding.calendar_hours == 0.0 and c.lead_time.calendar_hours == 2.0
    assert "no commit time" in c.lead_time.note


def test_an_agent_draft_opened_before_its_first_commit_starts_coding_at_that_commit() -> None:
    """An agent opens an empty draft, commits 3 h later, readies at 5 h: coding is 2 h, not 5 h."""
    p = pr(author="copilot-swe-agent", author_type="Bot", draft=False, first_commit=3, merged=9,
           events=(event("ready_for_review", 5, actor="copilot-swe-agent"),),
           reviews=(review("bob", "APPROVED", 7),))
    c = clocks(p)
    assert c.coding.start is not None and c.coding.start.kind == "first_commit"
    assert c.coding.start.at == at(3)
    assert stage_hours(c) == [2.0, 2.0, 0.0, 2.0]
    assert c.lead_time.calendar_hours == 6.0 and c.lead_time.note == ""
    assert_stages_add_up(c)


def test_a_first_commit_authored_after_ready_starts_the_work_at_ready() -> None:
    """A history rewritten after ready: coding is zero and lead time starts at ready, so
    pickup is still measured from ready and the stages still add up."""
    c = clocks(pr(first_commit=2, merged=6, reviews=(review("bob", "APPROVED", 4),)))
    assert c.coding.start is not None and c.coding.start.kind == "opened"
    assert stage_hours(c) == [0.0, 4.0, 0.0, 2.0]
    assert c.lead_time.calendar_hours == 6.0
    assert "first commit authored after ready for review" in c.lead_time.note
    assert_stages_add_up(c)


# ---------------------------------------------------------------------- who counts


def test_a_bot_pr_is_flagged_as_left_out() -> None:
    """Dependabot's PRs are measured but marked as left out of latency metrics."""
    c = clocks(pr(author="dependabot[bot]", author_type="Bot", merged=1))
    assert c.bot_pr and not c.ai_assisted
    assert c.filters[0] == "bot PR: left out of latency metrics (counted apart)"


def test_an_ai_agent_pr_counts_like_a_humans_and_is_ai_assisted() -> None:
    """A PR by Copilot's coding agent is AI-assisted and not excluded as a bot PR."""
    c = clocks(pr(author="copilot-swe-agent", author_type="Bot", merged=3,
                  reviews=(review("bob", "APPROVED", 2),)))
    assert not c.bot_pr and c.ai_assisted and c.ai_agent_author
    assert c.ai_reasons == ("authored by AI agent copilot-swe-agent",)
    assert "AI-agent PR: counted like a human's PR" in c.filters
    assert c.pickup.calendar_hours == 2.0


def test_ai_assisted_by_label_or_co_author_trailer_and_not_by_a_human_co_author() -> None:
    """The label and an AI co-author trailer make a PR AI-assisted; a human co-author does not."""
    labelled = clocks(pr(labels=("AI-assisted",), merged=1))
    trailer = clocks(pr(co_authors=("Claude <noreply@anthropic.com>",), merged=1))
    human = clocks(pr(co_authors=("Bob Smith <bob@example.com>",), merged=1))
    assert labelled.ai_reasons == ("label \u201cAI-assisted\u201d",)
    assert "AI-assisted (label \u201cAI-assisted\u201d)" in labelled.filters
    assert trailer.ai_reasons == ("co-authored by Claude <noreply@anthropic.com>",)
    assert not human.ai_assisted and human.ai_reasons == ()


def test_size_and_bucket() -> None:
    """Size is additions plus deletions, bucketed XS..XL."""
    assert (clocks(pr(additions=40, deletions=10)).size_bucket, clocks(pr(additions=201,
            deletions=0)).size_bucket, clocks(pr(additions=900, deletions=1)).size_bucket) == (
        "XS", "M", "XL")


# ---------------------------------------------------------------------- calendars


def test_a_holiday_inside_pickup_counts_no_business_hours() -> None:
    """Readied the evening before Easter: pickup spans Good Friday to Easter Monday."""
    berlin = WorkCalendar.for_team(WorkHours(timezone="Europe/Berlin", holiday_country="DE"))
    ready = hours_from_t0(datetime(2026, 4, 2, 16, tzinfo=BERLIN))
    reviewed = hours_from_t0(datetime(2026, 4, 7, 10, tzinfo=BERLIN))
    c = clocks(pr(created=ready, first_commit=ready - 1, merged=reviewed + 1,
                  reviews=(review("bob", "APPROVED", reviewed),)), calendar=berlin)
    assert c.pickup.calendar_hours == reviewed - ready == 114.0
    assert c.pickup.business_hours == 2.0
    assert_stages_add_up(c)


def test_a_dst_switch_inside_pickup() -> None:
    """Friday 16:00 to Monday 10:00 over the March switch: 65 calendar hours, 2 business."""
    berlin = WorkCalendar.for_team(WorkHours(timezone="Europe/Berlin"))
    ready = hours_from_t0(datetime(2026, 3, 27, 16, tzinfo=BERLIN))
    reviewed = hours_from_t0(datetime(2026, 3, 30, 10, tzinfo=BERLIN))
    c = clocks(pr(created=ready, merged=reviewed + 2, reviews=(review("bob", "APPROVED", reviewed),)),
               calendar=berlin)
    assert c.pickup.calendar_hours == 65.0
    assert c.pickup.business_hours == 2.0


# ---------------------------------------------------------------------- requests


def responses(p: PullRequest, members: dict[str, set[str]] | None = None) -> list[RequestResponse]:
    return list(request_responses(p, identity=IDENTITY, team_members=members, calendar=UTC_CAL,
                                  now=NOW))


def test_a_re_request_is_measured_to_that_reviewers_next_review() -> None:
    """Each request, and the re-request after a review, runs to that reviewer's next review."""
    p = pr(merged=9, events=(
        event("review_requested", 1, actor="alice", requested_reviewer="Bob"),
        event("review_requested", 1, actor="alice", requested_reviewer="carol"),
        event("review_request_removed", 1.5, actor="alice", requested_reviewer="carol"),
        event("review_requested", 4, actor="alice", requested_reviewer="bob"),
    ), reviews=(review("bob", "CHANGES_REQUESTED", 2), review("bob", "APPROVED", 6)))
    first, carol, again = responses(p)
    assert (first.reviewer, first.is_rerequest, first.responded_at, first.calendar_hours) == (
        "bob", False, at(2), 1.0)
    assert first.requested_by == "alice" and not first.via_team
    assert carol.removed_before_review and carol.removed_at == at(1.5)
    assert carol.responded_at is None and carol.calendar_hours is None
    assert (again.is_rerequest, again.responded_at, again.responder, again.business_hours) == (
        True, at(6), "bob", 2.0)


def test_a_removal_after_the_answer_does_not_withdraw_the_request() -> None:
    """Taking a reviewer off after they answered leaves the answer standing."""
    p = pr(merged=9, events=(event("review_requested", 1, requested_reviewer="bob"),
                             event("review_request_removed", 3, requested_reviewer="bob")),
           reviews=(review("bob", "COMMENTED", 3),))
    (only,) = responses(p)
    assert only.responded_at == at(3) and not only.removed_before_review


def test_a_team_request_reaches_each_member_but_the_author() -> None:
    """A team request counts once per member; any member's next review answers it."""
    p = pr(merged=9, events=(event("review_requested", 1, actor="alice", requested_team="Web"),
                             event("review_requested", 5, actor="alice", requested_team="web")),
           reviews=(review("alice", "COMMENTED", 2), review("zed", "COMMENTED", 2.5),
                    review("carol", "APPROVED", 3)))
    rows = responses(p, {"web": {"Alice", "bob", "carol"}})
    assert [(r.reviewer, r.team, r.via_team, r.is_rerequest) for r in rows] == [
        ("bob", "web", True, False), ("carol", "web", True, False),
        ("bob", "web", True, True), ("carol", "web", True, True)]
    assert [(r.responder, r.calendar_hours) for r in rows[:2]] == [("carol", 2.0)] * 2
    assert rows[2].responded_at is None and rows[3].responded_at is None


def test_a_team_nobody_listed_is_one_unanswered_request() -> None:
    """Without the team's members, the request stays one record that no review can answer."""
    p = pr(merged=9, events=(event("review_requested", 1, requested_team="web"),
                             event("review_request_removed", 2, requested_team="web")),
           reviews=(review("carol", "APPROVED", 3),))
    (only,) = responses(p)
    assert (only.reviewer, only.team, only.is_rerequest, only.responded_at) == (
        None, "web", False, None)
    assert only.removed_at == at(2)


def test_earlier_reviews_and_team_requests_make_a_re_request() -> None:
    """Someone who already reviewed, or was already asked via a team, is re-requested."""
    p = pr(merged=9, events=(event("review_requested", 1, requested_team="web"),
                             event("review_requested", 2, requested_reviewer="bob"),
                             event("review_requested", 4, requested_reviewer="dave")),
           reviews=(review("dave", "COMMENTED", 3),))
    rows = responses(p, {"web": {"bob"}})
    assert [(r.reviewer, r.is_rerequest) for r in rows] == [
        ("bob", False), ("bob", True), ("dave", True)]


def test_a_deleted_accounts_review_answers_no_request() -> None:
    """A review by a deleted account cannot be the requested reviewer's answer."""
    p = pr(merged=9, events=(event("review_requested", 1, requested_reviewer="bob"),),
           reviews=(Review(None, "Deleted", "APPROVED", at(2)),))
    (only,) = responses(p)
    assert only.responded_at is None and not only.removed_before_review


def test_request_response_time_leaves_out_draft_time() -> None:
    """A reviewer is not waited on while the PR is (back) in draft."""
    back = pr(merged=12, events=(event("review_requested", 1, requested_reviewer="bob"),
                                 event("convert_to_draft", 2), event("ready_for_review", 5)),
              reviews=(review("bob", "APPROVED", 6),))
    opened_draft = pr(merged=12, events=(event("review_requested", 1, requested_reviewer="bob"),
                                         event("ready_for_review", 4)),
                      reviews=(review("bob", "APPROVED", 6),))
    assert [r.calendar_hours for r in responses(back)] == [2.0]
    assert [r.calendar_hours for r in responses(opened_draft)] == [2.0]


# ---------------------------------------------------------------------- invariant


@st.composite
def timelines(draw: st.DrawFn) -> PullRequest:
    q = st.integers(0, 4 * 24 * 8).map(lambda n: n / 4)  # quarter hours over eight days
    events = tuple(event(draw(st.sampled_from(["ready_for_review", "convert_to_draft",
                                               "review_requested"])), draw(q))
                   for _ in range(draw(st.integers(0, 5))))
    reviews = tuple(review(draw(st.sampled_from(["bob", "carol", "alice", None, "coderabbitai"])),
                           draw(st.sampled_from(["APPROVED", "CHANGES_REQUESTED", "COMMENTED"])),
                           draw(q)) for _ in range(draw(st.integers(0, 4))))
    end = draw(st.one_of(st.none(), q))
    return pr(first_commit=draw(st.one_of(st.none(), st.integers(-48, 10))),
              draft=draw(st.booleans()), merged=end if draw(st.booleans()) else None,
              closed=end, events=events, reviews=reviews)


@settings(max_examples=150, deadline=None)
@given(timelines(), st.integers(1, 3))
def test_the_four_stages_always_add_up_to_lead_time(p: PullRequest, required: int) -> None:
    """Whatever the timeline, stages are never negative and sum to lead time (both clocks)."""
    c = clocks(p, now=at(24 * 9), calendar=WorkCalendar.for_team(
        WorkHours(timezone="Europe/Berlin", holiday_country="DE")), required_approvals=required)
    assert all((s.calendar_hours or 0) >= 0 and (s.business_hours or 0) >= 0 for s in c.stages)
    if c.lead_time.calendar_hours is not None:
        assert_stages_add_up(c)
    for clock in c.clocks[1:]:  # coding also holds the draft spells after ready
        if clock.start is not None and clock.stop is not None and clock.calendar_hours:
            assert clock.calendar_hours <= (clock.stop.at - clock.start.at) / timedelta(hours=1)


# ---------------------------------------------------------------------- as shown


def test_why_shows_each_clock_as_measured_with_one_decimal_below_100_hours() -> None:
    """Pickup of 23.5 calendar h and time to approval of 10.5 working h read so in /flow why,
    not "24 h" and "10 h" (half-even rounding to whole hours)."""
    p = pr(first_commit=-2, merged=30, reviews=(review("bob", "COMMENTED", 23.5),
                                                review("bob", "APPROVED", 26.5)))
    c = clocks(p)
    assert (c.pickup.calendar_hours, c.time_to_approval.business_hours) == (23.5, 10.5)
    blocks, _ = render_why(p, c, now=NOW, tz=UTC_CAL.tz)
    body = str(blocks)
    assert "*pickup wait*: 8 working h (23.5 h)" in body
    assert "*time to approval*: 10.5 working h (26.5 h)" in body


def test_a_per_pr_clock_keeps_one_decimal_below_100_h_and_rounds_halves_up() -> None:
    """10.5 stays 10.5, 0.25 reads 0.3, 99.96 reads 100, and from 100 h calendar time is in days."""
    assert [clock_number(v) for v in (10.5, 23.5, 0.25, 99.94, 99.96, 100.5, 0.0)] == [
        "10.5", "23.5", "0.3", "99.9", "100", "101", "0"]
    assert clock_text(10.5, 23.5) == "10.5 working h (23.5 h)"
    assert clock_text(130.0, 220.0) == "130 working h (9.2 d)"
    assert clock_text(None, None) == "n/a"
