"""Issue 11's GitHub rows, reproduced against real processes: ``flowbot backfill`` and
``flowbot sample`` as subprocesses, a redis-server of this module's own on a free loopback
port, and the sandbox GitHub on loopback with faults injected on the wire.

Each row runs the commands under its fault until they finish (as an operator or the worker
would: a repository that failed is taken up again by the next run), then compares every
stored record with a fault-free run's. Rows:

- 15% of answers a ``200`` with a body of the wrong shape (a list), plus one GraphQL page
  wrong on every try: the runs finish, the failing repository is reported and the others
  stored, every team's queue is sampled, alerts skip the partial snapshot, no traceback;
- 15% truncated JSON or HTML ``200``s: reported as failures, never "ok"; the rerun backlog,
  the first CI attempts and the archived flag survive;
- ``Retry-After: 900`` on a secondary limit: the run does not wait it out, the repository is
  deferred to the next run;
- 15% of everything at once: wrong shape, missing data, truncated JSON, HTML, 5xx, timeouts,
  dropped connections, secondary limits.

    .venv/bin/python bench/faults.py github     # a few minutes (real backoff sleeps)
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.faults import FaultRow
from jobs.ports import FixedClock
from jobs.sandbox import SandboxServer, build_org
from jobs.sandbox.faults import BAD_200
from jobs.sandbox.org import Org
from jobs.store import Store
from tests.processes import config_toml, redis_server

DAYS = 60
MAX_RUNS = 8
# half of the faults are bad 200s, half the faults GitHub is known for
MIXED = (*BAD_200, *BAD_200, "500", "502", "503", "504", "secondary_403", "secondary_429",
         "timeout", "close")
Records = dict[str, list[Any]]


# ------------------------------------------------------------------------------ processes


class Rig:
    """The sandbox, a Redis, and the ``flowbot`` command pointed at them."""

    def __init__(self, org: Org, server: SandboxServer, redis_url: str, workdir: Path) -> None:
        self.org, self.server, self.redis_url, self.workdir = org, server, redis_url, workdir
        self.outputs: list[str] = []

    def config(self, prefix: str) -> Path:
        mapping = self.org.config(self.server.base_url)
        mapping["github"]["retention_days"] = 365
        path = self.workdir / f"{prefix}.toml"
        path.write_text(config_toml(mapping, storage=f'[storage]\nprefix = "{prefix}"\n'))
        return path

    def flowbot(self, prefix: str, *args: str) -> tuple[int, str, float]:
        """Run ``flowbot ARGS`` as a process; exit code, output (both streams), seconds."""
        env = {**os.environ, "GITHUB_TOKEN": self.server.token, "REDIS_URL": self.redis_url,
               "PYTHONPATH": str(ROOT), "FLOWBOT_LOG_LEVEL": "ERROR"}
        env.pop("FLOWBOT_CONFIG", None)
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-c", "from bot.cli import main; main()", *args,
             "--config", str(self.config(prefix))],
            env=env, capture_output=True, text=True, timeout=900, cwd=str(ROOT), check=False)
        out = done.stdout + done.stderr
        self.outputs.append(out)
        return done.returncode, out, time.monotonic() - started

    def until_done(self, prefix: str) -> list[tuple[int, str, float]]:
        """``flowbot backfill`` until it finishes, then ``flowbot sample`` until it does."""
        runs = []
        for command in (["backfill", "--days", str(DAYS)], ["sample"]):
            for _ in range(MAX_RUNS):
                runs.append(self.flowbot(prefix, *command))
                if runs[-1][0] == 0 and "deferred to the next cycle" not in runs[-1][1]:
                    break
        return runs

    def store(self, prefix: str) -> Store:
        return Store.connect(self.redis_url, prefix=prefix)

    def records(self, prefix: str) -> Records:
        store = self.store(prefix)
        try:
            return {repo: store.get_prs(f"{self.org.name}/{repo}") for repo in self.org.repos}
        finally:
            store.close()


def _compare(got: Records, expected: Records) -> str:
    differ = [f"{r}#{a.number}" for r in expected for a, b in zip(got[r], expected[r])
              if a != b] + [r for r in expected if len(got[r]) != len(expected[r])]
    total = sum(len(v) for v in expected.values())
    return "yes" if not differ else f"NO ({len(differ)} of {total} differ: {differ[:3]})"


def _tracebacks(runs: list[tuple[int, str, float]]) -> int:
    return sum("Traceback" in out for _, out, _ in runs)


# ------------------------------------------------------------------------------ rows


def _wrong_shape(rig: Rig, expected: Records) -> FaultRow:
    started = time.monotonic()
    prefix = "wrongshape"
    rig.server.stats.reset()
    rig.server.faults.rate(0.15, kinds=("malformed",), seed=21)
    for _ in range(5):  # one GraphQL page wrong on every try: its repository fails this run
        rig.server.faults.schedule("malformed", count=1, path="graphql")
    runs = rig.until_done(prefix)
    rig.server.faults.clear()
    failed_lines = sum(out.count(": FAILED:") for _, out, _ in runs)
    store = rig.store(prefix)
    try:
        sampled = sum(1 for t in rig.org.teams if store.queue_samples(t.name))
        partial = _alerts_on_partial(rig, store)
    finally:
        store.close()
    served = sum(1 for r in rig.server.stats.requests if r.fault == "malformed")
    same = _compare(rig.records(prefix), expected)
    ok = same == "yes" and _tracebacks(runs) == 0 and sampled == len(rig.org.teams) \
        and failed_lines > 0 and partial.startswith("skipped")
    return FaultRow(
        "GitHub 200 with a wrong-shape body (a list), 15%",
        "no abort, every team sampled, records = fault-free",
        f"{served} wrong-shape answers over {len(runs)} runs; {failed_lines} repository"
        f" failures reported and taken up next run; queue sampled {sampled}/"
        f"{len(rig.org.teams)} teams; alerts on the partial snapshot: {partial};"
        f" tracebacks {_tracebacks(runs)}; stored records identical to a fault-free run: {same}",
        ok, time.monotonic() - started)


def _alerts_on_partial(rig: Rig, store: Store) -> str:
    """Sample once more with one repository failing, refresh snapshots, evaluate alerts."""
    from bot.config import from_mapping
    from jobs.alerts import AlertEngine
    from jobs.cycle import run_cycle
    from jobs.github.client import connect
    from jobs.snapshot import refresh_all

    settings = from_mapping(rig.org.config(rig.server.base_url),
                            env={"GITHUB_TOKEN": rig.server.token})
    clock = FixedClock(datetime.now(UTC))
    repo = settings.repositories[0]
    rig.server.faults.schedule("malformed", count=5, path=f"/repos/{repo}/")
    source = connect(settings, clock=clock, sleep=lambda _s: None)
    report = run_cycle(settings, store, source, clock=clock)
    rig.server.faults.clear()
    team = next(n for n, t in settings.teams.items()
                if repo in [settings.full_repo(r) for r in t.repositories])
    refresh_all(settings, store, now=clock.now(), errors=report.errors)
    result = AlertEngine(settings, store, deliver=None).evaluate(  # type: ignore[arg-type]
        team, now=clock.now())
    return "skipped (partial data)" if result.skipped.startswith("partial data") else (
        f"EVALUATED ({result.skipped or 'no skip'})")


def _truncated_or_html(rig: Rig, expected: Records) -> FaultRow:
    started = time.monotonic()
    prefix = "truncated"
    rig.server.stats.reset()
    rig.server.faults.rate(0.15, kinds=("truncated", "html"), seed=22)
    # the first rerun jobs listing answers HTML on every try: its backlog entry must survive
    rig.server.faults.schedule("html", count=5, path="/jobs")
    runs = rig.until_done(prefix)
    rig.server.faults.clear()
    store = rig.store(prefix)
    try:
        archived = store.get_json("archived", f"{rig.org.name}/legacy-billing")
    finally:
        store.close()
    bad = sum(1 for r in rig.server.stats.requests if r.fault in ("truncated", "html"))
    reported = sum(out.count(": FAILED:") for _, out, _ in runs)
    same = _compare(rig.records(prefix), expected)
    ok = same == "yes" and archived is True and _tracebacks(runs) == 0 and reported > 0
    return FaultRow(
        "GitHub 200 with truncated JSON or an HTML page, 15%",
        "errors, not data; backlog, CI, archived flag kept",
        f"{bad} bad answers over {len(runs)} runs, every one retried or reported"
        f" ({reported} repository failures reported, none read as data); archived flag kept:"
        f" {archived is True}; stored records identical to a fault-free run (rerun attempts"
        f" included): {same}", ok, time.monotonic() - started)


def _retry_after(rig: Rig, expected: Records) -> FaultRow:
    started = time.monotonic()
    prefix = "retryafter"
    rig.server.faults.retry_after = 900
    rig.server.faults.schedule("secondary_403", count=1, path="graphql", retry_after=900)
    code, out, seconds = rig.flowbot(prefix, "backfill", "--days", str(DAYS))
    rig.server.faults.retry_after = 1
    deferred = out.count("deferred to the next cycle")
    runs = [(code, out, seconds), *rig.until_done(prefix)]
    same = _compare(rig.records(prefix), expected)
    ok = same == "yes" and seconds < 60 and deferred > 0 and _tracebacks(runs) == 0
    return FaultRow(
        "secondary limit with Retry-After: 900",
        "no 15-minute wait; deferred to the next run",
        f"the run took {seconds:.0f} s and deferred {deferred} repositories (waits are capped"
        f" at 60 s); {len(runs) - 1} more runs; stored records identical to a fault-free run:"
        f" {same}", ok, time.monotonic() - started)


def _mixed(rig: Rig, expected: Records) -> FaultRow:
    started = time.monotonic()
    rig.server.stats.reset()
    runs: list[tuple[int, str, float]] = []
    verdicts = []
    for seed in (23, 24):  # two whole backfills, for more faults of every kind
        rig.server.faults.rate(0.15, kinds=MIXED, seed=seed)
        runs += rig.until_done(f"mixed{seed}")
        rig.server.faults.clear()
        verdicts.append(_compare(rig.records(f"mixed{seed}"), expected))
    stats = rig.server.stats.requests
    bad = sum(1 for r in stats if r.fault in BAD_200)
    other = sum(1 for r in stats if r.fault and r.fault not in BAD_200)
    same = "yes" if all(v == "yes" for v in verdicts) else "; ".join(verdicts)
    ok = same == "yes" and _tracebacks(runs) == 0
    return FaultRow(
        "15% wrong-shape/truncated/HTML 200s + 5xx, timeouts, secondary limits",
        "stored records identical to a fault-free run",
        f"{bad} bad 200s and {other} other faults in {len(stats)} requests, two backfills,"
        f" {len(runs)} runs; tracebacks {_tracebacks(runs)}; stored records identical to a"
        f" fault-free run: {same}", ok, time.monotonic() - started)


def run() -> list[FaultRow]:
    """Every GitHub row of issue 11, against real processes."""
    logging.getLogger("jobs").setLevel(logging.ERROR)  # the rows say what failed
    end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
    org = build_org(end=end, weeks=4, teams=3, repos_per_team=2)
    with tempfile.TemporaryDirectory(prefix="flowbot-faults-github-") as tmp, \
            redis_server(Path(tmp)) as url, SandboxServer(org, clock=FixedClock(end)) as server:
        server.faults.hang_seconds = 5.0
        rig = Rig(org, server, url, Path(tmp))
        reference = rig.until_done("reference")
        if any(code for code, _, _ in reference[-1:]):
            raise RuntimeError("the fault-free run did not finish:\n" + reference[-1][1])
        expected = rig.records("reference")
        return [row(rig, expected) for row in (_wrong_shape, _truncated_or_html, _retry_after,
                                               _mixed)]


if __name__ == "__main__":
    for r in run():
        print(f"{'ok' if r.ok else 'NO'} | {r.fault} | {r.observed} ({r.seconds:.0f} s)")
