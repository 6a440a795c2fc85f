"""Business hours per team: hand-written cases and properties against a slow reference."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from functools import cache
from zoneinfo import ZoneInfo

import holidays
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from jobs.settings import WEEKDAYS, WorkHours
from jobs.worktime import WorkCalendar

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
SYDNEY = ZoneInfo("Australia/Sydney")


def cal(**kw: object) -> WorkCalendar:
    return WorkCalendar.for_team(WorkHours(**kw))  # type: ignore[arg-type]


def local(tz: ZoneInfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=tz)


# ---------------------------------------------------------------------- hand-written cases


def test_friday_afternoon_to_monday_morning_counts_two_hours() -> None:
    """A PR readied Friday 16:00 and reviewed Monday 10:00 waited 2 business hours (9-17)."""
    c = cal(timezone="Europe/Berlin")
    start, end = local(BERLIN, 2026, 3, 6, 16), local(BERLIN, 2026, 3, 9, 10)
    assert c.hours_between(start, end) == 2.0
    assert c.business_hours([start], [end]).tolist() == [2.0]


def test_public_holidays_inside_a_wait_do_not_count() -> None:
    """Good Friday and Easter Monday (Germany) are not working time."""
    start, end = local(BERLIN, 2026, 4, 2, 16), local(BERLIN, 2026, 4, 7, 10)
    assert cal(timezone="Europe/Berlin").hours_between(start, end) == 18.0
    assert cal(timezone="Europe/Berlin", holiday_country="DE").hours_between(start, end) == 2.0


def test_subdivision_holidays_apply_only_where_configured() -> None:
    """International Women's Day is a holiday in Berlin but not in Bavaria."""
    start, end = local(BERLIN, 2027, 3, 8, 9), local(BERLIN, 2027, 3, 8, 17)
    berlin = cal(timezone="Europe/Berlin", holiday_country="DE", holiday_subdivision="BE")
    bavaria = cal(timezone="Europe/Berlin", holiday_country="DE", holiday_subdivision="BY")
    assert berlin.hours_between(start, end) == 0.0
    assert bavaria.hours_between(start, end) == 8.0


def test_subdivisions_are_read_in_any_case_or_by_name_and_unknown_ones_are_named() -> None:
    """'be' means Berlin, 'England' means ENG; a subdivision the country lacks is a config error."""
    women = local(BERLIN, 2027, 3, 8, 9), local(BERLIN, 2027, 3, 8, 17)
    assert cal(timezone="Europe/Berlin", holiday_country="DE",
               holiday_subdivision="be").hours_between(*women) == 0.0
    boxing = datetime(2026, 12, 28, 9, tzinfo=UTC), datetime(2026, 12, 28, 17, tzinfo=UTC)
    assert cal(timezone="Europe/London", holiday_country="GB",
               holiday_subdivision="England").hours_between(*boxing) == 0.0
    # refused by the settings themselves, so check-config names it before any sample runs
    with pytest.raises(ValidationError, match="DE has no subdivision 'XX'; use one of BB, BE"):
        cal(holiday_country="DE", holiday_subdivision="XX")
    with pytest.raises(ValidationError, match="needs holiday_country"):
        cal(holiday_subdivision="BE")


def test_configured_days_off_do_not_count() -> None:
    """A team's own day off (an offsite) is skipped like a holiday."""
    c = cal(timezone="Europe/Berlin", days_off=(date(2026, 3, 10),))
    assert c.hours_between(local(BERLIN, 2026, 3, 9, 9), local(BERLIN, 2026, 3, 12, 9)) == 16.0
    assert not c.is_working_day(date(2026, 3, 10))


def test_a_wait_across_new_year_skips_the_holiday() -> None:
    """31 Dec 16:00 to 2 Jan 10:00 is 2 hours when 1 January is a holiday."""
    c = cal(timezone="Europe/Berlin", holiday_country="DE")
    assert c.hours_between(local(BERLIN, 2025, 12, 31, 16), local(BERLIN, 2026, 1, 2, 10)) == 2.0


def test_working_hours_keep_their_length_across_the_spring_dst_switch() -> None:
    """Friday noon to Monday noon over the March switch: 71 calendar hours, 8 business hours."""
    c = cal(timezone="Europe/Berlin")
    start, end = local(BERLIN, 2026, 3, 27, 12), local(BERLIN, 2026, 3, 30, 12)
    assert (end.astimezone(UTC) - start.astimezone(UTC)).total_seconds() / 3600 == 71.0
    assert c.hours_between(start, end) == 8.0


