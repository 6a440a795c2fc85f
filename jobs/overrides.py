"""Threshold overrides set from Slack (``/flow set``), kept in Redis with who and when.

Levels come from three layers, last wins: the global ``[alerts.thresholds]``, the team's
``thresholds`` in config, then what a lead set with ``/flow set``. The alert rules read the
result through :func:`effective_thresholds`, so a change takes effect on the next cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import ValidationError

from jobs.errors import FlowbotError
from jobs.settings import ALERT_RULES, RULE_THRESHOLDS, Settings, Thresholds
from jobs.store import Store

Level = Literal["warn", "critical", "clear"]
LEVELS: tuple[Level, ...] = ("warn", "critical", "clear")
_TTL = timedelta(days=400)  # overrides outlive any sensible review of them; every key expires


class InvalidThreshold(FlowbotError):
    """A ``/flow set`` that cannot be applied; the message says what to do instead."""


@dataclass(frozen=True, slots=True)
class ThresholdChange:
    """One audited change: who set which level of which rule from what to what, and when."""

    team: str
    rule: str
    level: Level
    old: float | None
    new: float
    who: str
    at: datetime


def effective_thresholds(settings: Settings, store: Store, team: str) -> dict[str, Thresholds]:
    """The team's levels per rule: config (global, then team) with Slack overrides on top.

    Raises StoreUnavailable when Redis cannot be read; an override that no longer validates
    (a config change made it inconsistent, or it lies outside the rule's range) is ignored for
    that rule.
    """
    levels = settings.thresholds_for(team)
    stored = store.get_json("overrides", team) or {}
    for rule, values in stored.items():
        if rule not in levels or not isinstance(values, dict):
            continue
        merged = {**levels[rule].model_dump(), **values}
        try:
            levels[rule] = RULE_THRESHOLDS[rule].model_validate(merged)
        except ValidationError:
            continue
    return levels


def set_threshold(
    settings: Settings,
    store: Store,
    team: str,
    rule: str,
    value: float,
    *,
    level: Level = "warn",
    who: str,
    now: datetime,
) -> ThresholdChange:
    """Set one level of one rule for ``team`` and record who did it and when.

    Returns the change. Raises InvalidThreshold for an unknown team, rule or level, for a value
    outside the rule's range (not finite, not above 0, above ``Thresholds.HIGH``; the message
    says the range), or when the new levels would be inconsistent (critical below warn, clear
    above warn); raises StoreUnavailable when Redis cannot be written.
    """
    if team not in settings.teams:
        raise InvalidThreshold(f"unknown team {team!r}; teams: {', '.join(sorted(settings.teams))}")
    if rule not in ALERT_RULES:
        raise InvalidThreshold(f"unknown threshold {rule!r}; one of: {', '.join(ALERT_RULES)}")
    if level not in LEVELS:
        raise InvalidThreshold(f"unknown level {level!r}; one of: {', '.join(LEVELS)}")
    kind = RULE_THRESHOLDS[rule]
    current = effective_thresholds(settings, store, team)[rule]
    try:
        kind.model_validate({**current.model_dump(), level: value})
    except ValidationError as err:
        problems = [(e["loc"], e["msg"].removeprefix("Value error, ")) for e in err.errors()]
        if any(loc for loc, _ in problems):  # the value itself is out of the rule's range
            raise InvalidThreshold(f"{rule}.{level} {problems[0][1]}") from None
        reason = "; ".join(msg for _, msg in problems)
        raise InvalidThreshold(f"{rule}.{level} = {value:g} does not fit: {reason}") from None
    stored: dict[str, Any] = store.get_json("overrides", team) or {}
    stored.setdefault(rule, {})[level] = value
    store.set_json("overrides", team, value=stored, ttl=_TTL)
    change = ThresholdChange(team, rule, level, getattr(current, level), value, who, now)
    store.append_log(
        "overrides-log",
        team,
        value={"rule": rule, "level": level, "old": change.old, "new": value, "who": who,
               "at": now.isoformat()},
    )
    return change


def threshold_history(store: Store, team: str, *, limit: int = 10) -> list[dict[str, Any]]:
    """The latest ``/flow set`` changes for ``team``, newest first (rule, level, old, new, who, at)."""
    return list(store.read_log("overrides-log", team, limit=limit))
