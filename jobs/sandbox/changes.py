"""Changes to the simulated organisation as they happen, each announced by its webhooks.

The generated org is a history; ``Changes`` adds to it at ``clock.now()``: open a PR, mark it
ready or draft, request or un-request a review, push, review, dismiss a review, label, close,
merge, reopen, and let CI finish. The REST and GraphQL answers show each change at once (they
read the same records), and the sandbox's :class:`jobs.sandbox.webhooks.WebhookSender` delivers
the events GitHub would send for it (``pull_request``, ``pull_request_review``,
``workflow_run``, ``workflow_job``, ``check_run``, ``check_suite``). Changes are serialised by
one lock; each returns what a caller needs next (a PR number, a review id).

Pushes and new PRs start CI: every workflow of the repository gets a run on the new head,
queued until :meth:`Changes.finish_ci` completes it (GitHub's runners are not simulated).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from jobs.ports import Clock
from jobs.sandbox import hook_payloads as hp
from jobs.sandbox.generate import Ids, sha
from jobs.sandbox.org import Org
from jobs.sandbox.records import PR, Account, Attempt, Commit, Event, Job, ReviewRec, Run
from jobs.sandbox.view import PRView, RunView, view_pr, view_run
from jobs.sandbox.webhooks import WebhookSender

_PENDING = timedelta(days=3650)  # a queued run's start and end: not yet, as far as views go
_JOBS = {"E2E": ("e2e",)}  # jobs per workflow name; any other workflow runs lint and test
REVIEW_STATES = frozenset({"APPROVED", "CHANGES_REQUESTED", "COMMENTED"})


class Changes:
    """Changes to ``org`` at ``clock.now()``, announced through ``sender`` (module docstring).

    ``api`` returns the API root the payloads' URLs point at (the server's base URL).
    Every method raises ValueError for an unknown repository, PR, account or state.
    """

    def __init__(self, org: Org, *, clock: Clock, sender: WebhookSender,
                 api: Callable[[], str]) -> None:
        self.org, self.clock, self.sender, self._api = org, clock, sender, api
        self._lock = threading.RLock()
        # Team i's generated ids live in [10M (i+1), 10M (i+2)): the block after the last is free.
        self._ids = Ids(10_000_000 * (len(org.teams) + 1) + 5_000_000)
        self._run_numbers: dict[str, int] = {}  # repository:workflow -> its last run number

    # ------------------------------------------------------------------ pull requests

    def open_pr(self, repo: str, author: str | None = None, *, title: str = "Add a change",
                draft: bool = False, labels: tuple[str, ...] = (), additions: int = 40,
                ci: bool = True) -> int:
        """Open a PR on ``repo`` (default author: the owning team's first member); its number."""
        with self._lock:
            at = self._now()
            who = self._account(author) if author else self._team_member(repo)
            r = self._repo(repo)
            prs = self.org.prs.setdefault(r, [])
            pid = self._ids.next()
            pr = PR(repo=r, number=len(prs) + 1, id=pid, title=title, body=f"{title}.",
                    author=who, created_at=at, opened_as_draft=draft,
                    head_ref=f"{who.login.removesuffix('[bot]')}/{pid}", base_ref="main",
                    additions=additions, deletions=additions // 4,
                    changed_files=max(1, additions // 40), labels=tuple(labels),
                    team=self.org.repos[r].team, ai_assisted=False,
                    base_sha=sha(r, "base", pid))
            pr.commits.append(Commit(sha(r, pid, 0), title, who, at, at, at, pr.base_sha))
            runs = self._start_ci(pr, at) if ci else []
            prs.append(pr)
            self.org.index(pr)
            view = self._view(pr)
            self._send("pull_request", hp.pull_request_event(self._where(), view, "opened", who))
            self._announce_runs(pr, runs, "requested")
            return pr.number

    def ready(self, repo: str, number: int) -> None:
        """Mark a draft PR ready for review (``ready_for_review``)."""
        self._pr_event(repo, number, "ready_for_review", "ready_for_review")

    def to_draft(self, repo: str, number: int) -> None:
        """Convert a PR back to a draft (``converted_to_draft``)."""
        self._pr_event(repo, number, "convert_to_draft", "converted_to_draft")

    def request_review(self, repo: str, number: int, reviewer: str | None = None, *,
                       team: str | None = None) -> None:
        """Request a review from ``reviewer`` (a login) or ``team`` (a slug)."""
        self._request(repo, number, reviewer, team, "review_requested")

    def remove_request(self, repo: str, number: int, reviewer: str | None = None, *,
                       team: str | None = None) -> None:
        """Withdraw a review request (``review_request_removed``)."""
        self._request(repo, number, reviewer, team, "review_request_removed")

    def push(self, repo: str, number: int, *, message: str = "Address review comments",
             ci: bool = True) -> str:
        """Push one commit to the PR's branch (``synchronize``); returns the new head sha."""
        with self._lock:
            pr = self._pr(repo, number)
            at = self._now()
            before = self._view(pr).head_sha
            head = Commit(sha(pr.repo, pr.id, len(pr.commits), at.isoformat()), message,
                          pr.author, at, at, at, before)
            pr.commits.append(head)
            runs = self._start_ci(pr, at) if ci else []
            self.org.index(pr)
            view = self._view(pr)
            self._send("pull_request", hp.pull_request_event(
                self._where(), view, "synchronize", pr.author, before=before, after=head.sha))
            self._announce_runs(pr, runs, "requested")
            return head.sha

    def review(self, repo: str, number: int, reviewer: str, state: str = "APPROVED",
               body: str = "") -> int:
        """Submit a review (``APPROVED``, ``CHANGES_REQUESTED``, ``COMMENTED``); its id."""
        if state not in REVIEW_STATES:
            raise ValueError(f"state must be one of {sorted(REVIEW_STATES)} (got {state!r})")
        with self._lock:
            pr = self._pr(repo, number)
            who = self._account(reviewer)
            at = self._now()
            rec = ReviewRec(self._ids.next(), who, state, at, self._view(pr).head_sha, body)
            pr.reviews.append(rec)
            self._send("pull_request_review", hp.pull_request_review_event(
                self._where(), self._view(pr), rec, "submitted", who))
            return rec.id

    def dismiss(self, repo: str, number: int, review_id: int) -> None:
        """Dismiss a submitted review (its state becomes ``DISMISSED``)."""
        with self._lock:
            pr = self._pr(repo, number)
            rec = next((r for r in pr.reviews if r.id == review_id), None)
            if rec is None:
                raise ValueError(f"{repo}#{number} has no review {review_id}")
            rec.state = "DISMISSED"
            actor = self._team_member(pr.repo)
            # GitHub dates the dismissal (a timeline event): the PR's updated_at moves
            pr.events.append(Event(self._ids.next(), "review_dismissed", self._now(), actor,
                                   review_id=rec.id))
            self._send("pull_request_review", hp.pull_request_review_event(
                self._where(), self._view(pr), rec, "dismissed", actor))

    def label(self, repo: str, number: int, name: str) -> None:
        """Add a label (``labeled``)."""
        with self._lock:
            pr = self._pr(repo, number)
            if name not in pr.labels:
                pr.labels = (*pr.labels, name)
            pr.events.append(Event(self._ids.next(), "labeled", self._now(), pr.author,
                                   label=name))
            self._send("pull_request", hp.pull_request_event(
                self._where(), self._view(pr), "labeled", pr.author,
                label=hp.label(self._where(), pr.repo, name)))

    def close(self, repo: str, number: int, *, merged: bool = False) -> None:
        """Close the PR, merging it first when ``merged`` (``closed``, ``merged`` true)."""
        with self._lock:
            pr = self._pr(repo, number)
            at = self._now()
            actor = pr.author if pr.author.kind == "human" else self._team_member(pr.repo)
            if merged:
                pr.events.append(Event(self._ids.next(), "merged", at, actor,
                                       commit_id=sha(pr.repo, pr.number, "merge")))
            pr.events.append(Event(self._ids.next(), "closed", at, actor))
            self._send("pull_request", hp.pull_request_event(
                self._where(), self._view(pr), "closed", actor))

    def reopen(self, repo: str, number: int) -> None:
        """Reopen a closed (unmerged) PR (``reopened``)."""
        with self._lock:
            pr = self._pr(repo, number)
            if self._view(pr).merged_at is not None:
                raise ValueError(f"{repo}#{number} is merged; a merged PR cannot be reopened")
            self._pr_event(repo, number, "reopened", "reopened")

    # ------------------------------------------------------------------ CI

    def finish_ci(self, repo: str, number: int, conclusion: str = "success") -> int:
        """Complete every queued run on the PR's head with ``conclusion``; how many.

        Sends ``workflow_job``, ``check_run``, ``check_suite`` and ``workflow_run``
        ``completed`` for each.
        """
        if conclusion not in ("success", "failure", "cancelled"):
            raise ValueError(f"conclusion must be success, failure or cancelled "
                             f"(got {conclusion!r})")
        with self._lock:
            pr = self._pr(repo, number)
            at = self._now()
            head = self._view(pr).head_sha
            done = []
            for run in pr.runs:
                attempt = run.attempts[-1]
                if run.head_sha != head or attempt.completed_at <= at:
                    continue
                started = attempt.created_at + (at - attempt.created_at) / 3
                attempt.started_at, attempt.completed_at = started, at
                attempt.conclusion = conclusion
                for job in attempt.jobs:
                    job.started_at, job.completed_at, job.conclusion = started, at, conclusion
                done.append(run)
            self._announce_runs(pr, done, "completed")
            return len(done)

    # ------------------------------------------------------------------ hooks

    def ping(self) -> None:
        """Send the ``ping`` GitHub sends when a hook is created."""
        hook = self.sender.hook
        if hook is None:
            return
        kind = {"repository": "Repository", "organization": "Organization",
                "integration": "App"}[hook.target_type]
        self._send("ping", hp.ping_event(self._where(), hook_id=hook.id, hook_type=kind,
                                         url=hook.url, created=self._now(),
                                         signed=bool(hook.secret)))

    # ------------------------------------------------------------------ internals

    def _pr_event(self, repo: str, number: int, event: str, action: str) -> None:
        with self._lock:
            pr = self._pr(repo, number)
            pr.events.append(Event(self._ids.next(), event, self._now(), pr.author))
            self._send("pull_request", hp.pull_request_event(
                self._where(), self._view(pr), action, pr.author))

    def _request(self, repo: str, number: int, reviewer: str | None, team: str | None,
                 event: str) -> None:
        if (reviewer is None) == (team is None):
            raise ValueError("name a reviewer or a team (one of them)")
        with self._lock:
            pr = self._pr(repo, number)
            who = self._account(reviewer) if reviewer else None
            if team is not None and team not in {t.slug for t in self.org.teams}:
                raise ValueError(f"no team {team!r} in {self.org.name}")
            pr.events.append(Event(self._ids.next(), event, self._now(), pr.author,
                                   reviewer=who, team=team))
            where = self._where()
            extra = ({"requested_reviewer": hp.user(where, who)} if who is not None
                     else {"requested_team": hp.requested_team(where, team or "")})
            self._send("pull_request", hp.pull_request_event(
                where, self._view(pr), event, pr.author, **extra))

    def _start_ci(self, pr: PR, at: datetime) -> list[Run]:
        """A queued run of every workflow of the repository on the PR's new head."""
        runs = []
        head = pr.commits[-1].sha
        for wf in self.org.workflows.get(pr.repo, []):
            key = f"{pr.repo}:{wf.path}"
            self._run_numbers[key] = (self._run_numbers.get(key)
                                      or 1000 + len(self.org.runs_of(pr.repo))) + 1
            created = at
            attempt = Attempt(1, created, created + _PENDING, created + _PENDING, "success")
            for name in _JOBS.get(wf.name, ("lint", "test")):
                attempt.jobs.append(Job(self._ids.next(), name, created, created + _PENDING,
                                        created + _PENDING, "success"))
            run = Run(self._ids.next(), wf, pr.repo, head, pr.head_ref, self._run_numbers[key],
                      pr.number, pr.author, self._ids.next(), attempts=[attempt])
            pr.runs.append(run)
            runs.append(run)
        return runs

    def _announce_runs(self, pr: PR, runs: list[Run], action: str) -> None:
        """GitHub's order: a run is requested before its jobs queue; jobs (and their check
        runs) complete before their suite and run do."""
        if not runs or not self.sender.active:
            return
        where = self._where()
        for run in runs:
            view = self._run_view(run)
            attempt = view.latest
            if action == "requested":
                self._send("workflow_run", hp.workflow_run_event(where, view, action, pr.author))
            for job in attempt.jobs:
                job_action = "queued" if action == "requested" else action
                self._send("workflow_job", hp.workflow_job_event(where, view, attempt, job,
                                                                 job_action, pr.author))
                if action == "completed":
                    self._send("check_run", hp.check_run_event(where, view, attempt, job,
                                                               "completed", pr.author))
            if action == "completed":
                self._send("check_suite", hp.check_suite_event(where, view, "completed",
                                                               pr.author))
                self._send("workflow_run", hp.workflow_run_event(where, view, action, pr.author))

    def _send(self, event: str, payload: hp.Json) -> None:
        self.sender.send(event, payload)

    def _where(self) -> hp.Where:
        return hp.Where(self._api(), self.org)

    def _now(self) -> datetime:
        return self.clock.now()

    def _view(self, pr: PR) -> PRView:
        view = view_pr(pr, max(self._now(), pr.created_at))
        assert view is not None  # a PR exists from its creation on
        return view

    def _run_view(self, run: Run) -> RunView:
        view = view_run(run, max(self._now(), run.created_at))
        assert view is not None  # viewed at or after its creation
        return view

    def _repo(self, repo: str) -> str:
        name = repo.split("/")[-1]
        if name not in self.org.repos:
            raise ValueError(f"no repository {repo!r} in {self.org.name}")
        return name

    def _pr(self, repo: str, number: int) -> PR:
        pr = self.org.pull(self._repo(repo), number)
        if pr is None:
            raise ValueError(f"no pull request {repo}#{number} in {self.org.name}")
        return pr

    def _account(self, login: str | None) -> Account:
        account = self.org.accounts.get(login or "")
        if account is None:
            raise ValueError(f"no account {login!r} in {self.org.name}")
        return account

    def _team_member(self, repo: str) -> Account:
        team = self.org.repos[self._repo(repo)].team
        owner = next((t for t in self.org.teams if t.name == team), self.org.teams[0])
        return owner.members[0]
