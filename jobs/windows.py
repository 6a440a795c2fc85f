"""Personal review windows (issue 17): the records, and pure "is a window open now?" arithmetic.

A member chooses up to :data:`MAX_WINDOWS` daily windows (local wall-clock spans like
``10:00-10:30``, in a time zone: the team's unless they chose another). At each window Flowbot
sends one DM listing what waits on them; between windows it stays quiet (except the team's
pickup-threshold exception, :mod:`jobs.window_dm`). A team may set a default
(``teams.<name>.review_windows``); a member's own choice (also "off") wins over it.

The rule for when a window *occurs* (used by the DM job and by the interruption figures):

* Each window occurs once per local calendar day of its time zone, from its start to its end
  wall-clock time. A day on which the start wall time does not exist (clocks spring forward
  over it) has no occurrence of that window; when it exists twice (clocks fall back), the first
  instant counts.
* It occurs only when its start instant is working time of the person's team calendar
  (:meth:`jobs.worktime.WorkCalendar.is_working_time`): not on weekends, public holidays or
  configured days off, and never in quiet hours (outside working hours).
* An occurrence is named by its local date and start (``2026-03-30T10:00``): the key of its
  exactly-once DM.

Pure: no Redis and no Slack here; the store keeps :class:`ReviewWindows` (``Store.get_review_windows``
/ ``Store.set_review_windows``), and times are arguments.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, Protocol
from zoneinfo import ZoneInfo

from jobs.model import PullRequest, QueueItem
from jobs.settings import Settings, Team, parse_window_text

__all__ = [
    "MAX_WINDOWS",
    "DmItem",
    "Occurrence",
    "ReviewWindows",
    "Window",
    "WindowCalendar",
    "WindowDM",
    "effective_windows",
    "next_window_start",
    "occurrences_on",
    "open_occurrence",
    "parse_windows",
    "person_lists",
    "team_of",
    "within_hours",
]

MAX_WINDOWS = 3
Source = Literal["personal", "team"]
Ci = Literal["green", "red", "running", "none"]
DmKind = Literal["window", "exception"]
_PASSING = frozenset({"success", "neutral", "skipped"})  # as jobs.queue reads a check


class WindowCalendar(Protocol):
    """What windows need of a team's calendar (``jobs.worktime.WorkCalendar``)."""

    def is_working_time(self, at: datetime) -> bool: ...

    def is_working_day(self, d: date) -> bool: ...


@dataclass(frozen=True, slots=True)
class Window:
    """One daily window, local wall-clock times, ``start < end`` (the same day)."""

    start: time
    end: time

    def __post_init__(self) -> None:
        if not self.start < self.end:
            raise ValueError(f"a window must end after it starts (got {self.label})")

    @property
    def label(self) -> str:
        """``10:00-10:30``."""
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    @classmethod
    def parse(cls, text: str) -> Window:
        """``"10:00-10:30"`` as a Window. Raises ValueError saying what is wrong."""
        start, end = parse_window_text(text)
        return cls(start, end)


@dataclass(frozen=True, slots=True)
class ReviewWindows:
    """A member's review windows.

    ``windows`` empty means off. ``tz`` is the IANA zone the windows are read in. ``since`` is
    when windows were last turned on (from off), UTC; None while off or when unknown.
    ``source`` says whether this is the member's own choice or their team's default.
    """

    login: str  # GitHub login, lower case
    windows: tuple[Window, ...]
    tz: str
    since: datetime | None = None
    changed_at: datetime | None = None
    changed_by: str = ""  # Slack user ID of whoever changed it ("" for a team default)
    source: Source = "personal"

    @property
    def on(self) -> bool:
        return bool(self.windows)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    def describe(self) -> str:
        """``10:00-10:30, 15:00-15:30 (Europe/Paris)`` or ``off``."""
        if not self.windows:
            return "off"
        return f"{', '.join(w.label for w in self.windows)} ({self.tz})"

    def changed(self, windows: Sequence[Window], *, now: datetime, by: str,
                tz: str | None = None) -> ReviewWindows:
        """This record after the member chose ``windows`` at ``now`` (``since`` moves only
        when windows go from off to on)."""
        ordered = tuple(sorted(windows, key=lambda w: w.start))
        since = self.since if self.on and self.source == "personal" else None
        if ordered and since is None:
            since = now
        return replace(self, windows=ordered, tz=tz or self.tz, since=since if ordered else None,
                       changed_at=now, changed_by=by, source="personal")


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One day's occurrence of a window: its instants (UTC) and its name."""

    login: str
    window: Window
    start: datetime
    end: datetime
    day: date  # the local date in the windows' time zone

    @property
    def key(self) -> str:
        """``2026-03-30T10:00``: unique per person, window and day."""
        return f"{self.day.isoformat()}T{self.window.start:%H:%M}"


