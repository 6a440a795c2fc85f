"""``flowbot demo``: the real pipeline, end to end, offline, on the simulated organisation.

No tokens, no Redis server, no network: the sandbox serves GitHub on loopback, an embedded
Redis lives in a temporary directory, and the same code the worker runs (``jobs.cycle``,
``jobs.snapshot``, ``jobs.alerts``, ``jobs.digest`` through :class:`jobs.scheduler.Pipeline`)
runs over a simulated week with a moving clock; then, in real time, a PR opened in the sandbox
arrives by webhook and shows in `/flow queue` (:mod:`bot.demo_live`). What Flowbot would post is printed as terminal
text and written to an output folder: the digest chart (PNG) and the raw Block Kit JSON of
every message, paste-able into Slack's Block Kit Builder. With ``--post CHANNEL`` and a
``SLACK_BOT_TOKEN``, the same messages are also posted to that channel.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from bot.blocks.alerts import render_alert
from bot.blocks.digest import render_digest
from bot.blocks.status import render_status
from bot.charts import team_charts
from bot.demo_live import LiveChange, show_a_change, webhook_secret
from bot.terminal import alert_text, digest_text, status_text
from jobs.model import Alert, Digest, TeamSnapshot
from jobs.ports import FixedClock
from jobs.settings import Settings
from jobs.store import Store

DEMO_PREFIX = "flowbot-demo"  # each run's keys: ``flowbot-demo-<pid>-<random>`` (demo_prefix)
HISTORY_DAYS = 28  # backfilled before the simulated week starts
SIMULATED_DAYS = 8  # sampled cycle by cycle: the digest's whole week, then its Monday
SAMPLE_EVERY = timedelta(hours=4)


@dataclass
class Recorder:
    """A :class:`jobs.ports.Deliver` that keeps what would be posted, in order."""

    clock: FixedClock
    alerts: list[tuple[datetime, Alert]] = field(default_factory=list)
    digests: list[Digest] = field(default_factory=list)

    def alert(self, alert: Alert) -> bool:
        self.alerts.append((self.clock.now(), alert))
        return True

    def digest(self, digest: Digest) -> bool:
        self.digests.append(digest)
        return True


@dataclass(frozen=True)
class DemoResult:
    """What the demo produced: the messages, the snapshots and where the files went."""

    settings: Settings
    now: datetime
    digests: tuple[Digest, ...]
    alerts: tuple[tuple[datetime, Alert], ...]
    snapshots: Mapping[str, TeamSnapshot]
    files: tuple[Path, ...]
    cycles: int
    days: int
    seconds: float
    live: LiveChange | None = None

    def latest_digest(self) -> Digest | None:
        """The first team's most recent digest (an eight-day run sees two Mondays)."""
        if not self.digests:
            return None
        team = self.digests[0].team
        return max((d for d in self.digests if d.team == team), key=lambda d: d.week_start)


def demo_prefix() -> str:
    """A storage prefix of this run's own: two demos (two CI jobs, two xdist workers, a demo
    beside a Flowbot install) on one Redis never read or delete each other's keys. A fixed
    prefix let one run's digest-done marks and locks stop the other's digests, and its reset
    empty the other's data mid-run."""
    return f"{DEMO_PREFIX}-{os.getpid()}-{secrets.token_hex(4)}"


