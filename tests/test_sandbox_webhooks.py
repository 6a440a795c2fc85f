"""The sandbox's webhooks: its organisation's changes delivered as GitHub delivers them.

Signed and headed like GitHub's deliveries, shaped like GitHub's published examples (npm
``@octokit/webhooks-examples``) and valid under its published schemas
(``@octokit/webhooks-schemas``), vendored in tests/fixtures/webhooks; sent from a background
thread; dropped, delayed, duplicated and reordered on request, seeded.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests

from jobs.ports import FixedClock
from jobs.sandbox import Org, SandboxServer, build_org
from jobs.sandbox.webhooks import Hook, HookFaults, signature
from tests.fakes.hook_receiver import HookReceiver, Received
from tests.spec.validate import validate_response

END = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)  # a Friday afternoon
FIXTURES = Path(__file__).parent / "fixtures" / "webhooks"
SECRET = "sandbox-hook-secret"  # a test value, not a credential


@pytest.fixture
def org() -> Org:
    """A small org of the test's own (changes add to it)."""
    return build_org(seed=3, end=END, weeks=1, teams=1, repos_per_team=1)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(END)


@pytest.fixture
def receiver() -> Iterator[HookReceiver]:
    r = HookReceiver()
    yield r
    r.close()


@pytest.fixture
def server(org: Org, clock: FixedClock) -> Iterator[SandboxServer]:
    with SandboxServer(org, clock=clock) as srv:
        yield srv


@cache
def _schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "schema.json").read_text())
    return data


@cache
def _examples() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "examples.json").read_text())
    return data


def _schema_errors(received: Received) -> list[str]:
    payload = received.json()
    name = f"{received.event}${payload.get('action') or 'event'}"
    schema = {"$ref": f"#/definitions/{name}", "definitions": _schema()["definitions"]}
    return [f"{name} at {list(e.absolute_path)}: {e.message[:200]}"
            for e in jsonschema.Draft7Validator(schema).iter_errors(payload)]


def _life_of_a_pr(server: SandboxServer, clock: FixedClock) -> tuple[str, int]:
    """Every kind of change, on one PR; returns its repository and number."""
    org, changes = server.org, server.changes
    team = org.teams[0]
    repo, reviewer = team.repos[0], team.members[1].login
    number = changes.open_pr(repo, team.members[2].login, title="Add <!channel> export",
                             draft=True)
    clock.advance(timedelta(minutes=5))
    changes.ready(repo, number)
    changes.request_review(repo, number, reviewer)
    changes.request_review(repo, number, team.members[3].login)
    changes.remove_request(repo, number, team.members[3].login)
    changes.request_review(repo, number, team=team.slug)
    changes.remove_request(repo, number, team=team.slug)
    changes.label(repo, number, "ai-assisted")
    changes.finish_ci(repo, number, "failure")
    clock.advance(timedelta(minutes=20))
    review = changes.review(repo, number, reviewer, "CHANGES_REQUESTED")
    changes.push(repo, number)
    changes.dismiss(repo, number, review)
    changes.to_draft(repo, number)
    changes.ready(repo, number)
    changes.finish_ci(repo, number)
    changes.review(repo, number, reviewer, "APPROVED")
    changes.close(repo, number)
    changes.reopen(repo, number)
    changes.close(repo, number, merged=True)
    assert server.webhooks.flush()
    return repo, number


_CI_STARTS = ["workflow_run.requested", "workflow_job.queued", "workflow_job.queued",
              "workflow_run.requested", "workflow_job.queued"]
_CI_ENDS = ["workflow_job.completed", "check_run.completed", "workflow_job.completed",
            "check_run.completed", "check_suite.completed", "workflow_run.completed",
            "workflow_job.completed", "check_run.completed", "check_suite.completed",
            "workflow_run.completed"]


def test_each_change_is_delivered_as_the_events_github_sends(
    server: SandboxServer, clock: FixedClock, receiver: HookReceiver
) -> None:
    """Opening, readying, requesting, labelling, CI, reviews, pushes, drafts, closing, merging
    and reopening a PR each arrive as GitHub's events, in order."""
    server.send_webhooks_to(receiver.url, secret=SECRET)
    _life_of_a_pr(server, clock)
    assert receiver.kinds() == [
        "pull_request.opened", *_CI_STARTS, "pull_request.ready_for_review",
        "pull_request.review_requested", "pull_request.review_requested",
        "pull_request.review_request_removed", "pull_request.review_requested",
        "pull_request.review_request_removed", "pull_request.labeled", *_CI_ENDS,
        "pull_request_review.submitted", "pull_request.synchronize", *_CI_STARTS,
        "pull_request_review.dismissed", "pull_request.converted_to_draft",
        "pull_request.ready_for_review", *_CI_ENDS, "pull_request_review.submitted",
        "pull_request.closed", "pull_request.reopened", "pull_request.closed",
    ]
    last = receiver.received[-1].json()
    assert last["pull_request"]["merged"] is True
    assert receiver.received[-3].json()["pull_request"]["merged"] is False


