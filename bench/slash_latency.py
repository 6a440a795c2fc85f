"""Benchmark: signed `/flow status` and `/flow queue` under `flowbot web`, and App Home, at size.

Seeds ``--teams`` team snapshots, each computed by ``jobs.snapshot.compute_team_snapshot`` from
records copied from the sandbox's busiest repository (``bench/shape.py``) with ``--open-prs``
open PRs in its queue, and stores them as the worker does. Starts two ``flowbot web`` servers
(the Procfile's command, gunicorn with ``--workers`` uvicorn workers) with Slack pointed at the
fake Slack API: the naive one with ``--no-fast-lane`` (every request through a2wsgi and Bolt,
reading the snapshot's parts and rendering per request, as before issue 14's rendered answers)
and the Procfile's (the fast lane: `bot/fastlane.py`, answers rendered once per snapshot,
`bot/answers.py`). For each subcommand, both are loaded in turn, in the same run, with
``--concurrency`` connections sending signed slash commands over every team in turn (after a
warm-up not counted): with ``wrk`` when it is installed (C, so the load generator takes little of
the CPU the servers share; ``--client python`` uses threads of http.client instead). Printed:
p50/p90/p99, requests/s, errors, the servers' CPU per request and the load average.

App Home (an event whose view is published after the acknowledgement) is timed in-process, the
view's build: the naive way (``bot.home.records_view``: cards and waiting lists decoded as records
and rendered) beside ``bot.home.home_view`` (rendered parts), one at a time and from
``--concurrency`` threads. App Home end to end, from the signed event to ``views.publish``
arriving at Slack under ``flowbot web``: ``bench/home_latency.py`` (it shares this seeding).

In-process too, per command, the read + render of one answer: the whole snapshot decoded and
validated with pydantic (what every command did before issue 14), the parts read and rendered
(the Bolt path), and the rendered answer read and completed (the fast lane).

Target (issue 14): p99 under 100 ms at 50 concurrent with 50 teams of 2,000 open PRs each.

    .venv/bin/python bench/slash_latency.py [--teams 50] [--open-prs 2000] [--seconds 10]
        [--requests 2000] [--concurrency 50] [--workers 2] [--client auto|wrk|python]

Uses ``REDIS_URL`` as given (its database included), else an embedded Redis in a temp dir; the
data lives under a prefix of its own (``flowbench``), removed afterwards.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from slack_sdk.signature import SignatureVerifier

from bench.shape import END, Stolen, busiest_repo, load, replicate
from bot.config import from_mapping
from jobs.model import TeamSnapshot
from jobs.snapshot import compute_team_snapshot
from jobs.store import Store
from tests.fakes.slack_api import FakeSlack
from tests.processes import free_port
from tests.slack_helpers import ALICE, BOB, SECRET, slash_body

PREFIX = "flowbench"


def config_text(data: Path, teams: int, *, members: tuple[tuple[str, str], ...] = (("bob", BOB), ("alice", ALICE)),
                prefix: str = PREFIX) -> str:
    """The web's config: ``teams`` teams, each with every one of ``members`` (GitHub login,
    Slack ID): by default bob and alice, so bob's Home lists them all."""
    listed = ", ".join(f'{{ github = "{login}", slack = "{slack}" }}' for login, slack in members)
    out = [f'[github]\norganisation = "acme"\n\n[storage]\nprefix = "{prefix}"\npath = "{data}"\n']
    for t in range(teams):
        out.append(f'[teams.team{t}]\nmembers = [{listed}]\nrepositories = ["repo-{t}"]\n'
                   f'channel = "C0TEAM{t:04d}"\n')
    return "\n".join(out)


