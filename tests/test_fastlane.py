"""The fast lane and rendered answers: `/flow status`, `/flow queue` and App Home answer exactly as
the Bolt path does, refuse what it refuses, and never serve an answer older than the snapshot."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
from collections.abc import MutableMapping
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from a2wsgi import WSGIMiddleware

from bot.answers import field
from bot.app import BotDeps
from bot.fastlane import FastLane
from bot.home import home_view, records_view
from bot.web import FlowbotWeb, build_web
from jobs.model import QueueItem, QueueSample
from jobs.ports import FixedClock
from jobs.store import Store
from tests.factories import T0, snapshot
from tests.fakes.slack_api import FakeSlack
from tests.slack_helpers import ALICE, BOB, SECRET, settings, signed_headers, slash_body
from tests.test_slack_commands import stoppable_store  # noqa: F401 - a fixture, shared

NOW = T0 + timedelta(minutes=10)
Message = MutableMapping[str, Any]


class Lane:
    """The web app as ``flowbot web`` stacks it (fast lane, then a2wsgi and ``bot.web``), driven
    in-process, beside ``bot.web`` called directly (the Bolt path alone)."""

    def __init__(self, web: FlowbotWeb) -> None:
        self.web = web
        self.clock: FixedClock = web.deps.clock  # type: ignore[assignment]
        self.behind = 0  # requests the fast lane handed on
        inner = WSGIMiddleware(web, workers=2)  # type: ignore[arg-type]  # plain WSGI app

        async def counted(scope: Message, receive: Any, send: Any) -> None:
            self.behind += 1
            await inner(scope, receive, send)  # type: ignore[arg-type]

        self.lane = FastLane(counted, web, threads=2)

    def fast(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """Status and body through the fast lane (which may hand the request on)."""
        sent: list[Message] = []
        scope = {"type": "http", "method": "POST", "path": "/slack/events", "query_string": b"",
                 "http_version": "1.1", "scheme": "http", "root_path": "", "server": ("127.0.0.1", 80),
                 "client": ("127.0.0.1", 1), "headers": [(k.lower().encode(), v.encode()) for k, v in
                                                         {**headers, "Content-Length": str(len(body))}.items()]}

        async def main() -> None:
            given = False

            async def receive() -> Message:
                nonlocal given
                if given:
                    await asyncio.sleep(3600)
                given = True
                return {"type": "http.request", "body": body, "more_body": False}

            async def send(message: Message) -> None:
                sent.append(message)

            await self.lane(scope, receive, send)

        asyncio.run(main())
        return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])

    def bolt(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """Status and body from ``bot.web`` directly: signature check, then Bolt."""
        status: list[str] = []
        environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/slack/events", "QUERY_STRING": "",
                   "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
                   "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)),
                   **{("CONTENT_TYPE" if k == "Content-Type" else "HTTP_" + k.upper().replace("-", "_")): v
                      for k, v in headers.items()}}
        out = b"".join(self.web(environ, lambda s, h, e=None: status.append(s)))  # type: ignore[arg-type]
        return int(status[0].split()[0]), out

    def both(self, text: str, *, user: str = BOB, **form: str) -> tuple[tuple[int, Any], tuple[int, Any], bool]:
        """``/flow text`` through the fast lane and through Bolt alone: (status, JSON or
        text) of each, and whether the fast lane answered it itself."""
        body = slash_body(text, user=user)
        if form:
            body = body.replace(b"team_id=T0FAKE", f"team_id={form.get('team_id', 'T0FAKE')}".encode())
            body = body.replace(b"api_app_id=A0FLOWBOT", f"api_app_id={form.get('app_id', 'A0FLOWBOT')}".encode())
        headers = signed_headers(body, self.clock, skew=int(form.get("skew", 0)))
        if form.get("forge"):
            headers["X-Slack-Signature"] = "v0=" + "0" * 64
        before = self.behind
        fast = self.fast(body, headers)
        answered = self.behind == before
        return _read(fast), _read(self.bolt(body, headers)), answered


def _read(answer: tuple[int, bytes]) -> tuple[int, Any]:
    status, body = answer
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode()


@pytest.fixture
def lane(store: Store, fake_slack: FakeSlack) -> Lane:
    store.put_snapshot(snapshot())
    deps = BotDeps(settings=settings(), store=store, clock=FixedClock(NOW))
    lane = Lane(build_web(deps, signing_secret=SECRET, client=fake_slack.client()))
    lane.both("help")  # Bolt asks Slack which workspace this is (auth.test), once
    return lane


@pytest.mark.parametrize("text", ["status", "queue", "status platform", "queue platform share", "QUEUE"])
def test_fast_lane_answers_as_bolt_does(lane: Lane, text: str) -> None:
    """`/flow status` and `/flow queue` answered by the fast lane are the Bolt path's answers, with
    the data age of the moment they are asked, not of the moment they were rendered."""
    first, bolt_first, answered = lane.both(text)
    assert answered and first == bolt_first
    lane.clock.advance(timedelta(hours=3))  # the data was 17 min old when rendered
    later, bolt_later, answered = lane.both(text)
    assert answered and later == bolt_later
    assert "3.3 h old" in json.dumps(later[1]) and later != first


@pytest.mark.parametrize(("text", "form"), [
    ("status", {"forge": "1"}),  # 401 forged
    ("status", {"skew": "-400"}),  # 401 stale
    ("status", {"team_id": "T0OTHER"}),  # another workspace: refused by the guard
    ("status", {"app_id": "A0OTHER"}),  # another app
    ("status nosuchteam", {}),  # usage: unknown team
    ("status platform web", {}),  # usage: too many words
    ("reviewers", {}),
    ("help", {}),
    ("status web", {}),  # a team with no snapshot yet: Bolt says when the next sample runs
])
def test_what_the_fast_lane_does_not_answer_reaches_bolt_unchanged(lane: Lane, text: str,
                                                                   form: dict[str, str]) -> None:
    """Refused, other and unanswerable requests get exactly the answer (or refusal) they get
    without the fast lane, from the app behind it."""
    fast, bolt, answered = lane.both(text, **form)
    assert not answered and fast == bolt


def test_other_workspace_is_refused_on_the_fast_lane_too(lane: Lane) -> None:
    """A signed `/flow status` from another workspace reads nothing, fast lane or not."""
    (status, answer), _, _ = lane.both("status", team_id="T0OTHER")
    assert status == 200 and "installed in" in answer["text"] and "Flow status" not in json.dumps(answer)


def test_a_new_snapshot_replaces_the_rendered_answer(lane: Lane, store: Store) -> None:
    """After the worker writes a new snapshot, the next `/flow status` shows it, not the answer
    rendered from the one before."""
    (_, before), _, _ = lane.both("status")
    assert before["text"].startswith("platform: 10 PRs waiting")
    store.put_snapshot(snapshot(queue=QueueSample(at=T0, reviewer=40, author=2, ci=1, approved=2, oldest_hours=52.5, oldest_business_hours=18.0)))
    (_, after), (_, bolt), answered = lane.both("status")
    assert answered and after == bolt and after["text"].startswith("platform: 43 PRs waiting")


def test_an_answer_rendered_from_a_replaced_snapshot_is_not_kept(store: Store) -> None:
    """A request that rendered from a snapshot the worker replaced meanwhile does not store its
    answer over the new snapshot's."""
    store.put_snapshot(snapshot())

    def render() -> dict[str, bytes]:
        store.put_snapshot(snapshot(team="platform"))  # the worker swaps a snapshot in meanwhile
        return {field("status"): b'{"type":"slash"}'}

    store.fill_answers("platform", render)
    assert store.get_answers([("platform", [field("status")])], json.loads) == [[None]]


