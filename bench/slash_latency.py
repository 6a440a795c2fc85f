"""Benchmark: signed `/flow status` and `/flow queue` under gunicorn, and App Home, at size.

Seeds ``--teams`` team snapshots, each computed by ``jobs.snapshot.compute_team_snapshot`` from
records copied from the sandbox's busiest repository (``bench/shape.py``) with ``--open-prs``
open PRs in its queue, and stores them as the worker does. Starts ``flowbot web`` (gunicorn,
``--workers`` x ``--threads``, the Procfile's 2 x 8 by default) with Slack pointed at the fake
Slack API, sends ``--requests`` signed slash commands per subcommand, ``--concurrency`` at a
time, over every team in turn (after 200 not counted, to warm the workers up), and prints
p50/p90/p99, throughput and errors. App Home (an event whose view is published after the
acknowledgement) is timed in-process: ``bot.home.home_view`` from the same Redis, from
``--concurrency`` threads.

Beside each, in the same process and moment: the naive read, the whole snapshot decoded and
validated with pydantic (what every command did before issue 14), then rendered.

Target (issue 14): p99 under 100 ms at 50 concurrent with 50 teams of 2,000 open PRs each.

    .venv/bin/python bench/slash_latency.py [--teams 50] [--open-prs 2000] [--requests 2000]
        [--concurrency 50] [--workers 2] [--threads 8]

Uses ``REDIS_URL`` as given (its database included), else an embedded Redis in a temp dir; the
data lives under a prefix of its own (``flowbench``), removed afterwards.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from slack_sdk.signature import SignatureVerifier

from bench.shape import END, busiest_repo, load, replicate
from bot.config import from_mapping
from jobs.model import TeamSnapshot
from jobs.snapshot import compute_team_snapshot
from jobs.store import Store
from tests.fakes.slack_api import FakeSlack
from tests.processes import free_port
from tests.slack_helpers import BOB, SECRET, slash_body

PREFIX = "flowbench"


def config_text(data: Path, teams: int) -> str:
    """The web's config: ``teams`` teams, bob a member of each (so Home lists them all)."""
    out = [f'[github]\norganisation = "acme"\n\n[storage]\nprefix = "{PREFIX}"\npath = "{data}"\n']
    for t in range(teams):
        out.append(f'[teams.team{t}]\nmembers = [{{ github = "bob", slack = "{BOB}" }}, '
                   f'{{ github = "alice", slack = "U0ALICE01" }}]\nrepositories = ["repo-{t}"]\n'
                   f'channel = "C0TEAM{t:04d}"\n')
    return "\n".join(out)


