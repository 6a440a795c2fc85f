"""The review-window DMs (issue 17): one DM per window with waiting PRs, and the one exception.

:func:`run_windows` is one plain, repeatable pass (the scheduler calls it every minute; it can
equally be enqueued as a unit of work): for every member whose windows are on (their own
choice, else their team's default, :func:`jobs.windows.effective_windows`):

* **Inside a window occurrence** (:func:`jobs.windows.open_occurrence`: working days and hours
  only, none in a DST gap): once per occurrence, the PRs the team queue puts on them now
  (:func:`jobs.windows.person_lists` over the same snapshot items `/flow queue` lists), oldest
  first, and their own PRs waiting on them as author. Nothing waits: no DM (the occurrence is
  marked done all the same, so nothing is sent later in that window).
* **Outside windows**: nothing, except a PR waiting on them as a reviewer for longer than the
  team's pickup threshold (``pickup_p50_hours``' warn level, `/flow set` included), sent once
  per PR and person, and only in working time (never in quiet hours, on holidays or days off);
  a PR their last window DM listed waits for the next window.
* **Quiet**: "mute today" silences both until the member's next local day; a snoozed PR waits
  for the next window; a PR the member marked "not mine" is left out for good.
* **Noise budget**: every DM counts in the member's weekly budget (``alerts.weekly_noise_budget``,
  the same per-recipient count alerts use). Past it, exceptions are not sent (the PR waits for
  the window), and window DMs shrink to one a day: the day's first window with waiting PRs.

Each DM goes through :class:`jobs.ports.DeliverDM` with the idempotency key
``window:{login}:{occurrence}`` (``window-exception:{login}:{PRs}`` for an exception), so
delivery posts it exactly once whatever retries, replicas or restarts do.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from jobs.errors import FlowbotError
from jobs.model import PullRequest, QueueItem, TeamSnapshot
from jobs.ports import DeliverDM
from jobs.settings import Settings, Team
from jobs.store import Store
from jobs.windows import (
    DmItem,
    Occurrence,
    ReviewWindows,
    WindowCalendar,
    WindowDM,
    effective_windows,
    next_window_start,
    open_occurrence,
    person_lists,
    team_of,
)

if TYPE_CHECKING:
    from jobs.worktime import WorkCalendar

log = logging.getLogger(__name__)

__all__ = [
    "WindowsReport",
    "mark_not_mine",
    "mute_today",
    "not_mine_of",
    "run_windows",
    "slugs_of",
    "snooze_pr",
    "windows_of",
]

JOB = "windows"
DONE_TTL = timedelta(days=3)
EXCEPTION_TTL = timedelta(days=60)  # once per PR: longer than any PR should wait
NOT_MINE_TTL = timedelta(days=60)
QUEUE_READ = 5000  # queue items read per team at a window (a team's whole queue)

CalendarFor = Callable[[Team], WindowCalendar]


@dataclass
class WindowsReport:
    """What one pass did: idempotency keys posted, and why others were not."""

    posted: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)  # occurrences with nothing waiting
    folded: list[str] = field(default_factory=list)  # past the noise budget
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # teams without a snapshot

    def __str__(self) -> str:
        return (f"{len(self.posted)} posted, {len(self.empty)} with nothing waiting, "
                f"{len(self.folded)} folded by the noise budget, {len(self.failed)} not delivered"
                + (f"; no snapshot for {', '.join(self.skipped)}" if self.skipped else ""))

    @property
    def partial(self) -> bool:
        return bool(self.failed)


def run_windows(settings: Settings, store: Store, deliver: DeliverDM, *, now: datetime,
                calendar_for: CalendarFor | None = None) -> WindowsReport:
    """One pass over every member with windows on (see the module doc). Repeatable: what was
    sent is never sent again. A member whose pass fails is logged and the others go on."""
    cal_for = calendar_for or _work_calendar
    report = WindowsReport()
    people = _people(settings)
    if not people:
        return report
    stored = store.get_review_windows([login for login, _ in people])
    defaults = [t for t, cfg in settings.teams.items() if cfg.review_windows]
    for name in defaults:
        store.mark_review_windows_default(name, now=now)
    since = store.review_windows_default_since(defaults)
    queues = _Queues(settings, store)
    for login, slack in people:
        rw = effective_windows(settings, stored, login, default_since=since)
        if rw is None or not rw.on:
            continue
        team = team_of(settings, login)
        assert team is not None  # effective_windows found their team
        try:
            _one(settings, store, deliver, rw, team, slack, cal_for(settings.teams[team]),
                 queues, report, now=now)
        except FlowbotError as err:
            log.error("review windows of %s skipped: %s", login, err)
            report.failed.append(login)
        except Exception:  # one member's odd data must not stop the others
            log.exception("review windows of %s failed", login)
            report.failed.append(login)
    report.skipped = sorted(queues.missing)
    return report


# --------------------------------------------------------------------------- the buttons


def snooze_pr(store: Store, settings: Settings, login: str, repo: str, number: int, *,
              now: datetime, calendar_for: CalendarFor | None = None) -> datetime | None:
    """Hide ``repo#number`` from ``login`` until their next window starts. Returns that start
    (None: no window ahead, then hidden for a day)."""
    until = _next_start(settings, store, login, now=now, calendar_for=calendar_for)
    end = until or now + timedelta(days=1)
    store.set_hash_json("windows-snooze", login.lower(), field=f"{repo}#{number}",
                        value=end.isoformat(), ttl=max(end - now, timedelta(minutes=1)) + timedelta(days=1))
    return until


def mark_not_mine(store: Store, login: str, repo: str, number: int, *, now: datetime, by: str) -> None:
    """``login`` says ``repo#number`` is not theirs to review: off their window DMs (and its
    threshold exception), and `/flow why` says so."""
    mark = {"at": now.isoformat(), "by": by}
    store.set_hash_json("windows-notmine", f"{repo}#{number}", field=login.lower(), value=mark,
                        ttl=NOT_MINE_TTL)  # what /flow why reads
    store.set_hash_json("windows-notmine-by", login.lower(), field=f"{repo}#{number}", value=mark,
                        ttl=NOT_MINE_TTL)  # what the member's DMs filter on (one read)


def not_mine_of(store: Store, repo: str, number: int) -> dict[str, datetime]:
    """Who said "not mine" on ``repo#number`` and when (login -> time)."""
    out: dict[str, datetime] = {}
    for login, value in store.get_hash_json("windows-notmine", f"{repo}#{number}").items():
        try:
            out[login] = datetime.fromisoformat(str(value["at"]))
        except (KeyError, TypeError, ValueError):
            continue
    return out


