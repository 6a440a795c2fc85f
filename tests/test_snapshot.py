"""Team snapshots: computed from records, stored whole, and right about the sandbox's bottleneck."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.blocks.reviewers import render_reviewers
from bot.cli import app
from bot.config import from_mapping
from jobs import codec
from jobs.digest import WINDOWS, digest_from_snapshot
from jobs.identity import Identity
from jobs.model import QueueItem, QueueSample, RepoCursor, ReviewerLoad, TeamSnapshot
from jobs.settings import Settings
from jobs.snapshot import compute_team_snapshot, pending_from_queue, refresh_all
from jobs.store import Store
from jobs.timeline import pr_clocks
from jobs.windows import ReviewWindows, Window
from jobs.worktime import WorkCalendar
from tests.factories import T0, check, event, pr, review

NOW = T0 + timedelta(days=7, hours=3)  # Monday 2026-03-09 12:00 UTC


def settings(**teams: dict[str, Any]) -> Settings:
    base = {
        "core": {"members": [{"github": "alice", "slack": "U0ALICE01"}, {"github": "bob"},
                             {"github": "erin"}],
                 "repositories": ["api", "acme/web"], "github_teams": ["core-reviewers"],
                 "channel": "C0CORE001"},
        "ops": {"members": [{"github": "olga"}], "repositories": ["infra"], "channel": "C0OPS0001"},
    }
    return from_mapping({"github": {"organisation": "acme"}, "teams": {**base, **teams}}, env={})


def team_prs() -> list[Any]:
    """A small week of the core team: pickup waits dominate, one bot PR, one open PR."""
    day = 24.0
    merged = [
        pr(n, created=day * 2 + n, merged=day * 4 + n, first_commit=day * 2 + n - 1,
           events=(event("review_requested", day * 2 + n, requested_reviewer="bob"),),
           reviews=(review("bob", "APPROVED", day * 4 + n - 1),),
           checks=(check("ci", run_id=n, created=day * 4, started=day * 4 + 0.1,
                         completed=day * 4 + 0.4),))
        for n in range(1, 5)
    ]
    web = pr(10, repo="acme/web", created=day * 3, merged=day * 4, additions=900,
             events=(event("review_requested", day * 3, requested_team="core-reviewers"),),
             reviews=(review("erin", "APPROVED", day * 3 + 20),), labels=("ai-assisted",))
    bot = pr(20, author="dependabot[bot]", author_type="Bot", created=day * 6, merged=day * 6 + 1)
    waiting = pr(30, created=day * 7 + 1, events=(
        event("review_requested", day * 7 + 1, requested_reviewer="bob"),))
    other_team = pr(40, repo="acme/infra", author="olga", created=day * 6, merged=day * 7)
    return [*merged, web, bot, waiting, other_team]


def test_snapshot_fills_every_field_from_the_teams_own_prs() -> None:
    """A team's snapshot counts only its repositories' PRs, with bots apart and the queue now."""
    samples = [QueueSample(at=NOW - timedelta(hours=h), reviewer=1, author=0, ci=0, approved=0,
                           oldest_hours=1.0, oldest_business_hours=1.0) for h in (48, 24)]
    snap = compute_team_snapshot(settings(), "core", team_prs(), samples, now=NOW,
                                 errors=("acme/api: GitHub 502",), data_as_of=NOW - timedelta(minutes=3))
    assert snap.team == "core" and snap.window_days == 7
    assert snap.merged_count == 5 and snap.bot_pr_count == 1 and snap.ai_assisted_count == 1
    assert snap.queue.reviewer == 1 and [i.number for i in snap.queue_items] == [30]
    assert [s.at for s in snap.queue_trend][-1] == NOW and len(snap.queue_trend) == 3
    assert snap.pickup.calendar.count == 5 and snap.pickup_ai.calendar.count == 1
    assert dict(snap.pickup_by_repo).keys() == {"acme/api", "acme/web"}
    assert snap.reviewers[0].login == "bob" and snap.reviewers[0].pending == 1
    assert snap.reviewers[0].slack_id is None
    assert {r.login for r in snap.reviewers} <= {"alice", "bob", "erin"}
    assert snap.workflows and snap.workflows[0].name == "ci"
    assert snap.flow and sum(d.arrivals for d in snap.flow) == 6
    assert dict(snap.size_mix_week)["XL"] == pytest.approx(0.2)
    assert snap.analysis.dominant_stage == "pickup" and snap.analysis.merged_this_week == 5
    assert snap.errors == ("acme/api: GitHub 502",)
    assert snap.data_as_of == NOW - timedelta(minutes=3)


@pytest.mark.parametrize(("metric", "clock"), [
    ("pickup", "pickup"), ("approval", "time_to_approval"), ("merge", "time_to_merge"),
    ("lead", "lead_time"),
])
def test_every_latency_metric_is_split_into_ai_assisted_and_other_prs(metric: str, clock: str) -> None:
    """Each latency metric's AI split holds the AI-assisted PR's clock on one side and the
    median of the other merged PRs' clocks on the other (bot PRs in neither), as /flow why reads them."""
    s = settings()
    prs = team_prs()
    snap = compute_team_snapshot(s, "core", prs, [], now=NOW)
    split = {name: (ai, other) for name, ai, other in snap.ai_split()}
    ai, other = split[metric]
    calendar = WorkCalendar.for_team(s.teams["core"])
    identity = Identity(s.identity)
    hours = {p.number: getattr(pr_clocks(p, identity=identity, calendar=calendar, now=NOW), clock)
             for p in prs}
    assert (ai.calendar.count, other.calendar.count) == (1, 4)
    assert ai.calendar.p50 == pytest.approx(hours[10].calendar_hours)
    assert ai.business.p50 == pytest.approx(hours[10].business_hours)
    others = sorted(hours[n].calendar_hours for n in range(1, 5))
    assert other.calendar.p50 == pytest.approx((others[1] + others[2]) / 2)
    assert ai.calendar.p50 != other.calendar.p50  # the split separates them


