"""Block Kit builders: what people read, escaped GitHub text, and Slack's limits on every surface."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block as SdkBlock

from bot.blocks.alert_list import render_alert_list
from bot.blocks.alerts import render_alert
from bot.blocks.ci import render_ci
from bot.blocks.frame import no_snapshot, unavailable
from bot.blocks.health import render_health
from bot.blocks.help import render_help, render_usage
from bot.blocks.home import render_home
from bot.blocks.queue import item_line, render_queue
from bot.blocks.reviewers import render_reviewers
from bot.blocks.status import render_status
from bot.blocks.thresholds import render_thresholds
from bot.blocks.why import render_why
from jobs.alerts import AlertStatus
from jobs.identity import Identity
from jobs.model import Action, Alert, Contributor, QueueItem, ReviewerLoad, WorkflowStats
from jobs.settings import IdentitySettings, RuleThresholds, Thresholds, WorkHours
from jobs.snapshot import compute_team_snapshot
from jobs.store import JobRun
from jobs.timeline import pr_clocks
from jobs.worktime import WorkCalendar
from tests.factories import T0, event, pr, review, snapshot
from tests.fakes.slack_api import iter_blocks_text
from tests.slack_helpers import settings as slack_settings

NOW = T0 + timedelta(minutes=10)
_OUR_LINK = re.compile(r"<[^<>|\s]+\|[^<>]*>|<@[UW][A-Z0-9]+>")  # <url|label> (bot.blocks.link), <@U…>
_ENTITY = re.compile(r"&(?!amp;|lt;|gt;)")


def test_status_reads_like_the_brief() -> None:
    """Status shows queue by turn, pickup p50/p90 in working and calendar time, bottleneck and age."""
    blocks, text = render_status(snapshot(), now=NOW)
    body = "\n".join(iter_blocks_text(blocks))
    assert "*10* waiting: 7 on reviewers · 2 on authors · 1 on CI; 2 approved" in body
    assert "*Pickup wait* p50 / p90\n4 working h (9 h)\n18 working h (40 h)" in body
    assert "*pickup wait* (48% of lead time), moved from review" in body
    assert "about 22 focus-hours" in body
    assert "data 17 min old" in body
    assert text.startswith("platform: 10 PRs waiting")


def test_status_shows_the_ai_split_of_every_latency_metric_compactly() -> None:
    """/flow status gives pickup, approval, merge and lead time p50 for AI-assisted vs other PRs."""
    body = "\n".join(iter_blocks_text(render_status(snapshot(), now=NOW)[0]))
    field = body[body.index("*AI-assisted vs other* p50, working h"):]
    assert field.splitlines()[1:5] == ["pickup 6.3 vs 2.7 h (2.3x)", "approval 14 vs 6.8 h (2.0x)",
                                       "merge 15 vs 9.9 h (1.5x)", "lead time 20 vs 17 h (1.2x)"]
    none = "\n".join(iter_blocks_text(render_status(snapshot(ai_assisted_count=0), now=NOW)[0]))
    assert "no AI-assisted PRs merged in the window" in none


def test_ci_counts_runs_beside_attempts_and_runs_in_progress() -> None:
    """/flow ci says runs (a rerun is one run), attempts and runs in progress now."""
    body = "\n".join(iter_blocks_text(render_ci(snapshot(), now=NOW)[0]))
    assert "*175* runs (184 attempts); *2* in progress now." in body
    assert "57 runs (64 attempts), 2 running now" in body


def test_queue_is_oldest_first_escaped_and_linked() -> None:
    """The queue lists PRs oldest first with whose turn, linked, and a PR title cannot ping."""
    blocks, _ = render_queue(snapshot(), now=NOW)
    body = "\n".join(iter_blocks_text(blocks))
    first, second = body.index("acme/api#412"), body.index("acme/web#88")
    assert first < second
    assert "<https://github.com/acme/api/pull/412|acme/api#412 Add &lt;!channel&gt; rate limiter &amp; retries>" in body
    assert "reviewer's turn (bob, backend team) for 18 working h (52.5 h)" in body
    assert "<!channel>" not in body


def test_long_queue_is_cut_with_and_n_more() -> None:
    """A queue longer than the list limit ends with "and N more"."""
    item = snapshot().queue_items[0]
    many = tuple(replace(item, number=n, age_hours=float(100 - n)) for n in range(60))
    blocks, _ = render_queue(snapshot(queue_items=many), now=NOW)
    assert "and 36 more" in "\n".join(iter_blocks_text(blocks))


def test_reviewers_never_mention_anyone() -> None:
    """Reviewer lines name GitHub logins, never Slack mentions, so nobody is pinged."""
    blocks, _ = render_reviewers(snapshot(), now=NOW)
    body = "\n".join(iter_blocks_text(blocks))
    assert "<@" not in body and "*bob*: 30 interruptions (14 direct requests, 4 via a team" in body
    assert "top two reviewers hold *72%*" in body


def test_reviewer_focus_hours_follow_the_interruptions_they_count() -> None:
    """Each reviewer line shows what its focus-hours are made of: requests and context switches."""
    blocks, _ = render_reviewers(snapshot(), now=NOW)
    body = "\n".join(iter_blocks_text(blocks))
    assert ("*bob*: 30 interruptions (14 direct requests, 4 via a team, 3 re-requests, "
            "9 context switches), about 12 focus-hours lost · 5 waiting on them now") in body


def test_ci_slowest_and_flakiest() -> None:
    """CI lists workflows by p90 and names the flakiest by rerun rate."""
    body = "\n".join(iter_blocks_text(render_ci(snapshot(), now=NOW)[0]))
    assert "*integration*: run p50 18 min / p90 34 min" in body and "*Flakiest* (rerun rate): integration 12%" in body


def test_degraded_and_empty_notices() -> None:
    """Outage and no-data notices say what happened and what comes next."""
    _blocks, text = unavailable("platform", snapshot(), NOW)
    assert "temporarily unavailable" in text and "data 17 min old" in text
    _, later = no_snapshot("platform", NOW + timedelta(minutes=12), NOW)
    assert "in about 12 min" in later
    _, never = no_snapshot("platform", None, NOW)
    assert "first sample" in never


def test_partial_data_is_flagged() -> None:
    """A snapshot degraded by sync errors says so in its footer, escaped."""
    blocks, _ = render_status(snapshot(errors=("acme/<api>: GitHub 502",)), now=NOW)
    assert ":warning: partial data: acme/&lt;api&gt;: GitHub 502" in "\n".join(iter_blocks_text(blocks))


# ----------------------------------------------------------------------------- property test

_SURROGATES: Any = ("Cs",)  # hypothesis types the categories as a Literal
_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=_SURROGATES), max_size=400) | st.sampled_from(
    ["<!channel>", "<!here|here>", "<@U123>", "<https://evil.example|click>", "a & b > c", "|>|<", "&lt;"]
)


@st.composite
def _hostile_snapshot(draw: st.DrawFn) -> Any:
    base = snapshot()
    n_items = draw(st.integers(min_value=0, max_value=70))
    items = tuple(
        QueueItem(repo=draw(_text), number=n, title=draw(_text), url=draw(_text), author=draw(_text | st.none()),
                  turn="reviewer", waiting_on=tuple(draw(st.lists(_text, max_size=6))),
                  age_hours=float(n), age_business_hours=float(n) / 2, size="XL", ai_assisted=bool(n % 2))
        for n in range(n_items)
    )
    reviewers = tuple(
        ReviewerLoad(login=draw(_text), slack_id=None, requests_direct=n, requests_via_team=1, re_requests=0,
                     context_switches=2, reviews=3, pending=1, focus_hours=1.5, requests_per_day=2.0)
        for n in range(draw(st.integers(min_value=0, max_value=40)))
    )
    workflows = tuple(
        WorkflowStats(name=draw(_text), attempts=5, queue_p50_min=1.0, queue_p90_min=2.0, run_p50_min=3.0,
                      run_p90_min=float(n), failure_rate=0.1, rerun_rate=0.05 * n)
        for n in range(draw(st.integers(min_value=0, max_value=30)))
    )
    analysis = replace(base.analysis, headline=draw(_text),
                       action=Action(code="x", text=draw(_text), because=draw(_text)),
                       longest_waits=(Contributor(name=draw(_text), value=1.0, unit="h"),))
    return replace(base, queue_items=items, reviewers=reviewers, workflows=workflows, analysis=analysis,
                   errors=tuple(draw(st.lists(_text, max_size=5))))


def _check(blocks: list[dict[str, Any]], *, limit: int = 50) -> None:
    assert len(blocks) <= limit
    for block in blocks:
        parsed = SdkBlock.parse(block)
        assert parsed is not None
        parsed.to_dict()  # slack_sdk validates lengths and counts here
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
            assert len(block.get("fields", [])) <= 10
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
    for text in iter_blocks_text(blocks):
        bare = _OUR_LINK.sub("", text)
        assert "<" not in bare and ">" not in bare, text
        assert not _ENTITY.search(text), text


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(snap=_hostile_snapshot(), team=st.sampled_from(["platform", "web-2"]))
def test_every_builder_escapes_github_text_and_stays_within_limits(snap: Any, team: str) -> None:
    """Arbitrary GitHub text through every builder: no unescaped `<`, no block over Slack's limits."""
    for render in (render_status, render_queue, render_reviewers, render_ci):
        blocks, text = render(snap, now=NOW)
        _check(blocks)
        assert "<" not in text and len(text) <= 4000
    _check(unavailable(team, snap, NOW)[0])
    home = render_home([(team, snap, False), ("web", None, True)], snap.queue_items, login=snap.reviewers[0].login
                       if snap.reviewers else None, now=NOW)
    _check(home["blocks"], limit=100)  # type: ignore[arg-type]


