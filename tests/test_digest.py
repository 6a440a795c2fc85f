"""The weekly digest: what it says, how it reads as text and Block Kit, and `flowbot digest`."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.models.blocks import Block
from typer.testing import CliRunner

from bot.blocks import MAX_BLOCKS, MAX_HEADER_TEXT, MAX_SECTION_TEXT
from bot.blocks.digest import render_digest
from bot.cli import app
from bot.terminal import alert_text, digest_text, status_text
from jobs import digest as dg
from jobs.model import (
    Action,
    Alert,
    Contributor,
    QueueItem,
    QueueSample,
    StageShare,
    WorkflowStats,
)
from jobs.settings import Settings
from jobs.store import Store
from tests.factories import T0, snapshot
from tests.fakes.slack_api import FakeSlack

SEND = T0 + timedelta(minutes=30)  # Monday 09:30 UTC


def settings(tz: str = "UTC", **team: Any) -> Settings:
    return Settings.model_validate({
        "github": {"organisation": "acme"},
        "teams": {"platform": {"members": [{"github": "bob"}], "repositories": ["api"],
                               "channel": "C0PLATFORM", "timezone": tz, **team}},
    })


def piled_up_snapshot(**overrides: Any) -> Any:
    """Pickup dominates this week (58%) and did before (41%): no shift, a rise."""
    base = snapshot()
    shares = (
        StageShare(stage="coding", hours_this_week=20.0, share_this_week=0.12, share_before=0.2),
        StageShare(stage="pickup", hours_this_week=96.0, share_this_week=0.58, share_before=0.41),
        StageShare(stage="review", hours_this_week=30.0, share_this_week=0.18, share_before=0.3),
        StageShare(stage="merge", hours_this_week=20.0, share_this_week=0.12, share_before=0.09),
    )
    analysis = replace(base.analysis, stage_shares=shares, dominant_stage="pickup",
                       previous_dominant_stage="pickup", shifted=False)
    return replace(base, analysis=analysis, **overrides)


def sample(hours: float, reviewer: int, *, author: int = 1, ci: int = 0) -> QueueSample:
    return QueueSample(at=SEND + timedelta(hours=hours), reviewer=reviewer, author=author, ci=ci,
                       approved=1, oldest_hours=30.0, oldest_business_hours=12.0)


def all_text(blocks: list[dict[str, Any]]) -> str:
    """Every text a person can read in ``blocks``, one per line."""
    out = []
    for block in blocks:
        parts = [block.get("text"), *block.get("fields", ()), *block.get("elements", ())]
        out += [p["text"] for p in parts if isinstance(p, dict) and "text" in p]
    return "\n".join(out)


# --------------------------------------------------------------------------- content


def test_headline_names_where_waiting_piled_up_and_how_much_it_grew() -> None:
    """A lead reads which stage held the waiting and its share this week vs before."""
    digest = dg.digest_from_snapshot(settings(), "platform", piled_up_snapshot(), [], now=SEND)
    assert digest.headline == (
        "Waiting piled up in pickup wait: 58% of this week's lead time, up from 41%,"
        " most of it in acme/api; the queue is growing."
    )


def test_headline_says_when_the_bottleneck_moved() -> None:
    """When the dominant stage changed, the headline names the new one and the old one."""
    digest = dg.digest_from_snapshot(settings(), "platform", snapshot(), [], now=SEND)
    assert digest.headline.startswith("Waiting moved to pickup wait: 48% of this week's lead time")
    assert "review held the most" in digest.headline
    shares = dict(digest.sections)[dg.SHARES]
    assert "The bottleneck moved from review to pickup wait." in shares
    assert "would drop only 9%" in shares


def test_headline_without_merged_prs_says_so() -> None:
    """A quiet week does not invent a bottleneck."""
    snap = snapshot()
    quiet = replace(snap, analysis=replace(snap.analysis, stage_shares=(), dominant_stage=None,
                                           previous_dominant_stage=None, shifted=False))
    digest = dg.digest_from_snapshot(settings(), "platform", quiet, [], now=SEND)
    assert "No PRs were merged this week" in digest.headline


def test_digest_covers_the_seven_local_days_before_sending_across_dst() -> None:
    """A New York digest sent Monday 09:30 after the spring switch covers Mon..Sun local."""
    send = datetime(2026, 3, 9, 13, 30, tzinfo=timezone.utc)  # 09:30 EDT; DST began Mar 8
    s = settings("America/New_York")
    start, end = dg.digest_window(s.teams["platform"], send)
    assert start == datetime(2026, 3, 2, 5, 0, tzinfo=timezone.utc)  # Mon 00:00 EST
    assert end == datetime(2026, 3, 9, 4, 0, tzinfo=timezone.utc)  # Mon 00:00 EDT
    assert end - start == timedelta(hours=167)
    digest = dg.digest_from_snapshot(s, "platform", snapshot(), [], now=send)
    assert (digest.week_start.isoformat(), digest.week_end.isoformat()) == ("2026-03-02", "2026-03-08")
    assert digest.idempotency_key == "digest:platform:2026-W11"
    assert digest.channel == "C0PLATFORM"


def test_queue_trend_compares_with_a_week_ago_and_names_the_peak() -> None:
    """The queue section says how the queue moved over the week, from the sampled series."""
    samples = [sample(-24 * 8, 2), sample(-24 * 6.9, 3), sample(-24 * 3, 9, ci=2), sample(-1, 5)]
    snap = snapshot(queue=replace(snapshot().queue, at=SEND - timedelta(hours=2)))
    digest = dg.digest_from_snapshot(settings(), "platform", snap, samples, now=SEND)
    queue = dict(digest.sections)[dg.QUEUE]
    assert "Now 6 waiting (5 on reviewers, 1 on authors, 0 on CI)" in queue
    assert "A week ago: 3 (up 3)." in queue
    assert "Peak this week: 12 (Fri 09:30)." in queue
    assert "the queue grows" in queue
    assert [s.reviewer for s in digest.queue_samples] == [3, 9]  # the week's (Mon..Sun), for the chart


def test_the_peak_and_baseline_come_only_from_the_days_the_title_names() -> None:
    """A Monday-morning sample after the week is "now", never the peak of Mon 16 to Sun 22."""
    send = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)  # Mon 09:00 Europe/Berlin
    s = settings("Europe/Berlin")

    def at(when: datetime, reviewer: int) -> QueueSample:
        return QueueSample(at=when, reviewer=reviewer, author=0, ci=0, approved=0,
                           oldest_hours=5.0, oldest_business_hours=3.0)

    samples = [at(datetime(2026, 11, 15, 22, 0, tzinfo=timezone.utc), 1),  # Sun 15, 23:00 local
               at(datetime(2026, 11, 18, 16, 0, tzinfo=timezone.utc), 2),  # Wed 17:00
               at(datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc), 3),   # Fri 10:00
               at(datetime(2026, 11, 22, 22, 59, tzinfo=timezone.utc), 2),  # Sun 22, 23:59
               at(datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc), 4)]   # Mon 23, 09:00: now
    snap = snapshot(queue=replace(snapshot().queue, at=send - timedelta(hours=3)))
    digest = dg.digest_from_snapshot(s, "platform", snap, samples, now=send)
    assert (digest.week_start.isoformat(), digest.week_end.isoformat()) == ("2026-11-16", "2026-11-22")
    queue = dict(digest.sections)[dg.QUEUE]
    assert "Peak this week: 3 (Fri 10:00)." in queue
    assert "Mon 09:00" not in queue
    assert "Now 4 waiting" in queue and "A week ago: 1 (up 3)." in queue
    assert all(digest.week_start <= q.at.astimezone(s.teams["platform"].zone).date()
               <= digest.week_end for q in digest.queue_samples)


def test_sections_cover_every_part_of_the_why() -> None:
    """Reviewer load, focus-hours, CI, the AI split and the action all appear in plain text."""
    digest = dg.digest_from_snapshot(settings(), "platform", snapshot(), [], now=SEND)
    text = dict(digest.sections)
    assert ("bob: 30 interruptions (14 direct requests, 4 via a team, 3 re-requests,"
            " 9 context switches), about 12 focus-hours lost; 5 waiting on them now.") in text[dg.REVIEWERS]
    assert "72% of the team's review requests" in text[dg.REVIEWERS]
    assert "22 focus-hours" in text[dg.REVIEWERS]
    assert "integration: run p90 34 min" in text[dg.CI]
    assert "Flakiest: integration, 12% of runs needed a rerun." in text[dg.CI]
    assert "14 calendar h on CI" in text[dg.CI]
    assert "7 of 18 merged PRs were AI-assisted (39%)" in text[dg.AI]
    assert text[dg.ACTION].startswith("Spread reviews")
    assert "Why:" in text[dg.ACTION]
    assert dg.SIZE not in text  # large PRs do not dominate in this snapshot


def test_reviewer_line_says_what_the_focus_hours_are_made_of() -> None:
    """No switches but focus-hours lost: the line shows the requests behind them, never "0 context switches"."""
    base = snapshot()
    alice = replace(base.reviewers[0], login="alice", requests_direct=5, requests_via_team=5,
                    re_requests=0, context_switches=0, focus_hours=10 * 23 / 60)
    digest = dg.digest_from_snapshot(settings(), "platform", replace(base, reviewers=(alice,)), [], now=SEND)
    line = dict(digest.sections)[dg.REVIEWERS].splitlines()[0]
    assert line.startswith("alice: 10 interruptions (5 direct requests, 5 via a team), about 3.8 focus-hours")
    assert "0 context switches" not in line


def test_size_mix_appears_when_large_prs_dominate() -> None:
    """When big PRs take over, the digest shows the size mix and pickup by size."""
    snap = snapshot()
    big = replace(snap, analysis=replace(snap.analysis, large_prs_dominate=True),
                  size_mix_week=(("S", 0.2), ("M", 0.2), ("L", 0.35), ("XL", 0.25)))
    digest = dg.digest_from_snapshot(settings(), "platform", big, [], now=SEND)
    size = dict(digest.sections)[dg.SIZE]
    assert "Large PRs (L and XL): 60% of this week's PRs, 15% before." in size
    assert "XL 22 working h" in size


def test_stale_or_partial_data_is_said_plainly() -> None:
    """A digest built on old or partial data says so instead of passing it off as fresh."""
    snap = snapshot(errors=("acme/web: GitHub 502",))
    digest = dg.digest_from_snapshot(settings(), "platform", snap, [], now=SEND + timedelta(days=1))
    warning = dict(digest.sections)[dg.WARNING]
    assert "This data is 25 h old" in warning and "flowbot doctor" in warning
    assert "acme/web: GitHub 502" in warning
    blocks, text = render_digest(digest)
    assert blocks[3]["text"]["text"].startswith(":warning: This data is 25 h old")
    assert text.index("Data warning:") < text.index("Suggested action:")
    assert dg.WARNING not in dict(dg.digest_from_snapshot(settings(), "platform", snapshot(), [],
                                                         now=SEND).sections)


# --------------------------------------------------------------------------- store


def test_build_digest_compares_latency_with_last_weeks_digest(store: Store) -> None:
    """The second week's digest shows last week's p50/p90 beside this week's."""
    s = settings()
    store.put_snapshot(snapshot())
    first = dg.build_digest(s, store, "platform", now=SEND)
    assert "No digest from last week" in dict(first.sections)[dg.LATENCY]
    later = snapshot(computed_at=SEND + timedelta(days=7))
    store.put_snapshot(replace(later, pickup=snapshot().approval))
    second = dg.build_digest(s, store, "platform", now=SEND + timedelta(days=7))
    latency = dict(second.sections)[dg.LATENCY]
    assert "Pickup wait (16 PRs): p50 9 working h (20 h)" in latency
    assert "last week p50 4 working h, p90 18 working h" in latency
    assert second.idempotency_key != first.idempotency_key


