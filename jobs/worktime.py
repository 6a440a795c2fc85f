"""Pure business-time arithmetic for one team: time zone, working days and hours, holidays.

docs/metrics.md: "Every duration is reported two ways: calendar hours, and business hours in the
team's timezone, working days, working hours and holidays".

The rule (the same for the vectorised and the scalar path, which share one integer formula):

* An instant is placed on the team's **local wall clock** (its time zone, DST included).
* A working day is a configured weekday that is neither a public holiday of
  ``holiday_country``/``holiday_subdivision`` (the ``holidays`` package, observed days
  included) nor a configured day off. Its working time is the wall-clock span
  ``day_start``..``day_end``.
* Business time between two instants is the working wall-clock time swept between their wall
  clock positions. So **a working day always has its wall-clock length** (09:00-17:00 is 8 h,
  also on a DST switch day): when clocks spring forward, the skipped wall time is swept in one
  jump and counts if it lies in working hours; when clocks fall back, the repeated wall time is
  counted once (the position never moves backwards: during the repeated hour it stays at the
  wall time the clocks were turned back from). The position is monotonic in the instant, so
  business time is additive: ``h(a, b) + h(b, c) == h(a, c)`` for ``a <= b <= c``.
* Missing (``None``/``NaT``) on either side gives ``NaN``; ``end <= start`` gives ``0.0``.
* **Working time** (:meth:`WorkCalendar.is_working_time`) is where that business time accrues,
  so the three methods agree: an instant is working time when its wall-clock position lies in
  working hours of a working day and moves (not inside a fall-back's repeated wall time, where
  the position waits and nothing accrues), or when it is a spring-forward instant whose
  skipped wall time holds working time (swept in one jump at that instant, so the time is
  counted at it). :meth:`WorkCalendar.next_opening` is the first such instant: before it no
  business time passes, except what a spring-forward sweeps at the opening instant itself
  (a working window wholly or partly inside the skipped hour opens when the clocks jump).

Naive inputs (numpy ``datetime64`` has no zone) are read as UTC.

Holidays are computed lazily for the years the inputs need and cached on the calendar;
:meth:`WorkCalendar.for_team` caches one calendar per distinct work-hours setting.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pandas as pd

from jobs.errors import ConfigError
from jobs.settings import WEEKDAYS, WorkHours

__all__ = ["WorkCalendar"]

_NS = 1_000_000_000
_DAY_NS = 86_400 * _NS
_HOUR_NS = 3_600 * _NS
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_EPOCH_DATE = date(1970, 1, 1)
_NAT = np.iinfo(np.int64).min  # pandas' NaT as int64


@dataclass(frozen=True, slots=True)
class _Tables:
    """Precomputed lookups covering the UTC years ``first_year..last_year`` (with margins).

    ``trans_utc``: instants (UTC ns) at which the zone's offset changes, ascending;
    ``off_before``/``off_after``: the offset (ns) on either side; ``off_first``: the offset
    before the first transition. ``base_day``: the local day number (days since 1970-01-01 on
    the wall clock) of ``is_work[0]``; ``cum[k]``: working ns on local days before
    ``base_day + k``.
    """

    first_year: int
    last_year: int
    trans_utc: npt.NDArray[np.int64]
    off_before: npt.NDArray[np.int64]
    off_after: npt.NDArray[np.int64]
    off_first: int
    base_day: int
    is_work: npt.NDArray[np.bool_]
    cum: npt.NDArray[np.int64]
    holidays: frozenset[date]
    # indexed by the transitions passed (0: none yet): the offset after the last one, and the
    # wall time the position cannot fall behind (NaT-low before any), for a lookup per instant
    # without a branch per side
    after_ext: npt.NDArray[np.int64]
    floor_ext: npt.NDArray[np.int64]
    # plain-Python copies for the scalar path (bisect on lists beats numpy on one value)
    trans_list: tuple[int, ...]
    off_before_list: tuple[int, ...]
    off_after_list: tuple[int, ...]


class WorkCalendar:
    """Business-time arithmetic for one team's work hours (see the module docstring's rule).

    Build with :meth:`for_team`. Instances are safe to share between threads: the lazily grown
    tables are swapped in whole under a lock.
    """

    def __init__(self, hours: WorkHours) -> None:
        """Raises :class:`jobs.errors.ConfigError` for a holiday subdivision the country lacks."""
        self.hours = hours
        self.tz: ZoneInfo = ZoneInfo(hours.timezone)
        self._start_ns = _time_ns(hours.day_start)
        self._len_ns = _time_ns(hours.day_end) - self._start_ns
        self._weekdays = frozenset(WEEKDAYS.index(d) for d in hours.working_days)
        self._days_off = frozenset(hours.days_off)
        self._subdivision = _subdivision_code(hours.holiday_country, hours.holiday_subdivision)
        self._lock = threading.Lock()
        self._tables: _Tables | None = None

    # ------------------------------------------------------------------ construction

    @classmethod
    def for_team(cls, hours: WorkHours) -> WorkCalendar:
        """The (cached) calendar for these work hours; a ``Team`` works too (it is a WorkHours).

        Calendars are cached by the work-hours fields only, so teams with the same hours share
        one calendar and its holiday tables.
        """
        return _calendar_for(
            hours.timezone,
            tuple(hours.working_days),
            hours.working_hours,
            hours.holiday_country,
            hours.holiday_subdivision,
            tuple(sorted(hours.days_off)),
        )

    def __repr__(self) -> str:
        h = self.hours
        return (
            f"WorkCalendar({h.timezone}, {','.join(h.working_days)} {h.working_hours}, "
            f"holidays={h.holiday_country or '-'}{'/' + h.holiday_subdivision if h.holiday_subdivision else ''}, "
            f"days_off={len(h.days_off)})"
        )

    # ------------------------------------------------------------------ vectorised

    def business_hours(self, starts: Any, ends: Any) -> npt.NDArray[np.float64]:
        """Business hours from each start to its end, element-wise, without a loop per row.

        ``starts``/``ends``: array-likes of aware datetimes (``None`` allowed), pandas
        Series/Index of ``datetime64[*, UTC]``, or numpy ``datetime64`` (read as UTC); a single
        datetime on either side is broadcast. Returns float64 hours: ``NaN`` where either side
        is missing, ``0.0`` where ``end <= start``. Raises ``ValueError`` when the lengths differ.
        """
        s = _to_utc_ns(starts)
        e = _to_utc_ns(ends)
        if s.shape != e.shape:
            if s.size == 1:
                s = np.full(e.shape, s[0], dtype=np.int64)
            elif e.size == 1:
                e = np.full(s.shape, e[0], dtype=np.int64)
            else:
                raise ValueError(f"starts and ends differ in length ({s.size} vs {e.size})")
        missing = (s == _NAT) | (e == _NAT)
        out = np.full(s.shape, np.nan, dtype=np.float64)
        ok = ~missing
        if not ok.any():
            return out
        s_ok, e_ok = s[ok], e[ok]
        tables = self._ensure(int(min(s_ok.min(), e_ok.min())), int(max(s_ok.max(), e_ok.max())))
        ws, we = np.split(self._worked_ns(tables, np.concatenate([s_ok, e_ok])), [s_ok.size])
        diff = np.where(e_ok > s_ok, np.maximum(we - ws, 0), 0)
        out[ok] = diff / _HOUR_NS
        return out

    def worked_ns(self, ats: Any) -> npt.NDArray[np.int64]:
        """Working ns up to each instant from a base that all instants of one call share (0
        where missing): the business time between two of them is the difference of theirs,
        floored at 0, zero unless the later one is the end. :meth:`business_hours` is exactly
        that difference over ``_HOUR_NS``; this lets a caller measure each instant once when
        many spans share their ends. Takes what :meth:`business_hours` takes."""
        t = _to_utc_ns(ats)
        out = np.zeros(t.shape, dtype=np.int64)
        ok = t != _NAT
        if ok.any():
            t_ok = t[ok]
            tables = self._ensure(int(t_ok.min()), int(t_ok.max()))
            out[ok] = self._worked_ns(tables, t_ok)
        return out

    def local_dates(self, ats: Any) -> npt.NDArray[np.datetime64]:
        """The team-local calendar date of each instant, as ``datetime64[D]`` (``NaT`` kept).

        Vectorised twin of :meth:`local_date`, for grouping events by the team's working day.
        """
        t = _to_utc_ns(ats)
        out = np.full(t.shape, np.datetime64("NaT"), dtype="datetime64[D]")
        ok = t != _NAT
        if ok.any():
            t_ok = t[ok]
            tables = self._ensure(int(t_ok.min()), int(t_ok.max()))
            wall = self._wall_ns(tables, t_ok, clamp=False)
            out[ok] = np.floor_divide(wall, _DAY_NS).astype("datetime64[D]")
        return out

    def working_day_mask(self, days: Any) -> npt.NDArray[np.bool_]:
        """For each ``datetime64[D]``/date, whether it is a working day (``NaT`` gives False)."""
        d = np.asarray(days, dtype="datetime64[D]")
        flat = d.reshape(-1)
        out = np.zeros(flat.shape, dtype=np.bool_)
        ok = ~np.isnat(flat)
        if ok.any():
            n = flat[ok].astype(np.int64)
            tables = self._ensure(int(n.min()) * _DAY_NS, int(n.max()) * _DAY_NS)
            out[ok] = tables.is_work[n - tables.base_day]
        return out.reshape(d.shape)

    # ------------------------------------------------------------------ scalar

    def hours_between(self, start: datetime | None, end: datetime | None) -> float:
        """Business hours from ``start`` to ``end``: exactly what :meth:`business_hours` gives
        for the pair (same integer formula), ``NaN`` if either is ``None``, 0.0 if ``end <= start``.
        """
        if start is None or end is None:
            return float("nan")
        s, e = _dt_ns(start), _dt_ns(end)
        if e <= s:
            return 0.0
        tables = self._ensure(s, e)
        diff = self._worked_ns_scalar(tables, e) - self._worked_ns_scalar(tables, s)
        return float(np.float64(max(diff, 0)) / np.float64(_HOUR_NS))

    def is_working_time(self, at: datetime) -> bool:
        """Whether business time accrues at ``at`` (see the module docstring's rule): its
        team-local wall-clock position is inside working hours of a working day and moving, or
        ``at`` is a spring-forward whose skipped wall time holds working time."""
        t = _dt_ns(at)
        return self._working_at(self._ensure(t, t), t)

    def next_opening(self, at: datetime) -> datetime:
        """``at`` if it is working time, else the first working-time instant after it (UTC).

        That is the instant a working day's ``day_start`` is reached on the wall clock, or a
        DST switch that makes working time begin (a spring-forward into or across working hours,
        the end of a fall-back's repeated wall time inside them). No business time passes between
        ``at`` and the opening except a spring-forward's sweep at the opening itself. Raises
        ``ValueError`` if no working time exists in the next ten years (every day off).
        """
        t = _dt_ns(at)
        tables = self._ensure(t, t)
        if self._working_at(tables, t):
            return at
        day = self._position(tables, t) // _DAY_NS
        for _ in range(3660):
            lo, hi = day * _DAY_NS, (day + 1) * _DAY_NS  # this local day on the wall clock
            tables = self._ensure(lo - 2 * _DAY_NS, hi + 2 * _DAY_NS)
            found = [c for c in self._candidates(tables, day, lo, hi)
                     if c > t and self._working_at(tables, c)]
            if found:
                return _EPOCH + timedelta(microseconds=min(found) // 1000)
            day += 1
        raise ValueError(f"no working day within ten years after {at.isoformat()} for {self!r}")

    def is_working_day(self, d: date) -> bool:
        """A configured weekday that is neither a public holiday nor a configured day off."""
        if d.weekday() not in self._weekdays or d in self._days_off:
            return False
        return d not in self._holidays_of(d.year)

    def working_days_between(self, start_date: date, end_date: date) -> list[date]:
        """The working days from ``start_date`` to ``end_date``, both included, ascending."""
        out: list[date] = []
        day = start_date
        while day <= end_date:
            if self.is_working_day(day):
                out.append(day)
            day += timedelta(days=1)
        return out

    def local_date(self, at: datetime) -> date:
        """The team-local calendar date of ``at``."""
        return at.astimezone(self.tz).date()

    # ------------------------------------------------------------------ internals

    def _worked_ns(self, tables: _Tables, t: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Working ns on the wall clock from the table's base up to each instant's position."""
        wall = self._wall_ns(tables, t, clamp=True)
        day = np.floor_divide(wall, _DAY_NS)
        sod = wall - day * _DAY_NS
        k = day - tables.base_day
        part = np.clip(sod - self._start_ns, 0, self._len_ns)
        worked: npt.NDArray[np.int64] = tables.cum[k] + np.where(tables.is_work[k], part, 0)
        return worked

    def _wall_ns(
        self, tables: _Tables, t: npt.NDArray[np.int64], *, clamp: bool
    ) -> npt.NDArray[np.int64]:
        """Local wall-clock ns of each instant; with ``clamp`` never behind an earlier instant's
        (inside a fall-back's repeated hour the position waits at the turned-back wall time)."""
        passed = np.searchsorted(tables.trans_utc, t, side="right")  # transitions at or before
        wall = t + tables.after_ext[passed]
        if clamp:
            wall = np.maximum(wall, tables.floor_ext[passed])
        return wall

    def _worked_ns_scalar(self, tables: _Tables, t: int) -> int:
        """Scalar twin of :meth:`_worked_ns` (same integers, so the same float in the end)."""
        return self._worked_at_wall(tables, self._position(tables, t))

    def _position(self, tables: _Tables, t: int) -> int:
        """Scalar twin of :meth:`_wall_ns` with ``clamp``: the monotonic wall-clock position."""
        i = bisect_right(tables.trans_list, t) - 1
        if i < 0:
            return t + tables.off_first
        return max(t + tables.off_after_list[i], tables.trans_list[i] + tables.off_before_list[i])

    def _worked_at_wall(self, tables: _Tables, wall: int) -> int:
        """Working ns on the wall clock from the table's base up to wall time ``wall``."""
        day, sod = divmod(wall, _DAY_NS)
        k = day - tables.base_day
        part = min(max(sod - self._start_ns, 0), self._len_ns)
        return int(tables.cum[k]) + (part if tables.is_work[k] else 0)

    def _working_at(self, tables: _Tables, t: int) -> bool:
        """Whether business time accrues at instant ``t`` (UTC ns): the module docstring's rule."""
        i = bisect_right(tables.trans_list, t) - 1
        if i < 0:
            wall = t + tables.off_first
        else:
            wall = t + tables.off_after_list[i]
            floor = tables.trans_list[i] + tables.off_before_list[i]
            if wall < floor:  # a fall-back's repeated wall time: the position waits there
                return False
            if t == tables.trans_list[i] and wall > floor and (
                self._worked_at_wall(tables, wall) > self._worked_at_wall(tables, floor)
            ):  # a spring-forward sweeping working wall time, at this very instant
                return True
        day, sod = divmod(wall, _DAY_NS)
        return bool(tables.is_work[day - tables.base_day]) and (
            self._start_ns <= sod < self._start_ns + self._len_ns)

    def _reaching(self, tables: _Tables, wall: int) -> int:
        """The first instant (UTC ns) whose position is at or past wall time ``wall``: the
        position is monotonic and within a day of the instant, so a bisection finds it."""
        lo, hi = wall - 2 * _DAY_NS, wall + 2 * _DAY_NS  # position(lo) < wall <= position(hi)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self._position(tables, mid) >= wall:
                hi = mid
            else:
                lo = mid
        return hi

    def _candidates(self, tables: _Tables, day: int, lo: int, hi: int) -> list[int]:
        """The instants at which working time can begin on local day ``day`` (wall ns
        ``lo``..``hi``): reaching ``day_start``, and each DST switch whose wall time falls in
        the day with, for a fall-back, the end of its repeated wall time."""
        out = []
        if tables.is_work[day - tables.base_day]:
            out.append(self._reaching(tables, lo + self._start_ns))
        first = bisect_right(tables.trans_list, lo - 2 * _DAY_NS)
        last = bisect_right(tables.trans_list, hi + 2 * _DAY_NS)
        for i in range(first, last):
            switch, before, after = (tables.trans_list[i], tables.off_before_list[i],
                                     tables.off_after_list[i])
            if lo <= switch + before < hi:
                out.append(switch)
                if before > after:  # the position resumes once the repeated wall time is over
                    out.append(switch + before - after)
        return out

    def _holidays_of(self, year: int) -> frozenset[date]:
        tables = self._tables
        if tables is None or not tables.first_year <= year <= tables.last_year:
            tables = self._ensure_years(year, year)
        return tables.holidays

    def _ensure(self, lo_ns: int, hi_ns: int) -> _Tables:
        """Tables covering the instants ``lo_ns..hi_ns`` (UTC ns), grown lazily by whole years."""
        lo_year = (_EPOCH + timedelta(microseconds=lo_ns // 1000)).year
        hi_year = (_EPOCH + timedelta(microseconds=hi_ns // 1000)).year
        tables = self._tables
        if tables is not None and tables.first_year <= lo_year and hi_year <= tables.last_year:
            return tables
        return self._ensure_years(lo_year, hi_year)

    def _ensure_years(self, lo_year: int, hi_year: int) -> _Tables:
        with self._lock:
            tables = self._tables
            if tables is not None:
                if tables.first_year <= lo_year and hi_year <= tables.last_year:
                    return tables
                lo_year = min(lo_year, tables.first_year)
                hi_year = max(hi_year, tables.last_year)
            tables = self._build(lo_year, hi_year)
            self._tables = tables
            return tables

    def _build(self, first_year: int, last_year: int) -> _Tables:
        """Offsets and working-day tables for UTC years ``first_year..last_year``.

        Local days are covered from the last day of ``first_year - 1`` to the first day of
        ``last_year + 1`` (a local date differs from the UTC date by at most a day), and the
        transitions a day beyond, so every lookup for an instant in those years is in range.
        """
        lo_day = date(first_year, 1, 1) - timedelta(days=2)
        hi_day = date(last_year, 12, 31) + timedelta(days=2)
        trans, before, after, first = _transitions(
            self.tz,
            _day_ns(lo_day - timedelta(days=1)),
            _day_ns(hi_day + timedelta(days=1)),
        )
        hol = _holiday_set(self.hours.holiday_country, self._subdivision,
                           range(lo_day.year, hi_day.year + 1))
        n = (hi_day - lo_day).days + 1
        base_day = (lo_day - _EPOCH_DATE).days
        days = np.arange(base_day, base_day + n, dtype=np.int64)
        weekday = (days + 3) % 7  # 1970-01-01 was a Thursday (weekday 3)
        is_work = np.isin(weekday, np.fromiter(self._weekdays, dtype=np.int64))
        blocked = [(d - _EPOCH_DATE).days - base_day for d in (hol | self._days_off)]
        blocked = [k for k in blocked if 0 <= k < n]
        if blocked:
            is_work[np.asarray(blocked, dtype=np.int64)] = False
        cum = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.where(is_work, self._len_ns, 0), out=cum[1:])
        return _Tables(
            first_year=first_year,
            last_year=last_year,
            trans_utc=trans,
            off_before=before,
            off_after=after,
            off_first=first,
            base_day=base_day,
            is_work=is_work,
            cum=cum,
            holidays=frozenset(hol),
            after_ext=np.concatenate([np.array([first], dtype=np.int64), after]).astype(np.int64),
            floor_ext=np.concatenate([np.array([_NAT], dtype=np.int64), trans + before]).astype(np.int64),
            trans_list=tuple(int(x) for x in trans),
            off_before_list=tuple(int(x) for x in before),
            off_after_list=tuple(int(x) for x in after),
        )


# ---------------------------------------------------------------------- module helpers


@lru_cache(maxsize=256)
def _calendar_for(
    tz: str,
    working_days: tuple[str, ...],
    working_hours: str,
    country: str | None,
    subdivision: str | None,
    days_off: tuple[date, ...],
) -> WorkCalendar:
    hours = WorkHours(
        timezone=tz,
        working_days=working_days,  # type: ignore[arg-type]
        working_hours=working_hours,
        holiday_country=country,
        holiday_subdivision=subdivision,
        days_off=days_off,
    )
    return WorkCalendar(hours)


def _holiday_set(country: str | None, subdivision: str | None, years: range) -> set[date]:
    if country is None:
        return set()
    import holidays  # imported lazily: it loads every country's module tree

    found = holidays.country_holidays(country, subdiv=subdivision, years=list(years))
    return set(found.keys())


def _subdivision_code(country: str | None, subdivision: str | None) -> str | None:
    """The ``holidays`` code of a subdivision given in any case, or by its alias ("England").

    Raises :class:`ConfigError` when the country has no such subdivision (or none is set).
    """
    if subdivision is None:
        return None
    if country is None:
        raise ConfigError([
            f"holiday_subdivision: {subdivision!r} needs holiday_country (an ISO code like 'DE')"
        ])
    import holidays

    codes = holidays.list_supported_countries()[country]
    aliases = getattr(holidays.country_holidays(country), "subdivisions_aliases", {}) or {}
    by_name = {c.lower(): c for c in codes} | {a.lower(): c for a, c in aliases.items()}
    code = by_name.get(subdivision.strip().lower())
    if code is None:
        raise ConfigError([
            (f"holiday_subdivision: {country} has no subdivision {subdivision!r}; "
            f"use one of {', '.join(codes)}")
        ])
    return str(code)


def _transitions(
    tz: ZoneInfo, lo_ns: int, hi_ns: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64], int]:
    """The zone's offset changes between two UTC instants, found to the second.

    Offsets are sampled hourly (vectorised through pandas), then each change is located by
    bisection on whole seconds with ``zoneinfo``. Returns (instants, offsets before, offsets
    after, the offset at ``lo_ns``), all in ns.
    """
    grid = np.arange(lo_ns, hi_ns + _HOUR_NS, _HOUR_NS, dtype=np.int64)
    utc = pd.DatetimeIndex(grid.view("datetime64[ns]")).tz_localize("UTC")
    wall = utc.tz_convert(tz).tz_localize(None).as_unit("ns").asi8
    off = wall - grid
    changes = np.flatnonzero(off[1:] != off[:-1]) + 1
    trans: list[int] = []
    for j in changes:
        lo_s, hi_s = int(grid[j - 1]) // _NS, int(grid[j]) // _NS  # offset(lo) old, offset(hi) new
        old = int(off[j - 1])
        while hi_s - lo_s > 1:
            mid = (lo_s + hi_s) // 2
            if _offset_ns(tz, mid) == old:
                lo_s = mid
            else:
                hi_s = mid
        trans.append(hi_s * _NS)
    before = off[changes - 1] if changes.size else np.zeros(0, dtype=np.int64)
    after = off[changes] if changes.size else np.zeros(0, dtype=np.int64)
    return (
        np.asarray(trans, dtype=np.int64),
        np.asarray(before, dtype=np.int64),
        np.asarray(after, dtype=np.int64),
        int(off[0]),
    )


def _offset_ns(tz: ZoneInfo, second: int) -> int:
    offset = datetime.fromtimestamp(second, tz=timezone.utc).astimezone(tz).utcoffset()
    assert offset is not None  # a ZoneInfo always answers for an aware datetime
    return (offset.days * 86_400 + offset.seconds) * _NS + offset.microseconds * 1000


def _to_utc_ns(values: Any) -> npt.NDArray[np.int64]:
    """Any supported column (or a single datetime) as int64 UTC ns; NaT as int64 min."""
    if isinstance(values, (datetime, np.datetime64)) or values is None:
        values = [values]
    # the columns metrics pass: read as integers, no index built (it cost more than the sum)
    if isinstance(values, np.ndarray) and values.dtype.kind == "M":
        return np.asarray(values.astype("datetime64[ns]").view(np.int64))  # naive: UTC; NaT kept
    if isinstance(values, (pd.Series, pd.Index)) and isinstance(
        values.dtype, pd.DatetimeTZDtype
    ):
        return np.asarray(values.array.as_unit("ns").asi8, dtype=np.int64)  # stored as UTC
    else:
        if not hasattr(values, "__len__"):
            values = list(values)  # a generator or other one-pass iterable
        idx = pd.DatetimeIndex(pd.to_datetime(values, utc=True))
    if idx.tz is None:
        idx = idx.tz_localize("UTC")
    else:
        idx = idx.tz_convert("UTC")
    return np.asarray(idx.as_unit("ns").asi8, dtype=np.int64)


def _dt_ns(at: datetime) -> int:
    """Exact UTC ns of a datetime (naive read as UTC), matching pandas' conversion."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    delta = at - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * _NS + delta.microseconds * 1000


def _day_ns(d: date) -> int:
    return (d - _EPOCH_DATE).days * _DAY_NS


def _time_ns(t: time) -> int:
    return ((t.hour * 60 + t.minute) * 60 + t.second) * _NS + t.microsecond * 1000
