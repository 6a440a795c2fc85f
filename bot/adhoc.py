"""``flowbot report``: a one-off team view for someone with only a ``GITHUB_TOKEN``.

No Slack and no config file: the settings are built in memory (one team named after the
repository, its members inferred from the PRs' authors, working hours from flags), Redis is
``REDIS_URL`` or an embedded server in a temporary directory, sampling goes through the same
``jobs.cycle.run_cycle`` as the bot (with a progress bar), and the snapshot through
``jobs.snapshot``. ``--sandbox`` does the same against the simulated organisation served on
loopback. The CLI wires and prints; this module holds the steps.
"""

from __future__ import annotations

import logging
import re
import secrets
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from jobs.errors import FlowbotError
from jobs.identity import Identity
from jobs.model import PullRequest, TeamSnapshot
from jobs.ports import Clock
from jobs.settings import Settings
from jobs.store import Store

_REPO = re.compile(r"^([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+)$")
REPORT_PREFIX = "flowbot-report"  # keeps a one-off report apart from a running bot's data
NO_TOKEN = (
    "GITHUB_TOKEN is not set. Create a token that can read the repository "
    "(a fine-grained token with 'Pull requests: read' and 'Actions: read', or a classic token "
    "with 'repo'), then run:\n  export GITHUB_TOKEN=...\n  flowbot report OWNER/REPO\n"
    "Or try it on the simulated organisation: flowbot report --sandbox"
)


@dataclass(frozen=True, slots=True)
class Hours:
    """The working hours flags of ``flowbot report``."""

    timezone: str = "UTC"
    working_hours: str = "09:00-17:00"
    working_days: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri")
    holiday_country: str | None = None


def repo_settings(
    repo: str, *, env: Mapping[str, str], days: int, hours: Hours = Hours(),
    members: tuple[str, ...] = (), base_url: str | None = None,
) -> Settings:
    """In-memory settings for one repository: one team named after it.

    ``members`` defaults to the repository's owner until the PRs are known (see
    :func:`members_of`). Raises FlowbotError for a malformed ``OWNER/REPO`` and ConfigError for
    bad flags (each with its flag name) or a missing token.
    """
    from bot.config import from_mapping

    match = _REPO.match(repo)
    if not match:
        raise FlowbotError(f"expected OWNER/REPO, like octocat/hello-world (got {repo!r})")
    owner, name = match.groups()
    if not env.get("GITHUB_TOKEN", "").strip():
        raise FlowbotError(NO_TOKEN)
    team: dict[str, Any] = {
        "members": [{"github": m} for m in (members or (owner,))],
        "repositories": [repo],
        "channel": "terminal",
        "timezone": hours.timezone,
        "working_hours": hours.working_hours,
        "working_days": list(hours.working_days),
    }
    if hours.holiday_country:
        team["holiday_country"] = hours.holiday_country
    # A one-off report backfills in one go: it may spend what it needs of the token's budget
    # (the budget's safety margin still stays untouched), unlike the bot's 25% per cycle.
    github: dict[str, Any] = {"organisation": owner, "budget_share": 1.0}
    if base_url:
        github["base_url"] = base_url
    data = {
        "github": github,
        "teams": {team_name(name): team},
        "metrics": {"window_days": max(1, min(days, 90))},
        "storage": {"prefix": REPORT_PREFIX},
    }
    return from_mapping(data, env=env, source="flowbot report flags")


def team_name(repo_name: str) -> str:
    """A valid team name from a repository name: lower case, other characters as ``-``."""
    name = re.sub(r"[^a-z0-9_-]+", "-", repo_name.lower()).strip("-_")
    return name or "team"


def members_of(prs: list[PullRequest], settings: Settings) -> tuple[str, ...]:
    """The human authors of ``prs``, most PRs first (the team of a one-repository report)."""
    identity = Identity(settings.identity)
    counts: dict[str, int] = {}
    for pr in prs:
        if pr.author and identity.kind(pr.author, pr.author_type) == "human":
            counts[pr.author] = counts.get(pr.author, 0) + 1
    ranked = sorted(counts, key=lambda a: (-counts[a], a.lower()))
    seen: set[str] = set()
    out = []
    for login in ranked:
        if login.lower() not in seen:
            seen.add(login.lower())
            out.append(login)
    return tuple(out)


@contextmanager
def report_store(env: Mapping[str, str]) -> Iterator[Store]:
    """``REDIS_URL`` (under a prefix of this run's own, emptied afterwards, so a running bot's
    data and another report are never touched) or an embedded Redis in a temporary directory
    removed afterwards. Raises StoreUnavailable."""
    url = env.get("REDIS_URL", "").strip() or None
    prefix = f"{REPORT_PREFIX}-{secrets.token_hex(4)}"
    with tempfile.TemporaryDirectory(prefix="flowbot-report-") as tmp:
        store = Store.connect(url, data_path=Path(tmp) / "report.rdb", prefix=prefix)
        try:
            store.flush_prefix()
            store.ensure_schema()
            yield store
        finally:
            try:
                store.flush_prefix()
            finally:
                store.close()


