"""``POST /github/webhook``: GitHub's deliveries, verified before they are read, then queued.

In order, each step refusing with one log line and no traceback, and nothing after it run:

1. No secret configured (``GITHUB_WEBHOOK_SECRET``): 404 saying so; Flowbot polls as before.
2. The size, from ``Content-Length`` before any of the body is read: missing 411, over
   :data:`MAX_WEBHOOK_BYTES` (GitHub's own cap on a payload, 25 MB) 413.
3. ``X-Hub-Signature-256``: ``sha256=`` and the hex HMAC-SHA256 of the raw body with one of the
   configured secrets, compared in constant time (``hmac.compare_digest``) against each; missing
   401 ``unsigned``, anything else 401 ``forged``. Nothing of the body is parsed before this.
4. GitHub's headers (``X-GitHub-Event``, ``X-GitHub-Delivery``) and a JSON object body with the
   hook's content type ``application/json``: else 400 (415 for a form-encoded hook).
5. ``ping``: 200 ``pong``.
6. Each ``X-GitHub-Delivery`` is handled once: ``SET NX`` in the store for
   :data:`DELIVERY_TTL` (GitHub redelivers up to 3 days back); a replay is answered 200 with
   no work.
7. :func:`jobs.webhooks.plan` says what to refresh; each refresh is handed to ``enqueue``
   (the work queue coalesces: a PR already queued is not queued twice). 202 when something
   was queued, 200 when the delivery asks nothing. No GitHub call is made here: the request
   costs a few Redis round trips, well inside GitHub's 10 s.

The last delivery of each hook (or App installation) is kept in the store (time, event,
outcome) for ``flowbot doctor``, and the last refused one under ``refused``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from jobs import webhooks
from jobs.errors import StoreUnavailable
from jobs.webhooks import Refresh

if TYPE_CHECKING:
    from wsgiref.types import WSGIEnvironment

    from bot.metrics_http import Telemetry
    from jobs.ports import Clock
    from jobs.store import Store

log = logging.getLogger(__name__)

PATH = "/github/webhook"
MAX_WEBHOOK_BYTES = 25 * 1024 * 1024  # GitHub caps a payload at 25 MB and does not send larger
DELIVERY_TTL = timedelta(days=4)  # GitHub's redeliveries reach 3 days back
_GUID = re.compile(r"[0-9A-Za-z-]{1,64}")  # a delivery's GUID (its claim key: no colons)
_EVENT = re.compile(r"[a-z_]{1,64}")
_SIGNATURE = re.compile(r"sha256=[0-9a-f]{64}")

Enqueue = Callable[[Refresh], bool]
"""Queue one refresh; True when queued, False when an equal one already waits (coalesced).
Raises StoreUnavailable when the queue cannot be reached."""


@dataclass(frozen=True, slots=True)
class Answer:
    """What the endpoint answers: status and a short plain-text reason."""

    status: int
    text: str


class GitHubWebhook:
    """The endpoint's logic over a WSGI environ (``bot.web.FlowbotWeb`` routes to it)."""

    def __init__(self, *, secrets: Sequence[str], store: Store, enqueue: Enqueue,
                 watched: Callable[[str], str | None], clock: Clock, telemetry: Telemetry,
                 max_body: int = MAX_WEBHOOK_BYTES) -> None:
        self._secrets = tuple(s.encode() for s in secrets)
        self._store = store
        self._enqueue = enqueue
        self._watched = watched
        self._clock = clock
        self._telemetry = telemetry
        self.max_body = max_body

    @property
    def enabled(self) -> bool:
        return bool(self._secrets)

    def handle(self, environ: WSGIEnvironment) -> Answer:
        """Verify, dedupe, plan and enqueue one delivery (the module docstring's steps)."""
        if not self._secrets:
            return self._refuse(environ, 404, "not_set_up", "GitHub webhooks are not set up here:"
                                " GITHUB_WEBHOOK_SECRET is not set (Flowbot polls GitHub instead)")
        try:
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            return self._refuse(environ, 411, "length_required", "length_required")
        if length < 0:
            return self._refuse(environ, 400, "bad_length", "bad_length")
        if length > self.max_body:
            return self._refuse(environ, 413, "too_large", "too_large")
        body = environ["wsgi.input"].read(length) if length else b""
        signature = environ.get("HTTP_X_HUB_SIGNATURE_256", "")
        if not signature:
            return self._refuse(environ, 401, "unsigned", "unsigned")
        if not self._signed(body, signature):
            return self._refuse(environ, 401, "forged", "forged")
        # from here on the body is GitHub's (or someone's holding a secret)
        event = environ.get("HTTP_X_GITHUB_EVENT", "")
        delivery = environ.get("HTTP_X_GITHUB_DELIVERY", "")
        if not _EVENT.fullmatch(event):
            return self._refuse(environ, 400, "malformed", "X-GitHub-Event missing or malformed")
        if not _GUID.fullmatch(delivery):
            return self._refuse(environ, 400, "malformed", "X-GitHub-Delivery missing or malformed")
        content_type = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            return self._refuse(environ, 415, "content_type", "set the hook's content type to"
                                " application/json")
        payload, problem = _json_object(body)
        if payload is None:
            return self._refuse(environ, 400, "malformed", f"malformed: {problem}")
        return self._accepted(environ, event, delivery, payload)

    def signature(self, body: bytes, secret: str | bytes) -> str:
        """``X-Hub-Signature-256`` of ``body`` with ``secret``: what GitHub sends."""
        key = secret.encode() if isinstance(secret, str) else secret
        return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()

    # ------------------------------------------------------------------ steps

    def _signed(self, body: bytes, signature: str) -> bool:
        """Constant time per secret, and every secret tried (no early exit to time)."""
        given = signature.strip().lower().encode("ascii", "replace")
        if not _SIGNATURE.fullmatch(given.decode()):
            return False
        matched = False
        for secret in self._secrets:
            matched |= hmac.compare_digest(self.signature(body, secret).encode(), given)
        return matched

    def _accepted(self, environ: WSGIEnvironment, event: str, delivery: str,
                  payload: Mapping[str, Any]) -> Answer:
        hook = _hook_name(environ, payload)
        action = payload.get("action")
        what = f"{event}.{action}" if isinstance(action, str) else event
        try:
            if not self._store.claim_once(f"webhook:{delivery}", ttl=DELIVERY_TTL):
                return self._done(hook, delivery, what, 200, "duplicate", "already handled")
            if event == "ping":
                return self._done(hook, delivery, what, 200, "pong", "pong")
            plan = webhooks.plan(event, payload, watched=self._watched)
            if plan.ignored is not None:
                return self._done(hook, delivery, what, 200, "ignored", f"ignored: {plan.ignored}")
            queued = 0
            try:
                for refresh in plan.refreshes:
                    queued += bool(self._enqueue(refresh))
            except StoreUnavailable:
                self._store.release_claim(f"webhook:{delivery}")  # a redelivery may try again
                raise
        except StoreUnavailable as err:
            self._telemetry.webhook("unavailable")
            log.warning("GitHub webhook %s (%s) not queued: %s", delivery, what, err)
            return Answer(503, "the work queue is unreachable; redeliver this delivery later")
        targets = ", ".join(_target(r) for r in plan.refreshes)
        outcome = "queued" if queued else "coalesced"
        return self._done(hook, delivery, what, 202 if queued else 200, outcome,
                          f"{outcome}: {targets}")

    def _done(self, hook: str, delivery: str, what: str, status: int, outcome: str,
              text: str) -> Answer:
        self._telemetry.webhook(outcome)
        log.info("GitHub webhook %s %s from %s: %s", delivery, what, hook, text)
        self._note(hook, {"delivery": delivery, "event": what, "outcome": outcome,
                          "status": status})
        return Answer(status, text)

    def _refuse(self, environ: WSGIEnvironment, status: int, reason: str, text: str) -> Answer:
        self._telemetry.rejected(f"webhook_{reason}")
        log.info("refused a GitHub webhook: %s (%d)", reason, status)
        if reason != "not_set_up":
            event = str(environ.get("HTTP_X_GITHUB_EVENT", ""))[:64]
            # before verification nothing from the request is kept but its event name
            self._note("refused", {"event": event if _EVENT.fullmatch(event) else "?",
                                   "outcome": f"refused: {reason}", "status": status})
        return Answer(status, text)

    def _note(self, hook: str, entry: dict[str, Any]) -> None:
        """Keep the delivery for doctor; a store that is down only costs doctor the line."""
        try:
            self._store.note_webhook(hook, {"at": self._clock.now().isoformat(), **entry})
        except StoreUnavailable:
            pass


