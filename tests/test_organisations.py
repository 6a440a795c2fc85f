"""Several GitHub organisations: each read with its own credentials and so its own budget;
budgets shared by every worker through Redis. The sandbox serves two organisations on one
loopback server; PyGithub and Redis are real; nothing sleeps for real."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest

from bot.config import from_mapping
from jobs.cycle import run_cycle
from jobs.errors import ConfigError, GitHubError
from jobs.github.connections import connect_all
from jobs.ports import FixedClock
from jobs.sandbox.org import Org, build_org
from jobs.sandbox.server import SandboxServer
from jobs.settings import Settings
from jobs.store import Store

END = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
DAYS = 20


@pytest.fixture(scope="module")
def orgs() -> tuple[Org, Org]:
    return (build_org(end=END, weeks=3, teams=1, repos_per_team=2),
            build_org(end=END, weeks=3, teams=1, repos_per_team=1, name="labs", seed=11))


@pytest.fixture
def server(orgs: tuple[Org, Org]) -> Iterator[SandboxServer]:
    acme, labs = orgs
    server = SandboxServer(acme, clock=FixedClock(END), others=(labs,),
                           tokens={"labs": "labs-token"})
    server.start()
    yield server
    server.stop()


def mapping(orgs: tuple[Org, Org], base_url: str, **labs: Any) -> dict[str, Any]:
    """Team ``payments`` on acme's repositories (bare names), team ``research`` on labs'."""
    acme, labs_org = orgs
    config = acme.config(base_url)
    config["github"]["organisations"] = {"labs": labs}
    config["github"]["timeout_seconds"] = 10
    team = labs_org.teams[0]
    config["teams"]["research"] = {
        "members": [{"github": m.login} for m in team.members],
        "repositories": [f"labs/{r}" for r in team.repos], "channel": "C0RESEARCH",
    }
    return config


def settings_for(orgs: tuple[Org, Org], server: SandboxServer, env: dict[str, str],
                 **labs: Any) -> Settings:
    return from_mapping(mapping(orgs, server.base_url, **labs), env=env)


def spent(server: SandboxServer, token: str) -> int:
    return server.bucket(token).used + server.bucket(token, "graphql").used


def test_each_organisation_is_read_with_its_own_token(
        orgs: tuple[Org, Org], server: SandboxServer, store: Store) -> None:
    """A team may name repositories of another organisation; each organisation's requests
    are charged to its own token, and both organisations' PRs are stored."""
    env = {"GITHUB_TOKEN": server.token, "GITHUB_TOKEN_LABS": "labs-token"}
    settings = settings_for(orgs, server, env)
    connections = connect_all(settings, store=store, sleep=lambda _s: None, clock=FixedClock(END))
    report = run_cycle(settings, store, connections, clock=FixedClock(END), days=DAYS)
    assert report.errors == () and report.complete
    labs_repo = f"labs/{orgs[1].teams[0].repos[0]}"
    assert store.get_prs(labs_repo) and store.get_prs(settings.full_repo(orgs[0].teams[0].repos[0]))
    assert spent(server, "labs-token") > 0 and spent(server, server.token) > 0
    assert len(connections.sources()) == 2


def test_organisations_without_a_token_of_their_own_share_the_main_one(
        orgs: tuple[Org, Org], server: SandboxServer, store: Store) -> None:
    """Without GITHUB_TOKEN_LABS, labs is read with GITHUB_TOKEN: one connection, one budget."""
    settings = settings_for(orgs, server, {"GITHUB_TOKEN": server.token})
    connections = connect_all(settings, store=store, sleep=lambda _s: None, clock=FixedClock(END))
    report = run_cycle(settings, store, connections, clock=FixedClock(END), days=DAYS)
    assert report.errors == () and len(connections.sources()) == 1
    assert spent(server, "labs-token") == 0


def test_a_spent_budget_stops_only_its_own_organisation(
        orgs: tuple[Org, Org], server: SandboxServer, store: Store) -> None:
    """labs' token is nearly spent: labs' repositories wait for the next cycle, acme's are
    read in full."""
    env = {"GITHUB_TOKEN": server.token, "GITHUB_TOKEN_LABS": "labs-token"}
    settings = settings_for(orgs, server, env)
    server.spend("labs-token", "graphql", 4990)
    server.spend("labs-token", "core", 4990)
    connections = connect_all(settings, store=store, sleep=lambda _s: None, clock=FixedClock(END))
    report = run_cycle(settings, store, connections, clock=FixedClock(END), days=DAYS)
    by_repo = {r.repo: r for r in report.repos}
    labs = [r for name, r in by_repo.items() if name.startswith("labs/")]
    acme = [r for name, r in by_repo.items() if name.startswith("acme/")]
    assert labs and not any(r.complete for r in labs)
    assert acme and all(r.complete and r.error is None for r in acme)


