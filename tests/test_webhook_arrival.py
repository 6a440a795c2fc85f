"""A change in the sandbox GitHub reaches `/flow queue` through the webhook: end to end.

The sandbox delivers its signed webhook to the real web app (``bot.web``, in process on
loopback), which verifies it and queues the refresh on the work queue (RQ on the test's Redis);
the queued jobs run here (``jobs.work.run_burst``: the refresh reads the sandbox with
PyGithub, the team's snapshot follows); a signed `/flow queue` through the same web app then
shows the change. No sample runs: the webhook alone brings the news.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from bot.app import BotDeps
from bot.config import from_mapping
from bot.web import build_web
from jobs import work
from jobs.github.client import connect
from jobs.ports import FixedClock
from jobs.sandbox import Org, SandboxServer, build_org
from jobs.scheduler import Pipeline
from jobs.store import Store
from tests.fakes.slack_api import FakeSlack, iter_blocks_text
from tests.slack_helpers import SECRET, post, serve, signed_headers, slash_body
from tests.test_work import Kept

END = datetime(2026, 3, 2, 11, 0, tzinfo=UTC)  # a Monday morning
HOOK_SECRET = "sandbox-to-web-secret"  # a test value, not a credential


@dataclass
class Rig:
    org: Org
    sandbox: SandboxServer
    clock: FixedClock
    url: str
    lead: str

    def flow_queue(self) -> str:
        """`/flow queue` for the first team, signed as Slack signs it: what it answers."""
        team = self.org.teams[0].name
        body = slash_body(f"queue {team}", user=self.lead, channel=self.org.teams[0].channel)
        answer = post(self.url + "/slack/events", body, signed_headers(body, self.clock))
        assert answer.status == 200
        payload = answer.json()
        return "\n".join([payload.get("text", ""), *iter_blocks_text(payload.get("blocks", []))])


@pytest.fixture
def rig(store: Store, fake_slack: FakeSlack) -> Iterator[Rig]:
    org = build_org(end=END, weeks=1, teams=1, repos_per_team=1)
    clock = FixedClock(END)
    with SandboxServer(org, clock=clock) as sandbox:
        settings = from_mapping(org.config(sandbox.base_url), source="test", env={
            "GITHUB_TOKEN": sandbox.token, "GITHUB_WEBHOOK_SECRET": HOOK_SECRET})
        pipeline = Pipeline.from_settings(settings, store, Kept(), clock=clock)
        work.install(work.Context(settings, store, clock, pipeline=pipeline, connect=lambda: connect(
            settings, sleep=lambda _s: None, clock=clock, seconds_between_requests=0,
            seconds_between_writes=0)))
        deps = BotDeps(settings=settings, store=store, clock=clock)
        app = build_web(deps, signing_secret=SECRET, client=fake_slack.client())
        try:
            with serve(app) as url:
                sandbox.send_webhooks_to(f"{url}/github/webhook", secret=HOOK_SECRET)
                yield Rig(org, sandbox, clock, url, org.teams[0].leads[0])
        finally:
            work.install(None)
            work.purge(store)


def test_a_pr_opened_in_the_sandbox_shows_in_flow_queue_through_the_webhook(
    rig: Rig, store: Store
) -> None:
    """Opened, then approved, in the sandbox: each webhook is accepted and queued, and after
    the queued work runs `/flow queue` lists the PR, then shows it approved."""
    repo = rig.org.teams[0].repos[0]
    reviewer = rig.org.teams[0].members[1].login
    number = rig.sandbox.changes.open_pr(repo, rig.org.teams[0].members[2].login,
                                         title="Webhook-borne change", ci=False)
    assert rig.sandbox.webhooks.flush()
    delivery = rig.sandbox.webhooks.deliveries[-1]
    assert delivery.statuses == [202]
    mark = f"{rig.org.full_name(repo)}#{number} Webhook-borne change"
    assert mark not in rig.flow_queue()  # nothing has run yet: the answer is the old snapshot
    assert work.run_burst(store)
    line = next(x for x in rig.flow_queue().splitlines() if mark in x)
    assert "reviewer's turn" in line

    rig.sandbox.changes.review(repo, number, reviewer, "APPROVED")
    assert rig.sandbox.webhooks.flush()
    assert rig.sandbox.webhooks.deliveries[-1].statuses == [202]
    assert work.run_burst(store)
    line = next(x for x in rig.flow_queue().splitlines() if mark in x)
    assert "approved, waiting to merge" in line
    assert rig.sandbox.stats.count(path="/graphql") >= 2  # each refresh read GitHub
    # every queued job (the refreshes, the snapshot and alerts that follow) ran and succeeded
    assert [(d.failed, d.scheduled) for d in work.depths(store)] == [(0, 0)] * len(work.QUEUES)
