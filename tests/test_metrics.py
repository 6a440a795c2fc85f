"""jobs.metrics: hand-built timelines pin each docs/metrics.md definition; generated PRs check the
vectorised tables against the per-PR reference (jobs.timeline) to 1e-9 hours."""

from __future__ import annotations

import math
from collections.abc import Mapping
import random
from datetime import date, datetime, timedelta

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

from jobs import metrics, timeline
from jobs.identity import Identity
from jobs.model import CheckRun, EventKind, PullRequest, Review, TimelineEvent
from jobs.settings import IdentitySettings, WorkHours
from jobs.worktime import WorkCalendar
from tests.factories import T0, at, check, event, pr, review

IDENTITY = Identity(IdentitySettings())
UTC_CAL = WorkCalendar.for_team(WorkHours())  # UTC, Mon-Fri 09:00-17:00
BERLIN = WorkCalendar.for_team(WorkHours(timezone="Europe/Berlin", holiday_country="DE"))
NOW = at(24 * 14)
TEAMS = {"core": ("bob", "carol", "dave", "alice")}
TOL = 1e-9


def table(prs: list[PullRequest], *, now: datetime = NOW, cal: WorkCalendar = UTC_CAL,
          required_approvals: int = 1) -> pd.DataFrame:
    return metrics.pr_table(prs, identity=IDENTITY, calendar=cal, now=now,
                            required_approvals=required_approvals)


def requests(prs: list[PullRequest], *, now: datetime = NOW, cal: WorkCalendar = UTC_CAL,
             teams: Mapping[str, tuple[str, ...]] = TEAMS) -> pd.DataFrame:
    return metrics.request_table(prs, identity=IDENTITY, team_members=teams, calendar=cal, now=now)


def row(prs: list[PullRequest], **kw: object) -> pd.Series:
    return table(prs, **kw).iloc[0]  # type: ignore[arg-type]


# ------------------------------------------------------------------ timeline and stages


def test_opened_ready_pr_stages_add_up_to_lead_time() -> None:
    """A reviewed, approved, merged PR splits its lead time into the four stages."""
    r = row([pr(events=(event("review_requested", 1, requested_reviewer="bob"),),
                reviews=(review("bob", "COMMENTED", 3), review("bob", "APPROVED", 5)),
                merged=6, first_commit=-2)])
    assert r["ready_at"] == T0 and r["first_request_at"] == at(1)
    assert (r["coding_h"], r["pickup_h"], r["review_h"], r["merge_h"]) == (2, 3, 2, 1)
    assert r["lead_h"] == 8 and r["pickup_wait_h"] == 3
    assert r["time_to_approval_h"] == 5 and r["time_to_merge_h"] == 6


def test_agent_draft_opened_before_its_first_commit_agrees_with_why() -> None:
    """An agent PR opened as an empty draft starts coding and lead time at its first commit,
    in the team table as in `/flow why`, also for the long-history case (commit after ready)."""
    prs = [
        pr(1, author="copilot-swe-agent", author_type="Bot", first_commit=3, merged=9,
           events=(event("ready_for_review", 5),), reviews=(review("bob", "APPROVED", 7),)),
        pr(2, first_commit=2, merged=6, reviews=(review("bob", "APPROVED", 4),)),
        pr(3, first_commit=None, merged=4),
    ]
    t = table(prs)
    assert list(t["coding_h"]) == [2.0, 0.0, 0.0]
    assert list(t["lead_h"]) == [6.0, 6.0, 4.0]
    for p, (_, r) in zip(prs, t.iterrows(), strict=True):
        ref = timeline.pr_clocks(p, identity=IDENTITY, calendar=UTC_CAL, now=NOW)
        assert (ref.coding.calendar_hours, ref.lead_time.calendar_hours) == (r["coding_h"], r["lead_h"])
        assert (ref.coding.business_hours, ref.lead_time.business_hours) == (r["coding_bh"], r["lead_bh"])


def test_draft_readied_redrafted_and_readied_again_leaves_draft_time_out() -> None:
    """Time back in draft after ready leaves pickup and counts as coding; stages still add up."""
    r = row([pr(draft=False, first_commit=-1, events=(
        event("ready_for_review", 2), event("convert_to_draft", 3), event("convert_to_draft", 3.5),
        event("ready_for_review", 7)), reviews=(review("bob", "APPROVED", 9),), merged=10)])
    assert r["ready_at"] == at(2)
    assert r["draft_h"] == 4
    assert r["pickup_h"] == 7 - 4  # ready 2 -> review 9, less 4 h back in draft
    assert r["coding_h"] == 3 + 4  # first commit -1 -> ready 2, plus the draft time
    assert r["coding_h"] + r["pickup_h"] + r["review_h"] + r["merge_h"] == r["lead_h"] == 11
    assert r["time_to_merge_h"] == 8 - 4 + 0


