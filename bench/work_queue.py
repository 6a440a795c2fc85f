"""Benchmark: RQ's SimpleWorker (jobs run in the worker process) against its forking Worker
(a work horse forked per job), on Flowbot's own units of work.

A redis-server of its own, the sandbox organisation backfilled (``bench/shape.py``), then,
for each worker class in turn (interleaved, twice, like for like), burst runs of:

* 300 empty jobs (``os.getpid``): the queue's own cost per job;
* every repository's sync with nothing changed (conditional requests answered 304), 3 rounds;
* every team's snapshot recomputed (its inputs forgotten first), and the alert evaluation
  each one queues, 3 rounds.

Prints jobs per second and milliseconds per job, and the machine's load.

    .venv/bin/python bench/work_queue.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rq import Worker

from bench.shape import load, sandbox_org_in_store
from jobs import work
from jobs.model import Alert, Digest
from jobs.scheduler import Pipeline
from jobs.settings import Settings
from jobs.store import Store
from tests.processes import redis_server

ROUNDS = 3


class Discard:
    """Delivery that posts nothing (each snapshot queues its team's alerts, run in the burst)."""

    def alert(self, alert: Alert) -> bool:
        return True

    def digest(self, digest: Digest) -> bool:
        return True


def burst(store: Store, forking: bool) -> float:
    """Run every queued job with one worker of the given class; seconds taken."""
    simple = work.make_worker(store, name="bench")
    worker = Worker(simple.queues, connection=simple.connection, name=f"{simple.name}-fork") \
        if forking else simple
    start = time.perf_counter()
    worker.work(burst=True, logging_level="ERROR")
    return time.perf_counter() - start


def empty_jobs(store: Store, _settings: Settings) -> int:
    q = work.queue(store, work.TEAMS)
    for _ in range(300):
        q.enqueue_call("os.getpid", result_ttl=0)
    return 300


def syncs(store: Store, settings: Settings) -> int:
    for repo in settings.repositories:
        work.enqueue_repo_sync(store, repo, reason="bench")
    return len(settings.repositories)


def snapshots(store: Store, settings: Settings) -> int:
    for team in settings.teams:
        store.delete("snapshot_inputs", team)  # recomputed, not skipped as unchanged
        work.enqueue_team_snapshot(store, team, reason="bench")
    return 2 * len(settings.teams)  # each snapshot queues its team's alert evaluation


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, redis_server(Path(tmp)) as url:
        store = Store.connect(url, prefix="bench-work")
        with sandbox_org_in_store(store) as (settings, source, clock):
            pipeline = Pipeline.from_settings(settings, store, Discard(), clock=clock)
            work.install(work.Context(settings, store, clock, source=source, pipeline=pipeline))
            cases: list[tuple[str, Callable[[Store, Settings], int]]] = [
                ("empty job", empty_jobs), ("repository sync, nothing changed", syncs),
                ("team snapshot recomputed, or its alerts", snapshots)]
            results: dict[tuple[str, bool], list[float]] = {}
            for _ in range(2):
                for name, enqueue in cases:
                    for forking in (False, True):
                        for _round in range(1 if name == "empty job" else ROUNDS):
                            n = enqueue(store, settings)
                            seconds = burst(store, forking)
                            work.purge(store)
                            results.setdefault((name, forking), []).append(seconds / n)
            for name, _ in cases:
                simple = statistics.median(results[(name, False)])
                fork = statistics.median(results[(name, True)])
                print(f"{name}: SimpleWorker {simple * 1000:.1f} ms/job ({1 / simple:.0f}/s),"
                      f" forking Worker {fork * 1000:.1f} ms/job ({1 / fork:.0f}/s);"
                      f" fork/simple {fork / simple:.1f}x")
        print(f"[{load()}]")
        work.purge(store)
        store.flush_prefix()
        store.close()


if __name__ == "__main__":
    main()
