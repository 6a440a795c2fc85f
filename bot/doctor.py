"""``flowbot doctor``: one command that says why nothing was posted, and what to do.

Each check gives a pass, a warning or a failure, with the fix in one line. The checks run in
order (config, Redis, GitHub, Slack, jobs, data); one failing does not hide the others, except
that nothing else can be checked without a valid configuration.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from bot.delivery import delivery_problems
from jobs.errors import ConfigError, FlowbotError, SchemaMismatch, StoreUnavailable
from jobs.settings import Settings
from jobs.store import Store

Status = Literal["ok", "warn", "fail"]

REQUIRED_SLACK_SCOPES: tuple[str, ...] = (
    "chat:write",
    "commands",
    "im:write",
    "files:write",
    "channels:read",
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One check's verdict: what was found and, when it is not fine, what to do."""

    area: str
    status: Status
    summary: str
    fix: str = ""


@dataclass(frozen=True, slots=True)
class DoctorDeps:
    """What the doctor talks to; the CLI wires the real ones, tests pass fakes on loopback."""

    load_settings: Callable[[], Settings]
    connect_store: Callable[[Settings], Store]
    probe_github: Callable[[Settings], Any]  # -> jobs.github.probe.GitHubProbe
    slack_client: Callable[[Settings], Any | None]  # -> slack_sdk.WebClient or None (no token)
    now: Callable[[], datetime]
    config_file: Path | None = None  # the file load_settings reads, when it reads one


def diagnose(deps: DoctorDeps, *, purge_bad: bool = False) -> list[Finding]:
    """Run every check and return the findings in order. Never raises for a failed check.

    ``purge_bad`` first removes the stored values that do not decode (``--purge-bad``).
    """
    try:
        settings = deps.load_settings()
    except ConfigError as err:
        if deps.config_file is not None and not deps.config_file.exists():
            return [Finding("config", "fail", f"no config file at {deps.config_file}",
                            f"copy config.example.toml to {deps.config_file} and edit it (or name"
                            " another file with --config or FLOWBOT_CONFIG)")]
        return [Finding("config", "fail", "the configuration has problems:\n" + "\n".join(
            f"    {p}" for p in err.problems), "fix each problem named above, then run"
            " `flowbot check-config`")]
    findings = [Finding("config", "ok", f"configuration valid: {len(settings.teams)} team(s),"
                        f" {len(settings.repositories)} repositories")]
    store: Store | None = None
    try:
        store = deps.connect_store(settings)
        findings.append(_redis(store, settings))
    except StoreUnavailable as err:
        findings.append(Finding("redis", "fail", str(err),
                                "start Redis or fix REDIS_URL; unset REDIS_URL to use the"
                                " embedded Redis"))
    findings += _github(deps, settings)
    findings += _slack(deps, settings)
    if store is not None:
        stored, usable = stored_data(store, purge=purge_bad)
        findings += stored
        if usable:
            findings += _jobs(store, settings, deps.now())
            findings += lock_findings(store, settings, deps.now())
            findings += webhook_findings(store, settings, deps.now())
    return findings


def render(findings: list[Finding]) -> str:
    """Plain text, a line per check and its fix, then the verdict."""
    marks = {"ok": "PASS", "warn": "WARN", "fail": "FAIL"}
    lines = []
    for f in findings:
        lines.append(f"[{marks[f.status]}] {f.area}: {f.summary}")
        if f.fix and f.status != "ok":
            lines.append(f"       fix: {f.fix}")
    failed = sum(f.status == "fail" for f in findings)
    warned = sum(f.status == "warn" for f in findings)
    lines.append("")
    lines.append(
        "All checks passed." if not failed and not warned
        else f"{failed} problem(s), {warned} warning(s)."
    )
    return "\n".join(lines)


def exit_code(findings: list[Finding]) -> int:
    """Non-zero when any check failed (warnings pass)."""
    return 1 if any(f.status == "fail" for f in findings) else 0


# ----------------------------------------------------------------------------- checks


def _redis(store: Store, settings: Settings) -> Finding:
    store.ping()
    persistence = store.persistence()
    if store.location.startswith("embedded"):
        return Finding("redis", "ok", f"{store.location} reachable; data saved to its file")
    save, aof = persistence.get("save", ""), persistence.get("appendonly", "")
    if persistence and not save and aof != "yes":
        return Finding(
            "redis", "warn",
            f"{store.location} reachable but keeps nothing on disk (save '', appendonly no):"
            " a restart loses cursors, alert state and delivery records",
            "enable persistence (appendonly yes, or save 900 1) for production",
        )
    detail = f"save '{save}', appendonly {aof}" if persistence else "persistence not visible"
    return Finding("redis", "ok", f"{store.location} reachable ({detail})")