# ------------------------------------------------------------------------------ choosing


def parse_windows(texts: Iterable[str], *, hours: Team | None = None) -> tuple[Window, ...]:
    """Windows from ``"HH:MM-HH:MM"`` texts (blanks ignored), sorted by start.

    Raises ValueError naming the first problem: a bad time, an end not after its start, more
    than :data:`MAX_WINDOWS`, overlapping windows, or (with ``hours``) a window outside the
    team's working hours.
    """
    out: list[Window] = []
    for text in texts:
        if text.strip():
            out.append(Window.parse(text.strip()))
    check_windows(out, hours=hours)
    return tuple(sorted(out, key=lambda w: w.start))


def check_windows(windows: Sequence[Window], *, hours: Team | None = None) -> None:
    """Raise ValueError when ``windows`` are more than three, overlap, or (with ``hours``)
    lie outside the working hours."""
    if len(windows) > MAX_WINDOWS:
        raise ValueError(f"at most {MAX_WINDOWS} windows a day (got {len(windows)})")
    ordered = sorted(windows, key=lambda w: w.start)
    for a, b in pairwise(ordered):
        if b.start < a.end:
            raise ValueError(f"windows {a.label} and {b.label} overlap")
    if hours is not None:
        for w in ordered:
            if not within_hours(w, hours):
                raise ValueError(f"window {w.label} is outside the working hours"
                                 f" {hours.working_hours}")


def within_hours(window: Window, hours: Team) -> bool:
    """Whether ``window`` lies inside the team's daily working hours."""
    return hours.day_start <= window.start and window.end <= hours.day_end


def team_of(settings: Settings, login: str) -> str | None:
    """The first team (config order) listing ``login``: whose calendar the windows follow."""
    return next(iter(settings.people.teams_of_login.get(login.lower(), ())), None)


def effective_windows(
    settings: Settings, stored: Mapping[str, ReviewWindows], login: str,
    *, default_since: Mapping[str, datetime] | None = None,
) -> ReviewWindows | None:
    """The windows that apply to ``login``: their own record, else their team's default, else
    None (off; also for a login on no team). ``default_since`` (team -> when its default was
    first applied) fills ``since`` for a team default."""
    low = login.lower()
    own = stored.get(low)
    if own is not None:
        return own
    team = team_of(settings, low)
    if team is None:
        return None
    cfg = settings.teams[team]
    if not cfg.review_windows:
        return None
    windows = tuple(sorted((Window.parse(t) for t in cfg.review_windows), key=lambda w: w.start))
    return ReviewWindows(login=low, windows=windows, tz=cfg.timezone,
                         since=(default_since or {}).get(team), source="team")


# ------------------------------------------------------------------------------ occurring


def occurrences_on(rw: ReviewWindows, day: date, calendar: WindowCalendar) -> list[Occurrence]:
    """The windows of ``rw`` that occur on local ``day`` (the module docstring's rule)."""
    out = []
    zone = rw.zone
    for w in rw.windows:
        start = _instant(day, w.start, zone)
        end = _instant(day, w.end, zone, gap_ok=True)
        if start is None or end is None or end <= start:
            continue  # a DST gap swallowed the start: no window that day
        if not calendar.is_working_time(start):
            continue  # weekend, holiday, day off, or outside working hours
        out.append(Occurrence(rw.login, w, start, end, day))
    return out


def open_occurrence(rw: ReviewWindows, calendar: WindowCalendar, *, now: datetime) -> Occurrence | None:
    """The occurrence of ``rw`` open at ``now`` (``start <= now < end``), or None."""
    if not rw.windows:
        return None
    day = now.astimezone(rw.zone).date()
    for occ in occurrences_on(rw, day, calendar):
        if occ.start <= now < occ.end:
            return occ
    return None


def next_window_start(rw: ReviewWindows, calendar: WindowCalendar, *, now: datetime,
                      days: int = 62) -> datetime | None:
    """The start of the first occurrence after ``now`` (UTC), or None (off, or none within
    ``days`` days: a long holiday)."""
    for occ in _upcoming(rw, calendar, now=now, days=days):
        return occ.start
    return None


def _upcoming(rw: ReviewWindows, calendar: WindowCalendar, *, now: datetime,
              days: int) -> Iterator[Occurrence]:
    if not rw.windows:
        return
    day = now.astimezone(rw.zone).date()
    for i in range(days):
        for occ in occurrences_on(rw, day + timedelta(days=i), calendar):
            if occ.start > now:
                yield occ


