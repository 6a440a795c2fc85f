"""The "why": stage shares, bottleneck shift, Amdahl, Little's law and the suggested action."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pandas as pd
import pytest

from jobs.analysis import ai_gaps, amdahl_drop_pct, analyse, queue_growing, queue_slope
from jobs.digest_text import ai_text
from jobs.model import (
    FlowDay,
    Latency,
    Percentiles,
    QueueItem,
    QueueSample,
    ReviewerLoad,
    WorkflowStats,
)
from tests.factories import T0, snapshot

NOW = T0 + timedelta(days=7)  # Monday 2026-03-09 09:00 UTC


def row(number: int, *, days_ago: float = 1.0, coding: float = 2.0, pickup: float = 2.0,
        review: float = 2.0, merge: float = 2.0, repo: str = "acme/api", size: str = "S",
        bot: bool = False, calendar_factor: float = 2.0, **extra: Any) -> dict[str, Any]:
    """One merged PR row as ``jobs.metrics.pr_table`` gives it; business hours as given."""
    stages = {"coding": coding, "pickup": pickup, "review": review, "merge": merge}
    out: dict[str, Any] = {
        "repo": repo, "number": number, "url": f"https://github.com/{repo}/pull/{number}",
        "author": "alice", "merged_at": NOW - timedelta(days=days_ago), "bot": bot,
        "size_bucket": size,
    }
    for name, bh in stages.items():
        out[f"{name}_bh"] = bh
        out[f"{name}_h"] = bh * calendar_factor
    out.update(extra)
    return out


def frame(*rows: dict[str, Any]) -> pd.DataFrame:
    df = pd.DataFrame(list(rows))
    df["merged_at"] = pd.to_datetime(df["merged_at"], utc=True)
    return df


def week_of(stage: str, n: int = 4, *, hours: float = 20.0, days_ago: float = 1.0,
            start: int = 1, **kw: Any) -> list[dict[str, Any]]:
    """``n`` PRs where ``stage`` takes ``hours`` and every other stage 1 h."""
    base = {"coding": 1.0, "pickup": 1.0, "review": 1.0, "merge": 1.0}
    base[stage] = hours
    return [row(start + i, days_ago=days_ago, **{**base, **kw}) for i in range(n)]


def load(login: str, requests: int, pending: int = 0) -> ReviewerLoad:
    return ReviewerLoad(login=login, slack_id=None, requests_direct=requests, requests_via_team=0,
                        re_requests=0, context_switches=0, reviews=requests, pending=pending,
                        focus_hours=requests * 23 / 60, requests_per_day=requests / 5)


def flow_days(arrivals: int, completions: int, days: int = 7) -> list[FlowDay]:
    today = NOW.date()
    return [FlowDay(day=today - timedelta(days=i), arrivals=arrivals, completions=completions)
            for i in range(days)]


def samples(lengths: list[int]) -> list[QueueSample]:
    n = len(lengths)
    return [QueueSample(at=NOW - timedelta(days=n - 1 - i), reviewer=v, author=0, ci=0, approved=0,
                        oldest_hours=None, oldest_business_hours=None)
            for i, v in enumerate(lengths)]


def workflow(name: str, run_p90: float, failure: float = 0.02, rerun: float = 0.0) -> WorkflowStats:
    return WorkflowStats(name=name, attempts=50, queue_p50_min=1.0, queue_p90_min=2.0,
                         run_p50_min=run_p90 / 2, run_p90_min=run_p90, failure_rate=failure,
                         rerun_rate=rerun)


# ---------------------------------------------------------------------------- shares and shift


def test_stage_shares_compare_this_week_with_the_four_before() -> None:
    """The shares say pickup took 80% of this week's lead time, against review's lead before."""
    table = frame(*week_of("pickup", 2, hours=16.0), *week_of("review", 3, hours=16.0, days_ago=14, start=10))
    result = analyse(table, now=NOW)
    shares = {s.stage: s for s in result.stage_shares}
    assert shares["pickup"].share_this_week == pytest.approx(16 / 19, abs=1e-3)
    assert shares["pickup"].hours_this_week == pytest.approx(32.0)
    assert shares["review"].share_before == pytest.approx(16 / 19, abs=1e-3)
    assert sum(s.share_this_week for s in result.stage_shares) == pytest.approx(1.0, abs=1e-3)
    assert (result.merged_this_week, result.merged_before) == (2, 3)


def test_a_moved_bottleneck_is_reported_as_a_shift() -> None:
    """When review led before and pickup leads now, the analysis says the bottleneck moved."""
    table = frame(*week_of("pickup", 3), *week_of("review", 3, days_ago=10, start=10))
    result = analyse(table, now=NOW)
    assert (result.dominant_stage, result.previous_dominant_stage, result.shifted) == (
        "pickup", "review", True)
    assert result.headline.startswith("Waiting moved to pickup wait:")
    assert "(review held the most in the four weeks before)" in result.headline


def test_the_same_bottleneck_is_not_a_shift() -> None:
    """A team stuck in merge wait both periods sees no shift."""
    table = frame(*week_of("merge", 2), *week_of("merge", 2, days_ago=20, start=10))
    result = analyse(table, now=NOW)
    assert result.dominant_stage == "merge" and not result.shifted


def test_prs_older_than_five_weeks_and_bot_prs_do_not_count() -> None:
    """Old merges and non-AI bot PRs leave the shares: only this week's human PRs remain."""
    table = frame(*week_of("pickup", 1), row(50, days_ago=40, review=99.0),
                  row(51, days_ago=1, merge=500.0, bot=True))
    result = analyse(table, now=NOW)
    assert result.dominant_stage == "pickup" and result.previous_dominant_stage is None
    assert result.merged_this_week == 1 and result.merged_before == 0