def _github(deps: DoctorDeps, settings: Settings) -> list[Finding]:
    s = settings.secrets
    if not (s.github_token or s.github_app_id):
        return [Finding("github", "fail", "no GitHub credentials",
                        "set GITHUB_TOKEN, or GITHUB_APP_ID + GITHUB_APP_PRIVATE_KEY +"
                        " GITHUB_APP_INSTALLATION_ID")]
    try:
        probe = deps.probe_github(settings)
    except FlowbotError as err:
        return [Finding("github", "fail", f"GitHub check failed: {err}",
                        "check the token and github.base_url")]
    findings = []
    if not probe.authenticated:
        return [_github_failure(probe, settings)]
    who = f"as {probe.login}" if probe.login else "as a GitHub App installation"
    findings.append(Finding("github", "ok", f"authenticated {who} at {settings.github.base_url}"))
    if probe.missing_scopes:
        findings.append(Finding("github", "fail",
                                f"token lacks scope(s): {', '.join(probe.missing_scopes)}",
                                "regenerate the token with those scopes"))
    for repo, problem, fix in probe.repo_problems:
        findings.append(Finding("github", "fail", f"{repo}: {problem}", fix))
    for repo in probe.archived:
        findings.append(Finding("github", "warn", f"{repo} is archived and will be skipped",
                                "remove it from the team's repositories"))
    if probe.rate_limit:
        share = probe.rate_remaining / probe.rate_limit
        status: Status = "ok" if share >= 0.2 else "warn"
        findings.append(Finding("github", status,
                                f"rate limit {probe.rate_remaining}/{probe.rate_limit} left",
                                "another tool shares this token; give Flowbot its own token"
                                " or lower github.budget_share"))
    return findings


def _github_failure(probe: Any, settings: Settings) -> Finding:
    """Why GitHub did not authenticate us: unreachable (network, base URL), rate-limited, or
    the credentials refused (a new token, or the App's IDs and key)."""
    url = settings.github.base_url
    if probe.failure == "unreachable":
        return Finding("github", "fail", f"GitHub unreachable at {url} ({probe.error})",
                       "check github.base_url and the network (proxy, firewall, DNS) from this"
                       " machine; the credentials could not be checked")
    if probe.failure == "rate_limited":
        return Finding("github", "warn", f"GitHub's rate limit is spent ({probe.error})",
                       "wait for the hourly reset, or give Flowbot a token of its own")
    if settings.secrets.github_token is None:
        fix = ("check GITHUB_APP_ID, GITHUB_APP_INSTALLATION_ID and the private key, and that"
               f" the App is installed on {settings.github.organisation}")
    elif probe.status == 401:
        fix = ("GITHUB_TOKEN is wrong, expired or revoked: create a new token (classic scopes:"
               " repo, read:org) and set GITHUB_TOKEN")
    else:  # a 403 GitHub explains itself (SAML SSO not authorised, IP allow list): say it
        fix = ("read GitHub's reason above; for SAML single sign-on, authorise the token for"
               f" {settings.github.organisation} on its settings page")
    return Finding("github", "fail", f"GitHub refused the credentials ({probe.error})", fix)


def _slack(deps: DoctorDeps, settings: Settings) -> list[Finding]:
    client = deps.slack_client(settings)
    return _slack_bot(client, settings) + _slack_inbound(client, settings)