def mute_today(store: Store, settings: Settings, login: str, *, now: datetime, by: str) -> date:
    """No window DM nor exception for ``login`` for the rest of their local day. Returns it."""
    rw = windows_of(settings, store, login)
    tz = rw.zone if rw is not None else _team_zone(settings, login)
    day = now.astimezone(tz).date()
    store.set_json("windows-mute", login.lower(), day.isoformat(),
                   value={"at": now.isoformat(), "by": by}, ttl=timedelta(days=2))
    return day


def windows_of(settings: Settings, store: Store, login: str) -> ReviewWindows | None:
    """The windows that apply to ``login`` now (their own, else their team's default)."""
    low = login.lower()
    team = team_of(settings, low)
    since = store.review_windows_default_since([team]) if team else {}
    return effective_windows(settings, store.get_review_windows([low]), low, default_since=since)


def slugs_of(settings: Settings, login: str) -> set[str]:
    """GitHub team slugs whose requests ``login`` is eligible for: those of every Flowbot team
    listing them (as App Home counts them)."""
    return {s.lower() for s in settings.people.github_teams_of.get(login.lower(), ())}


# --------------------------------------------------------------------------- one member


def _one(settings: Settings, store: Store, deliver: DeliverDM, rw: ReviewWindows, team: str,
         slack: str, cal: WindowCalendar, queues: _Queues, report: WindowsReport, *,
         now: datetime) -> None:
    occ = open_occurrence(rw, cal, now=now)
    if occ is None and not cal.is_working_time(now):
        return  # quiet hours, a weekend, a holiday or a day off: nothing at all
    today = now.astimezone(rw.zone).date()
    if store.get_json("windows-mute", rw.login, today.isoformat()):
        return
    if occ is not None:
        _window(settings, store, deliver, rw, team, slack, cal, occ, queues, report, now=now)
    else:
        _exception(settings, store, deliver, rw, team, slack, cal, queues, report, now=now)