def test_never_ready_draft_has_no_waiting_clocks() -> None:
    """A PR still in draft has not arrived for review: no pickup, approval or merge clock."""
    r = row([pr(draft=True)])
    assert pd.isna(r["ready_at"]) and math.isnan(r["time_to_merge_h"])
    assert math.isnan(r["pickup_wait_h"]) and r["pickup_h"] == 0
    assert r["coding_h"] == r["lead_h"]


def test_ai_review_before_human_review_does_not_stop_pickup() -> None:
    """An AI review has its own clock; pickup waits for the first human; bot reviews stop nothing."""
    r = row([pr(reviews=(review("github-actions[bot]", "COMMENTED", 1, author_type="Bot"),
                         review("copilot-pull-request-reviewer", "COMMENTED", 2, author_type="Bot"),
                         review("bob", "APPROVED", 6)), merged=7)])
    assert r["first_ai_review_at"] == at(2) and r["first_ai_review_h"] == 2
    assert r["first_human_review_at"] == at(6) and r["pickup_h"] == 6


def test_merged_with_no_review_enters_time_to_merge_only() -> None:
    """No review: pickup runs to merge, review and merge wait are zero, no pickup latency."""
    t = table([pr(merged=5)])
    r = t.iloc[0]
    assert (r["pickup_h"], r["review_h"], r["merge_h"]) == (5, 0, 0)
    assert math.isnan(r["pickup_wait_h"]) and math.isnan(r["time_to_approval_h"])
    week = metrics.window(t, NOW, 30)
    assert metrics.pr_latency(week, "pickup").calendar.count == 0
    assert metrics.pr_latency(week, "merge").calendar.count == 1


def test_changes_requested_then_approved_splits_review_into_turns() -> None:
    """After a request for changes the author holds the turn until they push."""
    r = row([pr(events=(event("head_pushed", 5, sha="b"),),
                reviews=(review("bob", "CHANGES_REQUESTED", 2), review("bob", "APPROVED", 8)),
                merged=9)])
    assert r["approved_at"] == at(8) and r["review_h"] == 6
    assert r["author_turn_h"] == 3 and r["reviewer_turn_h"] == 3
    assert r["handoff_h"] == 2 + 3 + 1


def test_self_review_and_deleted_account_reading() -> None:
    """The author's own comment stops nothing; a deleted account's review counts as human."""
    r = row([pr(reviews=(review("Alice", "COMMENTED", 1), review(None, "APPROVED", 4,
                                                                 author_type="Deleted")), merged=5)])
    assert r["first_human_review_at"] == at(4) and pd.isna(r["first_reviewer"])
    assert r["approved_at"] == at(4)


def test_two_required_approvals_wait_for_outstanding_changes() -> None:
    """With two approvals required, approval comes once two stand and no changes are asked."""
    prs = [pr(reviews=(review("bob", "APPROVED", 1), review("carol", "CHANGES_REQUESTED", 2),
                       review("dave", "APPROVED", 3), review("carol", "APPROVED", 5)), merged=6)]
    assert row(prs)["approved_at"] == at(1)
    assert row(prs, required_approvals=2)["approved_at"] == at(5)


def test_business_hours_skip_weekend_holiday_and_follow_dst() -> None:
    """Business hours use the team's zone, working days and holidays (Berlin, Easter 2026)."""
    # Thursday 2 April 2026 16:00 Berlin (CEST) -> Tuesday 7 April 10:00: Good Friday and
    # Easter Monday are holidays, so 1 h on Thursday + 1 h on Tuesday
    start = datetime.fromisoformat("2026-04-02T14:00:00+00:00")
    p = pr(created=(start - T0).total_seconds() / 3600, first_commit=None,
           reviews=(Review("bob", "User", "APPROVED", datetime.fromisoformat("2026-04-07T08:00:00+00:00")),),
           merged=(datetime.fromisoformat("2026-04-07T09:00:00+00:00") - T0).total_seconds() / 3600)
    r = row([p], cal=BERLIN, now=datetime.fromisoformat("2026-04-10T00:00:00+00:00"))
    assert r["pickup_bh"] == pytest.approx(2.0)
    assert r["pickup_h"] == pytest.approx(4 * 24 + 18)
    # DST: Friday 27 March 16:00 CET -> Monday 30 March 10:00 CEST = 1 + 1 working hours
    s2 = datetime.fromisoformat("2026-03-27T15:00:00+00:00")
    p2 = pr(created=(s2 - T0).total_seconds() / 3600, first_commit=None,
            reviews=(Review("bob", "User", "APPROVED", datetime.fromisoformat("2026-03-30T08:00:00+00:00")),),
            merged=(datetime.fromisoformat("2026-03-30T09:00:00+00:00") - T0).total_seconds() / 3600)
    r2 = row([p2], cal=BERLIN, now=datetime.fromisoformat("2026-04-10T00:00:00+00:00"))
    assert r2["pickup_bh"] == pytest.approx(2.0) and r2["pickup_h"] == pytest.approx(65.0)


