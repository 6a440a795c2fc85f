"""Benchmark: App Home under `flowbot web`, from Slack's signed event to ``views.publish`` at Slack.

What a user waits for when they open Flowbot's Home tab: Slack POSTs a signed
``app_home_opened`` event (the ``event_callback`` envelope, carrying the Home view the user has
now, as Slack sends it) to ``/slack/events``; Bolt acknowledges it, then a lazy listener
(``bot/home.py``) builds the view and calls ``views.publish``. Timed here from the moment the
event is sent to the moment ``views.publish`` for that user has arrived at Slack (the fake Slack
API, in a process of its own, stamps each arrival with ``time.monotonic()`` once the whole
request was read, one clock for every process on Linux, and tells this process). The HTTP
acknowledgement is timed apart.

Slack's side (the harness: the fake Slack API and the load generator, Slack's connections to
the server) runs on the machine's cores beside the server, which Slack's never does in
production. The old harness took about 3 ms of CPU an open (the fake ``FakeSlack``, 1.8 ms a
publish: ``http.server``, a thread per connection; the generator, 1.0-1.5 ms: threads,
``http.client``, the 14.5 KB event ``json.dumps``-ed per open), as much as the server's own,
and with 50 opens in flight on 2 cores its share inflated the latency measured. ``--harness``
picks it: ``lean`` (the default, ``bench/home_lean.py``: ``tests/fakes/slack_lean.py``'s
``LeanSlack``, asyncio and httptools, and asyncio clients sending events made from a template
serialised once, with the same bytes), ``old`` (``bench/home_harness.py``), or ``both``, each
against a server of its own in turn, for a side-by-side comparison; what is timed is the same.

Seeds ``--teams`` team snapshots of ``--open-prs`` open PRs each (``bench/slash_latency.py``'s
seeding: sandbox-shaped records, ``jobs.snapshot.compute_team_snapshot``), with ``--users``
Slack users, each a member of every team with a GitHub login of their own and every third PR
also waiting on one of them in turn (so each Home lists 30 team cards and PRs waiting on them).
Starts ``flowbot web`` (the Procfile's command: gunicorn, ``--workers`` uvicorn workers) with
``SLACK_API_URL`` at the fake. Two scenarios, each after a warm-up not counted:

* steady, closed loop: ``--concurrency`` clients, client i opens user i's Home, waits for the
  publish, and again, for ``--seconds``;
* burst: every client opens its user's Home at the same instant (a barrier), ``--bursts``
  times, ``--pause`` seconds apart; the percentiles are over every open of every burst.

``--first-open`` sends the events without the view the user has (Slack leaves it out until one
was published), which Bolt copies for its lazy listener. ``--stages`` also cuts each open into
its stages inside the server, from stamps it writes (``bench/home_stages.py``, installed like
``--naive``'s swap): event sent to ``publish_home`` started (Bolt's lazy listener, or the fast
lane's pool), the view's build, and the publish.

A publish not arrived ``--timeout`` seconds after its event counts as an error (and is waited
for a while longer, so it is never taken for the next one's). Printed per scenario:
p50/p90/p99/max from event to publish, the acknowledgement's p50/p99/max, opens, opens/s,
errors, the web server's CPU per open (gunicorn's master and workers) and each worker's share
of it, the harness's CPU per open, the fake's per publish and the load generator's per open
(all three share the machine's cores), and the load average before and after.

Each client keeps its connection open; they are opened one at a time, 20 ms apart, as Slack's
would arrive: 50 opened at once (as wrk does) are all accepted by one worker's event loop and
stay there, so the other worker idles (the shares show it: 100% / 0%). ``--no-keep-alive``
opens a connection per event instead.

The same load, in the same run, goes first to ``flowbot web --no-fast-lane`` (every event
through a2wsgi and Bolt, whose lazy listener builds the view; ``--only-now`` leaves it out),
then to the Procfile's (``bot/fastlane.py`` takes App Home opens). ``--naive`` adds, before
them, the path as it was before issue 14: ``--no-fast-lane`` with ``bot.home.records_view`` as
the view (cards and waiting lists decoded as records and rendered). No flag selects that view:
the bench assigns it to ``bot.home.home_view`` in the server's master before gunicorn forks.

Target (issue 14): p99 under 100 ms at 50 concurrent with 50 teams of 2,000 open PRs each.

    .venv/bin/python bench/home_latency.py [--teams 50] [--open-prs 2000] [--users 50]
        [--concurrency 50] [--seconds 15] [--bursts 20] [--workers 2] [--only-now] [--naive] [--stages]
        [--first-open] [--no-keep-alive] [--harness lean|old|both] [--slack-ms 0]

Uses ``REDIS_URL`` as given (its database included), else an embedded Redis in a temp dir; the
data lives under a prefix of its own (``flowhome``), removed afterwards.
"""

