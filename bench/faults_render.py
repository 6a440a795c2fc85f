"""Fault area ``render`` (issue 12): hostile text, hostile clicks, other workspaces, absurd levels,
leaked secrets, each tried as an attacker would, with signed requests over HTTP against the real
WSGI front (``bot.web.build_web``: signature check, Bolt, every listener) served on loopback, a
real redis-server of its own (embedded) and the Slack fake.

    .venv/bin/python bench/faults.py render
"""

from __future__ import annotations

import io
import json
import logging
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.faults import FaultRow
from bot import logs
from bot.app import BotDeps
from bot.blocks.alerts import render_alert
from bot.web import build_web
from jobs.errors import ConfigError, StoreUnavailable
from jobs.model import Alert, WorkflowStats
from jobs.overrides import threshold_history
from jobs.ports import FixedClock
from jobs.store import Store
from tests.factories import T0, snapshot
from tests.fakes.slack_api import FakeSlack
from tests.slack_helpers import (
    LEAD,
    OUTSIDER,
    SECRET,
    post,
    serve,
    settings,
    signed_headers,
    slash_body,
)

NOW = T0 + timedelta(minutes=10)
DAN = "U0DAN0001"  # the member of "web", a team with no leads
_OURS = re.compile(r"<https?://[^\s<>|]+\|[^<>]*>|<@[UW][A-Z0-9]{2,20}>")
_BAD_AMP = re.compile(r"&(?!amp;|lt;|gt;)")
_UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _texts(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("text"), str):
            yield node["text"]
        for value in node.values():
            yield from _texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from _texts(item)


def _flaws(payload: Any) -> list[str]:
    """What is unsafe in an answer: raw markup, broken entities, bidi/control characters, limits."""
    flaws = []
    for text in _texts(payload):
        if "<" in _OURS.sub("", text) or ">" in _OURS.sub("", text):
            flaws.append("raw <")
        if _BAD_AMP.search(text):
            flaws.append("raw &")
        if _UNSAFE.search(text):
            flaws.append("bidi/control")
    for block in payload.get("blocks", []) if isinstance(payload, dict) else []:
        text = block.get("text", {}).get("text", "") if isinstance(block.get("text"), dict) else ""
        if len(text) > (150 if block.get("type") == "header" else 3000):
            flaws.append("over limit")
    return flaws


class _Rig:
    """The web front on loopback, a redis-server of its own and the Slack fake."""

    def __init__(self, store: Store, fake: FakeSlack, url: str) -> None:
        self.store, self.fake, self.url, self.clock = store, fake, url, FixedClock(NOW)

    def command(self, text: str, *, user: str = LEAD, team_id: str = "T0FAKE") -> dict[str, Any]:
        body = slash_body(text, user=user, response_url=self.fake.response_url()).replace(
            b"team_id=T0FAKE", f"team_id={team_id}".encode())
        answer = post(self.url + "/slack/events", body, signed_headers(body, self.clock, secret=SECRET))
        return answer.json() if answer.body else {}  # type: ignore[no-any-return]

    def click(self, team: str, user: str, *, value: str | None = None) -> str:
        alert = Alert(team=team, rule="queue_length", severity="warn", value=12.0, threshold=10.0, unit="PRs",
                      message="Review queue length is above warning level", at=T0, idempotency_key="k",
                      recipients=("C0",), episode="e1")
        blocks, text = render_alert(alert)
        (button,) = [e for b in blocks if b["type"] == "actions" for e in b["elements"]
                     if e["action_id"] == "flow_alert_snooze_day"]
        key = f"{team}-{user}-{time.monotonic_ns()}"
        payload = {"type": "block_actions", "user": {"id": user}, "team": {"id": "T0FAKE"}, "api_app_id": "A0FLOWBOT",
                   "container": {"type": "message"}, "channel": {"id": "C0"}, "response_url": self.fake.response_url(key),
                   "message": {"type": "message", "text": text, "blocks": blocks, "ts": "1.2"},
                   "actions": [{**button, "value": value or button["value"], "block_id": "b", "action_ts": "1.3"}],
                   "trigger_id": "1.2.3"}
        body = urlencode({"payload": json.dumps(payload)}).encode()
        post(self.url + "/slack/events", body, signed_headers(body, self.clock, secret=SECRET))
        self.fake.wait_for_response(key, timeout=5)
        replies = self.fake.responses(key)
        return json.dumps(replies[-1]) if replies else ""


def _row(fault: str, expected: str, check: Callable[[], tuple[str, bool]]) -> FaultRow:
    started = time.monotonic()
    try:
        observed, ok = check()
    except Exception as err:  # noqa: BLE001 - a crashed check is a failed row
        observed, ok = f"{type(err).__name__}: {err}"[:200], False
    return FaultRow(fault, expected, observed, ok, time.monotonic() - started)


def run() -> list[FaultRow]:
    with tempfile.TemporaryDirectory() as tmp, FakeSlack() as fake:
        store = Store.connect(None, data_path=Path(tmp) / "render.rdb", prefix="faults-render")
        hostile = ("x" * 2100 + " &amp; \u202e\x00\x07\x1b\x08\x7f <!channel>")
        snap = snapshot()
        snap = replace(snap, queue_items=tuple(replace(i, title=hostile) for i in snap.queue_items),
                       workflows=(WorkflowStats(name=hostile, attempts=5, queue_p50_min=1.0, queue_p90_min=2.0,
                                                run_p50_min=3.0, run_p90_min=4.0, failure_rate=0.1, rerun_rate=0.2),),
                       analysis=replace(snap.analysis, headline=hostile))
        store.put_snapshot(snap)
        deps = BotDeps(settings=settings(), store=store, clock=FixedClock(NOW))
        try:
            with serve(build_web(deps, signing_secret=SECRET, client=fake.client())) as url:
                rig = _Rig(store, fake, url)
                return _rows(rig, store)
        finally:
            store.close()