def _slack_bot(client: Any | None, settings: Settings) -> list[Finding]:
    from slack_sdk.errors import SlackApiError

    if client is None:
        return [Finding("slack", "fail", "no Slack bot token", "set SLACK_BOT_TOKEN (xoxb-...)"
                        " from your Slack app's OAuth page; see docs/slack-setup.md")]
    try:
        auth = client.auth_test()
    except SlackApiError as err:
        code = err.response.get("error", "error") if err.response is not None else "error"
        return [Finding("slack", "fail", f"Slack refused the bot token ({code})",
                        "reinstall the app to the workspace and set SLACK_BOT_TOKEN to its"
                        " new bot token")]
    except OSError as err:
        return [Finding("slack", "fail", f"Slack unreachable ({err})", "check the network")]
    findings = [Finding("slack", "ok", f"bot token valid for {auth.get('team', 'the workspace')}"
                        f" as {auth.get('user', 'the bot')}")]
    scopes = _header(auth.headers, "x-oauth-scopes")
    have: set[str] = set()
    if scopes is not None:
        have = {s.strip() for s in scopes.split(",") if s.strip()}
        missing = [s for s in REQUIRED_SLACK_SCOPES if s not in have]
        if missing:
            findings.append(Finding("slack", "fail", f"bot lacks scope(s): {', '.join(missing)}",
                                    "add them in the app's OAuth & Permissions page (or paste"
                                    " slack-manifest.yaml again) and reinstall the app"))
        findings += history_scope_findings(have)
    for name, team in settings.teams.items():
        for key, channel in (("channel", team.channel), ("leads_channel", team.leads_channel)):
            if channel:
                findings.append(_channel(client, f"teams.{name}.{key}", channel,
                                         public_posts="chat:write.public" in have))
    return findings


SIGNING_SECRET_SHAPE = re.compile(r"^[0-9a-f]{32}$")  # what Slack shows under App Credentials
APP_TOKEN_WHERE = ("your Slack app's settings > Basic Information > App-Level Tokens"
                   " (scope connections:write)")


def _slack_inbound(bot_client: Any | None, settings: Settings) -> list[Finding]:
    """How ``/flow`` and buttons reach Flowbot: Socket Mode (``flowbot run``) needs
    ``SLACK_APP_TOKEN``, HTTP mode (``flowbot web``) ``SLACK_SIGNING_SECRET``; one suffices."""
    app_token = settings.secrets.slack_app_token
    secret = settings.secrets.slack_signing_secret
    if app_token is None and secret is None:
        return [Finding("slack", "fail", "neither SLACK_APP_TOKEN nor SLACK_SIGNING_SECRET is"
                        " set: /flow commands and buttons cannot reach Flowbot",
                        f"for `flowbot run` (Socket Mode) set SLACK_APP_TOKEN (xapp-..., from"
                        f" {APP_TOKEN_WHERE}); for `flowbot web` (HTTP mode) set"
                        " SLACK_SIGNING_SECRET (Basic Information > App Credentials)")]
    findings: list[Finding] = []
    if app_token is not None:
        findings.append(_app_token(app_token.get_secret_value(), bot_client, settings))
    if secret is not None:
        findings.append(_signing_secret(secret.get_secret_value()))
    if app_token is None:
        findings.append(Finding("slack", "ok", "SLACK_APP_TOKEN not set: HTTP mode only"
                                " (`flowbot web`); `flowbot run` would need it"))
    if secret is None:
        findings.append(Finding("slack", "ok", "SLACK_SIGNING_SECRET not set: Socket Mode only"
                                " (`flowbot run`); `flowbot web` would refuse every request"))
    return findings


def _app_token(token: str, bot_client: Any | None, settings: Settings) -> Finding:
    """The app-level token's shape, then Slack's own verdict (``apps.connections.open``, what
    Socket Mode calls to connect; the URL it returns is never dialled and soon expires)."""
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    if not token.startswith("xapp-"):
        kind = next((k for p, k in (("xoxb-", "a bot token"), ("xoxp-", "a user token"))
                     if token.startswith(p)), "not an app-level token")
        return Finding("slack", "fail", f"SLACK_APP_TOKEN is {kind}; Socket Mode needs an"
                       " app-level token (xapp-...)", f"create one in {APP_TOKEN_WHERE}")
    base_url = (getattr(bot_client, "base_url", None) or settings.secrets.slack_api_url
                or WebClient.BASE_URL)
    try:
        WebClient(base_url=base_url, timeout=10).apps_connections_open(app_token=token)
    except SlackApiError as err:
        code = err.response.get("error", "error") if err.response is not None else "error"
        fix = {"missing_scope": f"give the app-level token the connections:write scope in"
                                f" {APP_TOKEN_WHERE}"}.get(
            code, f"create a new app-level token in {APP_TOKEN_WHERE}, set SLACK_APP_TOKEN to"
                  " it, and check Socket Mode is on (Settings > Socket Mode)")
        return Finding("slack", "fail", f"Slack refused SLACK_APP_TOKEN ({code})", fix)
    except OSError as err:
        return Finding("slack", "fail", f"Slack unreachable for Socket Mode ({err})",
                       "check the network")
    return Finding("slack", "ok", "SLACK_APP_TOKEN valid: Socket Mode (`flowbot run`) can connect")