def test_open_and_closed_prs_and_events_after_now() -> None:
    """Open PRs' clocks run to now; a PR closed unmerged has no lead or merge time; the future
    is ignored."""
    now = at(10)
    t = table([pr(1, reviews=(review("bob", "APPROVED", 12),)),
               pr(2, closed=4, reviews=(review("bob", "COMMENTED", 2),)),
               pr(3, merged=20)], now=now)
    open_, closed, future = (t.iloc[i] for i in range(3))
    assert open_["state"] == "open" and pd.isna(open_["approved_at"])
    assert open_["time_to_approval_h"] == 10 and open_["pickup_h"] == 10
    assert math.isnan(open_["pickup_wait_h"])  # still waiting: no stop event yet
    assert closed["state"] == "closed" and math.isnan(closed["lead_h"])
    assert math.isnan(closed["time_to_merge_h"]) and closed["pickup_wait_h"] == 2
    assert future["state"] == "open" and pd.isna(future["merged_at"])


def test_request_on_a_draft_waits_only_once_ready() -> None:
    """A request made while the PR is still a draft starts waiting when it becomes ready."""
    r = requests([pr(draft=False, events=(event("review_requested", 1, requested_reviewer="bob"),
                                          event("ready_for_review", 3)),
                     reviews=(review("bob", "APPROVED", 5),))])
    assert r["response_h"].tolist() == [2.0]


def test_bot_and_ai_agent_prs() -> None:
    """A dependency bot's PR is left out of the window; an AI agent's PR counts, AI-assisted."""
    t = table([pr(1, author="dependabot[bot]", author_type="Bot", merged=3),
               pr(2, author="copilot-swe-agent", merged=3, reviews=(review("bob", "APPROVED", 1),)),
               pr(3, labels=("ai-assisted",), merged=3),
               pr(4, co_authors=("Bob <bob@example.com>",), merged=3)])
    assert t["bot"].tolist() == [True, False, False, False]
    assert t["ai_assisted"].tolist() == [False, True, True, False]
    week = metrics.window(t, NOW, 30)
    assert week["number"].tolist() == [2, 3, 4]
    ai, other = metrics.ai_split(week, "merge")
    assert (ai.calendar.count, other.calendar.count) == (2, 1)


def test_size_buckets() -> None:
    """Size is additions + deletions in XS/S/M/L/XL buckets, edges inclusive."""
    sizes = np.array([0, 50, 51, 200, 201, 400, 401, 800, 801])
    assert metrics.size_buckets(sizes).tolist() == ["XS", "XS", "S", "S", "M", "M", "L", "L", "XL"]


# ------------------------------------------------------------------ aggregates


def test_latency_percentiles_interpolate_linearly() -> None:
    """p50/p75/p90 interpolate between closest ranks; NaN (no stop event) is left out."""
    lat = metrics.latency(pd.Series([1.0, 2.0, 3.0, 4.0, np.nan]), pd.Series([1.0, 1.0, 1.0, 1.0, np.nan]))
    assert (lat.calendar.count, lat.calendar.p50, lat.calendar.p75, lat.calendar.p90) == (4, 2.5, 3.25, 3.7)
    empty = metrics.latency(pd.Series([], dtype=float), pd.Series([], dtype=float))
    assert empty.calendar.count == 0 and empty.calendar.p50 is None


