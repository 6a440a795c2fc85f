"""The schedule: digests at each team's local time across DST, every run once across replicas."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_sdk import WebClient

from bot.delivery import SlackDelivery
from jobs import digest as digest_mod
from jobs.model import Digest
from jobs.ports import FixedClock
from jobs.scheduler import (
    DIGEST_GRACE,
    Pipeline,
    Steps,
    build_scheduler,
    digest_trigger,
    previous_fire_time,
    simulate,
)
from jobs.settings import Settings
from jobs.store import Store
from tests.conftest import CliStorage
from tests.factories import snapshot
from tests.fakes.slack_api import FakeSlack


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc,arg-type]  # (year, month, day, ...) from the caller


def settings(**schedules: Any) -> Settings:
    team = {"members": [{"github": "alice"}], "repositories": ["api"], "leads": ["U0LEAD001"]}
    return Settings.model_validate({
        "github": {"organisation": "acme"},
        "teams": {
            "berlin": {**team, "channel": "C0BERLIN1", "timezone": "Europe/Berlin"},
            "nyc": {**team, "channel": "C0NYC0001", "timezone": "America/New_York",
                    "digest_day": "fri", "digest_time": "16:00"},
        },
        "schedules": {"sample_interval_minutes": 240, "jitter_seconds": 0, **schedules},
    })


class Killed(BaseException):
    """Stands for the process dying (SIGKILL): nothing in our code catches it."""


class Steps_:  # noqa: N801 - the test double of jobs.scheduler.Steps
    """Counting job bodies; the digest is the real ``jobs.digest`` on stored snapshots."""

    def __init__(self, s: Settings, store: Store) -> None:
        self.settings, self.store = s, store
        self.samples: list[datetime] = []
        self.kill_next_build = False
        self.fail_next_build = False

    def steps(self) -> Steps:
        return Steps(self.sample, lambda now: "snap", lambda now: "alerts", self.build)

    def sample(self, now: datetime) -> str:
        self.samples.append(now)
        for team in self.settings.teams:
            self.store.put_snapshot(snapshot(team=team, computed_at=now))
        return "sampled"

    def build(self, team: str, now: datetime) -> Digest:
        if self.kill_next_build:
            self.kill_next_build = False
            raise Killed()
        if self.fail_next_build:
            self.fail_next_build = False
            raise RuntimeError("matplotlib exploded")
        return digest_mod.build_digest(self.settings, self.store, team, now=now)


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


def worker(s: Settings, store: Store, slack: FakeSlack, steps: Steps_) -> Pipeline:
    client = WebClient(base_url=slack.api_url, token=slack.token)
    return Pipeline(s, store, SlackDelivery(client, store, sleep=lambda _: None), steps.steps())


def digests(slack: FakeSlack) -> list[tuple[str, str]]:
    return [(m["channel"], m["ts"]) for m in slack.messages() if m["channel"] in ("C0BERLIN1", "C0NYC0001")]


def test_digest_stays_at_local_time_across_the_european_dst_switch() -> None:
    """Berlin's Monday 09:30 digest is 08:30 UTC before the March switch and 07:30 after."""
    trig = digest_trigger(settings(), "berlin")
    first = trig.get_next_fire_time(None, utc(2026, 3, 21))
    second = trig.get_next_fire_time(first, first)
    assert (first, second) == (utc(2026, 3, 23, 8, 30), utc(2026, 3, 30, 7, 30))


def test_digest_stays_at_local_time_across_both_new_york_switches() -> None:
    """New York's Friday 16:00 digest moves in UTC in March and November, never in local time."""
    trig = digest_trigger(settings(), "nyc")
    march = trig.get_next_fire_time(None, utc(2026, 3, 1))
    assert (march, trig.get_next_fire_time(march, march)) == (utc(2026, 3, 6, 21), utc(2026, 3, 13, 20))
    fall = trig.get_next_fire_time(None, utc(2026, 10, 25))
    assert (fall, trig.get_next_fire_time(fall, fall)) == (utc(2026, 10, 30, 20), utc(2026, 11, 6, 21))
    assert previous_fire_time(trig, utc(2026, 11, 6, 20, 59)) == utc(2026, 10, 30, 20)


