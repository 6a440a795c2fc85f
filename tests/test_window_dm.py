"""Review-window DMs: a simulated week on the sandbox, the exception, the budget and the buttons."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import pytest
from slack_bolt.request import BoltRequest
from slack_sdk import WebClient

from bot.app import BotDeps, create_app
from bot.delivery import SlackDelivery
from jobs.model import QueueItem
from jobs.ports import FixedClock
from jobs.scheduler import WINDOWS_JOB, Pipeline, simulate
from jobs.settings import Settings
from jobs.store import Store
from jobs.window_dm import run_windows, to_review_refs
from jobs.windows import ReviewWindows, WindowDM, effective_windows, occurrences_on, parse_windows
from jobs.worktime import WorkCalendar
from tests.factories import T0, snapshot
from tests.fakes.slack_api import FakeSlack
from tests.slack_helpers import slash_body

_LINE = re.compile(r"<https?://[^|>]+\|([^ >]+#\d+) [^>]*> reviewer's turn \(([^)]*)\)")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc,arg-type]  # (year, month, day, ...)


def command(app: Any, text: str, user: str) -> dict[str, Any]:
    """A `/flow` command through the app as Socket Mode delivers it; the acknowledgement."""
    body = dict(parse_qsl(slash_body(text, user=user).decode()))
    answer = app.dispatch(BoltRequest(body=body, mode="socket_mode"))
    assert answer.status == 200
    return json.loads(answer.body)  # type: ignore[no-any-return]


def queue_on(app: Any, store: Store, user: str, login: str, slugs: set[str]) -> set[str]:
    """The PRs `/flow queue` (as ``user`` sees it) puts on ``login``: reviewer's turn, naming
    them or one of their GitHub teams (a team request is not on the PR's own author)."""
    answer = command(app, "queue", user)
    text = "\n".join(b["text"]["text"] for b in answer["blocks"] if b.get("type") == "section")
    assert "more: " not in text, "the whole queue must fit /flow queue's page for this comparison"
    out = set()
    for ref, names in _LINE.findall(text):
        who = {n.strip() for n in names.split(",")}
        repo, _, number = ref.partition("#")
        pr = store.get_pr(repo, int(number))
        if login in who or (any(f"{s} team" in who for s in slugs)
                            and (pr is None or (pr.author or "").lower() != login)):
            out.add(ref)
    return out


@dataclass
class Witness:
    """Delivers through the real SlackDelivery and notes each DM handed to it, at the
    simulated time."""

    inner: SlackDelivery
    clock: FixedClock
    seen: list[tuple[datetime, WindowDM]] = field(default_factory=list)

    def alert(self, alert: Any) -> bool:
        return self.inner.alert(alert)

    def digest(self, d: Any) -> bool:
        return self.inner.digest(d)

    def window_dm(self, dm: WindowDM) -> bool:
        ok = self.inner.window_dm(dm)
        if ok:
            self.seen.append((self.clock.now(), dm))
        return ok


@pytest.mark.timeout(600)  # about 10 s of CPU: a busy machine stretches it past the default
def test_a_week_of_windows_on_the_sandbox(store: Store) -> None:
    """A simulated week and a day on the sandbox (Berlin: DST on Sunday, a day off on Tuesday,
    Good Friday a holiday): each member with windows gets exactly one DM per window with waiting
    PRs, listing exactly what `/flow queue` puts on them at that minute; nothing on weekends,
    the day off, the holiday or outside working hours; outside windows only PRs past the pickup
    threshold, each once."""
    from bot.config import from_mapping
    from jobs.github.client import connect
    from jobs.sandbox import SandboxServer, build_org

    start, end = utc(2026, 3, 27, 6), utc(2026, 4, 3, 18)  # Fri 27 Mar .. Fri 3 Apr, Berlin
    clock = FixedClock(start)
    org = build_org(end=end, weeks=3, teams=1, repos_per_team=1)
    with SandboxServer(org, clock=clock) as sandbox, FakeSlack() as slack:
        data = org.config(sandbox.base_url)
        team = data["teams"]["payments"]
        team["days_off"] = [date(2026, 3, 31)]
        team["review_windows"] = ["11:00-11:30"]  # the team's default: everyone but alice
        data["schedules"] = {"sample_interval_minutes": 1440, "jitter_seconds": 0}  # 06:00 UTC
        s: Settings = from_mapping(data, env={"GITHUB_TOKEN": sandbox.token})
        members = {m.github: m.slack or "" for m in s.teams["payments"].members}
        alice = members["alice"]
        deps = BotDeps(settings=s, store=store, clock=clock)
        app = create_app(deps, mode="socket", client=WebClient(base_url=slack.api_url, token=slack.token))
        answer = command(app, "windows 09:30-10:00 14:00-14:30", alice)
        assert "09:30-10:00, 14:00-14:30 (Europe/Berlin)" in json.dumps(answer)

        witness = Witness(SlackDelivery(WebClient(base_url=slack.api_url, token=slack.token), store,
                                        clock=clock, sleep=lambda _: None), clock)
        source = connect(s, clock=clock, sleep=lambda _: None)
        pipe = Pipeline.from_settings(s, store, witness, clock=clock, source=source)
        cal = WorkCalendar.for_team(s.teams["payments"])
        windows = {login: effective_windows(s, store.get_review_windows(), login) for login in members}
        starts: dict[datetime, list[tuple[str, str]]] = {}
        for login, rw in windows.items():
            for day in (date(2026, 3, 27) + timedelta(days=n) for n in range(8)):
                for occ in occurrences_on(rw, day, cal) if rw is not None else ():
                    starts.setdefault(occ.start, []).append((login, occ.key))
        expected: dict[tuple[str, str], set[str]] = {}

        def before(job: str, at: datetime) -> None:
            if job == WINDOWS_JOB:
                for login, key in starts.get(at, ()):
                    expected[(login, key)] = queue_on(app, store, members[login], login,
                                                      {"payments-reviewers"})

        simulate([pipe], clock=clock, start=start, end=end, on_fire=before,
                 windows_every=timedelta(minutes=30))

    assert {(login, k.split("T")[0]) for login, k in expected} >= {
        ("alice", "2026-03-27"), ("bob", "2026-03-30"), ("alice", "2026-04-02")}
    assert not {k.split("T")[0] for _, k in expected} & {"2026-03-28", "2026-03-29", "2026-03-31",
                                                         "2026-04-03"}
    sent = [(at, dm) for at, dm in witness.seen if dm.kind == "window"]
    keys = [dm.idempotency_key for _, dm in sent]
    assert len(keys) == len(set(keys)), "one DM per window"
    by_key = {dm.idempotency_key: (at, dm) for at, dm in sent}
    for (login, key), on_them in expected.items():
        found = by_key.get(f"window:{login}:{key}")
        if on_them:
            assert found is not None, (login, key, on_them)
        if found is not None:
            at, dm = found
            assert set(to_review_refs(dm)) == on_them, (login, key)
            assert to_review_refs(dm) == sorted(to_review_refs(dm), key=lambda r: -next(
                d.item.age_hours for d in dm.to_review if f"{d.item.repo}#{d.item.number}" == r))
    assert sent, "the sandbox's queue should put PRs on someone at a window"
    assert len(by_key) == len({k for k in by_key if k.removeprefix("window:").split(":")[0] in members})
    posted = [m for m in slack.messages() if (m["metadata"] or {}).get("event_payload", {})
              .get("kind", "").startswith("review-")]
    assert len(posted) == len(witness.seen)  # every DM in Slack once
    for at, dm in witness.seen:
        assert cal.is_working_time(at), (at, dm.idempotency_key)
        local = at.astimezone(cal.tz)
        assert local.date() not in {date(2026, 3, 31), date(2026, 4, 3)} and local.weekday() < 5
    exceptions = [(at, dm) for at, dm in witness.seen if dm.kind == "exception"]
    told = [(dm.login, ref) for _, dm in exceptions for ref in to_review_refs(dm)]
    assert len(told) == len(set(told)), "the threshold exception comes once per PR"
    for at, dm in exceptions:
        rw = windows[dm.login]
        assert rw is not None
        inside = [o for o in occurrences_on(rw, at.astimezone(rw.zone).date(), cal) if o.start <= at < o.end]
        assert not inside, "inside a window the window's DM says it"
        assert dm.threshold_hours is not None
        assert all(d.item.age_business_hours > dm.threshold_hours for d in dm.to_review)
    # the clocks changed on Sunday: alice's 09:30 Berlin is 08:30 UTC before, 07:30 UTC after
    alice_at = {dm.idempotency_key.split(":")[-1]: at for at, dm in sent if dm.login == "alice"}
    if "2026-03-27T09:30" in alice_at and "2026-04-01T09:30" in alice_at:
        assert alice_at["2026-03-27T09:30"].hour == 8 and alice_at["2026-04-01T09:30"].hour == 7


# ----------------------------------------------------------------- the rules, on a stored snapshot


@dataclass
class Recorder:
    """A DeliverDM that keeps what it was given (delivery itself is tested with the Slack fake)."""

    dms: list[WindowDM] = field(default_factory=list)

    def window_dm(self, dm: WindowDM) -> bool:
        if dm.idempotency_key not in {d.idempotency_key for d in self.dms}:
            self.dms.append(dm)
        return True


def _item(number: int, *, hours: float, waiting_on: tuple[str, ...] = ("bob",), author: str = "alice",
          turn: str = "reviewer") -> QueueItem:
    return QueueItem(repo="acme/api", number=number, title=f"Change {number}",
                     url=f"https://github.com/acme/api/pull/{number}", author=author, turn=turn,  # type: ignore[arg-type]
                     waiting_on=waiting_on, age_hours=hours * 2, age_business_hours=hours, size="S",
                     ai_assisted=False)


def test_one_dm_per_window_the_exception_once_and_quiet_otherwise(store: Store) -> None:
    """Bob (windows 10:00 and 15:00 Berlin) gets one DM at each window with PRs waiting, oldest
    first with his own PR waiting on him; outside windows only a PR past the 6 h pickup
    threshold not listed at his last window, once; nothing in quiet hours or on a muted day;
    past the noise budget one window DM a day and no exceptions. A team request reaches alice,
    not bob who wrote the PR."""
    from jobs.window_dm import mute_today
    from tests.slack_helpers import settings as slack_settings

    s = slack_settings()
    for login, spans in (("bob", ["10:00-10:30", "15:00-15:30"]), ("alice", ["10:00-10:30"])):
        store.set_review_windows(ReviewWindows(login, (), "Europe/Berlin").changed(
            parse_windows(spans), now=T0, by="test"))
    queue = [_item(412, hours=18.0, waiting_on=("bob", "team:backend")), _item(7, hours=2.0),
             _item(409, hours=3.0, author="bob", turn="approved", waiting_on=("bob",)),
             _item(8, hours=1.0, waiting_on=("team:backend",), author="bob")]  # his own: not his to review
    store.put_snapshot(snapshot(queue_items=tuple(queue)))
    rec = Recorder()

    def run(at: datetime) -> list[WindowDM]:
        before = len(rec.dms)
        report = run_windows(s, store, rec, now=at)
        assert not report.failed
        return rec.dms[before:]

    monday = T0  # 10:00 in Berlin
    dm, alice = run(monday + timedelta(minutes=5))
    assert alice.idempotency_key == "window:alice:2026-03-02T10:00"
    assert [(d.item.number, d.why) for d in alice.to_review] == [(8, "asked of your team backend")]
    assert dm.kind == "window" and dm.login == "bob" and dm.window == "10:00-10:30"
    assert to_review_refs(dm) == ["acme/api#412", "acme/api#7"]
    assert [(d.item.number, d.why) for d in dm.as_author] == [(409, "approved, not merged")]
    assert dm.next_window == datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
    assert run(monday + timedelta(minutes=20)) == []  # one per window
    assert run(monday + timedelta(hours=1)) == []  # #412 was listed at 10:00: it waits for 15:00
    store.put_snapshot(snapshot(queue_items=(*queue, _item(500, hours=7.0))))
    (late,) = run(monday + timedelta(hours=1, minutes=30))
    assert late.kind == "exception" and to_review_refs(late) == ["acme/api#500"] and late.threshold_hours == 6
    assert run(monday + timedelta(hours=2)) == []  # once per PR
    store.put_snapshot(snapshot(queue_items=(*queue, _item(500, hours=7.0), _item(501, hours=9.0))))
    assert run(monday + timedelta(hours=10)) == []  # 20:00 in Berlin: quiet hours
    mute_today(store, s, "bob", now=monday + timedelta(hours=3), by="U0BOB0001")
    assert run(monday + timedelta(hours=5, minutes=5)) == []  # 15:05, muted today
    tuesday = monday + timedelta(days=1)
    store.set_json("alerts", "budget", "U0BOB0001", "2026-W10", value=10)  # the week's budget spent
    first, _alice = run(tuesday + timedelta(minutes=5))
    assert first.login == "bob" and first.kind == "window" and "acme/api#501" in to_review_refs(first)
    assert run(tuesday + timedelta(hours=2)) == []  # no exception past the budget
    assert run(tuesday + timedelta(hours=5, minutes=5)) == []  # one window DM a day past it
    assert [d.login for d in rec.dms].count("alice") == 2  # Monday and Tuesday at 10:00: #8


def test_the_scheduler_queues_the_pass_and_a_worker_posts_each_dm_once(store: Store, fake_slack: FakeSlack) -> None:
    """With the schedule as queued work: the minute's pass queued twice (coalesced) and run
    again after it posted, bob's window DM reaches Slack once."""
    from jobs import work
    from jobs.dispatch import Dispatch
    from tests.slack_helpers import settings as slack_settings

    s = slack_settings()
    clock = FixedClock(T0 + timedelta(minutes=5))  # 10:05 in Berlin
    store.set_review_windows(ReviewWindows("bob", (), "Europe/Berlin").changed(
        parse_windows(["10:00-10:30"]), now=T0, by="test"))
    store.put_snapshot(snapshot())  # #412 waits on bob
    delivery = SlackDelivery(fake_slack.client(), store, sleep=lambda _: None, clock=clock)
    pipeline = Pipeline.from_settings(s, store, delivery, clock=clock)
    work.install(work.Context(s, store, clock, pipeline=pipeline))
    try:
        tick = Dispatch(pipeline)
        tick.windows(clock.now())
        tick.windows(clock.now())  # coalesced with the pending one
        work.run_burst(store)
        assert work.enqueue_windows(store, reason="again")
        work.run_burst(store)
    finally:
        work.install(None)
    dms = [m for m in fake_slack.messages() if (m["metadata"] or {}).get("event_payload", {}).get("kind") == "review-window"]
    assert len(dms) == 1 and "acme/api#412" in json.dumps(dms[0]["blocks"])
    assert [r.job for r in store.job_runs("windows")] == ["windows", "windows"]
