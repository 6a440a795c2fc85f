"""The sandbox GitHub: REST and GraphQL on 127.0.0.1, serving the org as of ``clock.now()``.

``SandboxServer(org, clock=FixedClock(...))`` is a threaded HTTP server; ``start()`` returns
its base URL (``http://127.0.0.1:PORT``) for ``Github(base_url=...)``. GraphQL answers at
``/graphql`` (what PyGithub derives from that base URL) and at ``/api/graphql`` (from an
Enterprise-style ``/api/v3`` base URL, which REST also accepts).

Like GitHub it: checks the token (401 ``Bad credentials``); paginates lists with ``page`` /
``per_page`` (capped) and a ``Link`` header (``next``, ``last``, ``prev``, ``first``); sends an
``ETag`` on every GET and answers a matching ``If-None-Match`` with ``304`` without spending the
primary budget; keeps a 5,000/hour budget per token, or per App installation for its tokens
(``core`` for REST, ``graphql`` by query cost) reported in ``x-ratelimit-*`` headers; and answers unknown paths 404, repositories marked
with :meth:`deny` 403 (``Resource not accessible by integration``) or 404.

``server.changes`` (:class:`jobs.sandbox.changes.Changes`) changes the org as it happens (open a
PR, review it, push, merge...), and once :meth:`SandboxServer.send_webhooks_to` names a target,
``server.webhooks`` (:class:`jobs.sandbox.webhooks.WebhookSender`) delivers each change's
webhooks, signed like GitHub's, from a background thread, with seeded drops, delays, duplicates
and reordering on request.

Several organisations: ``SandboxServer(org, others=(org2, ...))`` serves each under its own
name (the owner in a REST path, the ``owner`` variable of a GraphQL query), each with an App
installation of its own (``installation_id(org)``); ``tokens`` adds a token per organisation
(each token reaches every organisation, as a person's does, and has its own budget).

``server.faults`` (:class:`jobs.sandbox.faults.Faults`) injects 5xx, timeouts, dropped
connections, secondary rate limits and ``200``s that are not what was asked (wrong shape,
missing data, truncated JSON, an HTML page); ``server.stats`` records every request.

Paging follows GitHub's rules on both APIs: REST lists by ``page``/``per_page`` (at most 100)
with a ``Link`` header, ``/pulls/{n}/commits`` stopping at 250 commits as GitHub's does;
GraphQL connections by ``first``/``after`` (1..100, required) with ``pageInfo``/``endCursor``
per connection.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from jobs.ports import Clock
from jobs.sandbox import graphql, rest
from jobs.sandbox.changes import Changes
from jobs.sandbox.faults import Faults, Request, Stats
from jobs.sandbox.org import Org
from jobs.sandbox.routes import Context, NotFound, Result, match
from jobs.sandbox.webhooks import Hook, HookFaults, WebhookSender

INSTALLATION_ID = 4242  # the App installation rest.installation describes

_DOCS = "https://docs.github.com/rest"
_SECONDARY = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
    "If you reach out to GitHub Support for help, please include the request ID {rid}."
)
_SCOPES = "read:org, repo"


@dataclass
class Bucket:
    """One token's budget for one resource (``core`` or ``graphql``) in an hourly window."""

    limit: int
    used: int = 0
    reset: float = 0.0

    def refresh(self, wall: float) -> None:
        if wall >= self.reset:
            self.used, self.reset = 0, wall + 3600

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)

    def headers(self, resource: str) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(self.limit), "x-ratelimit-remaining": str(self.remaining),
            "x-ratelimit-used": str(self.used), "x-ratelimit-reset": str(int(self.reset)),
            "x-ratelimit-resource": resource,
        }