def _instant(day: date, at: time, zone: ZoneInfo, *, gap_ok: bool = False) -> datetime | None:
    """The UTC instant of local ``day`` ``at`` (fold 0: the first when the wall time repeats);
    None when the wall time does not exist (a spring-forward gap), unless ``gap_ok`` (then the
    instant as read with the offset before the jump: the span keeps its real length)."""
    local = datetime.combine(day, at, tzinfo=zone)
    utc = local.astimezone(UTC)
    if not gap_ok and utc.astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None):
        return None
    return utc


# ------------------------------------------------------------------------------ what waits


@dataclass(frozen=True, slots=True)
class DmItem:
    """One PR in a window DM: the queue's item, why it is on the person, and its CI."""

    item: QueueItem
    why: str  # "asked of you", "re-requested after changes", "asked of your team backend",
    #           "changes requested", "CI failing", "CI running", "approved, not merged"
    ci: Ci


@dataclass(frozen=True, slots=True)
class WindowDM:
    """One DM to a member: at a window (``kind="window"``), or the pickup-threshold exception.

    ``to_review``: PRs waiting on them as a reviewer, oldest first; ``as_author``: their own
    PRs waiting on their action. ``threshold_hours``: the team's pickup threshold (exceptions).
    """

    kind: DmKind
    team: str
    login: str
    slack_id: str
    at: datetime
    window: str  # "10:00-10:30"; "" for an exception
    tz: str
    to_review: tuple[DmItem, ...]
    as_author: tuple[DmItem, ...]
    next_window: datetime | None
    idempotency_key: str
    threshold_hours: float | None = None
    data_as_of: datetime | None = None


def person_lists(
    items: Iterable[QueueItem], *, login: str, slugs: Iterable[str],
    prs: Mapping[tuple[str, int], PullRequest] | None = None,
    hidden: Iterable[tuple[str, int]] = (),
) -> tuple[tuple[DmItem, ...], tuple[DmItem, ...]]:
    """What the team queue (``/flow queue``'s items) puts on ``login``, oldest first.

    To review: items in the reviewer's turn whose ``waiting_on`` names ``login`` or one of the
    GitHub team ``slugs`` they are eligible for (never their own PRs). As author: their own PRs
    in the author's turn (changes requested), CI's (failing or running) or approved, waiting to
    merge. ``hidden`` (repo, number) pairs are left out (snoozed, "not mine"). ``prs`` (the
    records, when read) tell re-requests apart and whether CI ran on the head commit.
    """
    low = login.lower()
    teams = {f"team:{s.lower()}" for s in slugs}
    skip = set(hidden)
    records = prs or {}
    review: list[DmItem] = []
    mine: list[DmItem] = []
    for item in sorted(items, key=lambda i: (-i.age_hours, i.repo, i.number)):
        if (item.repo, item.number) in skip:
            continue
        pr = records.get((item.repo, item.number))
        own = (item.author or "").lower() == low
        if own and item.turn in ("author", "ci", "approved"):
            mine.append(DmItem(item, _author_why(item, pr), _ci(item, pr)))
            continue
        if item.turn != "reviewer" or own:
            continue
        names = {w.lower() for w in item.waiting_on}
        if low in names:
            why = "re-requested after changes" if _re_requested(pr, low) else "asked of you"
        elif names & teams:
            slug = sorted(names & teams)[0].removeprefix("team:")
            why = f"asked of your team {slug}"
        else:
            continue
        review.append(DmItem(item, why, _ci(item, pr)))
    return tuple(review), tuple(mine)


def _author_why(item: QueueItem, pr: PullRequest | None) -> str:
    if item.turn == "author":
        return "changes requested"
    if item.turn == "approved":
        return "approved, not merged"
    return "CI failing" if _ci(item, pr) == "red" else "CI running"


def _ci(item: QueueItem, pr: PullRequest | None) -> Ci:
    """CI on the head commit: the queue's turn says red or running; else green when checks ran."""
    if pr is None:
        return "green" if item.turn in ("reviewer", "approved", "author") else "running"
    from jobs.queue import latest_attempts  # the queue's own reading of a check

    attempts = latest_attempts(pr.checks, pr.head_sha)
    if not attempts:
        return "none"
    if any(a.completed_at is not None and (a.conclusion or "") not in _PASSING for a in attempts):
        return "red"
    if any(a.completed_at is None for a in attempts):
        return "running"
    return "green"


def _re_requested(pr: PullRequest | None, login: str) -> bool:
    """``login`` reviewed this PR before their latest request on it (docs/metrics.md: a
    re-request names someone who already reviewed)."""
    if pr is None:
        return False
    asked = [e.at for e in pr.events if e.kind == "review_requested"
             and (e.requested_reviewer or "").lower() == login]
    if not asked:
        return False
    latest = max(asked)
    return any((r.author or "").lower() == login and r.submitted_at < latest for r in pr.reviews)