def test_no_merged_prs_gives_no_bottleneck_and_no_action() -> None:
    """With nothing merged the analysis says so instead of inventing a bottleneck."""
    empty = pd.DataFrame({"merged_at": pd.Series(dtype="datetime64[ns, UTC]")})
    result = analyse(empty, now=NOW)
    assert result.dominant_stage is None and result.action is None
    assert result.amdahl_drop_pct is None
    assert "No PRs were merged this week" in result.headline


# ---------------------------------------------------------------------------- Amdahl


def test_amdahl_is_the_median_pr_with_coding_halved_in_business_hours() -> None:
    """Lead times 10, 20, 30 working h become 7.5, 17.5, 22.5: the median drops 12.5%."""
    table = frame(row(1, coding=5, pickup=5, review=0, merge=0, calendar_factor=1.0),
                  row(2, coding=5, pickup=15, review=0, merge=0, calendar_factor=5.0),
                  row(3, coding=15, pickup=15, review=0, merge=0, calendar_factor=0.5))
    assert amdahl_drop_pct(table) == pytest.approx(12.5)
    assert analyse(table, now=NOW).amdahl_drop_pct == pytest.approx(12.5)


@pytest.mark.parametrize(("coding", "drop"), [(0.0, 0.0), (10.0, 25.0), (30.0, 37.5)])
def test_amdahl_drop_follows_how_much_of_a_typical_pr_is_coding(coding: float, drop: float) -> None:
    """No coding saves nothing; coding half of every PR saves a quarter; never more than half."""
    table = frame(*(row(n, coding=coding, pickup=10.0, review=0, merge=0) for n in (1, 2, 3)))
    assert amdahl_drop_pct(table) == pytest.approx(drop)


def test_amdahl_needs_prs_merged_this_week() -> None:
    """With only older merges there is no projection beside an empty week's shares."""
    result = analyse(frame(*week_of("coding", days_ago=20)), now=NOW)
    assert result.amdahl_drop_pct is None


