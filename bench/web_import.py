"""Benchmark: what a web worker imports, and how long it takes to build its app.

Runs, in fresh interpreters, exactly what a gunicorn worker of ``flowbot web`` runs at boot,
``bot.serve.asgi_app()`` (settings from a temporary config; Redis pointed at a closed port,
which the web tier boots without), and prints the median wall time of import + build, whether
pandas or matplotlib got imported, and if so through which chain of modules (from
``python -X importtime``). Target (issue 14): a web worker imports no pandas/matplotlib.

    .venv/bin/python bench/web_import.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("pandas", "matplotlib")

WORKER = f"""
import json, sys, time
started = time.perf_counter()
import bot.serve
app = bot.serve.asgi_app(None)
built = time.perf_counter() - started
print(json.dumps({{"seconds": built, "loaded": {{m: m in sys.modules for m in {HEAVY!r}}}}}))
"""

CONFIG = """
[github]
organisation = "acme"

[teams.platform]
members = [{ github = "bob", slack = "U0BOB0001" }]
repositories = ["api"]
channel = "C0PLATFORM"
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: Redis "down", refused at once
        config = Path(tmp) / "config.toml"
        config.write_text(CONFIG)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "FLOWBOT_CONFIG": str(config),
               "REDIS_URL": f"redis://127.0.0.1:{closed.getsockname()[1]}/0",
               "SLACK_SIGNING_SECRET": "bench-secret", "SLACK_BOT_TOKEN": "xoxb-bench-not-a-token",
               "FLOWBOT_LOG_LEVEL": "ERROR"}
        runs = [json.loads(subprocess.run([sys.executable, "-c", WORKER], env=env, check=True,
                                          capture_output=True, text=True).stdout) for _ in range(args.runs)]
        trace = subprocess.run([sys.executable, "-X", "importtime", "-c", WORKER], env=env, check=True,
                               capture_output=True, text=True).stderr
    seconds = sorted(r["seconds"] for r in runs)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print(f"web worker import + app (bot.serve.asgi_app): median {statistics.median(seconds) * 1000:.0f} ms "
          f"(min {seconds[0] * 1000:.0f}, max {seconds[-1] * 1000:.0f}; {len(seconds)} fresh interpreters)")
    for module in HEAVY:
        loaded = runs[0]["loaded"][module]
        line = f"{module}: {'IMPORTED' if loaded else 'not imported'}"
        chain = _chain(trace, module) if loaded else []
        if chain:
            cost = _cumulative(trace, module)
            line += f" ({cost / 1000:.0f} ms) via " + " -> ".join(chain)
        print(line)


def _rows(trace: str) -> list[tuple[int, int, str]]:
    """(depth, cumulative microseconds, module) per ``-X importtime`` line, in print order."""
    rows = []
    for line in trace.splitlines():
        if not line.startswith("import time:") or "|" not in line or "cumulative" in line:
            continue
        _, cumulative, name = line.removeprefix("import time:").split("|")
        depth = (len(name) - len(name.lstrip(" "))) // 2
        rows.append((depth, int(cumulative), name.strip()))
    return rows


def _chain(trace: str, module: str) -> list[str]:
    """The chain of importers that first pulled ``module`` in (outermost first).

    ``-X importtime`` prints a module after everything it imported, one level deeper; so the
    importer of a line is the next line below it with a smaller depth.
    """
    rows = _rows(trace)
    for i, (depth, _, name) in enumerate(rows):
        if name == module:
            chain, want = [module], depth
            for d, _, parent in rows[i + 1:]:
                if d < want:
                    chain.append(parent)
                    want = d
            return [m for m in reversed(chain) if not m.startswith("_")]
    return []


def _cumulative(trace: str, module: str) -> int:
    return next((c for _, c, name in _rows(trace) if name == module), 0)


if __name__ == "__main__":
    main()
