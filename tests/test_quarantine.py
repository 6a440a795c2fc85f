"""Garbage under the prefix is quarantined, never fatal: skipped, counted, named, removable.

Each kind is planted with a raw client in the real Redis of the ``store`` fixture, then the
paths a team or an operator uses are run: the store's reads and writes, team snapshots, alert
evaluation, ``flowbot doctor`` (its data section and the command), ``/flow`` and App Home.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.app import BotDeps
from bot.doctor import stored_data
from bot.web import build_web
from jobs.alerts import AlertEngine, list_alerts
from jobs.errors import SchemaMismatch
from jobs.model import Alert, Digest, QueueSample
from jobs.ports import FixedClock
from jobs.snapshot import refresh_all
from jobs.store import JobRun, Store
from tests.conftest import CliStorage
from tests.factories import T0, pr, snapshot
from tests.fakes.slack_api import FakeSlack, iter_blocks_text
from tests.slack_helpers import (
    BOB,
    SECRET,
    post,
    serve,
    settings,
    signed_headers,
    slash_body,
)

NOW = T0 + timedelta(minutes=10)
BAD_PR = b'{"number": "x"}'


def raw(store: Store) -> Any:
    """The store's own Redis client, to plant garbage as a person with redis-cli would."""
    return store._r  # the test plays an operator typing into redis-cli


def _run(job: str = "sample") -> JobRun:
    return JobRun(job=job, started_at=NOW - timedelta(minutes=3), seconds=1.5, outcome="ok")


# ----------------------------------------------------------------------------- records


def test_invalid_pr_record_is_skipped_counted_and_named(store: Store) -> None:
    """One bad PR record: the others read, the bad one is None, counted once, and doctor's
    list names its key and field with the HDEL that removes it."""
    store.put_prs("acme/api", [pr(1), pr(2)])
    raw(store).hset(store.key("prs", "acme/api"), "3", BAD_PR)
    assert [p.number for p in store.get_prs("acme/api")] == [1, 2]
    assert store.get_pr("acme/api", 3) is None
    assert store.get_pr("acme/api", 2) is not None
    assert len(store.quarantined) == 1
    [bad] = store.quarantine_list()
    assert (bad.key, bad.field) == (store.key("prs", "acme/api"), "3")
    assert bad.removal("redis-cli -n 9").endswith(f"HDEL {store.key('prs', 'acme/api')} 3")


def test_a_bad_pr_record_fails_no_team(store: Store) -> None:
    """Every team's snapshot is computed with a bad record in one team's repository."""
    s = settings()
    store.put_prs("acme/api", [pr(1, created=-30.0, merged=-5.0), pr(2, created=-3.0)])
    store.put_prs("acme/site", [pr(5, repo="acme/site", author="dan", created=-8.0)])
    raw(store).hset(store.key("prs", "acme/api"), "9", BAD_PR)
    snaps = refresh_all(s, store, now=NOW)
    assert set(snaps) == {"platform", "web"}
    assert snaps["platform"].queue.length == 1  # the open good PR is counted, the bad one skipped


@dataclass
class Planted:
    key: str
    read: Any  # what the store's read answers with the garbage in place


GARBAGE_JSON: list[tuple[tuple[str, ...], bytes]] = [
    (("alerts", "platform", "state"), b"[1,2,3]"),
    (("alerts", "platform", "state"), b'{"queue_length": 5}'),
    (("reruns", "acme/api"), b"[1,2,3]"),
    (("reruns", "acme/api"), b'{"123": {"pr": 1}}'),
    (("runs_etag", "acme/api"), b"not json"),
    (("archived", "acme/api"), b"not json at all"),
    (("overrides", "platform"), b"[]"),
    (("overrides", "platform"), b'{"queue_length": 5}'),
    (("delivery", "problems"), b'{"C1": {"code": "x"}}'),
    (("alerts", "budget", "U1", "2026-W10"), b'"many"'),
    (("org_repos", "acme"), b'{"repos": 3}'),
]


@pytest.mark.parametrize(("parts", "value"), GARBAGE_JSON)
def test_small_state_of_the_wrong_shape_reads_as_missing(store: Store, parts: tuple[str, ...],
                                                         value: bytes) -> None:
    """A JSON value of the wrong shape reads as missing and is listed with a DEL command."""
    raw(store).set(store.key(*parts), value)
    assert store.get_json(*parts) is None
    [bad] = store.quarantine_list()
    assert bad.key == store.key(*parts) and bad.field is None
    assert bad.removal("redis-cli") == f"redis-cli DEL {store.key(*parts)}"