@settings(max_examples=30, deadline=None)
@given(title=_text, login=_text, detail=_text)
def test_why_alerts_health_escape(title: str, login: str, detail: str) -> None:
    """PR clocks, alert lists, health and thresholds escape whatever GitHub or jobs put in them."""
    p = pr(3, title=title, author=login or None, created=-30.0, merged=-2.0,
           events=(event("review_requested", -29.0, actor=login, requested_reviewer="bob"),),
           reviews=(review(login or None, "APPROVED", -5.0),))
    hours = WorkHours()
    clocks = pr_clocks(p, identity=Identity(IdentitySettings()), calendar=WorkCalendar.for_team(hours), now=NOW)
    _check(render_why(p, clocks, now=NOW, tz=hours.zone)[0])
    status = AlertStatus(team="platform", rule="queue_length", title=title, status="active", severity="warn",
                         value=12.0, threshold=10.0, unit=detail[:10], since=NOW, episode="e",
                         acknowledged_by=login, details=(detail,))
    _check(render_alert_list("platform", [status] * 3, now=NOW)[0])
    runs = {login or "job": [JobRun(job="sample", started_at=NOW, seconds=1.0, outcome="failed", detail=detail)]}
    _check(render_health(runs, now=NOW)[0])
    levels = {r: Thresholds.model_validate(v) for r, v in RuleThresholds().model_dump().items()}
    _check(render_thresholds("platform", levels, [{"rule": title, "who": login, "old": detail, "new": 3}],
                             now=NOW)[0])
    _check(render_usage(title)[0])


