"""`/flow`: parsing and thin handlers. Read the store, render through ``bot.blocks``, answer.

A slash command answers in its acknowledgement (one round trip, well inside Slack's 3
seconds: the store read is a single ``GET``), ephemeral unless ``share`` is given. The digest
preview, which does more work, acknowledges first and answers through ``response_url`` from a
lazy listener (the app runs with ``process_before_response``, so nothing waits on a thread hop).
Unknown subcommands and bad arguments get the usage line; unexpected errors go to the one
``@app.error`` handler in :mod:`bot.app`.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.blocks import escape
from bot.blocks.alert_list import render_alert_list
from bot.blocks.ci import render_ci
from bot.blocks.frame import Message, no_snapshot, notice, unavailable
from bot.blocks.health import render_health
from bot.blocks.help import render_help, render_usage
from bot.blocks.queue import MAX_ITEMS, render_queue
from bot.blocks.reviewers import render_reviewers
from bot.blocks.status import render_status
from bot.blocks.thresholds import render_set, render_thresholds
from bot.guard import SET, refusal
from bot.reader import sample_outlook
from jobs.alerts import list_alerts
from jobs.errors import StoreUnavailable
from jobs.overrides import (
    InvalidThreshold,
    effective_thresholds,
    set_threshold,
    threshold_history,
)
from jobs.settings import ALERT_RULES, RULE_THRESHOLDS, Settings, WorkHours

if TYPE_CHECKING:
    from slack_bolt import App

    from bot.app import BotDeps

log = logging.getLogger(__name__)

COMMAND = "/flow"
SNAPSHOT_SUBCOMMANDS = ("status", "queue", "reviewers", "ci")
TEAM_SUBCOMMANDS = (*SNAPSHOT_SUBCOMMANDS, "digest", "alerts", "thresholds")
SUBCOMMANDS = ("help", *TEAM_SUBCOMMANDS, "why", "set", "health", "windows")
_PR_REF = re.compile(
    r"^(?:<)?(?:https?://[^/\s]+/)?(?P<repo>[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)(?:#|/pull/)(?P<n>\d{1,9})(?:[|>].*)?$"
)


_WINDOW = re.compile(r"^\d{1,2}:\d{2}-\d{1,2}:\d{2}$")


class UsageError(ValueError):
    """The command text cannot be understood; the message says what was wrong."""


@dataclass(frozen=True, slots=True)
class FlowCommand:
    """A parsed `/flow` invocation."""

    sub: str
    team: str | None = None
    target: str | None = None  # why: "owner/repo#N"; set: the threshold name
    value: float | None = None  # set: the new level
    share: bool = False


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asked, and where."""

    user_id: str | None
    channel_id: str | None


def parse(text: str) -> FlowCommand:
    """Parse the text after `/flow`. Raises UsageError naming the problem."""
    words = text.split()
    share = False
    if words and words[-1].lower() == "share":
        share, words = True, words[:-1]
    if not words:
        return FlowCommand("help", share=share)
    sub, args = words[0].lower(), words[1:]
    if sub not in SUBCOMMANDS:
        raise UsageError(f"I don't know `{sub[:40]}`.")
    if sub in ("help", "health"):
        if args:
            raise UsageError(f"`{sub}` takes no arguments.")
        return FlowCommand(sub, share=share)
    if sub in TEAM_SUBCOMMANDS:
        if len(args) > 1:
            raise UsageError(f"`{sub}` takes at most a team name.")
        return FlowCommand(sub, team=args[0].lower() if args else None, share=share)
    if sub == "windows":
        return FlowCommand("windows", target=_windows_args(args), share=share)
    if sub == "why":
        if len(args) != 1 or not _PR_REF.match(args[0]):
            raise UsageError("`why` needs a PR like `acme/api#123`.")
        match = _PR_REF.match(args[0])
        assert match is not None  # checked just above
        return FlowCommand("why", target=f"{match['repo']}#{int(match['n'])}", share=share)
    # set THRESHOLD VALUE [team]
    if len(args) not in (2, 3):
        raise UsageError("`set` needs a threshold and a value, e.g. `set pickup_p50_hours 8`.")
    try:
        value = float(args[1])
    except ValueError:
        raise UsageError(f"`{args[1][:20]}` is not a number.") from None
    if not math.isfinite(value):  # 1e309 reads as infinity: refused here, with the range
        kind = RULE_THRESHOLDS.get(args[0].lower().partition(".")[0])
        where = f"; `{args[0][:40]}` {kind.range_text()}" if kind else ""
        raise UsageError(f"the value must be a finite number{where}.")
    return FlowCommand("set", team=args[2].lower() if len(args) == 3 else None, target=args[0].lower(),
                       value=value, share=share)


