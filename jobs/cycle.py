"""One sampling cycle: sync every repository, then sample every team's queue.

Each repository runs under its own failure boundary: a repository that keeps failing (or
refuses access, or keeps answering with bad data) is reported on its line and skipped, and the
others still complete; whatever it raises, nothing it had stored is touched. A repository that
GitHub asks to wait longer than ``github.max_wait_seconds`` is deferred to the next cycle. A
spent budget stops the remaining repositories cleanly (they resume next cycle, where they
stopped). Failed and deferred repositories are named in ``CycleReport.errors``: the snapshots
built after the cycle carry those lines, which marks them partial (alerts say so and wait).
Queue samples are written for every team after the syncs, from whatever is stored, so a
sample exists each cycle even when GitHub was unreachable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from jobs import codec
from jobs.errors import BudgetExhausted, GitHubError, PermissionDenied, StoreUnavailable
from jobs.github import fetch
from jobs.github.client import GitHubSource
from jobs.github.connections import Connections
from jobs.identity import Identity
from jobs.model import PullRequest, QueueSample
from jobs.ports import Clock
from jobs.settings import Settings
from jobs.store import Store
from jobs.sync import ARCHIVED_TTL, Progress, RepoReport, sync_repo

log = logging.getLogger(__name__)

RepoProgress = Callable[[str, int], None]  # (repository, PRs just stored)


@dataclass(frozen=True, slots=True)
class CycleReport:
    """What a cycle did: a report per repository and the queue sample per team."""

    at: datetime
    repos: tuple[RepoReport, ...]
    samples: tuple[tuple[str, QueueSample], ...] = ()
    errors: tuple[str, ...] = ()  # one line per repository or team that failed or was deferred

    @property
    def requests(self) -> int:
        return sum(r.requests for r in self.repos)

    @property
    def cost(self) -> int:
        """Rate-limit points GitHub charged this cycle."""
        return sum(r.cost for r in self.repos)

    @property
    def partial(self) -> bool:
        """Some repository or team failed or was deferred: what is stored for it is older
        than this cycle (never worse: a failure deletes nothing)."""
        return bool(self.errors)

    @property
    def complete(self) -> bool:
        """Every repository finished (none stopped by the budget, none failed)."""
        return all(r.complete and r.error is None for r in self.repos)

    def lines(self) -> list[str]:
        """One line per repository, then one per team sample."""
        out = [r.line() for r in self.repos]
        out += [f"team {t}: queue {s.length} ({s.reviewer} reviewer, {s.author} author,"
                f" {s.ci} CI), {s.approved} approved" for t, s in self.samples]
        return out


def connect_and_run(
    settings: Settings,
    store: Store,
    *,
    clock: Clock,
    days: int | None = None,
    budget_share: float | None = None,
    progress: RepoProgress | None = None,
    on_repo: Callable[[RepoReport], None] | None = None,
) -> CycleReport:
    """Connect to GitHub from ``settings`` and run one cycle (what ``flowbot sample`` and
    ``flowbot backfill`` do): a connection per organisation, each budget shared with the
    other workers through ``store``. ``budget_share`` overrides ``github.budget_share``."""
    from jobs.github.connections import connect_all

    if budget_share is not None:
        gh = settings.github.model_copy(update={"budget_share": budget_share})
        settings = settings.model_copy(update={"github": gh})
    connections = connect_all(settings, store=store, clock=clock)
    try:
        return run_cycle(settings, store, connections, clock=clock, days=days, progress=progress,
                         on_repo=on_repo)
    finally:
        connections.close()


def repositories_hint(settings: Settings) -> int | None:
    """How many repositories a cycle will visit, when known without asking GitHub."""
    listed = any(settings.github.lists_all(o) for o in settings.github.organisation_names)
    return None if listed else len(settings.repositories)


def repositories(settings: Settings, store: Store, source: GitHubSource | Connections,
                 *, errors: list[str] | None = None) -> list[str]:
    """The configured repositories, then every non-archived repository of each organisation
    whose ``all_repositories`` is set (listed conditionally, cached in the store). An
    organisation that cannot be listed is named in ``errors`` (raised when ``errors`` is None)
    and left at its configured repositories."""
    connections = _connections(settings, source)
    names = list(settings.repositories)
    for org in settings.github.organisation_names:
        if not settings.github.lists_all(org):
            continue
        try:
            names += _organisation_repositories(store, connections.for_org(org), org)
        except (GitHubError, PermissionDenied) as err:
            if errors is None:
                raise
            log.warning("could not list the repositories of %s: %s", org, err)
            errors.append(f"{org}: {err}")
    return list(dict.fromkeys(names))


def _organisation_repositories(store: Store, source: GitHubSource, org: str) -> list[str]:
    cached = store.get_json("org_repos", org) or {}
    response, listed = fetch.org_repositories(source, org, etag=cached.get("etag"))
    if response.status != 304:
        cached = {
            "etag": response.etag,
            "repos": [[r["full_name"], bool(r.get("archived"))] for r in listed],
        }
        store.set_json("org_repos", org, value=cached)
        for name, archived in cached["repos"]:  # spares each new repository its own lookup
            store.set_json("archived", name, value=archived, ttl=ARCHIVED_TTL)
    return [name for name, archived in cached.get("repos", []) if not archived]


def _connections(settings: Settings, source: GitHubSource | Connections) -> Connections:
    if isinstance(source, Connections):
        return source
    return Connections.single(source, settings.github.organisation)


def run_cycle(
    settings: Settings,
    store: Store,
    source: GitHubSource | Connections,
    *,
    clock: Clock,
    days: int | None = None,
    progress: RepoProgress | None = None,
    on_repo: Callable[[RepoReport], None] | None = None,
) -> CycleReport:
    """Sync every repository (see :mod:`jobs.sync`) and write each team's queue sample.

    ``days`` asks for that much history (``flowbot backfill``); ``progress`` is told how many
    PRs each repository stored as it goes, ``on_repo`` gets each repository's report as it
    finishes. ``source`` is one GitHub source, or :class:`Connections` (one per
    organisation: each repository is read with its owner's credentials, and a spent budget
    stops only the repositories read with it). Never raises for GitHub trouble (nor for one
    repository's malformed data): failures are in the report. Raises StoreUnavailable when
    Redis is down (nothing can be kept then).
    """
    now = clock.now()
    connections = _connections(settings, source)
    for each in connections.sources():
        each.budget.start_cycle()
    reports: list[RepoReport] = []
    errors: list[str] = []
    stopped: dict[int, str] = {}  # id(source) -> why its remaining repositories wait
    repos = repositories(settings, store, connections, errors=errors)
    for repo in repos:
        source = connections.for_repo(repo)
        if id(source) in stopped:
            reports.append(RepoReport(repo=repo, complete=False, skipped=stopped[id(source)]))
            if on_repo is not None:
                on_repo(reports[-1])
            continue
        tick: Progress | None = (lambda n, r=repo: progress(r, n)) if progress else None
        sent, charged = source.budget.requests, source.budget.cost
        try:
            report = sync_repo(store, source, repo, now=now, days=days,
                               retention_days=settings.github.retention_days, progress=tick)
        except PermissionDenied as err:
            log.warning("sync refused for %s: %s", repo, err)
            report = RepoReport(repo=repo, error=str(err))
        except GitHubError as err:
            log.warning("sync failed for %s: %s", repo, err)
            report = RepoReport(repo=repo, error=str(err))
        except StoreUnavailable:
            raise
        except Exception as err:  # one repository's surprise must not end the cycle
            log.exception("sync failed for %s: unexpected data", repo)
            report = RepoReport(repo=repo, error=f"unexpected data ({type(err).__name__}: {err})"[:200])
        if report.error:
            report = replace(report, requests=source.budget.requests - sent,
                             cost=source.budget.cost - charged)
            errors.append(f"{repo}: {report.error}")
        elif report.deferred:
            errors.append(f"{repo}: deferred to the next cycle ({report.deferred})")
        elif not report.complete:
            stopped[id(source)] = "budget share spent; resumes next cycle"
        reports.append(report)
        if on_repo is not None:
            on_repo(report)
    samples = sample_queues(settings, store, now=now, errors=errors)
    return CycleReport(at=now, repos=tuple(reports), samples=tuple(samples), errors=tuple(errors))


def sample_queues(settings: Settings, store: Store, *, now: datetime,
                  errors: list[str]) -> list[tuple[str, QueueSample]]:
    """Each team's queue sample at ``now``, appended to its series; failures go to ``errors``.

    Computed from the stored open PRs of the team's repositories, or, when none of them was
    written since the team's last sample (and its settings are the same), moved on from that
    sample without reading a record (see :func:`_moved_on`).
    """
    from jobs.queue import queue_now
    from jobs.worktime import WorkCalendar

    identity = Identity(settings.identity)
    out = []
    every = sorted({settings.full_repo(r) for team in settings.teams.values() for r in team.repositories})
    generations = store.generations(every)
    stored: dict[str, list[PullRequest]] | None = None  # read only if a team's records moved
    common = (settings.identity.model_dump_json(), settings.metrics.required_approvals)
    for name, team in settings.teams.items():
        try:
            repos = list(dict.fromkeys(settings.full_repo(r) for r in team.repositories))
            calendar = WorkCalendar.for_team(team)
            inputs = repr((common, team.model_dump_json(), [generations[r] for r in repos]))
            sample = _moved_on(store.get_json("queue_basis", name), inputs, calendar, now=now)
            if sample is None:
                if stored is None:
                    stored = store.open_prs(every)  # two round trips for every repository
                prs = [pr for repo in repos for pr in stored[repo]]
                sample, _ = queue_now(prs, identity=identity, calendar=calendar, now=now,
                                      required_approvals=settings.metrics.required_approvals)
            store.add_queue_sample(name, sample, keep_days=settings.github.retention_days)
            store.set_json("queue_basis", name, value={"inputs": inputs,
                                                       "sample": codec.to_jsonable(sample)},
                           ttl=timedelta(days=1))
            out.append((name, sample))
        except StoreUnavailable:
            raise
        except Exception as err:  # a malformed record must not stop the other teams
            log.exception("queue sample failed for team %s", name)
            errors.append(f"team {name}: {err}")
    return out


def _moved_on(basis: Any, inputs: str, calendar: Any, *, now: datetime) -> QueueSample | None:
    """The team's previous sample moved on to ``now`` when its records (and settings) have not
    changed since; None when the queue must be computed from the records.

    With the same records every PR keeps its turn, and every waiting PR's age grows by the same
    calendar and business hours (drafts are not in the queue), so the counts stay and the oldest
    ages grow by the time elapsed (docs/metrics.md "Queue").
    """
    if not isinstance(basis, dict) or basis.get("inputs") != inputs:
        return None
    try:
        last = codec.from_jsonable(QueueSample, basis.get("sample"))
    except codec.DecodeError:
        return None
    if not last.at <= now:
        return None
    grew = (now - last.at).total_seconds() / 3600
    return replace(
        last, at=now,
        oldest_hours=None if last.oldest_hours is None else last.oldest_hours + grew,
        oldest_business_hours=None if last.oldest_business_hours is None
        else last.oldest_business_hours + calendar.hours_between(last.at, now),
    )


__all__ = ["BudgetExhausted", "Connections", "CycleReport", "repositories", "run_cycle",
           "sample_queues"]
