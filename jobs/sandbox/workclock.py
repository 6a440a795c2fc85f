"""A team's working clock for the simulation: weekdays 09:00-17:00 in its time zone.

The generator thinks in *work hours* (a float that advances only during working time), so that
arrivals land in working hours and a reviewer's capacity is per working day. Holidays are left
out on purpose: the simulation needs plausible times, not a calendar (``jobs.worktime`` is the
real one).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_EPOCH = date(2000, 1, 3)  # a Monday
DAY_HOURS = 8.0


class WorkClock:
    """Maps instants to cumulative working hours and back, for one time zone."""

    def __init__(self, tz: str, start: time = time(9)) -> None:
        self.tz = ZoneInfo(tz)
        self.start = start

    def to_work(self, at: datetime) -> float:
        """Working hours from the epoch to ``at`` (time outside working hours counts nothing)."""
        local = at.astimezone(self.tz)
        day = local.date()
        k = (day - _EPOCH).days
        before = (k // 7) * 5 + min(k % 7, 5)
        if k % 7 >= 5:
            return before * DAY_HOURS
        opening = datetime.combine(day, self.start, self.tz)
        into = (local - opening).total_seconds() / 3600
        return before * DAY_HOURS + min(max(into, 0.0), DAY_HOURS)

    def from_work(self, hours: float) -> datetime:
        """The instant (UTC) at which ``hours`` working hours have passed since the epoch."""
        n = int(hours // DAY_HOURS)
        rem = hours - n * DAY_HOURS
        day = _EPOCH + timedelta(days=(n // 5) * 7 + n % 5)
        local = datetime.combine(day, self.start, self.tz) + timedelta(hours=rem)
        return local.astimezone(UTC)

    def add(self, at: datetime, hours: float) -> datetime:
        """``at`` moved forward by ``hours`` working hours."""
        return self.from_work(self.to_work(at) + hours)
