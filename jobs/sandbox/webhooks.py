"""The sandbox's webhook: deliveries of its organisation's events, signed and sent like GitHub's.

``WebhookSender`` holds one hook (target URL, secret, hook id, the installation target it
belongs to) and delivers each event from a background thread, so whatever changes the sandbox
(and the sandbox's HTTP answers) never waits on a delivery. A delivery is a ``POST`` of the raw
JSON body with GitHub's headers: ``X-GitHub-Event``, ``X-GitHub-Delivery`` (a GUID per
delivery), ``X-GitHub-Hook-ID``, ``X-GitHub-Hook-Installation-Target-Type`` / ``-ID``,
``User-Agent: GitHub-Hookshot/...``, ``Content-Type: application/json`` and, when a secret is
set, ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`` (plus the legacy SHA-1
``X-Hub-Signature``). Like GitHub, a delivery that fails is recorded and not retried.

Faults, seeded and by rate (``HookFaults``): ``drop`` (never sent), ``duplicate`` (sent twice
with the same delivery GUID, as a redelivery is), ``reorder`` (held back and sent after the
next one), ``delay`` (sent ``delay_seconds`` late). ``sender.deliveries`` records what happened
to each event.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import queue
import random
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from typing import Any

USER_AGENT = "GitHub-Hookshot/sandbox"
TARGET_TYPES = frozenset({"repository", "organization", "integration"})
Json = dict[str, Any]


def signature(secret: str, body: bytes) -> str:
    """GitHub's ``X-Hub-Signature-256`` value for ``body``: ``sha256=`` and the hex HMAC."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Hook:
    """Where deliveries go and how they are signed.

    ``target_type`` is what GitHub sends in ``X-GitHub-Hook-Installation-Target-Type``:
    ``repository`` or ``organization`` for a repository's or organisation's hook,
    ``integration`` for a GitHub App's (whose payloads also carry ``installation``).
    """

    url: str
    secret: str | None
    id: int = 4815162
    target_type: str = "organization"
    target_id: int = 0
    installation_id: int | None = None  # set for a GitHub App's hook
    timeout: float = 10.0  # GitHub waits 10 s for an answer

    def __post_init__(self) -> None:
        if self.target_type not in TARGET_TYPES:
            raise ValueError(f"target_type must be one of {sorted(TARGET_TYPES)} "
                             f"(got {self.target_type!r})")

    def __repr__(self) -> str:  # the secret stays out of logs and test output
        return f"Hook(url={self.url!r}, id={self.id}, target_type={self.target_type!r})"


@dataclass(frozen=True, slots=True)
class HookFaults:
    """Shares of all deliveries (0..1, together at most 1) that go wrong, each delivery one
    fault at most, drawn from ``random.Random(seed)``."""

    drop: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    delay: float = 0.0
    delay_seconds: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("drop", "duplicate", "reorder", "delay"):
            share = getattr(self, name)
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"{name} must be a share between 0 and 1 (got {share!r})")
        total = self.drop + self.duplicate + self.reorder + self.delay
        if total > 1.0:
            raise ValueError(f"drop + duplicate + reorder + delay must be at most 1 (got {total})")
        if self.delay_seconds < 0:
            raise ValueError(f"delay_seconds must be >= 0 (got {self.delay_seconds!r})")


@dataclass(slots=True)
class Delivery:
    """One event handed to the sender, and what became of it.

    ``fault`` is the fault drawn for it (None: delivered as is); ``statuses`` the HTTP status
    of each attempt made (two for a duplicate; 0 when the target did not answer).
    """

    guid: str
    event: str
    action: str | None
    body: bytes
    queued_at: float  # time.monotonic() when the change happened
    fault: str | None = None
    statuses: list[int] = field(default_factory=list)
    sent_at: list[float] = field(default_factory=list)

    @property
    def delivered(self) -> bool:
        return any(200 <= s < 300 for s in self.statuses)


_STOP = object()  # ends the sender thread
_RELEASE = object()  # sends a held-back (reordered) delivery now


