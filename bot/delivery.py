"""The one place that posts to Slack: alerts and digests, exactly once, with clear failures.

:class:`SlackDelivery` implements :class:`jobs.ports.Deliver`.

**Exactly once.** Every post has an idempotency key (the alert's or digest's, plus the
recipient for alerts). Posting is a two-step claim in Redis:

1. if ``sent:KEY`` exists, it was posted before: report success without posting;
2. take a short *lease* on ``KEY`` (``SET NX``, 10 minutes). Another replica (or a retry) that
   finds the lease held backs off and reports "not yet" (False), to try again later;
3. post; on success write ``sent:KEY`` (30 days); on failure release the lease so the next
   attempt can post.

Choice for a crash *between the lease and the post*: the lease simply expires and a later
attempt posts (at-least-once for that narrow case). A crash *after Slack accepted the post but
before ``sent:KEY`` is written* (one Redis round trip) could post twice after the lease
expires; we accept that window over its alternative (claim forever first: a crash before the
post would lose the message silently). Lease length > the longest post with its 429 retries.

**Rate limits.** A ``429`` is retried after ``Retry-After`` by :class:`RateLimitRetry`
(slack_sdk's ``RateLimitErrorRetryHandler`` with an injectable sleep and a cap).

**Failures a person must fix** (``channel_not_found``, ``not_in_channel``, ``invalid_auth``...)
are logged once per channel and code with what to do, kept in Redis for ``flowbot doctor``
(:func:`delivery_problems`), cleared by the next good post there, and never stop the other
posts. Digest charts go up with files upload v2 in the digest's thread; when the upload fails
the digest stays as text (it was written to read well alone).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from bot.blocks import Block
from bot.blocks.alerts import render_alert as default_render_alert
from bot.blocks.digest import render_digest as default_render_digest
from jobs.errors import StoreUnavailable
from jobs.model import Alert, Digest
from jobs.ports import Clock, SystemClock
from jobs.store import Store

log = logging.getLogger(__name__)

Message = tuple[list[Block], str]
LEASE = timedelta(minutes=10)
SENT_TTL = timedelta(days=30)
PROBLEMS_TTL = timedelta(days=30)

FIXES: dict[str, str] = {
    "channel_not_found": "the channel does not exist or the bot cannot see it: check the channel ID"
    " in config.toml (teams.<name>.channel / leads_channel); invite the bot to a private channel",
    "not_in_channel": "invite the bot to the channel (/invite @Flowbot) or grant the"
    " chat:write.public scope and reinstall the app",
    "is_archived": "the channel is archived: unarchive it or pick another one in config.toml",
    "invalid_auth": "SLACK_BOT_TOKEN is not valid: reinstall the app and set the new xoxb- token",
    "not_authed": "SLACK_BOT_TOKEN is not set: set it to the app's xoxb- bot token",
    "token_revoked": "the bot token was revoked: reinstall the app and set the new SLACK_BOT_TOKEN",
    "account_inactive": "the bot's token belongs to a deactivated app or workspace: reinstall it",
    "missing_scope": "the app lacks a scope (chat:write, files:write, im:write): add it and"
    " reinstall the app",
    "user_not_found": "a lead's Slack user ID is wrong: check teams.<name>.leads in config.toml",
    "cannot_dm_bot": "a lead's Slack user ID belongs to a bot: check teams.<name>.leads",
}
_WORKSPACE_WIDE = frozenset({"invalid_auth", "not_authed", "token_revoked", "account_inactive"})


@dataclass(frozen=True, slots=True)
class DeliveryProblem:
    """A post Slack refused for a reason a person must fix; what ``doctor`` reports."""

    channel: str  # "*" for workspace-wide problems (the token)
    code: str
    fix: str
    what: str  # the last idempotency key that hit it
    first_at: datetime
    last_at: datetime
    count: int


class RateLimitRetry(RateLimitErrorRetryHandler):
    """slack_sdk's 429 handler, waiting ``Retry-After`` through an injectable ``sleep``.

    The stock handler calls ``time.sleep`` itself and adds up to a second of jitter; this one
    waits exactly ``Retry-After`` (capped at ``max_wait`` seconds) so tests run without waiting.
    """

    def __init__(
        self,
        max_retry_count: int = 3,
        *,
        sleep: Callable[[float], None] = time.sleep,
        max_wait: float = 120.0,
    ) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self._sleep = sleep
        self.max_wait = max_wait

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        if response is None:
            raise error or RuntimeError("429 retry without a response")
        wait = 1.0
        for name, values in response.headers.items():
            if name.lower() == "retry-after" and values:
                try:
                    wait = float(values[0])
                except ValueError:
                    pass
        state.next_attempt_requested = True
        self._sleep(min(max(wait, 0.0), self.max_wait))
        state.increment_current_attempt()


def install_rate_limit_retry(
    client: WebClient, *, sleep: Callable[[float], None] = time.sleep, max_retry_count: int = 3
) -> None:
    """Attach :class:`RateLimitRetry` to ``client`` unless a 429 handler is already there."""
    if not any(isinstance(h, RateLimitErrorRetryHandler) for h in client.retry_handlers):
        client.retry_handlers.append(RateLimitRetry(max_retry_count, sleep=sleep))


class SlackDelivery:
    """Posts alerts and digests through ``client``; idempotent via ``store`` (see module doc)."""

    def __init__(
        self,
        client: WebClient,
        store: Store,
        *,
        clock: Clock | None = None,
        sleep: Callable[[float], None] = time.sleep,
        lease: timedelta = LEASE,
        render_alert: Callable[[Alert], Message] | None = None,
        render_digest: Callable[[Digest], Message] | None = None,
    ) -> None:
        self.client = client
        self.store = store
        self.clock = clock or SystemClock()
        self.lease = lease
        install_rate_limit_retry(client, sleep=sleep)
        self._render_alert = render_alert or default_render_alert
        self._render_digest = render_digest or default_render_digest

    # ------------------------------------------------------------------ Deliver

    def alert(self, alert: Alert) -> bool:
        """Post ``alert`` to each recipient once. True when every recipient has it."""
        blocks, text = self._render_alert(alert)
        results = [
            self._post_once(f"{alert.idempotency_key}:{to}", to, blocks, text)
            for to in alert.recipients
        ]
        return all(r is not None for r in results)

    def digest(self, digest: Digest) -> bool:
        """Post ``digest`` to its channel once, then its chart in the thread (best effort).

        True when the digest is posted (now or before).
        """
        blocks, text = self._render_digest(digest)
        ts = self._post_once(digest.idempotency_key, digest.channel, blocks, text)
        if ts is None:
            return False
        if ts and digest.chart_png:  # "" means posted before: its chart went with it then
            self._upload_chart(digest, ts, digest.chart_png)
        return True

    # ------------------------------------------------------------------ posting

    def _post_once(self, key: str, channel: str, blocks: Sequence[Block], text: str) -> str | None:
        """The new message's ``ts``; ``""`` when posted before; None when not posted (yet)."""
        try:
            if self.store.was_claimed(f"sent:{key}"):
                return ""
            if not self.store.claim_once(key, ttl=self.lease):
                log.info("%s is being posted elsewhere; leaving it to that attempt", key)
                return None
        except StoreUnavailable as err:
            log.error("not posting %s: %s", key, err)  # without Redis we cannot promise once
            return None
        try:
            resp = self.client.chat_postMessage(
                channel=channel, blocks=list(blocks), text=text, unfurl_links=False,
                unfurl_media=False,
            )
        except SlackApiError as err:
            self._release(key)
            self._refused(channel, _code(err), key)
            return None
        except (SlackClientError, URLError, OSError) as err:
            self._release(key)
            log.warning("posting %s to %s failed (%s); it will be retried", key, channel, err)
            return None
        try:
            self.store.claim_once(f"sent:{key}", ttl=SENT_TTL)
            self._resolved(channel)
        except StoreUnavailable as err:
            log.error("posted %s but could not record it: %s", key, err)
        return str(resp.get("ts") or "posted")

    def _upload_chart(self, digest: Digest, ts: str, png: bytes) -> None:
        try:
            self.client.files_upload_v2(
                channel=digest.channel,
                thread_ts=ts,
                content=png,
                filename=f"flow-{digest.team}-{digest.week_start.isoformat()}.png",
                title=f"{digest.team}: where the waiting went",
                alt_txt=f"Stage shares week over week and the queue trend for {digest.team}",
            )
        except SlackApiError as err:
            code = _code(err)
            log.warning("chart upload for %s failed (%s); the digest stays text-only",
                        digest.idempotency_key, code)
            if code in FIXES:
                self._refused(digest.channel, code, f"{digest.idempotency_key}:chart")
        except (SlackClientError, URLError, OSError) as err:
            log.warning("chart upload for %s failed (%s); the digest stays text-only",
                        digest.idempotency_key, err)

    def _release(self, key: str) -> None:
        try:
            self.store.release_claim(key)
        except StoreUnavailable:
            log.warning("could not release %s; it is retried when its lease expires", key)

    # ------------------------------------------------------------------ problems

    def _refused(self, channel: str, code: str, key: str) -> None:
        fix = FIXES.get(code)
        if fix is None:
            log.warning("Slack refused %s in %s: %s; it will be retried", key, channel, code)
            return
        where = "*" if code in _WORKSPACE_WIDE else channel
        now = self.clock.now()
        problems = _read_problems(self.store)
        known = problems.get(where)
        if known is None or known.get("code") != code:
            log.error("Slack refused posting to %s: %s. To fix: %s", channel, code, fix)
            known = {"code": code, "first_at": now.isoformat(), "count": 0}
        known.update(fix=fix, what=key, last_at=now.isoformat(), count=int(known["count"]) + 1)
        problems[where] = known
        self._write_problems(problems)

    def _resolved(self, channel: str) -> None:
        problems = _read_problems(self.store)
        if channel in problems or "*" in problems:
            problems.pop(channel, None)
            problems.pop("*", None)
            self._write_problems(problems)

    def _write_problems(self, problems: dict[str, Any]) -> None:
        try:
            self.store.set_json("delivery", "problems", value=problems, ttl=PROBLEMS_TTL)
        except StoreUnavailable as err:
            log.warning("could not record a delivery problem: %s", err)


def delivery_problems(store: Store) -> list[DeliveryProblem]:
    """Current delivery problems (for ``flowbot doctor`` and ``/flow health``), newest first."""
    out = [
        DeliveryProblem(
            channel=channel,
            code=p["code"],
            fix=p.get("fix", ""),
            what=p.get("what", ""),
            first_at=datetime.fromisoformat(p["first_at"]),
            last_at=datetime.fromisoformat(p["last_at"]),
            count=int(p.get("count", 1)),
        )
        for channel, p in _read_problems(store).items()
    ]
    return sorted(out, key=lambda p: p.last_at, reverse=True)


def _read_problems(store: Store) -> dict[str, Any]:
    raw = store.get_json("delivery", "problems")
    return dict(raw) if isinstance(raw, dict) else {}


def _code(err: SlackApiError) -> str:
    try:
        return str(err.response.get("error") or f"http_{err.response.status_code}")
    except AttributeError:
        return "unknown_error"