from __future__ import annotations

import argparse
import bisect
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.home_harness import Harness, OldHarness, Open, serve_fake_slack
from bench.home_lean import LATENCY_ENV, LeanHarness, serve_lean_slack
from bench.shape import Stolen, load
from bench.slash_latency import (
    _codec_dumps,
    _ms,
    _pct,
    _wait_healthy,
    config_text,
    cpu_by_process,
    start_web,
    stop_all,
    team_snapshot,
    web_env,
)
from jobs.store import Store

PREFIX = "flowhome"
NAIVE_PRELUDE = "import bot.home as h; h.home_view = h.records_view; "  # run in the master, before the fork
HARNESSES: dict[str, Callable[[], Harness]] = {"lean": LeanHarness, "old": OldHarness}


def users(n: int) -> tuple[tuple[str, str], ...]:
    """``n`` members: (GitHub login, Slack user ID)."""
    return tuple((f"dev{i:03d}", f"U0HOME{i:04d}") for i in range(n))


# --------------------------------------------------------------------------- measuring

class Stages:
    """The server's stamps (``bench/home_stages.py``), per user and stage, in time order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.touch()

    def prelude(self) -> str:
        return (f"import sys; sys.path.insert(0, {str(ROOT)!r}); import bench.home_stages; "
                f"bench.home_stages.install({str(self.path)!r}); ")

    def report(self, opens: list[Open]) -> None:
        """Each published open cut into its stages, by the first stamps after its event."""
        stamps: dict[tuple[str, str], list[float]] = {}
        for line in self.path.read_text().splitlines():
            user, stage, at = line.split()
            stamps.setdefault((user, stage), []).append(float(at))
        for times in stamps.values():
            times.sort()

        def after(user: str, stage: str, t: float, until: float) -> float | None:
            times = stamps.get((user, stage), [])
            i = bisect.bisect_left(times, t)
            return times[i] if i < len(times) and times[i] <= until else None

        cuts: dict[str, list[float]] = {}
        for o in opens:
            if o.published is None:
                continue
            listener = after(o.user, "listener", o.sent, o.published)
            built = listener and after(o.user, "built", listener, o.published)
            publish = built and after(o.user, "publish", built, o.published)
            if not (listener and built and publish):
                continue
            for name, span in (("event sent -> publish_home started (HTTP, ack, queue)", listener - o.sent),
                               ("publish_home started -> view built (home_view)", built - listener),
                               ("view built -> views.publish called", publish - built),
                               ("views.publish called -> arrived at Slack (client, JSON, HTTP)",
                                o.published - publish)):
                cuts.setdefault(name, []).append(span)
        if not cuts:
            print("  stages: no stamps matched (bot.home.publish_home / home_view not called as traced)")
            return
        for name, spans in cuts.items():
            spans.sort()
            print(f"  stage {name}: p50 {_ms(_pct(spans, 0.5))}  p99 {_ms(_pct(spans, 0.99))}  "
                  f"mean {_ms(sum(spans) / len(spans))}  ({len(spans)} opens)")


@dataclass
class Measured:
    label: str
    opens: list[Open]
    wall: float
    server_cpu: float
    fake_cpu: float
    before: str
    after: str
    late: int
    workers_cpu: list[float]  # each web worker's CPU seconds, most first
    client_cpu: float  # this process's: the load generator's (and the reader of the fake's lines)

    @property
    def latencies(self) -> list[float]:
        return sorted(o.latency for o in self.opens if o.published is not None)

    def report(self) -> None:
        latencies = self.latencies
        errors = Counter(o.error for o in self.opens if o.error)
        named = ", ".join(f"{n} {e}" for e, n in sorted(errors.items())) or "none"
        print(f"{self.label}: {len(self.opens)} opens, {len(latencies)} published, errors: {named}"
              f"{f' ({self.late} published after the timeout)' if self.late else ''}")
        if not latencies:
            return
        acks = sorted(o.acked - o.sent for o in self.opens if o.acked is not None)
        blocks = sorted(o.blocks for o in self.opens if o.published is not None)
        print(f"  event -> views.publish: p50 {_ms(_pct(latencies, 0.5))}  p90 {_ms(_pct(latencies, 0.9))}  "
              f"p99 {_ms(_pct(latencies, 0.99))}  max {_ms(latencies[-1])}  (target p99 < 100 ms)")
        print(f"  acknowledgement (HTTP 200): p50 {_ms(_pct(acks, 0.5))}  p99 {_ms(_pct(acks, 0.99))}  "
              f"max {_ms(acks[-1])};  {len(latencies) / self.wall:.0f} opens/s, web server CPU "
              f"{self.cpu_per_open * 1000:.1f} ms per open; {blocks[len(blocks) // 2]} blocks a view")
        share = " / ".join(f"{cpu / max(sum(self.workers_cpu), 1e-9) * 100:.0f}%" for cpu in self.workers_cpu)
        print(f"  the harness's CPU {self.harness_per_open * 1000:.2f} ms per open: the fake Slack's "
              f"{self.fake_cpu / len(latencies) * 1000:.2f} ms per publish, the load generator's "
              f"{self.client_cpu / len(self.opens) * 1000:.2f} ms per open; the web workers' shares of "
              f"their CPU: {share}")
        print(f"  [before: {self.before}; after: {self.after}]")

    @property
    def cpu_per_open(self) -> float:
        return self.server_cpu / max(len(self.opens), 1)

    @property
    def harness_per_open(self) -> float:
        """The fake's and the load generator's CPU seconds per open (Slack's side, on our cores)."""
        return (self.fake_cpu + self.client_cpu) / max(len(self.opens), 1)

    def p99(self) -> float | None:
        latencies = self.latencies
        return _pct(latencies, 0.99) if latencies else None


def measure(name: str, port: int, server: subprocess.Popen[bytes], harness: Harness,
            members: tuple[tuple[str, str], ...], args: argparse.Namespace,
            stages: Stages | None) -> dict[str, Measured]:
    """Both scenarios against one server, each after its warm-up, with ``harness`` as Slack."""
    clients = harness.load(port, [slack for _, slack in members[: args.concurrency]], timeout=args.timeout,
                           carry_view=not args.first_open, keep_alive=not args.no_keep_alive)
    name = f"{name}; the {harness.name} harness"
    out = {}

    def mark() -> tuple[int, dict[int, float], float, str, float, Stolen]:
        return clients.late, cpu_by_process(server.pid), harness.cpu(), load(), time.process_time(), Stolen()

    def measured(label: str, opens: list[Open], wall: float,
                 since: tuple[int, dict[int, float], float, str, float, Stolen]) -> Measured:
        late, cpu, fake_cpu, before, own, stolen = since
        now = cpu_by_process(server.pid)
        workers = sorted((now[p] - cpu.get(p, 0.0) for p in now if p != server.pid), reverse=True)
        return Measured(label, opens, wall, sum(now.values()) - sum(cpu.values()), harness.cpu() - fake_cpu,
                        before, f"{load()}; {stolen.text()}", clients.late - late, workers,
                        time.process_time() - own)

    try:
        if not args.no_keep_alive:  # one at a time, as Slack's arrive: opened at once, one worker takes all
            clients.connect()
        clients.steady(args.warmup)  # the rendered parts, connections, pools: not timed
        size = clients.event_size() / 1024
        since = mark()
        opens, wall = clients.steady(args.seconds)
        out["steady"] = measured(f"App Home, steady: {name}, {args.concurrency} user(s) each opening it again on "
                                 f"its publish, {args.seconds:.0f} s, events of {size:.1f} KB", opens, wall, since)
        clients.bursts(2, args.pause)  # warm-up: not timed
        since = mark()
        opens, spans = clients.bursts(args.bursts, args.pause)
        out["burst"] = measured(f"App Home, burst: {name}, {args.concurrency} user(s) opening it at the same "
                                f"instant, {args.bursts} bursts {args.pause:g} s apart", opens,
                                sum(spans) or 1e-9, since)  # opens/s while a burst was being served
        out["burst"].label += (f"; the last publish of a burst after median {_ms(sorted(spans)[len(spans) // 2])}, "
                               f"worst {_ms(max(spans))}" if spans else "")
    finally:
        clients.close()
    for result in out.values():
        result.report()
        if stages is not None:
            stages.report(result.opens)
    return out


def main() -> None:
    if sys.argv[1:] == ["--serve-fake-slack"]:
        serve_fake_slack()
        return
    if sys.argv[1:] == ["--serve-lean-slack"]:
        serve_lean_slack()
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teams", type=int, default=50)
    parser.add_argument("--open-prs", type=int, default=2000, help="open PRs in each team's queue")
    parser.add_argument("--users", type=int, default=50, help="Slack users, each a member of every team")
    parser.add_argument("--concurrency", type=int, default=50, help="clients, each opening one user's Home")
    parser.add_argument("--seconds", type=float, default=15, help="steady scenario, after the warm-up")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of steady load not timed")
    parser.add_argument("--bursts", type=int, default=20)
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between bursts")
    parser.add_argument("--timeout", type=float, default=5.0, help="a publish later than this is an error")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--harness", choices=("lean", "old", "both"), default="lean",
                        help="Slack's side: the lean fake and generator, the old ones, or both in turn")
    parser.add_argument("--first-open", action="store_true",
                        help="events without the Home view the user has (as on a first open), not with it")
    parser.add_argument("--no-keep-alive", action="store_true",
                        help="a connection per event (by default each client keeps one open, as wrk does)")
    parser.add_argument("--stages", action="store_true",
                        help="also cut each open into stages, from stamps the server writes (bench/home_stages.py)")
    parser.add_argument("--slack-ms", type=float, default=0.0,
                        help="the lean fake Slack answers views.publish this long after it arrived (Slack's own "
                             "time and the way back: ~100-300 ms from a real data centre); publishes count as "
                             "arrived when they arrive")
    parser.add_argument("--only-now", action="store_true", help="only the Procfile's server, not --no-fast-lane's")
    parser.add_argument("--naive", action="store_true",
                        help="also load --no-fast-lane's server with bot.home.records_view swapped in")
    args = parser.parse_args()
    if args.concurrency > args.users:
        parser.error("--concurrency may not exceed --users: each client opens a Home of its own user")
    if args.slack_ms and args.harness != "lean":
        parser.error("--slack-ms needs the lean harness (--harness lean)")
    os.environ[LATENCY_ENV] = str(args.slack_ms / 1000)  # read by the fake's own process
    url = os.environ.get("REDIS_URL") or None
    members = users(args.users)

    base = team_snapshot(args.open_prs, url, waiting=tuple(login for login, _ in members))
    now = datetime.now(UTC)
    base = replace(base, computed_at=now - timedelta(minutes=2), data_as_of=now - timedelta(minutes=3))
    harnesses: list[Harness] = []
    servers: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "flowbot.rdb"
        config = Path(tmp) / "config.toml"
        config.write_text(config_text(data, args.teams, members=members, prefix=PREFIX))
        store = Store.connect(url, data_path=data, prefix=PREFIX)
        try:
            for kind in ("old", "lean") if args.harness == "both" else (args.harness,):
                harnesses.append(HARNESSES[kind]())
            store.flush_prefix()
            store.ensure_schema()
            for t in range(args.teams):
                store.put_snapshot(replace(base, team=f"team{t}"))
            fakes = ", ".join(f"the {h.name} harness's fake Slack in its own process (pid {h.pid})" for h in harnesses)
            print(f"{args.teams} teams, {len(base.queue_items):,} PRs in each queue "
                  f"({len(_codec_dumps(base)) / 1024:.0f} KB a snapshot); {args.users} users on every team, "
                  f"each waited on by {sum(1 for i in base.queue_items if i.waiting_on[:1] == (members[0][0],))} "
                  f"PRs a team; Redis: {store.location}; flowbot web: {args.workers} workers; {fakes}"
                  f"{f', answering views.publish {args.slack_ms:g} ms after it arrived' if args.slack_ms else ''}")
            stages = Stages(Path(tmp) / "stages.txt") if args.stages else None
            results: dict[tuple[str, str], dict[str, Measured]] = {}
            sides: list[tuple[str, str, list[str], str]] = [
                ("now", "now: flowbot web (the Procfile's: the fast lane)", [], "")]
            if not args.only_now:
                sides.insert(0, ("bolt", "bolt: flowbot web --no-fast-lane (Bolt's lazy listener, home_view)",
                                 ["--no-fast-lane"], ""))
            if args.naive:
                sides.insert(0, ("naive", "naive: flowbot web --no-fast-lane, records_view swapped in (issue 14's start)",
                                 ["--no-fast-lane"], NAIVE_PRELUDE))
            for key, name, extra, prelude in sides:
                prelude += stages.prelude() if stages else ""
                for harness in harnesses:  # a server of its own for each: it calls its harness's fake
                    env = web_env(harness.token, harness.api_url, url)
                    port, server = start_web(config, env, workers=args.workers, extra=extra, prelude=prelude)
                    servers.append(server)
                    _wait_healthy(port, server)
                    results[key, harness.name] = measure(name, port, server, harness, members, args, stages)
                    stop_all([server])
            compare(results)
        finally:
            stop_all(servers)
            for harness in harnesses:
                harness.stop()
            store.flush_prefix()
            store.close()


