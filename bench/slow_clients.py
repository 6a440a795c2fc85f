"""Benchmark: signed `/flow status` latency while 40 unsigned slow-body connections are open.

Starts the Procfile's ``web`` command (``flowbot web``: gunicorn, uvicorn workers) against the
fake Slack API and a Redis holding a team snapshot, keeps 40 unsigned connections open that
announce a body and never finish it (half send nothing more, half trickle one byte a second;
each reopens as soon as the server drops it), then sends 100 signed `/flow status` requests,
10 at a time, and prints p50/p99/max, how many took over 3 s (Slack's deadline), and how long
the server held a slow connection before dropping it.
Target (issue 12): p99 under 500 ms, none over 3 s.

With ``--compare``, the same load runs first against the previous command
(``gunicorn --workers 2 --threads 8 'bot.web:create_app()'``, gthread workers) for a side-by-side.

    .venv/bin/python bench/slow_clients.py [--slow 40] [--requests 100] [--compare]

Uses ``REDIS_URL`` as given (its database, under a prefix of its own), else an embedded Redis
in a temporary directory.
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from slack_sdk.signature import SignatureVerifier

from jobs.store import Store
from tests.factories import snapshot
from tests.fakes.slack_api import FakeSlack
from tests.slack_helpers import BOB, SECRET, slash_body
from tests.web_process import WebProcess, procfile_web

CONFIG = """
[github]
organisation = "acme"

[storage]
prefix = "flowbench-slow"
path = "{data}"