def _windows_args(args: list[str]) -> str | None:
    """`/flow windows` arguments: nothing (show), ``off``, or up to three ``HH:MM-HH:MM``.
    Raises UsageError naming the first word that is neither."""
    if not args:
        return None
    if len(args) == 1 and args[0].lower() == "off":
        return "off"
    if len(args) > 3:
        raise UsageError(f"`windows` takes at most 3 windows (got {len(args)}).")
    for word in args:
        if not _WINDOW.match(word):
            raise UsageError(f"`{word[:40]}` is not a window like `10:00-10:30`.")
    return " ".join(args)


def resolve_team(settings: Settings, explicit: str | None, caller: Caller) -> str:
    """The team a command is about: the one named, else the caller's, else the channel's.

    Raises UsageError for an unknown team or when no team can be inferred.
    """
    if explicit:
        if explicit in settings.teams:
            return explicit
        raise UsageError(f"There is no team `{explicit[:40]}`. Teams: {', '.join(sorted(settings.teams))}.")
    mine = teams_of_user(settings, caller.user_id)
    if mine:
        return mine[0]
    for name, team in settings.teams.items():
        if caller.channel_id and caller.channel_id in (team.channel, team.leads_channel):
            return name
    if len(settings.teams) == 1:
        return next(iter(settings.teams))
    raise UsageError(f"Which team? Add one of: {', '.join(sorted(settings.teams))}.")


def teams_of_user(settings: Settings, user_id: str | None) -> list[str]:
    """Names of the teams listing this Slack user as a member or lead, in config order."""
    if not user_id:
        return []
    return list(settings.people.teams_of_user.get(user_id, ()))


def answer(cmd: FlowCommand, caller: Caller, deps: BotDeps, *, now: datetime) -> Message:
    """The message answering ``cmd`` for ``caller``. Raises UsageError for bad arguments."""
    if cmd.sub == "help":
        return render_help()
    if cmd.sub == "health":
        return _health(deps, now=now)
    if cmd.sub == "why":
        return _why(cmd, deps, now=now)
    if cmd.sub == "windows":
        return _windows(cmd, caller, deps, now=now)
    team = resolve_team(deps.settings, cmd.team, caller)
    if cmd.sub in SNAPSHOT_SUBCOMMANDS:
        return _from_snapshot(cmd.sub, team, deps, now=now)
    if cmd.sub == "digest":
        return _digest(team, deps, now=now)
    if cmd.sub == "alerts":
        return _alerts(team, deps, now=now)
    if cmd.sub == "thresholds":
        return _thresholds(team, deps, now=now)
    return _set(cmd, team, caller, deps, now=now)