def test_a_bad_stored_answer_is_quarantined_and_rendered_again(lane: Lane, store: Store) -> None:
    """A stored answer that does not decode is skipped and named (doctor lists it), and the
    answer is rendered again from the snapshot."""
    lane.both("status")
    key = store.key("snapshot_answers", "platform")
    store._r.hset(key, field("status"), b"{not json")
    fast, bolt, answered = lane.both("status")
    assert answered and fast == bolt
    assert (key, field("status")) in store.quarantined


def test_redis_down_serves_the_last_answer_marked_stale(
    stoppable_store: tuple[Store, subprocess.Popen[bytes], Path],  # noqa: F811 - the fixture imported above
    fake_slack: FakeSlack,
) -> None:
    """While Redis cannot be read, the fast lane answers with the last copy it read, saying so
    and how old it is, as the Bolt path does; a team it never read gets Bolt's answer."""
    own, server, _ = stoppable_store
    own.put_snapshot(snapshot())
    deps = BotDeps(settings=settings(), store=own, clock=FixedClock(NOW))
    lane = Lane(build_web(deps, signing_secret=SECRET, client=fake_slack.client()))
    lane.both("help")
    lane.both("status")
    server.kill()
    server.wait(timeout=5)
    (status, answer), (_, bolt), answered = lane.both("status")
    text = json.dumps(answer)
    assert answered and status == 200
    assert "temporarily unavailable" in text and "data 17 min old" in text and "Flow status: platform" in text
    assert answer["blocks"][0] == bolt["blocks"][0]  # the same notice
    fast, bolt_web, answered = lane.both("queue web")
    assert not answered and fast == bolt_web


