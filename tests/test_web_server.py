"""The Procfile's web command as a real process: slow clients, counters across workers, gauges.

One server (gunicorn with 2 uvicorn workers, the body deadline shortened to 0.5 s so nothing
waits long) is started for the module and shared by its tests.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from jobs.store import Store
from tests.factories import snapshot
from tests.fakes.slack_api import FakeSlack
from tests.slack_helpers import BOB, SECRET, slash_body
from tests.web_process import WebProcess, procfile_web

BODY_SECONDS = 0.5
CONFIG = """
[github]
organisation = "acme"

[storage]
path = "{data}"
prefix = "{prefix}"

[teams.platform]
members = [{{ github = "bob", slack = "U0BOB0001" }}]
repositories = ["api"]
channel = "C0PLATFORM"

[teams.web]
members = [{{ github = "dan", slack = "U0DAN0001" }}]
repositories = ["site"]
channel = "C0WEB0001"
"""


@dataclass
class Server:
    web: WebProcess
    metrics_dir: Path
    slack: FakeSlack


@pytest.fixture(scope="module")
def server(redis_url: str | None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`flowbot web` per the Procfile, 2 workers, both teams' snapshots stored."""
    tmp = tmp_path_factory.mktemp("web-server")
    prefix = f"flowbot-web-{os.getpid()}"
    config = tmp / "config.toml"
    config.write_text(CONFIG.format(data=tmp / "flowbot.rdb", prefix=prefix))
    store = Store.connect(redis_url, data_path=tmp / "flowbot.rdb", prefix=prefix)
    now = datetime.now(UTC)
    store.put_snapshot(snapshot(computed_at=now, data_as_of=now))
    store.put_snapshot(snapshot(team="web", computed_at=now, data_as_of=now))
    metrics_dir = tmp / "metrics"
    metrics_dir.mkdir()
    with FakeSlack() as fake:
        env = {"HOME": str(tmp), "SLACK_SIGNING_SECRET": SECRET, "SLACK_BOT_TOKEN": fake.token,
               "SLACK_API_URL": fake.api_url, "FLOWBOT_CONFIG": str(config),
               "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
        if redis_url:
            env["REDIS_URL"] = redis_url
        try:
            with procfile_web(env, args=["--workers", "2", "--body-seconds", str(BODY_SECONDS)],
                              healthy=True) as web:
                yield Server(web, metrics_dir, fake)
        finally:
            store.flush_prefix()
            store.close()


def _status(port: int) -> tuple[int, bytes, float]:
    """One signed `/flow status`: its HTTP status, body and seconds taken."""
    from slack_sdk.signature import SignatureVerifier

    body = slash_body("status", user=BOB, response_url="http://127.0.0.1:9/unused")
    ts = str(int(time.time()))
    headers = {"X-Slack-Request-Timestamp": ts, "Content-Type": "application/x-www-form-urlencoded",
               "X-Slack-Signature": SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body) or ""}
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/slack/events", body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read(), time.monotonic() - started
    finally:
        conn.close()