def register(app: App, deps: BotDeps) -> None:
    """Listen for `/flow`: answer in the acknowledgement; the digest preview follows lazily."""

    def is_digest(command: dict[str, Any]) -> bool:
        words = (command.get("text") or "").split()
        return bool(words) and words[0].lower() == "digest"

    def on_flow(ack: Callable[..., Any], command: dict[str, Any]) -> None:
        started = time.perf_counter()
        caller = Caller(command.get("user_id"), command.get("channel_id"))
        try:
            cmd = parse(command.get("text") or "")
        except UsageError as err:
            ack(**_payload(render_usage(str(err)), share=False))
            deps.telemetry.command("usage", time.perf_counter() - started, ok=True)
            return
        if cmd.sub == "digest":  # more work than a GET: digest_later answers via response_url
            ack(response_type="ephemeral", text="Building this week's digest preview…")
        else:
            ack(**_payload(_safe_answer(cmd, caller, deps, now=deps.clock.now()), share=cmd.share))
        deps.telemetry.command(cmd.sub, time.perf_counter() - started, ok=True)

    def digest_later(command: dict[str, Any], respond: Callable[..., Any]) -> None:
        try:
            cmd = parse(command.get("text") or "")
        except UsageError:
            return  # on_flow already answered with the usage line
        caller = Caller(command.get("user_id"), command.get("channel_id"))
        message = _safe_answer(cmd, caller, deps, now=deps.clock.now())
        respond(**_payload(message, share=cmd.share), replace_original=False)

    # Only the digest needs a lazy listener (Bolt copies the request for each lazy run).
    app.command(COMMAND, matchers=[is_digest])(ack=on_flow, lazy=[digest_later])
    app.command(COMMAND)(on_flow)


# ------------------------------------------------------------------------- subcommands


def _safe_answer(cmd: FlowCommand, caller: Caller, deps: BotDeps, *, now: datetime) -> Message:
    """``answer`` with usage problems and Redis outages turned into messages."""
    try:
        return answer(cmd, caller, deps, now=now)
    except UsageError as err:
        return render_usage(str(err))
    except StoreUnavailable:
        log.warning("/flow %s: Redis unavailable", cmd.sub)
        deps.telemetry.reading(unavailable=True, found=False)
        team = cmd.team or (teams_of_user(deps.settings, caller.user_id) or ["your team"])[0]
        return unavailable(team, None, now)


def _payload(message: Message, *, share: bool) -> dict[str, Any]:
    blocks, text = message
    return {"response_type": "in_channel" if share else "ephemeral", "blocks": blocks, "text": text}


def _from_snapshot(sub: str, team: str, deps: BotDeps, *, now: datetime) -> Message:
    """Reads only what the answer renders: the snapshot's head, plus one page of the queue
    for ``queue`` (the store keeps a snapshot in parts: ``jobs.store`` "snapshots")."""
    if sub == "queue":
        page = deps.reader.read_queue(team, count=MAX_ITEMS)
        snapshot, down = page.snapshot, page.unavailable
        if snapshot is not None:
            snapshot = replace(snapshot, queue_items=page.items)
    else:
        reading = deps.reader.read(team)
        snapshot, down = reading.snapshot, reading.unavailable
    deps.telemetry.reading(unavailable=down, found=snapshot is not None)
    if snapshot is None:
        if down:
            return unavailable(team, None, now)
        outlook = sample_outlook(deps.settings, deps.store, now=now)
        if outlook is None:
            return no_snapshot(team, None, now)
        return no_snapshot(team, outlook.next_at, now, last_sample=outlook.last_run,
                           worker_seen=outlook.workers > 0)
    if sub == "queue":
        blocks, text = render_queue(snapshot, now=now, unavailable=down, total=page.total)
    else:
        render = {"status": render_status, "reviewers": render_reviewers, "ci": render_ci}[sub]
        blocks, text = render(snapshot, now=now, unavailable=down)
    if down:
        warn, _ = unavailable(team, snapshot, now)
        return [*warn, *blocks][:50], text
    return blocks, text


