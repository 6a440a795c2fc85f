"""The digest chart: a small, valid, deterministic PNG, also when there is little data."""

from __future__ import annotations

import struct
from dataclasses import replace
from datetime import date, datetime, timedelta
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


def test_the_digest_week_axis_ends_with_its_sunday() -> None:
    """The queue panel of a digest shows its seven days, never the Monday after."""
    from bot.charts import week_span, day_ticks

    berlin = ZoneInfo("Europe/Berlin")
    start, end = week_span(date(2026, 3, 23), date(2026, 3, 29), berlin)  # DST starts Sun 29 Mar
    ticks = day_ticks(start, end, berlin)
    assert [t.strftime("%a %d") for t in ticks] == ["Mon 23", "Tue 24", "Wed 25", "Thu 26", "Fri 27",
                                                    "Sat 28", "Sun 29"]
    last = datetime(2026, 3, 29, 23, 45, tzinfo=berlin)  # a snapshot's week ends at its last sample
    assert day_ticks(last - timedelta(days=7), last, berlin)[-1].strftime("%a %d") == "Sun 29"


def _lab_under(hex_colour: str, matrix: tuple[tuple[float, ...], ...]) -> tuple[float, float, float]:
    """CIELAB of a colour as seen through a colour-vision matrix (Machado et al. 2009, severity 1)."""
    lin = [((c / 255 + 0.055) / 1.055) ** 2.4 if c / 255 > 0.04045 else c / 255 / 12.92
           for c in bytes.fromhex(hex_colour[1:])]
    rgb = [min(1.0, max(0.0, sum(m * v for m, v in zip(row, lin, strict=True)))) for row in matrix]
    xyz = [sum(m * v for m, v in zip(row, rgb, strict=True)) / w for row, w in zip(
        ((0.4124, 0.3576, 0.1805), (0.2126, 0.7152, 0.0722), (0.0193, 0.1192, 0.9505)),
        (0.95047, 1.0, 1.08883), strict=True)]
    f = [t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116 for t in xyz]
    return 116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])


VISION = {
    "normal": ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
    "protanopia": ((0.152286, 1.052583, -0.204868), (0.114503, 0.786281, 0.099216),
                   (-0.003882, -0.048116, 1.051998)),
    "deuteranopia": ((0.367322, 0.860646, -0.227968), (0.280085, 0.672501, 0.047413),
                     (-0.011820, 0.042940, 0.968881)),
    "tritanopia": ((1.255528, -0.076749, -0.178779), (-0.078411, 0.930809, 0.147602),
                   (0.004733, 0.691367, 0.303900)),
}


def test_on_reviewers_and_pickup_wait_are_told_apart_by_everyone() -> None:
    """"on reviewers" and "pickup wait" differ clearly (CIELAB distance >= 15) in every vision."""
    from bot.charts import STAGE_COLOURS, TURN_COLOURS

    for name, matrix in VISION.items():
        a = _lab_under(TURN_COLOURS["reviewer"], matrix)
        b = _lab_under(STAGE_COLOURS["pickup"], matrix)
        assert sum((x - y) ** 2 for x, y in zip(a, b, strict=True)) ** 0.5 >= 15, name


def test_the_chart_says_working_hours_as_every_text_does() -> None:
    """The shares axis reads "working hours", the word the digest and alerts use."""
    from bot.charts import SHARES_AXIS

    assert "working hours" in SHARES_AXIS and "business" not in SHARES_AXIS
