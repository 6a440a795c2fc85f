"""Whether a worker is running decides what `/flow status` promises and `/flow health` says."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from bot.app import BotDeps
from jobs.ports import FixedClock
from jobs.store import JobRun, Store
from tests.fakes.slack_api import FakeSlack
from tests.slack_helpers import settings
from tests.test_slack_commands import NOW, Served, _text, served


@pytest.fixture
def app(store: Store, fake_slack: FakeSlack) -> Iterator[Served]:
    """The HTTP app on loopback, as /flow's tests serve it."""
    with served(BotDeps(settings=settings(), store=store, clock=FixedClock(NOW)), fake_slack) as running:
        yield running


def test_status_without_a_worker_says_when_the_last_sample_ran(app: Served, store: Store) -> None:
    """No snapshot and no worker: the answer says when the last sample ran, and promises nothing."""
    store.record_run(JobRun("sample", NOW - timedelta(minutes=2), 1.0, "ok"))
    text = _text(app.flow("status"))
    assert "The last sample ran 2 min ago, and no worker has been seen since" in text
    assert "start `flowbot worker`" in text and "next sample runs" not in text


def test_status_with_a_worker_says_when_the_next_sample_runs(app: Served, store: Store) -> None:
    """No snapshot yet but a worker's heartbeat: the next sample's time is promised."""
    store.record_run(JobRun("sample", NOW - timedelta(minutes=2), 1.0, "ok"))
    store.beat("host:1", at=NOW, ttl=timedelta(seconds=90))
    assert "The next sample runs in about 13 min" in _text(app.flow("status"))


def test_health_after_an_empty_redis_sees_the_running_worker(app: Served, store: Store) -> None:
    """`/flow health` with no run recorded yet tells a running worker from none at all."""
    alone = _text(app.flow("health"))
    assert "Start `flowbot worker`" in alone and "No worker is running" in alone
    store.beat("host:1", at=NOW - timedelta(seconds=20), ttl=timedelta(seconds=90))
    seen = _text(app.flow("health"))
    assert "a worker is running" in seen and "1 worker(s) running*: host:1 (just now)" in seen
    assert "Start `flowbot worker`" not in seen


def test_a_heartbeat_expires_by_itself(store: Store) -> None:
    """A killed worker's heartbeat disappears after its time to live; a clean stop at once."""
    store.beat("host:1", at=NOW, ttl=timedelta(milliseconds=1))
    store.beat("host:2", at=NOW, ttl=timedelta(seconds=90))
    store.forget_worker("host:2")
    import time

    time.sleep(0.01)  # Redis' own expiry of a 1 ms key: no clock of ours is involved
    assert store.workers_seen() == {}