def test_two_replicas_over_two_weeks_post_each_digest_once_at_local_time(
    store: Store, slack: FakeSlack
) -> None:
    """Two workers on one Redis for two weeks (a DST switch included): one digest per team per week."""
    s = settings()
    counting = Steps_(s, store)
    clock = FixedClock(utc(2026, 3, 2))
    workers = [worker(s, store, slack, counting), worker(s, store, slack, counting)]
    fired = simulate(workers, clock=clock, start=utc(2026, 3, 2), end=utc(2026, 3, 16))
    posts = slack.calls("chat.postMessage")
    when = {}
    for call, run in zip(posts, [r for f in fired for r in f.runs if r.job.startswith("digest:")
                                 and r.detail.endswith("posted")], strict=True):
        when[(call.params["channel"], run.started_at)] = run.job
    assert sorted(when) == [
        ("C0BERLIN1", utc(2026, 3, 2, 8, 30)), ("C0BERLIN1", utc(2026, 3, 9, 8, 30)),
        ("C0NYC0001", utc(2026, 3, 6, 21, 0)), ("C0NYC0001", utc(2026, 3, 13, 20, 0)),  # after DST
    ]
    assert len(counting.samples) == 14 * 6 + 1  # every 4 h (both ends), once, though two tick
    assert len(set(counting.samples)) == len(counting.samples)
    runs = store.job_runs("digest:berlin")
    assert [r.outcome for r in runs] == ["ok", "ok"]