class SandboxServer:
    """GitHub REST + GraphQL for a simulated org, on loopback (see the module docstring)."""

    def __init__(
        self,
        org: Org,
        *,
        clock: Clock,
        token: str = "sandbox-token",
        page_cap: int = 100,
        rate_limit: int = 5000,
        wall: Callable[[], float] = time.time,
        others: Sequence[Org] = (),
        tokens: Mapping[str, str] | None = None,
    ) -> None:
        self.org, self.clock, self.token, self.page_cap = org, clock, token, page_cap
        self.orgs = {o.name.lower(): o for o in (org, *others)}
        if len(self.orgs) != 1 + len(others):
            raise ValueError("each organisation needs a name of its own")
        self.rate_limit = rate_limit
        self.wall = wall
        self.faults = Faults()
        self.stats = Stats()
        self._tokens: dict[str, str] = {token: "user"}  # token -> "user" | "installation"
        self._tokens.update(dict.fromkeys((tokens or {}).values(), "user"))
        self._meters: dict[str, str] = {}  # installation token -> its installation's budget
        self._denied: dict[str, int] = {}
        self._buckets: dict[tuple[str, str], Bucket] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._issued = 0
        self.webhooks = WebhookSender()
        self.changes = Changes(org, clock=clock, sender=self.webhooks, api=lambda: self.base_url)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> str:
        """Serve on 127.0.0.1 on a free port; returns the base URL."""
        handler = type("Handler", (_Handler,), {"sandbox": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._stop.clear()
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        """Stop serving and sending webhooks, and release hanging requests."""
        self._stop.set()
        self.webhooks.close()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SandboxServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the sandbox server is not running; call start() first")
        port = self._httpd.server_address[1]
        return f"http://127.0.0.1:{port}"

    @property
    def graphql_url(self) -> str:
        return f"{self.base_url}/graphql"

    # ------------------------------------------------------------------ knobs

    def send_webhooks_to(self, url: str, *, secret: str | None, target: str = "organization",
                         faults: HookFaults | None = None) -> Hook:
        """Deliver the org's webhooks to ``url`` from now on, signed with ``secret``.

        ``target`` is whose hook it is, as GitHub names it in
        ``X-GitHub-Hook-Installation-Target-Type``: ``organization`` (the org's hook),
        ``repository`` (the first team's first repository's) or ``integration`` (the GitHub
        App's; payloads then carry ``installation``). Returns the hook.
        """
        first = self.org.repos[self.org.teams[0].repos[0]]
        target_id = {"organization": self.org.owner_id, "repository": first.id,
                     "integration": 1001}.get(target, 0)
        hook = Hook(url, secret, target_type=target, target_id=target_id,
                    installation_id=INSTALLATION_ID if target == "integration" else None)
        self.webhooks.configure(hook, faults=faults)
        return hook

    def deny(self, repo: str, status: int = 403) -> None:
        """Make ``repo`` (name or owner/name) inaccessible: 403 (no permission) or 404."""
        self._denied[repo.split("/")[-1]] = status

    def allow(self, repo: str) -> None:
        self._denied.pop(repo.split("/")[-1], None)

    def org_for(self, owner: str | None) -> Org:
        """The organisation named ``owner`` (any case); the main one when none is."""
        return self.orgs.get((owner or "").lower(), self.org)

    def installation_id(self, org: Org) -> int:
        """The App's installation on ``org``: 4242 on the main organisation, then 4243, ..."""
        return 4242 + list(self.orgs.values()).index(org)

    def bucket(self, token: str | None = None, resource: str = "core") -> Bucket:
        """The budget of ``token`` (default: the configured one) for ``resource``; an
        installation token's is its installation's (GitHub meters installations)."""
        token = token or self.token
        key = (self._meters.get(token, token), resource)
        with self._lock:
            b = self._buckets.setdefault(key, Bucket(self.rate_limit))
            b.refresh(self.wall())
            return b

    def issue_token(self, installation: int = 4242) -> str:
        """A new installation token, as ``POST /app/installations/{id}/access_tokens`` makes."""
        with self._lock:
            self._issued += 1
            token = f"ghs_sandbox{self._issued:08d}"
            self._tokens[token] = "installation"
            self._meters[token] = f"installation:{installation}"
        return token

    def token_kind(self, token: str) -> str | None:
        return self._tokens.get(token)

    def spend(self, token: str, resource: str, cost: int) -> Bucket:
        b = self.bucket(token, resource)
        with self._lock:
            b.used += cost
        return b

    def hang(self) -> None:
        """Hold a request for ``faults.hang_seconds``, or until the server stops."""
        self._stop.wait(self.faults.hang_seconds)

    def denied(self, repo: str) -> int | None:
        return self._denied.get(repo)

    def now(self) -> datetime:
        return self.clock.now().astimezone(UTC)


class _Handler(BaseHTTPRequestHandler):
    sandbox: SandboxServer
    protocol_version = "HTTP/1.1"
    server_version = "GitHub.com"
    # Headers and body go out in separate writes; without TCP_NODELAY, Nagle plus the
    # client's delayed ACK add ~40 ms to every keep-alive request on loopback.
    disable_nagle_algorithm = True
    _cut = False  # this request's answer is truncated on the way out (the "truncated" fault)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
        """Quiet: the stats record every request."""

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_HEAD(self) -> None:
        self._serve("GET")

    # ------------------------------------------------------------------ pipeline

    def _serve(self, method: str) -> None:
        sb = self.sandbox
        url = urllib.parse.urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        if path.startswith("/api/v3/"):
            path = path[len("/api/v3"):]
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self._cut = False
        fault = sb.faults.take(path)
        if fault is not None and fault[0] == "truncated":
            self._cut = True  # answered as usual, then cut on the way out
        elif fault is not None and self._inject(method, path, *fault):
            return
        token = _token(self.headers.get("Authorization", ""))
        if path.startswith("/app") or path.endswith("/installation"):
            self._app(method, path, token)
            return
        if token is None or sb.token_kind(token) is None:
            self._send(method, path, 401, rest.error("Bad credentials", 401), {}, "", 0)
            return
        if path == "/rate_limit" and method == "GET":
            self._send(method, path, 200, self._rate_limit(token), {}, "", 0)
            return
        if method == "POST" and path in ("/graphql", "/api/graphql"):
            self._graphql(path, token, body)
            return
        self._rest(method, path, query, token)

    def _rest(self, method: str, path: str, query: dict[str, str], token: str) -> None:
        sb = self.sandbox
        core = sb.bucket(token)
        if core.remaining <= 0:
            msg = "API rate limit exceeded for user ID 1. If you reach out to GitHub Support..."
            self._send(method, path, 403, rest.error(msg, 403), core.headers("core"), "core", 0)
            return
        parts = path.split("/")
        if len(parts) > 3 and parts[1] == "repos" and sb.denied(parts[3]):
            status = sb.denied(parts[3]) or 403
            sb.spend(token, "core", 1)
            extra = core.headers("core")
            if status == 403:
                extra["x-accepted-github-permissions"] = "pull_requests=read; contents=read"
                err = rest.error("Resource not accessible by integration", 403)
            else:
                err = rest.error("Not Found", 404)
            self._send(method, path, status, err, extra, "core", 1)
            return
        found = match(method, path)
        if path == "/user" and sb.token_kind(token) == "installation":
            found = None
            result = Result(403, rest.error("Resource not accessible by integration", 403),
                            {"x-accepted-github-permissions": ""})
        elif found is None:
            result = Result(404, rest.error("Not Found", 404))
        else:
            handler, params = found
            owner = parts[2] if len(parts) > 2 and parts[1] in ("repos", "orgs") else None
            ctx = Context(sb.org_for(owner), sb.base_url, sb.now(), _login_of(sb))
            try:
                result = handler(ctx, query, **params)
            except (NotFound, ValueError):
                result = Result(404, rest.error("Not Found", 404))
        payload, headers = self._paginate(path, query, result)
        raw = _dump(payload)
        etag = 'W/"' + hashlib.sha256(raw).hexdigest()[:40] + '"'
        headers["ETag"] = etag
        if method == "GET" and result.status == 200 and _etag_matches(self, etag):
            self._send(method, path, 304, None, {**headers, **core.headers("core")}, "", 0)
            return
        core = sb.spend(token, "core", 1)
        self._send(method, path, result.status, raw, {**headers, **core.headers("core")},
                   "core", 1)

    def _paginate(self, path: str, query: dict[str, str],
                  result: Result) -> tuple[Any, dict[str, str]]:
        headers = dict(result.headers)
        items = result.body if result.items_key is None else result.body.get(result.items_key)
        if result.status != 200 or not isinstance(items, list):
            return result.body, headers
        sb = self.sandbox
        try:
            per_page = min(max(int(query.get("per_page", 30)), 1), sb.page_cap)
            page = max(int(query.get("page", 1)), 1)
        except ValueError:
            per_page, page = 30, 1
        last = max((len(items) + per_page - 1) // per_page, 1)
        chunk = items[(page - 1) * per_page: page * per_page]
        if result.render is not None:
            chunk = [result.render(item) for item in chunk]
        links = []
        base = sb.base_url + self.path.split("?")[0]

        def link(p: int, rel: str) -> str:
            q = {**query, "per_page": str(per_page), "page": str(p)}
            return f'<{base}?{urllib.parse.urlencode(q)}>; rel="{rel}"'

        if page > 1:
            links += [link(page - 1, "prev"), link(1, "first")]
        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if links:
            headers["Link"] = ", ".join(links)
        if result.items_key is None:
            return chunk, headers
        return {**result.body, result.items_key: chunk}, headers

    def _graphql(self, path: str, token: str, body: bytes) -> None:
        sb = self.sandbox
        try:
            request = json.loads(body or b"{}")
            document = request["query"]
            variables = request.get("variables") or {}
        except (ValueError, KeyError, TypeError):
            err = {"message": "Problems parsing JSON", "documentation_url": "https://docs.github.com/graphql"}
            self._send("POST", path, 400, err, {}, "", 0)
            return
        bucket = sb.bucket(token, "graphql")
        owner = variables.get("owner") if isinstance(variables, dict) else None
        ctx = Context(sb.org_for(owner if isinstance(owner, str) else None), sb.base_url,
                      sb.now(), _login_of(sb))
        cost = graphql.cost(document, variables)
        if bucket.remaining < cost:
            limited = {"type": "RATE_LIMITED", "message": "API rate limit exceeded for user ID 1."}
            data = {"errors": [limited]}
            self._send("POST", path, 200, data, bucket.headers("graphql"), "graphql", 0)
            return
        bucket = sb.spend(token, "graphql", cost)
        answer = graphql.execute(ctx, document, variables, rate=bucket, cost=cost)
        self._send("POST", path, 200, answer, bucket.headers("graphql"), "graphql", cost)

    def _app(self, method: str, path: str, token: str | None) -> None:
        """GitHub App endpoints: a JWT (three dot-separated parts) is required."""
        sb = self.sandbox
        if token is None or token.count(".") != 2:
            msg = "A JSON web token could not be decoded"
            self._send(method, path, 401, rest.error(msg, 401), {}, "", 0)
            return
        created = sb.org.start
        insts = {sb.installation_id(o): (o, rest.installation(
            sb.base_url, o.name, o.owner_id, created, installation_id=sb.installation_id(o)))
            for o in sb.orgs.values()}
        parts = path.split("/")
        found: dict[str, Any] | None = None
        if method == "POST" and len(parts) == 5 and parts[4] == "access_tokens":
            number = int(parts[3]) if parts[3].isdigit() else -1
            if number not in insts:
                self._send(method, path, 404, rest.error("Not Found", 404), {}, "", 0)
                return
            inst = insts[number][1]
            expires = datetime.fromtimestamp(sb.wall() + 3600, UTC)
            data = {"token": sb.issue_token(number), "expires_at": rest.iso(expires),
                    "permissions": inst["permissions"], "repository_selection": "all"}
            self._send(method, path, 201, data, {}, "", 0)
            return
        if method == "GET" and path == "/app/installations":
            self._send(method, path, 200, [i for _o, i in insts.values()], {}, "", 0)
            return
        for org, inst in insts.values():
            if method == "GET" and (path == f"/app/installations/{inst['id']}"
                                    or path == f"/orgs/{org.name}/installation"
                                    or (path.startswith(f"/repos/{org.name}/")
                                        and path.split("/")[3] in org.repos)):
                found = inst
        if found is not None:
            self._send(method, path, 200, found, {}, "", 0)
        else:
            self._send(method, path, 404, rest.error("Not Found", 404), {}, "", 0)

    def _rate_limit(self, token: str) -> dict[str, Any]:
        sb = self.sandbox
        core = sb.bucket(token)
        gql = sb.bucket(token, "graphql")

        def part(b: Bucket) -> dict[str, int]:
            return {"limit": b.limit, "used": b.used, "remaining": b.remaining,
                    "reset": int(b.reset)}

        search = {"limit": 30, "used": 0, "remaining": 30, "reset": int(core.reset)}
        return {"resources": {"core": part(core), "graphql": part(gql), "search": search},
                "rate": part(core)}

    # ------------------------------------------------------------------ faults and output

    def _inject(self, method: str, path: str, kind: str, retry_after: int) -> bool:
        """Answer with the fault; False when the fault does not apply (it always does)."""
        sb = self.sandbox
        rid = f"SBX:{sb.stats.total:06d}"
        if kind in ("500", "502", "503", "504"):
            status = int(kind)
            msg = {500: "Server Error", 502: "Server Error", 503: "Service Unavailable",
                   504: "We couldn't respond to your request in time."}[status]
            self._send(method, path, status, {"message": msg}, {}, "", 0, fault=kind)
        elif kind in ("secondary_403", "secondary_429"):
            status = 403 if kind == "secondary_403" else 429
            err = {"message": _SECONDARY.format(rid=rid),
                   "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}
            self._send(method, path, status, err, {"Retry-After": str(retry_after)}, "", 0,
                       fault=kind)
        elif kind == "primary":
            reset = int(sb.wall()) + retry_after
            headers = {"x-ratelimit-limit": str(sb.rate_limit), "x-ratelimit-remaining": "0",
                       "x-ratelimit-used": str(sb.rate_limit), "x-ratelimit-reset": str(reset),
                       "x-ratelimit-resource": "core"}
            err = rest.error("API rate limit exceeded for user ID 1.", 403)
            self._send(method, path, 403, err, headers, "", 0, fault=kind)
        elif kind == "malformed":
            self._send(method, path, 200, [{"number": "x", "updated_at": "not a time"}], {}, "", 0,
                       fault=kind)
        elif kind == "missing":
            graphql_path = path.endswith("/graphql")
            self._send(method, path, 200, {"data": {}} if graphql_path else {}, {}, "", 0,
                       fault=kind)
        elif kind == "html":
            page = (b"<!DOCTYPE html>\n<html><head><title>Unicorn! &middot; GitHub</title></head>"
                    b"<body><p>No server is currently available to service your request.</p>"
                    b"</body></html>\n")
            self._send(method, path, 200, page, {"Content-Type": "text/html; charset=utf-8"},
                       "", 0, fault=kind)
        else:  # timeout or close: no answer at all
            sb.stats.add(Request(method, path, 0, 0, "", kind))
            if kind == "timeout":
                sb.hang()
            self.close_connection = True
        return True

    def _send(self, method: str, path: str, status: int, body: Any, headers: dict[str, str],
              resource: str, cost: int, *, fault: str | None = None) -> None:
        sb = self.sandbox
        raw = body if isinstance(body, bytes) else (b"" if body is None else _dump(body))
        if self._cut and status == 200 and raw:
            raw, fault = raw[: len(raw) // 2], "truncated"
        # recorded before answering, so a client that has its answer also sees it counted
        sb.stats.add(Request(method, path, status, cost, resource if cost else "", fault))
        self.send_response(status)
        if "Content-Type" not in headers:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(raw)) if status != 304 else "0")
        self.send_header("x-github-media-type", "github.v3; format=json")
        self.send_header("x-github-api-version-selected", "2022-11-28")
        self.send_header("x-github-request-id", f"SBX:{sb.stats.total:06d}")
        self.send_header("x-oauth-scopes", _SCOPES)
        self.send_header("x-accepted-oauth-scopes", "repo")
        self.send_header("Cache-Control", "private, max-age=60, s-maxage=60")
        self.send_header("Vary", "Accept, Authorization, Cookie, X-GitHub-OTP")
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if status != 304 and self.command != "HEAD":
            self.wfile.write(raw)


def _token(header: str) -> str | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() in ("token", "bearer") and value.strip():
        return value.strip()
    return None


def _etag_matches(handler: BaseHTTPRequestHandler, etag: str) -> bool:
    sent = handler.headers.get("If-None-Match")
    if not sent:
        return False
    strip = etag.removeprefix("W/")
    return any(t.strip().removeprefix("W/") == strip for t in sent.split(","))


def _login_of(sb: SandboxServer) -> str:
    return sb.org.teams[0].members[0].login


def _dump(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()