def _signing_secret(secret: str) -> Finding:
    """Its shape only: a signing secret can be checked against a signed request, not alone."""
    if secret.startswith(("xoxb-", "xoxp-", "xapp-")):
        return Finding("slack", "fail", "SLACK_SIGNING_SECRET holds a token, not the signing"
                       " secret: every request to `flowbot web` would be refused (401)",
                       "copy the Signing Secret from Basic Information > App Credentials")
    if not SIGNING_SECRET_SHAPE.match(secret):
        return Finding("slack", "warn", f"SLACK_SIGNING_SECRET does not look like a Slack"
                       f" signing secret (32 hex characters; it has {len(secret)} characters):"
                       " requests to `flowbot web` would be refused (401)",
                       "copy the Signing Secret from Basic Information > App Credentials"
                       " (not the Client Secret or Verification Token)")
    return Finding("slack", "ok", "SLACK_SIGNING_SECRET set (32 hex characters): HTTP mode"
                   " (`flowbot web`) can verify requests")


def _channel(client: Any, where: str, channel: str, *, public_posts: bool) -> Finding:
    from slack_sdk.errors import SlackApiError

    try:
        info = client.conversations_info(channel=channel)["channel"]
    except SlackApiError as err:
        code = err.response.get("error", "error") if err.response is not None else "error"
        if code == "channel_not_found":
            return Finding("slack", "fail", f"{where}: channel {channel} not found (or private"
                           " and the bot is not in it)", f"check {where}; use the channel ID"
                           " (C...) from the channel's details")
        return Finding("slack", "fail", f"{where}: cannot read channel {channel} ({code})",
                       "check the bot's channels:read / groups:read scopes")
    name = info.get("name", channel)
    if not info.get("is_member", False) and public_posts and not info.get("is_private", False):
        return Finding("slack", "warn", f"{where}: the bot is not in #{name} ({channel}); it can"
                       " post there (chat:write.public) but the digest chart upload needs it in",
                       f"in #{name}, type /invite @Flowbot")
    if not info.get("is_member", False):
        return Finding("slack", "fail", f"{where}: the bot is not in #{name} ({channel})",
                       f"in #{name}, type /invite @Flowbot")
    return Finding("slack", "ok", f"{where}: bot is in #{name}")


def _jobs(store: Store, settings: Settings, now: datetime) -> list[Finding]:
    findings: list[Finding] = []
    try:
        names = store.job_names()
        workers = store.workers_seen()
        if workers:
            seen = ", ".join(f"{w} ({_ago(now - at)} ago)" for w, at in sorted(workers.items()))
            findings.append(Finding("jobs", "ok", f"{len(workers)} worker(s) running: {seen}"))
        else:
            findings.append(Finding("jobs", "warn", "no worker is running (no heartbeat in the"
                                    " last 90 s): nothing samples, alerts or posts digests",
                                    "start `flowbot worker` (or `flowbot run`)"))
        if not names:
            findings.append(Finding("jobs", "warn", "no job has run yet" + (
                "; the worker's first sample is under way" if workers else ""),
                "wait a minute and run doctor again" if workers else
                "start `flowbot worker` (or `flowbot run`), or run `flowbot sample` once"))
        for job in names:
            runs = store.job_runs(job, limit=1)
            if not runs:
                continue
            last = runs[0]
            when = f"{_ago(now - last.started_at)} ago"
            status: Status = "fail" if last.outcome == "failed" else (
                "warn" if last.outcome == "partial" else "ok")
            detail = f": {last.detail}" if last.detail else ""
            findings.append(Finding("jobs", status, f"{job}: last run {when}, {last.outcome}"
                                    f" in {last.seconds:.1f} s{detail}",
                                    "see the worker's log for the full error"))
        findings += _work(store, now)
        for problem in delivery_problems(store):
            where = "the workspace" if problem.channel == "*" else problem.channel
            findings.append(Finding(
                "slack", "fail",
                f"last post to {where} failed: {problem.code} ({problem.count}x, last"
                f" {_ago(now - problem.last_at)} ago)", problem.fix))
        stale_after = timedelta(minutes=3 * settings.schedules.sample_interval_minutes + 5)
        for team in settings.teams:
            snap = store.get_snapshot_head(team)
            if snap is None:
                findings.append(Finding("data", "warn", f"{team}: no snapshot yet",
                                        "run `flowbot sample` or start the worker"))
                continue
            age = now - snap.computed_at
            status = "ok" if age <= stale_after else "fail"
            findings.append(Finding("data", status, f"{team}: snapshot {_ago(age)} old",
                                    "the worker is not sampling: check `flowbot worker` is"
                                    " running and its log"))
        for repo in settings.repositories:
            cut = store.get_json("incomplete", repo) or []
            if cut:
                shown = ", ".join(f"#{n}" for n in cut[:5]) + (" ..." if len(cut) > 5 else "")
                findings.append(Finding(
                    "data", "warn", f"{repo}: {len(cut)} PR(s) with an incomplete history"
                    f" ({shown}): their clocks may be wrong",
                    f"`/flow why {repo}#{cut[0]}` says what GitHub left out; the PR is read"
                    " again in full when it next changes"))
    except StoreUnavailable as err:
        findings.append(Finding("redis", "fail", str(err), "check Redis"))
    return findings


