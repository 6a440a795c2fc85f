"""One repository's incremental sync: poll, fetch what changed, parse, store, move the cursor.

A cycle for one repository, cheapest path first:

1. **Poll** the PR list conditionally (``If-None-Match`` with the stored ETag). ``304``: no PR
   changed; it costs no rate limit.
2. **PR pass** (only when the poll says something changed, or an earlier pass was cut short):
   GraphQL pages of 50 PRs, newest update first, down to the cursor (or the backfill horizon).
   Each page is stored with the cursor in one transaction (``store.put_prs(..., cursor=...)``):
   the page cursor (``resume_after``) moves only after its records are written, so a pass cut
   short by the budget (or a crash) resumes where it stopped without refetching.
3. **CI**: open PRs change state through CI without their PR changing, so CI is read apart,
   from the repository's Actions runs listing (``created >=`` the oldest run not known to be
   final), and only when PRs changed or a stored open PR still has CI running. This is the
   choice for refreshing open PRs: everything but CI bumps a PR's ``updated_at`` and so shows
   in the poll; CI is followed through the runs of the open PRs that still have CI pending.
4. **Reruns**: a rerun's own queue start is only in its jobs; runs with more than one attempt
   go to a per-repository backlog drained within the budget (one request per run), so a
   backfill is never blocked on them and an interrupted drain resumes next cycle.

Every PR is stored with its whole history: a PR with more than 100 commits, reviews or
timeline items has the rest paged in (:func:`jobs.github.fetch.complete_pull`) before it is
parsed, in a backfill and an incremental pass alike; one that still could not be completed is
stored marked (``PullRequest.incomplete``) and listed under the store's ``incomplete`` key of
its repository, which doctor reads.

A bad answer (not JSON, the wrong shape, a GraphQL answer missing what was asked) raises
before anything is written: the cursor, the rerun backlog, the archived flag and the records
stay as they were, and the repository is reported failed for this cycle. A rate-limit wait
beyond ``github.max_wait_seconds`` defers the repository to the next cycle the same way.

Closed PRs are final: once stored closed they are only refetched if GitHub reports them
updated. ``COLLECT_VERSION`` differing from the stored cursor's resets it (everything is
collected again). Archived repositories are skipped. Closed PRs older than the retention
window are pruned.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from jobs import columnar
from jobs.errors import BudgetExhausted, Deferred
from jobs.github import COLLECT_VERSION, fetch, parse, queries
from jobs.github.client import GitHubSource
from jobs.model import CheckRun, PullRequest, RepoCursor
from jobs.store import Store

log = logging.getLogger(__name__)

RUNS_OVERLAP = timedelta(minutes=10)  # re-list runs this far back: clocks and listings lag
ARCHIVED_TTL = timedelta(days=1)  # re-check an archived repository's state daily
LOCK_TTL = timedelta(minutes=1)  # a repository's sync lock, renewed while held
LOCK_WAIT = 120.0  # seconds a sync or refresh waits for another one of the same repository
LOCK_POLL = 0.05
Progress = Callable[[int], None]

_RUN_FIELDS = ("id", "name", "head_sha", "run_attempt", "created_at", "run_started_at",
               "updated_at", "status", "conclusion")


@dataclass(frozen=True, slots=True)
class RepoReport:
    """What one repository's sync did (a line of ``flowbot sample``)."""

    repo: str
    changed: int = 0  # PR records written
    requests: int = 0  # HTTP requests sent (304s and retries included)
    cost: int = 0  # rate-limit points charged
    budget_left: int | None = None  # REST core requests left, as last reported
    error: str | None = None
    skipped: str | None = None  # why nothing was done ("archived")
    complete: bool = True  # False when the budget stopped it; it resumes next cycle
    backlog: int = 0  # reruns still waiting for their jobs
    deferred: str | None = None  # GitHub asked to wait past the cap: why; resumes next cycle
    incomplete: int = 0  # PRs stored whose history GitHub did not give in full

    def line(self) -> str:
        """``acme/api: 12 PRs changed, 3 requests (2 points), 4,812 left``: requests sent
        (failed attempts included), points as GitHub charged them."""
        left = f", {self.budget_left:,} left" if self.budget_left is not None else ""
        spent = f"{self.requests} requests ({self.cost} points)"
        if self.error:
            return f"{self.repo}: FAILED: {self.error} ({spent})"
        if self.deferred:
            return f"{self.repo}: deferred to the next cycle: {self.deferred} ({spent})"
        if self.skipped:
            return f"{self.repo}: skipped ({self.skipped})"
        tail = "" if self.complete else "; budget share spent, resumes next cycle"
        more = f", {self.backlog} reruns queued" if self.backlog else ""
        cut = f", {self.incomplete} PRs with incomplete history" if self.incomplete else ""
        return f"{self.repo}: {self.changed} PRs changed, {spent}{left}{more}{cut}{tail}"


