"""Real `flowbot worker` processes sharing the queues: one killed with SIGKILL in the middle of
posting, and every message still reaches Slack exactly once.

The sandbox serves GitHub and the Slack fake serves Slack, both on loopback in this process;
the workers are the real command, on the tests' Redis under a prefix of their own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.config import from_mapping
from jobs import work
from jobs.cycle import run_cycle
from jobs.github.client import connect
from jobs.ports import FixedClock
from jobs.sandbox.org import Org, build_org
from jobs.sandbox.server import SandboxServer
from jobs.snapshot import refresh_all
from jobs.store import Store
from tests.conftest import CliStorage
from tests.fakes.slack_api import FakeSlack
from tests.processes import config_toml

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
POST_SECONDS = 1.0  # every chat.postMessage is stored at once and answered this much later


@pytest.fixture(scope="module")
def org() -> Org:
    return build_org(end=NOW, weeks=2, teams=2, repos_per_team=1)


@pytest.fixture
def sandbox(org: Org) -> Iterator[SandboxServer]:
    server = SandboxServer(org, clock=FixedClock(NOW))
    server.start()
    yield server
    server.stop()


def _due_now(mapping: dict[str, object]) -> None:
    """Every team's digest is due: its weekday and local time five minutes ago."""
    teams = mapping["teams"]
    assert isinstance(teams, dict)
    for team in teams.values():
        local = (datetime.now(UTC) - timedelta(minutes=5)).astimezone(ZoneInfo(team["timezone"]))
        team["digest_day"] = local.strftime("%a").lower()
        team["digest_time"] = local.strftime("%H:%M")


def _start(config: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "bot.cli", "worker", "--config", str(config)],
                                env=env, stdout=out, stderr=out, start_new_session=True)


def _wait(what: str, check: object, *, seconds: float = 60.0) -> None:
    """Poll ``check`` (a real process's progress: no clock of ours is involved)."""
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_two_workers_one_killed_mid_post_no_message_lost_or_doubled(
    sandbox: SandboxServer, fake_slack: FakeSlack, cli_storage: CliStorage, tmp_path: Path
) -> None:
    """Two `flowbot worker` processes post two digests; one is killed (SIGKILL) while its
    post is in flight. Its job is handed back and run again by the other: each digest is in
    its channel once, nothing is left queued or failed."""
    mapping = sandbox.org.config(sandbox.base_url)
    _due_now(mapping)
    config = tmp_path / "config.toml"
    config.write_text(config_toml(mapping, storage=cli_storage.toml))
    settings = from_mapping(mapping, env={"GITHUB_TOKEN": sandbox.token})
    store = Store.connect(cli_storage.redis_url, prefix=cli_storage.prefix)
    clock = FixedClock(datetime.now(UTC))
    run_cycle(settings, store, connect(settings, clock=clock), clock=clock)  # `flowbot sample`
    refresh_all(settings, store, now=clock.now())
    fake_slack.delay("chat.postMessage", seconds=POST_SECONDS, times=None)

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GITHUB_", "REDIS_"))}
    env.update(SLACK_BOT_TOKEN=fake_slack.token, SLACK_API_URL=fake_slack.api_url,
               GITHUB_TOKEN=sandbox.token, REDIS_URL=cli_storage.redis_url, PYTHONUNBUFFERED="1")
    log = tmp_path / "workers.log"
    workers = [_start(config, env, log) for _ in range(2)]
    digests = work.queue(store, work.DIGESTS)
    try:
        def posting(pid: int) -> bool:
            for job_id in digests.started_job_registry.get_job_ids():
                job = digests.fetch_job(job_id.split(":")[0])
                if job is not None and f"-{pid}-" in (job.worker_name or ""):
                    return bool(fake_slack.calls("chat.postMessage"))
            return False

        victim, survivor = workers
        _wait("a worker posting a digest", lambda: posting(victim.pid) or posting(survivor.pid))
        if not posting(victim.pid):
            victim, survivor = survivor, victim
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)

        expected = {f"digest:{team}:" for team in settings.teams}

        def settled() -> bool:
            keys = _keys(fake_slack)
            return (all(any(k.startswith(e) for k in keys) for e in expected)
                    and all(d.queued == d.started == d.scheduled == 0 for d in work.depths(store)))

        _wait("every digest posted and the queues empty", settled)
        keys = Counter(_keys(fake_slack))
        assert [k for k, n in keys.items() if n > 1] == [], "no message posted twice"
        assert sum(k.startswith("digest:") for k in keys) == len(settings.teams), "none lost"
        assert work.failures(store)[0] == 0
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in workers:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        fake_slack.clear_faults()
        store.close()
    assert survivor.returncode == 0, log.read_text()


def _keys(fake: FakeSlack) -> list[str]:
    out = []
    for message in fake.messages():
        meta = message.get("metadata") or {}
        key = (meta.get("event_payload") or {}).get("key") if isinstance(meta, dict) else None
        if isinstance(key, str) and not message.get("thread_ts"):
            out.append(key)
    return out