class WebhookSender:
    """Delivers the sandbox's events to one hook from a background thread (module docstring).

    ``send(event, payload)`` returns at once; ``flush()`` waits until everything handed over so
    far has been delivered, dropped or failed. Inactive (events are not even recorded) until
    :meth:`configure` names a hook.
    """

    def __init__(self) -> None:
        self._hook: Hook | None = None
        self._faults = HookFaults()
        self._rng = random.Random(0)
        self._lock = threading.Lock()
        self._queue: queue.Queue[object] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._held: Delivery | None = None  # a reordered delivery waiting for the next one
        self._pending = 0
        self._idle = threading.Condition(self._lock)
        self._timers: list[threading.Timer] = []
        self.deliveries: list[Delivery] = []

    # ------------------------------------------------------------------ configuration

    def configure(self, hook: Hook | None, *, faults: HookFaults | None = None) -> None:
        """Deliver to ``hook`` from now on (None: stop delivering), with ``faults``."""
        with self._lock:
            self._hook = hook
            self._faults = faults or HookFaults()
            self._rng = random.Random(self._faults.seed)
        if hook is not None:
            self._ensure_thread()

    def set_faults(self, faults: HookFaults) -> None:
        """Change the fault rates (and reseed) without touching the hook."""
        with self._lock:
            self._faults = faults
            self._rng = random.Random(faults.seed)

    @property
    def hook(self) -> Hook | None:
        return self._hook

    @property
    def active(self) -> bool:
        return self._hook is not None

    # ------------------------------------------------------------------ sending

    def send(self, event: str, payload: Json) -> Delivery | None:
        """Queue one delivery of ``event``; returns its record (None when no hook is set)."""
        hook = self._hook
        if hook is None:
            return None
        if hook.installation_id is not None and event != "ping":
            payload = {**payload, "installation": {
                "id": hook.installation_id,
                "node_id": f"MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9u{hook.installation_id}"}}
        body = json.dumps(payload, separators=(",", ":")).encode()
        action = payload.get("action")
        delivery = Delivery(str(uuid.uuid4()), event, action if isinstance(action, str) else None,
                            body, time.monotonic())
        with self._lock:
            delivery.fault = self._draw()
            self.deliveries.append(delivery)
            self._pending += 1
        self._queue.put(delivery)
        return delivery

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every queued delivery was sent (or dropped); False on timeout.

        A reordered delivery still held back (no later one came) is sent now.
        """
        self._queue.put(_RELEASE)
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def close(self) -> None:
        """Stop the sender thread (undelivered events are abandoned)."""
        for timer in list(self._timers):
            timer.cancel()
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout=5)
            self._thread = None

    # ------------------------------------------------------------------ internals

    def _draw(self) -> str | None:
        """The fault for the next delivery: one seeded draw, so each share is of all
        deliveries (``drop=0.2, duplicate=0.1``: a fifth dropped, a tenth sent twice)."""
        f = self._faults
        r = self._rng.random()
        for kind, share in (("drop", f.drop), ("duplicate", f.duplicate),
                            ("reorder", f.reorder), ("delay", f.delay)):
            if r < share:
                return kind
            r -= share
        return None

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="sandbox-webhooks",
                                            daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if item is _RELEASE:
                if self._held is not None:
                    held, self._held = self._held, None
                    self._post(held)
                continue
            assert isinstance(item, Delivery)  # the queue holds nothing else
            self._handle(item)

    def _handle(self, d: Delivery) -> None:
        if d.fault == "reorder" and self._held is None:
            self._held = d  # goes out after the next delivery
            return
        if d.fault == "drop":
            self._done()
        elif d.fault == "delay":
            timer = threading.Timer(self._faults.delay_seconds, self._post, args=(d,))
            timer.daemon = True
            self._timers = [t for t in self._timers if t.is_alive()] + [timer]
            timer.start()
        else:
            self._post(d)
        if self._held is not None:
            held, self._held = self._held, None
            self._post(held)

    def _post(self, d: Delivery) -> None:
        try:
            for _ in range(2 if d.fault == "duplicate" else 1):
                d.statuses.append(self._attempt(d))
                d.sent_at.append(time.monotonic())
        finally:
            self._done()

    def _done(self) -> None:
        with self._idle:
            self._pending -= 1
            self._idle.notify_all()

    def _attempt(self, d: Delivery) -> int:
        hook = self._hook
        if hook is None:
            return 0
        headers = {
            "Content-Type": "application/json", "User-Agent": USER_AGENT,
            "X-GitHub-Event": d.event, "X-GitHub-Delivery": d.guid,
            "X-GitHub-Hook-ID": str(hook.id),
            "X-GitHub-Hook-Installation-Target-Type": hook.target_type,
            "X-GitHub-Hook-Installation-Target-ID": str(hook.target_id),
        }
        if hook.secret:
            headers["X-Hub-Signature-256"] = signature(hook.secret, d.body)
            headers["X-Hub-Signature"] = "sha1=" + hmac.new(
                hook.secret.encode(), d.body, hashlib.sha1).hexdigest()
        url = urllib.parse.urlsplit(hook.url)
        conn_type = (http.client.HTTPSConnection if url.scheme == "https"
                     else http.client.HTTPConnection)
        conn = conn_type(url.hostname or "127.0.0.1", url.port, timeout=hook.timeout)
        try:  # http.client keeps the headers' case as GitHub sends it (urllib would not)
            conn.request("POST", url.path + (f"?{url.query}" if url.query else "") or "/",
                         body=d.body, headers=headers)
            answer = conn.getresponse()
            answer.read()
            return int(answer.status)
        except (OSError, http.client.HTTPException):  # refused, reset, timed out: a failure
            return 0
        finally:
            conn.close()

