"""Alert rules and the pure decision core: readings, per-rule state, and what is due now.

:func:`read_rules` turns a :class:`TeamSnapshot` into one :class:`Reading` per rule of
``jobs.settings.ALERT_RULES``; :func:`step` moves one rule's :class:`RuleState` forward given a
reading, its :class:`Thresholds`, the snooze/acknowledgement a lead set and whether the team is
at work, and says which :class:`Notice` (if any) is due now; :func:`build_alert` makes it an
:class:`Alert`. Nothing here does I/O: ``jobs.alerts`` keeps the state in Redis and delivers.
The behaviour (hysteresis, escalation, cooldown, quiet hours, snooze, acknowledge, recovery) is
described in ``jobs.alerts``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any, Literal, Protocol

from jobs.model import Alert, Severity, TeamSnapshot
from jobs.settings import Settings, Thresholds

SnoozeMode = Literal["day", "week", "recovery"]
NoticeKind = Literal["breach", "escalation", "reminder", "recovery"]
SNOOZE_MODES: tuple[SnoozeMode, ...] = ("day", "week", "recovery")

RULE_TITLES: Mapping[str, str] = {
    "queue_length": "Review queue length",
    "oldest_waiting_hours": "Oldest waiting PR",
    "pickup_p50_hours": "Pickup wait p50 (7 days)",
    "requests_per_reviewer_day": "Review requests per reviewer per day",
    "ci_p90_minutes": "CI p90 wait (queue + run)",
    "queue_growth_days": "Queue growing (arrivals above completions)",
}
RULE_UNITS: Mapping[str, str] = {
    "queue_length": "PRs",
    "oldest_waiting_hours": "working h",
    "pickup_p50_hours": "working h",
    "requests_per_reviewer_day": "requests/day",
    "ci_p90_minutes": "min",
    "queue_growth_days": "working days",
}


class Calendar(Protocol):
    """What alerts need of a team's calendar (``jobs.worktime.WorkCalendar``)."""

    def is_working_time(self, at: datetime) -> bool: ...

    def next_opening(self, at: datetime) -> datetime: ...

    def is_working_day(self, d: date) -> bool: ...

    @property
    def tz(self) -> Any: ...


# --------------------------------------------------------------------------- readings


@dataclass(frozen=True, slots=True)
class Reading:
    """One rule's value in a snapshot (``None``: not measurable now) and what explains it."""

    value: float | None
    details: tuple[str, ...] = ()