def _window(settings: Settings, store: Store, deliver: DeliverDM, rw: ReviewWindows, team: str,
            slack: str, cal: WindowCalendar, occ: Occurrence, queues: _Queues,
            report: WindowsReport, *, now: datetime) -> None:
    key = f"window:{rw.login}:{occ.key}"
    done = f"window-done:{rw.login}:{occ.key}"
    if store.was_claimed(done):
        return
    snap, items = queues.items(rw.login)
    if snap is None:
        return  # no snapshot yet: tried again next minute, inside the window
    slugs = slugs_of(settings, rw.login)
    review, mine = person_lists(items, login=rw.login, slugs=slugs)  # the few that concern them
    mine_items = [d.item for d in (*review, *mine)]
    hidden = _hidden(store, rw.login, [d.item for d in review], now=now)
    review, mine = person_lists(mine_items, login=rw.login, slugs=slugs,
                                prs=queues.records(mine_items, rw.login), hidden=hidden)
    if not review and not mine:
        store.claim_once(done, ttl=DONE_TTL)
        report.empty.append(key)
        return
    week = _iso_week(now)
    spent = _spent(store, slack, week)
    day_mark = f"window-day:{rw.login}:{occ.day.isoformat()}"
    if spent >= settings.alerts.weekly_noise_budget and store.was_claimed(day_mark):
        store.claim_once(done, ttl=DONE_TTL)
        report.folded.append(key)
        return
    dm = WindowDM(kind="window", team=team, login=rw.login, slack_id=slack, at=now,
                  window=occ.window.label, tz=rw.tz, to_review=review, as_author=mine,
                  next_window=next_window_start(rw, cal, now=occ.end - timedelta(microseconds=1)),
                  idempotency_key=key, data_as_of=snap.data_as_of)
    if not _deliver(deliver, dm):
        report.failed.append(key)
        return
    if store.claim_once(done, ttl=DONE_TTL):
        _spend(store, slack, week, spent)
    store.claim_once(day_mark, ttl=DONE_TTL)
    # told at this window: no threshold exception for these before the next one
    until = (dm.next_window or now + timedelta(days=1)).isoformat()
    store.set_hash_json_many("windows-listed", rw.login, ttl=timedelta(days=14),
                             values={f"{d.item.repo}#{d.item.number}": until for d in review})
    report.posted.append(key)