def test_deliveries_are_signed_and_headed_like_githubs(
    server: SandboxServer, clock: FixedClock, receiver: HookReceiver
) -> None:
    """Every delivery carries X-Hub-Signature-256 over its raw body with the hook's secret,
    a fresh X-GitHub-Delivery GUID, the hook's id and installation target, Hookshot's
    User-Agent and a JSON content type; the secret itself never travels."""
    hook = server.send_webhooks_to(receiver.url, secret=SECRET)
    _life_of_a_pr(server, clock)
    assert receiver.received
    for r in receiver.received:
        expected = "sha256=" + hmac.new(SECRET.encode(), r.body, hashlib.sha256).hexdigest()
        assert r.headers["X-Hub-Signature-256"] == expected
        assert r.headers["X-GitHub-Hook-ID"] == str(hook.id)
        assert r.headers["X-GitHub-Hook-Installation-Target-Type"] == "organization"
        assert r.headers["X-GitHub-Hook-Installation-Target-ID"] == str(server.org.owner_id)
        assert r.headers["User-Agent"].startswith("GitHub-Hookshot/")
        assert r.headers["Content-Type"] == "application/json"
        assert SECRET not in r.body.decode() and SECRET not in json.dumps(r.headers)
    guids = [r.guid for r in receiver.received]
    assert len(set(guids)) == len(guids)
    assert all(len(g) == 36 and g.count("-") == 4 for g in guids)
    assert SECRET not in repr(hook)


def test_payloads_validate_against_githubs_published_schemas(
    server: SandboxServer, clock: FixedClock, receiver: HookReceiver
) -> None:
    """Every payload validates against @octokit/webhooks-schemas for its event and action,
    the ping too."""
    server.send_webhooks_to(receiver.url, secret=SECRET)
    server.changes.ping()
    _life_of_a_pr(server, clock)
    problems = [p for r in receiver.received for p in _schema_errors(r)]
    assert problems == []
    assert len({r.kind for r in receiver.received}) == len(_examples())


def _missing(example: Any, ours: Any, depth: int, prefix: str = "") -> list[str]:
    """Key paths of ``example``'s objects (``depth`` levels, not into lists) absent from
    ``ours``; below a key that is null in either, nothing is compared (a nullable object)."""
    if not isinstance(example, dict) or not isinstance(ours, dict) or depth == 0:
        return []
    out = []
    for k, v in example.items():
        if k not in ours:
            out.append(prefix + k)
        else:
            out += _missing(v, ours[k], depth - 1, f"{prefix}{k}.")
    return out


def test_payloads_have_the_shape_of_githubs_published_examples(
    server: SandboxServer, clock: FixedClock, receiver: HookReceiver
) -> None:
    """Every key GitHub's example payload has (three levels deep) is in the sandbox's payload
    of the same event and action; ``installation`` comes with an App's hook only."""
    server.send_webhooks_to(receiver.url, secret=SECRET)
    server.changes.ping()
    _life_of_a_pr(server, clock)
    ours = {r.kind: r.json() for r in reversed(receiver.received)}  # the first of each kind
    missing = {}
    for kind, example in _examples().items():
        example = {k: v for k, v in example.items() if k != "installation"}
        if gap := _missing(example, ours[kind], 3):
            missing[kind] = gap
    assert missing == {}, json.dumps(missing, indent=1)
    assert all("installation" not in r.json() for r in receiver.received)


def test_an_apps_hook_names_the_installation(
    server: SandboxServer, clock: FixedClock, receiver: HookReceiver
) -> None:
    """A GitHub App's hook: target type ``integration`` and each payload's ``installation``
    naming the installation, still valid under the schemas."""
    server.send_webhooks_to(receiver.url, secret=SECRET, target="integration")
    server.changes.open_pr(server.org.teams[0].repos[0])
    assert server.webhooks.flush()
    first = receiver.received[0]
    assert first.headers["X-GitHub-Hook-Installation-Target-Type"] == "integration"
    assert first.json()["installation"]["id"] == 4242
    assert [p for r in receiver.received for p in _schema_errors(r)] == []