def _home_opened(port: int, user: str) -> tuple[int, bytes]:
    """A signed ``app_home_opened`` event for ``user``, as Slack POSTs it: HTTP status and body."""
    from slack_sdk.signature import SignatureVerifier

    body = json.dumps({"token": "deprecated", "team_id": "T0FAKE", "api_app_id": "A0FLOWBOT",
                       "type": "event_callback", "event_id": f"Ev0{user}", "event_time": int(time.time()),
                       "event": {"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": "home",
                                 "event_ts": f"{time.time():.6f}"}})
    ts = str(int(time.time()))
    headers = {"X-Slack-Request-Timestamp": ts, "Content-Type": "application/json",
               "X-Slack-Signature": SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body) or ""}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/slack/events", body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _slow(port: int) -> socket.socket:
    """An unsigned request that announces 4,000 bytes of body and sends 5."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\n\r\nhello")
    return sock


def _scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_slow_bodies_do_not_starve_signed_commands(server: Server) -> None:
    """With 40 connections withholding their bodies, signed commands are answered at once, and
    each slow connection is answered 408 and closed at the body deadline."""
    slow = [_slow(server.web.port) for _ in range(40)]
    opened = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=5) as pool:
            answers = list(pool.map(lambda _: _status(server.web.port), range(10)))
        assert [status for status, _, _ in answers] == [200] * 10
        assert all(b"Flow status: platform" in body for _, body, _ in answers)
        assert max(seconds for _, _, seconds in answers) < 3.0  # Slack's deadline
        dropped = []
        for sock in slow:
            answer = sock.recv(1024)  # blocks until the server answers and closes
            assert answer.startswith(b"HTTP/1.1 408 "), answer[:40]
            while sock.recv(1024):
                pass
            dropped.append(time.monotonic() - opened)
        assert max(dropped) < BODY_SECONDS + 2.5
    finally:
        for sock in slow:
            sock.close()


def test_metrics_add_up_across_workers_with_every_teams_flow(server: Server) -> None:
    """Every scrape, whichever worker answers it, gives the same counters (all workers' counts
    added up) and every team's flow gauges."""
    key = ("flowbot_commands_total", frozenset({("subcommand", "status"), ("outcome", "ok")}))
    before = _scrape(server.web.port).get(key, 0.0)
    sent = 0
    with ThreadPoolExecutor(max_workers=8) as pool:
        # which worker accepts a connection is up to the kernel: send until both have counted some
        while len(list(server.metrics_dir.glob("counter_*.db"))) < 2 and sent < 400:
            assert {s for s, _, _ in pool.map(lambda _: _status(server.web.port), range(8))} == {200}
            sent += 8
    assert len(list(server.metrics_dir.glob("counter_*.db"))) == 2
    scrapes = [_scrape(server.web.port) for _ in range(6)]
    assert {s[key] for s in scrapes} == {before + sent}
    gauges = scrapes[0]
    for team in ("platform", "web"):
        assert gauges[("flowbot_queue_prs", frozenset({("team", team), ("waiting_on", "reviewer")}))] == 7
        assert ("flowbot_queue_oldest_hours", frozenset({("team", team)})) in gauges
        assert ("flowbot_pickup_p50_hours", frozenset({("team", team), ("hours", "working")})) in gauges
        assert ("flowbot_ci_p90_minutes", frozenset({("team", team)})) in gauges
        assert gauges[("flowbot_alerts_active", frozenset({("team", team)}))] == 0
    assert gauges[("flowbot_store_up", frozenset())] == 1


def test_oversized_body_refused_at_once(server: Server) -> None:
    """A request announcing 600 KiB gets 413 at once, without the server waiting for the body."""
    conn = http.client.HTTPConnection("127.0.0.1", server.web.port, timeout=5)
    try:
        started = time.monotonic()
        conn.putrequest("POST", "/slack/events")
        conn.putheader("Content-Length", str(600 * 1024))
        conn.endheaders()  # the body is never sent
        response = conn.getresponse()
        assert (response.status, response.read()) == (413, b"too_large")
        assert time.monotonic() - started < 2.0
    finally:
        conn.close()


def test_app_home_opened_is_acknowledged_and_published_by_the_real_server(server: Server) -> None:
    """Signed App Home opens sent to `flowbot web` (the Procfile's, both workers) are each
    acknowledged with Bolt's empty 200, and each user's view reaches Slack with their teams."""
    users = [BOB, "U0DAN0001"] * 3
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda user: _home_opened(server.web.port, user), users))
    assert answers == [(200, b"")] * len(users)
    assert server.slack.wait_for_call("views.publish", count=len(users), timeout=15)
    views = server.slack.views()
    assert "*platform*" in json.dumps(views[BOB]) and "*web*" in json.dumps(views["U0DAN0001"])