def _exception(settings: Settings, store: Store, deliver: DeliverDM, rw: ReviewWindows, team: str,
               slack: str, cal: WindowCalendar, queues: _Queues, report: WindowsReport, *,
               now: datetime) -> None:
    threshold = queues.threshold(team)
    waiting = queues.waiting(rw.login)
    if not waiting:
        return
    over = [i for i in waiting if i.age_business_hours > threshold]
    if not over:
        return
    slugs = slugs_of(settings, rw.login)
    review, _ = person_lists(over, login=rw.login, slugs=slugs)
    over = [d.item for d in review]
    hidden = _hidden(store, rw.login, over, now=now) | _hidden(store, rw.login, over, now=now,
                                                               what="windows-listed", not_mine=False)
    review, _ = person_lists(over, login=rw.login, slugs=slugs,
                             prs=queues.records(over, rw.login), hidden=hidden)
    told = store.claimed(_exception_claim(rw.login, d.item) for d in review)
    fresh = [d for d in review if _exception_claim(rw.login, d.item) not in told]
    if not fresh:
        return
    week = _iso_week(now)
    spent = _spent(store, slack, week)
    refs = sorted(f"{d.item.repo}#{d.item.number}" for d in fresh)
    key = f"window-exception:{rw.login}:{hashlib.sha256(' '.join(refs).encode()).hexdigest()[:16]}"
    if spent >= settings.alerts.weekly_noise_budget:
        report.folded.append(key)  # over budget: the PRs wait for the next window
        return
    snap = queues.snapshot(team)
    dm = WindowDM(kind="exception", team=team, login=rw.login, slack_id=slack, at=now, window="",
                  tz=rw.tz, to_review=tuple(fresh), as_author=(),
                  next_window=next_window_start(rw, cal, now=now), idempotency_key=key,
                  threshold_hours=threshold, data_as_of=snap.data_as_of if snap else None)
    if not _deliver(deliver, dm):
        report.failed.append(key)
        return
    first = False
    for d in fresh:
        first = store.claim_once(_exception_claim(rw.login, d.item), ttl=EXCEPTION_TTL) or first
    if first:
        _spend(store, slack, week, spent)
    report.posted.append(key)


# --------------------------------------------------------------------------- helpers


class _Queues:
    """The team queues read once per pass: whole at a window, the waiting lists otherwise."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self._full: dict[str, tuple[TeamSnapshot | None, list[QueueItem]]] = {}
        self._prs: dict[tuple[str, int], PullRequest] = {}
        self._thresholds: dict[str, float] = {}
        self.missing: set[str] = set()

    def teams_of(self, login: str) -> list[str]:
        low = login.lower()
        return [name for name, t in self.settings.teams.items() if low in t.logins]

    def snapshot(self, team: str) -> TeamSnapshot | None:
        return self._team(team)[0]

    def items(self, login: str) -> tuple[TeamSnapshot | None, list[QueueItem]]:
        """The queue items of every team of ``login`` (each PR once) and the first team's
        snapshot head (None when no team of theirs has a snapshot yet)."""
        head: TeamSnapshot | None = None
        seen: dict[tuple[str, int], QueueItem] = {}
        for team in self.teams_of(login):
            snap, items = self._team(team)
            head = head or snap
            for item in items:
                seen.setdefault((item.repo, item.number), item)
        return head, list(seen.values())

    def waiting(self, login: str) -> list[QueueItem]:
        """The oldest PRs in the reviewer's turn waiting on ``login`` or their GitHub teams
        (the snapshot's per-reviewer lists: one read, whatever the queue's length)."""
        who = [login.lower(), *(f"team:{s}" for s in sorted(slugs_of(self.settings, login)))]
        out: dict[tuple[str, int], QueueItem] = {}
        for _snap, lists in self.store.get_waiting(self.teams_of(login), who):
            for found in lists:
                for item in found.items:
                    out.setdefault((item.repo, item.number), item)
        return list(out.values())

    def records(self, items: Sequence[QueueItem], login: str) -> dict[tuple[str, int], PullRequest]:
        """The PR records of the items that concern ``login`` (re-requests, CI on the head)."""
        low = login.lower()
        wanted: dict[str, list[int]] = {}
        for i in items:
            if (i.repo, i.number) in self._prs:
                continue
            if (i.author or "").lower() == low or i.turn == "reviewer":
                wanted.setdefault(i.repo, []).append(i.number)
        for repo, numbers in wanted.items():
            for number, pr in self.store.get_pr_many(repo, numbers).items():
                self._prs[(repo, number)] = pr
        return self._prs

    def threshold(self, team: str) -> float:
        """The team's pickup threshold (working hours), read once per pass."""
        if team not in self._thresholds:
            self._thresholds[team] = _pickup_threshold(self.settings, self.store, team)
        return self._thresholds[team]

    def _team(self, team: str) -> tuple[TeamSnapshot | None, list[QueueItem]]:
        if team not in self._full:
            snap, items, _total = self.store.get_queue_page(team, start=0, count=QUEUE_READ)
            if snap is None:
                self.missing.add(team)
            self._full[team] = (snap, items)
        return self._full[team]