def test_a_snapshot_stored_before_the_ai_split_and_run_counts_still_reads() -> None:
    """Snapshots written before the new fields decode with empty splits and zero run counts."""
    snap = compute_team_snapshot(settings(), "core", team_prs(), [], now=NOW)
    raw = codec.to_jsonable(snap)
    for name in ("approval_ai", "approval_other", "merge_ai", "merge_other", "lead_time_ai",
                 "lead_time_other"):
        del raw[name]
    for w in raw["workflows"]:
        del w["runs"], w["in_progress"]
    old = codec.loads(TeamSnapshot, json.dumps(raw))
    assert old.approval_ai.calendar.count == 0 and old.pickup_ai == snap.pickup_ai
    assert old.workflows[0].runs == 0 and old.workflows[0].attempts == snap.workflows[0].attempts


def item(number: int, turn: str, *waiting_on: str) -> QueueItem:
    return QueueItem(repo="acme/api", number=number, title="t", url="u", author="carl",
                     turn=turn, waiting_on=waiting_on, age_hours=1.0, age_business_hours=1.0,  # type: ignore[arg-type]
                     size="S", ai_assisted=False)


def load(login: str, requests: int, pending: int) -> ReviewerLoad:
    return ReviewerLoad(login=login, slack_id=None, requests_direct=requests, requests_via_team=0,
                        re_requests=0, context_switches=0, reviews=0, pending=pending,
                        focus_hours=0.0, requests_per_day=0.0)


