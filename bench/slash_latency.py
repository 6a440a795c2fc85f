"""Benchmark: signed `/flow status` against `flowbot web` under gunicorn on loopback.

Seeds a team snapshot in Redis, starts ``flowbot web`` (gunicorn, 2 workers x 8 threads) with
its Slack client pointed at the fake Slack API (Bolt calls ``auth.test`` once per worker),
sends 2,000 signed slash commands, 50 at a time (after 200 not counted, to warm the workers up),
and prints p50/p99 latency and errors.
Target: p99 under 100 ms on a 2-core machine, no errors.

    .venv/bin/python bench/slash_latency.py [--requests 2000] [--concurrency 50]

Uses ``REDIS_URL`` when set (a database of its own: 15), else an embedded Redis in a temp dir.
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
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from slack_sdk.signature import SignatureVerifier  # noqa: E402

from jobs.store import Store  # noqa: E402
from tests.factories import snapshot  # noqa: E402
from tests.fakes.slack_api import FakeSlack  # noqa: E402
from tests.slack_helpers import BOB, SECRET, slash_body  # noqa: E402

CONFIG = """
[github]
organisation = "acme"

[storage]
prefix = "flowbench"
path = "{data}"

[teams.platform]
members = [{{ github = "bob", slack = "U0BOB0001" }}, {{ github = "alice", slack = "U0ALICE01" }}]
repositories = ["api", "web"]
channel = "C0PLATFORM"
leads = ["U0LEAD0001"]
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _redis_url() -> str | None:
    base = os.environ.get("REDIS_URL")
    if not base:
        return None
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, "/15", parts.query, ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, FakeSlack() as fake:
        data = Path(tmp) / "flowbot.rdb"
        config = Path(tmp) / "config.toml"
        config.write_text(CONFIG.format(data=data))
        url = _redis_url()
        store = Store.connect(url, data_path=data, prefix="flowbench")
        store.flush_prefix()
        store.ensure_schema()
        store.put_snapshot(snapshot(computed_at=datetime.now(timezone.utc),
                                    data_as_of=datetime.now(timezone.utc)))
        env = {**os.environ, "SLACK_SIGNING_SECRET": SECRET, "SLACK_BOT_TOKEN": fake.token,
               "SLACK_API_URL": fake.api_url, "FLOWBOT_LOG_LEVEL": "WARNING"}
        env.pop("REDIS_URL", None)
        if url:
            env["REDIS_URL"] = url
        port = _free_port()
        server = subprocess.Popen(
            [str(ROOT / ".venv/bin/flowbot"), "web", "--config", str(config), "--host", "127.0.0.1",
             "--port", str(port), "--workers", str(args.workers), "--threads", str(args.threads)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        try:
            _wait_healthy(port, server)
            _run(port, 200, args.concurrency)  # warm-up: imports, pydantic adapters, auth.test per worker
            began = time.perf_counter()
            latencies, errors = _run(port, args.requests, args.concurrency)
            wall = time.perf_counter() - began
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
            store.flush_prefix()
            store.close()
    latencies.sort()
    total = sum(latencies)
    print(f"requests: {args.requests}, concurrency: {args.concurrency}, gunicorn {args.workers}x{args.threads}")
    print(f"errors: {errors}")
    if latencies:
        print(f"p50: {_ms(statistics.median(latencies))}  p90: {_ms(_pct(latencies, 0.90))}  "
              f"p99: {_ms(_pct(latencies, 0.99))}  max: {_ms(latencies[-1])}")
        print(f"mean: {_ms(total / len(latencies))}  throughput: {len(latencies) / wall:.0f} requests/s")
    print(f"auth.test calls to the fake Slack: {len(fake.calls('auth.test'))}")


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


def _run(port: int, requests: int, concurrency: int) -> tuple[list[float], int]:
    local = threading.local()
    verifier = SignatureVerifier(SECRET)
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()

    body = slash_body("status", user=BOB, response_url="http://127.0.0.1:9/unused")
    ts = str(int(time.time()))
    headers = {"X-Slack-Request-Timestamp": ts,  # signed once, up front: the client's CPU is not timed
               "X-Slack-Signature": verifier.generate_signature(timestamp=ts, body=body.decode()),
               "Content-Type": "application/x-www-form-urlencoded"}

    def one(i: int) -> None:
        nonlocal errors
        conn = getattr(local, "conn", None) or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        local.conn = conn
        started = time.perf_counter()
        try:
            conn.request("POST", "/slack/events", body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            ok = response.status == 200 and b"Flow status: platform" in payload
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
    index = min(len(sorted_values) - 1, int(round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


if __name__ == "__main__":
    main()
