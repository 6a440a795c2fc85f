"""The ``flowbot`` command: the composition root, the only place dependencies are wired.

Library code raises; this module turns the named errors into one clear message and a
non-zero exit, never a traceback.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar
from urllib.error import URLError

import typer

from jobs.errors import (
    ConfigError,
    FlowbotError,
    NotBuiltYet,
    SchemaMismatch,
    StoreUnavailable,
)
from jobs.settings import Settings

if TYPE_CHECKING:
    from slack_sdk import WebClient

    from jobs.cycle import CycleReport
    from jobs.ports import Clock
    from jobs.store import Store
    from jobs.sync import RepoReport

app = typer.Typer(
    name="flowbot",
    help="Flowbot shows where your team's delivery is waiting: review queues, pickup, CI.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: typer's rich panels print a type beside every flag (`--help <bool>`) as if
    # it took a value; click's own layout shows flags bare.
    rich_markup_mode=None,
)
F = TypeVar("F", bound=Callable[..., object])

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Config file (default: $FLOWBOT_CONFIG or ./config.toml)."),
]


def main() -> None:
    """Entry point of the console script."""
    from bot.logs import configure

    configure(os.environ.get("FLOWBOT_LOG_LEVEL", "WARNING"))  # secrets filtered out, DEBUG included
    app()


@contextmanager
def _errors() -> Iterator[None]:
    """Named errors become a message on stderr and exit code 1 (2 for not-built commands)."""
    try:
        yield
    except ConfigError as err:
        typer.echo("Configuration problems:", err=True)
        for line in err.problems:
            typer.echo(f"  {line}", err=True)
        raise typer.Exit(1) from None
    except NotBuiltYet as err:
        typer.echo(f"flowbot: {err}", err=True)
        raise typer.Exit(2) from None
    except SchemaMismatch as err:  # Redis answered: the message says what it found and what to do
        typer.echo(f"flowbot: {err}", err=True)
        raise typer.Exit(1) from None
    except StoreUnavailable as err:
        typer.echo(f"flowbot: {err}", err=True)
        typer.echo("  Check REDIS_URL, or unset it to use the embedded Redis.", err=True)
        raise typer.Exit(1) from None
    except FlowbotError as err:
        typer.echo(f"flowbot: {err}", err=True)
        raise typer.Exit(1) from None
    except OSError as err:  # a path given on the command line that cannot be written (--out, --chart)
        if err.filename is None:
            raise  # not about a file: a fault worth its traceback
        typer.echo(f"flowbot: {err}", err=True)
        raise typer.Exit(1) from None


def load_settings(config: Path | None) -> Settings:
    """Settings from the config file and the environment (raises ConfigError)."""
    from bot import config as config_loader

    return config_loader.load(config)


def open_store(settings: Settings, *, check_schema: bool = True) -> Store:
    """The Redis store: ``REDIS_URL`` when set, else the embedded server (StoreUnavailable;
    SchemaMismatch when ``check_schema`` and the schema key is wrong)."""
    from jobs.store import Store

    url = settings.secrets.redis_url
    return Store.connect(
        url.get_secret_value() if url else None,
        data_path=settings.storage.path,
        prefix=settings.storage.prefix,
        check_schema=check_schema,
    )


def _slack_client(settings: Settings) -> WebClient:
    """A Web API client for the bot token (``SLACK_API_URL`` points it elsewhere, e.g. a fake)."""
    from slack_sdk import WebClient

    token = settings.secrets.slack_bot_token
    if token is None:
        raise FlowbotError("SLACK_BOT_TOKEN is not set: posting needs the bot's token (xoxb-...)")
    base_url = settings.secrets.slack_api_url or WebClient.BASE_URL
    return WebClient(token=token.get_secret_value(), base_url=base_url)


def _unreachable_slack(base_url: str, err: OSError) -> str:
    """One line for a Slack API that cannot be reached (refused, timed out, no route)."""
    reason = err.reason if isinstance(err, URLError) else err
    detail = getattr(reason, "strerror", None) or str(reason) or type(reason).__name__
    from jobs.store import redact_url

    return (f"cannot reach Slack at {redact_url(base_url)} ({detail}): check the network"
            " (proxy, firewall), and SLACK_API_URL if it is set")


def _not_built(command: str, issue: int) -> NotBuiltYet:
    return NotBuiltYet(f"`flowbot {command}` is not built yet (tracked in issue #{issue})")


# ---------------------------------------------------------------------------- commands


@app.command("check-config")
def check_config(
    path: Annotated[Path | None, typer.Argument(
        help="Config file to check (the same as --config).", show_default=False)] = None,
    config: ConfigOption = None,
) -> None:
    """Validate a config file and print what Flowbot understood from it."""
    if path is not None and config is not None and path != config:
        typer.echo(f"flowbot: two config files given ({path} and --config {config}); name one",
                   err=True)
        raise typer.Exit(2)
    with _errors():
        settings = load_settings(path or config)
        from bot.summary import settings_summary

        typer.echo(settings_summary(settings))


@app.command()
def run(config: ConfigOption = None) -> None:
    """Run the bot (Socket Mode) and the scheduler in one process."""
    with _errors():
        from bot.worker import app_token, run_bot_and_worker

        settings = load_settings(config)
        app_token(settings)  # a missing SLACK_APP_TOKEN is said before anything starts
        client = _slack_client(settings)
        try:
            run_bot_and_worker(settings, open_store(settings), client, echo=typer.echo)
        except (URLError, ConnectionError, TimeoutError) as err:  # Socket Mode's first call
            raise FlowbotError(_unreachable_slack(client.base_url, err)) from None


@app.command()
def web(
    config: ConfigOption = None,
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 3000,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "0.0.0.0",
    workers: Annotated[int, typer.Option(help="gunicorn worker processes.")] = 2,
    connections: Annotated[int, typer.Option(help="Connections at once per worker (slow ones included); "
                                                  "beyond, 503.")] = 1000,
    body_seconds: Annotated[float, typer.Option(help="Drop a request whose body has not arrived "
                                                     "within this many seconds (408).")] = 5.0,
    threads: Annotated[int, typer.Option(hidden=True, help="Ignored: each worker runs 16 app threads.")] = 0,
    fast_lane: Annotated[bool, typer.Option(hidden=True, help="Answer /flow status and queue from their "
                                                             "rendered answers before Bolt (bot/fastlane.py); "
                                                             "--no-fast-lane sends every request through Bolt.")] = True,
) -> None:
    """Serve Slack over HTTP (signed requests), /healthz and /metrics."""
    with _errors():
        from bot.serve import serve_gunicorn

        serve_gunicorn(str(config) if config else None, host=host, port=port, workers=workers,
                       connections=connections, body_seconds=body_seconds, echo=typer.echo,
                       fast_lane=fast_lane)


@app.command()
def worker(
    config: ConfigOption = None,
    schedule: Annotated[bool, typer.Option(
        "--schedule/--no-scheduler",
        help="Also run the scheduler (active in one worker at a time); --no-scheduler only "
             "runs queued work.")] = True,
) -> None:
    """Run queued work (sampling, snapshots, alerts, digests) and the scheduler; start more to add capacity."""
    with _errors():
        from bot.worker import run_worker

        settings = load_settings(config)
        client = _slack_client(settings)
        run_worker(settings, open_store(settings), client, echo=typer.echo, schedule=schedule)


@app.command()
def sample(config: ConfigOption = None) -> None:
    """Run one sampling cycle now, then refresh every team's snapshot; a line per repository."""
    with _errors():
        from jobs.ports import SystemClock

        settings = load_settings(config)
        result = _cycle_and_snapshots(settings, open_store(settings), clock=SystemClock())
        for line in result.lines():
            typer.echo(line)
        if any(r.error for r in result.repos):
            raise typer.Exit(1)