def test_percentiles_are_numpys_to_the_last_bit() -> None:
    """Every percentile a snapshot shows is exactly np.percentile's (linear), on any sample."""
    rng = np.random.default_rng(14)
    for i in range(3000):
        n = int(rng.integers(1, 80))
        values = [rng.random(n) * 100, rng.exponential(30, n), np.round(rng.random(n) * 10, 1),
                  rng.standard_cauchy(n) * 1e6][i % 4]
        for qs in ((50, 75, 90), (50, 90), (0, 100), (33.3,)):
            assert metrics.percentiles(values, qs) == tuple(float(v) for v in np.percentile(values, qs))
        lat = metrics.latency(values, values)
        assert (lat.calendar.p50, lat.calendar.p75, lat.calendar.p90) == tuple(
            float(v) for v in np.percentile(values, (50, 75, 90)))


def test_window_takes_prs_merged_inside_it() -> None:
    """The window holds PRs merged in the last N days, not those merged before or still open."""
    t = table([pr(1, merged=24 * 13), pr(2, merged=24 * 2), pr(3)])
    assert metrics.window(t, NOW, 7)["number"].tolist() == [1]
    by_repo = metrics.latency_by(metrics.window(t, NOW, 14), "repo", "merge")
    assert [k for k, _ in by_repo] == ["acme/api"] and by_repo[0][1].calendar.count == 2
    narrow = metrics.window(t, NOW, 14, ["number", "state", "lead_h"])  # only the columns read
    pd.testing.assert_frame_equal(narrow, metrics.window(t, NOW, 14)[["number", "state", "lead_h"]]
                                  .reset_index(drop=True), check_exact=True)


def test_team_request_expands_to_members_and_any_member_answers() -> None:
    """A team request reaches each member but the author; the first member's review answers."""
    r = requests([pr(events=(event("review_requested", 1, requested_team="core"),),
                     reviews=(review("carol", "COMMENTED", 4),))])
    assert sorted(r["reviewer"]) == ["bob", "carol", "dave"]
    assert r["via_team"].all() and not r["is_rerequest"].any()
    assert (r["responded_at"] == at(4)).all() and (r["response_h"] == 3).all()
    lat = metrics.request_latency(r, NOW, 30)
    assert lat.calendar.count == 1  # one request, whatever the number of members


def test_rerequest_removed_request_and_unknown_team() -> None:
    """A second request to the same reviewer is a re-request; a withdrawn one has no response."""
    r = requests([pr(events=(
        event("review_requested", 1, requested_reviewer="bob"),
        event("review_requested", 1.5, requested_reviewer="dave"),
        event("review_request_removed", 2, requested_reviewer="dave"),
        event("review_requested", 3, requested_team="platform"),
        event("review_requested", 6, requested_reviewer="Bob")),
        reviews=(review("bob", "CHANGES_REQUESTED", 4), review("erin", "APPROVED", 7)))])
    assert r["reviewer"].tolist()[:2] == ["bob", "dave"]
    assert r["is_rerequest"].tolist() == [False, False, False, True]
    assert r["responded_at"].tolist()[:2] == [at(4), pd.NaT]
    assert r["removed_at"].iloc[1] == at(2)
    # a team nobody listed: one row with no reviewer, and nobody to answer it
    assert pd.isna(r.iloc[2]["reviewer"]) and pd.isna(r.iloc[2]["responded_at"])
    assert pd.isna(r.iloc[3]["responded_at"])  # bob has not reviewed since being asked again


def test_reviewer_loads_count_requests_switches_and_focus() -> None:
    """Interruptions per reviewer: direct, via team, re-requests, context switches, focus cost."""
    prs = [
        pr(1, events=(event("review_requested", 1, requested_reviewer="bob"),
                      event("review_requested", 2, requested_team="core"),
                      event("review_requested", 5, requested_reviewer="bob")),
           reviews=(review("bob", "COMMENTED", 3),)),
        pr(2, author="carol", events=(event("review_requested", 1, requested_reviewer="bob"),),
           reviews=(review("bob", "APPROVED", 4),)),
        pr(3, author="dependabot[bot]", author_type="Bot",
           events=(event("review_requested", 1, requested_reviewer="bob"),),
           reviews=(review("bob", "APPROVED", 6),)),
    ]
    now = at(24)
    reqs = requests(prs, now=now)
    revs = metrics.review_table(prs, identity=IDENTITY, calendar=UTC_CAL, now=now)
    loads = metrics.reviewer_loads(reqs, revs, now=now, window_days=7, recovery_minutes=23,
                                   slack_ids={"Bob": "U123"}, members=TEAMS["core"])
    bob = loads[0]
    assert bob.login == "bob" and bob.slack_id == "U123"
    # bob was already asked on PR 1, so the team request and the later one are re-requests
    assert (bob.requests_direct, bob.requests_via_team, bob.re_requests) == (3, 0, 2)
    assert bob.context_switches == 2  # three PRs reviewed on Monday
    assert bob.reviews == 3 and bob.pending == 1  # asked again on PR 1 and not answered yet
    assert bob.focus_hours == pytest.approx((3 + 0 + 2 + 2) * 23 / 60)
    assert bob.requests_per_day == 5  # requests on the bot's PR count too
    assert [(x.login, x.requests_via_team) for x in loads[1:]] == [("carol", 1), ("dave", 1)]
    assert metrics.load_concentration(loads) == pytest.approx(6 / 7)  # bob 5, carol 1 of 7