def test_a_second_build_in_the_same_week_keeps_the_weeks_numbers(store: Store) -> None:
    """A mid-week `--print` does not overwrite the numbers next week compares against."""
    s = settings()
    store.put_snapshot(snapshot())
    dg.build_digest(s, store, "platform", now=SEND)
    store.put_snapshot(replace(snapshot(), pickup=snapshot().merge))
    dg.build_digest(s, store, "platform", now=SEND + timedelta(days=2))
    kept = dg.WeekNumbers.from_json(store.get_json("digest", "numbers", "platform", "2026-W10"))
    assert kept is not None and kept.pickup_p50 == snapshot().pickup.business.p50


def test_build_digest_reads_the_weeks_queue_samples(store: Store) -> None:
    """Samples stored by the sampling cycle become the digest's queue trend."""
    store.put_snapshot(snapshot())
    for h, r in ((-24 * 7.5, 2), (-24 * 5, 4), (-24 * 2, 8), (-2, 6)):
        store.add_queue_sample("platform", sample(h, r))
    digest = dg.build_digest(settings(), store, "platform", now=SEND)
    assert "A week ago: 3 (up 7)." in dict(digest.sections)[dg.QUEUE]
    assert [q.reviewer for q in digest.queue_samples] == [4, 8]  # Sunday's days, not this morning's