@pytest.mark.parametrize(
    ("tz", "day"),
    [
        (BERLIN, date(2026, 3, 29)),  # spring forward 02:00 -> 03:00
        (BERLIN, date(2026, 10, 25)),  # fall back 03:00 -> 02:00
        (NEW_YORK, date(2026, 3, 8)),
        (NEW_YORK, date(2026, 11, 1)),
        (SYDNEY, date(2026, 4, 5)),
        (SYDNEY, date(2026, 10, 4)),
    ],
)
def test_a_working_day_has_its_wall_clock_length_on_a_dst_switch_night(
    tz: ZoneInfo, day: date
) -> None:
    """Working hours 01:00-04:00 span the switch; the day still counts its 3 wall-clock hours."""
    c = cal(timezone=tz.key, working_days=WEEKDAYS, working_hours="01:00-04:00")
    start = datetime.combine(day, datetime.min.time(), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    assert c.hours_between(start, end) == 3.0
    elapsed = end.astimezone(UTC) - start.astimezone(UTC)
    assert elapsed.total_seconds() / 3600 != 24.0  # the day itself is 23 or 25 h long


def test_the_repeated_hour_of_a_fall_back_counts_once_and_never_negative() -> None:
    """Inside the repeated hour, the second pass adds nothing and nothing goes negative."""
    c = cal(timezone="Europe/Berlin", working_days=WEEKDAYS, working_hours="01:00-04:00")
    first_pass = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST
    second_pass = datetime(2026, 10, 25, 1, 15, tzinfo=UTC)  # 02:15 CET (wall time went back)
    after = datetime(2026, 10, 25, 2, 0, tzinfo=UTC)  # 03:00 CET
    assert c.hours_between(first_pass, second_pass) == 0.5  # 02:30 -> 03:00 on the wall clock
    assert c.hours_between(second_pass, after) == 0.0
    assert c.hours_between(first_pass, after) == 0.5


def test_missing_and_reversed_intervals() -> None:
    """A missing end gives NaN (not measurable); an end before the start gives 0."""
    c = cal()
    a, b = datetime(2026, 3, 2, 10, tzinfo=UTC), datetime(2026, 3, 2, 12, tzinfo=UTC)
    out = c.business_hours(pd.Series([a, None, b, a]), pd.Series([None, b, a, b]))
    assert np.isnan(out[0]) and np.isnan(out[1])
    assert out[2:].tolist() == [0.0, 2.0]
    assert np.isnan(c.hours_between(a, None))
    assert c.hours_between(b, a) == 0.0
    assert np.isnan(c.business_hours([None], [None])).all()


def test_columns_of_every_supported_kind_give_the_same_answer() -> None:
    """Lists of aware datetimes, pandas datetime64 columns of any unit, numpy datetime64 agree."""
    c = cal(timezone="America/New_York", holiday_country="US")
    starts = [datetime(2026, 7, 2, 15, tzinfo=NEW_YORK), datetime(2026, 7, 3, 1, tzinfo=UTC)]
    ends = [datetime(2026, 7, 6, 10, 30, tzinfo=UTC), datetime(2026, 7, 7, 9, 30, tzinfo=NEW_YORK)]
    expected = c.business_hours(starts, ends)
    s_ser = pd.Series(pd.to_datetime(starts, utc=True))
    e_ser = pd.Series(pd.to_datetime(ends, utc=True))
    assert c.business_hours(s_ser, e_ser).tolist() == expected.tolist()
    assert c.business_hours(s_ser.dt.as_unit("s"), e_ser.dt.as_unit("us")).tolist() == expected.tolist()
    naive = s_ser.dt.tz_localize(None).to_numpy(), e_ser.dt.tz_localize(None).to_numpy()
    assert c.business_hours(*naive).tolist() == expected.tolist()
    assert c.business_hours(pd.DatetimeIndex(s_ser), e_ser).tolist() == expected.tolist()
    assert expected.tolist() == [c.hours_between(s, e) for s, e in zip(starts, ends, strict=False)]


def test_a_single_end_is_broadcast_over_a_column() -> None:
    """Ages of many PRs up to one ``now``."""
    c = cal()
    now = datetime(2026, 3, 4, 17, tzinfo=UTC)
    starts = [datetime(2026, 3, 2, 9, tzinfo=UTC), datetime(2026, 3, 4, 16, tzinfo=UTC)]
    assert c.business_hours(starts, now).tolist() == [24.0, 1.0]
    with pytest.raises(ValueError, match="differ in length"):
        c.business_hours(starts, [now, now, now])


def test_is_working_time_and_next_opening() -> None:
    """Inside hours is now; after hours, a weekend and a holiday move to the next opening."""
    c = cal(timezone="Europe/Berlin", holiday_country="DE")
    inside = local(BERLIN, 2026, 3, 5, 9)
    assert c.is_working_time(inside) and c.next_opening(inside) == inside
    assert not c.is_working_time(local(BERLIN, 2026, 3, 5, 17))
    early = local(BERLIN, 2026, 3, 5, 7, 30)
    assert c.next_opening(early) == local(BERLIN, 2026, 3, 5, 9)
    before_easter = local(BERLIN, 2026, 4, 2, 18)  # Thursday evening; Friday and Monday are off
    assert c.next_opening(before_easter) == local(BERLIN, 2026, 4, 7, 9)
    assert c.next_opening(before_easter).tzinfo == UTC


@pytest.mark.parametrize("hours", ["02:15-02:45", "02:30-03:30"])
def test_working_hours_inside_a_spring_forward_open_when_the_clocks_jump(hours: str) -> None:
    """Sydney, 4 Oct 2026, 02:00 -> 03:00: a window wholly or partly in the skipped hour opens
    at the jump (03:00 AEDT), which is working time, and what it swept counts there."""
    c = cal(timezone="Australia/Sydney", working_days=WEEKDAYS, working_hours=hours)
    jump = datetime(2026, 10, 3, 16, tzinfo=UTC)  # 03:00 AEDT, the first instant after 01:59:59 AEST
    before = local(SYDNEY, 2026, 10, 3, 23)
    assert c.next_opening(before) == jump and c.is_working_time(jump)
    swept = 0.5  # 02:15-02:45, or the 02:30-03:00 part of 02:30-03:30, skipped by the clocks
    assert c.hours_between(before, jump) == swept
    assert c.hours_between(before, jump - timedelta(seconds=1)) == 0.0


def test_the_repeated_hour_is_not_working_time_twice() -> None:
    """New York, 1 Nov 2026, 02:00 -> 01:00: 01:00-01:45 works on the first pass only; on the
    second pass no business time accrues, so it is not working time and the next opening is
    the next day's."""
    c = cal(timezone="America/New_York", working_days=WEEKDAYS, working_hours="01:00-01:45")
    first_pass = datetime(2026, 11, 1, 5, 15, tzinfo=UTC)  # 01:15 EDT
    second_pass = datetime(2026, 11, 1, 6, 15, tzinfo=UTC)  # 01:15 EST
    assert c.is_working_time(first_pass) and not c.is_working_time(second_pass)
    assert c.hours_between(second_pass, second_pass + timedelta(minutes=30)) == 0.0
    assert c.next_opening(second_pass) == local(NEW_YORK, 2026, 11, 2, 1)


def test_working_days_and_local_dates() -> None:
    """Working days skip weekends and holidays; local dates follow the team's zone."""
    c = cal(timezone="Australia/Sydney", holiday_country="AU", holiday_subdivision="NSW")
    days = c.working_days_between(date(2025, 12, 24), date(2026, 1, 2))
    assert days == [date(2025, 12, 24), date(2025, 12, 29), date(2025, 12, 30),
                    date(2025, 12, 31), date(2026, 1, 2)]
    late_utc = datetime(2026, 3, 2, 14, tzinfo=UTC)  # already Tuesday 01:00 in Sydney
    assert c.local_date(late_utc) == date(2026, 3, 3)
    out = c.local_dates([late_utc, None])
    assert out[0] == np.datetime64("2026-03-03") and np.isnat(out[1])
    mask = c.working_day_mask(np.array(["2025-12-25", "2025-12-24", "NaT"], dtype="datetime64[D]"))
    assert mask.tolist() == [False, True, False]


def test_calendars_are_cached_per_work_hours() -> None:
    """Teams with the same hours share one calendar."""
    a = WorkCalendar.for_team(WorkHours(timezone="Europe/Berlin", holiday_country="DE"))
    b = WorkCalendar.for_team(WorkHours(timezone="Europe/Berlin", holiday_country="DE"))
    assert a is b
    assert a is not WorkCalendar.for_team(WorkHours(timezone="Europe/Berlin"))


# ---------------------------------------------------------------------- slow reference

STEP = timedelta(minutes=15)


@cache
def _holidays(country: str | None, subdiv: str | None, year: int) -> frozenset[date]:
    if country is None:
        return frozenset()
    return frozenset(holidays.country_holidays(country, subdiv=subdiv, years=year).keys())


def reference_hours(h: WorkHours, start: datetime, end: datetime) -> float:
    """Walk 15-minute steps (every input and transition is on that grid), sweeping the running
    maximum of the local wall clock and counting the working wall-clock quarter hours swept."""
    if end <= start:
        return 0.0
    tz = ZoneInfo(h.timezone)
    workdays = {WEEKDAYS.index(d) for d in h.working_days}

    def wall(t: datetime) -> datetime:
        return t.astimezone(tz).replace(tzinfo=None)

    def working(w: datetime) -> bool:
        d = w.date()
        return (
            d.weekday() in workdays
            and d not in h.days_off
            and d not in _holidays(h.holiday_country, h.holiday_subdivision, d.year)
            and h.day_start <= w.time() < h.day_end
        )

    # the running max of the wall clock at ``start`` (left limits of earlier steps included)
    hi = max([wall(start)] + [wall(start - k * STEP) + STEP for k in range(1, 13)])
    quarters = 0
    t = start
    while t < end:
        reach = wall(t) + STEP  # the wall clock ticks on during the step
        w = hi
        while w < reach:
            quarters += working(w)
            w += STEP
        hi = max(hi, reach)
        t += STEP
    return quarters / 4


SWITCHES = {  # the UTC instants at which each zone's clocks change
    "Europe/Berlin": [datetime(2025, 3, 30, 1), datetime(2025, 10, 26, 1),
                      datetime(2026, 3, 29, 1), datetime(2026, 10, 25, 1)],
    "America/New_York": [datetime(2025, 3, 9, 7), datetime(2025, 11, 2, 6),
                         datetime(2026, 3, 8, 7), datetime(2026, 11, 1, 6)],
    "Australia/Sydney": [datetime(2025, 4, 5, 16), datetime(2025, 10, 4, 16),
                         datetime(2026, 4, 4, 16), datetime(2026, 10, 3, 16)],
    "UTC": [],
}
HOLIDAYS: dict[str, list[tuple[str | None, str | None]]] = {
    "Europe/Berlin": [("DE", None), ("DE", "BE")],
    "America/New_York": [("US", None), ("US", "NY")],
    "Australia/Sydney": [("AU", "NSW")],
    "UTC": [],
}
PLAIN = [  # across years, around holidays, ordinary weeks
    datetime(2025, 1, 1), datetime(2026, 1, 1), datetime(2027, 1, 1), datetime(2025, 12, 25),
    datetime(2026, 4, 3), datetime(2026, 7, 3), datetime(2026, 6, 15),
]


def anchors(tz: str) -> list[datetime]:
    return [a.replace(tzinfo=UTC) for a in SWITCHES[tz] + PLAIN]


@st.composite
def work_hours(draw: st.DrawFn) -> WorkHours:
    tz = draw(st.sampled_from(sorted(SWITCHES)))
    country, subdiv = draw(st.sampled_from(HOLIDAYS[tz] + [(None, None)]))
    days = draw(
        st.one_of(
            st.just(("mon", "tue", "wed", "thu", "fri")),
            st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=7, unique=True).map(tuple),
        )
    )
    # often a window around the switch hours (01:00-04:00 local), so DST shows in working time
    a = draw(st.one_of(st.integers(0, 94), st.integers(4, 12)))
    b = draw(st.one_of(st.integers(a + 1, 95), st.integers(a + 1, max(a + 1, 16))))
    days_off = draw(st.lists(st.sampled_from(anchors(tz)).map(lambda t: t.date()), max_size=3))
    return WorkHours(
        timezone=tz, working_days=days,
        working_hours=f"{a // 4:02d}:{a % 4 * 15:02d}-{b // 4:02d}:{b % 4 * 15:02d}",
        holiday_country=country, holiday_subdivision=subdiv, days_off=tuple(days_off),
    )