@app.command()
def backfill(
    config: ConfigOption = None,
    days: Annotated[int, typer.Option(help="How many days of history to collect.")] = 28,
) -> None:
    """Collect history (resumable), with a progress bar; then refresh every team's snapshot."""
    with _errors():
        from rich.progress import Progress

        from jobs.cycle import repositories_hint
        from jobs.ports import SystemClock

        settings = load_settings(config)
        if days > settings.github.retention_days:
            typer.echo(f"Note: closed PRs older than github.retention_days"
                       f" ({settings.github.retention_days}) are not kept.")
        store = open_store(settings)
        with Progress(transient=False) as bar:
            task = bar.add_task("repositories", total=repositories_hint(settings))
            stored = [0]

            def on_page(repo: str, n: int) -> None:
                stored[0] += n
                bar.update(task, description=f"{repo}: {stored[0]} PRs stored")

            result = _cycle_and_snapshots(
                settings, store, clock=SystemClock(), days=days, budget_share=1.0,
                progress=on_page, on_repo=lambda _: bar.advance(task),
            )
        for line in result.lines():
            typer.echo(line)
        if not result.complete:
            typer.echo("Not finished: run `flowbot backfill` again to resume where it stopped.")
            raise typer.Exit(1)


@dataclass(frozen=True, slots=True)
class _CycleResult:
    """A cycle's report and the teams whose snapshot was refreshed after it."""

    cycle: CycleReport
    snapshots: tuple[str, ...]
    failed: tuple[str, ...]
    skipped: int = 0  # stored values that did not decode (quarantined)

    @property
    def repos(self) -> tuple[RepoReport, ...]:
        return self.cycle.repos

    @property
    def complete(self) -> bool:
        return self.cycle.complete

    def lines(self) -> list[str]:
        """The cycle's lines, then which snapshots were refreshed (and which failed)."""
        out = self.cycle.lines()
        if self.snapshots:
            out.append(f"snapshots refreshed: {', '.join(self.snapshots)}")
        if self.failed:
            out.append(f"snapshot failed for {', '.join(self.failed)}: see the log")
        if self.skipped:
            out.append(f"{self.skipped} stored value(s) did not decode and were skipped:"
                       " `flowbot doctor` names them and how to remove them")
        return out