def _json_object(body: bytes) -> tuple[dict[str, Any] | None, str]:
    try:
        value = json.loads(body)
    except ValueError as err:  # JSONDecodeError, and UnicodeDecodeError (a ValueError)
        return None, f"body is not JSON ({err.msg if isinstance(err, json.JSONDecodeError) else 'not UTF-8'})"
    except RecursionError:
        return None, "body nests too deep"
    if not isinstance(value, dict):
        return None, f"body is a JSON {type(value).__name__}, not an object"
    return value, ""


def _hook_name(environ: WSGIEnvironment, payload: Mapping[str, Any]) -> str:
    """Whose delivery this is, for doctor: the App installation, else the hook and its target."""
    inst = webhooks.installation(payload)
    if inst is not None:
        return f"installation {inst}"
    hook = str(environ.get("HTTP_X_GITHUB_HOOK_ID", ""))
    target = str(environ.get("HTTP_X_GITHUB_HOOK_INSTALLATION_TARGET_TYPE", ""))
    hook = hook if hook.isascii() and hook.isdigit() and len(hook) < 20 else "?"
    target = target if _EVENT.fullmatch(target) else ""
    return f"{target or 'hook'} hook {hook}"


def _target(refresh: Refresh) -> str:
    return f"{refresh.repo}#{refresh.number}" if refresh.kind == "pr" else f"{refresh.repo} CI"


def queue_refreshes(store: Store) -> Enqueue:
    """``enqueue`` onto Flowbot's work queue (:mod:`jobs.work`, RQ on the store's Redis):
    a PR's refresh, or a repository's CI refresh, each coalesced while one is pending."""
    from jobs import work

    def enqueue(refresh: Refresh) -> bool:
        if refresh.kind == "pr" and refresh.number is not None:
            return work.enqueue_pr_refresh(store, refresh.repo, refresh.number, reason=refresh.reason)
        return work.enqueue_ci_refresh(store, refresh.repo, reason=refresh.reason)

    return enqueue
