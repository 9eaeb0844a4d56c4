"""Recovery: no run stays ``pending`` or ``running`` forever, and none is silently run twice.

Each pass, at start-up and every ``WINDFLOW_RUN_RECOVERY_INTERVAL`` seconds:

1. a ``running`` run whose worker stopped heart-beating fails with the reason "worker lost"
   (Ansible may have changed hosts already: it is never started again on its own);
2. a ``pending`` run older than ``WINDFLOW_RUN_PENDING_TIMEOUT`` fails, saying so;
3. a ``pending`` run with no job in the queue is queued again, after 2, 4, … seconds, at most
   ``MAX_ATTEMPTS`` times in all; then it fails with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import shutil
import socket
from dataclasses import asdict, dataclass
from pathlib import Path

from piccolo.query.functions.aggregate import Count

from server.auth.service import utcnow
from server.db.tables import Run
from server.runs.engine import run_directory
from server.runs.events import Publisher, publish_status
from server.runs.executor import kill_tree
from server.runs.metrics import RunMetrics
from server.runs.queue import RunQueue
from server.runs.service import enqueue_or_defer
from server.runs.status import RunStatus
from server.settings import Settings

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3


@dataclass
class Recovered:
    retried: int = 0
    failed: int = 0
    skipped: int = 0
    errors: int = 0


async def _fail(publisher: Publisher, run_id: object, reason: str, expected: RunStatus) -> bool:
    changed = await (
        Run.update({Run.status: RunStatus.failed, Run.reason: reason, Run.finished_at: utcnow()})
        .where(Run.id == run_id, Run.status == expected)
        .returning(Run.id)
    )
    if changed:
        row = await Run.select(Run.event_count).where(Run.id == run_id).first()
        await publish_status(publisher, str(run_id), RunStatus.failed, reason, row["event_count"] if row else 0)
    return bool(changed)


async def recover(
    settings: Settings, queue: RunQueue, publisher: Publisher, metrics: RunMetrics | None = None
) -> Recovered:
    counts = Recovered()
    now = utcnow()
    silent_since = now - dt.timedelta(seconds=settings.run_heartbeat_timeout)
    lost = await Run.select(Run.id, Run.worker, Run.heartbeat_at).where(
        Run.status == RunStatus.running, Run.heartbeat_at < silent_since
    )
    for run in lost:
        since = f"{run['heartbeat_at']:%H:%M:%S} UTC"
        reason = f"worker lost: {run['worker'] or 'its worker'} stopped reporting (no heartbeat since {since})"
        if await _fail(publisher, run["id"], reason, RunStatus.running):
            counts.failed += 1
            if run["worker"].split(":")[1:2] == [socket.gethostname()]:
                # Its Ansible processes outlived it here: stop them, the run is over.
                await asyncio.to_thread(kill_tree, run_directory(settings, run["id"]), orphans=True)

    too_old = now - dt.timedelta(seconds=settings.run_pending_timeout)
    pending = await Run.select(Run.id, Run.created_at, Run.attempts, Run.next_attempt_at, Run.reason).where(
        Run.status == RunStatus.pending
    )
    for run in pending:
        try:
            if run["created_at"] < too_old:
                reason = f"not started within {settings.run_pending_timeout} s (no worker took it)"
                counts.failed += await _fail(publisher, run["id"], reason, RunStatus.pending)
            elif run["next_attempt_at"] and run["next_attempt_at"] > now or await queue.is_queued(run["id"]):
                counts.skipped += 1
            elif run["attempts"] >= MAX_ATTEMPTS:
                reason = f"could not be queued after {MAX_ATTEMPTS} attempts ({run['reason'] or 'the queue lost it'})"
                counts.failed += await _fail(publisher, run["id"], reason, RunStatus.pending)
            else:
                delay = 2.0 ** run["attempts"]
                await Run.update(
                    {Run.attempts: run["attempts"] + 1, Run.next_attempt_at: now + dt.timedelta(seconds=delay)}
                ).where(Run.id == run["id"])
                if await enqueue_or_defer(queue, run["id"], delay):
                    counts.retried += 1
                else:
                    counts.errors += 1
        except Exception:  # noqa: BLE001 - one bad run must not stop the pass
            log.exception("recovery could not handle a run", extra={"run_id": str(run["id"])})
            counts.errors += 1
    await asyncio.to_thread(prune_artifacts, settings, now)
    if metrics is not None:
        await _refresh_gauges(queue, metrics, counts)
    log.info("run recovery pass", extra=asdict(counts))
    return counts


def prune_artifacts(settings: Settings, now: dt.datetime) -> int:
    """Delete run directories (runner's artifacts) older than ``WINDFLOW_RUN_RETENTION_DAYS``.

    Secrets are gone long before: each run removes its own when it ends. Directories of runs
    still executing are recent, so the age alone decides.
    """
    runs = Path(settings.data_dir) / "runs"
    if not runs.is_dir():
        return 0
    cutoff = (now - dt.timedelta(days=settings.run_retention_days)).timestamp()
    removed = 0
    for directory in runs.iterdir():
        if directory.is_dir() and directory.stat().st_mtime < cutoff:
            shutil.rmtree(directory, ignore_errors=True)
            removed += 1
    return removed


async def _refresh_gauges(queue: RunQueue, metrics: RunMetrics, counts: Recovered) -> None:
    for outcome, value in asdict(counts).items():
        metrics.recovery.labels(outcome).inc(value)
    rows = await Run.select(Run.status, Count(Run.id, alias="count")).group_by(Run.status)
    by_status = {row["status"]: row["count"] for row in rows}
    for status in RunStatus:
        metrics.runs.labels(status.value).set(by_status.get(status.value, 0))
    try:
        metrics.queue_depth.set(await queue.depth())
    except Exception:  # noqa: BLE001 - the queue being down is reported by the health check
        log.warning("queue depth unavailable")


async def recovery_loop(
    settings: Settings, queue: RunQueue, publisher: Publisher, metrics: RunMetrics, stop: asyncio.Event | None = None
) -> None:
    """A pass, then a pause, until ``stop`` is set; errors are logged and the loop goes on.

    Stopping never cancels a pass under way: a database call cut off in the middle would finish
    on its driver thread after the event loop is gone.
    """
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            await recover(settings, queue, publisher, metrics)
        except Exception:  # noqa: BLE001
            log.exception("run recovery pass failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.run_recovery_interval)