def test_replicas_firing_at_the_same_instant_post_once(store: Store, slack: FakeSlack) -> None:
    """Four workers (threads) firing the same digest and tick together post the digest once."""
    import threading

    s = settings()
    steps = Steps_(s, store)
    workers = [worker(s, store, slack, steps) for _ in range(4)]
    workers[0].tick(utc(2026, 3, 2, 4))
    barrier = threading.Barrier(len(workers))
    at = utc(2026, 3, 2, 8, 30)

    def fire(w: Pipeline) -> None:
        barrier.wait(timeout=10)
        w.digest("berlin", at)
        w.tick(at)

    threads = [threading.Thread(target=fire, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert [c for c, _ in digests(slack)] == ["C0BERLIN1"]
    assert len(steps.samples) == 2  # the 04:00 slot and the 08:00 slot, once each


def test_killed_mid_digest_then_restarted_posts_it_once(store: Store, slack: FakeSlack) -> None:
    """A worker dying while building the digest: the restarted worker posts it, once."""
    s = settings()
    steps = Steps_(s, store)
    first = worker(s, store, slack, steps)
    first.tick(utc(2026, 3, 2, 4))
    steps.kill_next_build = True
    with pytest.raises(Killed):
        first.digest("berlin", utc(2026, 3, 2, 8, 30))
    assert digests(slack) == []
    restarted = worker(s, store, slack, steps)  # a new process
    with store.lock("digest:berlin"):  # the dead worker's lock, until it expires
        restarted.tick(utc(2026, 3, 2, 8, 45))
    assert digests(slack) == []
    restarted.tick(utc(2026, 3, 2, 12, 45))
    restarted.tick(utc(2026, 3, 2, 13, 45))
    assert [c for c, _ in digests(slack)] == ["C0BERLIN1"]


def test_killed_after_posting_is_not_posted_again(store: Store, slack: FakeSlack) -> None:
    """A worker dying after Slack took the digest but before it noted so: no second post."""
    s = settings()
    steps = Steps_(s, store)
    w = worker(s, store, slack, steps)
    w.tick(utc(2026, 3, 2, 4))

    class DieAfterPost:
        def __init__(self, inner: SlackDelivery) -> None:
            self.inner = inner

        def alert(self, alert: Any) -> bool:
            return self.inner.alert(alert)

        def digest(self, d: Digest) -> bool:
            self.inner.digest(d)
            raise Killed()

    dying = Pipeline(s, store, DieAfterPost(w.deliver), steps.steps())  # type: ignore[arg-type]
    with pytest.raises(Killed):
        dying.digest("berlin", utc(2026, 3, 2, 8, 30))
    worker(s, store, slack, steps).tick(utc(2026, 3, 2, 9, 0))
    assert [c for c, _ in digests(slack)] == ["C0BERLIN1"]
    assert store.job_runs("digest:berlin")[0].detail.endswith("posted (late)")


def test_failed_digest_is_recorded_and_retried_within_grace(store: Store, slack: FakeSlack) -> None:
    """A digest run that fails is recorded as failed and posted by a later tick, not after grace."""
    s = settings()
    steps = Steps_(s, store)
    w = worker(s, store, slack, steps)
    w.tick(utc(2026, 3, 2, 4))
    steps.fail_next_build = True
    run = w.digest("berlin", utc(2026, 3, 2, 8, 30))
    assert run is not None and run.outcome == "failed" and "matplotlib" in run.detail
    w.tick(utc(2026, 3, 2, 8, 30) + DIGEST_GRACE + timedelta(minutes=1))
    assert digests(slack) == []  # too late now: next week's digest will say it all
    steps.fail_next_build = True
    w.digest("berlin", utc(2026, 3, 9, 8, 30))
    w.tick(utc(2026, 3, 9, 9, 0))
    assert [c for c, _ in digests(slack)] == ["C0BERLIN1"]


def test_channel_not_found_for_one_team_does_not_stop_the_other(store: Store, slack: FakeSlack) -> None:
    """One team's digest going to a missing channel leaves the other team's digest unharmed."""
    slack.add_channel("C0NYC0001")
    s = settings()
    steps = Steps_(s, store)
    w = worker(s, store, slack, steps)
    w.tick(utc(2026, 3, 2, 4))
    assert w.digest("berlin", utc(2026, 3, 2, 8, 30)).outcome == "failed"  # type: ignore[union-attr]
    assert w.digest("nyc", utc(2026, 3, 6, 21)).outcome == "ok"  # type: ignore[union-attr]
    assert [c for c, _ in digests(slack)] == ["C0NYC0001"]


def test_rate_limited_digest_is_retried(store: Store, slack: FakeSlack) -> None:
    """A 429 on the digest post is waited out and the digest goes through once."""
    s = settings()
    steps = Steps_(s, store)
    w = worker(s, store, slack, steps)
    w.tick(utc(2026, 3, 2, 4))
    slack.rate_limit("chat.postMessage", retry_after=1)
    assert w.digest("berlin", utc(2026, 3, 2, 8, 30)).outcome == "ok"  # type: ignore[union-attr]
    assert [c.status for c in slack.calls("chat.postMessage")] == [429, 200]


def test_scheduler_is_built_from_settings(store: Store) -> None:
    """The worker's scheduler holds sampling, the digest catch-up, one digest job per team and
    the review windows' minute, coalescing, sampling and digests each on a thread pool of their own."""
    s = settings(jitter_seconds=30)
    pipe = Pipeline(s, store, None, Steps_(s, store).steps())  # type: ignore[arg-type]
    clock = FixedClock(utc(2026, 3, 2, 10))
    sched = build_scheduler(pipe, clock=clock)
    jobs = {j.id: j for j in sched.get_jobs()}
    assert sorted(jobs) == ["digest:berlin", "digest:nyc", "digests", "opening:berlin", "opening:nyc",
                            "sample", "windows"]
    assert jobs["windows"].trigger.interval.total_seconds() == 60
    assert all(j.coalesce and j.misfire_grace_time for j in jobs.values())
    assert {j.executor for j in jobs.values() if j.id.startswith("digest")} == {"digests"}
    assert jobs["sample"].executor == "sampling"
    assert jobs["sample"].trigger.jitter == 30
    assert str(jobs["digest:nyc"].trigger.timezone) == "America/New_York"


def test_alert_held_overnight_goes_out_at_the_teams_opening(store: Store, slack: FakeSlack) -> None:
    """A breach found at night in Berlin is posted at 09:00 Berlin time, not at the next tick."""
    from jobs.alerts import AlertEngine
    from jobs.model import QueueSample

    s = settings(sample_interval_minutes=1440)
    client = WebClient(base_url=slack.api_url, token=slack.token)
    delivery = SlackDelivery(client, store, sleep=lambda _: None)
    engine = AlertEngine(s, store, delivery)
    night = utc(2026, 3, 2, 22)  # Monday 23:00 in Berlin
    busy = QueueSample(at=night, reviewer=14, author=0, ci=0, approved=0,
                       oldest_hours=1.0, oldest_business_hours=1.0)
    for team in s.teams:
        store.put_snapshot(snapshot(team=team, computed_at=night, data_as_of=night, queue=busy,
                                    reviewers=(), workflows=(), flow=(), queue_items=()))
    steps = Steps(lambda now: "", lambda now: "", lambda now: engine.evaluate_all(now=now),
                  lambda team, now: None)  # type: ignore[arg-type, return-value]
    pipe = Pipeline(s, store, delivery, steps)
    pipe.tick(night)
    assert slack.messages() == []
    clock = FixedClock(night)
    fired = simulate([pipe], clock=clock, start=night + timedelta(minutes=1), end=utc(2026, 3, 3, 12))
    sent = [f for f in fired if f.job == "opening:berlin" and f.runs]
    assert sent[0].at == utc(2026, 3, 3, 8)  # 09:00 CET
    assert [m["channel"] for m in slack.messages()] == ["U0LEAD001"]
    assert "Review queue length" in slack.messages()[0]["text"]


def test_run_records_show_start_duration_and_outcome(store: Store, slack: FakeSlack) -> None:
    """Each step's run is recorded for doctor and /flow health; a second replica's tick is skipped."""
    s = settings()
    steps = Steps_(s, store)
    now = utc(2026, 3, 3, 12)
    assert [r.job for r in worker(s, store, slack, steps).tick(now)] == ["sample", "snapshot", "alerts"]
    assert worker(s, store, slack, steps).tick(now + timedelta(minutes=1)) == []
    (run,) = store.job_runs("sample")
    assert run.started_at == now and run.outcome == "ok" and run.seconds >= 0
    assert replace(run, seconds=0).detail == "sampled"


def _config(tmp_path: Any, slack: FakeSlack, storage: CliStorage) -> Any:
    path = tmp_path / "config.toml"
    path.write_text(f"""
[github]
organisation = "acme"
base_url = "{slack.url}"

{storage.toml}
[teams.platform]
members = [{{ github = "alice" }}]
repositories = ["api"]
channel = "C0TEAM001"
""")
    return path


def test_worker_starts_and_stops_gracefully_on_sigterm(
    tmp_path: Any, slack: FakeSlack, cli_storage: CliStorage
) -> None:
    """`flowbot worker` runs until SIGTERM, then finishes its job and exits cleanly."""
    import os
    import signal
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GITHUB_", "REDIS_"))}
    env.update(SLACK_BOT_TOKEN=slack.token, SLACK_API_URL=slack.api_url, PYTHONUNBUFFERED="1")
    if cli_storage.redis_url:
        env["REDIS_URL"] = cli_storage.redis_url
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "worker", "--config",
         str(_config(tmp_path, slack, cli_storage))],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert proc.stdout is not None
        started = proc.stdout.readline()
        assert "Worker started" in started, proc.stderr.read() if proc.stderr else ""
        store = Store.connect(cli_storage.redis_url, prefix=cli_storage.prefix)
        assert [w.endswith(f":{proc.pid}") for w in store.workers_seen()] == [True]  # its heartbeat
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Worker stopped." in out
    assert store.workers_seen() == {}  # a clean stop says so at once
    store.close()


def test_sigterm_while_the_worker_says_it_started_is_a_clean_stop(cli_storage: CliStorage) -> None:
    """A SIGTERM that lands while the worker is still saying it started (RQ raises its stop
    request then, before its loop) stops it as cleanly as one a moment later: exit 0."""
    import os
    import subprocess
    import sys

    code = ("import os, signal, threading\n"
            "from jobs import work\n"
            "from jobs.store import Store\n"
            f"store = Store.connect({cli_storage.redis_url!r},"
            f" prefix={cli_storage.prefix!r})\n"
            "work.serve(store, stop=threading.Event(),"
            " on_started=lambda: (os.kill(os.getpid(), signal.SIGTERM), print('said', flush=True)))\n"
            "print('returned', flush=True)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GITHUB_", "REDIS_"))}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["returned"]  # the SIGTERM came before 'said' was printed


