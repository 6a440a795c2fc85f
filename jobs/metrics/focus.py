"""Review windows' measured effect (docs/metrics.md "Review windows: interruptions inside and
outside them"): review starts inside and outside each person's windows, the sessions they make,
the focus-hours batching saved or would save, and pickup before and after windows.

Pure: tables in (``review_table``, ``pr_table``), a :class:`jobs.model.FocusSummary` out, ``now``
passed in, no I/O. The windows come in as plain :class:`Windows` values (local times, a time
zone, ``since``), whoever stores them. Vectorised over review starts: local wall clocks per time
zone with pandas, window lookup with ``searchsorted``; the only loops are over the (few) time
zones and people, and a fixed-point pass that grows batches running over a window's end.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pandas as pd

from jobs.metrics.latency import latency
from jobs.model import FocusLoad, FocusSummary, Latency
from jobs.settings import WorkHours
from jobs.worktime import WorkCalendar

__all__ = ["PICKUP_DAYS", "Windows", "default_windows", "window_effect", "window_label"]

PICKUP_DAYS = 28  # pickup is compared over the 28 days before ``since`` and the 28 before now

_NS = 1_000_000_000
_DAY_NS = 86_400 * _NS
_MAX_SKIP = 60  # days a would-be window may be pushed ahead over days off (then: dropped)

Span = tuple[time, time]


@dataclass(frozen=True, slots=True)
class Windows:
    """One person's review windows as the measurement reads them.

    ``spans``: up to three daily (start, end) local times, end after start; ``tz``: the time zone
    they are in; ``since``: when they were turned on (aware), ``None`` when they are the
    person's chosen times but not on (then they serve the would-save figure only).
    """

    spans: tuple[Span, ...]
    tz: str
    since: datetime | None = None


def default_windows(hours: WorkHours) -> tuple[Span, ...]:
    """The stated default when a team sets none: 30 minutes at the start of working hours and
    30 minutes four hours later, the second only if it ends by the end of working hours."""
    start, _, end = hours.working_hours.partition("-")
    s, e = _minutes(start), _minutes(end)
    spans = [(s, s + 30)]
    if s + 270 <= e:
        spans.append((s + 240, s + 270))
    return tuple((_time(a), _time(b)) for a, b in spans)


def window_label(spans: Sequence[Span]) -> tuple[str, ...]:
    """``("09:00-09:30", ...)``: spans as a person reads them."""
    return tuple(f"{a:%H:%M}-{b:%H:%M}" for a, b in spans)


def window_effect(
    reviews: pd.DataFrame,
    prs: pd.DataFrame,
    *,
    windows: Mapping[str, Windows],
    calendar: WorkCalendar,
    now: datetime,
    members: Collection[str],
    defaults: Sequence[Span] | None = None,
    window_days: float = 7,
    recovery_minutes: float = 23,
) -> FocusSummary:
    """The team's review windows effect over the ``window_days`` before ``now``.

    ``reviews``: :func:`jobs.metrics.review_table`; ``prs``: :func:`jobs.metrics.pr_table`;
    ``windows``: login -> :class:`Windows` (logins in any case; people absent have none);
    ``calendar``: the team's (windows open only on its working days); ``members``: the team's
    logins; ``defaults``: the team's default windows in its time zone, for the would-save
    figure of people without windows (``None``: :func:`default_windows`).

    A row per member with review starts or windows, most interruptions first, then login.
    Raises ``ValueError`` for a span that does not end after it starts, or more than three.
    """
    allowed = {m.lower() for m in members}
    plans = {k.lower(): v for k, v in windows.items() if k.lower() in allowed}
    for who_, spans in ((k, v.spans) for k, v in plans.items()):
        _check(spans, who_)
    spans_default = tuple(defaults) if defaults is not None else default_windows(calendar.hours)
    _check(spans_default, "the team's default")
    fallback = Windows(spans_default, calendar.hours.timezone, None)
    rec_ns = round(recovery_minutes * 60 * _NS)

    login, at = _review_starts(reviews, allowed, now=now, days=window_days)
    batch = np.full(at.size, -1, dtype=np.int64)  # window occurrence (day * 4 + index), -1 none
    would = np.full(at.size, -1, dtype=np.int64)
    for who in np.unique(login).tolist() if login.size else []:
        rows = np.flatnonzero(login == who)
        own = plans.get(who)
        if own is not None and own.since is not None:
            batch[rows] = _inside(at[rows], own, calendar, rec_ns)
        out = rows[batch[rows] < 0]
        would[out] = _next_window(at[out], own or fallback, calendar)

    people: list[FocusLoad] = []
    befores: list[npt.NDArray[np.float64]] = []
    afters: list[npt.NDArray[np.float64]] = []
    picked = _picked_up(prs)
    for who in sorted(set(login.tolist()) | set(plans)):
        mine = login == who
        b = batch[mine]
        inside = int((b >= 0).sum())
        batches = int(np.unique(b[b >= 0]).size)
        outside = int((b < 0).sum())
        w = would[mine & (batch < 0)]
        moved = w[w >= 0]
        would_batches = int(np.unique(moved).size)
        mine_plan = plans.get(who)
        since = mine_plan.since if mine_plan is not None else None
        before = after = Latency()
        if since is not None:
            hb, bb, ha, ba = _pickup_around(picked, who, since=since, now=now)
            before, after = latency(hb, bb), latency(ha, ba)
            befores.append(np.stack([hb, bb]))
            afters.append(np.stack([ha, ba]))
        people.append(FocusLoad(
            login=who,
            since=since,
            review_starts=inside + outside,
            inside=inside,
            batches=batches,
            outside=outside,
            saved_hours=(inside - batches) * recovery_minutes / 60.0,
            would_save_hours=(moved.size - would_batches) * recovery_minutes / 60.0,
            pickup_before=before,
            pickup_after=after,
        ))
    people.sort(key=lambda p: (-p.interruptions, p.login))
    return FocusSummary(
        people=tuple(people),
        pickup_before=_pooled(befores),
        pickup_after=_pooled(afters),
        defaults=window_label(spans_default),
    )


# ---------------------------------------------------------------------------- helpers


def _review_starts(
    reviews: pd.DataFrame, allowed: set[str], *, now: datetime, days: float
) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.int64]]:
    """(login, UTC ns) of each review start: a member's first counted human review of one PR
    on one team-local day, in ``(now - days, now]``; sorted by login, then time."""
    sub = reviews["submitted_at"]
    who = reviews["reviewer"].to_numpy(dtype=object)
    ok = (
        reviews["counts"].to_numpy(dtype=bool)
        & (reviews["reviewer_kind"].to_numpy(dtype=object) == "human")
        & ((sub > now - timedelta(days=days)) & (sub <= now)).to_numpy()
        & np.asarray(pd.Series(who, dtype=object).isin(allowed), dtype=bool)
    )
    if not ok.any():
        return np.zeros(0, dtype=object), np.zeros(0, dtype=np.int64)
    frame = pd.DataFrame({
        "login": who[ok],
        "day": reviews["day"].to_numpy()[ok],
        "pr": reviews["pr"].to_numpy()[ok],
        "at": _ns(sub[ok]),
    })
    first = frame.groupby(["login", "day", "pr"], sort=False)["at"].min().reset_index()
    first = first.sort_values(["login", "at"], kind="stable")
    return first["login"].to_numpy(dtype=object), first["at"].to_numpy(dtype=np.int64)


def _inside(at: npt.NDArray[np.int64], plan: Windows, calendar: WorkCalendar,
            rec_ns: int) -> npt.NDArray[np.int64]:
    """For one person's starts (ascending), the window occurrence each belongs to, or -1.

    Inside: at or after a window's start and before its end on the person's wall clock, on a
    working day, at or after ``since``. Then a start less than ``rec_ns`` after the previous
    start joins that start's batch (grown to a fixed point: chains run on)."""
    assert plan.since is not None
    starts, ends = _span_ns(plan.spans)
    day, tod = _wall(at, plan.tz)
    j = np.searchsorted(ends, tod, side="right")  # the first window ending after the start
    jj = np.minimum(j, len(ends) - 1)
    hit = (j < len(ends)) & (starts[jj] <= tod) & _working(day, calendar)
    hit &= at >= _ns_of(plan.since)
    batch = np.where(hit, day * 4 + jj, -1)
    gap_ok = np.zeros(at.size, dtype=bool)
    gap_ok[1:] = (at[1:] - at[:-1]) < rec_ns
    while True:
        prev = np.full(at.size, -1, dtype=np.int64)
        prev[1:] = batch[:-1]
        grow = (batch < 0) & (prev >= 0) & gap_ok
        if not grow.any():
            return batch
        batch[grow] = prev[grow]