def _people(settings: Settings) -> list[tuple[str, str]]:
    """(login, Slack ID) of every member with a Slack ID, each login once (config order)."""
    out: dict[str, str] = {}
    for team in settings.teams.values():
        for m in team.members:
            if m.slack:
                out.setdefault(m.github.lower(), m.slack)
    return list(out.items())


def _hidden(store: Store, login: str, items: Iterable[QueueItem], *, now: datetime,
            what: str = "windows-snooze", not_mine: bool = True) -> set[tuple[str, int]]:
    """The items ``login`` snoozed (until a time still ahead) or said are not theirs; with
    ``what="windows-listed"``: those their last window DM listed, until the next window."""
    refs = {f"{i.repo}#{i.number}": (i.repo, i.number) for i in items}
    out: set[tuple[str, int]] = set()
    if not refs:
        return out
    for ref, until in store.get_hash_json(what, login, fields=list(refs)).items():
        try:
            if datetime.fromisoformat(str(until)) > now:
                out.add(refs[ref])
        except ValueError:
            continue
    if not_mine:
        out.update(refs[ref] for ref in store.get_hash_json("windows-notmine-by", login, fields=list(refs)))
    return out


def _pickup_threshold(settings: Settings, store: Store, team: str) -> float:
    from jobs.overrides import effective_thresholds

    return float(effective_thresholds(settings, store, team)["pickup_p50_hours"].warn)


def _exception_claim(login: str, item: QueueItem) -> str:
    return f"window-exception:{login}:{item.repo}#{item.number}"


def _spent(store: Store, slack: str, week: str) -> int:
    """The member's count in the weekly noise budget (the key alerts count in)."""
    value: Any = store.get_json("alerts", "budget", slack, week)
    return int(value or 0)


def _spend(store: Store, slack: str, week: str, spent: int) -> None:
    store.set_json("alerts", "budget", slack, week, value=spent + 1, ttl=timedelta(days=8))


def _deliver(deliver: DeliverDM, dm: WindowDM) -> bool:
    try:
        return bool(deliver.window_dm(dm))
    except FlowbotError as err:
        log.error("window DM %s not delivered: %s", dm.idempotency_key, err)
        return False


def next_window_start_of(settings: Settings, rw: ReviewWindows | None, *, now: datetime,
                         calendar_for: CalendarFor | None = None) -> datetime | None:
    """When ``rw``'s next window opens on its member's team calendar (None: off or none ahead)."""
    team = team_of(settings, rw.login) if rw is not None else None
    if rw is None or team is None:
        return None
    return next_window_start(rw, (calendar_for or _work_calendar)(settings.teams[team]), now=now)


def _next_start(settings: Settings, store: Store, login: str, *, now: datetime,
                calendar_for: CalendarFor | None) -> datetime | None:
    return next_window_start_of(settings, windows_of(settings, store, login), now=now,
                                calendar_for=calendar_for)


def _team_zone(settings: Settings, login: str) -> Any:
    team = team_of(settings, login)
    return settings.teams[team].zone if team else settings.teams[next(iter(settings.teams))].zone


def _iso_week(now: datetime) -> str:
    year, week, _ = now.isocalendar()  # as jobs.alerts counts its budget: ISO weeks, UTC
    return f"{year}-W{week:02d}"


def _work_calendar(team: Team) -> WorkCalendar:
    from jobs.worktime import WorkCalendar  # pandas: imported where used, not by the web tier

    return WorkCalendar.for_team(team)


def to_review_refs(dm: WindowDM) -> list[str]:
    """``acme/api#12`` of each PR the DM lists to review, in its order (tests, logs)."""
    return [f"{d.item.repo}#{d.item.number}" for d in dm.to_review]


def items_of(dm: WindowDM) -> tuple[DmItem, ...]:
    """Every PR the DM lists, to review first."""
    return dm.to_review + dm.as_author