# ---------------------------------------------------------------------------- Little's law


def test_queue_grows_when_arrivals_outrun_completions_and_samples_rise() -> None:
    """Five arrivals a day against three completions and a rising queue: growing."""
    result = analyse(frame(*week_of("pickup", 2)), now=NOW, flow=flow_days(5, 3),
                     samples=samples([2, 3, 4, 5, 6, 7, 8]))
    assert result.arrivals_per_day == pytest.approx(5.0)
    assert result.completions_per_day == pytest.approx(3.0)
    assert result.queue_growing and result.queue_trend_per_day == pytest.approx(1.0)
    assert "queue is growing" in result.headline


def test_queue_not_growing_when_completions_keep_up() -> None:
    """Completions matching arrivals mean no growth, whatever one busy day did."""
    assert not analyse(frame(*week_of("pickup", 2)), now=NOW, flow=flow_days(4, 4)).queue_growing


def test_flat_samples_overrule_a_rise_in_arrivals() -> None:
    """If the sampled queue is flat, more arrivals than completions is not called growth."""
    assert not queue_growing(5.0, 3.0, queue_slope(samples([4, 4, 4, 4]), now=NOW))
    assert queue_growing(5.0, 3.0, None)


# ---------------------------------------------------------------------------- actions


def test_pickup_with_concentrated_load_suggests_spreading_reviews() -> None:
    """Two reviewers holding most requests while pickup dominates: spread reviews."""
    result = analyse(frame(*week_of("pickup")), now=NOW, load_concentration=28 / 31,
                     reviewers=[load("bob", 16, 4), load("erin", 12), load("carol", 3)],
                     flow=flow_days(5, 3))
    assert result.action is not None and result.action.code == "spread_reviews"
    assert "bob and erin" in result.action.text
    assert "90%" in result.action.because and "pickup" in result.action.because
    assert [c.name for c in result.top_reviewers] == ["bob", "erin", "carol"]


def test_one_reviewer_far_ahead_is_named_alone() -> None:
    """When one reviewer holds far more requests than the next, the action names only them."""
    result = analyse(frame(*week_of("pickup")), now=NOW, load_concentration=0.6,
                     reviewers=[load("bob", 40), load("erin", 8), *(load(x, 8) for x in "cdefg")])
    assert result.action is not None and result.action.code == "spread_reviews"
    assert result.action.text.endswith("stop piling on bob.")
    assert "bob alone 45%" in result.action.because


def test_an_even_split_among_three_is_not_called_concentrated() -> None:
    """Three reviewers sharing requests evenly (top two hold 67%) is not a concentration."""
    result = analyse(frame(*week_of("pickup")), now=NOW, load_concentration=2 / 3,
                     reviewers=[load("bob", 10), load("erin", 10), load("carol", 10)])
    assert result.action is not None and result.action.code == "review_slots"


def test_one_reviewer_named_on_most_waiting_prs_suggests_spreading_reviews() -> None:
    """When bob is the one waited on by 4 of 5 PRs in the queue, spread reviews off bob."""
    def waiting(n: int, who: tuple[str, ...]) -> QueueItem:
        return QueueItem(repo="acme/api", number=n, title="t", url="u", author="dan", turn="reviewer",
                         waiting_on=who, age_hours=5.0, age_business_hours=5.0, size="S",
                         ai_assisted=False)
    items = [waiting(i, ("bob", "team:core")) for i in range(4)] + [waiting(9, ("erin",))]
    result = analyse(frame(*week_of("pickup")), now=NOW, load_concentration=0.45,
                     reviewers=[load(x, 5) for x in ("bob", "erin", "carol", "dan", "eve")],
                     queue_items=items)
    assert result.action is not None and result.action.code == "spread_reviews"
    assert "bob is waited on by 4 of the 5 PRs" in result.action.because


