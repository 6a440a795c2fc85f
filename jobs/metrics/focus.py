"""Review windows' measured effect (docs/metrics.md "Review windows: interruptions inside and
outside them"): review starts inside and outside each person's windows, the sessions they make,
the focus-hours batching saved or would save, and pickup before and after windows.

Pure: tables in (``review_table``, ``pr_table``), a :class:`jobs.model.FocusSummary` out, ``now``
passed in, no I/O. The windows come in as plain :class:`Windows` values (local times, a time
zone, on, ``since``), whoever stores them. Vectorised over review starts: each person's window
occurrences are a sorted array (built once per distinct windows and time zone, the same rule as
the DMs' ``jobs.windows``), looked up with ``searchsorted``; the loops are over people and
occurrence days, and a fixed-point pass that grows batches running over a window's end.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pandas as pd

from jobs.metrics._columns import among, instants_ns, ns
from jobs.metrics.latency import latency
from jobs.model import FocusLoad, FocusSummary, Latency
from jobs.settings import Settings, WorkHours, parse_window_text
from jobs.windows import ReviewWindows, Window, effective_windows, occurrences_on
from jobs.worktime import WorkCalendar

__all__ = ["PICKUP_DAYS", "Windows", "default_windows", "team_windows", "window_effect", "window_label",
           "windows_of"]

PICKUP_DAYS = 28  # pickup is compared over the 28 days before ``since`` and the 28 before now

_NS = 1_000_000_000
_DAY_NS = 86_400 * _NS
_MAX_SKIP = 62  # days ahead a would-be batch looks for a window (then: none, a long holiday)
_EPOCH_DATE = date(1970, 1, 1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Span = tuple[time, time]


@dataclass(frozen=True, slots=True)
class Windows:
    """One person's review windows as the measurement reads them.

    ``spans``: up to three daily (start, end) local wall-clock times, end after start; ``tz``:
    the time zone they are read in; ``on``: whether they are turned on (off: they are only the
    times the would-save figure batches into); ``since``: when they were turned on (aware UTC),
    ``None`` when unknown (then on throughout, and no pickup before/after).
    """

    spans: tuple[Span, ...]
    tz: str
    since: datetime | None = None
    on: bool = True


def default_windows(hours: WorkHours) -> tuple[Span, ...]:
    """The stated default when a team sets none: 30 minutes at the start of working hours and
    30 minutes four hours later, the second only if it ends by the end of working hours."""
    start, _, end = hours.working_hours.partition("-")
    s, e = _minutes(start), _minutes(end)
    spans = [(s, s + 30)]
    if s + 270 <= e:
        spans.append((s + 240, s + 270))
    return tuple((_time(a), _time(b)) for a, b in spans)


def team_windows(settings: Settings, team: str) -> tuple[Span, ...] | None:
    """The team's default windows (``teams.<name>.review_windows``), or None when it has none."""
    texts = settings.teams[team].review_windows
    return tuple(parse_window_text(t) for t in texts) if texts else None