def _cycle_and_snapshots(
    settings: Settings, store: Store, *, clock: Clock, **cycle_options: Any
) -> _CycleResult:
    """One sampling cycle (``jobs.cycle.connect_and_run`` with ``cycle_options``), then every
    team's snapshot (``jobs.snapshot.refresh_all``), as the worker's tick does; each recorded
    under the scheduler's job names, so ``digest``, ``/flow`` and ``doctor`` see the data.

    A cycle that raises (GitHub credentials, Redis) is recorded as a failed run, when Redis
    allows, and re-raised for :func:`_errors`; no snapshot is computed then.
    """
    from jobs.cycle import connect_and_run
    from jobs.scheduler import SAMPLE_JOB, SNAPSHOT_JOB
    from jobs.snapshot import refresh_all
    from jobs.store import JobRun

    now = clock.now()
    started = time.monotonic()

    def record(job: str, outcome: str, detail: str) -> None:
        run = JobRun(job=job, started_at=now, seconds=round(time.monotonic() - started, 3),
                     outcome=outcome, detail=detail[:500])
        try:
            store.record_run(run)
        except FlowbotError as err:
            logging.getLogger(__name__).warning("could not record the %s run: %s", job, err)

    try:
        cycle = connect_and_run(settings, store, clock=clock, **cycle_options)
    except StoreUnavailable:
        raise
    except FlowbotError as err:
        record(SAMPLE_JOB, "failed", str(err))
        raise
    changed = sum(r.changed for r in cycle.repos)
    record(SAMPLE_JOB, "ok" if cycle.complete else "partial",
           f"{len(cycle.repos)} repositories, {changed} PRs changed, {cycle.requests} requests;"
           f" {len(cycle.errors)} errors" + (f": {cycle.errors[0]}" if cycle.errors else ""))
    started = time.monotonic()
    snaps = refresh_all(settings, store, now=now, errors=cycle.errors)
    failed = tuple(sorted(set(settings.teams) - set(snaps)))
    record(SNAPSHOT_JOB, "partial" if failed else "ok", f"{len(snaps)} team snapshots"
           + (f"; failed: {', '.join(failed)}" if failed else ""))
    return _CycleResult(cycle, tuple(snaps), failed, len(store.quarantined))


@app.command()
def report(
    repo: Annotated[str | None, typer.Argument(help="OWNER/REPO to report on.")] = None,
    days: Annotated[int, typer.Option(min=1, max=365, help="Days of history.")] = 28,
    sandbox: Annotated[bool, typer.Option(help="Use the simulated organisation.")] = False,
    timezone: Annotated[str, typer.Option(help="The team's time zone.")] = "UTC",
    working_hours: Annotated[str, typer.Option(help="Working hours, HH:MM-HH:MM.")] = "09:00-17:00",
    working_days: Annotated[str, typer.Option(help="Working days, comma-separated.")] = "mon,tue,wed,thu,fri",
    holidays: Annotated[str | None, typer.Option(help="Holiday country code, like DE.")] = None,
) -> None:
    """Print a team flow report in the terminal (needs only GITHUB_TOKEN)."""
    with _errors():
        from rich.console import Console

        from bot import adhoc
        from bot.report import print_report
        from jobs.ports import SystemClock

        console = Console()
        if sandbox:
            snaps, now = adhoc.sandbox_snapshots(days=days, console=console, env=os.environ)
            print_report(snaps.values(), now=now, console=console)
            return
        if not repo:
            raise FlowbotError("name a repository (flowbot report OWNER/REPO) or use --sandbox")
        hours = adhoc.Hours(
            timezone=timezone, working_hours=working_hours,
            working_days=tuple(d.strip().lower() for d in working_days.split(",") if d.strip()),
            holiday_country=holidays,
        )
        clock = SystemClock()
        snap = adhoc.repo_snapshot(repo, env=os.environ, days=days, hours=hours, clock=clock,
                                   console=console)
        print_report([snap], now=clock.now(), console=console)