def team_snapshot(open_prs: int, redis_url: str | None) -> TeamSnapshot:
    """One real snapshot with ``open_prs`` PRs in its queue, from sandbox-shaped records."""
    template = busiest_repo(redis_url)
    opened = [p for p in template if p.state == "open" and not p.draft  # what a queue lists
              and p.author_type == "User"]
    closed = [p for p in template if p.state != "open"]
    prs = replicate(opened, open_prs, repos=["acme/repo-0"]) + replicate(
        closed, open_prs, repos=["acme/repo-0"], first_number=open_prs + 1)
    people = sorted({p.author for p in template if p.author} |
                    {r.author for p in template for r in p.reviews if r.author})
    settings = from_mapping({"github": {"organisation": "acme"}, "teams": {"team0": {
        "members": [{"github": m} for m in people], "repositories": ["repo-0"],
        "channel": "C0TEAM0000"}}}, env={})
    # reviewers the copies wait on, then bob among them: Home has something to list
    snap = compute_team_snapshot(settings, "team0", prs, [], now=END)
    items = tuple(replace(i, waiting_on=("bob", *i.waiting_on)) if k % 3 == 0 else i
                  for k, i in enumerate(snap.queue_items))
    return replace(snap, queue_items=items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teams", type=int, default=50)
    parser.add_argument("--open-prs", type=int, default=2000, help="open PRs in each team's queue")
    parser.add_argument("--requests", type=int, default=2000, help="per subcommand")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--server", choices=("procfile", "gthread"), default="procfile",
                        help="procfile: `flowbot web` (gunicorn + uvicorn workers, the Procfile's"
                        " command); gthread: gunicorn's threaded WSGI workers on bot.web:create_app()"
                        " (the previous Procfile), for a like-for-like comparison")
    args = parser.parse_args()
    url = os.environ.get("REDIS_URL") or None

    base = team_snapshot(args.open_prs, url)
    now = datetime.now(UTC)
    base = replace(base, computed_at=now - timedelta(minutes=2), data_as_of=now - timedelta(minutes=3))
    with tempfile.TemporaryDirectory() as tmp, FakeSlack() as fake:
        data = Path(tmp) / "flowbot.rdb"
        config = Path(tmp) / "config.toml"
        config.write_text(config_text(data, args.teams))
        store = Store.connect(url, data_path=data, prefix=PREFIX)
        store.flush_prefix()
        store.ensure_schema()
        for t in range(args.teams):
            store.put_snapshot(replace(base, team=f"team{t}"))
        whole = len(_codec_dumps(base))
        print(f"{args.teams} teams, {len(base.queue_items):,} PRs in each queue; a whole snapshot "
              f"is {whole / 1024:.0f} KB, its head {len(_codec_dumps(replace(base, queue_items=(), queue_trend=()))) / 1024:.0f} KB;"
              f" Redis: {store.location}")
        naive(base, store, args)
        env = {**os.environ, "SLACK_SIGNING_SECRET": SECRET, "SLACK_BOT_TOKEN": fake.token,
               "SLACK_API_URL": fake.api_url, "FLOWBOT_LOG_LEVEL": "WARNING"}
        env.pop("REDIS_URL", None)
        if url:
            env["REDIS_URL"] = url
        port = free_port()
        if args.server == "gthread":
            env["FLOWBOT_CONFIG"] = str(config)
            command = [sys.executable, "-m", "gunicorn", "--workers", str(args.workers),
                       "--threads", str(args.threads), "--bind", f"127.0.0.1:{port}",
                       "bot.web:create_app()"]
        else:
            command = [sys.executable, "-c", "from bot.cli import main; main()", "web", "--config",
                       str(config), "--host", "127.0.0.1", "--port", str(port), "--workers",
                       str(args.workers), "--threads", str(args.threads)]
        server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            _wait_healthy(port, server)
            for sub, expect in (("status", b"Flow status: team"), ("queue", b"Review queue: team")):
                _run(port, sub, expect, args.teams, 200, args.concurrency)  # warm-up
                before = load()
                began = time.perf_counter()
                latencies, errors = _run(port, sub, expect, args.teams, args.requests, args.concurrency)
                wall = time.perf_counter() - began
                _report(f"/flow {sub} over HTTP, {args.server}: gunicorn {args.workers}x{args.threads}", latencies,
                        errors, wall, before)
            home(store, config, args)
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
            store.flush_prefix()
            store.close()
    print(f"auth.test calls to the fake Slack: {len(fake.calls('auth.test'))}")


def _codec_dumps(value: Any) -> bytes:
    from jobs import codec

    return codec.dumps(value)


def naive(base: TeamSnapshot, store: Store, args: argparse.Namespace) -> None:
    """In-process, same moment: read + render per command, the naive way (one key holding the
    whole snapshot, pydantic-validated) beside today's (only the part rendered)."""
    from pydantic import TypeAdapter

    from bot.blocks.queue import MAX_ITEMS, render_queue
    from bot.blocks.status import render_status
    from jobs import codec

    adapter = TypeAdapter(TeamSnapshot)
    blob = codec.dumps(base)
    store.set_record("bench_whole", "team0", value=base)  # the old storage form, for the GET
    now = datetime.now(UTC)

    def old(sub: str) -> None:
        raw = store._r.get(store.key("bench_whole", "team0"))
        snap = adapter.validate_json(raw)
        (render_status if sub == "status" else render_queue)(snap, now=now)

    def new(sub: str) -> None:
        if sub == "status":
            head = store.get_snapshot_head("team0")
            assert head is not None
            render_status(head, now=now)
        else:
            head, items, total = store.get_queue_page("team0", count=MAX_ITEMS)
            assert head is not None
            render_queue(replace(head, queue_items=tuple(items)), now=now, total=total)

    adapter.validate_json(blob)
    for sub in ("status", "queue"):
        runs = {}
        for name, fn in (("naive", old), ("now", new)):
            times = []
            for _ in range(30):
                t = time.perf_counter()
                fn(sub)
                times.append(time.perf_counter() - t)
            runs[name] = statistics.median(times)
        print(f"in-process read + render of /flow {sub}: naive (whole snapshot, pydantic) "
              f"{_ms(runs['naive'])}, now {_ms(runs['now'])} = {runs['naive'] / runs['now']:.0f}x  [{load()}]")
    store.delete("bench_whole", "team0")


