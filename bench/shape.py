"""Bench data shaped like the sandbox's busiest repository, and the machine's load.

:func:`sandbox_org_in_store` backfills the simulated organisation (served on loopback) into a
real Redis with Flowbot's own sampler; :func:`busiest_repo` reads back the records of its
busiest repository; :func:`replicate` copies them (new repositories, numbers and run ids, the
same events, reviews and CI per PR) to any size, so every bench measures records of the shape
Flowbot really stores, not hand-made light ones.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.config import from_mapping
from jobs import codec
from jobs.cycle import run_cycle
from jobs.github.client import connect
from jobs.model import PullRequest
from jobs.ports import FixedClock
from jobs.sandbox.org import build_org
from jobs.sandbox.server import SandboxServer
from jobs.settings import Settings
from jobs.store import Store

END = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday, midday
BACKFILL_DAYS = 56
_CACHE = Path(os.environ.get("TMPDIR", "/tmp")) / "flowbot-bench-busiest-repo.json"


def load() -> str:
    """``load 3.2 / 2.9 / 2.1 on 2 CPUs``: what else the machine was doing."""
    one, five, fifteen = os.getloadavg()
    return f"load {one:.1f} / {five:.1f} / {fifteen:.1f} on {os.cpu_count()} CPUs"


def _cpu_ticks() -> list[int] | None:
    """The machine's CPU time so far by kind (/proc/stat's first line), or None off Linux."""
    try:
        with open("/proc/stat") as stat:
            return [int(v) for v in stat.readline().split()[1:]]
    except OSError:
        return None


class Stolen:
    """How much of the CPUs' time a hypervisor gave to other guests (``steal``) between this
    object's making and :meth:`text`: on a shared VM it comes and goes, and a run whose cores
    were partly somebody else's is slower for it, whatever the code did."""

    def __init__(self) -> None:
        self._since = _cpu_ticks()

    def text(self) -> str:
        now = _cpu_ticks()
        if self._since is None or now is None or len(now) < 8:
            return "steal unknown"
        spent = [b - a for a, b in zip(self._since, now, strict=False)]
        return f"{spent[7] / max(sum(spent), 1) * 100:.0f}% of CPU time stolen by the hypervisor"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def sandbox_org_in_store(store: Store, *, scale: float = 1.0) -> Iterator[tuple[Settings, Any, FixedClock]]:
    """The sandbox organisation served on loopback and backfilled into ``store`` by
    ``jobs.cycle.run_cycle``; yields (settings, GitHub source, clock) with the server up."""
    org = build_org(end=END, scale=scale)
    clock = FixedClock(org.end)
    with SandboxServer(org, clock=clock) as server:
        data = org.config(server.base_url)
        settings = from_mapping(data, env={"GITHUB_TOKEN": server.token}, source="sandbox")
        source = connect(settings, clock=clock)
        try:
            run_cycle(settings, store, source, clock=clock, days=BACKFILL_DAYS)
            for _ in range(20):  # until the rerun backlog is drained
                report = run_cycle(settings, store, source, clock=clock, days=BACKFILL_DAYS)
                if report.complete and not any(r.backlog for r in report.repos):
                    break
            yield settings, source, clock
        finally:
            source.close()


def busiest_repo(redis_url: str | None) -> list[PullRequest]:
    """The records of the sandbox's busiest repository (the most PRs), as Flowbot stored them
    after a backfill; cached in a temp file between runs."""
    if _CACHE.exists():
        return codec.loads_list(PullRequest, _CACHE.read_bytes())
    store = Store.connect(redis_url, prefix="flowbench-shape")
    store.flush_prefix()
    store.ensure_schema()
    try:
        with sandbox_org_in_store(store) as (settings, _, _):
            prs = max((store.get_prs(r) for r in settings.repositories), key=len)
    finally:
        store.flush_prefix()
        store.close()
    _CACHE.write_bytes(codec.dumps_list(PullRequest, prs))
    return prs


def replicate(template: list[PullRequest], n: int, *, repos: list[str],
              first_number: int = 1) -> list[PullRequest]:
    """``n`` PRs spread over ``repos``: copies of ``template`` in turn, each with its own
    repository, number, URL and CI run ids (events, reviews, CI and times as in the template)."""
    out = []
    for i in range(n):
        t = template[i % len(template)]
        repo = repos[i % len(repos)]
        number = first_number + i
        checks = tuple(replace(c, run_id=c.run_id * 1_000_000 + number) for c in t.checks)
        out.append(replace(t, repo=repo, number=number, checks=checks,
                           url=f"https://github.com/{repo}/pull/{number}"))
    return out


def shape(prs: list[PullRequest]) -> str:
    """``per PR: 4.1 events, 2.3 reviews, 9.8 CI attempts, 1.9 KB stored; 12% open``."""
    n = max(1, len(prs))
    size = sum(len(codec.dumps(p)) for p in prs) / n
    opened = sum(p.state == "open" for p in prs) / n
    return (f"per PR: {sum(len(p.events) for p in prs) / n:.1f} events, "
            f"{sum(len(p.reviews) for p in prs) / n:.1f} reviews, "
            f"{sum(len(p.checks) for p in prs) / n:.1f} CI attempts, {size / 1024:.1f} KB stored;"
            f" {opened:.0%} open")


def timed(fn: Any, *args: Any, **kw: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    out = fn(*args, **kw)
    return time.perf_counter() - started, out


__all__ = ["busiest_repo", "load", "peak_rss_mb", "replicate", "sandbox_org_in_store",
           "shape", "timed"]