def test_ci_failure_and_rerun_rates() -> None:
    """Failure rate is failed / completed attempts; rerun rate is runs with a 2nd attempt / runs."""
    checks = (
        check("build", run_id=1, attempt=1, created=0, started=0.1, completed=0.6, conclusion="failure"),
        check("build", run_id=1, attempt=2, created=1, started=1.5, completed=2, conclusion="success"),
        check("build", run_id=2, attempt=1, created=3, started=3.1, completed=3.6, conclusion="success"),
        check("build", run_id=3, attempt=1, created=4, started=None, completed=None, conclusion=None),
        check("lint", run_id=4, attempt=1, created=0, started=0.05, completed=0.1),
    )
    t = metrics.check_table([pr(checks=checks, author="dependabot[bot]", author_type="Bot")])
    assert t["bot"].all() and t.loc[t["attempt"] == 2, "queue_min"].item() == pytest.approx(30)
    stats = {w.name: w for w in metrics.workflow_stats(t, since=at(-1), until=NOW)}
    build = stats["build"]
    assert build.attempts == 4 and build.failure_rate == pytest.approx(1 / 3)
    assert build.rerun_rate == pytest.approx(1 / 3)
    assert build.run_p50_min == pytest.approx(30) and build.queue_p90_min == pytest.approx(25.2)
    assert [w.name for w in metrics.workflow_stats(t, since=at(-1), until=NOW)] == ["build", "lint"]


def test_ci_counts_runs_as_people_do_beside_attempts_and_runs_in_progress() -> None:
    """A rerun is one run with two attempts; a run counts as in progress while its latest
    attempt has not completed (a finished first attempt of a running rerun does not count)."""
    checks = (
        check("build", run_id=1, attempt=1, created=0, started=0.1, completed=0.6, conclusion="failure"),
        check("build", run_id=1, attempt=2, created=1, started=1.5, completed=2, conclusion="success"),
        check("build", run_id=2, attempt=1, created=3, started=3.1, completed=3.6, conclusion="failure"),
        check("build", run_id=2, attempt=2, created=4, started=None, completed=None, conclusion=None),
        check("build", run_id=3, attempt=1, created=4, started=4.1, completed=None, conclusion=None),
        check("build", run_id=4, attempt=1, created=5, started=5.1, completed=5.5),
    )
    t = metrics.check_table([pr(checks=checks)])
    (build,) = metrics.workflow_stats(t, since=at(-1), until=NOW)
    assert (build.attempts, build.runs, build.in_progress) == (6, 4, 2)
    assert build.rerun_rate == pytest.approx(2 / 4)
    # seen from before run 4's attempt completed, it was running then too
    (then,) = metrics.workflow_stats(t, since=at(-1), until=at(5.2))
    assert (then.attempts, then.runs, then.in_progress) == (6, 4, 3)


def test_ci_wait_is_the_union_of_attempts_between_ready_and_merge() -> None:
    """Overlapping CI attempts count once; CI before ready does not count."""
    checks = (check(created=-1, started=-0.5, completed=0.5), check(created=1, started=1, completed=3),
              check(run_id=2, created=2, started=2, completed=4))
    r = row([pr(checks=checks, merged=6, reviews=(review("bob", "APPROVED", 5),))])
    assert r["ci_wait_h"] == pytest.approx(0.5 + 3)
    assert metrics.ci_wait_hours(table([pr(checks=checks, merged=6)]), now=NOW, days=30) == pytest.approx(3.5)