def test_pending_counts_each_waiting_pr_once_for_the_first_member_asked() -> None:
    """Pending per reviewer adds up to at most the reviewer queue: team, approved and author
    turns, non-members and second reviewers do not inflate it."""
    items = [item(1, "reviewer", "bob"), item(2, "reviewer", "Bob", "erin"),
             item(3, "reviewer", "team:core-reviewers"), item(4, "reviewer", "team:core-reviewers", "erin"),
             item(5, "approved", "bob"), item(6, "author", "bob"), item(7, "ci", "CI"),
             item(8, "reviewer", "mallory", "alice"), item(9, "reviewer", "reviewers")]
    loads = (load("bob", 9, pending=7), load("erin", 3, pending=4), load("carol", 1, pending=2))
    out = pending_from_queue(loads, items, members={"alice", "bob", "erin", "carol"},
                             slack_ids={"alice": "U0ALICE01"})
    pending = {r.login: r.pending for r in out}
    assert pending == {"bob": 2, "erin": 1, "carol": 0, "alice": 1}
    assert sum(pending.values()) <= sum(1 for i in items if i.turn == "reviewer")
    assert [r.login for r in out] == ["bob", "erin", "carol", "alice"]  # most requests first
    assert next(r for r in out if r.login == "alice").slack_id == "U0ALICE01"


def test_snapshot_pending_comes_from_its_own_queue() -> None:
    """A team request and an approved PR waiting on bob leave his pending at the queue's count."""
    day = 24.0
    extra = [
        pr(50, created=day * 7, events=(event("review_requested", day * 7, requested_team="core-reviewers"),)),
        pr(51, created=day * 7, events=(event("review_requested", day * 7, requested_reviewer="bob"),),
           reviews=(review("erin", "APPROVED", day * 7 + 1),)),
    ]
    snap = compute_team_snapshot(settings(), "core", [*team_prs(), *extra], [], now=NOW)
    assert sum(r.pending for r in snap.reviewers) <= snap.queue.reviewer
    assert {r.login: r.pending for r in snap.reviewers}["bob"] == 1  # only #30 waits on him


def test_a_team_with_no_prs_gets_an_empty_but_complete_snapshot() -> None:
    """A quiet team still gets a snapshot the bot can show, saying nothing merged."""
    snap = compute_team_snapshot(settings(), "ops", [], [], now=NOW)
    assert snap.merged_count == 0 and snap.queue.length == 0 and snap.analysis.action is None
    assert snap.pickup.calendar.p50 is None and "No PRs were merged this week" in snap.analysis.headline


def test_refresh_all_writes_each_team_and_reads_back_equal(store: Store) -> None:
    """After a refresh the bot reads back exactly what was computed, with the data's age."""
    cfg = settings()
    by_repo: dict[str, list[Any]] = {}
    for p in team_prs():
        by_repo.setdefault(p.repo, []).append(p)
    for i, (repo, prs) in enumerate(sorted(by_repo.items())):
        store.put_prs(repo, prs, cursor=RepoCursor(repo=repo, updated_at=NOW, collect_version=1,
                                                   synced_at=NOW - timedelta(minutes=10 + i)))
    store.add_queue_sample("core", QueueSample(at=NOW - timedelta(hours=5), reviewer=2, author=0,
                                               ci=0, approved=0, oldest_hours=3.0,
                                               oldest_business_hours=3.0))
    snaps = refresh_all(cfg, store, now=NOW, errors=("acme/web: GitHub 502", "acme/infra: 403",
                                                     "acme: could not list repositories"))
    assert set(snaps) == {"core", "ops"}
    for name, snap in snaps.items():
        assert store.get_snapshot(name) == snap
    core = store.get_snapshot("core")
    assert isinstance(core, TeamSnapshot)
    assert core.errors == ("acme/web: GitHub 502", "acme: could not list repositories")
    assert core.data_as_of == NOW - timedelta(minutes=12)  # the older of api (10) and web (12)
    assert core.queue_trend[0].reviewer == 2
    assert snaps["ops"].errors == ("acme/infra: 403", "acme: could not list repositories")