def test_run_without_app_token_says_what_to_do(tmp_path: Any, slack: FakeSlack,
                                               cli_storage: CliStorage) -> None:
    """`flowbot run` with no SLACK_APP_TOKEN explains how to get one, without a traceback."""
    from typer.testing import CliRunner

    from bot.cli import app

    result = CliRunner().invoke(
        app, ["run", "--config", str(_config(tmp_path, slack, cli_storage))],
        env={"SLACK_BOT_TOKEN": slack.token, "SLACK_API_URL": slack.api_url, **cli_storage.env},
    )
    assert result.exit_code == 1
    assert "SLACK_APP_TOKEN is not set" in result.output and "flowbot worker" in result.output


def test_run_with_a_refused_app_token_says_what_to_check(tmp_path: Any, slack: FakeSlack,
                                                         cli_storage: CliStorage) -> None:
    """`flowbot run` whose SLACK_APP_TOKEN Slack refuses names the token, without a traceback."""
    from typer.testing import CliRunner

    from bot.cli import app

    result = CliRunner().invoke(
        app, ["run", "--config", str(_config(tmp_path, slack, cli_storage))],
        env={"SLACK_BOT_TOKEN": slack.token, "SLACK_API_URL": slack.api_url,
             "SLACK_APP_TOKEN": "xapp-1-not-this-apps", **cli_storage.env},
    )
    assert result.exit_code == 1, result.exception
    assert "Slack refused the Socket Mode connection (invalid_auth)" in result.output
    assert "SLACK_APP_TOKEN" in result.output