def _work(store: Store, now: datetime) -> list[Finding]:
    """The work queue: depths, RQ workers alive, failed jobs (count and the newest's reason)."""
    from jobs import work

    state = work.status(store)
    workers = ", ".join(work.worker_label(w) for w in state.workers)
    findings = [Finding(
        "queue", "ok" if state.workers else "warn",
        f"work queue: {state.depth_line()}; " + (f"{len(state.workers)} worker(s) taking jobs:"
                                                 f" {workers}" if state.workers else "no worker takes jobs"),
        "start `flowbot worker` (more of them add capacity)")]
    if state.failed:
        newest = state.newest_failure
        when = f", {_ago(now - newest.at)} ago" if newest is not None and newest.at else ""
        what = f"; newest: {newest.description}{when}: {newest.reason}" if newest else ""
        findings.append(Finding(
            "queue", "warn", f"{state.failed} failed job(s) kept for 7 days{what}",
            f"see `rq info --url REDIS_URL {' '.join(work.queue_name(store, q) for q in work.QUEUES)}`"
            " and the worker's log; docs/operations.md says how to requeue them"))
    return findings


_LISTED = 20  # bad values named one by one; the rest are counted


def stored_data(store: Store, *, purge: bool = False) -> tuple[list[Finding], bool]:
    """The schema key and every stored value that does not decode (quarantined: Flowbot skips
    it), each with the command that removes it; with ``purge``, removes them first.

    Returns the findings and whether the data under the prefix can be read at all (False
    when the schema key is wrong: then nothing else is judged).
    """
    findings: list[Finding] = []
    try:
        if purge:
            removed = store.purge_quarantined()
            findings.append(Finding("data", "ok", f"removed {len(removed)} unreadable stored"
                                    " value(s)" + "".join(f"\n    {b.name}" for b in removed)))
        try:
            store.ensure_schema()
        except SchemaMismatch as err:
            return findings + [Finding("redis", "fail", str(err), _schema_fix(store, str(err)))], False
        bad = store.quarantine_list()
    except StoreUnavailable as err:
        return findings + [Finding("redis", "fail", str(err), "check Redis")], False
    if not bad:
        return findings + [Finding("data", "ok", "every stored value Flowbot checks decodes")], True
    cli = store.cli_command()
    lines = [(f"{len(bad)} stored value(s) do not decode; Flowbot skips them (each named with"
              " the command that removes it):")]
    for b in bad[:_LISTED]:
        lines.append(f"    {b.name}: {b.reason}")
        lines.append(f"      remove: {b.removal(cli)}")
    if len(bad) > _LISTED:
        lines.append(f"    and {len(bad) - _LISTED} more")
    return findings + [Finding("data", "warn", "\n".join(lines),
                               "`flowbot doctor --purge-bad` removes exactly these (each checked"
                               " again first); the next cycle writes what it needs anew")], True


def _schema_fix(store: Store, message: str) -> str:
    if "schema v" in message and "--purge-bad" not in message:  # another version's real data
        return ("run the Flowbot version that wrote this data, or give this one its own"
                " storage.prefix or Redis database")
    return (f"`flowbot doctor --purge-bad` resets it (or `{store.cli_command()} DEL"
            f" {store.prefix}:schema`); Flowbot then writes its version again")


HISTORY_SCOPES: tuple[str, ...] = ("channels:history", "groups:history", "im:history")


