"""The only code that talks to GitHub: ``client`` (connection, retries, budget), ``fetch``
(the requests), ``budget`` (rate-limit accounting), ``parse`` (payloads to records),
``queries`` (the GraphQL documents)."""

from __future__ import annotations

COLLECT_VERSION = 2
"""What is collected per PR. Bump it when ``queries`` or ``parse`` change what a record
holds: every repository's cursor resets and its history is collected again.

2: commits, reviews and timeline items paged past 100 per PR (``PullRequest.incomplete``)."""
