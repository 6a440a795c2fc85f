"""Threshold alerts: what to tell a team's leads, when, and when to stay quiet.

Two layers:

* a pure decision core: :func:`read_rules` turns a :class:`TeamSnapshot` into one reading per
  rule of ``jobs.settings.ALERT_RULES``; :func:`step` moves one rule's :class:`RuleState`
  forward given a reading, its :class:`Thresholds`, the snooze/acknowledgement a lead set and
  whether the team is at work, and says which :class:`Notice` (if any) is due now;
* :class:`AlertEngine`, a small stateful evaluator over the store: it reads the snapshot,
  steps every rule, delivers what is due through a :class:`jobs.ports.Deliver`, applies the
  weekly noise budget per recipient and writes the state back to Redis (so it survives restarts).

Behaviour, per team and rule:

* **Fire** when the reading reaches ``warn`` (``critical`` when it reaches that); an *episode*
  starts. **Escalate** once when a warn episode reaches ``critical`` (escalation ignores the
  cooldown and acknowledgements, not snoozes). Severity never drops inside an episode.
* **Hysteresis**: an active alert clears only below ``Thresholds.clear_level``; a **recovery
  notice** is posted once per episode, and only when the alert itself was posted.
* **Cooldown** (``alerts.cooldown_hours``): reminders of an unacknowledged alert come at most
  once per cooldown; a new episode of a rule posted less than a cooldown ago waits for it.
* **Quiet hours**: a due notice outside the team's working time is held (``held_until`` is the
  next opening) and posted by the first evaluation inside working time, if still due.
* **Snooze** (a day, a week, or until it recovers) silences the rule; **acknowledge** stops
  reminders for the episode.
* **Noise budget** (``alerts.weekly_noise_budget`` per recipient per ISO week, UTC): past it,
  alerts are not posted one by one; the recipient gets one summary that says so, and the
  folded alerts stay listed in ``/flow alerts``.

Every notice carries an idempotency key ``alert:{team}:{rule}:{episode}:{what}`` so delivery
never posts the same one twice. Metric readings follow METRICS.md as the snapshot computed them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any, Literal, Protocol

from jobs.errors import FlowbotError
from jobs.model import Alert, Severity, TeamSnapshot
from jobs.ports import Deliver
from jobs.settings import ALERT_RULES, Settings, Team, Thresholds
from jobs.store import Store
from jobs.worktime import WorkCalendar

log = logging.getLogger(__name__)

SnoozeMode = Literal["day", "week", "recovery"]
NoticeKind = Literal["breach", "escalation", "reminder", "recovery"]
SNOOZE_MODES: tuple[SnoozeMode, ...] = ("day", "week", "recovery")
SUMMARY_RULE = "noise_budget"

_STATE_TTL = timedelta(days=90)
_CONTROL_TTL = timedelta(days=30)
_RECENT = timedelta(days=7)  # how long a recovered alert stays in /flow alerts

RULE_TITLES: Mapping[str, str] = {
    "queue_length": "Review queue length",
    "oldest_waiting_hours": "Oldest waiting PR",
    "pickup_p50_hours": "Pickup wait p50 (7 days)",
    "requests_per_reviewer_day": "Review requests per reviewer per day",
    "ci_p90_minutes": "CI p90 run time",
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
    """Each rule's reading from ``snapshot``, as METRICS.md defines the metric behind it.

    * ``queue_length``: the sampled queue length (open, ready, non-bot, unapproved PRs);
    * ``oldest_waiting_hours``: the oldest unapproved PR's age in business hours;
    * ``pickup_p50_hours``: p50 of pickup wait in business hours over the snapshot's window;
    * ``requests_per_reviewer_day``: the busiest reviewer's requests per working day;
    * ``ci_p90_minutes``: the slowest workflow's p90 run time (started to completed);
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
        (f"{busiest.login}: {busiest.requests_per_day:g} requests on their busiest day",)
        if busiest
        else (),
    )
    timed = [w for w in snapshot.workflows if w.run_p90_min is not None]
    slowest = max(timed, key=lambda w: w.run_p90_min or 0.0, default=None)
    out["ci_p90_minutes"] = Reading(
        slowest.run_p90_min if slowest else None,
        (f"workflow {slowest.name}",) if slowest else (),
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
        and policy.cooldown > timedelta(0)
        and now >= state.last_alert_at + policy.cooldown
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
    team: str, state: RuleState, notice: Notice, *, recipients: Sequence[str], now: datetime
) -> Alert:
    """The :class:`Alert` a notice becomes (plain text; ``bot.blocks.alerts`` renders it)."""
    title = RULE_TITLES.get(state.rule, state.rule)
    unit = RULE_UNITS.get(state.rule, "")
    value = state.value if state.value is not None else 0.0
    threshold = state.threshold if state.threshold is not None else 0.0
    if notice.kind == "recovery":
        message = f"{title} recovered for {team}: {_fmt(value)} {unit}, below {_fmt(threshold)}."
    else:
        lead = {"breach": "", "escalation": "now ", "reminder": "still "}[notice.kind]
        word = "critical" if notice.severity == "critical" else "above warning level"
        message = (
            f"{title} is {lead}{word} for {team}: {_fmt(value)} {unit} "
            f"(threshold {_fmt(threshold)})."
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


# --------------------------------------------------------------------------- controls (buttons)


def snooze(
    store: Store, team: str, rule: str, mode: SnoozeMode, *, now: datetime, by: str
) -> Snooze:
    """Silence ``rule`` for ``team``: for a day, a week, or until it recovers. Returns it.

    Raises FlowbotError for an unknown rule or mode.
    """
    _check_rule(rule)
    if mode not in SNOOZE_MODES:
        raise FlowbotError(f"unknown snooze {mode!r}; use one of {', '.join(SNOOZE_MODES)}")
    until = {"day": now + timedelta(days=1), "week": now + timedelta(days=7)}.get(mode)
    ttl = (until - now) if until is not None else _CONTROL_TTL
    value = {"mode": mode, "until": until.isoformat() if until else None, "by": by, "at": now.isoformat()}
    store.set_json("alerts", team, "snooze", rule, value=value, ttl=ttl)
    return Snooze(mode, until, by, now)


def unsnooze(store: Store, team: str, rule: str) -> None:
    """Lift a snooze."""
    store.delete("alerts", team, "snooze", rule)


def acknowledge(
    store: Store, team: str, rule: str, *, now: datetime, by: str, episode: str | None = None
) -> Ack | None:
    """Stop reminders for the current episode of ``rule`` (or ``episode``). None when idle.

    Raises FlowbotError for an unknown rule.
    """
    _check_rule(rule)
    if episode is None:
        state = _load_states(store, team).get(rule)
        if state is None or not state.active or state.episode is None:
            return None
        episode = state.episode
    store.set_json(
        "alerts", team, "ack", rule,
        value={"episode": episode, "by": by, "at": now.isoformat()}, ttl=_CONTROL_TTL,
    )
    return Ack(episode, by, now)


def _check_rule(rule: str) -> None:
    if rule not in ALERT_RULES:
        raise FlowbotError(f"unknown alert rule {rule!r}; rules: {', '.join(ALERT_RULES)}")


def _get_snooze(store: Store, team: str, rule: str) -> Snooze | None:
    raw = store.get_json("alerts", team, "snooze", rule)
    if not raw:
        return None
    until = datetime.fromisoformat(raw["until"]) if raw.get("until") else None
    return Snooze(raw["mode"], until, raw.get("by", ""), datetime.fromisoformat(raw["at"]))


def _get_ack(store: Store, team: str, rule: str) -> Ack | None:
    raw = store.get_json("alerts", team, "ack", rule)
    if not raw:
        return None
    return Ack(raw["episode"], raw.get("by", ""), datetime.fromisoformat(raw["at"]))


def _load_states(store: Store, team: str) -> dict[str, RuleState]:
    raw = store.get_json("alerts", team, "state") or {}
    states: dict[str, RuleState] = {}
    for rule, data in raw.items():
        try:
            states[rule] = RuleState.from_json(data)
        except (TypeError, ValueError, KeyError):
            log.warning("alert state of %s/%s is unreadable; starting it afresh", team, rule)
    return states


def _save_states(store: Store, team: str, states: Mapping[str, RuleState]) -> None:
    store.set_json(
        "alerts", team, "state", value={r: s.to_json() for r, s in states.items()}, ttl=_STATE_TTL
    )


# --------------------------------------------------------------------------- listing


@dataclass(frozen=True, slots=True)
class AlertStatus:
    """One rule as ``/flow alerts`` lists it."""

    team: str
    rule: str
    title: str
    status: Literal["active", "held", "snoozed", "recovered"]
    severity: Severity | None
    value: float | None
    threshold: float | None
    unit: str
    since: datetime | None
    episode: str | None
    acknowledged_by: str | None = None
    snoozed: Snooze | None = None
    held_until: datetime | None = None
    recovered_at: datetime | None = None
    folded: bool = False
    details: tuple[str, ...] = field(default=())


def list_alerts(store: Store, team: str, *, now: datetime | None = None) -> tuple[AlertStatus, ...]:
    """The team's alerts for ``/flow alerts``: active (or held), snoozed, recently recovered.

    Active ones come first, critical before warn; recovered ones stay listed for 7 days after
    ``now`` (all of them when ``now`` is None). A snooze is listed while Redis keeps it (its
    key expires when it ends).
    """
    out: list[AlertStatus] = []
    for rule, state in sorted(_load_states(store, team).items()):
        sn = _get_snooze(store, team, rule)
        ack = _get_ack(store, team, rule)
        if state.active:
            status: Literal["active", "held", "snoozed", "recovered"] = "active"
            if sn is not None and (now is None or sn.silences(now)):
                status = "snoozed"
            elif state.held_until is not None:
                status = "held"
        elif state.recovered_at is not None and (now is None or now - state.recovered_at <= _RECENT):
            status = "recovered"
        else:
            continue
        out.append(
            AlertStatus(
                team=team,
                rule=rule,
                title=RULE_TITLES.get(rule, rule),
                status=status,
                severity=state.severity,
                value=state.value,
                threshold=state.threshold,
                unit=RULE_UNITS.get(rule, ""),
                since=state.since,
                episode=state.episode,
                acknowledged_by=ack.by if ack and ack.episode == state.episode else None,
                snoozed=sn,
                held_until=state.held_until,
                recovered_at=state.recovered_at,
                folded=state.folded,
                details=state.details,
            )
        )
    order = {"active": 0, "held": 1, "snoozed": 2, "recovered": 3}
    out.sort(key=lambda a: (order[a.status], a.severity != "critical", a.rule))
    return tuple(out)


# --------------------------------------------------------------------------- the evaluator


@dataclass(frozen=True, slots=True)
class EvaluationReport:
    """What one evaluation of one team did (idempotency keys and rule names)."""

    team: str
    posted: tuple[str, ...] = ()
    held: tuple[str, ...] = ()
    folded: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    skipped: str = ""  # why nothing was evaluated ("no snapshot yet")


ThresholdSource = Callable[[Settings, Store, str], Mapping[str, Thresholds]]
CalendarSource = Callable[[Team], Calendar]


class AlertEngine:
    """Evaluates every rule of a team against its latest snapshot and delivers what is due.

    Run it under the scheduler's lock: two engines writing one team's state at once could each
    post (delivery's idempotency keys still stop a double post). Snoozes and acknowledgements
    live in keys of their own, written by buttons, so a click never races the state write.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        deliver: Deliver,
        *,
        calendar_for: CalendarSource | None = None,
        thresholds: ThresholdSource | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.deliver = deliver
        self._calendar_for = calendar_for or _work_calendar
        self._thresholds = thresholds or effective_thresholds
        self.policy = Policy(cooldown=timedelta(hours=settings.alerts.cooldown_hours))

    def evaluate_all(self, *, now: datetime) -> dict[str, EvaluationReport]:
        """Evaluate every team; a failing team is logged and does not stop the others."""
        reports: dict[str, EvaluationReport] = {}
        for team in self.settings.teams:
            try:
                reports[team] = self.evaluate(team, now=now)
            except FlowbotError as err:
                log.error("alert evaluation failed for %s: %s", team, err)
                reports[team] = EvaluationReport(team, skipped=f"failed: {err}")
        return reports

    def evaluate(
        self, team: str, *, now: datetime, snapshot: TeamSnapshot | None = None
    ) -> EvaluationReport:
        """Evaluate ``team``'s rules at ``now`` (on its stored snapshot unless one is given)."""
        snap = snapshot if snapshot is not None else self.store.get_snapshot(team)
        if snap is None:
            return EvaluationReport(team, skipped="no snapshot yet")
        cal = self._calendar_for(self.settings.teams[team])
        levels = self._thresholds(self.settings, self.store, team)
        readings = read_rules(snap, calendar=cal, now=now)
        at_work = cal.is_working_time(now)
        opening = None if at_work else cal.next_opening(now)
        states = _load_states(self.store, team)
        recipients = recipients_for(self.settings, team)
        posted: list[str] = []
        held: list[str] = []
        folded: list[str] = []
        failed: list[str] = []
        for rule in ALERT_RULES:
            if rule not in levels:
                continue
            sn = _get_snooze(self.store, team, rule)
            before = states.get(rule, RuleState(rule))
            state, notice = step(
                before, readings.get(rule, Reading(None)), levels[rule],
                now=now, policy=self.policy, at_work=at_work, next_opening=opening,
                snooze=sn, ack=_get_ack(self.store, team, rule),
            )
            if sn is not None and sn.mode == "recovery" and before.active and not state.active:
                unsnooze(self.store, team, rule)  # "until it recovers" ends here
            if state.held_until is not None:
                held.append(rule)
            if notice is not None:
                state, outcome = self._send(team, state, notice, recipients, now=now)
                {"posted": posted, "folded": folded, "failed": failed}[outcome].append(
                    alert_key(team, notice)
                )
            states[rule] = state
        _save_states(self.store, team, states)
        return EvaluationReport(team, tuple(posted), tuple(held), tuple(folded), tuple(failed))

    # -- delivery with the noise budget

    def _send(
        self, team: str, state: RuleState, notice: Notice, recipients: Sequence[str], *, now: datetime
    ) -> tuple[RuleState, str]:
        week = _iso_week(now)
        budget = self.settings.alerts.weekly_noise_budget
        counts = {r: int(self.store.get_json("alerts", "budget", r, week) or 0) for r in recipients}
        open_ = [r for r in recipients if counts[r] < budget]
        over = [r for r in recipients if counts[r] >= budget]
        alert = build_alert(team, state, notice, recipients=open_, now=now)
        ok = True
        if open_:
            ok = self._deliver(alert)
            if ok:
                for r in open_:
                    self.store.set_json(
                        "alerts", "budget", r, week, value=counts[r] + 1, ttl=timedelta(days=8)
                    )
        if over:
            self.store.append_log(
                "alerts", "folded", team, week, value={"key": alert.idempotency_key,
                                                       "message": alert.message, "at": now.isoformat()},
                keep=100,
            )
            ok = self._summary(team, alert, over, week=week, now=now) and ok
        if not ok:
            return state, "failed"
        return mark_sent(state, notice, now=now, folded=not open_), ("posted" if open_ else "folded")

    def _summary(self, team: str, alert: Alert, over: Sequence[str], *, week: str, now: datetime) -> bool:
        ok = True
        budget = self.settings.alerts.weekly_noise_budget
        for r in over:
            if self.store.get_json("alerts", "summary", r, week):
                continue  # this recipient already has this week's summary
            key = f"alert-summary:{r}:{week}"
            summary = Alert(
                team=team,
                rule=SUMMARY_RULE,
                severity=alert.severity,
                value=float(budget),
                threshold=float(budget),
                unit="alerts this week",
                message=(
                    f"Flowbot has posted {budget} alerts here this week, its limit. Further alerts "
                    f"until Monday are folded; see `/flow alerts {team}` for all of them. "
                    f"Latest: {alert.message}"
                ),
                at=now,
                idempotency_key=key,
                recipients=(r,),
                details=alert.details,
            )
            if self._deliver(summary):
                self.store.set_json("alerts", "summary", r, week, value=True, ttl=timedelta(days=8))
            else:
                ok = False
        return ok

    def _deliver(self, alert: Alert) -> bool:
        try:
            return bool(self.deliver.alert(alert))
        except FlowbotError as err:
            log.error("alert %s not delivered: %s", alert.idempotency_key, err)
            return False


def _iso_week(now: datetime) -> str:
    year, week, _ = now.isocalendar()
    return f"{year}-W{week:02d}"


def effective_thresholds(settings: Settings, store: Store, team: str) -> Mapping[str, Thresholds]:
    """The team's levels: leads' ``/flow set`` overrides (``jobs.overrides``) when that module
    exists, else the configured ones."""
    try:
        from jobs import overrides
    except ImportError:
        return settings.thresholds_for(team)
    result: Mapping[str, Thresholds] = overrides.effective_thresholds(settings, store, team)
    return result


def _work_calendar(team: Team) -> Calendar:
    return WorkCalendar.for_team(team)