[teams.platform]
members = [{{ github = "bob", slack = "U0BOB0001" }}]
repositories = ["api"]
channel = "C0PLATFORM"
"""
OLD_COMMAND = "gunicorn --workers 2 --threads 8 --bind 127.0.0.1:${PORT} 'bot.web:create_app()'"


@dataclass
class SlowLoad:
    """Keeps ``n`` slow-body connections open until stopped; records how long each was held."""

    port: int
    n: int
    held: list[float] = field(default_factory=list)
    opened: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self._slot, args=(i % 2 == 1,), daemon=True) for i in range(self.n)]
        for t in threads:
            t.start()
        return threads

    def stop(self) -> None:
        self._stop.set()

    def _slot(self, trickle: bool) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\n"
                                 b"Content-Type: application/x-www-form-urlencoded\r\n"
                                 b"Content-Length: 4000\r\n\r\ncommand=%2Fflow")
                    with self._lock:
                        self.opened += 1
                    while not self._stop.is_set():
                        if trickle:
                            sock.sendall(b"x")
                        try:
                            if sock.recv(1024) == b"":  # the server closed it
                                break
                        except TimeoutError:
                            continue
                        break  # an answer (408): the server gave up on us
            except OSError:
                pass
            if not self._stop.is_set():
                with self._lock:
                    self.held.append(time.monotonic() - started)


def signed_status(port: int, requests: int, concurrency: int) -> list[float | None]:
    """Latency of each signed `/flow status` (None: failed or wrong answer)."""
    verifier = SignatureVerifier(SECRET)
    body = slash_body("status", user=BOB, response_url="http://127.0.0.1:9/unused")

    def one(_: int) -> float | None:
        ts = str(int(time.time()))
        headers = {"X-Slack-Request-Timestamp": ts,
                   "X-Slack-Signature": verifier.generate_signature(timestamp=ts, body=body.decode()) or "",
                   "Content-Type": "application/x-www-form-urlencoded"}
        started = time.perf_counter()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("POST", "/slack/events", body=body, headers=headers)
            response = conn.getresponse()
            ok = response.status == 200 and b"Flow status: platform" in response.read()
            conn.close()
        except (OSError, http.client.HTTPException):
            ok = False
        return time.perf_counter() - started if ok else None

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(one, range(requests)))


def measure(port: int, *, slow: int, requests: int, concurrency: int, settle: float) -> dict[str, float]:
    load = SlowLoad(port, slow)
    threads = load.run()
    time.sleep(settle)  # let every slow connection reach the server and sit there
    began = time.perf_counter()
    results = signed_status(port, requests, concurrency)
    wall = time.perf_counter() - began
    load.stop()
    for t in threads:
        t.join(timeout=3)
    ok = sorted(r for r in results if r is not None)
    return {"requests": requests, "failed": len(results) - len(ok),
            "p50": statistics.median(ok) if ok else float("nan"), "p99": _pct(ok, 0.99),
            "max": ok[-1] if ok else float("nan"), "over3": sum(r > 3 for r in ok), "wall": wall,
            "slow_opened": load.opened, "held_p50": statistics.median(load.held) if load.held else float("nan"),
            "held_max": max(load.held) if load.held else float("nan")}


@contextmanager
def old_command(env: dict[str, str]) -> Iterator[WebProcess]:
    from tests.web_process import _stop, _wait, free_port

    port = free_port()
    bin_dir = str(Path(sys.executable).parent)
    full = {**env, "PORT": str(port), "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}", "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "stderr.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(["bash", "-c", f"exec {OLD_COMMAND}"], env=full, stdout=out, stderr=out,
                                    start_new_session=True)
        web = WebProcess(port, proc, log)
        try:
            _wait(web, 60, healthy=True)
            yield web
        finally:
            _stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slow", type=int, default=40)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--settle", type=float, default=6.0,
                        help="seconds the slow connections run before measuring (past the 5 s body deadline, "
                             "so drops and reopenings happen while measuring)")
    parser.add_argument("--compare", action="store_true", help="also run the previous gthread command")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, FakeSlack() as fake:
        data = Path(tmp) / "flowbot.rdb"
        config = Path(tmp) / "config.toml"
        config.write_text(CONFIG.format(data=data))
        url = os.environ.get("REDIS_URL") or None
        store = Store.connect(url, data_path=data, prefix="flowbench-slow")
        store.flush_prefix()
        store.ensure_schema()
        store.put_snapshot(snapshot(computed_at=datetime.now(UTC), data_as_of=datetime.now(UTC)))
        env = {"HOME": os.environ.get("HOME", tmp), "SLACK_SIGNING_SECRET": SECRET, "SLACK_BOT_TOKEN": fake.token,
               "SLACK_API_URL": fake.api_url, "FLOWBOT_CONFIG": str(config), "FLOWBOT_LOG_LEVEL": "WARNING"}
        if url:
            env["REDIS_URL"] = url
        load = os.getloadavg()[0]
        print(f"machine: {os.cpu_count()} cores, load average {load:.1f}")
        print(f"{args.slow} slow unsigned connections (half silent, half 1 byte/s, reopened when dropped); "
              f"{args.requests} signed /flow status, {args.concurrency} at a time")
        try:
            runs: list[tuple[str, dict[str, float]]] = []
            if args.compare:
                with old_command(env) as web:
                    runs.append(((f"before, {args.slow} slow connections: "
                                 f"{OLD_COMMAND.replace(' --bind 127.0.0.1:${PORT}', '')}"),
                                 measure(web.port, slow=args.slow, requests=args.requests,
                                         concurrency=args.concurrency, settle=args.settle)))
            with procfile_web(env, healthy=True) as web:
                from tests.web_process import procfile_command

                signed_status(web.port, 20, args.concurrency)  # warm-up: first requests per worker
                runs.append((f"Procfile, no slow connections: {procfile_command()}",
                             measure(web.port, slow=0, requests=args.requests,
                                     concurrency=args.concurrency, settle=0.0)))
                runs.append((f"Procfile, {args.slow} slow connections: {procfile_command()}",
                             measure(web.port, slow=args.slow, requests=args.requests,
                                     concurrency=args.concurrency, settle=args.settle)))
        finally:
            store.flush_prefix()
            store.close()
    for name, r in runs:
        print(f"\n{name}")
        print(f"  answered {r['requests'] - r['failed']:.0f}/{r['requests']:.0f}   p50 {_ms(r['p50'])}   "
              f"p99 {_ms(r['p99'])}   max {_ms(r['max'])}   over 3 s: {r['over3']:.0f}   ({r['wall']:.1f} s wall)")
        if r["slow_opened"] and r["held_max"] == r["held_max"]:  # not NaN: some were dropped
            print(f"  slow connections opened {r['slow_opened']:.0f}; held before the server dropped them: "
                  f"p50 {r['held_p50']:.1f} s, max {r['held_max']:.1f} s")
        elif r["slow_opened"]:
            print(f"  slow connections opened {r['slow_opened']:.0f}; none dropped by the server during the run")
    final = runs[-1][1]
    met = final["failed"] == 0 and final["p99"] < 0.5 and final["over3"] == 0
    print(f"\ntarget p99 < 500 ms and none over 3 s: {'met' if met else 'NOT met'}")


def _pct(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, round(q * (len(sorted_values) - 1)))]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


if __name__ == "__main__":
    main()