def test_flow_days_balance_arrivals_and_completions() -> None:
    """Arrivals are PRs becoming ready; completions first approvals or merges without one."""
    prs = [pr(1, created=0, reviews=(review("bob", "APPROVED", 26),), merged=50),
           pr(2, created=1, merged=30),
           pr(3, created=25, draft=True),
           pr(4, created=2, author="renovate[bot]", author_type="Bot", merged=3)]
    days = metrics.flow_days(table(prs), calendar=UTC_CAL, since=T0, until=at(72))
    # Monday 09:00 to Thursday 09:00 touches four local dates
    assert [d.day for d in days] == [date(2026, 3, d) for d in (2, 3, 4, 5)]
    assert [(d.arrivals, d.completions) for d in days] == [(2, 0), (0, 2), (0, 0), (0, 0)]


def test_size_mix_shares() -> None:
    """The size mix is each bucket's share of the non-bot PRs merged in the period."""
    prs = [pr(1, additions=10, merged=5), pr(2, additions=300, merged=5), pr(3, additions=10, merged=5)]
    mix = dict(metrics.size_mix(table(prs), since=T0, until=NOW))
    assert mix["XS"] == pytest.approx(2 / 3) and mix["M"] == pytest.approx(1 / 3) and mix["XL"] == 0
    assert metrics.size_mix(table(prs), since=NOW, until=NOW + timedelta(days=7)) == ()


def test_empty_inputs_give_empty_tables_and_aggregates() -> None:
    """No PRs: empty tables and empty aggregates, never an error."""
    t = table([])
    assert t.empty and "pickup_h" in t.columns
    r = requests([])
    revs = metrics.review_table([], identity=IDENTITY, calendar=UTC_CAL, now=NOW)
    assert metrics.reviewer_loads(r, revs, now=NOW) == ()
    assert metrics.load_concentration(()) is None
    assert metrics.workflow_stats(metrics.check_table([]), since=T0, until=NOW) == ()
    assert metrics.pr_latency(metrics.window(t, NOW, 7), "pickup").calendar.count == 0
    assert all(d.arrivals == 0 for d in metrics.flow_days(t, calendar=UTC_CAL, since=T0, until=NOW))


# ------------------------------------------------------------------ agreement with jobs.timeline


LOGINS = ("alice", "bob", "Carol", "dave", "erin", "copilot-pull-request-reviewer",
          "coderabbitai[bot]", "github-actions[bot]", None)
STATES = ("APPROVED", "CHANGES_REQUESTED", "COMMENTED", "DISMISSED", "PENDING")


def generated_prs(seed: int, n: int) -> list[PullRequest]:
    """Random but plausible PRs that hit every reading: drafts, ties, late events, bots."""
    rnd = random.Random(seed)
    out: list[PullRequest] = []

    def t(lo: float, hi: float) -> datetime:
        return at(round(rnd.uniform(lo, hi) * 4) / 4)  # quarter hours: ties happen

    for i in range(n):
        created = rnd.uniform(0, 300)
        author = rnd.choice(("alice", "bob", "Carol", "copilot-swe-agent", "dependabot[bot]", None))
        atype = "Bot" if author and author.endswith("[bot]") else ("Deleted" if author is None else "User")
        events: list[TimelineEvent] = []
        for _ in range(rnd.randint(0, 10)):
            kinds: tuple[EventKind, ...] = ("ready_for_review", "convert_to_draft", "review_requested",
                                            "review_requested", "review_request_removed", "head_pushed")
            kind = rnd.choice(kinds)
            e_at = t(created - 5, created + 120)
            if kind in ("review_requested", "review_request_removed"):
                if rnd.random() < 0.3:
                    events.append(TimelineEvent(kind, e_at, requested_team=rnd.choice(("core", "Core", "platform"))))
                else:
                    events.append(TimelineEvent(kind, e_at, requested_reviewer=rnd.choice(LOGINS[:6])))
            else:
                events.append(TimelineEvent(kind, e_at))
        reviews = [
            Review(a, "Deleted" if a is None else ("Bot" if a and "[bot]" in a else "User"),
                   rnd.choice(STATES), t(created - 2, created + 150))  # type: ignore[arg-type]
            for a in (rnd.choice(LOGINS) for _ in range(rnd.randint(0, 6)))
        ]
        fate = rnd.random()
        merged = closed = None
        if fate < 0.6:
            merged = closed = t(created + 1, created + 200)
        elif fate < 0.7:
            closed = t(created + 1, created + 200)
        checks = [
            CheckRun(rnd.choice(("build", "test")), rnd.randint(1, 4), rnd.randint(1, 2), "abc",
                     c, c + timedelta(minutes=5), c + timedelta(minutes=rnd.randint(5, 400))
                     if rnd.random() < 0.9 else None, rnd.choice(("success", "failure", None)))
            for c in (t(created - 3, created + 100) for _ in range(rnd.randint(0, 4)))
        ]
        out.append(PullRequest(
            repo=rnd.choice(("acme/api", "acme/web")), number=i + 1, title=f"PR {i}", url=f"u{i}",
            author=author, author_type=atype, draft=rnd.random() < 0.15,  # type: ignore[arg-type]
            created_at=at(created), updated_at=at(created), closed_at=closed, merged_at=merged,
            head_sha="abc", base_ref="main", additions=rnd.randint(0, 900), deletions=rnd.randint(0, 100),
            changed_files=1, labels=("ai-assisted",) if rnd.random() < 0.1 else (),
            first_commit_at=None if rnd.random() < 0.2 else at(created + rnd.uniform(-48, 3)),
            events=tuple(events), reviews=tuple(reviews), checks=tuple(checks),
        ))
    return out