def home(store: Store, config: Path, args: argparse.Namespace) -> None:
    """App Home's view for bob (a member of every team: the 30 cards a Home view holds),
    ``--requests`` times from ``--concurrency`` threads in this one process (a Home view is
    published after the event's acknowledgement, so this is the work, not a request's wait),
    and one at a time."""
    from bot.app import BotDeps
    from bot.cli import load_settings
    from bot.home import home_view
    from jobs.ports import SystemClock

    settings = load_settings(config)
    deps = BotDeps(settings=settings, store=store, clock=SystemClock())
    view = home_view(deps, BOB)
    assert "Waiting on you" in str(view)
    latencies: list[float] = []
    lock = threading.Lock()

    def one(_: int) -> None:
        t = time.perf_counter()
        home_view(deps, BOB)
        with lock:
            latencies.append(time.perf_counter() - t)

    alone = []
    for _ in range(50):
        t = time.perf_counter()
        home_view(deps, BOB)
        alone.append(time.perf_counter() - t)
    print(f"App Home view one at a time: median {_ms(statistics.median(alone))}, p99 "
          f"{_ms(_pct(sorted(alone), 0.99))}  [{load()}]")
    before = load()
    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        list(pool.map(one, range(args.requests)))
    _report(f"App Home view (30 team cards + bob's waiting lists), one process, {args.concurrency} threads",
            latencies, 0, time.perf_counter() - began, before)


def _report(label: str, latencies: list[float], errors: int, wall: float, before: str) -> None:
    latencies.sort()
    print(f"{label}: {len(latencies)} requests, {errors} errors")
    if latencies:
        print(f"  p50 {_ms(statistics.median(latencies))}  p90 {_ms(_pct(latencies, 0.90))}  "
              f"p99 {_ms(_pct(latencies, 0.99))}  max {_ms(latencies[-1])}  "
              f"{len(latencies) / wall:.0f} requests/s  (target p99 < 100 ms)  [before: {before}; after: {load()}]")


def _wait_healthy(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"flowbot web exited: {server.stderr.read().decode() if server.stderr else ''}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("flowbot web did not become healthy within 30 s")


def _run(port: int, sub: str, expect: bytes, teams: int, requests: int,
         concurrency: int) -> tuple[list[float], int]:
    local = threading.local()
    verifier = SignatureVerifier(SECRET)
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    ts = str(int(time.time()))
    signed = []  # signed once, up front: the client's CPU is not timed
    for t in range(teams):
        body = slash_body(f"{sub} team{t}", user=BOB, response_url="http://127.0.0.1:9/unused")
        signed.append((body, {"X-Slack-Request-Timestamp": ts,
                              "X-Slack-Signature": verifier.generate_signature(timestamp=ts, body=body.decode()),
                              "Content-Type": "application/x-www-form-urlencoded"}))

    def one(i: int) -> None:
        nonlocal errors
        conn = getattr(local, "conn", None) or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        local.conn = conn
        body, headers = signed[i % teams]
        started = time.perf_counter()
        try:
            conn.request("POST", "/slack/events", body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            ok = response.status == 200 and expect in payload
        except (OSError, http.client.HTTPException):
            local.conn = None
            ok = False
        elapsed = time.perf_counter() - started
        with lock:
            latencies.append(elapsed)
            errors += 0 if ok else 1

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, range(requests)))
    return latencies, errors


def _pct(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, round(q * (len(sorted_values) - 1)))
    return sorted_values[index]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


if __name__ == "__main__":
    main()