def test_help_fits() -> None:
    """Help lists every subcommand within limits."""
    blocks, _ = render_help()
    _check(blocks)
    assert "`/flow why OWNER/REPO#N`" in "\n".join(iter_blocks_text(blocks))


def test_alert_list_rounds_values_and_names_who_acknowledged() -> None:
    """An alert line reads `61 min vs threshold 40 min · since 42 min ago` and names who acknowledged it."""
    status = AlertStatus(team="platform", rule="ci_p90_minutes", title="CI p90 wait (queue + run)",
                         status="active", severity="critical", value=61.2135, threshold=40.0, unit="min",
                         since=NOW - timedelta(minutes=42), episode="e", acknowledged_by="U0LEAD0001",
                         details=())
    body = "\n".join(iter_blocks_text(render_alert_list("platform", [status], now=NOW)[0]))
    assert "61 min vs threshold 40 min · since 42 min ago" in body
    assert "acknowledged by <@U0LEAD0001>" in body


def test_health_fallback_says_when_no_job_ran() -> None:
    """Before any job ran, the notification text says so instead of ending in a colon."""
    assert render_health({}, now=NOW)[1] == "Flowbot health: no job has run yet"


def test_thresholds_name_each_rule_with_its_unit() -> None:
    """Each threshold reads with its title, the id `/flow set` takes, and its unit."""
    levels = {r: Thresholds.model_validate(v) for r, v in RuleThresholds().model_dump().items()}
    body = "\n".join(iter_blocks_text(render_thresholds("platform", levels, [], now=NOW)[0]))
    assert "• *Pickup wait p50 (7 days)* `pickup_p50_hours`: warn 6 working h" in body


