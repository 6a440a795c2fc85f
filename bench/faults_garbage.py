"""Fault rows: garbage under Flowbot's key prefix, against real processes.

Starts a redis-server of its own on a free loopback port and the sandbox GitHub, fills the
store with one real ``flowbot backfill``, then for each kind of garbage (a wrong schema key, a
bad job-run record, alert state ``[1,2,3]``, keys of the wrong Redis type, one invalid PR
record, ...) plants it, runs ``flowbot doctor``, ``flowbot sample``, ``flowbot digest --print``
and ``flowbot report --sandbox`` as subprocesses, and reports per kind whether every command
answered without a traceback, whether doctor named the bad key with its removal command, and
whether the other teams' snapshots were still computed. ``flowbot doctor --purge-bad`` then
removes what was planted, and the next ``flowbot sample`` must be clean.

    .venv/bin/python bench/faults.py garbage
    .venv/bin/python bench/faults_garbage.py          # the same rows, alone
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.faults import FaultRow  # after the path is set
from tests.processes import config_toml, redis_server

PREFIX = "flowbot"
ALL = "*"  # garbage that stops every team (a wrong schema key: nothing is read or written)


@dataclass(frozen=True)
class Garbage:
    """One kind of garbage: its name, what to plant (a redis client callable), the key
    doctor must name, and the team whose data it spoils (None: no team's)."""

    name: str
    plant: Callable[[Any], object]
    key: str
    spoils: str | None = None


def _kinds(repo: str, team: str) -> list[Garbage]:
    k = f"{PREFIX}:v1"
    return [
        Garbage("schema key holds 'v1'", lambda r: r.set(f"{PREFIX}:schema", "v1"),
                f"{PREFIX}:schema", ALL),
        Garbage("schema key is a hash", lambda r: (r.delete(f"{PREFIX}:schema"),
                                                   r.hset(f"{PREFIX}:schema", "v", "1")),
                f"{PREFIX}:schema", ALL),
        Garbage("bad job-run record", lambda r: r.lpush(f"{k}:runs:sample", b"{not json"),
                f"{k}:runs:sample"),
        Garbage("alert state [1,2,3]", lambda r: r.set(f"{k}:alerts:{team}:state", "[1,2,3]"),
                f"{k}:alerts:{team}:state"),
        Garbage("WRONGTYPE: PR records a string", lambda r: (r.delete(f"{k}:prs:{repo}"),
                                                             r.set(f"{k}:prs:{repo}", "x")),
                f"{k}:prs:{repo}", team),
        Garbage("WRONGTYPE: job runs a hash", lambda r: (r.delete(f"{k}:runs:sample"),
                                                         r.hset(f"{k}:runs:sample", "a", "b")),
                f"{k}:runs:sample"),
        Garbage("WRONGTYPE: queue samples a string", lambda r: (r.delete(f"{k}:queue:{team}"),
                                                                r.set(f"{k}:queue:{team}", "x")),
                f"{k}:queue:{team}"),
        Garbage("WRONGTYPE: snapshot a list", lambda r: (r.delete(f"{k}:snapshot:{team}"),
                                                         r.rpush(f"{k}:snapshot:{team}", "x")),
                f"{k}:snapshot:{team}"),
        Garbage("one invalid PR record", lambda r: r.hset(f"{k}:prs:{repo}", "999999",
                                                          '{"number": "x"}'),
                f"{k}:prs:{repo}"),
        Garbage("rerun backlog [1,2,3]", lambda r: r.set(f"{k}:reruns:{repo}", "[1,2,3]"),
                f"{k}:reruns:{repo}"),
        Garbage("cursor not JSON", lambda r: r.set(f"{k}:cursor:{repo}", b"\xff\xfe"),
                f"{k}:cursor:{repo}"),
    ]


@dataclass
class Outcome:
    command: str
    code: int
    out: str

    @property
    def traceback(self) -> bool:
        return "Traceback (most recent call last)" in self.out


def run() -> list[FaultRow]:
    """One row per kind of garbage (see the module docstring)."""
    import redis

    from jobs.ports import FixedClock
    from jobs.sandbox import SandboxServer, build_org
    from jobs.store import Store

    rows: list[FaultRow] = []
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    org = build_org(end=end, weeks=2)
    with tempfile.TemporaryDirectory(prefix="flowbot-garbage-") as tmp_name, \
            SandboxServer(org, clock=FixedClock(end)) as server, \
            redis_server(Path(tmp_name)) as url:
        tmp = Path(tmp_name)
        mapping = org.config(server.base_url)
        mapping["github"]["retention_days"] = 730
        config = tmp / "flowbot.toml"
        config.write_text(config_toml(mapping, storage=f'[storage]\nprefix = "{PREFIX}"\n'))
        env = {**os.environ, "GITHUB_TOKEN": server.token, "REDIS_URL": url,
               "PYTHONPATH": str(ROOT), "FLOWBOT_CONFIG": str(config)}
        for var in ("SLACK_BOT_TOKEN", "SLACK_API_URL"):
            env.pop(var, None)

        def flowbot(*args: str) -> Outcome:
            proc = subprocess.run([sys.executable, "-m", "bot.cli", *args], env=env,
                                  capture_output=True, text=True, timeout=600, check=False)
            return Outcome(" ".join(args), proc.returncode, proc.stdout + proc.stderr)

        filled = flowbot("backfill", "--days", "14")
        if filled.code != 0:
            rows.append(FaultRow("garbage: setup (backfill)", "exit 0", filled.out[-200:], False))
            return rows
        client = redis.Redis.from_url(url)
        store = Store(client, prefix=PREFIX)
        teams = list(mapping["teams"])
        team = teams[0]
        repo = f"{org.name}/{mapping['teams'][team]['repositories'][0]}"
        clean: dict[Any, Any] = {k: client.dump(k) for k in client.scan_iter(f"{PREFIX}:*")}
        for kind in _kinds(repo, team):
            started = time.monotonic()
            client.flushdb()
            for key, dumped in clean.items():
                client.restore(key, 0, dumped, replace=True)
            # a team's snapshot is computed again only when its inputs changed (jobs.snapshot):
            # forget what each was computed from, so the sample below must compute every team
            # it can, and "other teams computed" is a fact about this run
            for name in teams:
                client.delete(store.key("snapshot_inputs", name))
            kind.plant(client)
            planted = datetime.now(UTC).replace(microsecond=0)
            outcomes = [flowbot("doctor"), flowbot("sample"),
                        flowbot("digest", "--team", teams[-1], "--print"),
                        flowbot("report", "--sandbox", "--days", "7")]
            tracebacks = [o.command.split()[0] for o in outcomes if o.traceback]
            doctor = outcomes[0].out
            named = kind.key in doctor
            if kind.spoils == ALL:  # refused with what was found and what to do
                others = kind.key in outcomes[1].out and "purge-bad" in outcomes[1].out
            else:
                others = _snapshots(store, teams, but=kind.spoils, since=planted)
            purged = flowbot("doctor", "--purge-bad")
            after = flowbot("sample")
            healed = not after.traceback and after.code == 0 and kind.key not in flowbot("doctor").out
            ok = not tracebacks and named and others and healed
            observed = (f"tracebacks: {', '.join(tracebacks) or 'none'}; doctor names the key:"
                        f" {'yes' if named else 'no'}; other teams computed: {'yes' if others else 'no'};"
                        f" clean after --purge-bad: {'yes' if healed else 'no'}")
            if not ok:
                observed += f" [doctor: {_tail(doctor)}; purge: {_tail(purged.out)}]"
            rows.append(FaultRow(f"garbage: {kind.name}",
                                 "no traceback; named; others computed", observed, ok,
                                 time.monotonic() - started))
        client.close()
    return rows


def _snapshots(store: Any, teams: list[str], *, but: str | None, since: datetime) -> bool:
    """Every team's snapshot (but ``but``'s) was computed at or after ``since``."""
    for team in teams:
        if team == but:
            continue
        snap = store.get_snapshot(team)
        if snap is None or snap.computed_at < since:
            return False
    return True


def _tail(text: str) -> str:
    lines = [x for x in text.strip().splitlines() if x.strip()]
    return " / ".join(lines[-3:])[:300]


if __name__ == "__main__":
    for row in run():
        print(f"{row.fault:<40} | {'ok' if row.ok else 'NO'} | {row.observed} ({row.seconds:.0f} s)")
