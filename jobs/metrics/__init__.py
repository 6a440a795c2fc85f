"""Pandas metric tables and aggregates: records in, tables out, ``now`` passed in, no I/O.

Implements ``docs/metrics.md`` over whole tables, vectorised (records are flattened once into
numpy columns; no pandas operation per PR). ``jobs.timeline`` is the per-PR reference:
``pr_table`` and ``request_table`` agree with ``pr_clocks`` and ``request_responses`` to
1e-9 h on every clock (tested on generated PRs). Typical use for one team::

    cols = columns(prs, identity=identity)               # flatten the records once
    prs_t = pr_table(cols, identity=identity, calendar=cal, now=now)
    reqs = request_table(cols, identity=identity, team_members=teams, calendar=cal, now=now)
    revs = review_table(cols, identity=identity, calendar=cal, now=now)
    ci = check_table(cols)
    week = window(prs_t, now, 7)                         # merged in the window, no bot PRs
    pickup = pr_latency(week, "pickup")                  # Latency: p50/p75/p90, h and bh
    loads = reviewer_loads(reqs, revs, now=now, window_days=7)

Every table function also accepts the ``PullRequest`` records directly.
"""

from jobs.metrics._columns import Columns, columns
from jobs.metrics.checks import FAILED, check_table, workflow_stats
from jobs.metrics.flow import ci_wait_hours, flow_days, size_mix
from jobs.metrics.latency import (
    CLOCKS,
    ai_split,
    latency,
    latency_by,
    percentiles,
    pr_latency,
    request_latency,
    window,
)
from jobs.metrics.loads import focus_hours_per_week, load_concentration, reviewer_loads
from jobs.metrics.prs import SIZE_LABELS, STAGES, pr_table, size_buckets
from jobs.metrics.queue import queue_items
from jobs.metrics.requests import request_table, review_table

__all__ = [
    "CLOCKS",
    "FAILED",
    "SIZE_LABELS",
    "STAGES",
    "Columns",
    "ai_split",
    "check_table",
    "ci_wait_hours",
    "columns",
    "flow_days",
    "focus_hours_per_week",
    "latency",
    "latency_by",
    "load_concentration",
    "percentiles",
    "pr_latency",
    "pr_table",
    "queue_items",
    "request_latency",
    "request_table",
    "review_table",
    "reviewer_loads",
    "size_buckets",
    "size_mix",
    "window",
    "workflow_stats",
]
