"""flowbot doctor: passes on a healthy setup, names each problem and its fix otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from slack_sdk import WebClient

from bot import config
from bot.doctor import DoctorDeps, Finding, diagnose, exit_code, render
from jobs.errors import StoreUnavailable
from jobs.github.client import connect
from jobs.github.probe import probe
from jobs.ports import FixedClock
from jobs.sandbox import SandboxServer, build_org
from jobs.settings import Settings
from jobs.snapshot import refresh_all
from jobs.store import JobRun, Store
from tests.fakes.github_like import GitHubLike
from tests.fakes.slack_api import DEFAULT_APP_TOKEN, FakeSlack

END = datetime(2026, 3, 20, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    org = build_org(end=END, weeks=2)
    with SandboxServer(org, clock=FixedClock(END)) as server:
        yield server


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


def _settings(sandbox: SandboxServer, token: str = "sandbox-token", **env: str) -> Settings:
    data = sandbox.org.config(sandbox.base_url)
    return config.from_mapping(data, env={"GITHUB_TOKEN": token, "SLACK_BOT_TOKEN": "xoxb-fake",
                                          "SLACK_APP_TOKEN": DEFAULT_APP_TOKEN, **env})


def _deps(sandbox: SandboxServer, slack: FakeSlack, store: Store, *, token: str = "sandbox-token",
          slack_token: str | None = None, store_up: bool = True, **env: str) -> DoctorDeps:
    def connect_store(_settings: Settings) -> Store:
        if not store_up:
            raise StoreUnavailable("Redis unreachable (redis://127.0.0.1:1/0): connection refused")
        return store

    def probe_github(settings: Settings) -> Any:
        return probe(settings, connect(settings, sleep=lambda _s: None))

    return DoctorDeps(
        load_settings=lambda: _settings(sandbox, token, **env),
        connect_store=connect_store,
        probe_github=probe_github,
        slack_client=lambda _s: WebClient(base_url=slack.api_url, token=slack_token or slack.token),
        now=lambda: END,
    )


def _healthy(store: Store, settings: Settings, slack: FakeSlack, *, private: bool = False,
             snapshots_at: datetime = END - timedelta(minutes=2)) -> None:
    for team in settings.teams.values():
        slack.add_channel(team.channel, name=team.channel.lower(), private=private)
    store.record_run(JobRun("sample", END - timedelta(minutes=3), 1.2, "ok"))
    refresh_all(settings, store, now=snapshots_at)


def _failed(findings: list[Finding]) -> str:
    return "\n".join(f"{f.summary} | {f.fix}" for f in findings if f.status == "fail")


def test_healthy_setup_passes(sandbox: SandboxServer, slack: FakeSlack, store: Store) -> None:
    """Valid config, Redis, GitHub, Slack, a recent run and fresh snapshots: exit code 0."""
    _healthy(store, _settings(sandbox), slack)
    findings = diagnose(_deps(sandbox, slack, store))
    assert exit_code(findings) == 0, render(findings)
    text = render(findings)
    assert "authenticated as" in text and "bot is in #" in text


def test_bad_github_token_is_named_with_its_fix(sandbox: SandboxServer, slack: FakeSlack,
                                                 store: Store) -> None:
    """A token GitHub refuses fails the GitHub check and says how to make a new one."""
    _healthy(store, _settings(sandbox), slack)
    findings = diagnose(_deps(sandbox, slack, store, token="ghp_wrong"))
    assert exit_code(findings) == 1
    assert "GitHub refused the credentials" in _failed(findings)
    assert "GITHUB_TOKEN" in _failed(findings)


def test_missing_channel_membership_says_invite(sandbox: SandboxServer, slack: FakeSlack,
                                                store: Store) -> None:
    """A private channel the bot is not in fails with the /invite fix; the others still pass."""
    settings = _settings(sandbox)
    _healthy(store, settings, slack, private=True)
    first = next(iter(settings.teams.values())).channel
    slack.set_bot_channels({t.channel for t in settings.teams.values() if t.channel != first})
    findings = diagnose(_deps(sandbox, slack, store))
    failed = _failed(findings)
    assert f"the bot is not in #{first.lower()}" in failed
    assert "/invite @Flowbot" in failed
    assert sum("bot is in #" in f.summary for f in findings if f.status == "ok") == len(settings.teams) - 1


def test_public_channel_without_the_bot_is_a_warning(sandbox: SandboxServer, slack: FakeSlack,
                                                     store: Store) -> None:
    """With chat:write.public the bot can post to a public channel it is not in: a warning."""
    settings = _settings(sandbox)
    _healthy(store, settings, slack)
    first = next(iter(settings.teams.values())).channel
    slack.set_bot_channels({t.channel for t in settings.teams.values() if t.channel != first})
    findings = diagnose(_deps(sandbox, slack, store))
    warned = [f for f in findings if f.status == "warn" and first in f.summary]
    assert warned and "chart upload" in warned[0].summary
    assert exit_code(findings) == 0


def test_bad_slack_token_and_redis_down(sandbox: SandboxServer, slack: FakeSlack,
                                        store: Store) -> None:
    """An invalid Slack token and an unreachable Redis are both reported, each with a fix."""
    findings = diagnose(_deps(sandbox, slack, store, slack_token="xoxb-revoked", store_up=False))
    failed = _failed(findings)
    assert "Slack refused the bot token (invalid_auth)" in failed
    assert "Redis unreachable" in failed and "REDIS_URL" in failed
    assert exit_code(findings) == 1


def test_stale_snapshot_and_failed_job_fail(sandbox: SandboxServer, slack: FakeSlack,
                                            store: Store) -> None:
    """A snapshot hours old and a failed last run point at the worker."""
    settings = _settings(sandbox)
    _healthy(store, settings, slack, snapshots_at=END - timedelta(hours=5))
    store.record_run(JobRun("sample", END - timedelta(minutes=1), 0.4, "failed", "GitHub 502"))
    failed = _failed(findings := diagnose(_deps(sandbox, slack, store)))
    assert "sample: last run" in failed and "GitHub 502" in failed
    assert "snapshot 5.0 h old" in failed and "flowbot worker" in failed
    assert exit_code(findings) == 1


def test_config_problems_stop_early_with_key_paths(sandbox: SandboxServer, slack: FakeSlack,
                                                   store: Store) -> None:
    """Without a valid config doctor reports the key paths and checks nothing else."""
    def bad() -> Settings:
        data = sandbox.org.config(sandbox.base_url)
        next(iter(data["teams"].values()))["timezone"] = "Mars/Base"
        return config.from_mapping(data, env={})

    deps = _deps(sandbox, slack, store)
    findings = diagnose(DoctorDeps(bad, deps.connect_store, deps.probe_github, deps.slack_client,
                                   deps.now))
    assert len(findings) == 1 and "unknown time zone 'Mars/Base'" in findings[0].summary


def test_unreachable_github_is_not_called_a_refused_token(sandbox: SandboxServer, slack: FakeSlack,
                                                          store: Store) -> None:
    """GitHub refusing connections points at github.base_url and the network, not at the token."""
    import socket

    with socket.socket() as sock:  # a port nothing listens on: connections are refused
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"

    def unreachable() -> Settings:
        data = sandbox.org.config(closed)
        return config.from_mapping(data, env={"GITHUB_TOKEN": "sandbox-token"})

    deps = _deps(sandbox, slack, store)
    findings = diagnose(DoctorDeps(unreachable, deps.connect_store, deps.probe_github,
                                   deps.slack_client, deps.now))
    [github] = [f for f in findings if f.area == "github"]
    assert github.status == "fail"
    assert github.summary.startswith(f"GitHub unreachable at {closed}") and "ConnectionError" in github.summary
    assert "github.base_url" in github.fix and "network" in github.fix
    assert "refused the credentials" not in render(findings) and "new token" not in render(findings)


def test_doctor_without_a_config_file_says_to_copy_the_example(tmp_path: Any) -> None:
    """`flowbot doctor` with no config file says to copy config.example.toml there, nothing
    about keys."""
    from typer.testing import CliRunner

    from bot.cli import app

    missing = tmp_path / "config.toml"
    result = CliRunner().invoke(app, ["doctor", "--config", str(missing)])
    assert result.exit_code == 1, result.output
    assert f"[FAIL] config: no config file at {missing}" in result.output
    assert f"fix: copy config.example.toml to {missing} and edit it" in result.output
    assert "key" not in result.output


# ----------------------------------------------------------------------------- Slack inbound


def _slack_lines(findings: list[Finding]) -> str:
    return "\n".join(f"{f.status} {f.summary} | {f.fix}" for f in findings if f.area == "slack")


def test_app_token_is_checked_with_slack_and_by_its_shape(sandbox: SandboxServer, slack: FakeSlack,
                                                          store: Store) -> None:
    """SLACK_APP_TOKEN: a valid one passes, a refused one or a bot token in its place fails."""
    _healthy(store, _settings(sandbox), slack)
    assert "ok SLACK_APP_TOKEN valid: Socket Mode" in _slack_lines(diagnose(_deps(sandbox, slack, store)))
    refused = _slack_lines(diagnose(_deps(sandbox, slack, store, SLACK_APP_TOKEN="xapp-1-revoked")))
    assert "fail Slack refused SLACK_APP_TOKEN (invalid_auth)" in refused and "App-Level Tokens" in refused
    swapped = _slack_lines(diagnose(_deps(sandbox, slack, store, SLACK_APP_TOKEN=slack.token)))
    assert "fail SLACK_APP_TOKEN is a bot token; Socket Mode needs an app-level token" in swapped
    assert slack.token not in swapped


def test_signing_secret_is_checked_by_its_shape(sandbox: SandboxServer, slack: FakeSlack,
                                                store: Store) -> None:
    """SLACK_SIGNING_SECRET: 32 hex characters pass; a token or another secret in its place is said."""
    _healthy(store, _settings(sandbox), slack)
    good = _slack_lines(diagnose(_deps(sandbox, slack, store, SLACK_SIGNING_SECRET="0123456789abcdef" * 2)))
    assert "ok SLACK_SIGNING_SECRET set" in good
    token = _slack_lines(diagnose(_deps(sandbox, slack, store, SLACK_SIGNING_SECRET="xoxb-1-2")))
    assert "fail SLACK_SIGNING_SECRET holds a token, not the signing secret" in token
    odd = _slack_lines(diagnose(_deps(sandbox, slack, store, SLACK_SIGNING_SECRET="not-the-secret")))
    assert "warn SLACK_SIGNING_SECRET does not look like a Slack signing secret" in odd
    assert "not-the-secret" not in odd


def test_no_way_for_slack_to_reach_flowbot_fails(sandbox: SandboxServer, slack: FakeSlack,
                                                 store: Store) -> None:
    """Neither SLACK_APP_TOKEN nor SLACK_SIGNING_SECRET: doctor fails naming both modes."""
    settings = _settings(sandbox)
    _healthy(store, settings, slack)
    deps = _deps(sandbox, slack, store)
    bare = settings.model_copy(update={"secrets": settings.secrets.model_copy(
        update={"slack_app_token": None})})
    findings = diagnose(DoctorDeps(lambda: bare, deps.connect_store, deps.probe_github,
                                   deps.slack_client, deps.now))
    assert "neither SLACK_APP_TOKEN nor SLACK_SIGNING_SECRET is set" in _failed(findings)
    assert exit_code(findings) == 1


# ----------------------------------------------------------------------------- GitHub refusals


def _github_findings(sandbox: SandboxServer, github: GitHubLike) -> list[Finding]:
    from bot.doctor import _github

    settings = config.from_mapping(sandbox.org.config(github.url), env={"GITHUB_TOKEN": "ghp_fake"})
    deps = DoctorDeps(lambda: settings, lambda _s: None,  # type: ignore[arg-type,return-value]
                      lambda s: probe(s, connect(s, sleep=lambda _s: None)), lambda _s: None,
                      lambda: END)
    return _github(deps, settings)


def test_a_bad_github_token_is_called_bad_not_short_of_a_scope(sandbox: SandboxServer) -> None:
    """A 401 says the token is wrong, expired or revoked, even when GitHub lists accepted scopes."""
    with GitHubLike({"/user": (401, {"message": "Bad credentials"})}, scopes=None) as github:
        [finding] = _github_findings(sandbox, github)
    assert finding.status == "fail" and "401 Bad credentials" in finding.summary
    assert "wrong, expired or revoked" in finding.summary and "wrong, expired or revoked" in finding.fix
    assert "scope repo" not in finding.summary


def test_a_missing_repository_is_called_missing_and_a_missing_scope_missing(sandbox: SandboxServer) -> None:
    """A 404 with every scope granted says not found; the same 404 without `repo` says the scope."""
    first, *others = _settings(sandbox).repositories
    routes = {"/user": (200, {"login": "octo"}), **{f"/repos/{r}": (200, {"archived": False})
                                                    for r in others}}
    with GitHubLike(routes, scopes="repo, read:org") as github:
        failed = [f for f in _github_findings(sandbox, github) if f.status == "fail"]
    assert len(failed) == 1 and failed[0].summary.startswith(
        f"{first}: not found, or the token cannot see it")
    assert "needs" not in failed[0].summary and "spelling" in failed[0].fix
    with GitHubLike(routes, scopes="read:org") as github:
        failed = [f for f in _github_findings(sandbox, github) if f.status == "fail"]
    assert failed[0].summary == "token lacks scope(s): repo"
    assert failed[1].summary.startswith(f"{first}: not readable: needs token scope repo, which the token lacks")
    assert "create a new token with scope repo" in failed[1].fix


def test_doctor_says_whether_a_worker_is_running(sandbox: SandboxServer, slack: FakeSlack,
                                                 store: Store) -> None:
    """No heartbeat: doctor warns nothing samples; a worker's heartbeat: it names the worker."""
    _healthy(store, _settings(sandbox), slack)
    none = render(diagnose(_deps(sandbox, slack, store)))
    assert "[WARN] jobs: no worker is running" in none and "start `flowbot worker`" in none
    store.beat("box:42", at=END - timedelta(seconds=30), ttl=timedelta(seconds=90))
    one = render(diagnose(_deps(sandbox, slack, store)))
    assert "[PASS] jobs: 1 worker(s) running: box:42 (30 s ago)" in one


def test_doctor_reports_the_work_queue_and_its_failed_jobs(sandbox: SandboxServer, slack: FakeSlack,
                                                           store: Store) -> None:
    """Queue depths, whether any worker takes jobs, and a failed job with its reason."""
    from jobs import work
    from tests.test_work import retry_until_failed

    _healthy(store, _settings(sandbox), slack)
    assert "[WARN] queue: work queue: refresh 0 · sync 0 · digests 0 · teams 0; no worker takes jobs" \
        in render(diagnose(_deps(sandbox, slack, store)))
    work.install(None)  # a job run where no worker context was wired fails
    work.enqueue_repo_sync(store, "acme/api", reason="test")
    work.run_burst(store)
    retry_until_failed(store, work.SYNC)
    text = render(diagnose(_deps(sandbox, slack, store)))
    assert "[WARN] queue: 1 failed job(s) kept for 7 days; newest: sync acme/api (test)" in text
    assert "no work context installed" in text and "rq info --url" in text