def test_two_weeks_against_the_sandbox_two_replicas_post_everything_once(store: Store) -> None:
    """Two workers, two simulated weeks (New York's DST switch inside) against the sandbox and
    the Slack fake: one digest per team per week at 09:30 local with its chart, every alert
    posted once and only inside the team's working hours."""
    from bot.charts import digest_chart
    from bot.config import from_mapping
    from jobs.github.client import connect
    from jobs.model import Alert
    from jobs.sandbox import SandboxServer, build_org
    from jobs.worktime import WorkCalendar

    start, end = utc(2026, 3, 1, 15), utc(2026, 3, 15, 15)  # daily ticks inside both teams' hours
    clock = FixedClock(start)
    org = build_org(end=end, weeks=3, teams=2, repos_per_team=1)

    class Witness:
        """Notes when each alert was handed to delivery (the simulated time), then delivers."""

        def __init__(self, inner: SlackDelivery) -> None:
            self.inner, self.seen = inner, []  # type: ignore[var-annotated]

        def alert(self, alert: Alert) -> bool:
            ok = self.inner.alert(alert)
            if ok:
                self.seen.append((clock.now(), alert))
            return ok

        def digest(self, d: Digest) -> bool:
            return self.inner.digest(d)

    with SandboxServer(org, clock=clock) as sandbox, FakeSlack() as slack:
        data = org.config(sandbox.base_url)
        data["schedules"] = {"sample_interval_minutes": 1440, "jitter_seconds": 0}
        s = from_mapping(data, env={"GITHUB_TOKEN": sandbox.token})
        witnesses = []
        workers = []
        for _ in range(2):
            client = WebClient(base_url=slack.api_url, token=slack.token)
            w = Witness(SlackDelivery(client, store, clock=clock, sleep=lambda _: None))
            source = connect(s, clock=clock, sleep=lambda _: None)
            workers.append(Pipeline.from_settings(
                s, store, w, clock=clock, source=source,
                chart=lambda d: digest_chart(d, tz=s.teams[d.team].zone)))
            witnesses.append(w)
        simulate(workers, clock=clock, start=start, end=end)

        channels = {name: t.channel for name, t in s.teams.items()}
        for team, channel in channels.items():
            posted = list(slack.messages(channel))
            assert len(posted) == 2, (team, [r.detail for r in store.job_runs(f"digest:{team}")])
            runs = [r for r in store.job_runs(f"digest:{team}") if r.detail.endswith("posted")]
            local = {r.started_at.astimezone(s.teams[team].zone).strftime("%a %H:%M") for r in runs}
            assert local == {"Mon 09:30"}
        ny = [r.started_at for r in store.job_runs("digest:platform") if r.detail.endswith("posted")]
        assert sorted(ny) == [utc(2026, 3, 2, 14, 30), utc(2026, 3, 9, 13, 30)]  # EST, then EDT
        assert len(slack.files()) == 4  # every digest carries its chart

        seen = [(at, a) for w in witnesses for at, a in w.seen]
        assert seen, "the sandbox's pickup bottleneck should raise at least one alert"
        for at, a in seen:
            assert WorkCalendar.for_team(s.teams[a.team]).is_working_time(at), (at, a.message)
        sent = {(a.idempotency_key, r) for _, a in seen for r in a.recipients}
        alert_posts = [m for m in slack.messages() if m["channel"] not in channels.values()]
        assert len(alert_posts) == len(sent)
        assert [r.outcome for r in store.job_runs("sample", limit=50)].count("failed") == 0