def sync_repo(
    store: Store,
    source: GitHubSource,
    repo: str,
    *,
    now: datetime,
    days: int | None = None,
    retention_days: int = 120,
    progress: Progress | None = None,
) -> RepoReport:
    """Bring ``repo``'s stored PRs up to date with GitHub (see the module docstring).

    ``days`` asks for history that far back (a backfill); without it a new repository is
    collected back to the retention window. Returns the report; a spent budget ends it early
    with ``complete=False``. Raises GitHubError / PermissionDenied / StoreUnavailable for the
    caller's failure boundary.
    """
    job = _RepoSync(store, source, repo, now=now, days=days,
                    retention_days=retention_days, progress=progress)
    return _report(job, job.run)


def refresh_pr(store: Store, source: GitHubSource, repo: str, number: int, *, now: datetime,
               retention_days: int = 120) -> RepoReport:
    """Re-read PR ``number`` of ``repo`` from GitHub and store it as a sync would.

    What a webhook about a PR asks for. One GraphQL query (``PullOne``: the sampler's own
    fragment and parser, so the record is the one a sync stores), plus a ``PullMore`` page per
    further 100 commits, reviews or timeline items of a long PR. The PR keeps the CI stored for
    it (CI is read apart, :func:`refresh_ci`). Nothing is written when the record did not
    change, so no team's snapshot is recomputed for it. The sync cursor is left alone: the next
    sample still reads every PR changed since its own last pass, this one included, which is
    what makes a lost or reordered webhook cost freshness, never correctness. A PR stored here
    for the first time moves the cursor's CI listing back to its creation, so its earlier CI
    runs are listed at the next :func:`refresh_ci` or sample.

    Returns the report (``skipped`` says why nothing was read: archived, no such PR, closed
    before the retention window). Raises GitHubError / PermissionDenied / StoreUnavailable for
    the caller's failure boundary.
    """
    job = _RepoSync(store, source, repo, now=now, days=None, retention_days=retention_days,
                    progress=None)
    return _report(job, lambda: job.one(number))


def refresh_ci(store: Store, source: GitHubSource, repo: str, *, now: datetime,
               retention_days: int = 120) -> RepoReport:
    """Re-read ``repo``'s CI (step 3 and 4 of a sync: its Actions runs listing, conditional,
    then the jobs of queued reruns) whether or not a stored PR has CI pending.

    What a ``check_run``/``check_suite``/``workflow_run``/``workflow_job`` webhook asks for: the
    listing attaches each run to its PRs by their numbers or head commit, exactly as a sample
    does. A repository whose CI was never listed is skipped (its next sample lists it). Of the
    cursor only the CI mark (``runs_since``) moves, written over the cursor as stored at that
    moment, so a sync of the same repository running meanwhile keeps its own progress. Returns
    the report; raises as :func:`refresh_pr`.
    """
    job = _RepoSync(store, source, repo, now=now, days=None, retention_days=retention_days,
                    progress=None)
    return _report(job, job.ci)