def test_refresh_all_skips_and_names_a_record_it_cannot_use(store: Store) -> None:
    """A record the clocks cannot use is skipped and named; every team still gets its snapshot."""
    from dataclasses import replace

    # a record written without a time zone (an older writer): the team's clocks cannot use it
    naive = replace(pr(1, repo="acme/infra", author="olga"), created_at=datetime(2026, 3, 2, 9))
    store.put_prs("acme/api", [p for p in team_prs() if p.repo == "acme/api"])
    store.put_prs("acme/infra", [naive])
    snaps: dict[str, TeamSnapshot]
    snaps = refresh_all(settings(), store, now=NOW)
    assert "core" in snaps and "ops" in snaps
    assert (store.key("prs", "acme/infra"), "1") in store.quarantined


def test_a_team_is_computed_again_only_when_its_inputs_changed(store: Store) -> None:
    """An unchanged team keeps its snapshot; a write to its repository, or half an hour
    passing, computes it again; another team's write leaves it alone."""
    store.put_prs("acme/api", [p for p in team_prs() if p.repo == "acme/api"])
    store.put_prs("acme/infra", [pr(1, repo="acme/infra", author="olga")])
    first = refresh_all(settings(), store, now=NOW)
    again = refresh_all(settings(), store, now=NOW + timedelta(minutes=5))
    assert {t: s.computed_at for t, s in again.items()} == {"core": NOW, "ops": NOW}
    store.put_prs("acme/infra", [pr(2, repo="acme/infra", author="olga")])
    later = refresh_all(settings(), store, now=NOW + timedelta(minutes=10))
    assert later["core"].computed_at == NOW
    assert later["ops"].computed_at == NOW + timedelta(minutes=10)
    assert later["ops"].queue.length == first["ops"].queue.length + 1
    stale = refresh_all(settings(), store, now=NOW + timedelta(minutes=40))
    assert stale["core"].computed_at == NOW + timedelta(minutes=40)


def test_an_unchanged_queue_sample_moves_on_without_reading_records(store: Store) -> None:
    """With nothing written since the last sample, the next one has the same counts and oldest
    ages grown by the time elapsed, as if computed from the records; a write recomputes it."""
    from jobs.cycle import sample_queues
    from jobs.identity import Identity
    from jobs.queue import queue_now
    from jobs.worktime import WorkCalendar

    cfg = settings()
    store.put_prs("acme/api", [p for p in team_prs() if p.repo == "acme/api"]
                  + [pr(31, created=24.0 * 6, reviews=(review("bob", "CHANGES_REQUESTED", 24.0 * 6 + 2),))])
    errors: list[str] = []
    sample_queues(cfg, store, now=NOW, errors=errors)
    later = NOW + timedelta(hours=29)
    [(_, moved), _] = sample_queues(cfg, store, now=later, errors=errors)
    prs = store.get_prs("acme/api")
    want, _ = queue_now(prs, identity=Identity(cfg.identity), calendar=WorkCalendar.for_team(cfg.teams["core"]),
                        now=later)
    assert (moved.reviewer, moved.author, moved.approved) == (want.reviewer, want.author, want.approved) == (1, 1, 0)
    assert moved.oldest_hours == pytest.approx(want.oldest_hours, abs=1e-9)
    assert moved.oldest_business_hours == pytest.approx(want.oldest_business_hours, abs=1e-9)
    store.put_prs("acme/api", [pr(30, created=24.0 * 7 + 1, merged=24.0 * 7 + 3)])
    [(_, fresh), _] = sample_queues(cfg, store, now=later, errors=errors)
    assert fresh.reviewer == 0 and errors == []


# ---------------------------------------------------------------------------- the sandbox


@dataclass(frozen=True)
class Sandboxed:
    bottleneck: str
    hot_reviewers: dict[str, str]
    snaps: dict[str, TeamSnapshot]
    windowed: dict[str, TeamSnapshot]  # the same data, every member with review windows on
    settings: Settings