# ----------------------------------------------------------------- load, clock steps, stale locks


def test_sampling_starts_on_time_while_every_digest_thread_is_busy(store: Store, slack: FakeSlack) -> None:
    """Digests filling their whole pool (a slow Slack, a thousand teams) do not delay sampling:
    it runs on a pool of its own."""
    import threading

    s = settings()
    steps = Steps_(s, store)
    release, sampled = threading.Event(), threading.Event()
    building: list[str] = []

    def slow_build(team: str, now: datetime) -> Digest:
        building.append(team)
        release.wait(10)
        return steps.build(team, now)

    def sample(now: datetime) -> str:
        steps.sample(now)
        sampled.set()
        return "sampled"

    pipe = Pipeline(s, store, SlackDelivery(slack.client(), store, sleep=lambda _: None),
                    Steps(sample, lambda now: "snap", lambda now: "alerts", slow_build))
    clock = FixedClock(utc(2026, 3, 2, 8, 31))  # berlin's digest is due
    steps.sample(utc(2026, 3, 2, 8))
    sched = build_scheduler(pipe, clock=clock, start=datetime.now(UTC) + timedelta(hours=1),
                            digest_threads=1)
    sched.start()
    try:
        for job in ("digests", "digest:berlin", "digest:nyc"):  # all due now, on one thread
            sched.modify_job(job, next_run_time=datetime.now(UTC))
        assert _wait_for(lambda: building == ["berlin"])
        sched.modify_job("sample", next_run_time=datetime.now(UTC))
        assert sampled.wait(5)  # while the digest thread is still busy
        assert building == ["berlin"]
    finally:
        release.set()
        sched.shutdown(wait=True)
    assert [c for c, _ in digests(slack)] == ["C0BERLIN1"]


def _wait_for(condition: Any, timeout: float = 5.0) -> bool:
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_clock_watch_notices_a_step_back_and_forward() -> None:
    """A wall clock moving apart from the monotonic clock by more than a minute is a step."""
    from jobs.scheduler import ClockWatch

    wall, mono = [1_000_000.0], [50.0]
    watch = ClockWatch(wall=lambda: wall[0], monotonic=lambda: mono[0])
    wall[0] += 10
    mono[0] += 10
    assert watch.check() == 0.0
    wall[0] += 1 - 1200  # one second passes, and the clock is set back 20 minutes
    mono[0] += 1
    assert watch.check() == -1200.0
    assert watch.check() == 0.0
    wall[0] += 2400
    assert watch.check() == 2400.0


def _started_paused(store: Store, now: datetime) -> Any:
    s = settings(sample_interval_minutes=15)
    pipe = Pipeline(s, store, None, Steps_(s, store).steps())  # type: ignore[arg-type]
    sched = build_scheduler(pipe, clock=FixedClock(now), start=now)
    sched.start(paused=True)
    sched.modify_job("sample", next_run_time=now + timedelta(minutes=15))  # it just ran
    return sched