def _same(a: float | None, b: float) -> bool:
    if a is None:
        return bool(np.isnan(b))
    return not np.isnan(b) and abs(a - b) <= TOL


def _at(ref: timeline.EventRef | None) -> object:
    return pd.NaT if ref is None else pd.Timestamp(ref.at)


@pytest.mark.parametrize("required", [1, 2, 3])
def test_pr_table_agrees_with_timeline_on_generated_prs(required: int) -> None:
    """Every clock of every generated PR matches jobs.timeline to 1e-9 h (calendar and business)."""
    now = at(24 * 9)
    prs = generated_prs(seed=required, n=1200)
    t = metrics.pr_table(prs, identity=IDENTITY, calendar=BERLIN, now=now, required_approvals=required)
    clocks = {
        "coding": "coding", "pickup": "pickup", "review": "review", "merge": "merge",
        "lead_time": "lead", "time_to_approval": "time_to_approval",
        "time_to_merge": "time_to_merge", "first_ai_review": "first_ai_review",
    }
    for p, (_, r) in zip(prs, t.iterrows(), strict=True):
        ref = timeline.pr_clocks(p, identity=IDENTITY, calendar=BERLIN, now=now, required_approvals=required)
        for name in ("ready_at", "first_request_at", "first_human_review_at", "first_ai_review_at",
                     "approved_at", "merged_at", "closed_at"):
            assert _at(getattr(ref, name)) is r[name] or _at(getattr(ref, name)) == r[name], (p.key, name)
        assert ref.state == r["state"] and ref.bot_pr == r["bot"] and ref.ai_assisted == r["ai_assisted"]
        assert ref.size_bucket == r["size_bucket"]
        for attr, col in clocks.items():
            clock = getattr(ref, attr)
            assert _same(clock.calendar_hours, r[col + "_h"]), (p.key, attr, clock, r[col + "_h"])
            assert _same(clock.business_hours, r[col + "_bh"]), (p.key, attr, clock, r[col + "_bh"])
        review_at = ref.first_human_review_at
        end = ref.events.end.at
        reviewed = ref.ready_at is not None and ref.ready_at.at <= end and review_at is not None \
            and review_at.at <= end
        assert _same(ref.pickup.calendar_hours if reviewed else None, r["pickup_wait_h"]), p.key


def test_request_table_agrees_with_timeline_on_generated_prs() -> None:
    """Every request row matches jobs.timeline.request_responses (re-request, answer, hours)."""
    now = at(24 * 9)
    prs = generated_prs(seed=7, n=1500)
    teams = {"core": ("bob", "Carol", "alice", "dave"), "empty": ()}
    t = metrics.request_table(prs, identity=IDENTITY, team_members=teams, calendar=BERLIN, now=now)
    got = {k: g for k, g in t.groupby("key", sort=False)}  # noqa: C416 - dict() would call GroupBy.keys, a column name
    for p in prs:
        ref = timeline.request_responses(p, identity=IDENTITY, team_members=teams, calendar=BERLIN, now=now)
        rows = got.get(p.key)
        mine = [] if rows is None else [
            (m["requested_at"], None if pd.isna(m["reviewer"]) else m["reviewer"], m)
            for _, m in rows.iterrows()
        ]
        mine.sort(key=lambda x: (x[0], x[2]["request_id"], str(x[1])))
        expect = sorted(ref, key=lambda r: (r.requested_at, str(r.reviewer)))
        assert [(a, b) for a, b, _ in mine] == [(r.requested_at, r.reviewer) for r in expect] or \
            sorted((a, str(b)) for a, b, _ in mine) == sorted((r.requested_at, str(r.reviewer)) for r in ref), p.key
        by_id: dict[tuple[object, object], list[timeline.RequestResponse]] = {}
        for r in ref:
            by_id.setdefault((r.requested_at, r.reviewer), []).append(r)
        for when, who, m in mine:
            r = by_id[(when, who)].pop(0)
            assert bool(m["via_team"]) == r.via_team and bool(m["is_rerequest"]) == r.is_rerequest, (p.key, r)
            assert (pd.isna(m["responded_at"]) and r.responded_at is None) or m["responded_at"] == r.responded_at, (p.key, r)
            assert (pd.isna(m["removed_at"]) and r.removed_at is None) or m["removed_at"] == r.removed_at, (p.key, r)
            assert _same(r.calendar_hours, m["response_h"]) and _same(r.business_hours, m["response_bh"]), (p.key, r)


