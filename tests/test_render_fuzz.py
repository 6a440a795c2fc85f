"""Hostile text through every renderer: Slack sees escaped, clean mrkdwn within its limits.

Every Block Kit builder, the App Home view, the digest's fallback text, usage replies and
button replies get strings made of mentions, links, entities, lone ``&``/``<``/``>``, bidi
and control characters, lone surrogates, emoji sequences, and 5,000-10,000 character runs.
Each message is checked with slack_sdk's own models, then with the escaping rules: in mrkdwn no
``<`` or ``>`` but Flowbot's own links and mentions, every ``&`` starts an entity; in any
text no bidi control, no control character but newline, no lone surrogate; every block
within Slack's limits.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import date, time, timedelta
from typing import Any
from urllib.parse import parse_qsl

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_bolt.request import BoltRequest
from slack_sdk.models.blocks import Block as SdkBlock

from bot.app import BotDeps, create_app
from bot.blocks import clip, escape, plain
from bot.blocks.alert_list import render_alert_list
from bot.blocks.alerts import handled, render_alert
from bot.blocks.ci import render_ci
from bot.blocks.digest import digest_text, render_digest
from bot.blocks.frame import no_snapshot, notice, unavailable
from bot.blocks.health import render_health
from bot.blocks.help import render_help, render_usage
from bot.blocks.home import render_home
from bot.blocks.queue import render_queue
from bot.blocks.reviewers import render_reviewers
from bot.blocks.status import render_status
from bot.blocks.thresholds import render_set, render_thresholds
from bot.blocks.why import render_why
from bot.blocks.windows import home_button, modal_errors, render_window_dm, render_windows, windows_modal
from bot.commands import UsageError, parse
from jobs import digest_text as d
from jobs.alerts import AlertStatus
from jobs.identity import Identity
from jobs.model import (
    Action,
    Alert,
    Contributor,
    Digest,
    FocusLoad,
    FocusSummary,
    QueueItem,
    ReviewerLoad,
    TeamSnapshot,
    WorkflowStats,
)
from jobs.ports import FixedClock
from jobs.settings import IdentitySettings, RuleThresholds, WorkHours
from jobs.store import JobRun, Store
from jobs.timeline import pr_clocks
from jobs.windows import DmItem, ReviewWindows, Window, WindowDM
from jobs.worktime import WorkCalendar
from tests.factories import T0, event, pr, review, snapshot
from tests.fakes.slack_api import FakeSlack
from tests.slack_helpers import BOB, LEAD, slash_body
from tests.slack_helpers import settings as slack_settings

NOW = T0 + timedelta(minutes=10)
PIECES = (
    "<!channel>", "<!here|here>", "<!everyone>", "<@U1>", "<@U0LEAD0001>", "<#C1>", "<#C1|general>",
    "<http://x|y>", "<https://evil.example|click>", "<mailto:a@b|mail>", "&amp;", "&lt;", "&gt;", "&#60;",
    "&", "<", ">", "|", "*", "_", "~", "`", "```", ":", "\n",
    "\u202e", "\u202c", "\u202a", "\u2066", "\u2067", "\u2068", "\u2069", "\u200e", "\u200f", "\u061c",
    "\x00", "\x07", "\x1b", "\x08", "\x7f", "\x85", "\x9b", "\r", "\t", "\x0b",
    "😀", "👨‍👩‍👧", "👍🏽", "🇫🇷", "e\u0301", "\ud83d", "\ude00", "中文", "a", "ok ",
)
_piece = st.sampled_from(PIECES)
_short = st.lists(_piece | st.text(max_size=8), max_size=24).map("".join)
_long = st.builds(lambda unit, n: (unit * n)[:n], st.lists(_piece, min_size=1, max_size=4).map("".join),
                  st.integers(min_value=5000, max_value=10000))
HOSTILE = _short | _long  # one text from GitHub, a user or a button

_OURS = re.compile(r"<https?://[^\s<>|]+\|[^<>]*>|<@[UW][A-Z0-9]{2,20}>")  # Flowbot's own markup
_BAD_AMP = re.compile(r"&(?!amp;|lt;|gt;)")
_UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
SETTINGS = {"max_examples": 10, "deadline": None, "derandomize": True,
            "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]}
SNAPSHOT_SETTINGS = {**SETTINGS, "max_examples": 8}  # each example is a whole team of hostile text


def text_objects(node: Any) -> Iterator[tuple[str, str]]:
    """Every text object in a block tree as (type, text): ``mrkdwn`` or ``plain_text``."""
    if isinstance(node, Mapping):
        if node.get("type") in ("mrkdwn", "plain_text") and isinstance(node.get("text"), str):
            yield node["type"], node["text"]
        for value in node.values():
            yield from text_objects(value)
    elif isinstance(node, list):
        for item in node:
            yield from text_objects(item)


def check_mrkdwn(text: str) -> None:
    """Safe mrkdwn: no markup but ours, entities whole, no bidi or control character."""
    bare = _OURS.sub("", text)
    assert "<" not in bare and ">" not in bare, text[:300]
    assert not _BAD_AMP.search(text), text[:300]
    assert not _UNSAFE.search(text), ascii(text[:300])
    for link in re.findall(r"<https?://[^\s<>|]+\|([^<>]*)>", text):
        assert "|" not in link and not _BAD_AMP.search(link)


def check_blocks(blocks: list[dict[str, Any]], *, most: int = 50) -> None:
    """Within Slack's limits (slack_sdk's validation and ours) and safe in every text."""
    assert 0 < len(blocks) <= most
    for block in blocks:
        SdkBlock.parse(block).to_dict()  # type: ignore[union-attr]  # raises on any limit slack_sdk knows
        if block["type"] == "section":
            assert all(len(f["text"]) <= 2000 for f in block.get("fields", []))
        if block["type"] == "context":
            assert 1 <= len(block["elements"]) <= 10
            assert all(len(e["text"]) <= 3000 for e in block["elements"])
    for kind, text in text_objects(blocks):
        assert text, "Slack refuses an empty text"
        if kind == "mrkdwn":
            check_mrkdwn(text)
        else:
            assert not _UNSAFE.search(text), ascii(text[:300])


def check_message(message: tuple[list[dict[str, Any]], str]) -> None:
    blocks, text = message
    check_blocks(blocks)
    assert 0 < len(text) <= 4000
    check_mrkdwn(text)


@st.composite
def hostile_snapshot(draw: st.DrawFn) -> TeamSnapshot:
    """A team snapshot whose every GitHub-sourced text is hostile."""
    pool = [draw(HOSTILE) for _ in range(5)]  # a few hostile texts, reused: drawing is the slow part

    def h(n: int = 0) -> str:
        return pool[n % len(pool)]

    base = snapshot()
    items = tuple(
        QueueItem(repo=h(n), number=n, title=h(n + 1), url=draw(st.sampled_from(["https://github.com/a/b/pull/1", h(n)])),
                  author=h(n + 2) if n % 3 else None, turn=("reviewer", "ci", "author", h(n))[n % 4],  # type: ignore[arg-type]  # a turn Flowbot does not know
                  waiting_on=(h(n + 3), "team:" + h(n + 4), "ci"), age_hours=float(n), age_business_hours=n / 2,
                  size=h(n), ai_assisted=bool(n % 2))
        for n in range(draw(st.integers(min_value=0, max_value=30)))
    )
    reviewers = tuple(ReviewerLoad(login=h(n), slack_id=None, requests_direct=n, requests_via_team=1, re_requests=0,
                                   context_switches=2, reviews=3, pending=1, focus_hours=1.5, requests_per_day=2.0)
                      for n in range(draw(st.integers(min_value=0, max_value=25))))
    workflows = tuple(WorkflowStats(name=h(n), attempts=5, queue_p50_min=1.0, queue_p90_min=2.0, run_p50_min=3.0,
                                    run_p90_min=float(n), failure_rate=0.1, rerun_rate=0.05 * (n + 1))
                      for n in range(draw(st.integers(min_value=0, max_value=20))))
    waits = (Contributor(name=h(3), value=5.0, unit="h", detail=h(4), url="https://github.com/a/b/pull/2"),
             Contributor(name="acme/api#412", value=4.0, unit="h", detail=h(), url="https://github.com/acme/api/pull/412"))
    analysis = replace(base.analysis, headline=h(1), action=Action(code="x", text=h(2), because=h(3)),
                       longest_waits=waits, top_repos=(Contributor(name=h(4), value=1.0, unit="h", detail=h()),))
    people = tuple(FocusLoad(login=h(n), on=bool(n % 2), since=base.computed_at if n % 2 else None, review_starts=n + 1, inside=n,
                             batches=min(n, 1), outside=1, saved_hours=n * 0.4, would_save_hours=0.4)
                   for n in range(draw(st.integers(min_value=0, max_value=25))))
    focus = FocusSummary(people=people, defaults=(h(1), "13:00-13:30"))
    return replace(base, team=h(2), queue_items=items, reviewers=reviewers, workflows=workflows, analysis=analysis,
                   errors=tuple(h(n) for n in range(draw(st.integers(0, 4)))), focus=focus)


@settings(**SNAPSHOT_SETTINGS)  # type: ignore[arg-type]
@given(snap=hostile_snapshot())
def test_snapshot_answers_are_safe(snap: TeamSnapshot) -> None:
    """/flow status, queue, reviewers and ci, from hostile GitHub text (and with Redis down)."""
    for render in (render_status, render_queue, render_reviewers, render_ci):
        check_message(render(snap, now=NOW))
    check_message(render_status(snap, now=NOW, unavailable=True))


@settings(**SNAPSHOT_SETTINGS)  # type: ignore[arg-type]
@given(snap=hostile_snapshot(), login=HOSTILE)
def test_app_home_and_data_notices_are_safe(snap: TeamSnapshot, login: str) -> None:
    """App Home (cards, PRs waiting on the user) and the "no data" and outage notices."""
    check_message(unavailable(snap.team, snap, NOW))
    check_message(unavailable(login, None, NOW))
    check_message(no_snapshot(login, NOW + timedelta(minutes=3), NOW))
    home = render_home([(snap.team, snap, False), (login, None, True), (login, None, False)], snap.queue_items,
                       login=login, now=NOW)
    check_blocks(home["blocks"], most=100)  # type: ignore[arg-type]
    check_blocks(render_home([], (), login=None, now=NOW)["blocks"], most=100)  # type: ignore[arg-type]


@settings(**SNAPSHOT_SETTINGS)  # type: ignore[arg-type]
@given(snap=hostile_snapshot(), bodies=st.lists(HOSTILE, min_size=11, max_size=11), headline=HOSTILE)
def test_digest_and_its_fallback_text_are_safe(snap: TeamSnapshot, bodies: list[str], headline: str) -> None:
    """The digest, its preview and its 4,000-character fallback `text`, whatever the sections hold."""
    titles = (d.WARNING, d.ACTION, d.SHARES, d.QUEUE, d.LATENCY, d.REVIEWERS, d.CI, d.AI, d.SIZE, d.WAITS, d.DATA)
    waits = "\n".join(f"{c.name}: {bodies[9]}" for c in snap.analysis.longest_waits)
    sections = tuple((t, waits if t == d.WAITS else b) for t, b in zip(titles, bodies, strict=True))
    digest = Digest(team=snap.team, channel="C0", week_start=date(2026, 2, 23), week_end=date(2026, 3, 1),
                    headline=headline, snapshot=snap, idempotency_key="k", sections=sections)
    check_message(render_digest(digest))
    text = digest_text(digest)
    assert len(text) <= 4000
    check_mrkdwn(text)


@settings(**SNAPSHOT_SETTINGS)  # type: ignore[arg-type]
@given(title=HOSTILE, login=HOSTILE, detail=HOSTILE, rule=HOSTILE, unit=HOSTILE)
def test_alerts_why_health_thresholds_and_usage_are_safe(title: str, login: str, detail: str, rule: str,
                                                          unit: str) -> None:
    """Alerts (with buttons), /flow alerts, why, health, thresholds, set and usage replies."""
    for team, episode in (("platform", "e1"), (login, detail)):
        alert = Alert(team=team, rule=rule, severity="critical", value=1e6, threshold=10.0, unit=unit, message=title,
                      at=T0, idempotency_key="k", recipients=("C0",), details=(detail, login, title), episode=episode)
        blocks, text = render_alert(alert)
        check_message((blocks, text))
        for button in (e for b in blocks if b["type"] == "actions" for e in b["elements"]):
            assert json.loads(button["value"])["team"] == team  # a value is never cut: it names the alert
    check_message(handled(escape(title, 3000), escape(detail, 500)))
    status = AlertStatus(team="platform", rule=rule, title=title, status="active", severity="warn", value=12.0,
                         threshold=10.0, unit=unit, since=NOW, episode="e", acknowledged_by=login, details=(detail,))
    check_message(render_alert_list(login, [status] * 40, now=NOW))
    p = pr(3, title=title, author=login or None, created=-30.0, merged=-2.0,
           events=(event("review_requested", -29.0, actor=login, requested_reviewer=detail),),
           reviews=(review(login or None, "APPROVED", -5.0),))
    hours = WorkHours()
    clocks = pr_clocks(p, identity=Identity(IdentitySettings()), calendar=WorkCalendar.for_team(hours), now=NOW)
    check_message(render_why(p, clocks, now=NOW, tz=hours.zone, data_as_of=T0))
    runs = {login: [JobRun(job=login, started_at=T0, seconds=1.0, outcome=detail, detail=title)] * 3}
    check_message(render_health(runs, now=NOW))
    levels = dict(RuleThresholds().__dict__)
    history = [{"rule": rule, "level": detail, "who": login, "old": title, "new": 3, "at": detail}] * 5
    check_message(render_thresholds(login, levels, history, now=NOW))
    check_message(render_set(login, rule, detail, None, 8.0))
    check_message(render_usage(title))
    check_message(notice(escape(title, 3000)))
    for text in (title, f"set {rule} {detail}", f"status {login}", f"why {title}"):
        try:
            parse(text)
        except UsageError as err:
            check_message(render_usage(str(err)))  # what the acknowledgement carries


@settings(**SNAPSHOT_SETTINGS)  # type: ignore[arg-type]
@given(snap=hostile_snapshot(), login=HOSTILE, why=HOSTILE, tz=st.sampled_from(["Europe/Berlin", "UTC"]))
def test_review_window_dms_and_settings_are_safe(snap: TeamSnapshot, login: str, why: str, tz: str) -> None:
    """The window DM and the threshold exception (hostile PRs, reasons, team and login), `/flow
    windows`, the App Home line and the modal with its per-field errors."""
    items = tuple(DmItem(i, why, ("green", "red", "running", "none")[n % 4])
                  for n, i in enumerate(snap.queue_items))
    for kind, mine in (("window", items[:20]), ("exception", ())):
        dm = WindowDM(kind=kind, team=snap.team, login=login, slack_id="U0BOB0001", at=NOW,  # type: ignore[arg-type]
                      window="10:00-10:30", tz=tz, to_review=items, as_author=mine,
                      next_window=NOW + timedelta(days=1), idempotency_key="k", threshold_hours=6.0,
                      data_as_of=T0)
        blocks, text = render_window_dm(dm)
        check_message((blocks, text))
        for menu in (b["accessory"] for b in blocks if "accessory" in b):
            assert all(len(o["value"]) <= 150 for o in menu["options"])
    rw = ReviewWindows(login, (Window(time(10), time(10, 30)),), tz, source="team")
    for shown in (rw, None):
        check_message(render_windows(shown, login=login, team=snap.team, next_start=NOW, note=escape(why, 200)))
    check_message(render_windows(None, login=None, team=None, next_start=None))
    check_blocks(home_button(rw))
    check_blocks(windows_modal(rw, working_hours="09:00-17:00", tz=tz)["blocks"], most=100)
    errors = modal_errors({"w1_start": why, "w2_end": login})["errors"]
    assert all(len(e) <= 150 and not _UNSAFE.search(e) for e in errors.values())


def test_help_is_within_limits() -> None:
    """Help is fixed text, and fits."""
    check_message(render_help())


@pytest.mark.parametrize("limit", [1, 2, 5, 75, 150, 2000, 3000])
@pytest.mark.parametrize("text", ["&" * 10000, "<!channel>" * 1000, "😀" * 9000, "👨‍👩‍👧" * 2000, "🇫🇷" * 5000,
                                  "e\u0301" * 5000, "a" * 4000 + "&amp;"])
def test_a_cut_never_splits_an_entity_or_a_character(text: str, limit: int) -> None:
    """Cut to any limit, escaped text keeps whole entities and whole characters, and an ellipsis."""
    out = escape(text, limit)
    assert len(out) <= limit and out.endswith("…") and not _BAD_AMP.search(out)
    kept = plain(text, limit)
    assert len(kept) <= limit and text.startswith(kept[:-1])
    body = kept[:-1]
    assert not re.match("[\u0301\u200d\U0001f3fb-\U0001f3ff]", text[len(body)]) and not body.endswith("\u200d")
    if "🇫🇷" in text:
        assert len(kept[:-1]) % 2 == 0  # whole flags only
    assert clip("x" * 3000 + "<https://a.example|b>", 3010).endswith("x…")  # a link is dropped whole


# --------------------------------------------------------------- through the real app (acks)


@pytest.fixture
def app(store: Store, fake_slack: FakeSlack) -> Any:
    store.put_snapshot(snapshot())
    deps = BotDeps(settings=slack_settings(), store=store, clock=FixedClock(NOW))
    return create_app(deps, mode="socket", client=fake_slack.client())


@pytest.mark.parametrize("text", [
    "\x00status", "<!here> & <b>", "status <!channel>", "why <http://x|y>", "set \u202e<@U1> 8",
    "set pickup_p50_hours 1e309 <#C1>", "queue " + "&" * 6000, "stauts 👨‍👩‍👧\x1b[31m",
])
def test_usage_replies_never_echo_raw_text(app: Any, text: str) -> None:
    """What a user typed comes back escaped and clean in the acknowledgement."""
    body = dict(parse_qsl(slash_body(text, user=BOB).decode()))
    answer = json.loads(app.dispatch(BoltRequest(body=body, mode="socket_mode")).body)
    check_message((answer["blocks"], answer["text"]))


@pytest.mark.parametrize("value", [
    {"team": "<!here> & <b>", "rule": "queue_length", "episode": "e"},
    {"team": "platform", "rule": "<!channel>\u202e & x", "episode": "e"},
    {"team": "platform\x00\x07", "rule": "queue_length", "episode": "e"},
    {"team": "&" * 3000, "rule": "r", "episode": "e"},
])
def test_button_replies_never_echo_raw_values(app: Any, fake_slack: FakeSlack, value: dict[str, str]) -> None:
    """A forged button value is quoted escaped and clean in the reply, and changes nothing."""
    payload = {"type": "block_actions", "user": {"id": LEAD}, "team": {"id": "T0FAKE"}, "api_app_id": "A0FLOWBOT",
               "container": {"type": "message"}, "channel": {"id": "C0"}, "response_url": fake_slack.response_url("b"),
               "message": {"type": "message", "text": "<!channel> &", "ts": "1.2", "blocks": []},
               "actions": [{"action_id": "flow_alert_ack", "block_id": "b", "value": json.dumps(value),
                            "type": "button", "action_ts": "1.3"}], "trigger_id": "1.2.3"}
    assert app.dispatch(BoltRequest(body=payload, mode="socket_mode")).status == 200
    (reply,) = fake_slack.responses("b")
    assert 0 < len(reply["text"]) <= 4000
    check_mrkdwn(reply["text"])