def _why(cmd: FlowCommand, deps: BotDeps, *, now: datetime) -> Message:
    # numpy/pandas behind these: imported on first use, so a web worker starts without them
    from bot.blocks.why import render_why
    from jobs.identity import Identity
    from jobs.timeline import pr_clocks
    from jobs.worktime import WorkCalendar

    assert cmd.target is not None  # parse() sets it for "why"
    repo, _, number = cmd.target.partition("#")
    repo = deps.settings.full_repo(repo)
    pr = deps.store.get_pr(repo, int(number))
    if pr is None:
        repos = deps.settings.repositories
        known = ", ".join(repos[:8]) + (f" and {len(repos) - 8} more" if len(repos) > 8 else "")
        return notice(f"I have no record of `{escape(repo)}#{number}`. Flowbot knows the PRs of: {known}.")
    teams = deps.settings.teams_of_repo(repo)
    hours = deps.settings.teams[teams[0]] if teams else WorkHours()
    calendar = WorkCalendar.for_team(hours)
    result = pr_clocks(pr, identity=Identity(deps.settings.identity), calendar=calendar, now=now,
                       required_approvals=deps.settings.metrics.required_approvals)
    cursor = deps.store.get_cursor(repo)
    from jobs.window_dm import not_mine_of

    return render_why(pr, result, now=now, tz=hours.zone, data_as_of=cursor.synced_at if cursor else None,
                      not_mine=not_mine_of(deps.store, repo, pr.number))


def _digest(team: str, deps: BotDeps, *, now: datetime) -> Message:
    from bot.blocks.digest import render_digest  # pandas and matplotlib: first use only
    from jobs.digest import DigestUnavailable, build_digest

    try:
        digest = build_digest(deps.settings, deps.store, team, now=now)
    except DigestUnavailable as err:  # no snapshot yet
        return notice(f"No digest preview for *{team}*: {escape(str(err))}")
    return render_digest(digest)


def _alerts(team: str, deps: BotDeps, *, now: datetime) -> Message:
    return render_alert_list(team, list_alerts(deps.store, team, now=now), now=now)


def _thresholds(team: str, deps: BotDeps, *, now: datetime) -> Message:
    return render_thresholds(team, effective_thresholds(deps.settings, deps.store, team),
                             threshold_history(deps.store, team), now=now)


def _set(cmd: FlowCommand, team: str, caller: Caller, deps: BotDeps, *, now: datetime) -> Message:
    refused = refusal(deps.settings, team, caller.user_id, action=SET)
    if refused:
        return notice(refused)
    assert cmd.target is not None and cmd.value is not None  # parse() sets both for "set"
    rule, _, level = cmd.target.partition(".")
    if rule not in ALERT_RULES:
        raise UsageError(f"There is no threshold `{rule[:40]}`. Thresholds: {', '.join(ALERT_RULES)}.")
    try:
        change = set_threshold(deps.settings, deps.store, team, rule, cmd.value,
                               level=level or "warn",  # type: ignore[arg-type]  # checked inside
                               who=caller.user_id or "unknown", now=now)
    except InvalidThreshold as err:
        return notice(f"Not changed: {escape(str(err))}")
    return render_set(team, rule, change.level, change.old, change.new)


def _windows(cmd: FlowCommand, caller: Caller, deps: BotDeps, *, now: datetime) -> Message:
    """Show the caller's review windows, or change them (`off`, or up to three windows)."""
    from bot.blocks.windows import render_windows
    from bot.windows import choose, current, member
    from jobs.window_dm import next_window_start_of

    who = member(deps.settings, caller.user_id)
    if who is None:
        return render_windows(None, login=None, team=None, next_start=None)
    login, team = who
    note = ""
    if cmd.target is not None:
        words = [] if cmd.target == "off" else cmd.target.split()
        spans = [(a, b) for a, _, b in (w.partition("-") for w in words)]
        choice = choose(deps.settings, deps.store, login, team, spans, now=now, by=caller.user_id or "")
        if choice.saved is None:
            raise UsageError(f"Not changed: {next(iter(choice.problems.values()))}.")
        note = "Saved."
    rw = current(deps, login)
    return render_windows(rw, login=login, team=team, note=note,
                          next_start=next_window_start_of(deps.settings, rw, now=now))


def _health(deps: BotDeps, *, now: datetime) -> Message:
    runs = {job: deps.store.job_runs(job, limit=10) for job in deps.store.job_names()}
    from jobs.work import WorkStatus, status

    try:
        queue: WorkStatus | None = status(deps.store)
    except StoreUnavailable:
        queue = None  # the rest still answers
    return render_health(runs, now=now, locks=deps.store.held_locks(),
                         workers=deps.store.workers_seen(), work=queue)