def instants(tz: str) -> st.SearchStrategy[datetime]:
    """Quarter-hour instants near the zone's DST switches, new years and holidays."""
    return st.builds(
        lambda anchor, q: anchor + q * STEP,
        st.sampled_from(anchors(tz)),
        st.one_of(st.integers(-8, 8), st.integers(-4 * 24 * 3, 4 * 24 * 3)),
    )


lengths = st.one_of(st.integers(0, 8), st.integers(0, 4 * 24 * 10)).map(lambda q: q * STEP)
PROPS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(work_hours(), st.data(), lengths)
def test_business_hours_match_the_minute_walking_reference(
    h: WorkHours, data: st.DataObject, length: timedelta
) -> None:
    """Across weekends, holidays, DST switches and years, the fast count equals the slow walk."""
    c = WorkCalendar.for_team(h)
    start = data.draw(instants(h.timezone))
    expected = reference_hours(h, start, start + length)
    assert c.hours_between(start, start + length) == pytest.approx(expected, abs=1e-9)
    assert c.business_hours([start], [start + length])[0] == pytest.approx(expected, abs=1e-9)


@PROPS
@given(work_hours(), st.data())
def test_vectorised_equals_scalar_exactly(h: WorkHours, data: st.DataObject) -> None:
    """One column in, the same floats as one call per row."""
    c = WorkCalendar.for_team(h)
    pairs = data.draw(st.lists(st.tuples(instants(h.timezone), lengths), min_size=1, max_size=20))
    starts = [s for s, _ in pairs]
    ends = [s + d for s, d in pairs]
    column = c.business_hours(pd.Series(pd.to_datetime(starts, utc=True)), ends)
    assert column.tolist() == [c.hours_between(s, e) for s, e in zip(starts, ends, strict=False)]


