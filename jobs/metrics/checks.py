"""CI attempts as a table and per-workflow statistics (docs/metrics.md "CI duration", "CI").

The unit is one attempt of a run. Queue time runs from the attempt's ``created_at`` (a rerun's
own job creation) to ``started_at``; run time from ``started_at`` to ``completed_at``. CI on
bot and draft PRs counts: CI is shared capacity.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import pandas as pd

from jobs.identity import Identity
from jobs.metrics._columns import (
    US_PER_MIN,
    Columns,
    columns,
    frame,
    instants_ns,
    ns,
    to_datetimes_many,
    within,
)
from jobs.metrics.latency import percentiles
from jobs.model import PullRequest, WorkflowStats
from jobs.settings import IdentitySettings
import itertools

FAILED: frozenset[str] = frozenset({"failure", "timed_out", "startup_failure"})


def check_table(
    prs: Sequence[PullRequest] | Columns, *, identity: Identity | None = None
) -> pd.DataFrame:
    """One row per CI attempt on the PRs' commits.

    Columns: ``name`` (workflow or check), ``run_id``, ``attempt``, ``head_sha``,
    ``created_at``, ``started_at``, ``completed_at`` (UTC, NaT while not reached),
    ``queue_min`` (created to started), ``run_min`` (started to completed), ``conclusion``
    (None while running), ``completed``, ``failed`` (failure, timed out or startup failure),
    ``on_head`` (the attempt ran on the PR's current head commit), and the PR's ``repo``,
    ``number``, ``key``, ``pr``, ``bot``, ``draft``. ``identity`` (default rules when None)
    decides ``bot``.
    """
    cols = columns(prs, identity=identity or Identity(IdentitySettings()))
    pr = cols.ck_pr
    conclusion = cols.ck_conclusion
    done = cols.ck_done
    failed = np.isin(conclusion, list(FAILED))
    queue = np.maximum(cols.ck_started - cols.ck_created, 0.0) / US_PER_MIN
    run = np.maximum(cols.ck_completed - cols.ck_started, 0.0) / US_PER_MIN
    return frame(
        {
            "name": cols.ck_name,
            "run_id": cols.ck_run_id,
            "attempt": cols.ck_attempt,
            "head_sha": cols.ck_head_sha,
            **dict(zip(("created_at", "started_at", "completed_at"),
                       to_datetimes_many(cols.ck_created, cols.ck_started, cols.ck_completed),
                       strict=True)),
            "queue_min": queue,
            "run_min": run,
            "conclusion": conclusion,
            "completed": done,
            "failed": failed,
            "on_head": cols.ck_head_sha == cols.head_sha[pr],
            "repo": cols.repo[pr],
            "number": cols.number[pr],
            "key": cols.key[pr],
            "pr": pr,
            "bot": cols.bot[pr],
            "draft": cols.draft[pr],
        }
    )


def workflow_stats(
    checks: pd.DataFrame, *, since: datetime, until: datetime
) -> tuple[WorkflowStats, ...]:
    """Per workflow, over attempts created in ``since <= created_at < until``.

    Queue and run p50/p90 in minutes (linear interpolation, over attempts that reached that
    point); failure rate = failed attempts / completed attempts; rerun rate = runs with more
    than one attempt / runs (docs/metrics.md "CI"). ``None`` where nothing was measurable.
    ``attempts`` counts attempts, ``runs`` the distinct runs they belong to (a rerun is one
    run with two attempts), ``in_progress`` the runs whose latest attempt had not completed
    by ``until`` (no conclusion, or completed later). Ordered slowest first (run-time p90,
    then queue p90), then by name.
    """
    keep = within(checks["created_at"], since, until, since_closed=True, until_closed=False)
    if not keep.any():
        return ()
    code, names = pd.factorize(checks["name"].to_numpy(dtype=object)[keep])
    order = np.argsort(code, kind="stable")
    code = code[order]
    bounds = np.r_[np.flatnonzero(np.r_[True, code[1:] != code[:-1]]), code.size]
    queue = checks["queue_min"].to_numpy(dtype=np.float64)[keep][order]
    run = checks["run_min"].to_numpy(dtype=np.float64)[keep][order]
    done = checks["completed"].to_numpy(dtype=bool)[keep][order]
    failed = checks["failed"].to_numpy(dtype=bool)[keep][order]
    run_id = checks["run_id"].to_numpy(dtype=np.int64)[keep][order]
    attempt = checks["attempt"].to_numpy(dtype=np.int64)[keep][order]
    finished = done & ~(instants_ns(checks["completed_at"]) > ns(until))[keep][order]
    out: list[WorkflowStats] = []
    for lo, hi in itertools.pairwise(bounds):
        q = percentiles(queue[lo:hi], (50, 90))
        r = percentiles(run[lo:hi], (50, 90))
        completed = int(done[lo:hi].sum())
        runs, first = np.unique(run_id[lo:hi], return_inverse=True)
        most = np.zeros(runs.size, dtype=np.int64)
        np.maximum.at(most, first, attempt[lo:hi])
        latest = attempt[lo:hi] == most[first]  # each run's latest attempt
        running = np.zeros(runs.size, dtype=bool)
        running[first[latest & ~finished[lo:hi]]] = True
        out.append(
            WorkflowStats(
                name=str(names[code[lo]]),
                attempts=int(hi - lo),
                queue_p50_min=q[0],
                queue_p90_min=q[1],
                run_p50_min=r[0],
                run_p90_min=r[1],
                failure_rate=float(failed[lo:hi].sum()) / completed if completed else None,
                rerun_rate=float(np.count_nonzero(most > 1)) / runs.size,
                runs=int(runs.size),
                in_progress=int(np.count_nonzero(running)),
            )
        )
    out.sort(key=lambda w: (-(w.run_p90_min or -1.0), -(w.queue_p90_min or -1.0), w.name))
    return tuple(out)