def windows_of(settings: Settings, team: str, stored: Mapping[str, ReviewWindows], *,
               default_since: Mapping[str, datetime] | None = None) -> dict[str, Windows]:
    """The windows on for each member of ``team``, as the DMs apply them
    (``jobs.windows.effective_windows``: their own choice, else their team's default): the
    members with windows on, by lower-case login. ``stored``: ``Store.get_review_windows``;
    ``default_since``: ``Store.review_windows_default_since``."""
    out: dict[str, Windows] = {}
    for login in sorted(settings.teams[team].logins):
        rw = effective_windows(settings, stored, login, default_since=default_since)
        if rw is not None and rw.windows:
            out[login] = Windows(tuple((w.start, w.end) for w in rw.windows), rw.tz, rw.since)
    return out


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
    fallback = Windows(spans_default, calendar.hours.timezone, None, on=False)
    rec_ns = round(recovery_minutes * 60 * _NS)

    login, at = _review_starts(reviews, allowed, now=now, days=window_days)
    batch = np.full(at.size, -1, dtype=np.int64)  # index of the window occurrence, -1 none
    would = np.full(at.size, -1, dtype=np.int64)
    occurrences = _Occurrences(calendar, at)
    for who in np.unique(login).tolist() if login.size else []:
        rows = np.flatnonzero(login == who)
        own = plans.get(who)
        plan = own or fallback
        occ_start, occ_end = occurrences.of(plan)
        if not occ_end.size or at[rows].max() >= occ_end[-1]:
            occ_start, occ_end = occurrences.of(plan, ahead=_MAX_SKIP)  # a long break ahead
        if own is not None and own.on:
            from_ns = _ns_of(own.since) if own.since is not None else int(np.iinfo(np.int64).min)
            batch[rows] = _inside(at[rows], occ_start, occ_end, from_ns, rec_ns)
        out = rows[batch[rows] < 0]
        j = np.searchsorted(occ_end, at[out], side="right")  # the first occurrence ending after
        would[out] = np.where(j < occ_end.size, j, -1)

    people: list[FocusLoad] = []
    befores: list[npt.NDArray[np.float64]] = []
    afters: list[npt.NDArray[np.float64]] = []
    dated = {k for k, p in plans.items() if p.on and p.since is not None}
    picked = _picked_up(prs, dated) if dated else None
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
        on = mine_plan is not None and mine_plan.on
        since = mine_plan.since if mine_plan is not None and on else None
        before = after = Latency()
        if since is not None and picked is not None:
            hb, bb, ha, ba = _pickup_around(picked, who, since=since, now=now)
            before, after = latency(hb, bb), latency(ha, ba)
            befores.append(np.stack([hb, bb]))
            afters.append(np.stack([ha, ba]))
        people.append(FocusLoad(
            login=who,
            on=on,
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
    sub = instants_ns(reviews["submitted_at"])
    who = reviews["reviewer"].to_numpy(dtype=object)
    ok = (
        reviews["counts"].to_numpy(dtype=bool)
        & (reviews["reviewer_kind"].to_numpy(dtype=object) == "human")
        & (sub > ns(now - timedelta(days=days))) & (sub <= ns(now))  # NaT: never after
        & among(who, allowed)
    )
    if not ok.any():
        return np.zeros(0, dtype=object), np.zeros(0, dtype=np.int64)
    names, person = np.unique(who[ok].astype(str), return_inverse=True)
    day = reviews["day"].to_numpy()[ok].astype("datetime64[D]").astype(np.int64)
    pr = reviews["pr"].to_numpy()[ok].astype(np.int64)
    at = sub[ok]
    order = np.lexsort((at, pr, day, person))  # each (person, day, PR) group, earliest first
    p, d, q = person[order], day[order], pr[order]
    first = np.ones(order.size, dtype=bool)
    first[1:] = (p[1:] != p[:-1]) | (d[1:] != d[:-1]) | (q[1:] != q[:-1])
    keep = order[first]
    by_time = keep[np.lexsort((at[keep], person[keep]))]
    return names[person[by_time]].astype(object), at[by_time]


def _inside(at: npt.NDArray[np.int64], occ_start: npt.NDArray[np.int64],
            occ_end: npt.NDArray[np.int64], since: int, rec_ns: int) -> npt.NDArray[np.int64]:
    """For one person's starts (ascending), the occurrence each belongs to, or -1.

    Inside: at or after an occurrence's start and before its end, at or after ``since``. Then
    a start less than ``rec_ns`` after the previous start joins that start's batch (grown to a
    fixed point: chains run on past the window's end)."""
    j = np.searchsorted(occ_end, at, side="right")  # the first occurrence ending after the start
    jj = np.minimum(j, max(occ_end.size - 1, 0))
    hit = (j < occ_end.size) & (at >= since)
    if occ_end.size:
        hit &= occ_start[jj] <= at
    batch = np.where(hit, jj, -1)
    gap_ok = np.zeros(at.size, dtype=bool)
    gap_ok[1:] = (at[1:] - at[:-1]) < rec_ns
    while True:
        prev = np.full(at.size, -1, dtype=np.int64)
        prev[1:] = batch[:-1]
        grow = (batch < 0) & (prev >= 0) & gap_ok
        if not grow.any():
            return batch
        batch[grow] = prev[grow]


class _Occurrences:
    """Window occurrences (UTC ns start and end, ascending) per plan, built once per distinct
    (spans, time zone) and day range: people without windows share the team default's.

    A window occurs on a local day of its time zone when its start wall time exists that day
    (a spring-forward gap skips it; a repeated wall time counts its first instant) and its start
    instant is working time of the team's calendar (no weekends, holidays, days off, or times
    outside working hours): the rule of the review windows' DMs, ``jobs.windows.occurrences_on``.
    """

    def __init__(self, calendar: WorkCalendar, at: npt.NDArray[np.int64]) -> None:
        self._calendar = calendar
        self._range = (int(at.min()), int(at.max())) if at.size else (0, 0)
        self._cache: dict[tuple[tuple[Span, ...], str, int], tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]] = {}

    def of(self, plan: Windows, *, ahead: int = 14) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """The plan's occurrences from the day before the first start to ``ahead`` days after
        the last (local days of the plan's time zone)."""
        key = (tuple(sorted(plan.spans)), plan.tz, ahead)
        found = self._cache.get(key)
        if found is None:
            day, _ = _wall(np.array(self._range, dtype=np.int64), plan.tz)
            found = self._cache[key] = _occurrences(self._calendar, key[0], key[1],
                                                    int(day[0]) - 1, int(day[1]) + ahead)
        return found


@lru_cache(maxsize=256)
def _occurrences(calendar: WorkCalendar, spans: tuple[Span, ...], tz: str, first: int, last: int,
                 ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The occurrences (UTC ns starts, ends) of ``spans`` in ``tz`` on local days ``first`` to
    ``last`` (days since 1970-01-01), by the calendar's working time: the same for every team
    sharing the calendar (cached, read-only arrays), so a refresh of every team builds each once."""
    rw = ReviewWindows(login="", windows=tuple(Window(a, b) for a, b in spans), tz=tz)
    starts: list[int] = []
    ends: list[int] = []
    for n in range(first, last + 1):
        for occ in occurrences_on(rw, _EPOCH_DATE + timedelta(days=n), calendar):
            starts.append(_ns_of(occ.start))
            ends.append(_ns_of(occ.end))
    out = np.array(starts, dtype=np.int64), np.array(ends, dtype=np.int64)
    for a in out:
        a.flags.writeable = False  # shared between callers
    return out


@dataclass(frozen=True, slots=True)
class _Picked:
    """The PRs picked up by people with windows: who (lower case), when (UTC ns), pickup wait."""

    login: npt.NDArray[np.object_]
    at: npt.NDArray[np.int64]
    h: npt.NDArray[np.float64]
    bh: npt.NDArray[np.float64]


def _picked_up(prs: pd.DataFrame, logins: set[str]) -> _Picked:
    """The non-bot PRs whose first human review was given by one of ``logins`` (lower case)."""
    fr = prs["first_human_review_at"]
    keep = fr.notna().to_numpy() & ~prs["bot"].to_numpy(dtype=bool)
    who = prs["first_reviewer"].to_numpy(dtype=object)[keep]
    low = np.array([w.lower() if isinstance(w, str) else "" for w in who], dtype=object)
    mine = among(low, logins)
    return _Picked(low[mine], _ns(fr[keep][mine]),
                   prs["pickup_wait_h"].to_numpy(dtype=np.float64)[keep][mine],
                   prs["pickup_wait_bh"].to_numpy(dtype=np.float64)[keep][mine])


def _pickup_around(picked: _Picked, login: str, *, since: datetime,
                   now: datetime) -> tuple[npt.NDArray[np.float64], ...]:
    """(before h, before bh, after h, after bh): the pickup waits of the PRs ``login`` picked
    up in the 28 days before ``since``, and from ``since`` (at the earliest) in the 28 before
    ``now``."""
    mine = picked.login == login
    at, h, bh = picked.at[mine], picked.h[mine], picked.bh[mine]
    s, n, span = _ns_of(since), _ns_of(now), PICKUP_DAYS * _DAY_NS
    before = (at >= s - span) & (at < s) & (at <= n)
    after = (at >= max(s, n - span)) & (at <= n)
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
    return (at - _EPOCH) // timedelta(microseconds=1) * 1000


def _minutes(hhmm: str) -> int:
    h, _, m = hhmm.strip().partition(":")
    return int(h) * 60 + int(m or 0)


def _time(minutes: int) -> time:
    return time(minutes // 60, minutes % 60)
