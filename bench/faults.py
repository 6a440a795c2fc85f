"""The fault suite: every failure Flowbot promises to survive, reproduced and checked.

Each ``bench/faults_<area>.py`` module exposes ``run() -> list[FaultRow]``: it starts what it
needs (a redis-server of its own on a free loopback port, the sandbox GitHub, the Slack fake,
``flowbot worker`` or gunicorn as real processes), injects its faults on the wire, and reports
one row per fault: what a team should have seen, what it saw, and whether they agree. This
runner imports every such module and prints one table; it exits 1 when a row failed.

    .venv/bin/python bench/faults.py [AREA ...]     # e.g. delivery github web garbage

Run by hand (it starts and kills processes and takes minutes); the fast cases of the same
faults are in the test suite.
"""

from __future__ import annotations

import importlib
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


@dataclass(frozen=True, slots=True)
class FaultRow:
    """One fault and its outcome: ``expected`` and ``observed`` are short, human sentences
    (for Slack: "posted 12, expected 12, duplicates 0, lost 0"; for records: "records equal to a
    fault-free run: yes")."""

    fault: str
    expected: str
    observed: str
    ok: bool
    seconds: float = 0.0


def _areas(wanted: list[str]) -> list[str]:
    found = sorted(p.stem.removeprefix("faults_") for p in (ROOT / "bench").glob("faults_*.py"))
    return [a for a in found if not wanted or a in wanted]


def main(argv: list[str]) -> int:
    rows: list[FaultRow] = []
    for area in _areas(argv):
        started = time.monotonic()
        try:
            module = importlib.import_module(f"bench.faults_{area}")
            rows.extend(module.run())
        except Exception:  # a broken area is a failed row, not a crashed suite
            rows.append(FaultRow(f"{area}: suite", "runs", traceback.format_exc(limit=3).strip()
                                 .splitlines()[-1], False, time.monotonic() - started))
    width = max((len(r.fault) for r in rows), default=10)
    print(f"{'fault':<{width}} | ok | {'expected':<40} | observed")
    print(f"{'-' * width}-|----|-{'-' * 40}-|---------")
    for r in rows:
        print(f"{r.fault:<{width}} | {'ok' if r.ok else 'NO':<2} | {r.expected:<40} | {r.observed}"
              f"  ({r.seconds:.0f} s)")
    failed = sum(not r.ok for r in rows)
    print(f"\n{len(rows) - failed} of {len(rows)} faults handled as promised")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