def run_demo(
    *,
    out: Path,
    console: Console,
    end: datetime | None = None,
    redis_url: str | None = None,
    simulated_days: int = SIMULATED_DAYS,
) -> DemoResult:
    """Run the pipeline on the sandbox and write the output folder. Returns what it made.

    ``end`` is the simulated "now" at the end (default: the latest Monday afternoon, after every
    team's Monday-morning digest); ``simulated_days`` are sampled cycle by cycle before it
    (eight days cover the digest's whole week, so its queue trend is fully sampled). ``redis_url`` uses a
    Redis server (under a prefix of this run's own, :func:`demo_prefix`, emptied afterwards: its
    RQ keys too) instead of the embedded one.
    Raises StoreUnavailable when Redis cannot be started or reached.
    """
    from bot.config import from_mapping
    from jobs import work
    from jobs.github.client import connect
    from jobs.sandbox import SandboxServer, build_org
    from jobs.scheduler import Pipeline, simulate

    started = time.monotonic()
    end = end or last_digest_afternoon(datetime.now(timezone.utc))
    start = end - timedelta(days=simulated_days)
    org = build_org(end=end, weeks=6)
    clock = FixedClock(start)
    out.mkdir(parents=True, exist_ok=True)
    with SandboxServer(org, clock=clock) as server, tempfile.TemporaryDirectory(
        prefix="flowbot-demo-"
    ) as tmp:
        data = org.config(server.base_url)
        data["schedules"] = {
            "sample_interval_minutes": int(SAMPLE_EVERY.total_seconds() // 60),
            "jitter_seconds": 0,
        }
        prefix = demo_prefix()
        data["storage"] = {"prefix": prefix}
        secret = webhook_secret()
        env = {"GITHUB_TOKEN": server.token, "GITHUB_WEBHOOK_SECRET": secret}
        settings = from_mapping(data, env=env, source="sandbox")
        store = Store.connect(redis_url, data_path=Path(tmp) / "demo.rdb", prefix=prefix)
        try:
            store.ensure_schema()
            source = connect(settings, clock=clock, sleep=lambda _s: None)
            _backfill(settings, store, source, clock=clock, console=console)
            recorder = Recorder(clock)
            pipeline = Pipeline.from_settings(
                settings, store, recorder, clock=clock, source=source,
                chart=team_charts(settings),
            )
            fired = _simulate(simulate, pipeline, clock=clock, start=start, end=end,
                              console=console)
            snapshots = {team: snap for team in settings.teams
                         if (snap := store.get_snapshot(team)) is not None}
            live = show_a_change(settings, store, server, clock=clock, source=source,
                                 pipeline=pipeline, secret=secret)
        finally:
            try:
                work.purge(store)
                store.flush_prefix()
            finally:
                store.close()
    files = _write(out, recorder, snapshots, now=end)
    return DemoResult(settings, end, tuple(recorder.digests), tuple(recorder.alerts),
                      snapshots, tuple(files), fired, simulated_days, time.monotonic() - started,
                      live)


def last_digest_afternoon(now: datetime) -> datetime:
    """The latest Monday 16:00 UTC at or before ``now``: every sandbox team's 09:30-local
    digest (Europe and America) has been posted by then."""
    monday = (now - timedelta(days=now.weekday())).replace(hour=16, minute=0, second=0,
                                                             microsecond=0)
    return monday if monday <= now else monday - timedelta(days=7)


def print_result(result: DemoResult, *, console: Console, out: Path) -> None:
    """The terminal view: one digest, one alert, one ``/flow status`` answer, what next."""
    rule = "─" * 80
    teams = list(result.settings.teams)
    console.print(f"\n[bold]Flowbot demo[/bold]: {len(teams)} teams ({', '.join(teams)}),"
                  f" {len(result.settings.repositories)} repositories, {result.cycles} sampling"
                  f" cycles over {result.days} simulated days, {result.seconds:.1f} s.\n")
    digest = result.latest_digest()
    if digest is not None:
        console.print(f"[bold]1. The weekly digest #{digest.team} would get[/bold]"
                      f" (posted {digest.week_end + timedelta(days=1):%a %d %b}, local time)")
        console.print(rule)
        console.out(digest_text(digest), highlight=False)
    else:
        console.print("[bold]1. Weekly digest[/bold]: none fell due in the simulated days"
                      " (digests go out on each team's digest day; run a full week to see one).\n")
    if result.alerts:
        at, alert = result.alerts[0]
        console.print(f"[bold]2. An alert the {alert.team} leads would get[/bold]"
                      f" ({at:%a %d %b %H:%M} UTC; {len(result.alerts)} alerts and notices"
                      f" in {result.days} simulated days)")
        console.print(rule)
        console.out(alert_text(alert), highlight=False)
    else:
        console.print("[bold]2. Alerts[/bold]: no threshold was crossed in the simulated week.\n")
    if result.snapshots:
        team, snap = next(iter(result.snapshots.items()))
        console.print(f"[bold]3. What `/flow status {team}` answers[/bold]")
        console.print(rule)
        console.out(status_text(snap, now=result.now), highlight=False)
    if result.live is not None:
        _print_live(result.live, console=console, rule=rule)
    console.print(f"[bold]Files[/bold] in {out}/: the digest charts (PNG) and the Block Kit JSON of"
                  " every message, to paste into https://app.slack.com/block-kit-builder")
    console.print("\n[bold]Next[/bold] (after `source .venv/bin/activate`):")
    console.out(
        "  - your own repository, with only a token:\n"
        "      export GITHUB_TOKEN=...  &&  flowbot report OWNER/REPO\n"
        "  - install it in Slack: docs/slack-setup.md (one manifest paste), then\n"
        "      cp config.example.toml config.toml  &&  flowbot check-config\n"
        "  - run it: flowbot run (one process, Socket Mode); check it: flowbot doctor\n"
        "  - how each number is defined: docs/metrics.md",
        highlight=False,
    )


def _print_live(live: LiveChange, *, console: Console, rule: str) -> None:
    console.print("[bold]4. A change arriving in real time[/bold] (a webhook, as GitHub sends it)")
    console.print(rule)
    console.out(f"{live.pr} \"{live.title}\" opened in the simulated GitHub.\n"
                f"+{live.accepted_after:.2f} s  its webhook ({live.event}, signed) reached"
                f" POST /github/webhook: {live.status}, refresh queued", highlight=False)
    if live.shown_after is None:
        console.out(f"`/flow queue {live.team}` does not list it yet (the next sample will)",
                    highlight=False)
    else:
        console.out(f"+{live.shown_after:.2f} s  the refresh read the PR, the team's snapshot"
                    f" followed; `/flow queue {live.team}` lists it:\n  {live.line}\n",
                    highlight=False)


def post_result(result: DemoResult, *, channel: str, client: Any) -> int:
    """Post the demo's digest (with its chart), first alert and status to ``channel``.

    Returns how many messages were posted. Raises slack_sdk's SlackApiError on refusal.
    """
    posted = 0
    for digest in filter(None, [result.latest_digest()]):
        blocks, text = render_digest(digest)
        client.chat_postMessage(channel=channel, blocks=blocks, text=text)
        if digest.chart_png:
            client.files_upload_v2(channel=channel, content=digest.chart_png,
                                   filename=f"flow-{digest.team}.png",
                                   title=f"Flow: {digest.team}")
        posted += 1
    for _at, alert in result.alerts[:1]:
        blocks, text = render_alert(alert)
        client.chat_postMessage(channel=channel, blocks=blocks, text=text)
        posted += 1
    for snap in list(result.snapshots.values())[:1]:
        blocks, text = render_status(snap, now=result.now)
        client.chat_postMessage(channel=channel, blocks=blocks, text=text)
        posted += 1
    return posted


# ----------------------------------------------------------------------------- steps


def _backfill(settings: Settings, store: Store, source: Any, *, clock: FixedClock,
              console: Console) -> None:
    from jobs.cycle import run_cycle

    with Progress(TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.completed:.0f}/{task.total:.0f} repositories"),
                  TextColumn("{task.fields[prs]} PRs"), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task(f"Backfilling {HISTORY_DAYS} days from the simulated GitHub",
                            total=len(settings.repositories), prs=0)
        seen: set[str] = set()

        def progress(repo: str, n: int) -> None:
            if repo not in seen:
                seen.add(repo)
                bar.update(task, completed=len(seen) - 1)
            bar.update(task, prs=int(bar.tasks[task].fields["prs"]) + n)

        report = run_cycle(settings, store, source, clock=clock, days=HISTORY_DAYS,
                           progress=progress)
        bar.update(task, completed=len(settings.repositories))
    prs = sum(r.changed for r in report.repos)
    console.print(f"Backfilled {prs} PRs from {len(report.repos)} repositories"
                  f" in {report.requests} requests.")


def _simulate(simulate: Callable[..., list[Any]], pipeline: Any, *, clock: FixedClock,
              start: datetime, end: datetime, console: Console) -> int:
    total = int((end - start) / SAMPLE_EVERY)
    with Progress(TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.fields[day]}"), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("Sampling the simulated week", total=total, day="")

        def on_fire(job: str, at: datetime) -> None:
            if job == "sample":
                bar.update(task, advance=1, day=f"{at:%a %d %b %H:%M} UTC")

        fired = simulate([pipeline], clock=clock, start=start, end=end, on_fire=on_fire)
    cycles = sum(1 for f in fired if f.job == "sample")
    console.print(f"Ran {cycles} sampling cycles (snapshots and alerts after each) and the"
                  " weekly digests as they fell due.")
    return cycles


def _write(out: Path, recorder: Recorder, snapshots: Mapping[str, TeamSnapshot], *,
           now: datetime) -> list[Path]:
    files: list[Path] = []
    for pattern in ("digest-*.json", "digest-*.png", "digest-*.txt", "alert-*.json", "status-*.json"):
        for old in out.glob(pattern):  # a previous run's messages would read as this run's
            old.unlink()

    def dump(name: str, blocks: list[dict[str, Any]], text: str) -> None:
        path = out / name
        path.write_text(json.dumps({"blocks": blocks, "text": text}, indent=2) + "\n")
        files.append(path)

    for digest in recorder.digests:
        blocks, text = render_digest(digest)
        dump(f"digest-{digest.team}.json", blocks, text)
        if digest.chart_png:
            png = out / f"digest-{digest.team}.png"
            png.write_bytes(digest.chart_png)
            files.append(png)
        (out / f"digest-{digest.team}.txt").write_text(digest_text(digest))
    for i, (_at, alert) in enumerate(recorder.alerts, start=1):
        blocks, text = render_alert(alert)
        dump(f"alert-{i:02d}-{alert.team}-{alert.rule}.json", blocks, text)
    for team, snap in snapshots.items():
        blocks, text = render_status(snap, now=now)
        dump(f"status-{team}.json", blocks, text)
    return files
