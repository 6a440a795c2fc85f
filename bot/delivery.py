"""The one place that posts to Slack: alerts and digests, exactly once, with clear failures.

:class:`SlackDelivery` implements :class:`jobs.ports.Deliver`.

**Exactly once, also when the outcome is unknown.** Every post has an idempotency key (the
alert's or digest's, plus the recipient for alerts), and the key travels *in Slack itself*: each
message carries ``metadata`` ``{"event_type": "flowbot_delivery", "event_payload": {"key": ...}}``,
which Slack stores with the message and returns from ``conversations.history``. Posting:

1. ``sent:KEY`` in Redis (the fast path): posted before, report success without posting;
2. take a *lease* on ``KEY`` (a Redis lock naming this host and pid, 10 minutes). Another
   replica holding it means "being posted elsewhere": report "not yet" (False). A lease whose
   holder is a dead process on this host (``kill -9``, then restart) is taken over at once;
3. when the outcome of an earlier attempt is unknown, **look for the key in Slack** before
   posting: an ``attempt:KEY`` record (written before every post, removed when Slack answers)
   survives a timeout, a dropped connection or a crash; and while Flowbot's delivery ledger in
   Redis is younger than :data:`LOOKBACK` (Redis restarted empty or restored from an old file),
   every first post is looked up. The lookup reads the conversation's recent history
   (``conversations.history`` with ``include_all_metadata``, from the attempt on, at most
   :data:`HISTORY_PAGES` pages; a DM through ``conversations.open``). Found: recorded as sent,
   not posted again. Slack slow or down during the lookup: nothing posted now, retried at the
   next tick. An alert re-fired under a new episode (Redis lost its state, or a worker died
   while posting it, before saving the episode; the attempt is also recorded under the alert's
   team, rule and recipient) is recognised too: its rule's newest message there is a standing
   alert of the same or higher severity;
4. post with the metadata; Slack answered: write ``sent:KEY`` (30 days) and drop the attempt;
   Slack refused (``ok: false``, 429s exhausted): drop the attempt and the lease, retried later;
   no answer (timeout, connection dropped, 5xx): keep the attempt, release the lease.

Posts go through a client of their own whose only automatic retry is the 429 one: slack_sdk's
default handler would re-send a post whose connection dropped after Slack stored it.

**Without the history scopes** (``channels:history``, ``groups:history``, ``im:history``) or with
the bot outside a public channel it posts to through ``chat:write.public``, the lookup cannot be
made: Flowbot then posts again (a possible duplicate rather than a lost alert), logs a warning
and shows the missing scope in ``flowbot doctor`` (see docs/operations.md, "Guarantees").

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
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from bot.blocks import Block
from bot.blocks.alerts import render_alert as default_render_alert
from bot.blocks.digest import render_digest as default_render_digest
from jobs.errors import StoreUnavailable
from jobs.model import Alert, Digest
from jobs.ports import Clock, SystemClock
from jobs.store import Lock, Store
from jobs.windows import WindowDM

log = logging.getLogger(__name__)

Message = tuple[list[Block], str]
LEASE = timedelta(minutes=10)
SENT_TTL = timedelta(days=30)
PROBLEMS_TTL = timedelta(days=30)
EVENT_TYPE = "flowbot_delivery"  # the metadata event_type of every Flowbot post
LOOKBACK = timedelta(days=2)  # how far back a lookup reads, and how long an attempt is remembered
HISTORY_PAGES = 5  # at most this many pages of 200 messages per lookup
MARGIN = timedelta(minutes=5)  # lookups start this much before the attempt (clock skew)
_SEVERITY_RANK = {"warn": 1, "critical": 2}
_TRANSIENT = frozenset({"ratelimited", "internal_error", "fatal_error", "service_unavailable",
                        "request_timeout"})

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
    "history:missing_scope": "Flowbot cannot look for a post whose outcome was unknown, so it may"
    " post it twice: add the channels:history, groups:history and im:history scopes and reinstall",
    "history:not_in_channel": "Flowbot posts here without being a member (chat:write.public) and"
    " cannot read the history to avoid a double post after a timeout: /invite @Flowbot",
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


class _Unknown(Exception):
    """The lookup could not be made now (Slack slow or failing): decide at the next attempt."""


class _Cannot(Exception):
    """The lookup can never be made here (a scope, membership): post without it."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class SlackDelivery:
    """Posts alerts and digests through ``client``; idempotent via ``store`` and Slack's own
    history (see module doc)."""

    def __init__(
        self,
        client: WebClient,
        store: Store,
        *,
        clock: Clock | None = None,
        sleep: Callable[[float], None] = time.sleep,
        lease: timedelta = LEASE,
        lookback: timedelta = LOOKBACK,
        render_alert: Callable[[Alert], Message] | None = None,
        render_digest: Callable[[Digest], Message] | None = None,
    ) -> None:
        self.client = client
        self.store = store
        self.clock = clock or SystemClock()
        self.lease = lease
        self.lookback = lookback
        install_rate_limit_retry(client, sleep=sleep)
        # Posts never retry a dropped connection by themselves (it may have been stored).
        retries: list[RetryHandler] = [RateLimitRetry(3, sleep=sleep)]
        self._poster = WebClient(token=client.token, base_url=client.base_url,
                                 timeout=client.timeout, proxy=client.proxy,
                                 headers=dict(client.headers), retry_handlers=retries)
        self._render_alert = render_alert or default_render_alert
        self._render_digest = render_digest or default_render_digest
        self._warned: set[str] = set()

    # ------------------------------------------------------------------ Deliver

    def alert(self, alert: Alert) -> bool:
        """Post ``alert`` to each recipient once. True when every recipient has it."""
        blocks, text = self._render_alert(alert)
        results = [
            self._post_once(f"{alert.idempotency_key}:{to}", to, blocks, text, _alert_payload(alert),
                            identity=f"alert:{alert.team}:{alert.rule}:{to}")
            for to in alert.recipients
        ]
        return all(r is not None for r in results)

    def digest(self, digest: Digest) -> bool:
        """Post ``digest`` to its channel once, then its chart in the thread (best effort).

        True when the digest is posted (now or before).
        """
        blocks, text = self._render_digest(digest)
        payload = {"kind": "digest", "team": digest.team}
        ts = self._post_once(digest.idempotency_key, digest.channel, blocks, text, payload)
        if ts is None:
            return False
        if ts and digest.chart_png:  # "" means posted before: its chart went with it then
            self._upload_chart(digest, ts, digest.chart_png)
        return True

    def window_dm(self, dm: WindowDM) -> bool:
        """Post a review-window DM to its member once (``jobs.ports.DeliverDM``). True when
        posted (now or before)."""
        from bot.blocks.windows import render_window_dm

        blocks, text = render_window_dm(dm)
        about = {"kind": f"review-{dm.kind}", "login": dm.login}
        return self._post_once(dm.idempotency_key, dm.slack_id, blocks, text, about) is not None

    # ------------------------------------------------------------------ posting

    def _post_once(
        self, key: str, channel: str, blocks: Sequence[Block], text: str, about: dict[str, Any],
        *, identity: str = "",
    ) -> str | None:
        """The new message's ``ts``; ``""`` when posted before; None when not posted (yet).

        ``identity`` names what an alert is about (team, rule, recipient) across episodes: a
        worker killed while posting an alert never saved its new episode, so the restarted one
        re-fires it under another key; the attempt recorded under the identity catches that.
        """
        now = self.clock.now()
        try:
            if self.store.was_claimed(f"sent:{key}"):
                return ""
            lease = self.store.try_lock(f"post:{key}", ttl=self.lease)
            if not lease.acquired:
                log.info("%s is being posted elsewhere; leaving it to that attempt", key)
                return None
        except StoreUnavailable as err:
            log.error("not posting %s: %s", key, err)  # without Redis we cannot promise once
            return None
        try:
            return self._post_leased(key, channel, blocks, text, about, now=now, identity=identity)
        finally:
            self._unlock(lease)

    def _post_leased(
        self, key: str, channel: str, blocks: Sequence[Block], text: str, about: dict[str, Any],
        *, now: datetime, identity: str,
    ) -> str | None:
        names = [key, *([identity] if identity else [])]
        try:
            since, memory_lost = self._unknown_since(key, now, identity)
        except StoreUnavailable as err:
            log.error("not posting %s: %s", key, err)
            return None
        cannot = ""
        if since is not None:
            try:
                found = self._find(key, channel, about, since=since, loose=memory_lost)
            except _Unknown as err:
                log.warning("could not look for %s in Slack (%s); trying again later", key, err)
                return None
            except _Cannot as err:
                cannot, found = err.code, None
            if found is not None:
                log.warning("%s was already in Slack (%s, ts %s); not posting it again", key,
                            channel, found)
                self._mark_sent(key, channel, names)
                return ""
        try:
            for name in names:
                self.store.set_json("delivery", "attempt", name, value={"at": now.isoformat()},
                                    ttl=self.lookback)
        except StoreUnavailable as err:
            log.error("not posting %s: %s", key, err)
            return None
        metadata = {"event_type": EVENT_TYPE, "event_payload": {"key": key, **about}}
        try:
            resp = self._poster.chat_postMessage(
                channel=channel, blocks=list(blocks), text=text, unfurl_links=False,
                unfurl_media=False, metadata=metadata,
            )
        except SlackApiError as err:
            if _status(err) >= 500:  # Slack may have stored it: the attempt stays on record
                log.warning("posting %s to %s: Slack answered %s; looked up before the next try",
                            key, channel, _status(err))
                return None
            self._forget_attempts(names)  # an answer: Slack did not store it
            self._refused(channel, _code(err), key)
            return None
        except (SlackClientError, URLError, OSError) as err:
            log.warning("posting %s to %s got no answer (%s); it will be looked up in Slack"
                        " before it is retried", key, channel, err)
            return None
        self._mark_sent(key, channel, names)
        if cannot:
            self._cannot_look(channel, cannot, key)
        return str(resp.get("ts") or "posted")

    def _unknown_since(
        self, key: str, now: datetime, identity: str = ""
    ) -> tuple[datetime | None, bool]:
        """Where a lookup must start (None: no lookup needed), and whether it may match loosely
        (Redis lost its memory, or an earlier episode's post of this alert is unknown).

        Raises StoreUnavailable.
        """
        for name, loose in ((key, False), *(((identity, True),) if identity else ())):
            attempt = self.store.get_json("delivery", "attempt", name)
            if isinstance(attempt, dict):
                at = _parse_time(attempt.get("at"))
                return (at - MARGIN if at is not None else now - self.lookback), loose
        ledger = self.store.get_json("delivery", "ledger")
        born = _parse_time(ledger.get("since")) if isinstance(ledger, dict) else None
        if born is None:
            log.warning("Flowbot's delivery records are new or were lost (Redis restarted empty?):"
                        " for the next %.0f h every post is first looked up in Slack",
                        self.lookback.total_seconds() / 3600)
            self.store.set_json("delivery", "ledger", value={"since": now.isoformat()}, ttl=SENT_TTL)
            born = now
        if now - born < self.lookback:
            return now - self.lookback, True
        return None, False

    def _find(
        self, key: str, channel: str, about: dict[str, Any], *, since: datetime, loose: bool
    ) -> str | None:
        """The ``ts`` of the message carrying ``key`` (or, when ``loose``, a standing alert it
        repeats) in ``channel``'s history since ``since``; None when it is not there.

        Raises _Unknown (try later) or _Cannot (cannot look here)."""
        try:
            conversation = channel
            if channel[:1] in ("U", "W"):  # a DM: its history is the IM's
                conversation = str(self.client.conversations_open(users=channel)["channel"]["id"])
            cursor = ""
            recovered = False  # the rule's newest word here is a recovery: no loose match
            for _ in range(HISTORY_PAGES):
                page = self.client.conversations_history(
                    channel=conversation, oldest=f"{since.timestamp():.6f}", limit=200,
                    include_all_metadata=True, cursor=cursor or None,
                )
                for message in page.get("messages") or []:
                    verdict = _match(message, key, about, loose=loose and not recovered)
                    if verdict:
                        return str(message.get("ts"))
                    recovered = recovered or verdict is False
                cursor = str((page.get("response_metadata") or {}).get("next_cursor") or "")
                if not cursor:
                    break
        except SlackApiError as err:
            code = _code(err)
            if code in ("missing_scope", "not_in_channel"):
                raise _Cannot(code) from None
            if _status(err) >= 500 or code in _TRANSIENT:
                raise _Unknown(code) from None
            return None  # channel_not_found, invalid_auth...: the post will say it properly
        except (SlackClientError, URLError, OSError) as err:
            raise _Unknown(str(err) or type(err).__name__) from None
        self._history_ok(channel)
        return None

    def _mark_sent(self, key: str, channel: str, names: Sequence[str]) -> None:
        now = self.clock.now()
        try:
            self.store.claim_once(f"sent:{key}", ttl=SENT_TTL)
            self._forget_attempts(names)
            ledger = self.store.get_json("delivery", "ledger")
            since = ledger.get("since") if isinstance(ledger, dict) else None
            self.store.set_json("delivery", "ledger", value={"since": since or now.isoformat()},
                                ttl=SENT_TTL)
            self._resolved(channel)
        except StoreUnavailable as err:
            log.error("posted %s but could not record it (looked up in Slack next time): %s",
                      key, err)

    def _forget_attempts(self, names: Sequence[str]) -> None:
        try:
            for name in names:
                self.store.delete("delivery", "attempt", name)
        except StoreUnavailable as err:
            log.warning("could not clear the attempt record of %s: %s", names[0], err)

    def _unlock(self, lease: Lock) -> None:
        try:
            self.store.unlock(lease)
        except StoreUnavailable:
            log.warning("could not release %s; it is retried when its lease expires", lease.name)

    def _cannot_look(self, channel: str, code: str, key: str) -> None:
        if f"{channel}:{code}" not in self._warned:
            self._warned.add(f"{channel}:{code}")
            log.warning("could not look for %s in %s (%s) and posted it without the check, so"
                        " it may have arrived twice. To fix: %s", key, channel, code, FIXES[f"history:{code}"])
        self._refused(f"history:{channel}", f"history:{code}", key, quiet=True)

    def _history_ok(self, channel: str) -> None:
        try:
            problems = _read_problems(self.store)
        except StoreUnavailable:
            return  # nothing to clear that we could read
        if problems.pop(f"history:{channel}", None) is not None:
            self._write_problems(problems)

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

    # ------------------------------------------------------------------ problems

    def _refused(self, channel: str, code: str, key: str, *, quiet: bool = False) -> None:
        fix = FIXES.get(code)
        if fix is None:
            log.warning("Slack refused %s in %s: %s; it will be retried", key, channel, code)
            return
        where = "*" if code in _WORKSPACE_WIDE else channel
        now = self.clock.now()
        try:
            problems = _read_problems(self.store)
        except StoreUnavailable as err:
            log.warning("could not record a delivery problem: %s", err)
            return
        known = problems.get(where)
        if (known is None or known.get("code") != code) and not quiet:
            log.error("Slack refused posting to %s: %s. To fix: %s", channel, code, fix)
        if known is None or known.get("code") != code:
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