def test_step_back_twenty_minutes_keeps_sampling_within_one_interval(store: Store) -> None:
    """After the clock is set back 20 minutes, APScheduler alone would wait 35 minutes for the
    next sample; realigned, it comes when it would have without the step."""
    from jobs.scheduler import realign

    now = datetime.now(UTC).replace(microsecond=0)
    sched = _started_paused(store, now)
    try:
        stepped = now - timedelta(minutes=20)
        before = sched.get_job("sample").next_run_time
        assert before - stepped == timedelta(minutes=35)  # what APScheduler computes by itself
        realign(sched, -1200, now=stepped)
        assert sched.get_job("sample").next_run_time - stepped == timedelta(minutes=15)
        assert all(j.next_run_time - stepped <= timedelta(minutes=15)
                   for j in sched.get_jobs() if j.id in ("sample", "digests"))
    finally:
        sched.shutdown(wait=False)


def test_step_forward_runs_sampling_at_once_and_a_skipped_digest(store: Store) -> None:
    """After the clock jumps 20 minutes forward, sampling runs at once (not dropped as misfired)
    and a digest whose time was jumped over runs now."""
    from jobs.scheduler import realign

    now = datetime(2026, 3, 2, 8, 20, tzinfo=UTC)  # berlin's digest is at 08:30 UTC
    sched = _started_paused(store, now)
    try:
        stepped = now + timedelta(minutes=20)
        realign(sched, 1200, now=stepped)
        assert sched.get_job("sample").next_run_time == stepped
        assert sched.get_job("digest:berlin").next_run_time == utc(2026, 3, 2, 8, 30)
    finally:
        sched.shutdown(wait=False)


def test_sample_claimed_in_the_future_does_not_block_after_a_step_back(
    store: Store, slack: FakeSlack
) -> None:
    """Sampling at 12:00, then the clock set back to 11:40: the next tick samples, the one a
    minute later does not."""
    s = settings(sample_interval_minutes=15)
    steps = Steps_(s, store)
    w = worker(s, store, slack, steps)
    w.tick(utc(2026, 3, 3, 12))
    w.tick(utc(2026, 3, 3, 11, 40))
    w.tick(utc(2026, 3, 3, 11, 41))
    assert steps.samples == [utc(2026, 3, 3, 12), utc(2026, 3, 3, 11, 40)]


def test_lock_of_a_dead_worker_restored_from_the_aof_does_not_block_sampling(
    store: Store, slack: FakeSlack
) -> None:
    """A sample lock naming a process that is gone (Redis restored it from its AOF after both
    restarted) is taken over by the next tick instead of blocking for its TTL."""
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert store.try_lock("sample", ttl=timedelta(minutes=10), pid=dead.pid).acquired
    s = settings()
    steps = Steps_(s, store)
    runs = worker(s, store, slack, steps).tick(utc(2026, 3, 3, 12))
    assert [r.job for r in runs][:2] == ["sample", "snapshot"] and len(steps.samples) == 1


def test_lock_held_long_is_shown_and_its_skip_logged_as_a_warning(
    store: Store, slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    """A sample lock held for longer than an interval by a live process: the skip is a WARNING
    naming the holder, a recorded run, a line in /flow health and in doctor."""
    import logging
    import os

    from bot.blocks.health import render_health
    from bot.doctor import lock_findings

    held = store.try_lock("sample", ttl=timedelta(minutes=10))  # a live process: this one
    assert held.acquired
    s = settings(sample_interval_minutes=15)
    later = datetime.now(UTC) + timedelta(minutes=40)
    with caplog.at_level(logging.INFO, logger="jobs.scheduler"):
        worker(s, store, slack, Steps_(s, store)).tick(later)
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert f"pid {os.getpid()}" in warning.getMessage()
    assert store.job_runs("sample")[0].outcome == "skipped"
    (holder,) = store.held_locks()
    assert holder.name == "sample" and holder.pid == os.getpid() and holder.alive
    blocks, _ = render_health({}, now=later, locks=[holder])
    assert "*sample* held by" in str(blocks) and f"pid {os.getpid()}" in str(blocks)
    (finding,) = lock_findings(store, s, later)
    assert finding.status == "warn" and "lock sample held by" in finding.summary
    store.unlock(held)
    assert store.held_locks() == []