# ----------------------------------------------------------------------------- App Home


def _waiting_snapshot(*, shared: bool = True) -> Any:
    """platform's snapshot with PRs waiting on bob, on his GitHub team, and on someone else;
    with ``shared``, some on both bob and his team (in both lists)."""
    item = QueueItem(repo="acme/api", number=1, title="First", url="https://github.com/acme/api/pull/1",
                     author="alice", turn="reviewer", waiting_on=("bob",), age_hours=40.0,
                     age_business_hours=14.0, size="S", ai_assisted=False)
    both = ("bob", "team:backend") if shared else ("bob",)
    items = [replace(item, number=n, title=f"PR <{n}>", age_hours=float(n % 7),  # ties in age too
                     waiting_on=("team:backend",) if n % 3 == 0 else both if n % 3 == 1
                     else ("erin",)) for n in range(1, 70)]
    return snapshot(queue_items=tuple(items))


@pytest.mark.parametrize("shared", [True, False])
def test_home_from_rendered_parts_is_the_home_rendered_whole(store: Store, shared: bool) -> None:
    """App Home built from rendered cards and waiting lists is the view rendered whole from the
    snapshot's records: same PRs, order, "asked of your team" notes, counts and data ages."""
    store.put_snapshot(_waiting_snapshot(shared=shared))
    clock = FixedClock(NOW)
    deps = BotDeps(settings=settings(), store=store, clock=clock)
    for user in (BOB, ALICE, "U0NOBODY"):
        assert home_view(deps, user) == records_view(deps, user)  # rendered, then stored
        clock.advance(timedelta(hours=2))
        assert home_view(deps, user) == records_view(deps, user)  # read back, two hours on
    assert "asked of your team backend" in json.dumps(home_view(deps, BOB))


def test_home_from_copies_follows_every_new_snapshot_at_once(store: Store) -> None:
    """A web worker keeps App Home's parts as read and asks Redis only for those of teams whose
    snapshot changed: a new snapshot shows on the very next open, and opens in between get the
    same view without the parts being sent again."""
    clock = FixedClock(NOW)
    deps = BotDeps(settings=settings(), store=store, clock=clock)
    store.put_snapshot(_waiting_snapshot())
    store.put_snapshot(snapshot(team="web"))
    first = home_view(deps, BOB)  # renders the parts (kept in Redis), then reads them (kept here)
    assert home_view(deps, BOB) == first
    assert deps.parts.hits == 0
    assert home_view(deps, BOB) == first == records_view(deps, BOB)
    assert deps.parts.hits == 1  # bob's team's parts, from the copies
    for _ in range(3):
        nobody = home_view(deps, "U0NOBODY")  # on no team: both teams' cards
    assert deps.parts.hits == 4  # platform's card (rendered for bob) from the second open, web's from the third

    older = _waiting_snapshot()
    newer = replace(older, computed_at=older.computed_at + timedelta(minutes=1),
                    queue_items=tuple(replace(i, title=f"Renamed {i.number}") for i in older.queue_items))
    store.put_snapshot(newer)
    view = home_view(deps, BOB)
    assert "Renamed" in json.dumps(view) and "Renamed" not in json.dumps(first)
    assert view == records_view(deps, BOB) == home_view(deps, BOB)
    misses, hits = deps.parts.misses, deps.parts.hits
    assert home_view(deps, "U0NOBODY") == records_view(deps, "U0NOBODY") == nobody  # the cards alike
    assert (deps.parts.misses, deps.parts.hits) == (misses + 1, hits + 1)  # platform's read again, web's kept