def sample(
    settings: Settings, store: Store, *, clock: Clock, days: int, console: Console,
    connect: Callable[[Settings, Clock], Any] | None = None,
) -> tuple[str, ...]:
    """Backfill ``days`` of history with a progress bar; returns the cycle's error lines."""
    from jobs.cycle import run_cycle
    from jobs.github.client import connect as gh_connect

    source = connect(settings, clock) if connect else gh_connect(settings, clock=clock)
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
        TextColumn("{task.fields[prs]} PRs"), TimeElapsedColumn(),
        console=console, transient=True,
    ) as bar:
        tasks = {r: bar.add_task(f"sampling {r}", total=None, prs=0) for r in settings.repositories}
        stored: dict[str, int] = dict.fromkeys(tasks, 0)

        def tick(repo: str, n: int) -> None:
            if repo not in tasks:
                tasks[repo] = bar.add_task(f"sampling {repo}", total=None, prs=0)
            stored[repo] = stored.get(repo, 0) + n
            bar.update(tasks[repo], prs=stored[repo])

        with _quiet_warnings("jobs"):
            report = run_cycle(settings, store, source, clock=clock, days=days, progress=tick)
        for task_id in tasks.values():
            bar.update(task_id, total=1, completed=1)
    return report.errors


@contextmanager
def _quiet_warnings(name: str) -> Iterator[None]:
    """Hold back the sampler's warnings while the progress bar runs: the report shows each
    failure itself (in its error message or its "Degraded" line). Left alone when the user
    asked for more logging (FLOWBOT_LOG_LEVEL=INFO or DEBUG)."""
    logger = logging.getLogger(name)
    before = logger.level
    if logger.getEffectiveLevel() >= logging.WARNING:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(before)


def repo_snapshot(
    repo: str, *, env: Mapping[str, str], days: int, hours: Hours, clock: Clock,
    console: Console,
) -> TeamSnapshot:
    """Sample one repository and compute its team's snapshot (members from the PR authors).

    Raises FlowbotError with GitHub's reason when nothing could be read.
    """
    from jobs.snapshot import compute_team_snapshot

    base_url = env.get("GITHUB_API_URL", "").strip() or None
    settings = repo_settings(repo, env=env, days=days, hours=hours, base_url=base_url)
    with report_store(env) as store:
        errors = sample(settings, store, clock=clock, days=days, console=console)
        prs = store.get_prs(repo)
        if not prs and errors:
            reasons = "; ".join(e.removeprefix(f"{repo}: ") for e in errors)
            raise FlowbotError(f"could not read {repo}: {reasons}")
        members = members_of(prs, settings) or (repo.split("/")[0],)
        settings = repo_settings(repo, env=env, days=days, hours=hours, members=members,
                                 base_url=base_url)
        name = next(iter(settings.teams))
        now = clock.now()
        samples = store.queue_samples(name, until=now)
        cursor = store.get_cursor(repo)
        return compute_team_snapshot(
            settings, name, prs, samples, now=now, errors=errors,
            data_as_of=cursor.synced_at if cursor is not None else None,
        )


def sandbox_snapshots(*, days: int, console: Console, end: datetime | None = None,
                      env: Mapping[str, str] | None = None) -> tuple[dict[str, TeamSnapshot], datetime]:
    """Backfill the simulated organisation (served on loopback, its clock at the org's end)
    and compute every team's snapshot; returns them and the moment they describe."""
    from bot.config import from_mapping
    from jobs.ports import FixedClock
    from jobs.sandbox.org import build_org
    from jobs.sandbox.server import SandboxServer
    from jobs.snapshot import refresh_all

    end = end or datetime.now(timezone.utc).replace(second=0, microsecond=0)
    org = build_org(end=end)
    clock = FixedClock(org.end)
    with SandboxServer(org, clock=clock) as server:
        data = org.config(server.base_url)
        data["metrics"] = {"window_days": max(1, min(days, 90))}
        data["storage"] = {"prefix": REPORT_PREFIX}
        sandbox_env = {"GITHUB_TOKEN": server.token}
        redis_url = (env or {}).get("REDIS_URL")
        if redis_url:
            sandbox_env["REDIS_URL"] = redis_url
        settings = from_mapping(data, env=sandbox_env, source="sandbox")
        with report_store(sandbox_env) as store:
            errors = sample(settings, store, clock=clock, days=days, console=console)
            snaps = refresh_all(settings, store, now=clock.now(), errors=errors)
    return snaps, clock.now()
