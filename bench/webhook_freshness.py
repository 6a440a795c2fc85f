"""Benchmark: webhook freshness, from a change in the sandbox to `/flow queue` showing it.

Everything real, on loopback: the sandbox GitHub (a clock on the wall, its webhooks signed and
sent from its background thread), a redis-server of its own, ``flowbot web`` (the Procfile's
command: ``POST /github/webhook`` verifies and queues), ``--workers`` ``flowbot worker``
processes (the Procfile's command: RQ workers and the scheduler), and Slack's API faked. The
workers' own sampling runs once an hour here, so what moves the answers is the webhooks.

1. **Freshness.** ``--events`` changes (200), made by ``--lanes`` lanes at once, each lane on a
   repository of its own, walking PRs through ten steps a user can see in `/flow queue`:
   opened; a review requested (the reviewer named); labelled ``ai-assisted`` (tagged
   AI-assisted); changes requested (author's turn); a push (waiting on CI); CI green
   (reviewer's turn again); back to draft (gone); ready (back); approved (approved, waiting
   to merge); merged (gone). Changes of one PR are at least a wall-clock second apart (GitHub
   dates in whole seconds: a push in the same second as the review it answers would not read
   as after it). After each change the lane asks `/flow queue` (a signed slash
   command to the web, every ``--poll`` seconds) until the answer shows it; the time from the
   change to that answer is the figure: p50, p95, max, and how many never showed within
   ``--timeout`` seconds.
2. **Faults, then reconciliation.** The sandbox drops ``--drop`` (20%) of its deliveries,
   duplicates ``--duplicate`` (10%) and reorders ``--reorder`` (10%) (seeded); the same
   walk runs again on new PRs without waiting. Once the queues are idle, the stored records
   are compared with the truth: before, then after the next reconciliation (the periodic
   sample, ``flowbot sample``: the same cycle the worker's schedule runs). Truth is the same
   repositories read afresh into a store of their own (a full sync at that moment), and
   independently the sandbox's own records (state, draft, head, labels, reviews). Printed:
   yes/no with the counts.

Target (issue 16): p95 under 10 s over 200 events, 2 workers; after reconciliation, stored ==
truth.

    .venv/bin/python bench/webhook_freshness.py [--events 200] [--lanes 4] [--workers 2]
        [--drop 0.2] [--duplicate 0.1] [--reorder 0.1] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from slack_sdk.signature import SignatureVerifier  # noqa: E402 - after the path is set

from bot.config import from_mapping  # noqa: E402
from jobs.github.client import connect  # noqa: E402
from jobs.ports import SystemClock  # noqa: E402
from jobs.sandbox import Org, SandboxServer, build_org  # noqa: E402
from jobs.sandbox.changes import Changes  # noqa: E402
from jobs.sandbox.records import Workflow  # noqa: E402
from jobs.sandbox.view import status_of, view_pr  # noqa: E402
from jobs.sandbox.webhooks import HookFaults  # noqa: E402
from jobs.settings import Settings  # noqa: E402
from jobs.store import Store  # noqa: E402
from jobs.sync import sync_repo  # noqa: E402
from tests.fakes.slack_api import FakeSlack, iter_blocks_text  # noqa: E402
from tests.processes import config_toml, redis_server  # noqa: E402
from tests.slack_helpers import slash_body  # noqa: E402
from tests.web_process import procfile_command, procfile_web  # noqa: E402

PREFIX = "flowbench-hooks"
TEAM = "bench"
SIGNING = "bench-signing-secret"
HOOK_SECRET = "bench-webhook-secret"  # a bench value, not a credential
STEPS = 10  # per PR, the walk below


# ------------------------------------------------------------------------------ the walk


@dataclass(frozen=True)
class Step:
    """One change and how `/flow queue` shows it: ``shown`` (the PR's line is there or not)
    and, when shown, a phrase its line must hold."""

    name: str
    change: Callable[[Changes, str, int], None]
    shown: bool
    phrase: str = ""


def walk(reviewer: str) -> list[Step]:
    """The ten steps after ``open`` (itself step one, made apart: it makes the number)."""
    return [
        Step("request", lambda c, r, n: c.request_review(r, n, reviewer), True, f"({reviewer}"),
        Step("label", lambda c, r, n: c.label(r, n, "ai-assisted"), True, "AI-assisted"),
        Step("changes", lambda c, r, n: _review(c, r, n, reviewer, "CHANGES_REQUESTED"), True,
             "author's turn"),
        Step("push", lambda c, r, n: _push(c, r, n), True, "waiting on CI"),
        Step("ci", lambda c, r, n: _finish(c, r, n), True, "reviewer's turn"),
        Step("draft", lambda c, r, n: c.to_draft(r, n), False),
        Step("ready", lambda c, r, n: c.ready(r, n), True, "reviewer's turn"),
        Step("approve", lambda c, r, n: _review(c, r, n, reviewer, "APPROVED"), True,
             "approved, waiting to merge"),
        Step("merge", lambda c, r, n: c.close(r, n, merged=True), False),
    ]


def _review(c: Changes, repo: str, n: int, who: str, state: str) -> None:
    c.review(repo, n, who, state)


def _push(c: Changes, repo: str, n: int) -> None:
    c.push(repo, n)


def _finish(c: Changes, repo: str, n: int) -> None:
    c.finish_ci(repo, n)


# ------------------------------------------------------------------------------ the world


@dataclass
class World:
    """What the phases share."""

    org: Org
    sandbox: SandboxServer
    settings: Settings
    config: Path
    env: dict[str, str]
    web_url: str
    lanes: list[str]  # one repository per lane
    author: str
    reviewer: str
    slack_user: str
    store: Store
    lock: threading.Lock = field(default_factory=threading.Lock)


def build_world_org(lanes: int) -> Org:
    """A small org ending now (two weeks of history) plus ``lanes`` quiet repositories, each
    with a CI workflow (a push starts a run)."""
    org = build_org(end=datetime.now(UTC), weeks=2, teams=1, repos_per_team=2,
                    extra_repos=lanes, seed=11)
    for k in range(lanes):
        repo = org.repos[f"tool-{k:03d}"]
        org.workflows[repo.name] = [Workflow(repo.id * 10 + 1, "CI", ".github/workflows/ci.yml",
                                             repo.name)]
    return org


def config_mapping(org: Org, base_url: str, lanes: list[str]) -> dict[str, Any]:
    """The org's config plus the bench team, which owns the lane repositories."""
    data = org.config(base_url)
    first = org.teams[0]
    data["teams"][TEAM] = {
        "members": [{"github": m.login, "slack": m.slack} for m in first.members],
        "repositories": lanes, "channel": "C0BENCH01", "leads": [first.members[0].slack],
        "timezone": "UTC",
    }
    return data


@contextmanager
def processes(world_env: dict[str, str], config: Path, workers: int) -> Iterator[str]:
    """``flowbot web`` and ``workers`` ``flowbot worker`` processes; yields the web's URL."""
    bin_dir = str(Path(sys.executable).parent)
    env = {**world_env, "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}",
           "PYTHONPATH": str(ROOT), "FLOWBOT_CONFIG": str(config)}
    started: list[subprocess.Popen[bytes]] = []
    logs = Path(tempfile.mkdtemp(prefix="flowbench-workers-"))
    try:
        with procfile_web(env, healthy=True) as web:
            for k in range(workers):
                with (logs / f"worker-{k}.log").open("wb") as log:
                    started.append(subprocess.Popen(
                        ["bash", "-c", f"exec {procfile_command('worker')}"], env=env,
                        stdout=log, stderr=log, start_new_session=True))
            yield web.url
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for k, proc in enumerate(started):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
            if proc.returncode not in (0, -signal.SIGTERM):
                print(f"worker {k} exited {proc.returncode}; its log:\n"
                      + (logs / f"worker-{k}.log").read_text(errors="replace")[-3000:])


def flow_queue(world: World) -> str:
    """`/flow queue bench` through the web, signed as Slack signs it: the answer's text."""
    body = slash_body(f"queue {TEAM}", user=world.slack_user, channel="C0BENCH01")
    stamp = str(int(time.time()))
    sig = SignatureVerifier(SIGNING).generate_signature(timestamp=stamp, body=body.decode())
    request = urllib.request.Request(world.web_url + "/slack/events", data=body, method="POST",
                                     headers={"X-Slack-Request-Timestamp": stamp,
                                              "X-Slack-Signature": sig or "",
                                              "Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            payload = json.loads(answer.read())
    except (urllib.error.URLError, OSError, ValueError) as err:
        return f"(no answer: {err})"
    return "\n".join([payload.get("text", ""), *iter_blocks_text(payload.get("blocks", []))])


def line_of(text: str, repo: str, number: int) -> str | None:
    """The PR's line in a `/flow queue` answer, or None."""
    mark = f"{repo}#{number} "
    return next((line for line in text.splitlines() if mark in line), None)


def shows(text: str, repo: str, number: int, step: Step) -> bool:
    line = line_of(text, repo, number)
    if not step.shown:
        return line is None and "Review queue" in text
    return line is not None and step.phrase in line


# ------------------------------------------------------------------------------ phase 1


def freshness(world: World, events: int, *, poll: float, timeout: float) -> list[float | None]:
    """Walk PRs lane by lane, waiting after each change until `/flow queue` shows it; the
    seconds each change took to show (None: not within ``timeout``)."""
    steps = walk(world.reviewer)
    per_lane = max(events // (len(world.lanes) * STEPS), 1)
    results: list[float | None] = []
    opened = Step("open", lambda c, r, n: None, True, "reviewer's turn")

    def seen(repo: str, number: int, step: Step, start: float) -> float | None:
        """Seconds from ``start`` until `/flow queue` shows ``step`` done (None: timeout)."""
        text = ""
        while time.monotonic() < start + timeout:
            text = flow_queue(world)
            if shows(text, world.org.full_name(repo), number, step):
                return time.monotonic() - start
            time.sleep(poll)
        print(f"  {repo}#{number} {step.name}: /flow queue said: "
              f"{line_of(text, world.org.full_name(repo), number)!r}; "
              f"{next((x for x in text.splitlines() if 'data' in x and 'old' in x), '')}")
        stored = world.store.get_pr(world.org.full_name(repo), number)
        rec = world.org.pull(repo, number)
        truth = view_pr(rec, datetime.now(UTC)) if rec else None
        print(f"  {repo}#{number} {step.name}: not shown within {timeout:.0f} s; stored: "
              + (f"head {stored.head_sha[:7]}, draft {stored.draft}, checks "
                 f"{[(c.head_sha[:7], c.conclusion) for c in stored.checks]}" if stored else "none")
              + (f"; GitHub: head {truth.head_sha[:7]}, draft {truth.draft}, runs "
                 f"{[(r.head_sha[:7], status_of(r.attempts[-1], truth.now)) for r in truth.runs]}"
                 if truth else ""))
        return None

    def lane(repo: str, k: int) -> None:
        mine: list[float | None] = []
        changes = world.sandbox.changes
        for p in range(per_lane):
            start = time.monotonic()
            number = changes.open_pr(repo, world.author, title=f"Probe {k}.{p}", ci=False)
            mine.append(seen(repo, number, opened, start))
            for step in steps:
                _next_second()
                start = time.monotonic()
                step.change(changes, repo, number)
                mine.append(seen(repo, number, step, start))
        with world.lock:
            results.extend(mine)

    threads = [threading.Thread(target=lane, args=(repo, k), daemon=True)
               for k, repo in enumerate(world.lanes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


# ------------------------------------------------------------------------------ phase 2


def _next_second() -> None:
    """Wait for the wall clock's next whole second: GitHub dates everything in whole seconds,
    so two changes of one PR in the same second cannot be ordered (a push in the second of
    the review it answers reads as not after it). People do not act twice in a second."""
    time.sleep(1.0 - time.time() % 1.0 + 0.01)


def storm(world: World, events: int, *, pause: float) -> int:
    """The same walk on new PRs, one change every ``pause`` seconds, waiting for nothing;
    returns how many changes were made."""
    steps = walk(world.reviewer)
    made = 0
    prs: list[tuple[str, int]] = []
    per_lane = max(events // (len(world.lanes) * STEPS), 1)
    for p in range(per_lane):
        for k, repo in enumerate(world.lanes):
            prs.append((repo, world.sandbox.changes.open_pr(repo, world.author,
                                                            title=f"Storm {k}.{p}", ci=False)))
            made += 1
            time.sleep(pause)
    for step in steps:
        _next_second()
        for repo, number in prs:
            step.change(world.sandbox.changes, repo, number)
            made += 1
            time.sleep(pause)
    return made


def idle(store: Store, *, settle: float = 3.0, limit: float = 300.0) -> bool:
    """Wait until the work queues have had nothing queued or running for ``settle`` s."""
    from jobs import work

    deadline = time.monotonic() + limit
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        busy = sum(d.queued + d.started for d in work.depths(store))
        if busy:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= settle:
            return True
        time.sleep(0.2)
    return False


def sample_once(world: World) -> None:
    """The periodic sample, run now: ``flowbot sample`` (the worker schedule's cycle)."""
    bin_dir = str(Path(sys.executable).parent)
    env = {**world.env, "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}",
           "PYTHONPATH": str(ROOT), "FLOWBOT_CONFIG": str(world.config)}
    done = subprocess.run([sys.executable, "-c", "from bot.cli import main; main()", "sample"],
                          env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(f"flowbot sample exited {done.returncode}:\n{done.stdout[-2000:]}"
              f"{done.stderr[-2000:]}")


@dataclass
class Verdict:
    prs: int
    equal_to_fresh: int
    equal_to_sandbox: int
    differing: list[str]


def compare(world: World) -> Verdict:
    """Stored records vs a fresh full read (own prefix) and vs the sandbox's own records."""
    fresh = Store.connect(world.env["REDIS_URL"], data_path=None,
                          prefix=f"{PREFIX}-truth-{time.monotonic_ns()}")
    try:
        fresh.ensure_schema()
        source = connect(world.settings, clock=SystemClock(), seconds_between_requests=0,
                         seconds_between_writes=0)
        now = datetime.now(UTC)
        same_fresh = same_sandbox = total = 0
        differing: list[str] = []
        for repo in world.lanes:
            name = world.org.full_name(repo)
            sync_repo(fresh, source, name, now=now, days=30)
            truth = {p.number: p for p in fresh.get_prs(name)}
            stored = {p.number: p for p in world.store.get_prs(name)}
            for number in sorted(set(truth) | set(stored)):
                total += 1
                a, b = stored.get(number), truth.get(number)
                if a == b:
                    same_fresh += 1
                else:
                    differing.append(f"{name}#{number}: {_diff(a, b)}")
                if a is not None and _sandbox_facts(world, repo, number) == _record_facts(a):
                    same_sandbox += 1
        return Verdict(total, same_fresh, same_sandbox, differing)
    finally:
        fresh.flush_prefix()
        fresh.close()


def _diff(a: Any, b: Any) -> str:
    if a is None or b is None:
        return "stored" if b is None else "missing from the store"
    fields = [f for f in a.__dataclass_fields__ if getattr(a, f) != getattr(b, f)]
    return ", ".join(fields)


def _record_facts(pr: Any) -> tuple[Any, ...]:
    return (pr.state, pr.draft, pr.head_sha, tuple(sorted(pr.labels)),
            tuple((r.author, r.state) for r in pr.reviews))


def _sandbox_facts(world: World, repo: str, number: int) -> tuple[Any, ...]:
    rec = world.org.pull(repo, number)
    view = view_pr(rec, datetime.now(UTC)) if rec else None
    if view is None:
        return ()
    state = "merged" if view.merged_at else ("closed" if view.closed_at else "open")
    reviews = tuple((r.author.graphql_login if r.author else None, r.state)
                    for r in view.reviews)
    return (state, view.draft, view.head_sha, tuple(sorted(view.pr.labels)), reviews)


# ------------------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--lanes", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--poll", type=float, default=0.25, help="seconds between /flow queue asks")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--drop", type=float, default=0.2)
    parser.add_argument("--duplicate", type=float, default=0.1)
    parser.add_argument("--reorder", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pause", type=float, default=0.05, help="seconds between storm changes")
    args = parser.parse_args()

    org = build_world_org(args.lanes)
    lanes = [f"tool-{k:03d}" for k in range(args.lanes)]
    with tempfile.TemporaryDirectory(prefix="flowbench-hooks-") as tmp, \
            redis_server(Path(tmp)) as redis_url, FakeSlack() as slack, \
            SandboxServer(org, clock=SystemClock()) as sandbox:
        mapping = config_mapping(org, sandbox.base_url, lanes)
        config = Path(tmp) / "config.toml"
        config.write_text(config_toml(mapping, storage=f'[storage]\nprefix = "{PREFIX}"\n\n'
                                      "[schedules]\nsample_interval_minutes = 60\n"))
        env = {**{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GITHUB_"))},
               "REDIS_URL": redis_url, "GITHUB_TOKEN": sandbox.token,
               "GITHUB_WEBHOOK_SECRET": HOOK_SECRET, "SLACK_SIGNING_SECRET": SIGNING,
               "SLACK_BOT_TOKEN": slack.token, "SLACK_API_URL": slack.api_url,
               "FLOWBOT_LOG_LEVEL": "WARNING"}
        settings = from_mapping(mapping, env=env, source=str(config))
        store = Store.connect(redis_url, data_path=None, prefix=PREFIX)
        first = org.teams[0]
        print(f"sandbox org: {sum(len(p) for p in org.prs.values())} PRs in {len(org.repos)} "
              f"repositories; lanes {', '.join(lanes)}; {args.workers} workers; "
              f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        started = time.monotonic()
        world = World(org, sandbox, settings, config, env, "", lanes, first.members[2].login,
                      first.members[1].login, first.members[2].slack or "", store)
        sample_once(world)  # the first sample: what the workers start from
        print(f"first sample: {time.monotonic() - started:.1f} s")
        with processes(env, config, args.workers) as web_url:
            world.web_url = web_url
            sandbox.send_webhooks_to(f"{web_url}/github/webhook", secret=HOOK_SECRET)
            sandbox.changes.ping()
            t0 = time.monotonic()
            took = freshness(world, args.events, poll=args.poll, timeout=args.timeout)
            shown = sorted(t for t in took if t is not None)
            print(f"\n1. freshness: {len(took)} changes in {time.monotonic() - t0:.0f} s, "
                  f"{len(shown)} shown in /flow queue (polled every {args.poll:g} s), "
                  f"{len(took) - len(shown)} not within {args.timeout:.0f} s")
            if shown:
                p95 = statistics.quantiles(shown, n=100, method="inclusive")[94] \
                    if len(shown) > 1 else shown[0]
                print(f"   change -> /flow queue: p50 {statistics.median(shown):.2f} s, "
                      f"p95 {p95:.2f} s, max {max(shown):.2f} s  (target: p95 < 10 s)")
            sent = sandbox.webhooks.deliveries
            print(f"   deliveries: {len(sent)}, answered 2xx: "
                  f"{sum(d.delivered for d in sent)}")

            sandbox.webhooks.set_faults(HookFaults(drop=args.drop, duplicate=args.duplicate,
                                                   reorder=args.reorder, seed=args.seed))
            before = len(sandbox.webhooks.deliveries)
            made = storm(world, args.events, pause=args.pause)
            sandbox.webhooks.flush()
            faulted = sandbox.webhooks.deliveries[before:]
            kinds = {k: sum(d.fault == k for d in faulted)
                     for k in ("drop", "duplicate", "reorder")}
            print(f"\n2. faults: {made} changes, {len(faulted)} deliveries: "
                  + ", ".join(f"{n} {k}" for k, n in kinds.items()))
            idle(store)
            v = compare(world)
            print(f"   before reconciliation: stored == fresh read for {v.equal_to_fresh} of "
                  f"{v.prs} PRs, == the sandbox's records for {v.equal_to_sandbox}")
            sample_once(world)
            idle(store)
            v = compare(world)
            equal = v.equal_to_fresh == v.prs and v.equal_to_sandbox == v.prs
            print(f"   after the next reconciliation: stored == fresh read for "
                  f"{v.equal_to_fresh} of {v.prs} PRs, == the sandbox's records for "
                  f"{v.equal_to_sandbox}: {'yes' if equal else 'no'}")
            for line in v.differing[:10]:
                print(f"     differs: {line}")
        store.flush_prefix()
        store.close()


if __name__ == "__main__":
    main()