def test_pickup_with_arrivals_outrunning_completions_suggests_limiting_wip() -> None:
    """Evenly spread reviewers but more PRs arriving than finishing: cap work in progress."""
    result = analyse(frame(*week_of("pickup")), now=NOW, load_concentration=0.4,
                     flow=flow_days(6, 3), samples=samples([1, 2, 3, 4, 5]))
    assert result.action is not None and result.action.code == "limit_wip"
    assert "6.0 PRs arrive a day against 3.0" in result.action.because


def test_pickup_alone_suggests_review_slots() -> None:
    """Pickup dominating with no concentration nor growth: set review slots."""
    result = analyse(frame(*week_of("pickup")), now=NOW, load_concentration=0.3, flow=flow_days(3, 3))
    assert result.action is not None and result.action.code == "review_slots"


def test_merge_wait_with_a_slow_flaky_workflow_suggests_fixing_ci() -> None:
    """Merge wait dominating and an integration workflow at 35 min p90: fix that workflow."""
    result = analyse(frame(*week_of("merge")), now=NOW, ci_wait_hours=50.0,
                     workflows=[workflow("unit", 5.0), workflow("integration", 35.0, failure=0.2)])
    assert result.action is not None and result.action.code == "fix_ci"
    assert "integration" in result.action.text and "20% failed" in result.action.because
    assert result.slowest_workflows[0].name == "integration"


def test_merge_wait_with_healthy_ci_suggests_auto_merge() -> None:
    """Approved PRs sitting unmerged with fast CI: turn on auto-merge or a merge queue."""
    result = analyse(frame(*week_of("merge")), now=NOW, ci_wait_hours=2.0,
                     workflows=[workflow("unit", 5.0)])
    assert result.action is not None and result.action.code == "auto_merge"


def test_large_prs_holding_the_waiting_suggest_splitting() -> None:
    """Three XL PRs holding most of the pickup wait: split PRs, citing their share."""
    table = frame(*week_of("pickup", 3, hours=30.0, size="XL"), *week_of("pickup", 3, hours=2.0, start=10))
    result = analyse(table, now=NOW, load_concentration=0.9)
    assert result.large_prs_dominate
    assert result.action is not None and result.action.code == "split_prs"
    assert "3 L/XL PRs" in result.action.because


def test_review_dominant_suggests_fewer_review_rounds() -> None:
    """Time between first review and approval dominating: cut review rounds."""
    result = analyse(frame(*week_of("review")), now=NOW)
    assert result.action is not None and result.action.code == "review_rounds"


def test_coding_dominant_names_no_downstream_fix() -> None:
    """When the author's coding is most of the lead time, nothing downstream is blamed."""
    result = analyse(frame(*week_of("coding")), now=NOW)
    assert result.action is not None and result.action.code == "coding_bound"
    assert result.dominant_stage in ("pickup", "review", "merge")  # the bottleneck is a wait
    assert result.amdahl_drop_pct is not None and result.amdahl_drop_pct > 40


# ---------------------------------------------------------------------------- contributors


def test_contributors_name_repos_and_the_longest_waits_with_whom() -> None:
    """The heaviest repo comes first, and the longest wait says how long and on whom."""
    table = frame(*week_of("pickup", 3, repo="acme/api"), *week_of("pickup", 1, repo="acme/web", start=10),
                  row(20, pickup=60.0, first_reviewer="bob"))
    open_item = QueueItem(repo="acme/web", number=99, title="t", url="https://x/99", author="dan",
                          turn="reviewer", waiting_on=("erin",), age_hours=200.0,
                          age_business_hours=70.0, size="M", ai_assisted=False)
    result = analyse(table, now=NOW, queue_items=[open_item])
    assert result.top_repos[0].name == "acme/api" and result.top_repos[0].unit == "h"
    first, second = result.longest_waits[:2]
    assert (first.name, first.value, first.detail) == ("acme/web#99", 70.0, "open, waiting on erin")
    assert second.name == "acme/api#20" and "first reviewed by bob" in second.detail