@pytest.fixture(scope="module")
def sandboxed(redis_url: str | None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandboxed]:
    """The simulated organisation, backfilled over HTTP once, with every team's snapshot."""
    from jobs.cycle import run_cycle
    from jobs.github.client import connect
    from jobs.ports import FixedClock
    from jobs.sandbox.org import build_org
    from jobs.sandbox.server import SandboxServer

    end = datetime(2026, 3, 11, 15, 0, tzinfo=UTC)
    org = build_org(end=end)
    clock = FixedClock(org.end)
    path: Path = tmp_path_factory.mktemp("sandbox") / "sandbox.rdb"
    store = Store.connect(redis_url, data_path=path, prefix=f"flowbot-test-sandbox-{os.getpid()}")
    store.flush_prefix()
    store.ensure_schema()
    try:
        with SandboxServer(org, clock=clock) as server:
            cfg = from_mapping(org.config(server.base_url), env={"GITHUB_TOKEN": server.token})
            report = run_cycle(cfg, store, connect(cfg, clock=clock), clock=clock, days=14)
            assert not report.errors
            snaps = refresh_all(cfg, store, now=clock.now())
            for team in cfg.teams.values():
                for member in team.members:
                    store.set_review_windows(ReviewWindows(
                        member.github.lower(), SANDBOX_WINDOWS, team.timezone, since=end - timedelta(days=10)))
            windowed = refresh_all(cfg, store, now=clock.now())  # the windows are an input: computed again
        yield Sandboxed(org.bottleneck, org.hot_reviewers, snaps, windowed, cfg)
    finally:
        store.flush_prefix()
        store.close()


SANDBOX_WINDOWS = (Window(time(10), time(10, 30)), Window(time(14), time(14, 30)))


def test_sandbox_interruptions_with_and_without_windows(sandboxed: Sandboxed) -> None:
    """On the simulated org, the same reviews counted without windows (one interruption each,
    and what batching would save) and with everyone's windows on (batches plus the reviews
    outside them, the difference saved), with pickup before and after. The simulated reviewers
    ignore windows (their reviews are spaced by a queue), so some land inside windows but
    rarely two in one: the figures say so rather than inventing a saving."""
    with_total = without_total = inside = 0
    for name, snap in sandboxed.snaps.items():
        without = snap.focus.total()
        with_ = sandboxed.windowed[name].focus.total()
        assert not without.on and without.interruptions == without.outside == without.review_starts > 0, name
        assert without.would_save_hours > 0, name
        assert with_.on and with_.review_starts == without.review_starts, name  # the same reviews
        assert with_.interruptions == with_.batches + with_.outside <= with_.review_starts, name
        assert with_.saved_hours == pytest.approx((with_.inside - with_.batches) * 23 / 60), name
        assert with_.pickup_before.business.count and with_.pickup_after.business.count, name
        with_total += with_.interruptions
        without_total += without.interruptions
        inside += with_.inside
        # what `/flow reviewers` and the digest say, each way
        for snap_, says in ((snap, f"No one has review windows yet: {without.review_starts} review interruptions"),
                            (sandboxed.windowed[name], f"{with_.interruptions} with windows")):
            blocks, _ = render_reviewers(snap_, now=snap_.computed_at)
            assert says in json.dumps(blocks), name
            digest = digest_from_snapshot(sandboxed.settings, name, snap_, [], now=snap_.computed_at)
            assert says in dict(digest.sections)[WINDOWS], name
        assert f"against {without.review_starts} without them" in dict(digest.sections)[WINDOWS], name
    assert inside and with_total <= without_total


def test_analysis_names_the_bottleneck_the_simulation_built_in(sandboxed: Sandboxed) -> None:
    """On the simulated org every team's analysis names the built-in bottleneck (pickup)."""
    assert sandboxed.snaps
    for name, snap in sandboxed.snaps.items():
        assert snap.analysis.dominant_stage == sandboxed.bottleneck, name
        assert "in pickup wait:" in snap.analysis.headline
        assert snap.analysis.action is not None
        assert snap.analysis.action.code in ("spread_reviews", "limit_wip", "review_slots", "split_prs")


def test_sandbox_reviewer_holding_most_requests_is_named(sandboxed: Sandboxed) -> None:
    """The reviewer the simulation overloads is the first name among the top reviewers."""
    for name, snap in sandboxed.snaps.items():
        assert snap.analysis.top_reviewers[0].name == sandboxed.hot_reviewers[name], name