def _alert_payload(alert: Alert) -> dict[str, Any]:
    return {"kind": "alert", "team": alert.team, "rule": alert.rule, "severity": alert.severity,
            "recovered": alert.recovered, "episode": alert.episode}


def _match(message: Any, key: str, about: dict[str, Any], *, loose: bool) -> bool | None:
    """True: this message is the post; False: it proves the post is not standing; None: no say.

    ``loose`` (Redis lost its memory): an alert whose rule's newest message here is a standing
    alert of the same or higher severity was re-fired only because its state was lost.
    """
    if not isinstance(message, dict):
        return None
    metadata = message.get("metadata")
    if not isinstance(metadata, dict) or metadata.get("event_type") != EVENT_TYPE:
        return None
    payload = metadata.get("event_payload")
    if not isinstance(payload, dict):
        return None
    if payload.get("key") == key:
        return True
    if not loose or about.get("kind") != "alert" or about.get("recovered"):
        return None
    if payload.get("kind") != "alert" or (payload.get("team"), payload.get("rule")) != (
            about.get("team"), about.get("rule")):
        return None
    if payload.get("recovered"):
        return False  # the newest word on this rule is a recovery: a new breach is news
    standing = _SEVERITY_RANK.get(str(payload.get("severity")), 0)
    return standing >= _SEVERITY_RANK.get(str(about.get("severity")), 0)


def _parse_time(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _status(err: SlackApiError) -> int:
    try:
        return int(err.response.status_code)
    except (AttributeError, TypeError, ValueError):
        return 0


def _code(err: SlackApiError) -> str:
    try:
        return str(err.response.get("error") or f"http_{err.response.status_code}")
    except AttributeError:
        return "unknown_error"
