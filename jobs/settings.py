"""Frozen, validated settings: what ``config.toml`` plus the environment mean.

``bot.config`` builds a :class:`Settings` from TOML and the environment and turns validation
errors into ``key.path: what is wrong (got X)`` lines. Jobs only ever read these types.
Unknown keys are errors: a typo must not pass silently.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from datetime import date, time
from functools import cached_property
from itertools import pairwise
from typing import Annotated, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")
_ORG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}$")  # GitHub's rule for organisation logins
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$|^[A-Za-z0-9_.-]+$")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


def _parse_hhmm(value: str) -> time:
    match = _HHMM.match(value)
    if not match:
        raise ValueError(f"expected a time as HH:MM, like 09:30 (got {value!r})")
    return time(int(match.group(1)), int(match.group(2)))


def parse_window_text(value: str) -> tuple[time, time]:
    """``"10:00-10:30"`` as (start, end). Raises ValueError saying what is wrong."""
    start, sep, end = value.partition("-")
    if not sep:
        raise ValueError(f"expected a window like 10:00-10:30 (got {value!r})")
    a, b = _parse_hhmm(start.strip()), _parse_hhmm(end.strip())
    if a >= b:
        raise ValueError(f"a window must end after it starts (got {value!r})")
    return a, b


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        zones = {z.lower(): z for z in available_timezones()}
        close = difflib.get_close_matches(value.lower(), sorted(zones), n=1)  # the nearest spelling
        hint = f"; did you mean {zones[close[0]]!r}?" if close else " (an IANA name like 'Europe/Paris')"
        raise ValueError(f"unknown time zone {value!r}{hint}") from None
    return value


class Member(_Frozen):
    """A person on a team: their GitHub login and, when known, their Slack user ID."""

    github: str = Field(min_length=1)
    slack: str | None = None

    @field_validator("slack")
    @classmethod
    def _slack_id(cls, value: str | None) -> str | None:
        if value is not None and not _SLACK_USER.match(value):
            raise ValueError(f"expected a Slack user ID like U012AB3CD (got {value!r})")
        return value


class Thresholds(_Frozen):
    """Warn and critical levels of one alert rule; it clears below ``clear`` (hysteresis).

    Every level is a finite number: above 0 (``clear`` may be 0) and, for a rule's own type
    below, at most that rule's ``HIGH``. A refusal says the range, so ``critical = 1e308`` or a
    ``1e309`` that TOML reads as infinity is named with where it may lie.
    """

    HIGH: ClassVar[float] = math.inf  # the highest level that makes sense, in UNIT
    UNIT: ClassVar[str] = ""

    warn: float
    critical: float
    clear: float | None = None

    @field_validator("warn", "critical", "clear")
    @classmethod
    def _in_range(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is None:
            return value
        zero_ok = info.field_name == "clear"
        if not math.isfinite(value) or value > cls.HIGH or value < 0 or (value == 0 and not zero_ok):
            raise ValueError(f"{cls.range_text(zero_ok=zero_ok)} (got {value:g})")
        return value

    @classmethod
    def range_text(cls, *, zero_ok: bool = False) -> str:
        """``must be more than 0 and at most 500 working h``: where a level may lie."""
        low = "must be 0 or more" if zero_ok else "must be more than 0"
        if math.isinf(cls.HIGH):
            return f"{low} (a finite number)"
        return f"{low} and at most {cls.HIGH:g} {cls.UNIT}".rstrip()

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.critical < self.warn:
            raise ValueError(f"critical ({self.critical}) must be at least warn ({self.warn})")
        if self.clear is not None and self.clear > self.warn:
            raise ValueError(f"clear ({self.clear}) must be at most warn ({self.warn})")
        return self

    @property
    def clear_level(self) -> float:
        """Where an active alert clears: ``clear`` when set, else 80% of ``warn``."""
        return self.clear if self.clear is not None else self.warn * 0.8


# Each rule's range: far above any level a team would want, low enough that a typo (an extra
# zero or three, 1e308) is refused instead of silencing the rule or filling answers with digits.
class QueueLengthThresholds(Thresholds):
    HIGH = 1000
    UNIT = "PRs"


class OldestWaitingThresholds(Thresholds):
    HIGH = 2000  # about a working year
    UNIT = "working h"


class PickupThresholds(Thresholds):
    HIGH = 500  # about three working months
    UNIT = "working h"


class RequestsPerDayThresholds(Thresholds):
    HIGH = 100
    UNIT = "requests/day"


class CiMinutesThresholds(Thresholds):
    HIGH = 1440  # a day
    UNIT = "min"


class QueueGrowthThresholds(Thresholds):
    HIGH = 90  # the longest metrics window
    UNIT = "working days"


class RuleThresholds(_Frozen):
    """Levels per alert rule (the unit is in the name). Unknown rule names are errors."""

    queue_length: QueueLengthThresholds = QueueLengthThresholds(warn=10, critical=20)
    oldest_waiting_hours: OldestWaitingThresholds = OldestWaitingThresholds(warn=16, critical=40)
    pickup_p50_hours: PickupThresholds = PickupThresholds(warn=6, critical=16)
    requests_per_reviewer_day: RequestsPerDayThresholds = RequestsPerDayThresholds(warn=6, critical=10)
    ci_p90_minutes: CiMinutesThresholds = CiMinutesThresholds(warn=20, critical=40)
    queue_growth_days: QueueGrowthThresholds = QueueGrowthThresholds(warn=3, critical=5)


class TeamThresholds(_Frozen):
    """A team's overrides: only the rules it sets."""

    queue_length: QueueLengthThresholds | None = None
    oldest_waiting_hours: OldestWaitingThresholds | None = None
    pickup_p50_hours: PickupThresholds | None = None
    requests_per_reviewer_day: RequestsPerDayThresholds | None = None
    ci_p90_minutes: CiMinutesThresholds | None = None
    queue_growth_days: QueueGrowthThresholds | None = None