def test_build_digest_without_data_explains_what_to_run(store: Store) -> None:
    """No snapshot yet, or a mistyped team: a named error that says what to do."""
    with pytest.raises(dg.DigestUnavailable, match="flowbot sample"):
        dg.build_digest(settings(), store, "platform", now=SEND)
    with pytest.raises(dg.DigestUnavailable, match="configured teams: platform"):
        dg.build_digest(settings(), store, "platfrom", now=SEND)


def test_a_failing_chart_leaves_a_text_digest(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    """When drawing the chart fails, the digest still goes out, without a chart."""
    store.put_snapshot(snapshot())

    def broken(_: Any) -> bytes:
        raise RuntimeError("no fonts")

    digest = dg.build_digest(settings(), store, "platform", now=SEND, chart=broken)
    assert digest.chart_png is None and digest.sections
    assert "chart failed for team platform" in caplog.text
    drawn = dg.build_digest(settings(), store, "platform", now=SEND, chart=lambda d: b"png")
    assert drawn.chart_png == b"png"


# --------------------------------------------------------------------------- rendering


def hostile_snapshot() -> Any:
    """GitHub text trying to ping everyone, break links and overflow every limit."""
    snap = snapshot()
    items = (replace(snap.queue_items[0], title="<!channel> urgent"),
             *(QueueItem(repo="acme/api", number=n, title=f"<!here> pr {n} " + "x" * 300,
                         url=f"https://github.com/acme/api/pull/{n}", author="<@U123>",
                         turn="reviewer", waiting_on=("bob",), age_hours=10.0,
                         age_business_hours=4.0, size="S", ai_assisted=False)
               for n in range(1000, 1040)))
    waits = tuple(Contributor(name=f"acme/api#{i.number}", value=50.0 - k, unit="h",
                              detail="waiting on <!everyone>", url=i.url)
                  for k, i in enumerate(items))
    flows = tuple(WorkflowStats(name=f"<!channel> wf {n} " + "y" * 2000, attempts=3,
                                queue_p50_min=1.0, queue_p90_min=2.0, run_p50_min=3.0,
                                run_p90_min=4.0, failure_rate=0.1, rerun_rate=0.5)
                  for n in range(5))
    action = Action(code="x", text="Ask <!subteam^S1> to review & merge", because="<b>because</b>")
    analysis = replace(snap.analysis, longest_waits=waits, action=action, large_prs_dominate=True,
                       top_repos=(Contributor(name="acme/<evil>", value=3.0, unit="h"),))
    return replace(snap, queue_items=items, workflows=flows, analysis=analysis,
                   errors=tuple(f"<!channel> repo {n} down" for n in range(50)))


def test_blocks_stay_within_slack_limits_and_escape_github_text() -> None:
    """A PR titled `<!channel> urgent` pings nobody, and the message stays within Slack limits."""
    digest = dg.digest_from_snapshot(settings(), "platform", hostile_snapshot(), [], now=SEND)
    blocks, text = render_digest(digest)
    assert len(blocks) <= MAX_BLOCKS
    for block in blocks:
        parsed = Block.parse(block)
        assert parsed is not None
        parsed.validate_json()  # slack_sdk's own limit checks
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= MAX_HEADER_TEXT
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= MAX_SECTION_TEXT
    rendered = all_text(blocks) + text
    for ping in ("<!channel>", "<!here>", "<!everyone>", "<!subteam", "<@U123>", "<b>", "<evil>"):
        assert ping not in rendered
    assert "&lt;!channel&gt; urgent" in rendered
    assert "<https://github.com/acme/api/pull/412|acme/api#412>" in rendered


def test_fallback_text_reads_well_on_its_own() -> None:
    """The notification text leads with the headline and the action, then the stage shares."""
    digest = dg.digest_from_snapshot(settings(), "platform", piled_up_snapshot(), [], now=SEND)
    _, text = render_digest(digest)
    assert text.startswith("Weekly flow digest for platform, Mon 23 Feb to Sun 01 Mar 2026: "
                           "Waiting piled up in pickup wait: 58%")
    assert text.index("Suggested action: Spread reviews") < text.index("Where the waiting went")
    assert "pickup wait  58% (was 41%)" in text
    assert "&lt;!channel&gt;" in text and "<!channel>" not in text
    assert "*" not in text and "<http" not in text  # no markup to trip over


def test_blocks_lead_with_headline_and_action() -> None:
    """In Slack the headline and the suggested action come before the details."""
    digest = dg.digest_from_snapshot(settings(), "platform", snapshot(), [], now=SEND)
    blocks, _ = render_digest(digest)
    assert blocks[0] == {"type": "header",
                         "text": {"type": "plain_text", "text": "Weekly flow digest: platform"}}
    assert blocks[2]["text"]["text"].startswith("*Waiting moved to pickup")
    assert "*Suggested action:* Spread reviews" in blocks[3]["text"]["text"]
    assert blocks[-1]["type"] == "context" and "GitHub data as of" in all_text(blocks[-1:])


def test_terminal_text_puts_the_action_first_and_keeps_github_text_readable() -> None:
    """`--print` shows the headline, the action, then each section, unescaped and wrapped."""
    digest = dg.digest_from_snapshot(settings(), "platform", snapshot(), [], now=SEND)
    out = digest_text(digest, width=80)
    assert out.startswith("Weekly flow digest: platform (Mon 23 Feb to Sun 01 Mar 2026)\n")
    assert out.index("Suggested action\n") < out.index("Where the waiting went\n")
    assert '"Add <!channel> rate limiter & retries"' in out  # a terminal needs no escaping
    assert max(len(line) for line in out.splitlines()) <= 80


def test_terminal_alert_and_status_lines_read_on_their_own() -> None:
    """`flowbot demo` prints alerts and a team's status as short plain lines."""
    alert = Alert(team="platform", rule="queue_length", severity="critical", value=22, threshold=20,
                  unit="PRs", message="Review queue is critical for platform: 22 PRs (threshold 20 PRs).", at=T0,
                  idempotency_key="k", recipients=("U0LEAD001",), details=("oldest: acme/api#412",))
    assert alert_text(alert, width=100) == (
        "[CRITICAL] Review queue is critical for platform: 22 PRs (threshold 20 PRs).\n"
        "  - oldest: acme/api#412\n"
    )
    assert alert_text(replace(alert, recovered=True, message="Review queue recovered for platform")).startswith(
        "[RECOVERED] Review queue recovered for platform\n")
    status = status_text(snapshot(), now=T0 + timedelta(hours=3))
    assert status.splitlines()[0].startswith("platform: 10 waiting (7 on reviewers")
    assert "bottleneck: pickup wait, moved from review" in status
    assert "try: Spread reviews" in status
    assert status.rstrip().endswith("data 3.1 h old")


# --------------------------------------------------------------------------- CLI


@pytest.fixture
def cli_env(tmp_path: Path, redis_url: str | None, request: pytest.FixtureRequest) -> tuple[Store, dict[str, str], Path]:
    """A store the CLI reaches (the test Redis, or an embedded file) and a config file for it."""
    store = request.getfixturevalue("store" if redis_url else "embedded_store")
    storage = f'prefix = "{store.prefix}"\n' if redis_url else f'path = "{tmp_path / "embedded.rdb"}"\n'
    config = tmp_path / "config.toml"
    config.write_text(
        '[github]\norganisation = "acme"\n\n[storage]\n' + storage
        + '\n[teams.platform]\nmembers = [{ github = "bob" }]\nrepositories = ["api"]\n'
        'channel = "C0PLATFORM"\ntimezone = "Europe/Berlin"\n',
        encoding="utf-8",
    )
    return store, ({"REDIS_URL": redis_url} if redis_url else {}), config


def test_cli_digest_print_shows_the_digest(cli_env: tuple[Store, dict[str, str], Path], tmp_path: Path) -> None:
    """`flowbot digest --team platform --print` prints the digest from the stored snapshot."""
    store, env, config = cli_env
    store.put_snapshot(snapshot())
    png = tmp_path / "chart.png"
    result = CliRunner().invoke(
        app, ["digest", "--team", "platform", "--print", "-c", str(config), "--chart", str(png)],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert "Weekly flow digest: platform" in result.output
    assert "Waiting moved to pickup" in result.output
    assert "Suggested action" in result.output
    assert png.read_bytes().startswith(b"\x89PNG")


def test_cli_digest_for_an_unknown_team_says_which_exist(cli_env: tuple[Store, dict[str, str], Path]) -> None:
    """A typo in --team is one clear line and exit code 1, not a traceback."""
    _, env, config = cli_env
    result = CliRunner().invoke(app, ["digest", "--team", "platfrom", "-c", str(config)], env=env)
    assert result.exit_code == 1
    assert "unknown team 'platfrom'; configured teams: platform" in result.output


def test_cli_digest_post_sends_blocks_and_the_chart_once(cli_env: tuple[Store, dict[str, str], Path]) -> None:
    """`--post` posts the digest with its chart in the thread (files upload v2), and only once."""
    store, env, config = cli_env
    store.put_snapshot(snapshot())
    with FakeSlack() as fake:
        env = {**env, "SLACK_BOT_TOKEN": fake.token, "SLACK_API_URL": fake.api_url}
        args = ["digest", "--team", "platform", "--post", "-c", str(config)]
        first = CliRunner().invoke(app, args, env=env)
        again = CliRunner().invoke(app, args, env=env)
        assert first.exit_code == 0, first.output
        assert again.exit_code == 0, again.output
        assert "Posted to platform's channel C0PLATFORM." in first.output
        [message] = fake.messages("C0PLATFORM")
        assert message["text"].startswith("Weekly flow digest for platform")
        assert any(b["type"] == "header" for b in message["blocks"])
        assert len(fake.calls("files.getUploadURLExternal")) == 1
        [upload] = fake.calls("files.completeUploadExternal")
        assert upload.params["thread_ts"] == message["ts"]
        [chart] = fake.files()
        assert chart["content"].startswith(b"\x89PNG")


def test_cli_digest_post_stays_as_text_when_the_chart_upload_fails(
    cli_env: tuple[Store, dict[str, str], Path],
) -> None:
    """A failed chart upload leaves the digest posted, readable as text, and the command OK."""
    store, env, config = cli_env
    store.put_snapshot(snapshot())
    with FakeSlack() as fake:
        fake.fail("files.getUploadURLExternal", error="internal_error")
        env = {**env, "SLACK_BOT_TOKEN": fake.token, "SLACK_API_URL": fake.api_url}
        result = CliRunner().invoke(
            app, ["digest", "--team", "platform", "--post", "-c", str(config)], env=env
        )
        assert result.exit_code == 0, result.output
        [message] = fake.messages("C0PLATFORM")
        assert "Suggested action: Spread reviews" in message["text"]
        assert fake.files() == []


def test_cli_digest_post_without_a_token_says_what_to_set(cli_env: tuple[Store, dict[str, str], Path]) -> None:
    """Posting without SLACK_BOT_TOKEN is one clear line, not a traceback."""
    store, env, config = cli_env
    store.put_snapshot(snapshot())
    result = CliRunner().invoke(app, ["digest", "--team", "platform", "--post", "-c", str(config)],
                                env=env)
    assert result.exit_code == 1
    assert "SLACK_BOT_TOKEN is not set" in result.output


def test_longest_waits_name_merged_prs_by_title(store: Store) -> None:
    """A merged PR among the longest waits is shown with its title, linked in Slack."""
    from tests.factories import pr

    snap = snapshot()
    waits = (Contributor(name="acme/api#77", value=40.0, unit="h",
                         detail="merged; mostly pickup wait until bob",
                         url="https://github.com/acme/api/pull/77"),)
    store.put_snapshot(replace(snap, analysis=replace(snap.analysis, longest_waits=waits)))
    store.put_prs("acme/api", [pr(77, title="Cache <tokens>", merged=30.0)])
    digest = dg.build_digest(settings(), store, "platform", now=SEND)
    assert ('acme/api#77 "Cache <tokens>": 40 working h, merged; mostly pickup wait until bob'
            in dict(digest.sections)[dg.WAITS])
    blocks, _ = render_digest(digest)
    assert ('• <https://github.com/acme/api/pull/77|acme/api#77> "Cache &lt;tokens&gt;"'
            in all_text(blocks))


def test_a_preview_before_the_scheduled_digest_records_nothing(store: Store) -> None:
    """`/flow digest` on a Wednesday, before a Friday digest, does not set the week's numbers."""
    s = settings(digest_day="fri", digest_time="16:00")
    store.put_snapshot(snapshot())
    wednesday = datetime(2026, 3, 4, 12, 0, tzinfo=timezone.utc)
    assert dg.scheduled_in_week(s, "platform", wednesday) == datetime(2026, 3, 6, 16, 0,
                                                                      tzinfo=timezone.utc)
    dg.build_digest(s, store, "platform", now=wednesday)
    assert store.get_json("digest", "numbers", "platform", "2026-W10") is None
    dg.build_digest(s, store, "platform", now=datetime(2026, 3, 6, 16, 0, tzinfo=timezone.utc))
    assert store.get_json("digest", "numbers", "platform", "2026-W10") is not None
