"""GitHub webhooks over HTTP, against the Procfile's web command: verified before they are read.

One server (gunicorn, 2 uvicorn workers) for the module, with a webhook secret, Redis real, and
the sandbox GitHub configured as its API: every refusal is checked to have made no GitHub call
(the sandbox counts requests) and queued no job (RQ's queue on the same Redis).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from jobs import work
from jobs.ports import FixedClock
from jobs.sandbox.org import Org, build_org
from jobs.sandbox.server import SandboxServer
from jobs.store import Store
from tests.fakes.slack_api import FakeSlack
from tests.slack_helpers import SECRET
from tests.web_process import WebProcess, procfile_web

HOOK_SECRET = "It's a Secret to Everybody"  # GitHub's documentation's example secret
EXAMPLES: dict[str, dict[str, Any]] = json.loads(
    (Path(__file__).parent / "fixtures" / "webhooks" / "examples.json").read_text())
CONFIG = """
[github]
organisation = "acme"
base_url = "{github}"

[storage]
path = "{data}"
prefix = "{prefix}"

[teams.platform]
members = [{{ github = "bob", slack = "U0BOB0001" }}]
repositories = ["payments-api", "Codertocat/Hello-World"]
channel = "C0PLATFORM"
"""


@dataclass
class Hooked:
    web: WebProcess
    github: SandboxServer
    store: Store
    org: Org
    clock: FixedClock
    config: Path

    def jobs(self) -> list[str]:
        """Descriptions of the jobs waiting on the refresh queue."""
        return [j.description or "" for j in work.queue(self.store, work.REFRESH).get_jobs()]

    def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.web.port, timeout=10)
        try:
            conn.request("POST", "/github/webhook", body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.read().decode()
        finally:
            conn.close()

    def deliver(self, event: str, payload: Any, *, secret: str | None = HOOK_SECRET,
                delivery: str | None = None, body: bytes | None = None) -> tuple[int, str]:
        """POST a delivery as GitHub does (headers, ``sha256=`` HMAC of the raw body)."""
        raw = json.dumps(payload).encode() if body is None else body
        headers = {"Content-Type": "application/json", "X-GitHub-Event": event,
                   "X-GitHub-Delivery": delivery or str(uuid.uuid4()), "X-GitHub-Hook-ID": "7",
                   "X-GitHub-Hook-Installation-Target-Type": "repository",
                   "User-Agent": "GitHub-Hookshot/test"}
        if secret is not None:
            digest = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
            headers["X-Hub-Signature-256"] = f"sha256={digest}"
        return self.post(raw, headers)


@pytest.fixture(scope="module")
def hooked(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hooked]:
    tmp = tmp_path_factory.mktemp("webhooks")
    prefix = f"flowbot-hooks-{os.getpid()}"
    org: Org = build_org(end=datetime(2026, 3, 2, 12, tzinfo=UTC), weeks=1, teams=1, repos_per_team=1)
    clock = FixedClock(datetime(2026, 3, 2, 12, tzinfo=UTC))
    github = SandboxServer(org, clock=clock)
    base = github.start()
    config = tmp / "config.toml"
    config.write_text(CONFIG.format(github=base, data=tmp / "flowbot.rdb", prefix=prefix))
    store = Store.connect(redis_url, prefix=prefix)
    try:
        with FakeSlack() as fake:
            env = {"HOME": str(tmp), "SLACK_SIGNING_SECRET": SECRET, "SLACK_BOT_TOKEN": fake.token,
                   "SLACK_API_URL": fake.api_url, "FLOWBOT_CONFIG": str(config),
                   "GITHUB_TOKEN": github.token, "GITHUB_WEBHOOK_SECRET": HOOK_SECRET,
                   "FLOWBOT_LOG_LEVEL": "INFO", "REDIS_URL": redis_url}
            with procfile_web(env, args=["--workers", "2"]) as web:
                yield Hooked(web, github, store, org, clock, config)
    finally:
        work.purge(store)
        store.flush_prefix()
        store.close()
        github.stop()


@pytest.fixture
def hooks(hooked: Hooked) -> Hooked:
    """The shared server with an empty queue and no delivery remembered."""
    work.purge(hooked.store)
    hooked.store.flush_prefix()
    return hooked


def example(event: str, action: str | None = None) -> dict[str, Any]:
    return EXAMPLES[event if action is None else f"{event}.{action}"]


def _big(hooks: Hooked) -> tuple[int, str]:
    """A delivery announcing 30 MB (over GitHub's 25 MB cap) and sending none of it."""
    conn = http.client.HTTPConnection("127.0.0.1", hooks.web.port, timeout=10)
    try:
        conn.putrequest("POST", "/github/webhook")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("X-GitHub-Event", "pull_request")
        conn.putheader("Content-Length", str(30 * 1024 * 1024))
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def test_refused_deliveries_make_no_github_call_and_queue_no_job(hooks: Hooked) -> None:
    """Unsigned, wrong-secret, 30 MB, malformed JSON and a replayed delivery id are each
    refused (or answered without work), logged in one line, no traceback, no GitHub call and
    no job; only the one valid delivery queues its refresh."""
    pr = example("pull_request", "synchronize")
    calls = len(hooks.github.stats.requests)
    log_before = len(hooks.web.log())
    assert hooks.deliver("pull_request", pr, secret=None) == (401, "unsigned")
    assert hooks.deliver("pull_request", pr, secret="not the secret") == (401, "forged")
    assert _big(hooks) == (413, "too_large")
    status, text = hooks.deliver("pull_request", None, body=b'{"action": "opened", ')
    assert status == 400 and text.startswith("malformed: body is not JSON")
    first = str(uuid.uuid4())
    assert hooks.deliver("pull_request", pr, delivery=first) == (
        202, "queued: Codertocat/Hello-World#2")
    assert hooks.deliver("pull_request", pr, delivery=first) == (200, "already handled")
    assert len(hooks.github.stats.requests) == calls
    assert hooks.jobs() == ["refresh Codertocat/Hello-World#2 (pull_request.synchronize)"]
    log = hooks.web.log()[log_before:]
    assert "Traceback" not in log
    for reason in ("unsigned (401)", "forged (401)", "too_large (413)", "malformed (400)"):
        assert log.count(f"refused a GitHub webhook: {reason}") == 1, log
    assert HOOK_SECRET not in log


def test_ten_events_for_one_pr_queue_one_refresh(hooks: Hooked) -> None:
    """A burst of deliveries about one PR (pushes, a review, a request) queues one refresh;
    the CI events of the repository queue one CI refresh."""
    calls = len(hooks.github.stats.requests)
    events = [("pull_request", "synchronize"), ("pull_request", "review_requested"),
              ("pull_request_review", "submitted")] * 3 + [("pull_request", "synchronize")]
    answers = [hooks.deliver(event, example(event, action)) for event, action in events]
    assert [a[0] for a in answers] == [202] + [200] * 9
    assert {a[1] for a in answers[1:]} == {"coalesced: Codertocat/Hello-World#2"}
    for name in ("check_run.completed", "check_suite.completed", "workflow_job.completed"):
        hooks.deliver(name.split(".")[0], EXAMPLES[name])
    assert sorted(hooks.jobs()) == ["refresh CI of Codertocat/Hello-World (check_run.completed)",
                                    "refresh Codertocat/Hello-World#2 (pull_request.synchronize)"]
    assert len(hooks.github.stats.requests) == calls


def test_a_large_delivery_under_githubs_cap_is_handled(hooks: Hooked) -> None:
    """A 2 MB delivery (a PR with a long body), over Slack's limit but under GitHub's 25 MB
    cap, is read whole, verified and queued."""
    big = {**example("pull_request", "synchronize")}
    big["pull_request"] = {**big["pull_request"], "body": "x" * (2 * 1024 * 1024)}
    assert hooks.deliver("pull_request", big) == (202, "queued: Codertocat/Hello-World#2")


def test_ping_other_events_and_unwatched_repositories_are_answered_without_work(
        hooks: Hooked) -> None:
    """GitHub's ping is answered; an event that moves no clock, or a repository no team
    watches, is acknowledged with the reason and queues nothing."""
    assert hooks.deliver("ping", example("ping")) == (200, "pong")
    status, text = hooks.deliver("pull_request", {**example("pull_request", "opened"),
                                                  "action": "assigned"})
    assert status == 200 and "this action moves no clock" in text
    other = {**example("pull_request", "synchronize"), "repository": {"full_name": "someone/else"}}
    status, text = hooks.deliver("pull_request", other)
    assert status == 200 and "someone/else is not watched by any team" in text
    assert hooks.jobs() == []


def test_the_last_delivery_per_hook_is_kept_for_doctor(hooks: Hooked) -> None:
    """Doctor can say when each hook (or App installation) last delivered, and what came of it,
    and that the last delivery was refused (a wrong secret is the usual cause)."""
    hooks.deliver("pull_request", example("pull_request", "synchronize"))  # an App's (installation 1)
    hooks.deliver("pull_request", example("pull_request", "converted_to_draft"))  # a repository hook's
    hooks.deliver("pull_request", example("pull_request", "synchronize"), secret="wrong")
    seen = hooks.store.webhook_deliveries()
    assert seen["installation 1"]["event"] == "pull_request.synchronize"
    assert seen["installation 1"]["outcome"] == "queued"
    assert seen["repository hook 7"]["outcome"] == "coalesced"
    assert seen["refused"]["outcome"] == "refused: forged"


def test_a_delivery_becomes_a_refreshed_record_read_from_github(hooks: Hooked) -> None:
    """A review submitted on a sandbox PR: the delivery queues its refresh, a worker runs it
    with one GraphQL query, and the PR is stored as GitHub has it; the snapshot follows."""

    repo = hooks.org.full_name("payments-api")
    number = next(p.number for p in hooks.org.prs["payments-api"] if p.reviews)
    payload = {**example("pull_request_review", "submitted"), "repository": {"full_name": repo},
               "pull_request": {"number": number}}
    assert hooks.deliver("pull_request_review", payload) == (202, f"queued: {repo}#{number}")
    posts = hooks.github.stats.count(path="graphql", method="POST")
    _run_queued(hooks)
    pr = hooks.store.get_pr(repo, number)
    assert pr is not None and pr.reviews
    assert hooks.github.stats.count(path="graphql", method="POST") - posts == 1
    assert hooks.store.get_snapshot_head("platform") is not None


def test_the_sandboxs_signed_deliveries_become_records(hooks: Hooked) -> None:
    """The sandbox organisation sends its webhooks (signed, GitHub's headers) as a PR opens and
    is approved: every delivery is accepted, the PR's refreshes coalesce into one job, and the
    worker stores the PR with its approval, as GitHub shows it."""

    hooks.github.send_webhooks_to(hooks.web.url + "/github/webhook", secret=HOOK_SECRET,
                                  target="integration")
    try:
        number = hooks.github.changes.open_pr("payments-api", ci=False)
        reviewer = hooks.org.teams[0].members[1].login  # the PR's author is the first member
        hooks.github.changes.review("payments-api", number, reviewer, "APPROVED")
        assert hooks.github.webhooks.flush()
    finally:
        hooks.github.webhooks.configure(None)
    sent = hooks.github.webhooks.deliveries
    assert sent and all(d.statuses and d.delivered for d in sent), [d.statuses for d in sent]
    repo = hooks.org.full_name("payments-api")
    assert hooks.jobs() == [f"refresh {repo}#{number} (pull_request.opened)"]
    assert hooks.store.webhook_deliveries()["installation 4242"]["outcome"] == "coalesced"
    _run_queued(hooks)
    pr = hooks.store.get_pr(repo, number)
    assert pr is not None and [(r.author, r.state) for r in pr.reviews] == [(reviewer, "APPROVED")]


def _run_queued(hooks: Hooked) -> None:
    """Run the queued jobs in this process, as a worker reading the sandbox would."""
    from bot.config import load
    from jobs.github.client import connect

    settings = load(hooks.config, env={"GITHUB_TOKEN": hooks.github.token,
                                       "SLACK_BOT_TOKEN": "xoxb-unused"})
    work.install(work.Context(settings, hooks.store, hooks.clock,
                              connect=lambda: connect(settings, clock=hooks.clock)))
    try:
        assert work.run_burst(hooks.store)
    finally:
        work.install(None)
