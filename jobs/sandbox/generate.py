"""Generates one team's PR history: arrivals, drafts, requests, a reviewer queue, reviews, CI.

The built-in bottleneck: AI-assisted arrivals rise week over week while every reviewer's
capacity stays flat, and one reviewer per team (``TeamDef.hot_reviewer``) is asked on most PRs.
First reviews go through a FIFO queue per reviewer, so pickup wait grows until it dominates lead
time. Follow-up rounds, CI and merges are drawn from fixed distributions.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from jobs.sandbox.records import (
    GHOST,
    PR,
    Account,
    Attempt,
    Commit,
    Event,
    Job,
    ReviewRec,
    Run,
    TeamDef,
    Workflow,
)
from jobs.sandbox.workclock import DAY_HOURS, WorkClock

DEPENDABOT = Account("dependabot[bot]", 49699333, "Bot", "bot")
RENOVATE = Account("renovate[bot]", 29139614, "Bot", "bot")
AI_REVIEWER = Account("coderabbitai[bot]", 136622811, "Bot", "ai")
AI_AGENT = Account("copilot-swe-agent[bot]", 198982749, "Bot", "ai")
CLAUDE_TRAILER = "Co-authored-by: Claude <noreply@anthropic.com>"
FLAKY_WORKFLOW = "E2E"

_TOPICS = (
    "retry logic", "rate limiter", "webhook handler", "invoice export", "login flow",
    "cache layer", "metrics endpoint", "settings page", "push notifications", "search index",
    "audit log", "feature flags", "CSV import", "timezone handling", "pagination",
)
_VERBS = ("Add", "Fix", "Refactor", "Speed up", "Simplify", "Harden", "Document", "Remove")
_DEPS = ("requests", "urllib3", "pydantic", "react", "lodash", "boto3", "grpcio", "axios")


@dataclass
class Ids:
    """Deterministic id sequences of one team (disjoint ranges per team)."""

    base: int
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def next(self) -> int:
        return self.base + int(next(self.counter))


@dataclass
class _Pending:
    """A PR waiting for its first human review, in the reviewer-queue phase."""

    pr: PR
    clock_at: float  # work hours of the (first) review request
    reviewer: Account
    owner: Account  # the human behind the PR (the agent's assigner for agent PRs)
    week: int


def sha(*parts: object) -> str:
    """A stable 40-hex commit sha."""
    return hashlib.sha1(":".join(map(str, parts)).encode()).hexdigest()


class TeamGenerator:
    """Builds every PR of one team's repositories between ``start`` and ``end``."""

    def __init__(
        self,
        *,
        org: str,
        team: TeamDef,
        workflows: dict[str, list[Workflow]],
        rng: random.Random,
        ids: Ids,
        start: datetime,
        end: datetime,
        weeks: int,
        scale: float,
        former_member: bool,
        long_prs: int = 0,
    ) -> None:
        self.org, self.team, self.workflows, self.rng, self.ids = org, team, workflows, rng, ids
        self.start, self.end, self.weeks, self.scale = start, end, weeks, scale
        self.clock = WorkClock(team.timezone)
        self.former_member = former_member
        self.long_prs = long_prs
        self.humans = [m for m in team.members if m.kind == "human"]
        self.hot = next(m for m in self.humans if m.login == team.hot_reviewer)
        self.run_numbers: dict[str, int] = {}
        self.prs: dict[str, list[PR]] = {r: [] for r in team.repos}

    # ------------------------------------------------------------------ public

    def generate(self) -> dict[str, list[PR]]:
        """All PRs per repository name, numbered in creation order."""
        pending: list[_Pending] = []
        w0 = self.clock.to_work(self.start)
        for week in range(self.weeks):
            progress = week / max(self.weeks - 1, 1)
            for repo in self.team.repos:
                human = self._poisson(2.5 * self.scale)
                assisted = self._poisson((0.5 + 5.0 * progress) * self.scale)
                kinds = ["human"] * human + ["assisted"] * assisted
                for kind in kinds:
                    at = w0 + (week + self.rng.random()) * 5 * DAY_HOURS
                    if kind == "assisted" and self.rng.random() < 0.15:
                        kind = "agent"
                    pending.append(self._open(repo, kind, at, week))
                if self.rng.random() < 0.7 * min(self.scale, 1.0):
                    self._bot_pr(repo, DEPENDABOT, week)
                if repo == self.team.repos[0] and self.rng.random() < 0.5 * min(self.scale, 1.0):
                    self._bot_pr(repo, RENOVATE, week)
        self._review_queues(pending)
        for i in range(self.long_prs):
            (self._long_reviews, self._long_commits, self._long_requests)[i % 3](i)
        return self._finish()

    def _poisson(self, mean: float) -> int:
        """Knuth's method: fine for the small means of weekly arrivals per repository."""
        if mean > 30:
            return max(0, round(self.rng.gauss(mean, mean**0.5)))
        limit, k, p = pow(2.718281828459045, -mean), 0, self.rng.random()
        while p > limit:
            k += 1
            p *= self.rng.random()
        return k

    # ------------------------------------------------------------------ phase 1: open

    def _open(self, repo: str, kind: str, at_work: float, week: int) -> _Pending:
        rng, clock = self.rng, self.clock
        owner = self._author(week)
        author = AI_AGENT if kind == "agent" else owner
        created = clock.from_work(at_work)
        assisted = kind != "human"
        big = 2.5 if assisted else 1.0
        additions = int(rng.lognormvariate(4.3, 1.0) * big) + 1
        labels: tuple[str, ...] = ()
        trailer = ""
        if kind == "assisted":
            if rng.random() < 0.5:
                labels = ("ai-assisted",)
            else:
                trailer = CLAUDE_TRAILER
        elif kind == "agent":
            trailer = f"Co-authored-by: {owner.login} <{owner.email}>"
        if rng.random() < 0.3:
            labels += (rng.choice(("bug", "enhancement", "chore")),)
        pr = self._new_pr(repo, author, created, labels, additions, assisted)
        pr.opened_as_draft = kind == "agent" or rng.random() < 0.2
        first = clock.add(created, -rng.uniform(0.5, 6))
        n = rng.randint(1, 3)
        for i in range(n):
            authored = first + (created - first) * (i / n)
            msg = f"{pr.title} (part {i + 1})" if n > 1 else pr.title
            if trailer and i == n - 1:
                msg += f"\n\n{trailer}"
            self._commit(pr, msg, author, authored, created)
        self._ci(pr, created)
        ready = created
        if pr.opened_as_draft:
            ready = clock.add(created, rng.uniform(1, 6))
            self._commit(pr, "Address self-review", author, clock.add(ready, -0.5), ready)
            self._ci(pr, ready)
            self._event(pr, "ready_for_review", ready, owner)
        request = ready + timedelta(minutes=rng.uniform(1, 10))
        reviewer = self._reviewer(owner, week)
        if rng.random() < 0.25:
            self._event(pr, "review_requested", request, owner, team=self.team.slug)
        else:
            self._event(pr, "review_requested", request, owner, reviewer=reviewer)
        return _Pending(pr, clock.to_work(request), reviewer, owner, week)

    def _author(self, week: int) -> Account:
        if self.former_member and week < 2 and self.rng.random() < 0.2:
            return GHOST
        return self.rng.choice(self.humans)

    def _reviewer(self, owner: Account, week: int) -> Account:
        others = [m for m in self.humans if m.login != owner.login]
        if owner.login != self.hot.login and self.rng.random() < 0.7:
            return self.hot
        if self.former_member and week < 2 and self.rng.random() < 0.25:
            return GHOST
        return self.rng.choice([m for m in others if m.login != self.hot.login] or others)

    # ------------------------------------------------------------------ phase 2: queue

    def _review_queues(self, pending: list[_Pending]) -> None:
        """FIFO first reviews per reviewer at a flat capacity; everything after follows."""
        free: dict[str, float] = {}
        for item in sorted(pending, key=lambda p: p.clock_at):
            login = item.reviewer.login
            per_day = 1.7 if login == self.hot.login else 2.5
            delay = self.rng.uniform(0.3, 3.0)  # an idle reviewer answers within hours
            spacing = self.rng.uniform(0.7, 1.3) * DAY_HOURS / (per_day * self.scale)
            done = max(item.clock_at + delay, free.get(login, 0.0))
            free[login] = done + spacing  # flat capacity: per_day first reviews at most
            self._after_first_review(item, self.clock.from_work(done))

    # ------------------------------------------------------------------ phase 3: rounds

    def _after_first_review(self, item: _Pending, reviewed: datetime) -> None:
        rng, clock, pr = self.rng, self.clock, item.pr
        reviewer = item.reviewer
        ready = pr.events[0].at if pr.opened_as_draft else pr.created_at
        progress = item.week / max(self.weeks - 1, 1)
        if rng.random() < 0.3 + 0.6 * progress:
            at = ready + timedelta(minutes=rng.uniform(2, 8))
            self._review(pr, AI_REVIEWER, "COMMENTED", at, "Walkthrough: 3 suggestions.")
        if rng.random() < 0.15:
            second = rng.choice([m for m in self.humans if m.login != item.owner.login])
            at = ready + timedelta(minutes=rng.uniform(10, 60))
            self._event(pr, "review_requested", at, item.owner, reviewer=second)
            if rng.random() < 0.3:
                removed = clock.add(at, 1)
                self._event(pr, "review_request_removed", removed, item.owner, reviewer=second)
            else:
                self._review(pr, second, "COMMENTED", clock.add(reviewed, rng.uniform(0, 6)))
        state = rng.choices(("APPROVED", "CHANGES_REQUESTED", "COMMENTED"), (55, 30, 15))[0]
        at = reviewed
        self._review(pr, reviewer, state, at)
        rounds = 1
        while state != "APPROVED":
            redraft = rng.random() < 0.07
            if redraft:
                self._event(pr, "convert_to_draft", at + timedelta(minutes=12), item.owner)
            pushed = clock.add(at, rng.uniform(1, 8))
            self._push(pr, pushed, force=rng.random() < 0.3)
            if redraft:
                self._event(pr, "ready_for_review", pushed + timedelta(minutes=3), item.owner)
            request = pushed + timedelta(minutes=rng.uniform(2, 20))
            self._event(pr, "review_requested", request, item.owner, reviewer=reviewer)
            at = clock.add(request, rng.uniform(0.3, 4))
            rounds += 1
            state = "APPROVED" if rounds >= 3 or rng.random() < 0.8 else "CHANGES_REQUESTED"
            self._review(pr, reviewer, state, at)
        self._merge(pr, at, item.owner)

    def _merge(self, pr: PR, approved: datetime, owner: Account) -> None:
        rng = self.rng
        green = max(a.completed_at for r in pr.runs if r.head_sha == pr.commits[-1].sha
                    for a in r.attempts[-1:])
        at = max(self.clock.add(approved, rng.uniform(0.1, 4)),
                 green + timedelta(minutes=rng.uniform(2, 30)))
        actor = owner if owner.kind == "human" else self.hot
        if rng.random() < 0.04:
            self._event(pr, "closed", at, actor)
            return
        merge_sha = sha(pr.repo, pr.number, "merge")
        self._event(pr, "merged", at, actor, commit_id=merge_sha)
        self._event(pr, "closed", at, actor)

    # ------------------------------------------------------------------ long PRs

    def _long_start(self, i: int) -> tuple[datetime, Account, Account, Account]:
        """When the ``i``-th long PR opens (spread over the second half of the history), its
        author, its reviewer and a second reviewer."""
        span = self.weeks * 5 * DAY_HOURS
        at = self.clock.from_work(self.clock.to_work(self.start) + span * (0.45 + 0.07 * i))
        others = [m for m in self.humans if m.login != self.hot.login]
        author = others[i % len(others)]
        second = next(m for m in others if m.login != author.login)
        return at, author, self.hot, second

    def _long_reviews(self, i: int) -> None:
        """Hundreds of inline review comments: every reply in a review thread is a
        ``PullRequestReview`` (COMMENTED); the approval comes after more than 300 of them."""
        created, author, reviewer, second = self._long_start(i)
        repo = self.team.repos[0]
        pr = self._new_pr(repo, author, created, ("refactor",), 2400, False)
        pr.title = "Rewrite the billing engine"
        for k in range(3):
            self._commit(pr, f"Billing engine, part {k + 1}", author,
                         created - timedelta(hours=3 - k), created)
        self._ci(pr, created)
        self._event(pr, "review_requested", created + timedelta(minutes=5), author,
                    reviewer=reviewer)
        at = self.clock.add(created, 2)
        for k in range(160):  # a long first pass, comment by comment
            self._review(pr, reviewer, "COMMENTED", at + timedelta(minutes=k), f"nit {k}")
        pushed = self.clock.add(at, 3)
        self._push(pr, pushed, force=False)
        self._event(pr, "review_requested", pushed + timedelta(minutes=5), author, reviewer=second)
        at = self.clock.add(pushed, 1)
        for k in range(150):  # the thread goes on, both reviewers replying
            who = second if k % 2 else reviewer
            self._review(pr, who, "COMMENTED", at + timedelta(minutes=k), f"reply {k}")
        pushed = self.clock.add(at, 4)
        self._push(pr, pushed, force=False)
        self._event(pr, "review_requested", pushed + timedelta(minutes=5), author,
                    reviewer=reviewer)
        approved = self.clock.add(pushed, 2)
        self._review(pr, reviewer, "APPROVED", approved)
        self._review(pr, second, "APPROVED", approved + timedelta(minutes=20))
        self._merge(pr, approved + timedelta(minutes=20), author)

    def _long_commits(self, i: int) -> None:
        """A long-lived branch: 260 commits when opened, 30 more pushed after changes were
        requested (GitHub's REST PR commits listing stops at 250); still open, waiting for
        the reviewer to look at the fixes."""
        created, author, reviewer, _ = self._long_start(i)
        repo = self.team.repos[0]
        pr = self._new_pr(repo, author, created, (), 5200, False)
        pr.title = "Merge the long-lived v2 branch"
        first = created - timedelta(days=20)
        for k in range(260):
            self._commit(pr, f"v2: step {k + 1}", author, first + timedelta(hours=k * 1.8),
                         created)
        self._ci(pr, created)
        self._event(pr, "review_requested", created + timedelta(minutes=3), author,
                    reviewer=reviewer)
        at = self.clock.add(created, 3)
        self._review(pr, reviewer, "CHANGES_REQUESTED", at)
        for burst in range(3):
            pushed = self.clock.add(at, 1 + burst)
            for k in range(10):
                self._commit(pr, f"v2: review fix {burst * 10 + k + 1}", author,
                             pushed - timedelta(minutes=30 - k), pushed)
            self._ci(pr, pushed)

    def _long_requests(self, i: int) -> None:
        """A reassignment loop: 60 rounds of request-then-remove over a week, then a request
        that is still waiting (the PR stays open in the reviewer's turn)."""
        created, author, reviewer, second = self._long_start(i)
        repo = self.team.repos[0]
        pr = self._new_pr(repo, author, created, (), 150, False)
        pr.title = "Who owns the rate limiter?"
        self._commit(pr, pr.title, author, created - timedelta(hours=1), created)
        self._ci(pr, created)
        at = created + timedelta(minutes=5)
        for k in range(60):
            who = second if k % 2 else reviewer
            self._event(pr, "review_requested", at, author, reviewer=who)
            self._event(pr, "review_request_removed", at + timedelta(minutes=30), author,
                        reviewer=who)
            at = self.clock.add(at, 0.6)
        self._event(pr, "review_requested", at, author, reviewer=reviewer)

    # ------------------------------------------------------------------ bots

    def _bot_pr(self, repo: str, bot: Account, week: int) -> None:
        rng, clock = self.rng, self.clock
        monday = clock.from_work(clock.to_work(self.start) + week * 5 * DAY_HOURS)
        created = monday + timedelta(hours=rng.uniform(-4, 0))
        dep = rng.choice(_DEPS)
        title = f"Bump {dep} from 1.{week}.0 to 1.{week + 1}.0"
        pr = self._new_pr(repo, bot, created, ("dependencies",), rng.randint(2, 40), False)
        pr.title = title
        self._commit(pr, title, bot, created, created)
        self._ci(pr, created)
        request = created + timedelta(seconds=30)
        self._event(pr, "review_requested", request, bot, team=self.team.slug)
        if rng.random() < 0.15:
            return  # stale: nobody looks at it
        others = [m for m in self.humans if m.login != self.hot.login]
        reviewer = rng.choice(others)
        at = clock.add(request, rng.uniform(2, 30))
        self._review(pr, reviewer, "APPROVED", at)
        self._merge(pr, at, reviewer)

    # ------------------------------------------------------------------ building blocks

    def _new_pr(self, repo: str, author: Account, created: datetime, labels: tuple[str, ...],
                additions: int, assisted: bool) -> PR:
        rng = self.rng
        title = f"{rng.choice(_VERBS)} {rng.choice(_TOPICS)}"
        pid = self.ids.next()
        pr = PR(
            repo=repo, number=0, id=pid, title=title, body=f"{title}.\n\nPart of the roadmap.",
            author=author, created_at=created, opened_as_draft=False,
            head_ref=f"{author.login.removesuffix('[bot]')}/{pid}", base_ref="main",
            additions=additions, deletions=int(additions * rng.uniform(0.1, 0.8)),
            changed_files=max(1, additions // 40 + rng.randint(0, 3)), labels=labels,
            team=self.team.name, ai_assisted=assisted, base_sha=sha(repo, "base", pid),
        )
        self.prs[repo].append(pr)
        return pr

    def _commit(self, pr: PR, message: str, author: Account | None, authored: datetime,
                pushed: datetime) -> Commit:
        parent = pr.commits[-1].sha if pr.commits else pr.base_sha
        commit = Commit(sha(pr.repo, pr.id, len(pr.commits)), message, author, authored,
                        authored, pushed, parent)
        pr.commits.append(commit)
        return commit

    def _push(self, pr: PR, at: datetime, *, force: bool) -> None:
        author = pr.commits[-1].author
        if force:
            before = pr.commits[-1]
            before.dropped_at = at
            commit = self._commit(pr, before.message + " (amended)", author,
                                  at - timedelta(minutes=5), at)
            commit.parent = before.parent
            self._event(pr, "head_ref_force_pushed", at, author, before_sha=before.sha,
                        after_sha=commit.sha)
        else:
            self._commit(pr, "Address review comments", author, at - timedelta(minutes=5), at)
        self._ci(pr, at)

    def _event(self, pr: PR, kind: str, at: datetime, actor: Account | None,
               **extra: object) -> None:
        pr.events.append(Event(self.ids.next(), kind, at, actor, **extra))  # type: ignore[arg-type]

    def _review(self, pr: PR, author: Account, state: str, at: datetime, body: str = "") -> None:
        head = [c for c in pr.commits if c.pushed_at <= at and (c.dropped_at is None
                or c.dropped_at > at)]
        who = None if author is GHOST else author
        pr.reviews.append(ReviewRec(self.ids.next(), who, state, at, head[-1].sha, body))

    def _ci(self, pr: PR, pushed: datetime) -> None:
        """Every workflow of the repo runs on the new head; failures are rerun."""
        rng = self.rng
        head = pr.commits[-1].sha
        for wf in self.workflows[pr.repo]:
            slow = wf.name == FLAKY_WORKFLOW
            self.run_numbers[wf.path + pr.repo] = self.run_numbers.get(wf.path + pr.repo, 0) + 1
            run = Run(self.ids.next(), wf, pr.repo, head, pr.head_ref,
                      self.run_numbers[wf.path + pr.repo], pr.number, pr.author,
                      self.ids.next())
            created = pushed + timedelta(seconds=rng.uniform(3, 20))
            fail_p = 0.22 if slow else 0.05
            for number in (1, 2, 3):
                queue = rng.uniform(3, 20) if slow else rng.uniform(0.2, 2)
                took = rng.uniform(25, 45) if slow else rng.uniform(4, 9)
                started = created + timedelta(minutes=queue)
                completed = started + timedelta(minutes=took)
                failed = number < 3 and rng.random() < fail_p
                conclusion = "failure" if failed else "success"
                attempt = Attempt(number, created, started, completed, conclusion)
                names = ("e2e",) if slow else ("lint", "test")
                for name in names:
                    attempt.jobs.append(Job(self.ids.next(), name, created, started, completed,
                                            conclusion))
                run.attempts.append(attempt)
                if not failed:
                    break
                created = completed + timedelta(minutes=rng.uniform(5, 60))
            pr.runs.append(run)

    # ------------------------------------------------------------------ cut and number

    def _finish(self) -> dict[str, list[PR]]:
        """Number PRs by creation and drop whatever happens after ``end``."""
        end = self.end
        out: dict[str, list[PR]] = {}
        for repo, prs in self.prs.items():
            kept = sorted((p for p in prs if p.created_at <= end), key=lambda p: p.created_at)
            for number, pr in enumerate(kept, start=1):
                pr.number = number
                pr.commits = [c for c in pr.commits if c.pushed_at <= end]
                pr.events = sorted((e for e in pr.events if e.at <= end), key=lambda e: e.at)
                pr.reviews = sorted((r for r in pr.reviews if r.submitted_at <= end),
                                    key=lambda r: r.submitted_at)
                runs = []
                for run in pr.runs:
                    run.pr_number = number
                    run.attempts = [a for a in run.attempts if a.created_at <= end]
                    if run.attempts:
                        runs.append(run)
                pr.runs = runs
            out[repo] = kept
        return out