def test_wrong_type_keys_read_empty_and_are_moved_aside_on_write(store: Store) -> None:
    """Keys of the wrong Redis type read as empty; the next write moves each aside (kept for
    a look, listed by doctor) and succeeds, so no unit of work fails on every cycle."""
    r = raw(store)
    r.set(store.key("prs", "acme/api"), "x")
    r.set(store.key("queue", "platform"), "x")
    r.hset(store.key("runs", "sample"), "a", "b")
    r.rpush(store.key("snapshot", "platform"), "x")
    r.hset(store.key("alerts", "platform", "state"), "a", "b")
    r.set(store.key("open", "acme/api"), "x")
    assert store.get_prs("acme/api") == [] and store.get_pr("acme/api", 1) is None
    assert store.open_pr_numbers("acme/api") == []
    assert store.queue_samples("platform") == [] and store.job_runs("sample") == []
    assert store.get_snapshot("platform") is None
    assert store.get_json("alerts", "platform", "state") is None
    listed = {b.key for b in store.quarantine_list()}
    assert store.key("prs", "acme/api") in listed and store.key("snapshot", "platform") in listed

    store.put_prs("acme/api", [pr(1)])
    store.add_queue_sample("platform", QueueSample(at=NOW, reviewer=1, author=0, ci=0, approved=0,
                                                   oldest_hours=1.0, oldest_business_hours=1.0))
    store.record_run(_run())
    store.put_snapshot(snapshot())
    assert [p.number for p in store.get_prs("acme/api")] == [1]
    assert store.open_pr_numbers("acme/api") == [1]
    assert len(store.queue_samples("platform")) == 1 and len(store.job_runs("sample")) == 1
    moved = [b for b in store.quarantine_list() if ":quarantine:moved:" in b.key]
    assert len(moved) == 4  # prs, open, queue, runs (a snapshot is a SET: it simply replaces)
    assert all("moved aside" in b.reason for b in moved)


def test_bad_entries_in_lists_and_series_are_skipped(store: Store) -> None:
    """A bad job-run record and a bad queue sample: the good neighbours still read."""
    store.record_run(_run())
    raw(store).lpush(store.key("runs", "sample"), b"{not json")
    raw(store).zadd(store.key("queue", "platform"), {b"garbage": NOW.timestamp()})
    store.add_queue_sample("platform", QueueSample(at=NOW - timedelta(hours=1), reviewer=1, author=0,
                                                   ci=0, approved=0, oldest_hours=None,
                                                   oldest_business_hours=None))
    assert [r.outcome for r in store.job_runs("sample")] == ["ok"]
    assert len(store.queue_samples("platform")) == 1
    listed = store.quarantine_list()
    assert [b.removal("redis-cli") for b in listed if b.key == store.key("runs", "sample")] == [
        f"redis-cli LREM {store.key('runs', 'sample')} 0 '{{not json'"]


# ----------------------------------------------------------------------------- schema


@pytest.mark.parametrize(("plant", "said"), [
    (lambda r, k: r.set(k, "v1"), "holds 'v1', not a schema version"),
    (lambda r, k: r.hset(k, "v", "1"), "is a hash"),
])
def test_a_wrong_schema_key_says_what_it_found_and_what_to_do(
        store: Store, plant: Any, said: str) -> None:
    """The schema key holding garbage stops the store with what it holds and the fix; the
    purge resets it and the store opens again."""
    name = f"{store.prefix}:schema"
    raw(store).delete(name)
    plant(raw(store), name)
    with pytest.raises(SchemaMismatch) as caught:
        store.ensure_schema()
    assert said in str(caught.value) and "flowbot doctor --purge-bad" in str(caught.value)
    findings, usable = stored_data(store)
    assert not usable and findings[-1].status == "fail" and said in findings[-1].summary
    assert [b.key for b in store.purge_quarantined()] == [name]
    store.ensure_schema()
    assert raw(store).get(name) == b"1"


def test_another_versions_schema_is_never_purged(store: Store) -> None:
    """A real other version's data is refused with what to do, and the purge leaves it."""
    name = f"{store.prefix}:schema"
    raw(store).set(name, "2")
    with pytest.raises(SchemaMismatch, match="schema v2"):
        store.ensure_schema()
    assert store.purge_quarantined() == []
    assert raw(store).get(name) == b"2"