def _report(job: _RepoSync, step: Callable[[], str | None]) -> RepoReport:
    """Run one step of ``job`` and say what it did; a spent budget or a long wait ends it."""
    source, repo = job.source, job.repo
    requests0, cost0 = source.budget.requests, source.budget.cost
    complete = True
    skipped = None
    deferred = None
    try:
        with _repository_lock(job.store, repo) as held:
            skipped = step() if held else None
        if not held:
            complete = False
            deferred = f"another sync of it ran for over {LOCK_WAIT:.0f} s"
    except BudgetExhausted as stop:
        log.info("%s: %s", repo, stop)
        complete = False
    except Deferred as wait:
        log.warning("%s: %s", repo, wait)
        complete = False
        deferred = f"GitHub asked to wait {wait.seconds:.0f} s"
    return RepoReport(
        repo=repo,
        changed=len(job.written),
        requests=source.budget.requests - requests0,
        cost=source.budget.cost - cost0,
        budget_left=source.budget.left("core"),
        skipped=skipped,
        complete=complete,
        backlog=job.backlog_size,
        deferred=deferred,
        incomplete=job.incomplete,
    )


@contextmanager
def _repository_lock(store: Store, repo: str) -> Iterator[bool]:
    """Hold ``repo``'s sync lock while a sync or refresh of it reads GitHub and writes.

    Every writer of a repository's records (a sample's sync, a webhook's PR or CI refresh, on
    any worker) takes it, so they run one after another: without it, a CI refresh that read
    the stored PR before a PR refresh wrote its new head would write the old head back, and
    the record would stay stale until the next sample. Waits up to :data:`LOCK_WAIT` seconds
    for the holder (a dead one's lock is taken over, see ``Store.lock``); yields False when
    it is still held then. Raises StoreUnavailable.
    """
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        with store.lock(f"repo:{repo}", ttl=LOCK_TTL, heartbeat=True) as lk:
            if lk.acquired or time.monotonic() >= deadline:
                yield lk.acquired
                return
        time.sleep(LOCK_POLL)