ALERT_RULES: tuple[str, ...] = tuple(RuleThresholds.model_fields)
# Each rule's levels type (its range), for levels that arrive outside config (``/flow set``).
RULE_THRESHOLDS: dict[str, type[Thresholds]] = {
    rule: type(default) for rule, default in RuleThresholds().__dict__.items()
}


class WorkHours(_Frozen):
    """When a team works: what business-hours clocks count."""

    timezone: str = "UTC"
    working_days: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")
    working_hours: str = "09:00-17:00"
    holiday_country: str | None = None
    holiday_subdivision: str | None = None
    days_off: tuple[date, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return _check_timezone(value)

    @field_validator("working_days")
    @classmethod
    def _days(cls, value: tuple[Weekday, ...]) -> tuple[Weekday, ...]:
        if not value:
            raise ValueError("at least one working day is needed")
        return value

    @field_validator("working_hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        start, sep, end = value.partition("-")
        if not sep:
            raise ValueError(f"expected a range like 09:00-17:00 (got {value!r})")
        if _parse_hhmm(start.strip()) >= _parse_hhmm(end.strip()):
            raise ValueError(f"the day must end after it starts (got {value!r})")
        return value

    @field_validator("holiday_country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        if value is None:
            return None
        import holidays

        if value.upper() not in holidays.list_supported_countries():
            raise ValueError(f"unknown holiday country {value!r}; use an ISO code like 'DE'")
        return value.upper()

    @field_validator("holiday_subdivision")
    @classmethod
    def _subdivision(cls, value: str | None, info: ValidationInfo) -> str | None:
        """A subdivision the country has (its code in any case, or an alias like "England"),
        checked here so ``flowbot check-config`` names it, not the first sample."""
        if value is None:
            return None
        if "holiday_country" not in info.data:  # the country itself was invalid: said there
            return value
        country = info.data["holiday_country"]
        if country is None:
            raise ValueError(f"{value!r} needs holiday_country (an ISO code like 'DE')")
        import holidays

        codes = holidays.list_supported_countries()[country]
        aliases = getattr(holidays.country_holidays(country), "subdivisions_aliases", {}) or {}
        known = {c.lower() for c in codes} | {a.lower() for a in aliases}
        if value.strip().lower() not in known:
            raise ValueError(
                f"{country} has no subdivision {value!r}; use one of {', '.join(codes)}"
                " (or leave holiday_subdivision out)"
            )
        return value

    @property
    def day_start(self) -> time:
        return _parse_hhmm(self.working_hours.partition("-")[0].strip())

    @property
    def day_end(self) -> time:
        return _parse_hhmm(self.working_hours.partition("-")[2].strip())

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class Team(WorkHours):
    """One team: who is on it, which repositories it owns, where it talks."""

    members: tuple[Member, ...] = Field(min_length=1)
    repositories: tuple[str, ...] = Field(min_length=1)
    github_teams: tuple[str, ...] = ()  # team slugs whose review requests reach this team
    channel: str = Field(min_length=1)  # Slack channel ID (C...) for the digest
    leads: tuple[str, ...] = ()  # Slack user IDs of the leads: alerts by DM, may set thresholds
    leads_channel: str | None = None  # alerts also go here when set
    digest_day: Weekday | None = None  # overrides schedules.digest_day
    digest_time: str | None = None  # overrides schedules.digest_time, team-local HH:MM
    thresholds: TeamThresholds = Field(default_factory=TeamThresholds)  # overrides per rule
    # the members' default review windows ("10:00-10:30", at most 3, team-local, inside the
    # working hours); empty: off. A member's own choice (App Home, /flow windows) wins.
    review_windows: tuple[str, ...] = ()

    @field_validator("repositories")
    @classmethod
    def _repos(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for repo in value:
            if not _REPO.match(repo):
                raise ValueError(f"expected 'owner/name' or 'name' (got {repo!r})")
        return value

    @field_validator("leads")
    @classmethod
    def _leads(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for lead in value:
            if not _SLACK_USER.match(lead):
                raise ValueError(f"expected Slack user IDs like U012AB3CD (got {lead!r})")
        return value

    @field_validator("digest_time")
    @classmethod
    def _digest_time(cls, value: str | None) -> str | None:
        if value is not None:
            _parse_hhmm(value)
        return value

    @field_validator("review_windows")
    @classmethod
    def _windows(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        spans = [parse_window_text(w) for w in value]
        if len(spans) > 3:
            raise ValueError(f"at most 3 windows a day (got {len(spans)})")
        hours = info.data.get("working_hours")
        if hours is not None:  # else the working hours were invalid: said there
            day_start, day_end = parse_window_text(hours)
            for (a, b), text in zip(spans, value, strict=True):
                if a < day_start or b > day_end:
                    raise ValueError(f"{text!r} is outside the working hours {hours}")
        ordered = sorted(zip(spans, value, strict=True))
        for ((_, end), first), ((start, _), second) in pairwise(ordered):
            if start < end:
                raise ValueError(f"{first!r} and {second!r} overlap")
        return value

    @cached_property
    def logins(self) -> frozenset[str]:
        """The members' GitHub logins, lower case (kept: read on every App Home and command)."""
        return frozenset(m.github.lower() for m in self.members)


def token_variable(organisation: str) -> str:
    """The environment variable holding ``organisation``'s own token (``acme-labs``:
    ``GITHUB_TOKEN_ACME_LABS``); without it the organisation is read with ``GITHUB_TOKEN``."""
    return "GITHUB_TOKEN_" + re.sub(r"[^A-Z0-9]", "_", organisation.upper())


class Organisation(_Frozen):
    """Another GitHub organisation read beside ``github.organisation``. Its credentials, and so
    its rate-limit budget, are its own: a GitHub App's installation on it (``installation_id``),
    or the token in ``GITHUB_TOKEN_<ORG>`` (else ``GITHUB_TOKEN``, whose budget it then shares)."""

    all_repositories: bool = False  # every non-archived repository of this organisation
    installation_id: int | None = Field(default=None, ge=1)  # with a GitHub App


class GitHubSettings(_Frozen):
    """Where to read from. Credentials never live here: they come from the environment."""

    organisation: str = Field(min_length=1)
    all_repositories: bool = False  # every non-archived repository of the organisation
    # more organisations (teams name their repositories as owner/name)
    organisations: dict[str, Organisation] = Field(default_factory=dict)
    base_url: str = "https://api.github.com"  # Enterprise Server: https://HOST/api/v3
    retention_days: int = Field(default=120, ge=7, le=730)
    budget_share: float = Field(default=0.25, gt=0, le=1)  # of the remaining rate limit per cycle
    timeout_seconds: float = Field(default=15, gt=0)
    # the longest Retry-After (or rate-limit reset) a cycle waits out; beyond it the
    # repository is deferred to the next cycle
    max_wait_seconds: float = Field(default=60, ge=0, le=3600)

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if "@" in value.split("://", 1)[-1].split("/", 1)[0]:  # not echoed: it may hold a token
            raise ValueError("credentials do not belong in the URL (it is printed by doctor and in "
                             "logs); the token comes from GITHUB_TOKEN")
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"expected an http(s) URL (got {value!r})")
        return value.rstrip("/")

    @field_validator("organisations")
    @classmethod
    def _organisations(cls, value: dict[str, Organisation]) -> dict[str, Organisation]:
        for name in value:
            if not _ORG.match(name):
                raise ValueError(f"{name!r} is not a GitHub organisation name (letters, digits"
                                 " and single hyphens, at most 39)")
        return value

    @property
    def organisation_names(self) -> tuple[str, ...]:
        """Every organisation read: the main one first."""
        return (self.organisation, *self.organisations)

    def lists_all(self, organisation: str) -> bool:
        """Whether every repository of ``organisation`` is read, not only the teams' ones."""
        other = self.organisations.get(organisation)
        return other.all_repositories if other is not None else (
            self.all_repositories and organisation == self.organisation)


class Schedules(_Frozen):
    """When jobs run. Digest day and time are in each team's own time zone."""

    sample_interval_minutes: int = Field(default=15, ge=1, le=1440)
    jitter_seconds: int = Field(default=30, ge=0, le=600)
    digest_day: Weekday = "mon"
    digest_time: str = "09:30"

    @field_validator("digest_time")
    @classmethod
    def _time(cls, value: str) -> str:
        _parse_hhmm(value)
        return value


class AlertSettings(_Frozen):
    """Threshold alerts: levels per rule (teams may override), and how loud they may be."""

    thresholds: RuleThresholds = Field(default_factory=RuleThresholds)
    cooldown_hours: float = Field(default=4, ge=0)
    remind_every_hours: float = Field(default=72, ge=0)  # 0: no reminders, only changes
    weekly_noise_budget: int = Field(default=10, ge=1)  # alerts per channel per week
    deliver_to: Literal["dm", "channel", "both"] = "both"


DEFAULT_BOT_PATTERNS: tuple[str, ...] = (
    r".*\[bot\]$",
    r"^dependabot.*",
    r"^renovate.*",
    r"^github-actions.*",
    r"^snyk-bot$",
    r"^mergify.*",
    r"^codecov.*",
)
DEFAULT_AI_PATTERNS: tuple[str, ...] = (
    r"^copilot.*",
    r"^coderabbit.*",
    r"^claude.*",
    r"^codex.*",
    r"^chatgpt-codex-connector.*",
    r"^devin-ai-integration.*",
    r"^cursor.*",
    r"^gemini-code-assist.*",
    r"^sweep-ai.*",
)


class IdentitySettings(_Frozen):
    """Who counts as a bot or an AI (regular expressions, case-insensitive, on logins)."""

    bot_patterns: tuple[str, ...] = DEFAULT_BOT_PATTERNS
    ai_patterns: tuple[str, ...] = DEFAULT_AI_PATTERNS
    ai_labels: tuple[str, ...] = ("ai-assisted", "copilot", "ai")
    ai_coauthor_patterns: tuple[str, ...] = (
        r"copilot",
        r"claude",
        r"cursor",
        r"codex",
        r"devin",
        r"aider",
        r"gemini",
    )

    @field_validator("bot_patterns", "ai_patterns", "ai_coauthor_patterns")
    @classmethod
    def _regex(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as err:
                raise ValueError(f"invalid regular expression {pattern!r}: {err}") from None
        return value


class MetricSettings(_Frozen):
    """Knobs of the metric definitions (docs/metrics.md)."""

    window_days: int = Field(default=7, ge=1, le=90)
    recovery_minutes: float = Field(default=23, ge=0)
    required_approvals: int = Field(default=1, ge=1, le=10)


class StorageSettings(_Frozen):
    """Where the embedded Redis keeps its file when ``REDIS_URL`` is not set."""

    path: str | None = None  # default: the user's data directory
    prefix: str = Field(default="flowbot", pattern=r"^[a-z][a-z0-9_-]*$")


class Secrets(_Frozen):
    """Credentials, from the environment only. ``repr`` shows none of them."""

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    github_token: SecretStr | None = None
    github_app_id: str | None = None
    github_app_private_key: SecretStr | None = None
    github_app_installation_id: int | None = None
    github_org_tokens: dict[str, SecretStr] = Field(default_factory=dict)  # GITHUB_TOKEN_<ORG>
    redis_url: SecretStr | None = None  # may embed a password
    # GitHub webhooks: GITHUB_WEBHOOK_SECRET, plus one GITHUB_WEBHOOK_SECRET_<NAME> per further
    # hook with a secret of its own (another organisation's hook, an App's, a rotation);
    # none: the endpoint is off and Flowbot polls
    github_webhook_secrets: tuple[SecretStr, ...] = ()
    slack_api_url: str | None = None  # points slack_sdk elsewhere (a fake on loopback)


@dataclass(frozen=True)
class People:
    """:attr:`Settings.people`: the teams' members indexed, every list in config order."""

    login_of: dict[str, str]  # Slack user ID -> GitHub login (its first member entry)
    teams_of_user: dict[str, tuple[str, ...]]  # Slack user ID -> teams listing it as member or lead
    teams_of_login: dict[str, tuple[str, ...]]  # lower-case login -> teams listing it
    github_teams_of: dict[str, frozenset[str]]  # lower-case login -> its teams' GitHub team slugs


class Settings(_Frozen):
    """The whole validated configuration."""

    github: GitHubSettings
    teams: dict[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")], Team] = Field(
        min_length=1
    )
    schedules: Schedules = Field(default_factory=Schedules)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    identity: IdentitySettings = Field(default_factory=IdentitySettings)
    metrics: MetricSettings = Field(default_factory=MetricSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    secrets: Secrets = Field(default_factory=Secrets)

    @cached_property
    def repositories(self) -> tuple[str, ...]:
        """Every configured repository as ``owner/name``, each once, in config order."""
        seen: dict[str, None] = {}
        for team in self.teams.values():
            for repo in team.repositories:
                seen.setdefault(self.full_repo(repo), None)
        return tuple(seen)

    @cached_property
    def people(self) -> People:
        """Who is on which team, indexed once (App Home and commands ask it per request)."""
        login_of: dict[str, str] = {}
        teams_of_user: dict[str, list[str]] = {}
        teams_of_login: dict[str, list[str]] = {}
        slugs: dict[str, set[str]] = {}
        for name, team in self.teams.items():
            users = dict.fromkeys([*team.leads, *(m.slack for m in team.members if m.slack)])
            for user in users:
                teams_of_user.setdefault(user, []).append(name)
            for member in team.members:
                if member.slack:
                    login_of.setdefault(member.slack, member.github)
            for low in dict.fromkeys(m.github.lower() for m in team.members):
                teams_of_login.setdefault(low, []).append(name)
                slugs.setdefault(low, set()).update(team.github_teams)
        return People(login_of=login_of,
                      teams_of_user={u: tuple(t) for u, t in teams_of_user.items()},
                      teams_of_login={u: tuple(t) for u, t in teams_of_login.items()},
                      github_teams_of={u: frozenset(s) for u, s in slugs.items()})

    def full_repo(self, repo: str) -> str:
        """``name`` becomes ``organisation/name``; ``owner/name`` stays."""
        return repo if "/" in repo else f"{self.github.organisation}/{repo}"

    def thresholds_for(self, team: str) -> dict[str, Thresholds]:
        """The team's alert levels: global ones with the team's overrides on top."""
        merged = self.alerts.thresholds.model_dump()
        overrides = self.teams[team].thresholds
        return {
            rule: getattr(overrides, rule) or RULE_THRESHOLDS[rule].model_validate(merged[rule])
            for rule in ALERT_RULES
        }

    def teams_of_repo(self, repo: str) -> tuple[str, ...]:
        """Names of the teams that list ``repo`` (``owner/name``)."""
        return tuple(
            name
            for name, team in self.teams.items()
            if repo in {self.full_repo(r) for r in team.repositories}
        )

    def digest_schedule(self, team: str) -> tuple[Weekday, time]:
        """The team's digest weekday and local time."""
        t = self.teams[team]
        return (
            t.digest_day or self.schedules.digest_day,
            _parse_hhmm(t.digest_time or self.schedules.digest_time),
        )
