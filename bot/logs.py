"""How Flowbot's processes log: one format, and no secret in any line, DEBUG included.

At DEBUG, slack_sdk writes whole request lines: the ``response_url`` of every answer (a URL
that can post to the user's channel for 30 minutes) from ``slack_sdk.webhook``, and whole
Socket Mode payloads (with their ``response_url``s) from ``slack_sdk.socket_mode``. Those
loggers are kept at INFO whatever the level asked for, and every line that still reaches a
handler goes through :class:`SecretFilter`, which masks Slack and GitHub tokens, Slack's
response, webhook and file upload URLs, and the secrets inside any URL or DSN
(``jobs.store.redact_url``).
"""

from __future__ import annotations

import logging
import re

from jobs.store import redact_url

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Loggers whose DEBUG lines carry response URLs or whole payloads: never below INFO.
QUIET_LOGGERS = ("slack_sdk.webhook", "slack_sdk.socket_mode", "slack_bolt.adapter.socket_mode")
# Loggers whose owners test ``logger.level <= DEBUG`` (the level set on the logger itself, which
# is NOTSET, 0, until someone sets it) before formatting debug lines: slack_sdk's WebClient then
# renders every request's JSON body and every response into a string that is thrown away,
# 0.45 ms of CPU per views.publish of a 15 KB App Home view. Their level is set to their
# effective level, so the test means what it says.
LEVEL_TESTED = ("slack_sdk.web.base_client",)

_TOKEN = re.compile(r"\b(xox[a-z]|xapp|gh[pousr]|github_pat)([-_])[A-Za-z0-9_-]{6,}")
# response_url / incoming webhooks (hooks.) and files upload v2's one-time upload URLs (files.)
_SLACK_HOOK = re.compile(r"(https://(?:hooks|files)\.slack(?:-gov)?\.com)/[^\s'\"<>,)]+")
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>,)]+", re.IGNORECASE)


def redact_text(text: str) -> str:
    """``text`` with tokens, Slack response/webhook URLs and URL credentials masked."""
    text = _TOKEN.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)
    text = _SLACK_HOOK.sub(lambda m: f"{m.group(1)}/***", text)
    return _URL.sub(lambda m: redact_url(m.group(0)), text)


class SecretFilter(logging.Filter):
    """Rewrites each record's message with :func:`redact_text` (arguments merged first)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        safe = redact_text(message)
        if safe != message:
            record.msg, record.args = safe, None
        if record.exc_info and not record.exc_text:  # a traceback's message may quote a URL too
            record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
        return True


def configure(level: str = "WARNING") -> None:
    """Configure the root logger at ``level`` (a name, as in ``FLOWBOT_LOG_LEVEL``) with a
    secret filter on its handlers, and keep :data:`QUIET_LOGGERS` at INFO or above."""
    logging.basicConfig(level=level.upper(), format=FORMAT)
    install()


def install(logger: logging.Logger | None = None) -> None:
    """Add the secret filter to ``logger``'s handlers (the root's by default), once each, raise
    :data:`QUIET_LOGGERS` to INFO, and give :data:`LEVEL_TESTED` their effective level. For
    hosts that set up logging themselves (gunicorn)."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, SecretFilter) for f in handler.filters):
            handler.addFilter(SecretFilter())
    floor = max(logging.INFO, logging.getLogger().getEffectiveLevel())  # INFO at most: never louder
    for name in QUIET_LOGGERS:
        quiet = logging.getLogger(name)
        if quiet.getEffectiveLevel() < floor:
            quiet.setLevel(floor)
    for name in LEVEL_TESTED:
        tested = logging.getLogger(name)
        if tested.level == logging.NOTSET:
            tested.setLevel(tested.getEffectiveLevel())