def _next_window(at: npt.NDArray[np.int64], plan: Windows,
                 calendar: WorkCalendar) -> npt.NDArray[np.int64]:
    """The window occurrence (day * 4 + index) each start falls in or would wait for: the first
    window whose end is after it, on a working day (pushed ahead over days off); -1 when none
    opens within :data:`_MAX_SKIP` days."""
    if not at.size:
        return np.zeros(0, dtype=np.int64)
    _, ends = _span_ns(plan.spans)
    day, tod = _wall(at, plan.tz)
    j = np.searchsorted(ends, tod, side="right")
    late = j >= len(ends)
    day = np.where(late, day + 1, day)
    j = np.where(late, 0, j)
    for _ in range(_MAX_SKIP):
        off = ~_working(day, calendar)
        if not off.any():
            return day * 4 + j
        day = np.where(off, day + 1, day)
        j = np.where(off, 0, j)
    return np.where(_working(day, calendar), day * 4 + j, -1)


def _picked_up(prs: pd.DataFrame) -> pd.DataFrame:
    """Non-bot PRs with a first human review: who gave it (lower case), when, and the pickup
    wait in calendar and working hours."""
    fr = prs["first_human_review_at"]
    keep = fr.notna().to_numpy() & ~prs["bot"].to_numpy(dtype=bool)
    who = prs["first_reviewer"].to_numpy(dtype=object)[keep]
    return pd.DataFrame({
        "login": [w.lower() if isinstance(w, str) else None for w in who],
        "at": _ns(fr[keep]),
        "h": prs["pickup_wait_h"].to_numpy(dtype=np.float64)[keep],
        "bh": prs["pickup_wait_bh"].to_numpy(dtype=np.float64)[keep],
    })