def test_home_after_a_snapshot_written_without_a_generation_is_never_from_copies(store: Store) -> None:
    """A snapshot written by a Flowbot from before generations (a rolling deploy: an old worker
    beside a new web) drops the answers hash and writes none: the next open shows the new
    snapshot, and later ones are read whole, never served from a copy of an older one."""
    deps = BotDeps(settings=settings(), store=store, clock=FixedClock(NOW))
    older = _waiting_snapshot()
    store.put_snapshot(older)
    for _ in range(3):
        first = home_view(deps, BOB)
    assert deps.parts.hits == 1
    store.put_snapshot(replace(older, computed_at=older.computed_at + timedelta(minutes=1),
                               queue_items=tuple(replace(i, title=f"Renamed {i.number}") for i in older.queue_items)))
    store._r.hdel(store.key("snapshot_answers", "platform"), "generation")  # as the old worker writes it
    hits = deps.parts.hits
    for _ in range(3):
        view = home_view(deps, BOB)
        assert "Renamed" in json.dumps(view) and view != first
    assert view == records_view(deps, BOB)
    assert deps.parts.hits == hits


@pytest.mark.parametrize("extra", [False, True])
def test_home_lists_a_pr_two_teams_share_once(store: Store, extra: bool) -> None:
    """Two of bob's teams share a repository, so their waiting lists share PRs (the second's
    all of them, or all but one): Home lists each PR once, as the view rendered whole does."""
    from bot.config import from_mapping

    member = {"github": "bob", "slack": BOB}
    shared = from_mapping({"github": {"organisation": "acme"}, "teams": {
        "platform": {"members": [member], "repositories": ["api"], "github_teams": ["backend"], "channel": "C0P"},
        "infra": {"members": [member], "repositories": ["api", "ops"], "channel": "C0I"}}})
    first = _waiting_snapshot()
    items = first.queue_items[::2]
    if extra:
        items += (replace(items[0], repo="acme/ops", number=900, title="Only infra's", age_hours=99.0),)
    store.put_snapshot(first)
    store.put_snapshot(replace(first, team="infra", queue_items=items))
    deps = BotDeps(settings=shared, store=store, clock=FixedClock(NOW))
    view = home_view(deps, BOB)
    assert view == records_view(deps, BOB)
    assert ("Only infra" in json.dumps(view)) is extra


def test_home_with_a_team_hash_of_another_type_still_shows_every_team(store: Store) -> None:
    """A team whose answers key holds another Redis type is quarantined, and the Home view
    still shows every team, rendered from its snapshot."""
    store.put_snapshot(_waiting_snapshot())
    store.put_snapshot(snapshot(team="web"))
    store._r.set(store.key("snapshot_answers", "web"), b"not a hash")
    deps = BotDeps(settings=settings(), store=store, clock=FixedClock(NOW))
    view = home_view(deps, "U0NOBODY")  # in no team: Home shows the first teams
    assert view == records_view(deps, "U0NOBODY")
    assert "*web*" in json.dumps(view) and "*platform*" in json.dumps(view)
    assert any(key == store.key("snapshot_answers", "web") for key, _ in store.quarantined)


def test_home_read_after_redis_forgot_its_script(embedded_store: Store) -> None:
    """App Home reads its answers with a script Redis keeps by its SHA; a Redis that forgot it
    (restarted, or SCRIPT FLUSH) still gets every team's card, then the script again."""
    store = embedded_store
    store.put_snapshot(_waiting_snapshot())
    deps = BotDeps(settings=settings(), store=store, clock=FixedClock(NOW))
    before = home_view(deps, BOB)
    store._r.script_flush()
    assert home_view(deps, BOB) == before == records_view(deps, BOB)
    assert home_view(deps, BOB) == before
    assert store._r.script_exists(store._home_sha()) == [True]


