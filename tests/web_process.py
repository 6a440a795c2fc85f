"""The Procfile's ``web`` command as a real process on a free loopback port (tests and benches).

The command is read from the Procfile itself, so what is tested and measured is what a
deployment runs. It is started in a session of its own and stopped with SIGTERM (gunicorn's
graceful stop), then SIGKILL to the whole group if it lingers.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.processes import free_port

ROOT = Path(__file__).resolve().parent.parent


def procfile_command(kind: str = "web") -> str:
    """The Procfile's command line for ``kind``."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == kind:
            return command.strip()
    raise LookupError(f"Procfile has no {kind!r} process")


@dataclass
class WebProcess:
    """A running ``flowbot web``: its port, process, and what it wrote to stderr so far."""

    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def worker_pids(self) -> list[int]:
        """The gunicorn workers' pids (children of the master)."""
        out = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True, check=False)
        return [int(p) for p in out.stdout.split()]


@contextmanager
def procfile_web(env: Mapping[str, str], *, args: Sequence[str] = (), ready: float = 30.0,
                 healthy: bool = False) -> Iterator[WebProcess]:
    """Start the Procfile's web command with ``env`` (plus HOST and PORT for loopback, PATH to
    this interpreter's scripts, PYTHONPATH to this tree) and ``args`` appended; yields once /healthz answers
    (200 when ``healthy``, else any status)."""
    port = free_port()
    bin_dir = str(Path(sys.executable).parent)
    full = {**env, "HOST": "127.0.0.1", "PORT": str(port),
            "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}", "PYTHONPATH": str(ROOT)}
    command = procfile_command("web")
    with tempfile.TemporaryDirectory(prefix="flowbot-web-") as tmp:
        log_path = Path(tmp) / "stderr.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(["bash", "-c", f"exec {command} {' '.join(args)}"], env=full,
                                       stdout=log, stderr=log, start_new_session=True)
        web = WebProcess(port, process, log_path)
        try:
            _wait(web, ready, healthy=healthy)
            yield web
        finally:
            _stop(process)


def _wait(web: WebProcess, seconds: float, *, healthy: bool) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if web.process.poll() is not None:
            raise RuntimeError(f"flowbot web exited with {web.process.returncode}:\n{web.log()}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=2)
            conn.request("GET", "/healthz")
            status = conn.getresponse().status
            conn.close()
            if status == 200 or not healthy:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"flowbot web not ready within {seconds:.0f} s:\n{web.log()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)  # gunicorn: quick shutdown (TERM waits for workers)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