# ----------------------------------------------------------------------------- alerts


@dataclass
class Recorder:
    alerts: list[Alert] = field(default_factory=list)

    def alert(self, alert: Alert) -> bool:
        self.alerts.append(alert)
        return True

    def digest(self, digest: Digest) -> bool:  # pragma: no cover - not used here
        return True


def test_alert_state_garbage_never_stops_alerts(store: Store) -> None:
    """Alert state `[1,2,3]` for one team and a hand-edited rule state for another: both
    teams are evaluated, the garbage starts afresh, and `/flow alerts` answers."""
    s = settings()
    hot = QueueSample(at=NOW, reviewer=40, author=0, ci=0, approved=0, oldest_hours=200.0,
                      oldest_business_hours=80.0)
    for team in s.teams:
        store.put_snapshot(snapshot(team=team, queue=hot, computed_at=NOW, data_as_of=NOW))
    raw(store).set(store.key("alerts", "platform", "state"), "[1,2,3]")
    raw(store).set(store.key("alerts", "web", "state"),
                   '{"queue_length": {"rule": "queue_length", "active": "yes", "since": 5}}')
    reports = AlertEngine(s, store, Recorder()).evaluate_all(now=NOW)  # Monday morning: at work
    assert set(reports) == {"platform", "web"}
    assert not any(r.skipped.startswith("failed") for r in reports.values()), reports
    assert all(r.posted for r in reports.values())
    assert list_alerts(store, "platform", now=NOW)


# ----------------------------------------------------------------------------- doctor


def test_doctor_lists_every_kind_with_its_removal_and_purge_cleans_exactly_those(store: Store) -> None:
    """Doctor's data section names each bad value with its command; --purge-bad removes those
    and nothing else; the good records stay."""
    r = raw(store)
    store.put_prs("acme/api", [pr(1), pr(2)])
    store.record_run(_run())
    r.hset(store.key("prs", "acme/api"), "3", BAD_PR)  # doctor finds it before any reader
    r.lpush(store.key("runs", "sample"), b"{not json")
    r.set(store.key("alerts", "platform", "state"), "[1,2,3]")
    r.set(store.key("queue", "web"), "x")
    r.set(store.key("somebody-elses", "key"), "anything")  # not a Flowbot family: never judged
    [finding], usable = stored_data(store)
    assert usable and finding.status == "warn" and "--purge-bad" in finding.fix
    text = finding.summary
    assert "4 stored value(s) do not decode" in text
    for expected in (f"HDEL {store.key('prs', 'acme/api')} 3",
                     f"LREM {store.key('runs', 'sample')} 0 '{{not json'",
                     f"DEL {store.key('alerts', 'platform', 'state')}",
                     f"DEL {store.key('queue', 'web')}"):
        assert expected in text, text
    removed, usable = stored_data(store, purge=True)
    assert usable and "removed 4" in removed[0].summary and removed[-1].status == "ok"
    assert [p.number for p in store.get_prs("acme/api")] == [1, 2]
    assert [x.outcome for x in store.job_runs("sample")] == ["ok"]
    assert r.get(store.key("somebody-elses", "key")) == b"anything"
    assert store.quarantine_list() == []


def test_flowbot_doctor_answers_without_a_traceback(store: Store, cli_storage: CliStorage,
                                                    tmp_path: Path) -> None:
    """`flowbot doctor` with garbage (schema key included) prints what it found and exits;
    `--purge-bad` then leaves the data clean."""
    config = tmp_path / "flowbot.toml"
    config.write_text('[github]\norganisation = "acme"\n\n[teams.platform]\nmembers = [{github ='
                      ' "bob"}]\nrepositories = ["api"]\nchannel = "C0PLATFORM"\n\n'
                      + cli_storage.toml)
    target = Store.connect(cli_storage.redis_url, data_path=cli_storage.path,
                           prefix=cli_storage.prefix)
    try:
        r = raw(target)
        r.set(f"{cli_storage.prefix}:schema", "v1")
        r.set(target.key("alerts", "platform", "state"), "[1,2,3]")
        r.hset(target.key("runs", "sample"), "a", "b")
        runner = CliRunner()
        env = {**cli_storage.env, "GITHUB_API_URL": None}
        first = runner.invoke(app_cli(), ["doctor", "--config", str(config)], env=env)
        assert first.exception is None or isinstance(first.exception, SystemExit), first.output
        assert "holds 'v1', not a schema version" in first.output
        assert "--purge-bad" in first.output
        sampled = runner.invoke(app_cli(), ["sample", "--config", str(config)], env=env)
        assert sampled.exit_code == 1 and "holds 'v1'" in sampled.output
        assert "Check REDIS_URL" not in sampled.output  # Redis is fine: the data is not
        purged = runner.invoke(app_cli(), ["doctor", "--purge-bad", "--config", str(config)], env=env)
        assert isinstance(purged.exception, SystemExit | None), purged.output
        assert "removed 3 unreadable stored value(s)" in purged.output, purged.output
        assert "every stored value Flowbot checks decodes" in purged.output
    finally:
        target.close()