def _rows(rig: _Rig, store: Store) -> list[FaultRow]:
    rows = []

    def answers_safe() -> tuple[str, bool]:
        flaws = {sub: _flaws(rig.command(f"{sub} platform")) for sub in ("status", "queue", "ci")}
        bad = {k: sorted(set(v)) for k, v in flaws.items() if v}
        return (f"flaws: {bad or 'none'}", not bad)

    rows.append(_row("2,100-char titles and workflow names ending in &amp;, bidi, NUL, BEL, ESC, <!channel>",
                     "status/queue/ci: 0 raw < or &, 0 bidi/control", answers_safe))

    def usage_safe() -> tuple[str, bool]:
        bad = [t for t in ("\x00status", "<!here> & <b>", "set \u202e<@U1> 8", "stauts <#C1>")
               if _flaws(rig.command(t))]
        return (f"unsafe replies: {len(bad)} of 4", not bad)

    rows.append(_row("usage replies quoting `<!here> & <b>`, `\\x00status`", "escaped and clean", usage_safe))

    def button_safe() -> tuple[str, bool]:
        reply = rig.click("platform", LEAD, value=json.dumps({"team": "<!here> & <b>", "rule": "r", "episode": "e"}))
        flaws = _flaws(json.loads(reply)) if reply else ["no reply"]
        return (f"reply flaws: {flaws or 'none'}", bool(reply) and not flaws)

    rows.append(_row("button value `<!here> & <b>` echoed", "escaped and clean", button_safe))

    def leadless() -> tuple[str, bool]:
        told = {who: rig.click("web", who) for who in (OUTSIDER, LEAD, DAN)}
        snoozed = store.get_json("alerts", "web", "snooze", "queue_length") is not None
        refused = [w for w, r in told.items() if "only the members" in r]
        return (f"refused {len(refused)} of 2 non-members; member's snooze stored: {snoozed}",
                refused == [OUTSIDER, LEAD] and snoozed)

    rows.append(_row("team with no leads: outsider, other team's lead, member snooze",
                     "only the member may", leadless))

    def other_workspace() -> tuple[str, bool]:
        answer = rig.command("status platform share", team_id="T0ELSEWHERE")
        leaked = "Flow status" in json.dumps(answer)
        return (f"response_type {answer.get('response_type')}, data shown: {leaked}",
                answer.get("response_type") == "ephemeral" and not leaked)

    rows.append(_row("another workspace's team_id, `share`", "refused, ephemeral, no data", other_workspace))

    def huge_level() -> tuple[str, bool]:
        said = json.dumps(rig.command("set pickup_p50_hours.critical 1e308 platform"))
        stored = bool(threshold_history(store, "platform"))
        return (said[said.find("pickup_p50_hours.critical"):][:90], "at most 500 working h" in said and not stored)

    rows.append(_row("lead sets critical = 1e308", "refused with the range, nothing stored", huge_level))

    def config_inf() -> tuple[str, bool]:
        from bot.config import load

        text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
        head, _, tail = text.partition("[alerts.thresholds.pickup_p50_hours]")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "config.toml"
            path.write_text(head + "[alerts.thresholds.pickup_p50_hours]" + tail.replace("critical = 16", "critical = 1e309", 1))
            try:
                load(path, env={})
            except ConfigError as err:
                line = next((p for p in err.problems if "pickup_p50_hours" in p), "")
                return line, "at most 500 working h (got inf)" in line
        return "accepted", False

    rows.append(_row("config critical = 1e309 (infinity)", "refused with key path and range", config_inf))

    def redis_password() -> tuple[str, bool]:
        try:
            Store.connect("redis://127.0.0.1:1/0?password=hunter2", timeout=0.5)
        except StoreUnavailable as err:
            return str(err)[:90], "hunter2" not in str(err)
        return "connected?", False

    rows.append(_row("REDIS_URL=...?password=X unreachable", "error without X", redis_password))

    def debug_log() -> tuple[str, bool]:
        root = logging.getLogger()
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        before = (root.level, {n: logging.getLogger(n).level for n in logs.QUIET_LOGGERS})
        root.addHandler(handler)
        root.setLevel(logging.DEBUG)
        logs.install()
        try:
            response_url = rig.fake.response_url("capability-SECRET")
            body = slash_body("digest platform", response_url=response_url)
            post(rig.url + "/slack/events", body, signed_headers(body, rig.clock, secret=SECRET))
            rig.fake.wait_for_response("capability-SECRET", timeout=10)
        finally:
            root.removeHandler(handler)
            root.setLevel(before[0])
            for name, level in before[1].items():
                logging.getLogger(name).setLevel(level)
        log = stream.getvalue()
        leaked = "capability-SECRET" in log or rig.fake.token in log
        return (f"{len(log.splitlines())} DEBUG lines, response URL or token in them: {leaked}", bool(log) and not leaked)

    rows.append(_row("DEBUG logging during a digest preview answered via response_url",
                     "no response URL, no token", debug_log))
    return rows


if __name__ == "__main__":
    for r in run():
        print(f"{'ok' if r.ok else 'NO'}  {r.fault}: {r.observed}")
