"""`/flow health`: when each scheduled job last ran and how it went, and which locks are held."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from bot.blocks import (
    MAX_NAME,
    age,
    context,
    escape,
    fallback,
    header,
    lines_section,
    section,
)
from bot.blocks.frame import Message
from jobs.store import JobRun, LockHolder

if TYPE_CHECKING:
    from jobs.work import WorkStatus  # rq stays out of the web tier's import

OUTCOME_ICONS = {"ok": ":large_green_circle:", "skipped": ":white_circle:", "partial": ":large_yellow_circle:",
                 "failed": ":red_circle:"}


def render_health(
    runs: Mapping[str, Sequence[JobRun]], *, now: datetime, locks: Sequence[LockHolder] = (),
    workers: Mapping[str, datetime] | None = None, work: WorkStatus | None = None,
) -> Message:
    """One line per job: the last run's outcome, when, how long, and its detail; then which
    workers are alive (their heartbeats; None: not known); then the work queue (depths, RQ
    workers taking jobs, failed jobs and the newest one's reason); then one line per held
    lock: who holds it (host, pid), since when, and whether its holder is gone."""
    lines = []
    for job, job_runs in sorted(runs.items()):
        if not job_runs:
            continue
        last = job_runs[0]
        failed = sum(1 for r in job_runs if r.outcome == "failed")
        line = (f"{OUTCOME_ICONS.get(last.outcome, ':white_circle:')} *{escape(job, MAX_NAME)}*: {escape(last.outcome, 40)} "
                f"{age(last.started_at, now).replace(' old', ' ago')}, took {last.seconds:.1f} s")
        if failed:
            line += f" · {failed} of the last {len(job_runs)} failed"
        if last.detail:
            line += f"\n    _{escape(last.detail, 300, multiline=False)}_"
        lines.append(line)
    blocks = [header("Flowbot health")]
    if lines:
        blocks += lines_section(lines)
    elif workers:
        blocks.append(section("No job has run yet; a worker is running, and its first sample"
                              " runs shortly."))
    else:
        blocks.append(section("No job has run yet. Start `flowbot worker` (or `flowbot run`)."))
    if workers is not None:
        blocks.append(section(_workers_line(workers, now)))
    if work is not None:
        blocks.append(section(work_line(work, now=now)))
    if locks:
        blocks += lines_section([lock_line(h, now=now) for h in locks])
    blocks.append(context(f"as of {now:%Y-%m-%d %H:%M} UTC"))
    summary = ", ".join(f"{escape(j, MAX_NAME)} {escape(r[0].outcome, 40)}" for j, r in sorted(runs.items()) if r)
    return blocks, fallback(f"Flowbot health: {summary}" if summary else "Flowbot health: no job has run yet")


def lock_line(holder: LockHolder, *, now: datetime) -> str:
    """``:lock: *sample* held by host pid 123 for 3 min, lapses in 40 s unless renewed``."""
    since = f" for {age(holder.since, now).replace(' old', '')}" if holder.since else ""
    lapse = (f", lapses in {holder.expires_in.total_seconds():.0f} s unless renewed"
             if holder.expires_in is not None else ", never lapses by itself")
    gone = " · *its holder is gone*: the next run takes it over" if holder.alive is False else ""
    who = f"{escape(holder.host)} pid {holder.pid}" if holder.pid else "an unknown holder"
    return f":lock: *{escape(holder.name)}* held by {who}{since}{lapse}{gone}"
def work_line(work: WorkStatus, *, now: datetime) -> str:
    """``:inbox_tray: *Work queue*: refresh 0 · sync 3 queued, ...; 2 workers · 1 failed job``."""
    takers = (f"{len(work.workers)} worker(s) taking jobs" if work.workers
              else "*no worker takes jobs*: start `flowbot worker`")
    line = f":inbox_tray: *Work queue*: {escape(work.depth_line(), 300)}; {takers}"
    newest = work.newest_failure
    if work.failed:
        line += f"\n    :red_circle: {work.failed} failed job(s) in the last 7 days"
        if newest is not None:
            when = f" {age(newest.at, now).replace(' old', ' ago')}" if newest.at else ""
            line += (f"; newest{when}: {escape(newest.description, 120)}:"
                     f" _{escape(newest.reason, 200, multiline=False)}_")
    return line


def _workers_line(workers: Mapping[str, datetime], now: datetime) -> str:
    if not workers:
        return (":red_circle: *No worker is running* (none seen in the last 90 s): nothing samples"
                " or posts until `flowbot worker` (or `flowbot run`) starts.")
    seen = ", ".join(f"{escape(name)} ({age(at, now).replace(' old', ' ago')})"
                     for name, at in sorted(workers.items()))
    return f":large_green_circle: *{len(workers)} worker(s) running*: {seen}"