def test_flow_days_outside_the_week_are_ignored() -> None:
    """Arrivals from a month ago do not inflate this week's rate."""
    old = [FlowDay(day=date(2026, 2, 1), arrivals=100, completions=0)]
    result = analyse(frame(*week_of("pickup", 1)), now=NOW, flow=old + flow_days(2, 2))
    assert result.arrivals_per_day == pytest.approx(2.0)


# ---------------------------------------------------------------------------- AI split


def lat(count: int, p50: float | None) -> Latency:
    return Latency(calendar=Percentiles(count=count, p50=p50), business=Percentiles(count=count, p50=p50))


SPLIT_FIELDS = {"pickup": ("pickup_ai", "pickup_other"), "approval": ("approval_ai", "approval_other"),
                "merge": ("merge_ai", "merge_other"), "lead": ("lead_time_ai", "lead_time_other")}


def split_snapshot(**gaps: tuple[Latency, Latency]) -> Any:
    """The factory snapshot with every AI split even (8 h both sides, 8 PRs each) but ``gaps``."""
    fields: dict[str, Latency] = {}
    for metric, (ai_field, other_field) in SPLIT_FIELDS.items():
        ai, other = gaps.get(metric, (lat(8, 8.0), lat(8, 8.0)))
        fields[ai_field], fields[other_field] = ai, other
    return snapshot(**fields)


@pytest.mark.parametrize(("metric", "sentence"), [
    ("pickup", "AI-assisted PRs waited 2.0x longer for a first review than the others (p50 16 vs 8 working h; 6 vs 9 PRs)."),
    ("approval", "AI-assisted PRs waited 2.0x longer for approval than the others (p50 16 vs 8 working h; 6 vs 9 PRs)."),
    ("merge", "AI-assisted PRs took 2.0x longer from ready to merge than the others (p50 16 vs 8 working h; 6 vs 9 PRs)."),
    ("lead", "AI-assisted PRs took 2.0x longer from first commit to merge than the others (p50 16 vs 8 working h; 6 vs 9 PRs)."),
])
def test_the_digest_says_when_ai_assisted_prs_wait_materially_longer(metric: str, sentence: str) -> None:
    """A 2x gap on one latency metric, with enough PRs on both sides, becomes one digest sentence."""
    text = ai_text(split_snapshot(**{metric: (lat(6, 16.0), lat(9, 8.0))}))
    assert sentence in text.splitlines()
    assert sum("longer" in line for line in text.splitlines()) == 1


def test_the_ai_split_explains_nothing_when_small_or_close() -> None:
    """A 1.4x gap is not material, too few PRs on a side says nothing, and a faster AI side is
    said the other way round; the largest gap comes first."""
    assert ai_gaps(split_snapshot(pickup=(lat(8, 11.2), lat(8, 8.0))).ai_split()) == ()
    assert ai_gaps(split_snapshot(pickup=(lat(4, 40.0), lat(8, 8.0))).ai_split()) == ()
    gaps = ai_gaps(split_snapshot(approval=(lat(8, 4.0), lat(8, 12.0)),
                                  merge=(lat(8, 16.0), lat(8, 8.0))).ai_split())
    assert [(g.metric, round(g.ratio, 2)) for g in gaps] == [("approval", 0.33), ("merge", 2.0)]
    text = ai_text(split_snapshot(approval=(lat(8, 4.0), lat(8, 12.0))))
    assert "Other PRs waited 3.0x longer for approval than AI-assisted ones" in text
    close = ai_text(split_snapshot())
    assert "Their latency was within 1.5x of the other PRs'." in close
    few = ai_text(split_snapshot(**{m: (lat(2, 30.0), lat(8, 8.0)) for m in SPLIT_FIELDS}))
    assert "Too few PRs to compare" in few and "longer" not in few
