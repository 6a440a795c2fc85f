"""The terminal team view: every section present, GitHub text printed as written."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from rich.console import Console

from bot.report import analysis_sentences, print_report
from jobs.model import Latency, Percentiles, QueueItem, WorkflowStats
from tests.factories import T0, snapshot


def render(*snaps: object, width: int = 140) -> str:
    console = Console(width=width, record=True, color_system=None, force_terminal=False)
    print_report(snaps, now=T0 + timedelta(minutes=5), console=console)  # type: ignore[arg-type]
    return console.export_text()


def test_team_view_shows_every_section_and_the_headline() -> None:
    """A lead sees the headline, the queue, latency, reviewers, CI, flow, size mix and the why."""
    out = render(snapshot())
    for needle in ("Flow report: platform", "Waiting moved to pickup wait: 48%", "Queue now: 10 waiting",
                   "pickup wait", "time to approval", "Reviewer load: the top two hold 72%",
                   "integration", "Flow balance", "PR size mix", "Suggested: Spread reviews",
                   "acme/api#412", "AI-assisted"):
        assert needle in out, needle


def test_titles_with_rich_markup_print_literally() -> None:
    """A PR title that looks like rich markup is printed as written, not interpreted."""
    item = QueueItem(repo="acme/api", number=7, title="[red]boom[/red] [bold]x", url="u",
                     author="a", turn="reviewer", waiting_on=("[b]bob",), age_hours=1.0,
                     age_business_hours=1.0, size="S", ai_assisted=False)
    out = render(snapshot(queue_items=(item,)))
    assert "[red]boom[/red]" in out and "[b]bob" in out


def test_report_fits_80_columns_without_splitting_words() -> None:
    """At 80 columns every line fits, the header has no stranded "·", PR ids and team names stay whole."""
    items = tuple(
        QueueItem(repo="acme/payments-worker", number=40 + n, title="Speed up metrics endpoint " * 3,
                  url="u", author="a", turn="reviewer", waiting_on=("team:payments-reviewers",),
                  age_hours=200.0, age_business_hours=50.0, size="XL", ai_assisted=True)
        for n in range(3)
    )
    out = render(snapshot(team="payments", queue_items=items), width=80)
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert not any(line.strip() in ("·", "s") or line.lstrip().startswith("·") for line in lines)
    rows = [line for line in lines if line.startswith("acme/payments-worker#4")]
    assert len(rows) == 3  # one line per PR, the title cut with an ellipsis
    assert all("team:payments-reviewers" in row and "…" in row for row in rows)
    assert "acme/payments-worker#41 " in out


def test_empty_team_still_renders_a_readable_report() -> None:
    """A team with nothing merged and nothing waiting gets a report, not a crash."""
    snap = snapshot()
    empty_analysis = replace(snap.analysis, dominant_stage=None, previous_dominant_stage=None,
                             shifted=False, amdahl_drop_pct=None, action=None, top_repos=(),
                             top_reviewers=(), slowest_workflows=(), longest_waits=(),
                             headline="No PR merged this week, so there is no stage breakdown yet.")
    out = render(replace(snap, queue_items=(), reviewers=(), workflows=(), flow=(),
                         analysis=empty_analysis, errors=("acme/api: GitHub 502",)))
    assert "Nothing is waiting." in out and "No PR merged this week" in out
    assert "Degraded: acme/api: GitHub 502" in out


def test_analysis_reads_as_sentences_with_the_action_last() -> None:
    """The why reads as sentences: shares, the shift, Amdahl, Little's law, then the action."""
    lines = analysis_sentences(snapshot().analysis)
    assert lines[1] == "The bottleneck moved from review to pickup wait (30% -> 48%)."
    assert "drop only 9%" in lines[2]
    assert lines[3].startswith("The queue is growing: 5.4 PRs arrived a day")
    assert lines[-1].startswith("Suggested: Spread reviews")


def test_the_bottleneck_is_called_the_largest_waiting_stage() -> None:
    """Coding larger than pickup the weeks before: pickup is called the largest *waiting* stage."""
    a = snapshot().analysis
    shares = tuple(replace(s, share_before={"coding": 0.30, "pickup": 0.29, "review": 0.26,
                                            "merge": 0.15}[s.stage]) for s in a.stage_shares)
    lines = analysis_sentences(replace(a, stage_shares=shares, previous_dominant_stage="pickup",
                                       shifted=False))
    assert "Pickup wait is the largest waiting stage, as before." in lines
    assert not any("is the largest stage" in line for line in lines)


def test_amdahl_sentence_speaks_of_the_median_pr() -> None:
    """The projection says whose lead time it is about: the median PR's."""
    a = replace(snapshot().analysis, amdahl_drop_pct=10.0)
    lines = analysis_sentences(a)
    assert "If coding were 2x faster, the median PR's lead time would drop only 10%." in lines


def test_several_teams_print_one_after_another() -> None:
    """`--sandbox` with several teams prints each team's view in turn."""
    out = render(snapshot(team="platform"), snapshot(team="payments"))
    assert "Flow report: platform" in out and "Flow report: payments" in out


@pytest.mark.parametrize(("metric", "ai_field", "other_field"), [
    ("pickup wait", "pickup_ai", "pickup_other"),
    ("time to approval", "approval_ai", "approval_other"),
    ("time to merge", "merge_ai", "merge_other"),
    ("lead time", "lead_time_ai", "lead_time_other"),
])
def test_report_splits_each_latency_metric_into_ai_assisted_and_other(
        metric: str, ai_field: str, other_field: str) -> None:
    """The AI split table has a row per latency metric: PRs and p50 each side, and the ratio."""
    ai = Latency(calendar=Percentiles(count=3, p50=50.0), business=Percentiles(count=3, p50=21.0))
    other = Latency(calendar=Percentiles(count=12, p50=20.0), business=Percentiles(count=12, p50=7.0))
    out = render(snapshot(**{ai_field: ai, other_field: other}))
    section = out[out.index("AI-assisted vs other PRs"):]
    row = next(line for line in section.splitlines() if line.startswith(metric))
    assert row.split() == [*metric.split(), "3", "21", "(2.1", "d)", "12", "7", "(20", "h)", "3.0x"]


def test_report_ci_table_counts_runs_attempts_and_runs_in_progress() -> None:
    """Each workflow row says runs (a rerun is one run), attempts and runs in progress now."""
    wf = WorkflowStats(name="build", attempts=12, queue_p50_min=1.0, queue_p90_min=2.0,
                       run_p50_min=3.0, run_p90_min=4.0, failure_rate=0.25, rerun_rate=0.2,
                       runs=10, in_progress=3)
    old = WorkflowStats(name="legacy", attempts=7, queue_p50_min=1.0, queue_p90_min=2.0,
                        run_p50_min=3.0, run_p90_min=5.0, failure_rate=0.0, rerun_rate=0.0)
    out = render(snapshot(workflows=(wf, old)))
    header = next(line for line in out.splitlines() if line.startswith("workflow"))
    assert header.split()[:4] == ["workflow", "runs", "attempts", "running"]
    assert next(line for line in out.splitlines() if line.startswith("build")).split()[:4] == [
        "build", "10", "12", "3"]
    # a snapshot stored before runs were counted says so instead of "0 runs"
    assert next(line for line in out.splitlines() if line.startswith("legacy")).split()[:4] == [
        "legacy", "-", "7", "-"]
    assert "a rerun is one run with two attempts; running: runs in progress now" in out
