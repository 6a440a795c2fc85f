"""Issue 16's scale-out lines, against real ``flowbot worker`` processes on the RQ work queue.

``cycle``: a 5,000-repository sandbox organisation (``github.all_repositories``), everything
collected once, then nothing changed: one sampling cycle's wall time with 1, 2 and 4 worker
processes (``flowbot worker --no-scheduler``; the bench queues the cycle as the scheduler
would, ``jobs.work.enqueue_cycle``, and times it to the cycle's run record), and the ratios.

``digests``: 1,000 teams whose digests are all due, four ``flowbot worker`` processes (one
schedules, all take jobs); once the digests are being posted two workers are killed
(SIGKILL), among them the active scheduler. Prints whether sampling stayed on its one-minute
schedule, and what Slack holds by idempotency key: duplicate and lost messages.

The sandbox GitHub and the Slack fake run in this process, Redis is a redis-server of the
bench's own on a free port. The machine's load average is printed: a busy machine is slow,
and two cores are shared by every process here.

    .venv/bin/python bench/scale_out.py [cycle] [digests]
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.faults_delivery import INTERVAL, Rig, _toml
from jobs import work
from jobs.dispatch import cycle_id
from jobs.store import Store

REPOS = 5000
WORKER_COUNTS = (1, 2, 4)


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} cores"


class Workers:
    """``flowbot worker`` processes sharing one config and Redis."""

    def __init__(self, env: dict[str, str], config: Path, workdir: Path) -> None:
        self.env, self.config, self.workdir = env, config, workdir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, n: int, *args: str) -> None:
        for _ in range(n):
            log = open(self.workdir / f"worker{len(self.procs)}.log", "ab")
            self.procs.append(subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "worker", "--config", str(self.config), *args],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
                start_new_session=True))

    def kill(self, index: int) -> None:
        proc = self.procs[index]
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs = []


def _wait(condition: Callable[[], bool], *, timeout: float, every: float = 0.2) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(every)
    return False


# ------------------------------------------------------------------------------ (b) cycle


def bench_cycle() -> None:
    from jobs.ports import FixedClock
    from jobs.sandbox import SandboxServer, build_org
    from tests.fakes.slack_api import FakeSlack
    from tests.processes import redis_server

    end = datetime.now(UTC).replace(microsecond=0)
    org = build_org(end=end, weeks=2, teams=3, repos_per_team=3, extra_repos=REPOS - 9)
    with tempfile.TemporaryDirectory(prefix="flowbench-scale-") as tmp:
        work_dir = Path(tmp)
        slack = FakeSlack().start()
        github = SandboxServer(org, clock=FixedClock(end), rate_limit=10_000_000)
        github.start()
        try:
            with redis_server(work_dir) as redis_url:
                mapping = org.config(github.base_url)
                mapping["github"].update(all_repositories=True, budget_share=1.0,
                                         retention_days=365, timeout_seconds=60)
                mapping["storage"] = {"prefix": "scale"}
                for team in mapping["teams"].values():
                    team["leads"] = []
                config = work_dir / "config.toml"
                config.write_text(_toml(mapping))
                env = {k: v for k, v in os.environ.items()
                       if not k.startswith(("SLACK_", "GITHUB_", "REDIS_", "FLOWBOT_"))}
                env.update(PYTHONPATH=str(ROOT), REDIS_URL=redis_url, GITHUB_TOKEN=github.token,
                           SLACK_BOT_TOKEN=slack.token, SLACK_API_URL=slack.api_url,
                           FLOWBOT_LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1")
                store = Store.connect(redis_url, prefix="scale")
                workers = Workers(env, config, work_dir)
                print(f"organisation: {len(org.repos)} repositories; {load()}")
                try:
                    workers.start(4, "--no-scheduler")
                    first = _cycle(store, label="first (collects everything)")
                    print(f"first cycle, 4 workers: {first:.0f} s (every repository collected)")
                    workers.stop()
                    times: dict[int, float] = {}
                    for n in WORKER_COUNTS:
                        workers.start(n, "--no-scheduler")
                        _wait(lambda n=n: len(_rq_workers(store)) >= n, timeout=120)
                        before = github.stats.total
                        times[n] = _cycle(store, label=f"{n} workers")
                        sent = github.stats.total - before
                        workers.stop()
                        print(f"{n} worker(s): one cycle, nothing changed: {times[n]:.1f} s"
                              f" ({sent} requests to GitHub); {load()}")
                    base = times[1]
                    print("ratio to 1 worker: " + ", ".join(
                        f"{n} workers {base / times[n]:.2f}x faster" for n in WORKER_COUNTS[1:]))
                finally:
                    workers.stop()
                    work.purge(store)
                    store.close()
        finally:
            github.stop()
            slack.stop()


def _rq_workers(store: Store) -> list[Any]:
    from rq import Worker

    return [w for w in Worker.all(connection=store.redis_client())
            if w.name.startswith(store.prefix)]


def _cycle(store: Store, *, label: str) -> float:
    """Queue a sampling cycle as the scheduler would; seconds until its run record appears."""
    runs = len(store.job_runs("sample", limit=50))
    started = time.monotonic()
    work.enqueue_cycle(store, cycle_id(datetime.now(UTC)) + f"-{label.split()[0]}",
                       reason="bench")
    if not _wait(lambda: len(store.job_runs("sample", limit=50)) > runs, timeout=3600, every=0.1):
        raise RuntimeError(f"the cycle ({label}) did not finish within an hour")
    return time.monotonic() - started


# ------------------------------------------------------------------------------ (c) digests


def bench_digests() -> None:
    with tempfile.TemporaryDirectory(prefix="flowbench-digests-") as tmp:
        with Rig(Path(tmp), teams=1000) as rig:
            rig.slack.delay("chat.postMessage", seconds=0.1, times=None)
            workers = Workers(rig.env(), rig.config, Path(tmp))
            print(f"1,000 teams, every digest due; 4 workers; Slack 0.1 s per post; {load()}")
            started = time.monotonic()
            try:
                workers.start(4)
                if not _wait(lambda: len(rig.slack.calls("chat.postMessage")) >= 100,
                             timeout=10 * INTERVAL, every=0.5):
                    raise RuntimeError("no digests posted within 10 minutes")
                leader = _leader(rig, workers)
                victims = [leader] if leader is not None else []
                victims += [i for i in range(4) if i not in victims][: 2 - len(victims)]
                posted = len(rig.slack.calls("chat.postMessage"))
                for i in victims:
                    workers.kill(i)
                killed_at = time.monotonic() - started
                print(f"killed workers {victims} (SIGKILL; the active scheduler was"
                      f" {leader if leader is not None else 'unknown'}) after {killed_at:.0f} s,"
                      f" {posted} posts in")
                rig.wait(lambda: rig.digests_posted() and rig.settled(), timeout=15 * INTERVAL)
                time.sleep(2 * INTERVAL)  # and the sampling goes on
                runs = rig.store().job_runs("sample", limit=50)
            finally:
                workers.stop()
            t = rig.tally()
    starts = sorted(r.started_at.timestamp() for r in runs)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    print(f"sampling: {len(starts)} cycles in {time.monotonic() - started:.0f} s, gaps between"
          f" starts {', '.join(f'{g:.0f}' for g in gaps)} s (schedule: every {INTERVAL:.0f} s);"
          f" longest cycle {max((r.seconds for r in runs), default=0):.0f} s")
    print(f"Slack: digests {t.digests} of 1000, posted {t.posted}, duplicates {t.duplicates},"
          f" lost (not in Slack by the end: a key sent but missing, or a digest not posted"
          f" yet) {t.lost}; {load()}")


def _leader(rig: Rig, workers: Workers) -> int | None:
    """Which of the workers (by start order) holds the scheduler lock, when it can be told."""
    holder = rig.store().lock_holder("scheduler")
    pids = [p.pid for p in workers.procs]
    return pids.index(holder.pid) if holder is not None and holder.pid in pids else None


def main(argv: list[str]) -> int:
    wanted = argv or ["cycle", "digests"]
    if "cycle" in wanted:
        bench_cycle()
    if "digests" in wanted:
        bench_digests()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