def _pickup_around(picked: pd.DataFrame, login: str, *, since: datetime,
                   now: datetime) -> tuple[npt.NDArray[np.float64], ...]:
    """(before h, before bh, after h, after bh): the pickup waits of the PRs ``login`` picked
    up in the 28 days before ``since``, and from ``since`` (at the earliest) in the 28 before
    ``now``."""
    mine = (picked["login"] == login).to_numpy()
    at = picked["at"].to_numpy(dtype=np.int64)
    s, n, span = _ns_of(since), _ns_of(now), PICKUP_DAYS * _DAY_NS
    before = mine & (at >= s - span) & (at < s) & (at <= n)
    after = mine & (at >= max(s, n - span)) & (at <= n)
    h, bh = picked["h"].to_numpy(), picked["bh"].to_numpy()
    return h[before], bh[before], h[after], bh[after]


def _pooled(parts: list[npt.NDArray[np.float64]]) -> Latency:
    if not parts:
        return Latency()
    both = np.concatenate(parts, axis=1)
    return latency(both[0], both[1])


def _wall(at: npt.NDArray[np.int64], tz: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(local day number, ns since local midnight) of each UTC ns instant in ``tz``."""
    local = pd.DatetimeIndex(at.view("datetime64[ns]")).tz_localize("UTC").tz_convert(ZoneInfo(tz))
    wall = local.tz_localize(None).asi8
    return wall // _DAY_NS, wall % _DAY_NS


def _working(day: npt.NDArray[np.int64], calendar: WorkCalendar) -> npt.NDArray[np.bool_]:
    return calendar.working_day_mask(day.astype("datetime64[D]"))


def _span_ns(spans: Sequence[Span]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    ordered = sorted(spans)
    starts = np.array([_tod_ns(a) for a, _ in ordered], dtype=np.int64)
    ends = np.array([_tod_ns(b) for _, b in ordered], dtype=np.int64)
    return starts, ends


def _check(spans: Sequence[Span], who: str) -> None:
    if not spans or len(spans) > 3:
        raise ValueError(f"review windows of {who}: one to three windows a day (got {len(spans)})")
    for a, b in spans:
        if b <= a:
            raise ValueError(f"review windows of {who}: a window must end after it starts "
                             f"(got {a:%H:%M}-{b:%H:%M})")
    ordered = sorted(spans)
    for (_, e), (s, _) in pairwise(ordered):
        if s < e:
            raise ValueError(f"review windows of {who}: windows overlap (got {window_label(ordered)})")


def _ns(values: pd.Series | pd.DatetimeIndex) -> npt.NDArray[np.int64]:
    return np.asarray(pd.DatetimeIndex(values).as_unit("ns").asi8, dtype=np.int64)


def _ns_of(at: datetime) -> int:
    return int(pd.Timestamp(at).as_unit("ns").value)


def _tod_ns(t: time) -> int:
    return ((t.hour * 60 + t.minute) * 60 + t.second) * _NS + t.microsecond * 1000


def _minutes(hhmm: str) -> int:
    h, _, m = hhmm.strip().partition(":")
    return int(h) * 60 + int(m or 0)


def _time(minutes: int) -> time:
    return time(minutes // 60, minutes % 60)