def history_scope_findings(have: set[str]) -> list[Finding]:
    """A warning when the bot cannot read history: after a post whose outcome was unknown
    (timeout, crash, Redis lost) it then posts again without looking, so it may post twice."""
    missing = [s for s in HISTORY_SCOPES if s not in have]
    if not missing:
        return []
    return [Finding("slack", "warn", f"bot lacks {', '.join(missing)}: after a timeout, a crash or"
                    " a loss of Redis an alert or digest may be posted twice",
                    "add them in the app's OAuth & Permissions page (or paste slack-manifest.yaml"
                    " again) and reinstall the app")]


def lock_findings(store: Store, settings: Settings, now: datetime) -> list[Finding]:
    """One line per held lock: who holds it (host, pid), since when; a warning when held
    longer than one sampling interval or when its holder is known to be gone (the next run
    takes such a lock over)."""
    from jobs.scheduler import LEADER_LOCK

    interval = timedelta(minutes=settings.schedules.sample_interval_minutes)
    try:
        held = store.held_locks()
    except StoreUnavailable as err:
        return [Finding("locks", "fail", str(err), "check Redis")]
    findings: list[Finding] = []
    for h in held:
        since = f" since {h.since:%Y-%m-%d %H:%M} UTC ({_ago(now - h.since)})" if h.since else ""
        lapse = (f", lapses in {h.expires_in.total_seconds():.0f} s unless renewed"
                 if h.expires_in is not None else ", never lapses by itself")
        summary = f"lock {h.name} held by {h.host} pid {h.pid}{since}{lapse}"
        if h.alive is False:
            findings.append(Finding("locks", "warn", summary + "; that process is gone",
                                    "nothing to do: the next run takes the lock over (or delete"
                                    f" the key {store.key('lock', h.name)})"))
        elif h.name == LEADER_LOCK and h.expires_in is not None:  # held for as long as it lives
            findings.append(Finding("locks", "ok", f"the active scheduler is {h.host} pid {h.pid}"
                                    f"{since} (lock {h.name}{lapse})"))
        elif h.expires_in is None or (h.since is not None and now - h.since > interval):
            findings.append(Finding("locks", "warn", summary, f"check that pid {h.pid} on {h.host}"
                                    " is a running Flowbot worker; if not, the lock lapses by"
                                    f" itself, or delete the key {store.key('lock', h.name)}"))
        else:
            findings.append(Finding("locks", "ok", summary))
    return findings


def webhook_findings(store: Store, settings: Settings, now: datetime) -> list[Finding]:
    """GitHub webhooks: off (polling only), or the last delivery of each hook or App
    installation (time, event, outcome) and the last one refused before it was verified."""
    secrets = len(settings.secrets.github_webhook_secrets)
    try:
        seen = store.webhook_deliveries()
    except StoreUnavailable as err:
        return [Finding("webhooks", "fail", str(err), "check Redis")]
    if not secrets:
        return [Finding("webhooks", "ok", "off (GITHUB_WEBHOOK_SECRET not set): changes arrive"
                        " with the next sample")]
    findings: list[Finding] = []
    refused = seen.pop("refused", None)
    if not seen:
        findings.append(Finding(
            "webhooks", "warn", f"{secrets} secret(s) set but no delivery verified yet",
            "point the hook at https://<host>/github/webhook with content type application/json"
            " and the same secret, then use its Redeliver or ping (docs/operations.md, GitHub webhooks)"))
    for hook, last in seen.items():
        at = _when(last.get("at"))
        ago = f"{_ago(now - at)} ago" if at else "at an unknown time"
        findings.append(Finding("webhooks", "ok", f"{hook}: last delivery {ago}, {last.get('event')}:"
                                f" {last.get('outcome')}"))
    if refused is not None:
        at = _when(refused.get("at"))
        newest = max((w for v in seen.values() if (w := _when(v.get("at")))), default=None)
        if at is not None and (newest is None or at >= newest):
            findings.append(Finding(
                "webhooks", "warn", f"the last delivery ({_ago(now - at)} ago, {refused.get('event')})"
                f" was {refused.get('outcome')}",
                "forged or unsigned: the hook's secret differs from GITHUB_WEBHOOK_SECRET (or the"
                " request is not GitHub's); content_type: set the hook to application/json"))
    return findings


def _when(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _header(headers: Mapping[str, Any] | None, name: str) -> str | None:
    if not headers:
        return None
    for key, value in headers.items():
        if key.lower() == name:
            return value[0] if isinstance(value, list) else str(value)
    return None


def _ago(delta: timedelta) -> str:
    seconds = max(0.0, delta.total_seconds())
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"
