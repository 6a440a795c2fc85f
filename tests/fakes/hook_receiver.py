"""A loopback webhook target that records every delivery, for the sandbox's webhook tests.

``HookReceiver()`` serves on 127.0.0.1 port 0; ``url`` is where to point a hook. Each POST is
kept (headers as sent, raw body) and answered ``status``; with ``gate`` set, answers wait until
the gate opens (a slow receiver).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    """One delivery as it arrived."""

    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> str:
        return self.headers["X-GitHub-Event"]

    @property
    def guid(self) -> str:
        return self.headers["X-GitHub-Delivery"]

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def kind(self) -> str:
        """``event.action`` (``event`` alone when it has no action)."""
        action = self.json().get("action")
        return f"{self.event}.{action}" if action else self.event


class HookReceiver:
    """Records deliveries (module docstring)."""

    def __init__(self, *, status: int = 200) -> None:
        self.status = status
        self.received: list[Received] = []
        self.gate = threading.Event()
        self.gate.set()
        self.waiting = threading.Semaphore(0)  # released once per delivery held at the gate
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if not outer.gate.is_set():
                    outer.waiting.release()
                    outer.gate.wait(30)
                outer.received.append(Received(dict(self.headers.items()), body))
                self.send_response(outer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
                """Quiet."""

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/github/webhook"

    def kinds(self) -> list[str]:
        return [r.kind for r in self.received]

    def close(self) -> None:
        self.gate.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