def compare(results: dict[tuple[str, str], dict[str, Measured]]) -> None:
    """The servers side by side under the same harness; the harnesses side by side on each server."""
    for (key, harness), measured in results.items():
        for scenario, old in measured.items() if key != "now" else ():
            new = results.get(("now", harness), {}).get(scenario)
            if new is not None and old.p99() and new.p99():
                print(f"  App Home {scenario} ({harness} harness): {key} -> now: p99 {_ms(old.p99() or 0)} -> "
                      f"{_ms(new.p99() or 0)} ({(old.p99() or 0) / (new.p99() or 1):.1f}x), web CPU per open "
                      f"{old.cpu_per_open * 1000:.1f} -> {new.cpu_per_open * 1000:.1f} ms")
    for (key, harness), measured in results.items():
        for scenario, old in measured.items() if harness == "old" else ():
            new = results.get((key, "lean"), {}).get(scenario)
            if new is not None and old.p99() and new.p99():
                print(f"  App Home {scenario} on {key}: the old -> the lean harness: p99 {_ms(old.p99() or 0)} -> "
                      f"{_ms(new.p99() or 0)}, the harness's CPU per open {old.harness_per_open * 1000:.2f} -> "
                      f"{new.harness_per_open * 1000:.2f} ms, web CPU per open {old.cpu_per_open * 1000:.1f} -> "
                      f"{new.cpu_per_open * 1000:.1f} ms")


if __name__ == "__main__":
    main()