def test_a_quiet_team_reads_as_quiet_not_as_zeros_and_na() -> None:
    """With nothing merged or requested, status and reviewers say so instead of `n/a` and `0 focus-hours`."""
    quiet = compute_team_snapshot(slack_settings(), "web", [], [], now=T0)
    status = "\n".join(iter_blocks_text(render_status(quiet, now=NOW)[0]))
    assert "*Pickup wait* p50 / p90\nn/a (no PRs merged in the window)" in status
    assert "none: no review requests this week" in status and "0 focus-hours" not in status
    blocks, text = render_reviewers(quiet, now=NOW)
    reviewers = "\n".join(iter_blocks_text(blocks))
    assert "No review requests in the last 7 days" in reviewers and "n/a" not in reviewers + text


def test_home_says_when_a_pr_waits_on_the_users_team_not_them() -> None:
    """A PR requested from the user's GitHub team says so on the Home tab; a direct request does not."""
    direct = snapshot().queue_items[0]
    via_team = replace(direct, number=413, waiting_on=("team:backend",))
    view = render_home([], [direct, via_team], login="bob", now=NOW)
    text = "\n".join(iter_blocks_text(view["blocks"]))  # type: ignore[arg-type]
    lines = {line.split("|", 1)[1].split(" ", 1)[0]: line for line in text.splitlines() if "|acme/" in line}
    assert lines["acme/api#413"].endswith("· asked of your team backend")
    assert "asked of your team" not in lines["acme/api#412"]


def test_alert_notification_text_has_no_severity_tag() -> None:
    """An alert's notification reads as its sentence, with no `[warn]`/`[critical]` tag in front."""
    message = "CI p90 wait (queue + run) is critical for platform: 61 min (threshold 40)."
    alert = Alert(team="platform", rule="ci_p90_minutes", severity="critical", value=61.0, threshold=40.0,
                  unit="min", message=message, at=NOW, idempotency_key="k", recipients=("C1",), episode="e")
    assert render_alert(alert)[1] == message


def test_queue_line_does_not_repeat_a_workflow_called_ci() -> None:
    """A PR waiting on a workflow named `CI` reads `waiting on CI`, not `waiting on CI (CI)`."""
    item = replace(snapshot().queue_items[0], turn="ci", waiting_on=("CI",))
    assert "waiting on CI for 18 working h" in item_line(item)