def test_home_while_redis_fails_does_not_ask_it_again_for_each_part() -> None:
    """While Redis fails (here: it takes connections and drops them), the first Home open
    finds out and later opens answer from the copies at once, the review-windows line left
    out, without reaching for Redis again (each reach costs a thread its retries)."""
    import socket
    import threading

    from bot.app import BotDeps as Deps

    accepted = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)

    def drop() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            accepted.append(1)
            conn.close()

    threading.Thread(target=drop, daemon=True).start()
    try:
        broken = Store.connect(f"redis://127.0.0.1:{server.getsockname()[1]}/0", check_schema=False)
        deps = Deps(settings=settings(), store=broken, clock=FixedClock(NOW))
        first = home_view(deps, BOB)
        reached = len(accepted)
        assert reached > 0 and "Review windows" not in json.dumps(first)
        assert home_view(deps, BOB) == home_view(deps, BOB) == first
        assert len(accepted) == reached
    finally:
        server.close()


def test_home_windows_line_read_with_the_answers_is_the_members_own_or_the_team_default(store: Store) -> None:
    """The review-windows line App Home reads in the same round trip as its answers says what
    the slow path says: the member's own windows, else the team default, else off; a windows
    key of another Redis type is quarantined and read as none."""
    from bot.config import from_mapping
    from jobs.windows import ReviewWindows, Window

    store.put_snapshot(_waiting_snapshot())
    data = settings().model_dump(mode="json", exclude={"secrets"})
    data["teams"]["platform"]["review_windows"] = ["14:00-14:30"]
    with_default = from_mapping(data, env={})
    clock = FixedClock(NOW)

    def line(deps: BotDeps) -> str:
        view = home_view(deps, BOB)
        assert view == records_view(deps, BOB)
        [found] = [b["text"]["text"] for b in view["blocks"]  # type: ignore[attr-defined]
                   if "Review windows" in b.get("text", {}).get("text", "")]
        return str(found)

    assert "*Review windows*: off." in line(BotDeps(settings=settings(), store=store, clock=clock))
    assert "14:00-14:30 (Europe/Berlin)" in line(BotDeps(settings=with_default, store=store, clock=clock))
    store.set_review_windows(ReviewWindows("bob", (Window.parse("09:30-10:00"),), "Europe/Berlin",
                                           since=NOW, changed_at=NOW, changed_by=BOB))
    for chosen in (settings(), with_default):
        assert "09:30-10:00 (Europe/Berlin)" in line(BotDeps(settings=chosen, store=store, clock=clock))
    store._r.delete(store.key("windows", "bob"))
    store._r.rpush(store.key("windows", "bob"), b"not a record")
    assert "14:00-14:30" in line(BotDeps(settings=with_default, store=store, clock=clock))
    assert any(key == store.key("windows", "bob") for key, _ in store.quarantined)


# ----------------------------------------------------------------------------- App Home on the fast lane


def _home_opened(user: str = BOB, *, tab: str = "home", team_id: str = "T0FAKE",
                 app_id: str = "A0FLOWBOT") -> bytes:
    """An ``app_home_opened`` event as Slack POSTs it (the envelope's fields Bolt reads)."""
    return json.dumps({
        "token": "deprecated", "team_id": team_id, "api_app_id": app_id, "type": "event_callback",
        "event_id": "Ev0HOME0001", "event_time": 1767225600,
        "event": {"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": tab, "event_ts": "1.0"},
        "authorizations": [{"enterprise_id": None, "team_id": team_id, "user_id": "U0FLOWBOT", "is_bot": True}],
    }).encode()


def _json_headers(lane: Lane, body: bytes) -> dict[str, str]:
    return {**signed_headers(body, lane.clock), "Content-Type": "application/json"}