def test_a_change_shows_in_rest_and_graphql_as_its_webhook_says(
    server: SandboxServer, clock: FixedClock, receiver: HookReceiver
) -> None:
    """What a webhook announces is what GitHub's API answers right after: the PR, its
    review, its labels, its head."""
    server.send_webhooks_to(receiver.url, secret=SECRET)
    repo = server.org.teams[0].repos[0]
    reviewer = server.org.teams[0].members[1].login
    number = server.changes.open_pr(repo, labels=("bug",))
    server.changes.review(repo, number, reviewer, "APPROVED")
    head = server.changes.push(repo, number)
    assert server.webhooks.flush()
    headers = {"Authorization": f"token {server.token}"}
    name = server.org.full_name(repo)
    pull = requests.get(f"{server.base_url}/repos/{name}/pulls/{number}", headers=headers,
                        timeout=10).json()
    synchronize = next(r for r in receiver.received if r.kind == "pull_request.synchronize")
    announced = synchronize.json()["pull_request"]
    for key in ("id", "number", "state", "draft", "title", "created_at"):
        assert pull[key] == announced[key]
    assert pull["head"]["sha"] == announced["head"]["sha"] == head
    query = ("query($o:String!,$r:String!,$n:Int!){repository(owner:$o,name:$r){"
             "pullRequest(number:$n){headRefOid labels(first:10){nodes{name}} "
             "reviews(first:10){nodes{state author{login}}}}}}")
    # the first GraphQL answer of a process parses GitHub's schema: seconds on a busy machine
    answer = requests.post(f"{server.base_url}/graphql", headers=headers, timeout=120, json={
        "query": query, "variables": {"o": server.org.name, "r": repo, "n": number}}).json()
    node = answer["data"]["repository"]["pullRequest"]
    assert node["headRefOid"] == head
    assert node["labels"]["nodes"] == [{"name": "bug"}]
    assert node["reviews"]["nodes"] == [{"state": "APPROVED", "author": {"login": reviewer}}]


def test_a_slow_receiver_never_holds_up_a_change(
    server: SandboxServer, clock: FixedClock, receiver: HookReceiver
) -> None:
    """Deliveries go out from a background thread: changes (and the sandbox's API) carry on
    while the receiver has not answered yet."""
    server.send_webhooks_to(receiver.url, secret=SECRET)
    receiver.gate.clear()
    repo = server.org.teams[0].repos[0]
    number = server.changes.open_pr(repo, ci=False)
    assert receiver.waiting.acquire(timeout=10)  # the first delivery is stuck at the receiver
    server.changes.label(repo, number, "bug")
    server.changes.close(repo, number)
    pull = requests.get(f"{server.base_url}/repos/{server.org.full_name(repo)}/pulls/{number}",
                        headers={"Authorization": f"token {server.token}"}, timeout=10).json()
    assert pull["state"] == "closed" and receiver.received == []
    receiver.gate.set()
    assert server.webhooks.flush()
    assert receiver.kinds() == ["pull_request.opened", "pull_request.labeled",
                                "pull_request.closed"]


def _send_ten(server: SandboxServer, faults: HookFaults, url: str) -> list[str]:
    """Ten label changes through a hook with ``faults``; the GUIDs in the order sent."""
    server.webhooks.configure(Hook(url, SECRET), faults=faults)
    repo = server.org.teams[0].repos[0]
    number = server.changes.open_pr(repo, ci=False)
    server.webhooks.flush()
    sent = len(server.webhooks.deliveries)
    for k in range(10):
        server.changes.label(repo, number, f"l{k}")
    assert server.webhooks.flush()
    return [d.guid for d in server.webhooks.deliveries[sent:]]


def test_dropped_deliveries_never_arrive(server: SandboxServer, receiver: HookReceiver) -> None:
    """``drop``: a seeded share of deliveries is never sent, and recorded as dropped."""
    guids = _send_ten(server, HookFaults(drop=0.5, seed=4), receiver.url)
    dropped = {d.guid for d in server.webhooks.deliveries if d.fault == "drop"}
    arrived = [r.guid for r in receiver.received if r.kind == "pull_request.labeled"]
    assert 0 < len(dropped) < 10
    assert arrived == [g for g in guids if g not in dropped]


def test_duplicated_deliveries_arrive_twice_with_one_guid(
    server: SandboxServer, receiver: HookReceiver
) -> None:
    """``duplicate``: the same delivery (same GUID, same signed body) arrives twice."""
    guids = _send_ten(server, HookFaults(duplicate=1.0), receiver.url)
    arrived = [r for r in receiver.received if r.kind == "pull_request.labeled"]
    assert [r.guid for r in arrived] == [g for g in guids for _ in range(2)]
    assert arrived[0].body == arrived[1].body


def test_reordered_deliveries_arrive_after_the_next_one(
    server: SandboxServer, receiver: HookReceiver
) -> None:
    """``reorder``: a delivery is held back and arrives after the one sent next."""
    guids = _send_ten(server, HookFaults(reorder=0.3, seed=2), receiver.url)
    arrived = [r.guid for r in receiver.received if r.kind == "pull_request.labeled"]
    assert sorted(arrived) == sorted(guids)
    assert arrived != guids
    moved = [g for g in guids if arrived.index(g) > guids.index(g)]
    assert {d.guid for d in server.webhooks.deliveries if d.fault == "reorder"} >= set(moved)


