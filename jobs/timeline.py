"""Pure per-PR clocks: the scalar reference reading of docs/metrics.md, and what `/flow why` shows.

One PR in, its clocks out, each with the event that started it and the event that stopped it
(which event, when, who), in calendar and business hours, and the filters that apply to it.
``jobs.metrics`` computes the same numbers for many PRs at once and must agree with this
module; the definitions below are the contract for both.

Reading of the timeline (docs/metrics.md "PR timeline events"), as of ``now``:

* Events, reviews, ``merged_at`` and ``closed_at`` later than ``now`` are ignored. Events and
  reviews are taken in time order, ties in record order.
* ``opened``: ``created_at`` by the author. ``first_commit``: ``first_commit_at`` (the oldest
  commit's author date) by the author. Work starts at the first commit, also when that came
  after the PR was opened (an agent opens a draft PR first and commits into it); at
  ``opened`` only when no commit time is known. It starts no later than ``ready_at`` and
  ``end``: a first commit authored after the PR was ready for review (a history rewritten
  with new author dates) starts the work at ``ready_at``, since the reviewers' clocks were
  already running, so coding is zero and the stages still add up.
* ``ready_at``: ``created_at`` if the PR was opened ready, else the first ``ready_for_review``.
  It was opened as a draft when its first ready/draft event is ``ready_for_review``, or, with no
  such event, when it is a draft now (then it was never ready: ``ready_at`` is None).
* Draft intervals: each ``convert_to_draft`` at or after ``ready_at`` starts one (repeats
  collapse), the next ``ready_for_review`` ends it, else it runs to ``now``.
* A review counts for the clocks when its state is APPROVED, CHANGES_REQUESTED or COMMENTED and
  it is not by the PR's author (logins compared case-insensitively; a deleted account is never
  the author). ``first_human_review_at``: the first such review by a human or a deleted
  account (docs/metrics.md "Deleted accounts"); ``first_ai_review_at``: the first by an AI reviewer.
  Bot reviews stop nothing.
* ``approved_at``: with ``required_approvals == 1`` the first counted human APPROVED review.
  With more, each human reviewer's latest verdict counts (APPROVED or CHANGES_REQUESTED; a
  comment changes nothing; each deleted-account review is a reviewer of its own), and
  ``approved_at`` is the first review after which at least ``required_approvals`` verdicts
  approve and none requests changes.
* ``first_request_at``: the first ``review_requested`` at or after ``ready_at``.
* ``end``: ``merged_at``, else ``closed_at``, else ``now`` (clocks still running stop there).

Durations: calendar hours are ``(stop - start) / 1 h`` on exact microseconds; business hours
come from :class:`jobs.worktime.WorkCalendar`. A waiting clock is measured from start to stop
(a stop before its start reads zero), minus each draft interval's overlap with it (calendar
and business alike), the overlaps summed one after the other in draft order, and the result
floored at zero. Lead time keeps draft time in; coding is work start to ready plus the summed
draft overlaps after ready, so the four stages add up to lead time (to float rounding).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from jobs.identity import Identity
from jobs.model import PullRequest, Review, TimelineEvent, size_bucket
from jobs.worktime import WorkCalendar

__all__ = [
    "COUNTED_STATES",
    "Clock",
    "EventRef",
    "PRClocks",
    "PREvents",
    "RequestResponse",
    "pr_clocks",
    "read_events",
    "request_responses",
]

HOUR = timedelta(hours=1)
COUNTED_STATES = frozenset({"APPROVED", "CHANGES_REQUESTED", "COMMENTED"})
_SPAN = tuple[datetime, datetime]


@dataclass(frozen=True, slots=True)
class EventRef:
    """One event a clock started or stopped on: what happened, when (UTC), and who did it.

    ``kind`` is ``opened``, ``first_commit``, ``ready_for_review``, ``convert_to_draft``,
    ``review_requested``, ``approved``/``changes_requested``/``commented`` (a review),
    ``merged``, ``closed``, or ``now`` for a clock still running. ``who`` is a login, or None
    (a deleted account, or unknown).
    """

    kind: str
    at: datetime
    who: str | None = None


@dataclass(frozen=True, slots=True)
class Clock:
    """One measured span: ``calendar_hours``/``business_hours`` are None when not measurable
    (its start or stop event never happened). ``note`` says why it reads as it does."""

    name: str
    start: EventRef | None
    stop: EventRef | None
    calendar_hours: float | None
    business_hours: float | None
    note: str = ""

    @property
    def running(self) -> bool:
        """Still counting: the PR is open and the stop event has not happened yet."""
        return self.stop is not None and self.stop.kind == "now"


@dataclass(frozen=True, slots=True)
class PREvents:
    """The timeline events of one PR as of ``now`` (module docstring: "Reading").

    ``drafts``: the intervals back in draft after ``ready_at`` as (start, stop) references,
    the stop being ``ready_for_review`` or ``now``.
    """

    now: datetime
    opened_at: EventRef
    first_commit_at: EventRef | None
    work_started_at: EventRef
    opened_as_draft: bool
    ready_at: EventRef | None
    first_request_at: EventRef | None
    first_human_review_at: EventRef | None
    first_ai_review_at: EventRef | None
    approved_at: EventRef | None
    merged_at: EventRef | None
    closed_at: EventRef | None
    end: EventRef
    drafts: tuple[tuple[EventRef, EventRef], ...]

    @property
    def draft_spans(self) -> tuple[_SPAN, ...]:
        return tuple((a.at, b.at) for a, b in self.drafts)


@dataclass(frozen=True, slots=True)
class PRClocks:
    """Everything `/flow why owner/repo#N` shows for one PR (docs/metrics.md, all sections).

    ``coding + pickup + review + merge == lead_time`` in calendar hours and (to float
    rounding) in business hours, for every PR with a start: a merged PR's stages end at merge,
    a closed one's at close, an open one's at ``now``. ``filters`` are sentences saying why the
    PR is excluded, split or read specially.
    """

    key: str
    url: str
    title: str
    author: str | None
    state: str  # "open", "merged" or "closed", as of ``now``
    bot_pr: bool  # authored by a non-AI bot: left out of latency metrics
    ai_assisted: bool
    ai_reasons: tuple[str, ...]  # e.g. "authored by AI agent 'copilot-swe-agent'"
    ai_agent_author: bool  # authored by an AI agent account (counts like a human's PR)
    size: int  # additions + deletions
    size_bucket: str  # XS/S/M/L/XL
    required_approvals: int
    events: PREvents
    drafts: tuple[Clock, ...]  # each interval back in draft after ready
    coding: Clock
    pickup: Clock
    review: Clock
    merge: Clock
    lead_time: Clock
    time_to_approval: Clock
    time_to_merge: Clock
    first_ai_review: Clock
    filters: tuple[str, ...]

    # the events, by their docs/metrics.md names
    @property
    def ready_at(self) -> EventRef | None:
        return self.events.ready_at

    @property
    def first_request_at(self) -> EventRef | None:
        return self.events.first_request_at

    @property
    def first_human_review_at(self) -> EventRef | None:
        return self.events.first_human_review_at

    @property
    def first_ai_review_at(self) -> EventRef | None:
        return self.events.first_ai_review_at

    @property
    def approved_at(self) -> EventRef | None:
        return self.events.approved_at

    @property
    def merged_at(self) -> EventRef | None:
        return self.events.merged_at

    @property
    def closed_at(self) -> EventRef | None:
        return self.events.closed_at

    @property
    def stages(self) -> tuple[Clock, Clock, Clock, Clock]:
        """The four stages that add up to lead time, in order."""
        return (self.coding, self.pickup, self.review, self.merge)

    @property
    def clocks(self) -> tuple[Clock, ...]:
        """Every clock in the order `/flow why` lists them."""
        return (
            *self.stages,
            self.lead_time,
            self.time_to_approval,
            self.time_to_merge,
            self.first_ai_review,
        )


@dataclass(frozen=True, slots=True)
class RequestResponse:
    """One review request as it reached one reviewer, and its answer (docs/metrics.md "Requests").

    A direct request gives one record; a team request one per member of the team except the
    PR's author (``via_team``), or a single record with ``reviewer`` None when the team's
    members are unknown. ``reviewer`` and ``team`` are lower-cased. Hours are None unless the
    request was answered.
    """

    pr_key: str
    reviewer: str | None
    team: str | None
    via_team: bool
    requested_at: datetime
    requested_by: str | None
    is_rerequest: bool
    responded_at: datetime | None
    responder: str | None
    removed_at: datetime | None  # withdrawn before any answer
    calendar_hours: float | None
    business_hours: float | None

    @property
    def removed_before_review(self) -> bool:
        """The request was taken off before anyone answered it: it has no response time."""
        return self.removed_at is not None


# ---------------------------------------------------------------------- public functions


def read_events(
    pr: PullRequest, *, identity: Identity, now: datetime, required_approvals: int = 1
) -> PREvents:
    """The PR's timeline events as of ``now`` (module docstring: "Reading").

    Raises ``ValueError`` if ``required_approvals`` is below 1.
    """
    if required_approvals < 1:
        raise ValueError(f"required_approvals must be at least 1 (got {required_approvals})")
    events = sorted((e for e in pr.events if e.at <= now), key=lambda e: e.at)

    opened = EventRef("opened", pr.created_at, pr.author)
    first_commit = (
        EventRef("first_commit", pr.first_commit_at, pr.author) if pr.first_commit_at else None
    )
    merged = _final(pr.merged_at, "merged", events, now)
    closed = _final(pr.closed_at, "closed", events, now)
    end = merged or closed or EventRef("now", now)

    ready, opened_as_draft, drafts = _ready_and_drafts(pr, events, opened, now)
    started = first_commit or opened
    for limit in (ready, end):  # never later than ready, nor than the end
        if limit is not None and limit.at < started.at:
            started = limit
    first_request = next(
        (
            EventRef("review_requested", e.at, e.actor)
            for e in events
            if e.kind == "review_requested" and ready is not None and e.at >= ready.at
        ),
        None,
    )
    counted = _counted_reviews(pr, now)
    human = [r for r in counted if identity.is_human_reviewer(r.author, r.author_type)]
    ai = [r for r in counted if identity.kind(r.author, r.author_type) == "ai"]
    return PREvents(
        now=now,
        opened_at=opened,
        first_commit_at=first_commit,
        work_started_at=started,
        opened_as_draft=opened_as_draft,
        ready_at=ready,
        first_request_at=first_request,
        first_human_review_at=_review_ref(human[0]) if human else None,
        first_ai_review_at=_review_ref(ai[0]) if ai else None,
        approved_at=_approval(human, required_approvals),
        merged_at=merged,
        closed_at=closed,
        end=end,
        drafts=drafts,
    )


def pr_clocks(
    pr: PullRequest,
    *,
    identity: Identity,
    calendar: WorkCalendar,
    now: datetime,
    required_approvals: int = 1,
) -> PRClocks:
    """Every clock of one PR as of ``now``, with the events behind it (docs/metrics.md).

    Stages (docs/metrics.md "Stages of a merged PR", "Precise readings: Draft time"): boundaries are
    work start, ``ready_at``, ``first_human_review_at``, ``approved_at`` and ``end``.

    1. A PR never ready for review has only coding (its reviews are ignored for the stages).
    2. A boundary event that is missing, or later than ``end`` (a review after merge), takes
       the next boundary that exists, so its stage runs on to that one and the next collapses
       to zero (no review: pickup ends at merge, review and merge wait are zero; no approval:
       review runs to merge).
    3. A boundary earlier than the one before it (a review while still a draft, an approval
       before ready) is moved up to it, so that stage is zero.
    4. Pickup, review and merge wait leave out draft time; coding is work start to ready plus
       all draft time between ready and ``end``, so the four add up to lead time (work start
       to ``end``, draft time included).

    The pickup latency of docs/metrics.md "Review latency" is the pickup stage of a PR whose
    ``ready_at`` and first human review both came by ``end``; other PRs have no pickup latency.

    Other clocks leave out draft time and start at ``ready_at`` (None if never ready):
    ``time_to_approval`` (to ``approved_at``), ``time_to_merge`` (to ``merged_at``) and
    ``first_ai_review`` (to ``first_ai_review_at``; it never stops pickup). They stop no later
    than ``end``; a stop before ``ready_at`` reads zero. A clock whose stop event has not
    happened runs to ``now`` while the PR is open (``Clock.running``), else it is None; the
    AI clock is None without an AI review. ``lead_time`` of a PR closed without merge is None.

    Raises ``ValueError`` if ``required_approvals`` is below 1.
    """
    ev = read_events(pr, identity=identity, now=now, required_approvals=required_approvals)
    spans = ev.draft_spans
    state = "merged" if ev.merged_at else "closed" if ev.closed_at else "open"

    coding, pickup, review, merge, lead = _stages(ev, spans, calendar)
    lead_time = _lead_time(ev, lead, state)
    to_approval = _from_ready("time_to_approval", ev, ev.approved_at, spans, calendar, state,
                              missing="never approved")
    to_merge = _from_ready("time_to_merge", ev, ev.merged_at, spans, calendar, state,
                           missing="closed without merging")
    if ev.first_ai_review_at is None:
        ai_clock = Clock("first_ai_review", ev.ready_at, None, None, None, "no AI review")
    else:
        ai_clock = _from_ready("first_ai_review", ev, ev.first_ai_review_at, spans, calendar,
                               state, missing="")
    draft_clocks = tuple(
        Clock("back_in_draft", a, b, (b.at - a.at) / HOUR, calendar.hours_between(a.at, b.at),
              "left out of every waiting clock; counted as coding")
        for a, b in ev.drafts
    )
    bot_pr = identity.is_excluded_bot_pr(pr)
    ai_assisted = identity.is_ai_assisted(pr)
    agent = identity.kind(pr.author, pr.author_type) == "ai"
    reasons = _ai_reasons(pr, identity, agent)
    return PRClocks(
        key=pr.key,
        url=pr.url,
        title=pr.title,
        author=pr.author,
        state=state,
        bot_pr=bot_pr,
        ai_assisted=ai_assisted,
        ai_reasons=reasons,
        ai_agent_author=agent,
        size=pr.size,
        size_bucket=size_bucket(pr.size),
        required_approvals=required_approvals,
        events=ev,
        drafts=draft_clocks,
        coding=coding,
        pickup=pickup,
        review=review,
        merge=merge,
        lead_time=lead_time,
        time_to_approval=to_approval,
        time_to_merge=to_merge,
        first_ai_review=ai_clock,
        filters=_filters(ev, state, bot_pr, ai_assisted, agent, reasons, draft_clocks,
                         required_approvals),
    )


def request_responses(
    pr: PullRequest,
    *,
    identity: Identity,
    team_members: Mapping[str, Iterable[str]] | None,
    calendar: WorkCalendar,
    now: datetime,
) -> tuple[RequestResponse, ...]:
    """Each review request on the PR up to ``now``, per reviewer, with its answer
    (docs/metrics.md "Requests", "Review latency: per-request response time").

    * Records: every ``review_requested`` naming a login gives one; one naming a team gives
      one per member (``team_members``: slug -> logins, case-insensitive) except the PR's
      author, or one with ``reviewer`` None when the team is not listed (or lists nobody).
      Requests on bot PRs and on drafts are included (the caller filters). Order: request
      events in time order (ties in record order), members by login.
    * Re-request: the same reviewer already has an earlier record on this PR (direct or via a
      team; same-time records count in that order), or submitted a counted review (see
      "Reading") strictly before. A record with ``reviewer`` None is never a re-request.
    * Answer: the first counted review at or after the request by the reviewer; for a record
      via a team, by any listed member of the team (the author's own reviews never count).
      A deleted account's review answers nothing (it is attributed to no reviewer); a team
      nobody listed gets no answer.
    * Withdrawn: the first ``review_request_removed`` at or after the request naming the same
      login (a direct record) or the same team (a team record); when it comes before the answer
      (an answer at the same moment wins) the record has ``removed_at`` and no answer.
    * Hours: request to answer, less the PR's draft time: the intervals back in draft after
      ready, and for a PR opened as a draft its first spell (opened to ready, or ``now``), so a
      request made on a draft waits only once the PR is ready.
    """
    ev = read_events(pr, identity=identity, now=now)
    drafts = list(ev.draft_spans)
    if ev.opened_as_draft:
        drafts.append((pr.created_at, ev.ready_at.at if ev.ready_at else now))
    drafts.sort(key=lambda span: span[0])
    events = sorted((e for e in pr.events if e.at <= now), key=lambda e: e.at)
    counted = [r for r in _counted_reviews(pr, now) if r.author is not None]
    author = _lower(pr.author)
    members = {
        slug.lower(): sorted({m.lower() for m in logins})
        for slug, logins in (team_members or {}).items()
    }
    removals = [e for e in events if e.kind == "review_request_removed"]
    out: list[RequestResponse] = []
    seen: set[str] = set()
    for e in events:
        if e.kind != "review_requested":
            continue
        if e.requested_team:
            team: str | None = e.requested_team.lower()
            listed = members.get(e.requested_team.lower())
            targets: list[str | None] = [m for m in listed if m != author] if listed else [None]
            responders = frozenset(listed or ())
        elif e.requested_reviewer:
            team = None
            login = e.requested_reviewer.lower()
            targets, responders = [login], frozenset({login})
        else:
            continue  # names no one: nothing to answer
        for who in targets:
            rerequest = who is not None and (
                who in seen
                or any(_lower(r.author) == who and r.submitted_at < e.at for r in counted)
            )
            if who is not None:
                seen.add(who)
            answer, removal = _answer(e, team, who, responders, counted, removals)
            cal_h = bus_h = None
            if answer is not None:
                cal_h, bus_h = _measure(e.at, answer.submitted_at, drafts, calendar)
            out.append(
                RequestResponse(
                    pr_key=pr.key,
                    reviewer=who,
                    team=team,
                    via_team=team is not None,
                    requested_at=e.at,
                    requested_by=e.actor,
                    is_rerequest=rerequest,
                    responded_at=answer.submitted_at if answer else None,
                    responder=answer.author if answer else None,
                    removed_at=removal,
                    calendar_hours=cal_h,
                    business_hours=bus_h,
                )
            )
    return tuple(out)


# ---------------------------------------------------------------------- reading helpers


def _answer(request: TimelineEvent, team: str | None, who: str | None,
            responders: frozenset[str], counted: Sequence[Review],
            removals: Sequence[TimelineEvent]) -> tuple[Review | None, datetime | None]:
    """(answer, withdrawn at) of one request record; see :func:`request_responses`."""
    answer = next(
        (r for r in counted if r.submitted_at >= request.at and _lower(r.author) in responders),
        None,
    )
    if team is not None:
        removal = next((x.at for x in removals if x.at >= request.at
                        and _lower(x.requested_team) == team), None)
    else:
        removal = next((x.at for x in removals if x.at >= request.at and not x.requested_team
                        and _lower(x.requested_reviewer) == who), None)
    if removal is None or (answer is not None and answer.submitted_at <= removal):
        return answer, None
    return None, removal


def _lower(login: str | None) -> str | None:
    return login.lower() if login else None


def _counted_reviews(pr: PullRequest, now: datetime) -> list[Review]:
    """Reviews the clocks read, in time order: submitted by ``now``, APPROVED,
    CHANGES_REQUESTED or COMMENTED, not by the PR's author."""
    author = _lower(pr.author)
    return sorted(
        (
            r
            for r in pr.reviews
            if r.submitted_at <= now
            and r.state in COUNTED_STATES
            and (r.author is None or r.author.lower() != author)
        ),
        key=lambda r: r.submitted_at,
    )


def _review_ref(review: Review) -> EventRef:
    return EventRef(review.state.lower(), review.submitted_at, review.author)


def _final(at: datetime | None, kind: str, events: Sequence[TimelineEvent],
           now: datetime) -> EventRef | None:
    """``merged_at``/``closed_at`` as an event, with its actor when the timeline names one."""
    if at is None or at > now:
        return None
    actor = next((e.actor for e in reversed(events) if e.kind == kind), None)
    return EventRef(kind, at, actor)


def _ready_and_drafts(
    pr: PullRequest, events: Sequence[TimelineEvent], opened: EventRef, now: datetime
) -> tuple[EventRef | None, bool, tuple[tuple[EventRef, EventRef], ...]]:
    marks = [e for e in events if e.kind in ("ready_for_review", "convert_to_draft")]
    opened_as_draft = marks[0].kind == "ready_for_review" if marks else pr.draft
    ready: EventRef | None = None if opened_as_draft else opened
    drafts: list[tuple[EventRef, EventRef]] = []
    since: EventRef | None = None
    for mark in marks:
        ref = EventRef(mark.kind, mark.at, mark.actor)
        if mark.kind == "ready_for_review":
            if ready is None:
                ready = ref
            elif since is not None:
                drafts.append((since, ref))
            since = None
        elif ready is not None and since is None and mark.at >= ready.at:
            since = ref
    if since is not None:
        drafts.append((since, EventRef("now", now)))
    return ready, opened_as_draft, tuple(drafts)


def _approval(human: Sequence[Review], required: int) -> EventRef | None:
    if required == 1:
        return next((_review_ref(r) for r in human if r.state == "APPROVED"), None)
    verdicts: dict[object, str] = {}
    for i, r in enumerate(human):
        if r.state == "COMMENTED":
            continue
        verdicts[r.author.lower() if r.author else ("deleted", i)] = r.state
        states = list(verdicts.values())
        if states.count("APPROVED") >= required and "CHANGES_REQUESTED" not in states:
            return _review_ref(r)
    return None


# ---------------------------------------------------------------------- measuring helpers


def _measure(start: datetime, stop: datetime, drafts: Sequence[_SPAN],
             calendar: WorkCalendar) -> tuple[float, float]:
    """Calendar and business hours from ``start`` to ``stop`` less the draft overlaps."""
    total_c, total_b, over_c, over_b = _span_and_overlap(start, stop, drafts, calendar)
    return max(total_c - over_c, 0.0), max(total_b - over_b, 0.0)


def _span_and_overlap(start: datetime, stop: datetime, drafts: Sequence[_SPAN],
                      calendar: WorkCalendar) -> tuple[float, float, float, float]:
    stop = max(stop, start)
    over_c = 0.0
    over_b = 0.0
    for a, b in drafts:  # summed one after the other, in draft order (see module docstring)
        lo, hi = max(a, start), min(b, stop)
        if hi > lo:
            over_c += (hi - lo) / HOUR
            over_b += calendar.hours_between(lo, hi)
    return (stop - start) / HOUR, calendar.hours_between(start, stop), over_c, over_b


def _stages(ev: PREvents, drafts: Sequence[_SPAN],
            calendar: WorkCalendar) -> tuple[Clock, Clock, Clock, Clock, Clock]:
    """The four stages, and lead time from work start to ``end`` (see :func:`pr_clocks`)."""
    end = ev.end
    end_word = {"merged": "merge", "closed": "close", "now": "now"}[end.kind]
    running = end.kind == "now"
    notes = ["", "", "", ""]
    events = [ev.ready_at, ev.first_human_review_at, ev.approved_at]
    after_end = [e is not None and e.at > end.at for e in events]
    raw = [None if late else e for e, late in zip(events, after_end, strict=False)]
    if ev.ready_at is None:  # never ready: nothing waited on reviewers, all of it is coding
        raw = [None, None, None]
    bounds: list[EventRef] = [ev.work_started_at, end, end, end, end]
    for i in (3, 2, 1):  # a missing boundary takes the next one that exists
        bounds[i] = raw[i - 1] or bounds[i + 1]
    moved = [False] * 5
    for i in range(1, 5):  # never before the boundary before it
        if bounds[i].at < bounds[i - 1].at:
            bounds[i] = bounds[i - 1]
            moved[i] = True

    if ev.ready_at is None:
        notes[0] = f"never ready for review: coding runs to {end_word}"
    elif raw[0] is None:
        notes[0] = f"ready for review only after {end_word}"
    if ev.ready_at is not None:
        if raw[1] is None:
            notes[1] = ("no human review yet: still waiting" if running
                        else f"no human review: pickup ends at {end_word}")
            notes[2] = "no human review: zero"
        elif moved[2]:
            notes[1] = "reviewed before ready for review: zero"
        ai = ev.first_ai_review_at
        if ai is not None and (raw[1] is None or ai.at < raw[1].at):
            notes[1] = _join(notes[1], f"the AI review by {ai.who or 'an AI reviewer'} "
                                       "did not stop this clock")
        if raw[1] is not None and raw[2] is None:
            notes[2] = "not approved yet: still in review" if running else (
                f"no approval: review runs to {end_word}")
            notes[3] = "no approval: zero"
        elif raw[2] is not None and moved[3]:
            notes[2] = "approved before ready for review: zero"
        if after_end[1] or after_end[2]:
            notes[3] = _join(notes[3], f"a review after {end_word} does not count for the stages")
    if running:
        for i in range(4):
            if bounds[i + 1].kind == "now" and bounds[i].at < bounds[i + 1].at:
                notes[i] = _join(notes[i], "still open: running to now")

    waiting: list[Clock] = []
    for i, name in enumerate(("pickup", "review", "merge"), start=1):
        cal_h, bus_h = _measure(bounds[i].at, bounds[i + 1].at, drafts, calendar)
        note = notes[i]
        if cal_h and any(a < bounds[i + 1].at and b > bounds[i].at for a, b in drafts):
            note = _join(note, "draft time left out")
        waiting.append(Clock(name, bounds[i], bounds[i + 1], cal_h, bus_h, note))
    # coding: work start to ready, plus every draft interval up to the end (the author's time)
    raw_c, raw_b, _, _ = _span_and_overlap(bounds[0].at, bounds[1].at, (), calendar)
    _, _, over_c, over_b = _span_and_overlap(bounds[1].at, bounds[4].at, drafts, calendar)
    if over_c:
        notes[0] = _join(notes[0], f"includes {over_c:.1f} h back in draft after ready")
    coding = Clock("coding", bounds[0], bounds[1], raw_c + over_c, raw_b + over_b, notes[0])
    lead_c, lead_b, _, _ = _span_and_overlap(bounds[0].at, bounds[4].at, (), calendar)
    lead = Clock("lead_time", bounds[0], bounds[4], lead_c, lead_b, "")
    return coding, waiting[0], waiting[1], waiting[2], lead


def _lead_time(ev: PREvents, lead: Clock, state: str) -> Clock:
    if state == "closed":
        return Clock("lead_time", lead.start, ev.closed_at, None, None, "closed without merging")
    note = "still open: running to now" if state == "open" else ""
    if ev.first_commit_at is None:
        note = _join(note, "no commit time: from opened")
    elif ev.work_started_at is not ev.first_commit_at:
        word = "ready for review" if ev.work_started_at is ev.ready_at else "the end"
        note = _join(note, f"first commit authored after {word} (history rewritten): "
                           f"from {word}")
    return Clock("lead_time", lead.start, lead.stop, lead.calendar_hours, lead.business_hours, note)


def _from_ready(name: str, ev: PREvents, stop: EventRef | None, drafts: Sequence[_SPAN],
                calendar: WorkCalendar, state: str, *, missing: str) -> Clock:
    """A latency clock from ``ready_at`` to ``stop`` moved into ``ready..end``; a missing stop
    runs to ``now`` on an open PR and is None otherwise."""
    if ev.ready_at is None:
        return Clock(name, None, stop, None, None, "never ready for review")
    ready, end = ev.ready_at, ev.end
    if stop is None:
        if state != "open":
            return Clock(name, ready, None, None, None, missing)
        stop, at, note = end, end.at, "still open: running to now"
    elif stop.at > end.at:
        word = {"merged": "merge", "closed": "close"}.get(end.kind, end.kind)
        at, note = end.at, f"{stop.kind.replace('_', ' ')} came after {word}: stops at {word}"
        stop = end
    else:
        at = stop.at
        note = "came before ready for review: zero" if at < ready.at else ""
    cal_h, bus_h = _measure(ready.at, max(at, ready.at), drafts, calendar)
    return Clock(name, ready, stop, cal_h, bus_h, note)


def _ai_reasons(pr: PullRequest, identity: Identity, agent: bool) -> tuple[str, ...]:
    """Why the PR counts as AI-assisted (docs/metrics.md "Who counts"), one phrase per reason."""
    out: list[str] = []
    if agent:
        out.append(f"authored by AI agent {pr.author}")
    wanted = {label.lower() for label in identity.settings.ai_labels}
    out += [f"label \u201c{label}\u201d" for label in pr.labels if label.lower() in wanted]
    patterns = [re.compile(p, re.IGNORECASE) for p in identity.settings.ai_coauthor_patterns]
    out += [f"co-authored by {co}" for co in pr.co_authors if any(p.search(co) for p in patterns)]
    return tuple(out)


def _filters(ev: PREvents, state: str, bot_pr: bool, ai_assisted: bool, agent: bool,
             reasons: Sequence[str], drafts: Sequence[Clock], required: int) -> tuple[str, ...]:
    out: list[str] = []
    if bot_pr:
        out.append("bot PR: left out of latency metrics (counted apart)")
    if ai_assisted:
        out.append(f"AI-assisted ({'; '.join(reasons) or 'configured AI identity'})")
    if agent:
        out.append("AI-agent PR: counted like a human's PR")
    if state == "open":
        out.append("still open: clocks running to now")
        if ev.ready_at is None:
            out.append("still a draft: not ready for review yet")
        elif ev.drafts and ev.drafts[-1][1].kind == "now":
            out.append("back in draft now: waiting clocks paused")
    elif state == "closed":
        out.append("closed without merging: left out of latency metrics")
    if drafts:
        hours = sum((c.calendar_hours or 0.0) for c in drafts)
        out.append(f"back in draft {len(drafts)}x after ready ({hours:.1f} h): left out of "
                   "waiting clocks, counted as coding")
    if ev.first_human_review_at is not None and ev.first_human_review_at.who is None:
        out.append("first human review by a deleted account: counts, attributed to no reviewer")
    if required > 1:
        out.append(f"approval needs {required} approvals and no outstanding changes requested")
    return tuple(out)


def _join(a: str, b: str) -> str:
    return f"{a}; {b}" if a and b else a or b