@app.command()
def digest(
    team: Annotated[str, typer.Option(help="Team name.")],
    config: ConfigOption = None,
    print_: Annotated[bool, typer.Option("--print", help="Print it.")] = False,
    post: Annotated[bool, typer.Option("--post", help="Post it to the team's channel.")] = False,
    chart: Annotated[Path | None, typer.Option(help="Also write the chart PNG here.")] = None,
) -> None:
    """Build a team's weekly digest (the 7 days before now) and print or post it."""
    with _errors():
        from bot.charts import team_charts
        from bot.terminal import digest_text
        from jobs.digest import build_digest
        from jobs.ports import SystemClock

        settings = load_settings(config)
        client = _slack_client(settings) if post else None  # a missing token fails first
        store = open_store(settings)
        try:
            draw = team_charts(settings) if post or chart else None
            built = build_digest(settings, store, team, now=SystemClock().now(), chart=draw)
            if print_ or not post:
                typer.echo(digest_text(built))
            if chart is not None and built.chart_png is not None:
                chart.write_bytes(built.chart_png)
                typer.echo(f"Chart written to {chart}.")
            if client is not None:
                from bot.delivery import SlackDelivery

                posted = SlackDelivery(client, store).digest(built)
                where = f"{team}'s channel {built.channel}"
                typer.echo(f"Posted to {where}." if posted else f"Not posted to {where}: see the log.")
        finally:
            store.close()


@app.command()
def demo(
    post: Annotated[str | None, typer.Option(help="Also post to this Slack channel.")] = None,
    out: Annotated[Path, typer.Option(help="Folder for the chart and Block Kit JSON.")] = Path(
        "flowbot-demo"
    ),
    days: Annotated[int, typer.Option(min=1, max=28, help="Simulated days to sample.")] = 8,
) -> None:
    """Run the whole pipeline offline on a simulated organisation."""
    from rich.console import Console

    from bot.demo import post_result, print_result, run_demo

    console = Console()
    with _errors():
        client = None
        if post:
            from bot.config import secrets_from_env

            secrets, _problems = secrets_from_env(os.environ)
            if secrets.slack_bot_token is None:
                raise FlowbotError("--post needs SLACK_BOT_TOKEN (the bot token of your Slack"
                                   " app, xoxb-...); see docs/slack-setup.md")
            from slack_sdk import WebClient

            client = WebClient(token=secrets.slack_bot_token.get_secret_value(),
                               base_url=secrets.slack_api_url or WebClient.BASE_URL)
        result = run_demo(out=out, console=console, simulated_days=days,
                          redis_url=os.environ.get("REDIS_URL") or None)
        print_result(result, console=console, out=out)
        if client is not None and post:
            from slack_sdk.errors import SlackApiError

            try:
                n = post_result(result, channel=post, client=client)
            except SlackApiError as err:
                raise FlowbotError(f"Slack refused the post to {post}:"
                                   f" {err.response.get('error', 'error')}") from None
            console.print(f"Posted {n} messages to {post}.")


@app.command()
def doctor(
    config: ConfigOption = None,
    purge_bad: Annotated[bool, typer.Option(
        "--purge-bad", help="First remove the stored values that do not decode (the ones"
        " doctor lists), each checked again just before.")] = False,
) -> None:
    """Check config, Redis, GitHub, Slack, the jobs and the stored data; say what to fix."""
    from bot.doctor import DoctorDeps, diagnose, exit_code, render
    from jobs.github.client import connect
    from jobs.github.probe import probe
    from jobs.ports import SystemClock

    def probe_github(settings: Settings) -> object:
        source = connect(settings, sleep=lambda _s: None)  # doctor answers now, never waits
        try:
            return probe(settings, source)
        finally:
            source.close()

    def slack_client(settings: Settings) -> object | None:
        return _slack_client(settings) if settings.secrets.slack_bot_token else None

    with _errors():
        from bot.config import config_path

        findings = diagnose(DoctorDeps(
            load_settings=lambda: load_settings(config),
            connect_store=lambda s: open_store(s, check_schema=False),  # doctor says what it found
            probe_github=probe_github,
            slack_client=slack_client,
            now=SystemClock().now,
            config_file=config_path(config, os.environ),
        ), purge_bad=purge_bad)
        typer.echo(render(findings))
        raise typer.Exit(exit_code(findings))


if __name__ == "__main__":  # pragma: no cover
    main()
