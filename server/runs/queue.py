"""Where a launched run waits for a worker: arq on Redis (distributed) or in-process (embedded).

Jobs carry only the run id, with job id ``run:{id}``, so enqueueing twice is harmless.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)
JOB_NAME = "execute_run"


def job_id(run_id: uuid.UUID | str) -> str:
    return f"run:{run_id}"


class RunQueue(Protocol):
    async def enqueue(self, run_id: uuid.UUID, delay: float = 0) -> bool:
        """Queue the run; False when a job for it is already queued or running."""

    async def is_queued(self, run_id: uuid.UUID) -> bool:
        """A job for the run is waiting or in progress."""

    async def depth(self) -> int: ...

    async def close(self) -> None: ...


class ArqQueue:
    """Distributed mode: ``windflow worker`` processes take jobs from Redis."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self._pool: Any = None

    async def _redis(self) -> Any:
        if self._pool is None:
            from arq import create_pool
            from arq.connections import RedisSettings

            settings = RedisSettings.from_dsn(self.redis_url)
            settings.conn_retries = 0  # fail fast: recovery retries later, the API must not hang
            self._pool = await create_pool(settings)
        return self._pool

    async def enqueue(self, run_id: uuid.UUID, delay: float = 0) -> bool:
        pool = await self._redis()
        job = await pool.enqueue_job(JOB_NAME, str(run_id), _job_id=job_id(run_id), _defer_by=delay or None)
        return job is not None

    async def is_queued(self, run_id: uuid.UUID) -> bool:
        from arq.jobs import Job, JobStatus

        status = await Job(job_id(run_id), await self._redis()).status()
        return status in (JobStatus.deferred, JobStatus.queued, JobStatus.in_progress)

    async def depth(self) -> int:
        from arq.constants import default_queue_name

        return int(await (await self._redis()).zcard(default_queue_name))

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None


class LocalQueue:
    """Embedded mode: the server runs ``execute_run`` itself, at most ``concurrency`` at a time."""

    def __init__(
        self,
        execute: Callable[[uuid.UUID], Awaitable[str]],
        concurrency: int,
        interrupt: Callable[[], None] = lambda: None,
    ) -> None:
        self.execute = execute
        self.interrupt = interrupt
        self.slots = asyncio.Semaphore(max(1, concurrency))
        self.waiting: set[uuid.UUID] = set()
        self.running: set[uuid.UUID] = set()
        self.tasks: set[asyncio.Task[None]] = set()

    async def enqueue(self, run_id: uuid.UUID, delay: float = 0) -> bool:
        if run_id in self.waiting or run_id in self.running:
            return False
        self.waiting.add(run_id)
        task = asyncio.create_task(self._work(run_id, delay), name=f"run {run_id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return True

    async def _work(self, run_id: uuid.UUID, delay: float) -> None:
        try:
            if delay:
                await asyncio.sleep(delay)
            async with self.slots:
                self.waiting.discard(run_id)
                self.running.add(run_id)
                await self.execute(run_id)
        except Exception:
            log.exception("embedded run failed to execute", extra={"run_id": str(run_id)})
        finally:
            self.waiting.discard(run_id)
            self.running.discard(run_id)

    async def is_queued(self, run_id: uuid.UUID) -> bool:
        return run_id in self.waiting or run_id in self.running

    async def depth(self) -> int:
        return len(self.waiting)

    async def close(self) -> None:
        """Drop what waits (it stays pending: recovery queues it again) and stop what runs."""
        self.interrupt()
        for task in list(self.tasks):
            if not any(str(run_id) in task.get_name() for run_id in self.running):
                task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