def test_sandbox_pending_never_exceeds_the_queue_it_describes(sandboxed: Sandboxed) -> None:
    """"bob: N waiting on them now" never adds up to more than "Now M waiting" on reviewers."""
    for name, snap in sandboxed.snaps.items():
        assert sum(r.pending for r in snap.reviewers) <= snap.queue.reviewer <= snap.queue.length, name
        for r in snap.reviewers:
            named = [i for i in snap.queue_items
                     if i.turn == "reviewer" and r.login.lower() in (w.lower() for w in i.waiting_on)]
            assert r.pending <= len(named), (name, r.login)


def test_flowbot_report_sandbox_prints_the_headline(redis_url: str | None) -> None:
    """`flowbot report --sandbox` prints each team's view, headline and suggestion, no token."""
    result = CliRunner().invoke(app, ["report", "--sandbox", "--days", "3"],
                                env={"REDIS_URL": redis_url, "COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    assert "Flow report: payments" in result.output
    assert "of this week's lead time" in result.output and "Suggested:" in result.output


def test_flowbot_report_on_one_repository_needs_only_a_token(redis_url: str | None) -> None:
    """`flowbot report OWNER/REPO` with just a token samples that repository and prints its
    view, the team named after it and its members taken from the PRs' authors."""
    from jobs.ports import FixedClock
    from jobs.sandbox.org import build_org
    from jobs.sandbox.server import SandboxServer

    # the command reads the real clock, so the simulated history ends now
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    org = build_org(end=end, teams=1, repos_per_team=1)
    repo = org.full_name(org.teams[0].repos[0])
    with SandboxServer(org, clock=FixedClock(end)) as server:
        result = CliRunner().invoke(
            app, ["report", repo, "--days", "7", "--timezone", "Europe/Berlin"],
            env={"GITHUB_TOKEN": server.token, "GITHUB_API_URL": server.base_url,
                 "REDIS_URL": redis_url, "COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    assert f"Flow report: {org.teams[0].repos[0]}" in result.output
    assert "Queue now:" in result.output and "Suggested:" in result.output
    hot = org.hot_reviewers[org.teams[0].name]
    assert hot in result.output


def test_flowbot_report_on_a_repository_it_cannot_read_says_why(redis_url: str | None) -> None:
    """A repository the token cannot read ends with GitHub's reason, not a traceback."""
    from jobs.ports import FixedClock
    from jobs.sandbox.org import build_org
    from jobs.sandbox.server import SandboxServer

    end = datetime(2026, 3, 11, 15, 0, tzinfo=UTC)
    org = build_org(end=end, teams=1, repos_per_team=1, weeks=1)
    repo = org.full_name(org.teams[0].repos[0])
    with SandboxServer(org, clock=FixedClock(end)) as server:
        server.deny(repo, 404)
        result = CliRunner().invoke(
            app, ["report", repo, "--days", "3"],
            env={"GITHUB_TOKEN": server.token, "GITHUB_API_URL": server.base_url,
                 "REDIS_URL": redis_url})
    assert result.exit_code == 1, result.output
    assert f"could not read {repo}" in result.output and "Traceback" not in result.output


def test_flowbot_report_without_a_token_says_how_to_get_one() -> None:
    """Without GITHUB_TOKEN the report says what to set, and exits 1 without a traceback."""
    result = CliRunner().invoke(app, ["report", "octocat/hello-world"])
    assert result.exit_code == 1
    assert "GITHUB_TOKEN is not set" in result.output and "Traceback" not in result.output


def test_flowbot_report_rejects_a_malformed_repository_name() -> None:
    """A repository given without its owner is refused with the expected form."""
    result = CliRunner().invoke(app, ["report", "hello-world"], env={"GITHUB_TOKEN": "x"})
    assert result.exit_code == 1 and "expected OWNER/REPO" in result.output
