"""Issue 16's budget line: four workers on one token together never exceed the configured
share of its rate limit.

Four ``flowbot sample`` processes start at once (each a whole sampling cycle, as four workers
would run one between them) against the sandbox GitHub on loopback, whose token has a limit
of ``LIMIT`` points per hour and resource, on one redis-server of this bench's own. The org
needs far more than the share to collect, so every process runs into the budget. The sandbox
counts what was spent on its side; the bench prints it against the share, per resource:

- shared: the four processes on one Redis prefix (one account per credential and resource);
- per process (what each worker did before issue 16): four prefixes, four accounts.

    .venv/bin/python bench/budget_shared.py [--limit 2000] [--share 0.25]
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jobs.ports import FixedClock
from jobs.sandbox import SandboxServer, build_org
from jobs.sandbox.org import Org
from tests.processes import config_toml, redis_server

WORKERS = 4


def _config(org: Org, base_url: str, workdir: Path, prefix: str, share: float) -> Path:
    mapping = org.config(base_url)
    mapping["github"]["budget_share"] = share
    mapping["github"]["retention_days"] = 365
    path = workdir / f"{prefix}.toml"
    path.write_text(config_toml(mapping, storage=f'[storage]\nprefix = "{prefix}"\n'))
    return path


def _run(server: SandboxServer, redis_url: str, configs: list[Path]) -> tuple[float, list[int]]:
    """Start one ``flowbot sample`` per config at once; wall seconds and exit codes."""
    env = {**os.environ, "GITHUB_TOKEN": server.token, "REDIS_URL": redis_url,
           "PYTHONPATH": str(ROOT), "FLOWBOT_LOG_LEVEL": "ERROR"}
    env.pop("FLOWBOT_CONFIG", None)
    started = time.monotonic()
    procs = [subprocess.Popen([sys.executable, "-c", "from bot.cli import main; main()", "sample",
                               "--config", str(c)], env=env, cwd=str(ROOT),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for c in configs]
    codes = [p.wait(timeout=1800) for p in procs]
    return time.monotonic() - started, codes


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=2000, help="the token's points per hour")
    parser.add_argument("--share", type=float, default=0.25, help="github.budget_share")
    args = parser.parse_args(argv)
    end = datetime.now(UTC).replace(microsecond=0)
    org = build_org(end=end, weeks=8, teams=4, repos_per_team=3, scale=2.5)
    share = max(1, math.floor(args.limit * args.share))
    print(f"load average {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f}"
          f" on {os.cpu_count()} cores; org: {len(org.repos)} repositories,"
          f" {sum(len(p) for p in org.prs.values())} PRs; token limit {args.limit}/h per resource,"
          f" budget_share {args.share} -> share {share}")
    print(f"{'accounting':<28} | {'core used':>9} | {'graphql used':>12} | {'share':>5} |"
          f" {'within':>6} | seconds | exit codes")
    worst = 0.0
    with tempfile.TemporaryDirectory(prefix="flowbench-budget-") as tmp:
        work = Path(tmp)
        with redis_server(work) as redis_url:
            for label, prefixes in (("shared (one Redis account)", ["shared"] * WORKERS),
                                    ("per process (4 accounts)", [f"own{i}" for i in range(WORKERS)])):
                # a fresh token per run: its own hourly window
                server = SandboxServer(org, clock=FixedClock(end), rate_limit=args.limit,
                                       token=f"bench-{label[:3]}")
                base = server.start()
                try:
                    configs = [_config(org, base, work, p, args.share) for p in prefixes]
                    seconds, codes = _run(server, redis_url, configs)
                    core = server.bucket().used
                    gql = server.bucket(resource="graphql").used
                finally:
                    server.stop()
                within = core <= share and gql <= share
                if label.startswith("shared"):
                    worst = max(core, gql) / share
                print(f"{label:<28} | {core:>9} | {gql:>12} | {share:>5} |"
                      f" {'yes' if within else 'NO':>6} | {seconds:>7.1f} | {codes}")
    print(f"\nshared: the four workers spent at most {worst:.0%} of the share of one token's limit")
    return 0 if worst <= 1 else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