@PROPS
@given(work_hours(), st.data(), lengths, lengths)
def test_business_hours_add_up(
    h: WorkHours, data: st.DataObject, d1: timedelta, d2: timedelta
) -> None:
    """Waits split at any moment add up to the whole (so stages add up to lead time)."""
    c = WorkCalendar.for_team(h)
    a = data.draw(instants(h.timezone))
    b, e = a + d1, a + d1 + d2
    assert c.hours_between(a, b) + c.hours_between(b, e) == pytest.approx(
        c.hours_between(a, e), abs=1e-9
    )
    assert 0.0 <= c.hours_between(a, e) <= (e - a).total_seconds() / 3600 + 1.0


@PROPS
@given(work_hours(), st.data())
def test_next_opening_is_working_time_and_nothing_works_before_it(
    h: WorkHours, data: st.DataObject
) -> None:
    """The next opening is working time, and no business time passes before it."""
    c = WorkCalendar.for_team(h)
    t = data.draw(instants(h.timezone))
    opening = c.next_opening(t)
    assert opening >= t
    # Working wall time that a spring-forward skips still counts (so working days keep their
    # length), swept at the jump: when the opening is such a jump, that sweep is the only
    # business time allowed before it.
    second = timedelta(seconds=1)
    swept = c.hours_between(opening - second, opening) if opening > t else 0.0
    assert c.hours_between(t, opening) == (swept if swept * 3600 > 1 + 1e-6 else 0.0)
    assert c.is_working_time(opening)
    between = t + STEP  # every input and switch is on the quarter-hour grid
    while between < min(opening, t + timedelta(days=21)):
        assert not c.is_working_time(between), between
        between += STEP


@PROPS
@given(work_hours(), st.data())
def test_working_time_is_where_business_time_accrues(h: WorkHours, data: st.DataObject) -> None:
    """An instant is working time exactly when business time passes in the second after it,
    or a spring-forward at it sweeps more than a second of working wall time."""
    c = WorkCalendar.for_team(h)
    t = data.draw(instants(h.timezone))
    second = timedelta(seconds=1)
    swept = c.hours_between(t - second, t) * 3600 > 1 + 1e-6
    assert c.is_working_time(t) == (c.hours_between(t, t + second) > 0 or swept)