def test_tables_are_built_as_pandas_builds_them() -> None:
    """The fast table builder gives the frame pandas' constructor gives, column types included."""
    from jobs.metrics import _columns

    data = {
        "repo": np.array(["acme/api", "acme/web", None], dtype=object),
        "number": np.array([1, 2, 3], dtype=np.int64),
        "kind": np.array([0, 1, 2], dtype=np.int8),
        "state": np.where(np.array([True, False, True]), "merged", "open"),
        "bot": np.array([True, False, False]),
        "hours": np.array([1.5, np.nan, 0.0]),
        "merged_at": _columns.to_datetimes(np.array([1.7e15, np.nan, 1.7e15 + 1])),
        "day": np.array(["2026-03-02", "NaT", "2026-03-01"], dtype="datetime64[D]"),
    }
    fast, public = _columns.frame(data), _columns._frame_public(data)
    pd.testing.assert_frame_equal(fast, public, check_exact=True)
    assert list(fast.dtypes) == list(public.dtypes)
    assert fast["repo"].dtype == object  # no string inference
    coded = _columns.frame({"state": _columns.text_column(("merged", "open"), np.array([0, 1, 0]))})
    pd.testing.assert_frame_equal(coded, _columns._frame_public({"state": data["state"]}),
                                  check_exact=True)


class _PairsOnly:
    """A team calendar offering only ``business_hours`` (span by span), as a fake would."""

    def __init__(self, calendar: WorkCalendar) -> None:
        self._calendar = calendar
        self.tz = calendar.tz

    def business_hours(self, starts: object, ends: object) -> npt.NDArray[np.float64]:
        return self._calendar.business_hours(starts, ends)


def test_spans_sharing_their_ends_measure_each_instant_once_to_the_same_bits() -> None:
    """Measured through ``WorkCalendar.worked_ns`` (each shared start or end array once), the
    tables' hours are exactly those of ``business_hours`` span by span: draft time, open
    clocks, DST and holidays in a Berlin calendar."""
    now = at(24 * 9)
    prs = generated_prs(seed=11, n=800)
    for required in (1, 2):
        fast = metrics.pr_table(prs, identity=IDENTITY, calendar=BERLIN, now=now,
                                required_approvals=required)
        slow = metrics.pr_table(prs, identity=IDENTITY, calendar=_PairsOnly(BERLIN), now=now,
                                required_approvals=required)
        pd.testing.assert_frame_equal(fast, slow, check_exact=True)
    teams = {"core": ("bob", "Carol", "alice", "dave")}
    fast = metrics.request_table(prs, identity=IDENTITY, team_members=teams, calendar=BERLIN, now=now)
    slow = metrics.request_table(prs, identity=IDENTITY, team_members=teams,
                                 calendar=_PairsOnly(BERLIN), now=now)
    pd.testing.assert_frame_equal(fast, slow, check_exact=True)
    assert fast["response_bh"].notna().sum() > 100


def test_membership_of_logins_is_pandas_isin() -> None:
    """``among`` answers as ``pd.Series.isin`` does: exact strings, None and case included."""
    from jobs.metrics._columns import among

    values = np.array(["bob", None, "Bob", "carol", "", "team:core", "bob"], dtype=object)
    for allowed in ({"bob", "team:core"}, frozenset({"success", "skipped"}), set()):
        want = pd.Series(values, dtype=object).isin(allowed).to_numpy(dtype=bool)
        assert among(values, allowed).tolist() == want.tolist()
    assert among(np.array([], dtype=object), {"bob"}).dtype == np.bool_