class _RepoSync:
    """The state of one repository's sync while it runs."""

    def __init__(self, store: Store, source: GitHubSource, repo: str, *, now: datetime,
                 days: int | None, retention_days: int, progress: Progress | None) -> None:
        self.store = store
        self.source = source
        self.repo = repo
        self.now = now
        self.days = days
        self.retention = timedelta(days=retention_days)
        self.progress = progress
        self.written: set[int] = set()
        self.new_prs: list[PullRequest] = []
        self.backlog_size = 0
        self.incomplete = 0  # PRs written this run whose history is still incomplete
        self.archived_flag: bool | None = None  # from the store: known (un)archived, or None
        self.only_ci = False  # refresh_ci: change nothing of the cursor but its CI mark

    # ------------------------------------------------------------------ the steps

    def run(self) -> str | None:
        self.archived_flag = self.store.get_json("archived", self.repo)
        if self.archived_flag:
            return "archived"
        cursor = self.store.get_cursor(self.repo)
        if cursor is not None and cursor.collect_version != COLLECT_VERSION:
            log.info("%s: what is collected changed; collecting again", self.repo)
            self.store.reset_cursor(self.repo)
            cursor = None
        cursor = cursor or RepoCursor(repo=self.repo, updated_at=None,
                                      collect_version=COLLECT_VERSION)
        cursor, archived = self._pass(cursor)
        if archived:
            self.store.set_json("archived", self.repo, value=True, ttl=ARCHIVED_TTL)
            return "archived"
        cursor = self._runs(cursor)
        if cursor.resume_after is None:
            self.store.set_cursor(replace(cursor, synced_at=self.now))
        self._drain_reruns()
        if self.written:
            self.store.prune_prs(self.repo, closed_before=self.now - self.retention)
        return None

    def one(self, number: int) -> str | None:
        """:func:`refresh_pr`'s step: PR ``number`` read by number, stored when it changed."""
        if self.store.get_json("archived", self.repo):
            return "archived"
        node, archived = fetch.one_pull(self.source, self.repo, number)
        if archived:
            self.store.set_json("archived", self.repo, value=True, ttl=ARCHIVED_TTL)
            return "archived"
        if node is None:
            return f"#{number} is no pull request"
        pr = parse.pull_from_graphql(self.repo, fetch.complete_pull(self.source, self.repo, node))
        if pr.closed_at is not None and pr.closed_at < self.now - self.retention:
            return f"#{number} closed before the retention window"
        old = self.store.get_pr(self.repo, number)
        if old is not None:
            pr = replace(pr, checks=old.checks)
            if pr == old:
                return None
        cursor = self.store.get_cursor(self.repo)
        if old is None and cursor is not None and cursor.runs_since is not None \
                and pr.created_at < cursor.runs_since:
            # a sync lists the CI of the PRs it stores first from their creation on; so must
            # the next listing after this one (the cursor moves with the record, atomically)
            cursor = replace(cursor, runs_since=pr.created_at)
        else:
            cursor = None
        self.store.put_prs(self.repo, [pr], cursor=cursor)
        self.written.add(number)
        self._note_incomplete([pr])
        return None

    def ci(self) -> str | None:
        """:func:`refresh_ci`'s step: the CI listing and the rerun backlog, forced."""
        if self.store.get_json("archived", self.repo):
            return "archived"
        cursor = self.store.get_cursor(self.repo)
        if cursor is None or cursor.collect_version != COLLECT_VERSION or cursor.runs_since is None:
            return "not synced yet; its first sample lists its CI"
        self.only_ci = True
        self._runs(cursor, force=True)
        self._drain_reruns()
        return None

    def _pass(self, cursor: RepoCursor) -> tuple[RepoCursor, bool]:
        """Step 2 (with the poll of step 1): store changed PRs page by page."""
        horizon = self.now - timedelta(days=self.days) if self.days else self.now - self.retention
        deeper = self.days is not None and (
            cursor.horizon is None or horizon < cursor.horizon - timedelta(hours=1)
        )
        if cursor.resume_after is not None:
            stop = cursor.pass_stop or horizon
            top, etag, after = cursor.pass_top, cursor.pass_etag, cursor.resume_after
        else:
            response = fetch.poll_pulls(self.source, self.repo,
                                        etag=None if deeper else cursor.etag)
            if response.status == 304 and not deeper:
                return cursor, False
            listed = response.data  # a list (the client checked its shape)
            newest = parse.when(listed[0].get("updated_at")) if listed else None
            known = cursor.updated_at
            full = deeper or known is None
            stop = horizon if full or known is None else known
            if newest is None and cursor.horizon is None and known is None \
                    and self.archived_flag is None:
                # never synced and no PRs: the one case the GraphQL page would not tell
                # whether the repository is archived
                if fetch.repository(self.source, self.repo).get("archived"):
                    return cursor, True
            if newest is None or newest < stop or (not full and newest <= stop):
                # nothing newer than what is stored (or nothing at all in the window)
                covered = min(filter(None, (cursor.horizon, stop))) if full else cursor.horizon
                fresh = replace(cursor, etag=response.etag, horizon=covered)
                if fresh != cursor:
                    self.store.set_cursor(fresh)
                return fresh, False
            top, etag, after = None, response.etag, None
            if deeper:  # older PRs are coming: their CI must be listed again, from the oldest
                cursor = replace(cursor, runs_since=None)
        small = queries.FIRST_PAGE_INCREMENTAL if after is None and stop == cursor.updated_at else None
        for page in fetch.pull_pages(self.source, self.repo, after=after, first=small):
            if page.archived:
                return cursor, True
            prs: list[PullRequest] = []
            reached = False
            for node in page.nodes:
                updated = parse.when(node.get("updatedAt"))
                if updated is None or updated < stop:
                    reached = True
                    break
                top = updated if top is None or updated > top else top
                node = fetch.complete_pull(self.source, self.repo, node)
                prs.append(parse.pull_from_graphql(self.repo, node))
            prs = self._keep_checks(prs)
            if reached or not page.has_next:
                cursor = replace(
                    cursor, updated_at=max(filter(None, (top, cursor.updated_at)), default=None),
                    etag=etag, resume_after=None, pass_top=None, pass_stop=None, pass_etag=None,
                    horizon=min(filter(None, (cursor.horizon, stop))) if deeper or cursor.horizon
                    is None else cursor.horizon,
                )
            else:
                cursor = replace(cursor, resume_after=page.end_cursor, pass_top=top,
                                 pass_stop=stop, pass_etag=etag)
            self.store.put_prs(self.repo, prs, cursor=cursor)
            self.written.update(pr.number for pr in prs)
            self._note_incomplete(prs)
            if self.progress is not None:
                self.progress(len(prs))
            if cursor.resume_after is None:
                break
        return cursor, False

    def _note_incomplete(self, prs: list[PullRequest]) -> None:
        """Keep the repository's list of PRs stored with an incomplete history (doctor's)."""
        cut = {pr.number for pr in prs if pr.incomplete}
        self.incomplete += len(cut)
        known = set(self.store.get_json("incomplete", self.repo) or [])
        now_known = (known - {pr.number for pr in prs}) | cut
        if now_known != known:
            self.store.set_json("incomplete", self.repo, value=sorted(now_known),
                                ttl=self.retention)

    def _keep_checks(self, prs: list[PullRequest]) -> list[PullRequest]:
        """A refetched PR keeps the CI already stored for it (CI is read apart)."""
        out = []
        stored = self.store.get_pr_many(self.repo, [pr.number for pr in prs])  # one HMGET a page
        for pr in prs:
            old = stored.get(pr.number)
            if old is None:
                self.new_prs.append(pr)
            out.append(replace(pr, checks=old.checks) if old is not None else pr)
        return out

    def _runs(self, cursor: RepoCursor, *, force: bool = False) -> RepoCursor:
        """Step 3: CI runs of the PRs, when PRs changed or open PRs have CI pending (or when
        ``force``: a webhook said CI moved).

        The listing starts at the oldest run not known to be final, so while a run is
        pending the same listing is asked again: conditionally, a ``304`` when nothing moved.
        """
        # the repository's column block tells which open PRs have CI pending: one round trip,
        # no record decoded, when nothing changed (the steady cycle)
        block = self.store.pr_blocks([self.repo])[self.repo]
        pending = [_from_us(int(c)) for c in columnar.pending_checks(block).tolist()]
        owed = cursor.runs_since is None or (  # PRs stored after the last listing (cut short)
            cursor.updated_at is not None and cursor.updated_at > cursor.runs_since + RUNS_OVERLAP
        )
        if not self.written and not pending and not owed and not force:
            return cursor
        floor = self.now - self.retention
        if cursor.runs_since is None:  # first CI sync after a (deeper) backfill: all stored PRs
            everything = self.store.get_prs(self.repo)
            if not everything:  # no PRs, no CI to attach: nothing to list
                cursor = replace(cursor, runs_since=self.now - RUNS_OVERLAP)
                self.store.set_cursor(cursor)
                return cursor
            starts = [min(p.created_at for p in everything), *pending]
        else:
            starts = [cursor.runs_since, *pending, *(p.created_at for p in self.new_prs)]
        since = max(min(starts), floor)
        stamp = since.isoformat()
        seen = self.store.get_json("runs_etag", self.repo) or {}
        etag = seen.get("etag") if seen.get("since") == stamp and not self.new_prs else None
        log.debug("%s: CI runs created since %s (conditional: %s)", self.repo, stamp, bool(etag))
        response, runs = fetch.workflow_runs(self.source, self.repo, since=since, etag=etag)
        if response.status == 304:
            return cursor  # no run changed: the stored CI stands (the window stays put)
        prs = {p.number: p for p in self.store.open_prs([self.repo])[self.repo]}
        by_sha: dict[str, int] = {}
        backlog = self._backlog()
        touched: set[int] = set()
        for run in runs:
            numbers = [int(r["number"]) for r in run.get("pull_requests") or [] if r.get("number")]
            if not numbers:
                numbers = self._numbers_for_sha(str(run.get("head_sha") or ""), by_sha, prs)
            records = parse.run_attempts(run)
            for number in numbers:
                pr = prs.get(number) or self.store.get_pr(self.repo, number)
                if pr is None:
                    continue  # a PR outside the window (or not one of ours): nothing to attach
                prs[number] = pr
                if int(run.get("run_attempt") or 1) > 1 and not _settled(pr.checks, records):
                    backlog[str(run["id"])] = {
                        "pr": number, "run": {k: run.get(k) for k in _RUN_FIELDS}}
                merged = _merge_checks(pr.checks, records, keep_created=True)
                if merged != pr.checks:
                    prs[number] = replace(pr, checks=merged)
                    touched.add(number)
        if self.only_ci:  # a refresh beside a sync: move the CI mark of the cursor as stored now
            cursor = self.store.get_cursor(self.repo) or cursor
        cursor = replace(cursor, runs_since=self.now - RUNS_OVERLAP)
        self._save_backlog(backlog, [prs[n] for n in sorted(touched)], cursor)
        self.store.set_json("runs_etag", self.repo, value={"since": stamp, "etag": response.etag},
                            ttl=timedelta(days=7))
        return cursor

    def _numbers_for_sha(self, sha: str, cache: dict[str, int],
                         prs: dict[int, PullRequest]) -> list[int]:
        if not cache:
            for pr in [*prs.values(), *self.new_prs]:
                cache[pr.head_sha] = pr.number
                for e in pr.events:
                    if e.sha:
                        cache[e.sha] = pr.number
        return [cache[sha]] if sha in cache else []

    def _drain_reruns(self) -> None:
        """Step 4: fetch the jobs of queued reruns, one run per request, within the budget."""
        backlog = self._backlog()
        self.backlog_size = len(backlog)
        for run_id in list(backlog):
            item = backlog[run_id]
            jobs = fetch.run_jobs(self.source, self.repo, int(run_id))
            records = parse.run_attempts(item["run"], jobs)
            pr = self.store.get_pr(self.repo, int(item["pr"]))
            del backlog[run_id]
            changed = []
            if pr is not None:
                merged = _merge_checks(pr.checks, records, keep_created=False)
                if merged != pr.checks:
                    changed.append(replace(pr, checks=merged))
            self._save_backlog(backlog, changed, None)
            self.backlog_size = len(backlog)

    # ------------------------------------------------------------------ backlog storage

    def _backlog(self) -> dict[str, Any]:
        return dict(self.store.get_json("reruns", self.repo) or {})

    def _save_backlog(self, backlog: dict[str, Any], prs: list[PullRequest],
                      cursor: RepoCursor | None) -> None:
        """PRs and cursor in one transaction, then the backlog (a lost backlog write only
        means a rerun's jobs are fetched again)."""
        if prs or cursor is not None:
            self.store.put_prs(self.repo, prs, cursor=cursor)
            self.written.update(pr.number for pr in prs)
        self.store.set_json("reruns", self.repo, value=backlog, ttl=timedelta(days=30))