def test_delayed_deliveries_still_arrive(server: SandboxServer, receiver: HookReceiver) -> None:
    """``delay``: a delayed delivery is sent late, not lost."""
    guids = _send_ten(server, HookFaults(delay=1.0, delay_seconds=0.0), receiver.url)
    arrived = [r.guid for r in receiver.received if r.kind == "pull_request.labeled"]
    assert sorted(arrived) == sorted(guids)


def test_faults_are_seeded(org: Org, receiver: HookReceiver) -> None:
    """The same seed picks the same deliveries to drop, duplicate and reorder."""
    picks = []
    for _ in range(2):
        with SandboxServer(org, clock=FixedClock(END)) as srv:
            faults = HookFaults(drop=0.2, duplicate=0.1, reorder=0.1, seed=9)
            _send_ten(srv, faults, receiver.url)
            picks.append([d.fault for d in srv.webhooks.deliveries])
    assert picks[0] == picks[1]
    assert {"drop", "duplicate", "reorder"} & set(picks[0])


def test_failed_deliveries_are_recorded_not_retried(server: SandboxServer) -> None:
    """A target that refuses or is gone: each delivery is recorded failed, once, as GitHub
    records a failed delivery (no automatic redelivery)."""
    refusing = HookReceiver(status=500)
    try:
        server.send_webhooks_to(refusing.url, secret=SECRET)
        server.changes.open_pr(server.org.teams[0].repos[0], ci=False)
        assert server.webhooks.flush()
        assert len(refusing.received) == 1
    finally:
        refusing.close()
    server.changes.open_pr(server.org.teams[0].repos[0], ci=False)  # nobody listens now
    assert server.webhooks.flush()
    assert [d.statuses for d in server.webhooks.deliveries] == [[500], [0]]
    assert not any(d.delivered for d in server.webhooks.deliveries)


def test_bad_changes_and_settings_are_refused_by_name(server: SandboxServer) -> None:
    """Unknown repositories, PRs, accounts, states and fault shares are named in the error."""
    changes = server.changes
    with pytest.raises(ValueError, match="no repository 'nope'"):
        changes.open_pr("nope")
    with pytest.raises(ValueError, match="no pull request"):
        changes.ready(server.org.teams[0].repos[0], 9999)
    with pytest.raises(ValueError, match="no account 'nobody'"):
        changes.open_pr(server.org.teams[0].repos[0], "nobody")
    with pytest.raises(ValueError, match="state must be one of"):
        changes.review(server.org.teams[0].repos[0], 1, "alice", "LGTM")
    with pytest.raises(ValueError, match="drop must be a share"):
        HookFaults(drop=1.5)
    with pytest.raises(ValueError, match="at most 1"):
        HookFaults(drop=0.6, duplicate=0.6)
    with pytest.raises(ValueError, match="target_type"):
        Hook("http://127.0.0.1:1/", SECRET, target_type="enterprise")


def test_signature_is_githubs_hmac() -> None:
    """``signature`` is GitHub's documented example: secret "It's a Secret to Everybody",
    body "Hello, World!"."""
    assert signature("It's a Secret to Everybody", b"Hello, World!") == (
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")


def test_a_changed_pr_still_validates_against_githubs_rest_schemas(
    server: SandboxServer, clock: FixedClock
) -> None:
    """After every kind of change, the PR's REST answers (its issue events with ``labeled``
    and ``review_dismissed``, its timeline, its runs) still match GitHub's REST schemas."""
    repo, number = _life_of_a_pr(server, clock)
    base = f"/repos/{server.org.full_name(repo)}"
    headers = {"Authorization": f"token {server.token}"}
    paths = {
        f"{base}/pulls/{number}": "/repos/{owner}/{repo}/pulls/{pull_number}",
        f"{base}/pulls/{number}/reviews": "/repos/{owner}/{repo}/pulls/{pull_number}/reviews",
        f"{base}/issues/{number}/events": "/repos/{owner}/{repo}/issues/{issue_number}/events",
        f"{base}/issues/{number}/timeline":
            "/repos/{owner}/{repo}/issues/{issue_number}/timeline",
        f"{base}/actions/runs": "/repos/{owner}/{repo}/actions/runs",
    }
    for path, template in paths.items():
        answer = requests.get(server.base_url + path, headers=headers, timeout=10)
        assert answer.status_code == 200, path
        validate_response("GET", template, 200, answer.json())
    events = requests.get(f"{server.base_url}{base}/issues/{number}/events", headers=headers,
                          timeout=10).json()
    assert {"labeled", "review_dismissed", "merged", "reopened"} <= {e["event"] for e in events}
