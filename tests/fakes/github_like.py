"""A loopback server answering like api.github.com for a classic token, scope headers included.

Unlike the sandbox (``jobs.sandbox``), every answer carries ``x-oauth-scopes`` (the token's
scopes, absent on a 401) and ``x-accepted-oauth-scopes: repo`` (the endpoint's), a 401 and a
404 included, as GitHub sends them: what tells "needs a scope" from "bad token" and "no such
repository". Used by doctor's tests and ``bench/faults_operator.py``.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from collections.abc import Mapping
from threading import Thread
from typing import Any


class GitHubLike:
    """A loopback server answering like api.github.com for a classic token: every answer
    carries ``x-oauth-scopes`` (the token's) and ``x-accepted-oauth-scopes`` (the endpoint's),
    a 401 and a 404 included; ``routes`` maps a path to (status, body), ``default`` answers
    every other path (GitHub's 404, or a 401 for a token it refuses everywhere)."""

    def __init__(self, routes: Mapping[str, tuple[int, object]], *, scopes: str | None,
                 default: tuple[int, object] = (404, {"message": "Not Found"})) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = outer.routes.get(self.path.split("?")[0], outer.default)
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(raw)))
                self.send_header("x-accepted-oauth-scopes", "repo")
                if outer.scopes is not None and status != 401:
                    self.send_header("x-oauth-scopes", outer.scopes)
                self.end_headers()
                self.wfile.write(raw)

            do_POST = do_GET  # noqa: N815 - stdlib name; GraphQL gets the same answers by path

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                pass

        self.routes, self.scopes, self.default = dict(routes), scopes, default
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = Thread(target=self.server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> GitHubLike:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