def test_github_app_reads_each_organisation_through_its_installation(
        orgs: tuple[Org, Org], server: SandboxServer, store: Store) -> None:
    """As a GitHub App, each organisation is read through its own installation (its own
    rate limit): one installation token per organisation."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    env = {"GITHUB_APP_ID": "123", "GITHUB_APP_PRIVATE_KEY": pem,
           "GITHUB_APP_INSTALLATION_ID": "4242"}
    with pytest.raises(ConfigError, match=r"github\.organisations\.labs\.installation_id: required"):
        settings_for(orgs, server, env)
    settings = settings_for(orgs, server, env, installation_id=server.installation_id(orgs[1]))
    connections = connect_all(settings, store=store, sleep=lambda _s: None, clock=FixedClock(END))
    report = run_cycle(settings, store, connections, clock=FixedClock(END), days=DAYS)
    assert report.errors == () and report.complete
    tokens = [r.path for r in server.stats.requests if r.path.endswith("/access_tokens")]
    assert sorted(tokens) == ["/app/installations/4242/access_tokens",
                              "/app/installations/4243/access_tokens"]
    wrong = settings_for(orgs, server, env, installation_id=999)
    report = run_cycle(wrong, store, connect_all(wrong, store=store, sleep=lambda _s: None,
                                                 clock=FixedClock(END)), clock=FixedClock(END))
    labs = [r for r in report.repos if r.repo.startswith("labs/")]
    assert labs and all("github.organisations.labs.installation_id" in (r.error or "")
                        for r in labs)


def test_workers_on_one_token_stay_within_its_share(
        orgs: tuple[Org, Org], server: SandboxServer, store: Store) -> None:
    """Three workers backfilling at once on one token spend, together, no more than the
    configured share of its limit (counted by the sandbox)."""
    settings = settings_for(orgs, server, {"GITHUB_TOKEN": server.token})
    settings = settings.model_copy(update={"github": settings.github.model_copy(
        update={"budget_share": 0.004})})  # 20 points of each resource's 5,000
    reports = []

    def work() -> None:
        connections = connect_all(settings, store=store, sleep=lambda _s: None,
                                  clock=FixedClock(END), page_size=5)
        reports.append(run_cycle(settings, store, connections, clock=FixedClock(END), days=DAYS))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(reports) == 3 and not all(r.complete for r in reports)
    assert server.bucket(server.token, "graphql").used <= 20
    assert server.bucket(server.token).used <= 20


def test_config_names_each_organisation_problem() -> None:
    """Organisation problems are named by key path: the main organisation listed again, a
    name GitHub would not accept, a token written into the file."""
    teams = {"t": {"members": [{"github": "a"}], "repositories": ["r"], "channel": "C1"}}
    base = {"github": {"organisation": "acme", "organisations": {
        "bad name": {}, "labs": {"token": "x", "all_repositories": True}}}, "teams": teams}
    with pytest.raises(ConfigError) as err:
        from_mapping(base, env={})
    text = str(err.value)
    assert "github.organisations: 'bad name' is not a GitHub organisation name" in text
    assert "github.organisations.labs.token: secrets are read from the environment only" in text
    again = {"github": {"organisation": "acme", "organisations": {"ACME": {}}}, "teams": teams}
    with pytest.raises(ConfigError, match=r"github\.organisations\.ACME: 'ACME' is the main"):
        from_mapping(again, env={})


def test_an_organisation_without_credentials_is_named() -> None:
    """No token and no App: connecting says which variables to set."""
    settings = from_mapping({"github": {"organisation": "acme", "organisations": {"labs": {}}},
                             "teams": {"t": {"members": [{"github": "a"}], "repositories": ["r"],
                                             "channel": "C1"}}}, env={})
    with pytest.raises(GitHubError, match="no GitHub credentials"):
        connect_all(settings)
