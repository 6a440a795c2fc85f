"""The digest chart: a small, valid, deterministic PNG, also when there is little data."""

from __future__ import annotations

import struct
from dataclasses import replace
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.charts import attach_chart, chart_alt_text, digest_chart, team_charts
from jobs.model import Digest, QueueSample
from tests.factories import T0, snapshot

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the PNG's IHDR chunk."""
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def week_of_samples() -> list[QueueSample]:
    return [
        QueueSample(at=T0 - timedelta(minutes=15 * i), reviewer=3 + (i // 96) % 4, author=1,
                    ci=i % 2, approved=1, oldest_hours=20.0, oldest_business_hours=8.0)
        for i in range(7 * 96)
    ]


def digest() -> Digest:
    snap = snapshot()
    return Digest(team="platform", channel="C0PLATFORM", week_start=T0.date() - timedelta(days=7),
                  week_end=T0.date() - timedelta(days=1), headline="h", snapshot=snap,
                  idempotency_key="digest:platform:2026-W10",
                  queue_samples=tuple(week_of_samples()[::4]))


def test_chart_is_a_small_valid_png() -> None:
    """A week of 15-minute samples draws an 800x340 PNG well under Slack-friendly 150 KB."""
    png = digest_chart(snapshot(), week_of_samples(), tz=ZoneInfo("Europe/Berlin"))
    assert png_size(png) == (800, 340)
    assert 10_000 < len(png) < 150_000


def test_chart_is_deterministic() -> None:
    """The same week draws the same bytes (no timestamps in the file)."""
    samples = week_of_samples()
    assert digest_chart(snapshot(), samples) == digest_chart(snapshot(), samples)


def test_chart_draws_without_samples_or_merged_prs() -> None:
    """A new team with no samples and no merged PRs still gets a chart that says so."""
    snap = snapshot(queue_trend=())
    empty = replace(snap, analysis=replace(snap.analysis, stage_shares=()))
    png = digest_chart(empty, [])
    assert png_size(png) == (800, 340)


def test_chart_from_a_digest_uses_its_own_samples() -> None:
    """A digest carries its week's samples, so delivery can draw it without the store."""
    d = digest()
    from_digest = digest_chart(d)
    assert from_digest == digest_chart(d, list(d.queue_samples))
    assert from_digest != digest_chart(d, [])
    attached = attach_chart(d)
    assert attached.chart_png == from_digest
    assert attach_chart(attached) is attached  # an existing chart is kept


def test_alt_text_describes_the_chart() -> None:
    """Screen readers hear the stage shares and the queue in words."""
    text = chart_alt_text(digest())
    assert "pickup wait 48% (was 30%)" in text
    assert "Queue now 10 waiting" in text


def test_one_sample_still_draws_a_week_wide_axis(caplog: pytest.LogCaptureFixture) -> None:
    """A team sampled once (just set up) gets a readable chart, not a degenerate axis."""
    one = week_of_samples()[:1]
    png = digest_chart(snapshot(), one)
    assert png_size(png) == (800, 340)
    assert "MAXTICKS" not in caplog.text


def test_team_charts_draw_each_team_in_its_time_zone() -> None:
    """The chart the worker injects labels days in the team's zone (unknown teams in UTC)."""
    from jobs.settings import Settings

    settings = Settings.model_validate({
        "github": {"organisation": "acme"},
        "teams": {"platform": {"members": [{"github": "bob"}], "repositories": ["api"],
                               "channel": "C0PLATFORM", "timezone": "Pacific/Auckland"}},
    })
    d = digest()
    draw = team_charts(settings)
    assert draw(d) == digest_chart(d, tz=ZoneInfo("Pacific/Auckland"))
    other = replace(d, team="other")
    assert draw(other) == digest_chart(other, tz=None)