def app_cli() -> Any:
    from bot.cli import app

    return app


# ----------------------------------------------------------------------------- Slack


@pytest.fixture
def served(store: Store, fake_slack: FakeSlack) -> Iterator[str]:
    deps = BotDeps(settings=settings(), store=store, clock=FixedClock(NOW))
    with serve(build_web(deps, signing_secret=SECRET, client=fake_slack.client())) as url:
        yield url


def _flow(url: str, fake: FakeSlack, text: str) -> str:
    body = slash_body(text, user=BOB, response_url=fake.response_url())
    answer = post(url + "/slack/events", body, signed_headers(body, FixedClock(NOW)))
    assert answer.status == 200, answer.body
    payload = answer.json()
    return "\n".join([payload.get("text", ""), *iter_blocks_text(payload.get("blocks", []))])


def test_flow_commands_and_home_answer_whatever_is_stored(served: str, store: Store,
                                                         fake_slack: FakeSlack) -> None:
    """/flow status, queue, why, alerts, health and App Home answer (no "something went
    wrong") with a snapshot of the wrong type, a bad PR record, bad run records and alert
    state [1,2,3]; the other team's status is still shown."""
    import json

    from bot.app import KIND_ERROR

    r = raw(store)
    store.put_snapshot(snapshot(team="web"))
    r.rpush(store.key("snapshot", "platform"), "x")
    store.put_prs("acme/api", [pr(1)])
    r.hset(store.key("prs", "acme/api"), "3", BAD_PR)
    r.lpush(store.key("runs", "sample"), b"{not json")
    r.hset(store.key("runs", "snapshot"), "a", "b")
    r.set(store.key("alerts", "platform", "state"), "[1,2,3]")
    answers = {text: _flow(served, fake_slack, text) for text in (
        "status platform", "queue platform", "why acme/api#3", "why acme/api#1",
        "alerts platform", "health", "status web")}
    for text, answer in answers.items():
        assert KIND_ERROR not in answer and answer.strip(), (text, answer)
    assert "Flow status: web" in answers["status web"]
    assert "I have no record of `acme/api#3`" in answers["why acme/api#3"]
    body = json.dumps({"type": "event_callback", "team_id": "T0FAKE", "api_app_id": "A0FLOWBOT",
                       "event_id": "Ev1", "event_time": int(NOW.timestamp()),
                       "event": {"type": "app_home_opened", "user": BOB, "tab": "home",
                                 "channel": "D0BOB"}}).encode()
    headers = {**signed_headers(body, FixedClock(NOW)), "Content-Type": "application/json"}
    assert post(served + "/slack/events", body, headers).status == 200
    assert fake_slack.wait_for_call("views.publish", timeout=10)
    assert BOB in fake_slack.views()


def test_a_lock_or_claim_of_the_wrong_type_is_named(store: Store) -> None:
    """A lock or a delivery claim of another Redis type would hold its job or message off
    silently: doctor names each with its DEL, and the purge removes them."""
    raw(store).hset(store.key("lock", "sample"), "owner", "x")
    raw(store).rpush(store.key("once", "alert:platform:queue_length:e1:fire"), "x")
    with store.lock("sample") as lock:
        assert not lock.acquired  # what the operator would otherwise see only as "skipped"
    listed = {b.key: b.removal("redis-cli") for b in store.quarantine_list()}
    assert listed == {
        store.key("lock", "sample"): f"redis-cli DEL {store.key('lock', 'sample')}",
        store.key("once", "alert:platform:queue_length:e1:fire"):
            f"redis-cli DEL {store.key('once', 'alert:platform:queue_length:e1:fire')}",
    }
    assert len(store.purge_quarantined()) == 2
    with store.lock("sample") as lock:
        assert lock.acquired
