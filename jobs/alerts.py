"""Threshold alerts: what to tell a team's leads, when, and when to stay quiet.

Two layers:

* the pure decision core in :mod:`jobs.alert_rules` (re-exported here): :func:`read_rules`,
  :func:`step`, :func:`mark_sent`, :func:`build_alert`;
* this module, over the store: snooze/acknowledge (written by the alert buttons),
  :func:`list_alerts` for ``/flow alerts``, and :class:`AlertEngine`, a small stateful
  evaluator: it reads the snapshot,
  steps every rule, delivers what is due through a :class:`jobs.ports.Deliver`, applies the
  weekly noise budget per recipient and writes the state back to Redis (so it survives restarts).

Behaviour, per team and rule:

* **Fire** when the reading reaches ``warn`` (``critical`` when it reaches that); an *episode*
  starts. **Escalate** once when a warn episode reaches ``critical`` (escalation ignores the
  cooldown and acknowledgements, not snoozes). Severity never drops inside an episode.
* **Hysteresis**: an active alert clears only below ``Thresholds.clear_level``; a **recovery
  notice** is posted once per episode, and only when the alert itself was posted.
* **Cooldown** (``alerts.cooldown_hours``): a new episode of a rule posted less than a
  cooldown ago waits for it. **Reminders** of an unacknowledged alert that stays breached come
  at most once per ``alerts.remind_every_hours`` (three days by default; 0 turns them off).
* **Quiet hours**: a due notice outside the team's working time is held (``held_until`` is the
  next opening) and posted by the first evaluation inside working time, if still due.
* **Snooze** (a day, a week, or until it recovers) silences the rule; **acknowledge** stops
  reminders for the episode.
* **Noise budget** (``alerts.weekly_noise_budget`` per recipient per ISO week, UTC): past it,
  alerts are not posted one by one; the recipient gets one summary that says so, and the
  folded alerts stay listed in ``/flow alerts``.

Every notice carries an idempotency key ``alert:{team}:{rule}:{episode}:{what}`` so delivery
never posts the same one twice. Metric readings follow docs/metrics.md as the snapshot computed them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from jobs.alert_rules import (
    RULE_TITLES,
    RULE_UNITS,
    SNOOZE_MODES,
    Ack,
    Calendar,
    Notice,
    Policy,
    Reading,
    RuleState,
    Snooze,
    SnoozeMode,
    alert_key,
    build_alert,
    mark_sent,
    read_rules,
    recipients_for,
    step,
)
from jobs.errors import FlowbotError
from jobs.model import Alert, Severity, TeamSnapshot
from jobs.overrides import effective_thresholds as effective_thresholds  # re-exported: the engine's view
from jobs.ports import Deliver
from jobs.settings import ALERT_RULES, Settings, Team, Thresholds
from jobs.store import Store

__all__ = [  # the decision core is re-exported: callers need only ``jobs.alerts``
    "RULE_TITLES", "RULE_UNITS", "SNOOZE_MODES", "SUMMARY_RULE", "Ack", "AlertEngine",
    "AlertStatus", "Calendar", "EvaluationReport", "Notice", "Policy", "Reading", "RuleState",
    "Snooze", "SnoozeMode", "acknowledge", "alert_key", "build_alert",
    "list_alerts", "mark_sent", "read_rules", "recipients_for", "snooze", "step", "unsnooze",
]

log = logging.getLogger(__name__)

SUMMARY_RULE = "noise_budget"

_STATE_TTL = timedelta(days=90)
_CONTROL_TTL = timedelta(days=30)
_RECENT = timedelta(days=7)  # how long a recovered alert stays in /flow alerts


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
    try:
        until = datetime.fromisoformat(raw["until"]) if raw.get("until") else None
        return Snooze(raw["mode"], until, raw.get("by", ""), datetime.fromisoformat(raw["at"]))
    except (TypeError, ValueError, KeyError, AttributeError):  # as _load_states: not fatal
        log.warning("snooze of %s/%s is unreadable; ignoring it", team, rule)
        return None


def _get_ack(store: Store, team: str, rule: str) -> Ack | None:
    raw = store.get_json("alerts", team, "ack", rule)
    if not raw:
        return None
    try:
        return Ack(raw["episode"], raw.get("by", ""), datetime.fromisoformat(raw["at"]))
    except (TypeError, ValueError, KeyError, AttributeError):  # as _load_states: not fatal
        log.warning("acknowledgement of %s/%s is unreadable; ignoring it", team, rule)
        return None


def _load_states(store: Store, team: str) -> dict[str, RuleState]:
    """The team's rule states. A state that is not an object of rule states (``[1,2,3]``) is
    quarantined by the store (None here); a rule whose state does not load starts afresh."""
    raw = store.get_json("alerts", team, "state")
    states: dict[str, RuleState] = {}
    for rule, data in (raw if isinstance(raw, dict) else {}).items():
        try:
            state = RuleState.from_json(data)
            _check_state(state)
            states[rule] = state
        except (TypeError, ValueError, KeyError, AttributeError):
            log.warning("alert state of %s/%s is unreadable; starting it afresh", team, rule)
    return states


def _check_state(state: RuleState) -> None:
    """Raise TypeError when a loaded state's fields are not of their types (hand-edited)."""
    if not isinstance(state.active, bool) or state.severity not in (None, "warn", "critical"):
        raise TypeError("active/severity of the wrong type")
    for name in ("value", "threshold"):
        v = getattr(state, name, None)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
            raise TypeError(f"{name} is not a number")
    for name in ("since", "last_alert_at", "recovered_at", "held_until"):
        if not isinstance(getattr(state, name, None), datetime | None):
            raise TypeError(f"{name} is not a time")


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
        self._thresholds = thresholds or effective_thresholds  # config + leads' /flow set
        self.policy = Policy(
            cooldown=timedelta(hours=settings.alerts.cooldown_hours),
            remind_every=timedelta(hours=settings.alerts.remind_every_hours),
        )
        interval = timedelta(minutes=settings.schedules.sample_interval_minutes)
        self.stale_after = max(3 * interval, timedelta(hours=2))  # a few missed syncs

    def evaluate_all(self, *, now: datetime) -> dict[str, EvaluationReport]:
        """Evaluate every team; a failing team is logged and does not stop the others."""
        reports: dict[str, EvaluationReport] = {}
        for team in self.settings.teams:
            try:
                reports[team] = self.evaluate(team, now=now)
            except FlowbotError as err:
                log.error("alert evaluation failed for %s: %s", team, err)
                reports[team] = EvaluationReport(team, skipped=f"failed: {err}")
            except Exception as err:  # one team's odd stored state must not stop the others
                log.exception("alert evaluation failed for %s", team)
                reports[team] = EvaluationReport(team, skipped=f"failed: {type(err).__name__}")
        return reports

    def evaluate(
        self, team: str, *, now: datetime, snapshot: TeamSnapshot | None = None
    ) -> EvaluationReport:
        """Evaluate ``team``'s rules at ``now`` (on its stored snapshot unless one is given)."""
        snap = snapshot if snapshot is not None else self.store.get_snapshot(team)
        if snap is None:
            return EvaluationReport(team, skipped="no snapshot yet")
        if snap.data_as_of is not None and now - snap.data_as_of > self.stale_after:
            # GitHub data this old would page leads about PRs merged since: wait for fresh data
            hours = (now - snap.data_as_of).total_seconds() / 3600
            return EvaluationReport(team, skipped=f"data is {hours:.1f} h old; alerts wait for a sync")
        if snap.errors:
            # built after a partial cycle (a repository failed or was deferred): its numbers
            # may be missing data, so no alert nor recovery is decided on it
            return EvaluationReport(
                team, skipped=f"partial data ({snap.errors[0]}); alerts wait for a complete sync")
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
                state, outcome = self._send(team, state, notice, recipients, now=now,
                                            levels=levels[rule])
                {"posted": posted, "folded": folded, "failed": failed}[outcome].append(
                    alert_key(team, notice)
                )
            states[rule] = state
        _save_states(self.store, team, states)
        return EvaluationReport(team, tuple(posted), tuple(held), tuple(folded), tuple(failed))

    # -- delivery with the noise budget

    def _send(
        self, team: str, state: RuleState, notice: Notice, recipients: Sequence[str], *, now: datetime,
        levels: Thresholds | None = None,
    ) -> tuple[RuleState, str]:
        week = _iso_week(now)
        budget = self.settings.alerts.weekly_noise_budget
        counts = {r: int(self.store.get_json("alerts", "budget", r, week) or 0) for r in recipients}
        open_ = [r for r in recipients if counts[r] < budget]
        over = [r for r in recipients if counts[r] >= budget]
        alert = build_alert(team, state, notice, recipients=open_, now=now, levels=levels)
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


def _work_calendar(team: Team) -> Calendar:
    from jobs.worktime import (
        WorkCalendar,  # pandas: imported where used, not by the web tier
    )

    return WorkCalendar.for_team(team)