def team_snapshot(open_prs: int, redis_url: str | None, *, waiting: tuple[str, ...] = ("bob",)) -> TeamSnapshot:
    """One real snapshot with ``open_prs`` PRs in its queue, from sandbox-shaped records; every
    third PR also waits on one of the ``waiting`` logins in turn (so their Home lists PRs)."""
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
    # reviewers the copies wait on, then one of ``waiting`` among them: Home has something to list
    snap = compute_team_snapshot(settings, "team0", prs, [], now=END)
    items = tuple(replace(i, waiting_on=(waiting[k // 3 % len(waiting)], *i.waiting_on)) if k % 3 == 0 else i
                  for k, i in enumerate(snap.queue_items))
    return replace(snap, queue_items=items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teams", type=int, default=50)
    parser.add_argument("--open-prs", type=int, default=2000, help="open PRs in each team's queue")
    parser.add_argument("--seconds", type=float, default=10, help="per subcommand and server (wrk)")
    parser.add_argument("--requests", type=int, default=2000,
                        help="per subcommand and server (--client python), and App Home views")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto",
                        help="auto: wrk when installed (apt-get install wrk), else python")
    args = parser.parse_args()
    url = os.environ.get("REDIS_URL") or None
    client = args.client if args.client != "auto" else ("wrk" if shutil.which("wrk") else "python")

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
              f" Redis: {store.location}; load generator: {client}")
        naive(base, store, config, args)
        env = web_env(fake.token, fake.api_url, url)
        servers: dict[str, tuple[int, subprocess.Popen[bytes]]] = {}
        try:
            for name, extra in (("naive", ["--no-fast-lane"]), ("now", [])):
                servers[name] = start_web(config, env, workers=args.workers, extra=extra)
            for port, server in servers.values():
                _wait_healthy(port, server)
            for sub, expect in (("status", "Flow status: team"), ("queue", "Review queue: team")):
                results = {}
                for name, (port, server) in servers.items():
                    requests = _signed(sub, args.teams)
                    _load(client, port, requests, expect, seconds=2, count=200, concurrency=args.concurrency)  # warm-up
                    cpu = _tree_cpu(server.pid)
                    before, stolen = load(), Stolen()
                    results[name] = _load(client, port, requests, expect, seconds=args.seconds,
                                          count=args.requests, concurrency=args.concurrency)
                    results[name].cpu = _tree_cpu(server.pid) - cpu
                    label = ("naive: flowbot web --no-fast-lane (a2wsgi + Bolt, parts read and rendered per request)"
                             if name == "naive" else "now: flowbot web (the Procfile's: fast lane, rendered answers)")
                    results[name].report(f"/flow {sub} over HTTP, {label}, {args.workers} workers, "
                                         f"{args.concurrency} connections", before, stolen)
                old, new = results["naive"], results["now"]
                if old.count and new.count:
                    print(f"  /flow {sub}: p99 {_ms(old.pct(0.99))} -> {_ms(new.pct(0.99))} "
                          f"({old.pct(0.99) / new.pct(0.99):.1f}x), server CPU per request "
                          f"{old.cpu_per_request * 1000:.2f} -> {new.cpu_per_request * 1000:.2f} ms "
                          f"({old.cpu_per_request / max(new.cpu_per_request, 1e-9):.1f}x)")
            home(store, config, args)
        finally:
            stop_all([server for _, server in servers.values()])
            store.flush_prefix()
            store.close()
    print(f"auth.test calls to the fake Slack: {len(fake.calls('auth.test'))}")


def web_env(token: str, api_url: str, redis_url: str | None) -> dict[str, str]:
    """``flowbot web``'s environment: the bench's signing secret, Slack at ``api_url``, Redis
    at ``redis_url`` (else the embedded one the master starts)."""
    env = {**os.environ, "SLACK_SIGNING_SECRET": SECRET, "SLACK_BOT_TOKEN": token,
           "SLACK_API_URL": api_url, "FLOWBOT_LOG_LEVEL": "WARNING"}
    env.pop("REDIS_URL", None)
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def start_web(config: Path, env: dict[str, str], *, workers: int, extra: list[str] | None = None,
              prelude: str = "") -> tuple[int, subprocess.Popen[bytes]]:
    """``flowbot web`` (the Procfile's command: gunicorn, ``workers`` workers) on a free
    loopback port, in a session of its own; ``prelude``: Python run first in its master (the
    workers are forked from it). Returns (port, process); :func:`_wait_healthy` waits for it."""
    port = free_port()
    command = [sys.executable, "-c", f"{prelude}from bot.cli import main; main()", "web", "--config",
               str(config), "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), *(extra or [])]
    return port, subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  start_new_session=True)


def stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    """Terminate ``processes`` (each the head of its own session), killing what lingers."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait(timeout=5)


def _codec_dumps(value: Any) -> bytes:
    from jobs import codec

    return codec.dumps(value)


def naive(base: TeamSnapshot, store: Store, config: Path, args: argparse.Namespace) -> None:
    """In-process, same moment, per command: read + render the naive way (one key holding the
    whole snapshot, pydantic-validated), the Bolt path's (only the parts rendered), and the
    fast lane's (the answer rendered for this snapshot, completed with its data age)."""
    from pydantic import TypeAdapter

    from bot.answers import Answers
    from bot.app import BotDeps
    from bot.blocks.queue import MAX_ITEMS, render_queue
    from bot.blocks.status import render_status
    from bot.cli import load_settings
    from jobs import codec
    from jobs.ports import SystemClock

    adapter = TypeAdapter(TeamSnapshot)
    blob = codec.dumps(base)
    store.set_record("bench_whole", "team0", value=base)  # the old storage form, for the GET
    now = datetime.now(UTC)
    answers = Answers(BotDeps(settings=load_settings(config), store=store, clock=SystemClock()))

    def old(sub: str) -> None:
        raw = store._r.get(store.key("bench_whole", "team0"))
        snap = adapter.validate_json(raw)
        (render_status if sub == "status" else render_queue)(snap, now=now)

    def parts(sub: str) -> None:
        if sub == "status":
            head = store.get_snapshot_head("team0")
            assert head is not None
            render_status(head, now=now)
        else:
            head, items, total = store.get_queue_page("team0", count=MAX_ITEMS)
            assert head is not None
            render_queue(replace(head, queue_items=tuple(items)), now=now, total=total)

    def rendered(sub: str) -> None:
        assert answers.slash("team0", sub, now=now, share=False) is not None

    adapter.validate_json(blob)
    for sub in ("status", "queue"):
        runs = {}
        for name, fn in (("naive", old), ("parts", parts), ("rendered", rendered)):
            times = []
            for _ in range(30):
                t = time.perf_counter()
                fn(sub)
                times.append(time.perf_counter() - t)
            runs[name] = statistics.median(times)
        print(f"in-process read + render of /flow {sub}: naive (whole snapshot, pydantic) "
              f"{_ms(runs['naive'])}, parts read and rendered (Bolt path) {_ms(runs['parts'])}, "
              f"rendered answer (fast lane) {_ms(runs['rendered'])} = {runs['naive'] / runs['rendered']:.0f}x"
              f" and {runs['parts'] / runs['rendered']:.1f}x  [{load()}]")
    store.delete("bench_whole", "team0")


def home(store: Store, config: Path, args: argparse.Namespace) -> None:
    """App Home's view for bob (a member of every team: the 30 cards a Home view holds), the
    naive way and now, ``--requests`` times from ``--concurrency`` threads in this one process
    (a Home view is published after the event's acknowledgement, so this is the work, not a
    request's wait), and one at a time."""
    from bot.app import BotDeps
    from bot.cli import load_settings
    from bot.home import home_view, records_view
    from jobs.ports import SystemClock

    settings = load_settings(config)
    deps = BotDeps(settings=settings, store=store, clock=SystemClock())
    assert home_view(deps, BOB) == records_view(deps, BOB)
    assert "Waiting on you" in str(home_view(deps, BOB))
    p99 = {}
    for name, view in (("naive: records_view, cards and waiting lists decoded and rendered", records_view),
                       ("now: home_view, from parts rendered once per snapshot", home_view)):
        alone = []
        for _ in range(50):
            t = time.perf_counter()
            view(deps, BOB)
            alone.append(time.perf_counter() - t)
        latencies: list[float] = []
        lock = threading.Lock()

        def one(_: int, view: Any = view, latencies: list[float] = latencies, lock: Any = lock) -> None:
            t = time.perf_counter()
            view(deps, BOB)
            with lock:
                latencies.append(time.perf_counter() - t)

        before = load()
        began = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
            list(pool.map(one, range(args.requests)))
        result = Result(latencies, 0, time.perf_counter() - began)
        print(f"App Home view one at a time, {name}: median {_ms(statistics.median(alone))}")
        result.report(f"App Home view (30 team cards + bob's waiting lists), {name}, one process, "
                      f"{args.concurrency} threads", before)
        p99[name] = result.pct(0.99)
    old, new = p99.values()
    print(f"  App Home: p99 {_ms(old)} -> {_ms(new)} ({old / new:.1f}x)")


@dataclass
class Result:
    """One load run: latencies (seconds, sorted), errors, wall time; the server's CPU seconds."""

    latencies: list[float]
    errors: int
    wall: float
    cpu: float = 0.0
    count: int = 0  # requests (wrk reports counts and percentiles, not every latency)
    given: dict[float, float] | None = None  # percentiles from wrk

    def __post_init__(self) -> None:
        self.latencies.sort()
        self.count = self.count or len(self.latencies)

    @property
    def cpu_per_request(self) -> float:
        return self.cpu / max(self.count, 1)

    def pct(self, q: float) -> float:
        if self.given is not None:
            return self.given[q]
        return _pct(self.latencies, q)

    def report(self, label: str, before: str, stolen: Stolen | None = None) -> None:
        print(f"{label}: {self.count} requests, {self.errors} errors")
        if self.count:
            cpu = f", server CPU {self.cpu_per_request * 1000:.2f} ms per request" if self.cpu else ""
            print(f"  p50 {_ms(self.pct(0.5))}  p90 {_ms(self.pct(0.9))}  p99 {_ms(self.pct(0.99))}  "
                  f"max {_ms(self.pct(1.0))}  {self.count / self.wall:.0f} requests/s{cpu}  (target p99 < 100 ms)"
                  f"  [before: {before}; after: {load()}{'; ' + stolen.text() if stolen else ''}]")


def _signed(sub: str, teams: int) -> list[tuple[bytes, dict[str, str]]]:
    """`/flow {sub} teamN` for every team, signed now (the client's CPU is not timed)."""
    verifier = SignatureVerifier(SECRET)
    ts = str(int(time.time()))
    out = []
    for t in range(teams):
        body = slash_body(f"{sub} team{t}", user=BOB, response_url="http://127.0.0.1:9/unused")
        out.append((body, {"X-Slack-Request-Timestamp": ts,
                           "X-Slack-Signature": verifier.generate_signature(timestamp=ts, body=body.decode()),
                           "Content-Type": "application/x-www-form-urlencoded"}))
    return out


def _load(client: str, port: int, requests: list[tuple[bytes, dict[str, str]]], expect: str, *,
          seconds: float, count: int, concurrency: int) -> Result:
    if client == "wrk":
        return _wrk(port, requests, expect, seconds=seconds, concurrency=concurrency)
    return _run(port, requests, expect.encode(), count, concurrency)


def _wrk(port: int, requests: list[tuple[bytes, dict[str, str]]], expect: str, *, seconds: float,
         concurrency: int) -> Result:
    """``wrk`` (2 threads, ``concurrency`` keep-alive connections) cycling over ``requests``; a
    reply that is not 200 with ``expect`` in its body counts as an error."""
    lines = ["local threads = {}", "function setup(thread) table.insert(threads, thread) end",
             "errors = 0", "local reqs = {}"]
    for i, (body, headers) in enumerate(requests):
        fields = ", ".join(f'["{k}"]="{v}"' for k, v in headers.items())
        lines.append(f'reqs[{i + 1}] = wrk.format("POST", "/slack/events", {{{fields}}}, "{body.decode()}")')
    lines += [f"local n = 0\nfunction request()\n  n = n + 1\n  return reqs[(n % {len(requests)}) + 1]\nend",
              ("function response(status, headers, body)\n"
               f'  if status ~= 200 or not string.find(body, "{expect}", 1, true) then errors = errors + 1 end\nend'),
              ("function done(summary, latency, requests)\n  local e = 0\n"
               "  for _, t in ipairs(threads) do e = e + t:get('errors') end\n"
               "  local s = summary.errors\n"
               "  io.write(string.format('RESULT %d %d %f %f %f %f %f\\n', summary.requests,"
               " e + s.connect + s.read + s.write + s.timeout, summary.duration / 1e6,"
               " latency:percentile(50) / 1e6, latency:percentile(90) / 1e6, latency:percentile(99) / 1e6,"
               " latency.max / 1e6))\nend")]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write("\n".join(lines))
        script.flush()
        out = subprocess.run(["wrk", "-t2", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
                              "-s", script.name, f"http://127.0.0.1:{port}/"], capture_output=True, text=True,
                             check=True).stdout
    row = next(line for line in out.splitlines() if line.startswith("RESULT"))
    n, errors, wall, p50, p90, p99, top = row.split()[1:]
    return Result([], int(errors), float(wall), count=int(n),
                  given={0.5: float(p50), 0.9: float(p90), 0.99: float(p99), 1.0: float(top)})


def _tree_cpu(pid: int) -> float:
    """CPU seconds used so far by process ``pid`` and its children (gunicorn's workers)."""
    return sum(cpu_by_process(pid).values())


def cpu_by_process(pid: int) -> dict[int, float]:
    """CPU seconds used so far by process ``pid`` and by each of its children, by pid."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:  # fields[1]: the parent's pid
            out[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return out


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


def _run(port: int, requests: list[tuple[bytes, dict[str, str]]], expect: bytes, count: int,
         concurrency: int) -> Result:
    """``count`` requests from ``concurrency`` threads of http.client (keep-alive), cycling over
    ``requests``; the fallback when wrk is not installed (its own CPU competes with the servers)."""
    local = threading.local()
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()

    def one(i: int) -> None:
        nonlocal errors
        conn = getattr(local, "conn", None) or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        local.conn = conn
        body, headers = requests[i % len(requests)]
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

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, range(count)))
    return Result(latencies, errors, time.perf_counter() - began)


def _pct(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, round(q * (len(sorted_values) - 1)))
    return sorted_values[index]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


if __name__ == "__main__":
    main()