def read_rules(snapshot: TeamSnapshot, *, calendar: Calendar, now: datetime) -> dict[str, Reading]:
    """Each rule's reading from ``snapshot``, as docs/metrics.md defines the metric behind it.

    * ``queue_length``: the sampled queue length (open, ready, non-bot, unapproved PRs);
    * ``oldest_waiting_hours``: the oldest unapproved PR's age in business hours;
    * ``pickup_p50_hours``: p50 of pickup wait in business hours over the snapshot's window;
    * ``requests_per_reviewer_day``: the busiest reviewer's requests per working day;
    * ``ci_p90_minutes``: the slowest workflow's p90 queue time plus its p90 run time (the
      "CI queue + run time p90" of config.example.toml; a sum of p90s, so it errs on the high
      side of the p90 of the whole wait, which the snapshot does not keep);
    * ``queue_growth_days``: working days in a row, ending with the last complete one (the
      team's local yesterday or earlier), on which arrivals exceeded completions (Little's law).

    Returns a reading for every rule in ``ALERT_RULES``; ``None`` values mean "no data".
    """
    out: dict[str, Reading] = {}
    queue = snapshot.queue
    out["queue_length"] = Reading(
        float(queue.length),
        (f"{queue.reviewer} waiting on reviewers, {queue.author} on authors, {queue.ci} on CI",),
    )
    waiting = [i for i in snapshot.queue_items if i.turn != "approved"]
    oldest = max(waiting, key=lambda i: i.age_business_hours, default=None)
    out["oldest_waiting_hours"] = Reading(
        queue.oldest_business_hours,
        (f"{oldest.repo}#{oldest.number} {oldest.title}",) if oldest else (),
    )
    p50 = snapshot.pickup.business.p50
    out["pickup_p50_hours"] = Reading(
        p50, (f"over {snapshot.pickup.business.count} PRs in {snapshot.window_days} days",)
    )
    busiest = max(snapshot.reviewers, key=lambda r: r.requests_per_day, default=None)
    out["requests_per_reviewer_day"] = Reading(
        busiest.requests_per_day if busiest else None,
        (f"{busiest.login}: {_fmt(busiest.requests_per_day)} requests on their busiest day",)
        if busiest
        else (),
    )
    waits = [((w.queue_p90_min or 0.0) + w.run_p90_min, w) for w in snapshot.workflows
             if w.run_p90_min is not None]
    ci_wait, slowest = max(waits, key=lambda pair: pair[0], default=(None, None))
    out["ci_p90_minutes"] = Reading(
        ci_wait,
        ((f"workflow {slowest.name}: p90 queue {_fmt(slowest.queue_p90_min or 0.0)} min + "
         f"p90 run {_fmt(slowest.run_p90_min or 0.0)} min"),) if slowest else (),
    )
    out["queue_growth_days"] = _growth_streak(snapshot, calendar=calendar, now=now)
    return out


def _growth_streak(snapshot: TeamSnapshot, *, calendar: Calendar, now: datetime) -> Reading:
    today = now.astimezone(calendar.tz).date()
    days = sorted(
        (d for d in snapshot.flow if d.day < today and calendar.is_working_day(d.day)),
        key=lambda d: d.day,
    )
    if not days:
        return Reading(None)
    streak = 0
    for day in reversed(days):
        if day.arrivals <= day.completions:
            break
        streak += 1
    recent = days[-streak:] if streak else []
    arrivals = sum(d.arrivals for d in recent)
    done = sum(d.completions for d in recent)
    detail = f"{arrivals} PRs arrived, {done} completed" if streak else "arrivals kept up"
    return Reading(float(streak), (detail,))


# --------------------------------------------------------------------------- state