def _from_us(us: int) -> datetime:
    """Integer microseconds since the epoch (a column block's instant) as an aware datetime."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


def _settled(stored: Iterable[CheckRun], listed: Iterable[CheckRun]) -> bool:
    """A rerun whose attempts are all stored and whose latest attempt has not moved since."""
    table = {(c.run_id, c.attempt): c for c in stored}
    for c in listed:
        if any((c.run_id, k) not in table for k in range(1, c.attempt)):
            return False
        prior = table.get((c.run_id, c.attempt))
        if prior is None or replace(prior, created_at=c.created_at) != c:
            return False
    return True


def _merge_checks(old: Iterable[CheckRun], new: Iterable[CheckRun], *,
                  keep_created: bool) -> tuple[CheckRun, ...]:
    """Old checks with ``new`` attempts replacing those of the same run and attempt.

    ``keep_created``: a rerun attempt as listed does not know its own queue start; keep the
    one already stored (from its jobs) instead of the listing's stand-in.
    """
    table = {(c.run_id, c.attempt): c for c in old}
    for c in new:
        prior = table.get((c.run_id, c.attempt))
        if keep_created and prior is not None and c.attempt > 1:
            c = replace(c, created_at=prior.created_at)
        table[(c.run_id, c.attempt)] = c
    return tuple(sorted(table.values(), key=lambda c: (c.created_at, c.run_id, c.attempt)))