def test_home_opened_is_acknowledged_at_once_and_published_as_bolt_publishes_it(
    lane: Lane, store: Store, fake_slack: FakeSlack
) -> None:
    """An App Home open on the fast lane gets Bolt's empty acknowledgement without reaching Bolt,
    then the very view Bolt's listener publishes for the same event."""
    store.put_snapshot(_waiting_snapshot())
    body = _home_opened()
    before = lane.behind
    assert lane.fast(body, _json_headers(lane, body)) == (200, b"")
    assert lane.behind == before  # Bolt never saw it
    assert fake_slack.wait_for_call("views.publish", count=1, timeout=10)
    fast = fake_slack.views()[BOB]
    assert lane.bolt(body, _json_headers(lane, body)) == (200, b"")
    assert fake_slack.wait_for_call("views.publish", count=2, timeout=10)
    assert fake_slack.views()[BOB] == fast
    assert "Waiting on you (bob)" in json.dumps(fast)


def test_a_slow_slack_does_not_hold_other_home_opens_back(lane: Lane, store: Store, fake_slack: FakeSlack) -> None:
    """While Slack takes its time to answer views.publish, the views of further opens are
    still built and sent: 24 people opening Home at once all reach Slack before it has
    answered any of them (a sender per call waiting on Slack, not one thread building and
    waiting in turn)."""
    store.put_snapshot(_waiting_snapshot())
    fake_slack.delay("views.publish", seconds=30, times=None)
    users = [f"U0SLOW{i:04d}" for i in range(24)]
    try:
        for user in users:
            body = _home_opened(user)
            assert lane.fast(body, _json_headers(lane, body)) == (200, b"")
        assert fake_slack.wait_for_call("views.publish", count=len(users), timeout=10)
    finally:
        fake_slack.release_delayed()
    assert {c.params.get("user_id") for c in fake_slack.calls("views.publish")} == set(users)


@pytest.mark.parametrize(("event", "why"), [
    (_home_opened(tab="messages"), "the Messages tab: the listener publishes nothing"),
    (_home_opened(team_id="T0OTHER"), "another workspace: the guard refuses it"),
    (_home_opened(app_id="A0OTHER"), "another app"),
    (_home_opened(user="U0FLOWBOT"), "the bot's own event: Bolt ignores it"),
    (json.dumps({"type": "event_callback", "event": {"type": "app_mention", "user": BOB}}).encode(), "another event"),
    (b'["not an object"]', "not a JSON object: Bolt's 400"),
])
def test_what_is_not_a_home_open_from_here_reaches_bolt_unchanged(
    lane: Lane, fake_slack: FakeSlack, event: bytes, why: str
) -> None:
    """Events the fast lane does not serve go to the app behind, and get its answer."""
    before = lane.behind
    fast = lane.fast(event, _json_headers(lane, event))
    assert lane.behind == before + 1, why
    assert fast == lane.bolt(event, _json_headers(lane, event)), why
    assert not fake_slack.wait_for_call("views.publish", timeout=0.3), why


def test_a_forged_home_open_publishes_nothing(lane: Lane, fake_slack: FakeSlack) -> None:
    """An unsigned or forged event is refused (401) by the app behind; no view is built."""
    body = _home_opened()
    headers = {**_json_headers(lane, body), "X-Slack-Signature": "v0=" + "0" * 64}
    assert lane.fast(body, headers)[0] == 401
    assert not fake_slack.wait_for_call("views.publish", timeout=0.3)


def test_a_failing_views_publish_is_logged_once_and_the_next_open_works(
    lane: Lane, store: Store, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    """Slack refusing views.publish costs that open its view and one log line, nothing more."""
    store.put_snapshot(_waiting_snapshot())
    fake_slack.fail("views.publish", error="internal_error")
    body = _home_opened()
    assert lane.fast(body, _json_headers(lane, body)) == (200, b"")
    assert fake_slack.wait_for_call("views.publish", count=1, timeout=10)
    assert lane.fast(body, _json_headers(lane, body)) == (200, b"")
    assert fake_slack.wait_for_call("views.publish", count=2, timeout=10)
    for _ in range(100):
        if BOB in fake_slack.views():
            break
        asyncio.run(asyncio.sleep(0.02))
    assert BOB in fake_slack.views()
    failures = [r for r in caplog.records if "App Home not published" in r.getMessage()]
    assert len(failures) == 1 and "internal_error" in failures[0].getMessage()