@dataclass(frozen=True, slots=True)
class RuleState:
    """Where one rule of one team stands. Stored as JSON; every datetime is aware UTC.

    ``episode`` names the current (or last) breach by its start; ``sent_severity`` is the
    highest severity posted in it; ``recovery_due`` says a recovery notice is owed.
    """

    rule: str
    active: bool = False
    severity: Severity | None = None
    episode: str | None = None
    since: datetime | None = None
    value: float | None = None
    threshold: float | None = None
    details: tuple[str, ...] = ()
    sent_severity: Severity | None = None
    last_alert_at: datetime | None = None  # last breach/escalation/reminder posted (any episode)
    reminders: int = 0
    recovered_at: datetime | None = None
    recovery_due: bool = False
    held_until: datetime | None = None
    folded: bool = False  # the last notice went into a noise-budget summary

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (datetimes as ISO 8601)."""
        out: dict[str, Any] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            out[name] = value.isoformat() if isinstance(value, datetime) else value
        out["details"] = list(self.details)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RuleState:
        """The inverse of :meth:`to_json`; unknown keys are ignored (older/newer writers)."""
        kw: dict[str, Any] = {}
        for name in cls.__slots__:
            if name not in data:
                continue
            value = data[name]
            if name in _DATETIME_FIELDS and value is not None:
                value = datetime.fromisoformat(value)
            kw[name] = tuple(value) if name == "details" else value
        return cls(**kw)


_DATETIME_FIELDS = frozenset({"since", "last_alert_at", "recovered_at", "held_until"})


@dataclass(frozen=True, slots=True)
class Snooze:
    """A lead silenced a rule: until ``until``, or (mode ``recovery``) until it clears."""

    mode: SnoozeMode
    until: datetime | None
    by: str
    at: datetime

    def silences(self, now: datetime) -> bool:
        return self.until is None or now < self.until


@dataclass(frozen=True, slots=True)
class Ack:
    """A lead acknowledged an episode: no more reminders for it."""

    episode: str
    by: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Notice:
    """Something :func:`step` decided to post now."""

    kind: NoticeKind
    rule: str
    severity: Severity
    episode: str
    key_suffix: str  # what makes its idempotency key unique inside the episode


@dataclass(frozen=True, slots=True)
class Policy:
    """The team-independent knobs of :func:`step`."""

    cooldown: timedelta
    remind_every: timedelta = timedelta(hours=72)  # 0: never remind (only escalations, recovery)


def step(
    state: RuleState,
    reading: Reading,
    levels: Thresholds,
    *,
    now: datetime,
    policy: Policy,
    at_work: bool,
    next_opening: datetime | None,
    snooze: Snooze | None = None,
    ack: Ack | None = None,
) -> tuple[RuleState, Notice | None]:
    """Move one rule forward to ``now``; return the new state and the notice due now, if any.

    The returned state does not yet record the notice as sent: call :func:`mark_sent` once it
    was delivered, so a failed post is retried by the next evaluation. Pure.
    """
    state = _transition(state, reading, levels, now=now)
    notice = _due(state, now=now, policy=policy, snooze=snooze, ack=ack)
    if notice is None:
        return replace(state, held_until=None), None
    if not at_work:
        return replace(state, held_until=next_opening), None
    return replace(state, held_until=None), notice


def mark_sent(state: RuleState, notice: Notice, *, now: datetime, folded: bool = False) -> RuleState:
    """The state after ``notice`` was delivered (or folded into a summary). Pure."""
    if notice.kind == "recovery":
        return replace(state, recovery_due=False, folded=folded)
    return replace(
        state,
        sent_severity=notice.severity,
        last_alert_at=now,
        reminders=state.reminders + (1 if notice.kind == "reminder" else 0),
        folded=folded,
    )


def _transition(state: RuleState, reading: Reading, levels: Thresholds, *, now: datetime) -> RuleState:
    value = reading.value
    if value is None:
        return state
    if not state.active:
        if value < levels.warn:
            return replace(state, value=value, threshold=None)
        severity: Severity = "critical" if value >= levels.critical else "warn"
        return replace(
            state,
            active=True,
            severity=severity,
            episode=_episode_id(now),
            since=now,
            value=value,
            threshold=levels.critical if severity == "critical" else levels.warn,
            details=reading.details,
            sent_severity=None,
            reminders=0,
            recovered_at=None,
            recovery_due=False,  # a recovery not yet told is superseded by the new breach
            folded=False,
        )
    if value < levels.clear_level:
        return replace(
            state,
            active=False,
            value=value,
            threshold=levels.clear_level,
            details=reading.details,
            recovered_at=now,
            recovery_due=state.sent_severity is not None,
        )
    if state.severity == "warn" and value >= levels.critical:
        return replace(
            state, severity="critical", value=value, threshold=levels.critical, details=reading.details
        )
    return replace(state, value=value, details=reading.details)


def _due(
    state: RuleState, *, now: datetime, policy: Policy, snooze: Snooze | None, ack: Ack | None
) -> Notice | None:
    if state.episode is None or state.severity is None:
        return None
    if snooze is not None and snooze.silences(now) and not (snooze.mode == "recovery" and not state.active):
        return None
    if not state.active:
        if state.recovery_due:
            told = state.sent_severity or state.severity  # what the leads were told of
            return Notice("recovery", state.rule, told, state.episode, "recovered")
        return None
    if state.sent_severity is None:
        if state.last_alert_at is not None and now < state.last_alert_at + policy.cooldown:
            return None  # a new episode soon after the last alert waits out the cooldown
        return Notice("breach", state.rule, state.severity, state.episode, state.severity)
    if state.sent_severity == "warn" and state.severity == "critical":
        return Notice("escalation", state.rule, "critical", state.episode, "critical")
    acked = ack is not None and ack.episode == state.episode
    if (
        not acked
        and state.last_alert_at is not None
        and policy.remind_every > timedelta(0)
        and now >= state.last_alert_at + max(policy.remind_every, policy.cooldown)
    ):
        n = state.reminders + 1
        return Notice("reminder", state.rule, state.severity, state.episode, f"{state.severity}:remind{n}")
    return None


def _episode_id(now: datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%SZ")


# --------------------------------------------------------------------------- messages


def alert_key(team: str, notice: Notice) -> str:
    """The idempotency key of a notice: team, rule, episode and what it says."""
    return f"alert:{team}:{notice.rule}:{notice.episode}:{notice.key_suffix}"


def build_alert(
    team: str, state: RuleState, notice: Notice, *, recipients: Sequence[str], now: datetime,
    levels: Thresholds | None = None,
) -> Alert:
    """The :class:`Alert` a notice becomes (plain text; ``bot.blocks.alerts`` renders it).

    ``levels`` (the rule's thresholds) lets a recovery say why it cleared where it did: the
    clear level sits below the warning level (hysteresis), which a reader would not guess.
    """
    title = RULE_TITLES.get(state.rule, state.rule)
    unit = RULE_UNITS.get(state.rule, "")
    value = state.value if state.value is not None else 0.0
    threshold = state.threshold if state.threshold is not None else 0.0
    if notice.kind == "recovery":
        message = (f"{title} recovered for {team}: {_fmt(value)} {unit}, below the clear level"
                   f" of {_exact(threshold)} {unit}{_clear_reason(levels, unit)}.")
    else:
        lead = {"breach": "", "escalation": "now ", "reminder": "still "}[notice.kind]
        word = "critical" if notice.severity == "critical" else "above warning level"
        message = (
            f"{title} is {lead}{word} for {team}: {_fmt(value)} {unit} "
            f"(threshold {_fmt(threshold)} {unit})."
        )
    return Alert(
        team=team,
        rule=state.rule,
        severity=notice.severity,
        value=value,
        threshold=threshold,
        unit=unit,
        message=message,
        at=now,
        idempotency_key=alert_key(team, notice),
        recipients=tuple(recipients),
        recovered=notice.kind == "recovery",
        details=state.details,
        episode=notice.episode,
    )


def _fmt(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 10 or float(value).is_integer() else f"{value:.1f}"


def _exact(value: float) -> str:
    """A level as configured or derived (12.8 stays 12.8: rounding it would blur the line)."""
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _clear_reason(levels: Thresholds | None, unit: str) -> str:
    if levels is None:
        return ""
    warn = f"{_exact(levels.warn)} {unit}"
    if levels.clear is None:
        return (f" (80% of the {warn} warning level: an alert clears a little below where it"
                " fired, so a value hovering at the line does not flap)")
    return f" (the configured clear level; the warning level is {warn})"


def recipients_for(settings: Settings, team: str) -> tuple[str, ...]:
    """Who gets a team's alerts: leads by DM and/or the leads channel (``alerts.deliver_to``).

    Falls back to what exists: DMs when no leads channel is set, the leads channel when no
    leads are listed, and the team's channel when neither is.
    """
    t = settings.teams[team]
    mode = settings.alerts.deliver_to
    out: list[str] = []
    if mode in ("dm", "both"):
        out += t.leads
    if mode in ("channel", "both") and t.leads_channel:
        out.append(t.leads_channel)
    if not out:
        out = [*t.leads, *([t.leads_channel] if t.leads_channel else [])]
    return tuple(dict.fromkeys(out or [t.channel]))
