"""Benchmark: how fast ``POST /github/webhook`` answers GitHub (its deadline is 10 s).

Starts the Procfile's ``web`` command (``flowbot web``: gunicorn, 2 uvicorn workers) with a
webhook secret and a Redis, then sends, 10 at a time over loopback:

- ``N`` signed ``pull_request.synchronize`` deliveries for ``N / 10`` different PRs (each PR's
  first delivery queues a refresh, the other nine coalesce);
- ``N`` forged deliveries (wrong secret), refused before the body is parsed;
- one 25 MB signed delivery (GitHub's cap) and one announcing 30 MB (refused from its header).

Prints p50/p95/max per kind, how many jobs were queued (expected ``N / 10``) and how many
answers took over 10 s (expected 0). The jobs are left unrun (no worker) and purged at the end.

    .venv/bin/python bench/webhook_answer.py [--deliveries 500]

Uses ``REDIS_URL`` as given (its database, under a prefix of its own), else an embedded Redis
in a temporary directory.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jobs import work
from jobs.store import Store
from tests.fakes.slack_api import FakeSlack
from tests.slack_helpers import SECRET
from tests.web_process import procfile_web

HOOK_SECRET = "bench-secret"
CONFIG = """
[github]
organisation = "acme"

[storage]
prefix = "flowbench-hooks"
path = "{data}"

[teams.platform]
members = [{{ github = "bob", slack = "U0BOB0001" }}]
repositories = ["api"]
channel = "C0PLATFORM"
"""


def _post(port: int, body: bytes, *, secret: str, length: int | None = None) -> tuple[int, float]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-GitHub-Event": "pull_request",
               "X-GitHub-Delivery": str(uuid.uuid4()), "X-Hub-Signature-256": f"sha256={digest}"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    started = time.monotonic()
    try:
        if length is None:
            conn.request("POST", "/github/webhook", body=body, headers=headers)
        else:  # announce ``length`` bytes, send none
            conn.putrequest("POST", "/github/webhook")
            for k, v in {**headers, "Content-Length": str(length)}.items():
                conn.putheader(k, v)
            conn.endheaders()
        response = conn.getresponse()
        response.read()
        return response.status, time.monotonic() - started
    finally:
        conn.close()


def _payload(number: int, pad: int = 0) -> bytes:
    return json.dumps({"action": "synchronize", "number": number, "pull_request": {
        "number": number, "body": "x" * pad}, "repository": {"full_name": "acme/api"}}).encode()


def _line(name: str, answers: list[tuple[int, float]]) -> str:
    ms = sorted(s * 1000 for _, s in answers)
    p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
    statuses = sorted({st for st, _ in answers})
    return (f"{name:<28} n={len(ms):<4} p50 {statistics.median(ms):7.1f} ms  p95 {p95:7.1f} ms"
            f"  max {ms[-1]:7.1f} ms  status {statuses}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deliveries", type=int, default=500)
    n = parser.parse_args().deliveries
    redis_url = os.environ.get("REDIS_URL")
    with tempfile.TemporaryDirectory(prefix="flowbench-hooks-") as tmp, FakeSlack() as fake:
        config = Path(tmp) / "config.toml"
        config.write_text(CONFIG.format(data=Path(tmp) / "flowbot.rdb"))
        env = {"HOME": tmp, "SLACK_SIGNING_SECRET": SECRET, "SLACK_BOT_TOKEN": fake.token,
               "SLACK_API_URL": fake.api_url, "FLOWBOT_CONFIG": str(config),
               "GITHUB_WEBHOOK_SECRET": HOOK_SECRET}
        if redis_url:
            env["REDIS_URL"] = redis_url
        with procfile_web(env, args=["--workers", "2"], healthy=True) as web:
            # the queued jobs are counted when the Redis is one this process can reach
            store = Store.connect(redis_url, prefix="flowbench-hooks") if redis_url else None
            port = web.port
            bodies = [_payload(1000 + i // 10) for i in range(n)]
            with ThreadPoolExecutor(max_workers=10) as pool:
                good = list(pool.map(lambda b: _post(port, b, secret=HOOK_SECRET), bodies))
                forged = list(pool.map(lambda b: _post(port, b, secret="wrong"), bodies))
            big = [_post(port, _payload(1, pad=25 * 1024 * 1024 - 200), secret=HOOK_SECRET)]
            over = [_post(port, b"", secret=HOOK_SECRET, length=30 * 1024 * 1024)]
            print(f"flowbot web, 2 workers, loopback, {n} deliveries each, 10 at a time")
            print(_line("signed (queued/coalesced)", good))
            print(_line("forged (401)", forged))
            print(_line("signed 25 MB", big))
            print(_line("announcing 30 MB (413)", over))
            slow = sum(s > 10 for _, s in good + forged + big + over)
            print(f"answers over 10 s: {slow}")
            if store is not None:
                jobs = work.queue(store, work.REFRESH).count
                print(f"refresh jobs queued: {jobs} (expected {len(set(bodies)) + 1}: one per PR)")
                work.purge(store)
                store.flush_prefix()
                store.close()


if __name__ == "__main__":
    main()
