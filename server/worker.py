"""``windflow worker``: an arq worker that executes queued runs (distributed mode).

Workers poll Redis every ``POLL_DELAY`` seconds (arq's default of 0.5 s would add half a second
to every run's start); each takes up to ``WINDFLOW_WORKER_CONCURRENCY`` runs at a time.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from arq import func
from arq.connections import RedisSettings
from arq.worker import Worker
from redis.asyncio import Redis

from server.db.engine import close_engine, open_engine
from server.db.migrations import migrate
from server.runs.engine import Engine, worker_name
from server.runs.events import BackendPublisher
from server.runs.queue import JOB_NAME
from server.settings import Settings, SettingsError

log = logging.getLogger(__name__)
POLL_DELAY = 0.01
JOB_TIMEOUT = 86_400 + 600  # a run's own timeout is at most a day; this only backs it up


async def execute_run(ctx: dict[str, Any], run_id: str) -> str:
    engine: Engine = ctx["engine"]
    return await engine.execute(uuid.UUID(run_id))


def build_worker(settings: Settings, **overrides: Any) -> Worker:
    if not settings.redis_url:
        raise SettingsError("windflow worker needs WINDFLOW_REDIS_URL (the embedded server runs its own worker)")
    state: dict[str, Any] = {}

    async def startup(ctx: dict[str, Any]) -> None:
        from litestar.channels.backends.redis import RedisChannelsPubSubBackend

        state["db"] = await open_engine(settings)
        await migrate(state["db"])
        state["redis"] = Redis.from_url(settings.redis_url)
        publisher = BackendPublisher(RedisChannelsPubSubBackend(redis=state["redis"]))
        ctx["engine"] = Engine(settings, publisher, worker_name("worker"))
        log.info("worker ready", extra={"worker": ctx["engine"].worker, "concurrency": settings.worker_concurrency})

    async def shutdown(ctx: dict[str, Any]) -> None:
        if "engine" in ctx:
            ctx["engine"].interrupt_all()
        if "redis" in state:
            await state["redis"].aclose()
        if "db" in state:
            await close_engine(state["db"])

    options: dict[str, Any] = {
        "functions": [func(execute_run, name=JOB_NAME, keep_result=0, max_tries=1000, timeout=JOB_TIMEOUT)],
        "redis_settings": RedisSettings.from_dsn(settings.redis_url),
        "max_jobs": settings.worker_concurrency,
        "poll_delay": POLL_DELAY,
        "on_startup": startup,
        "on_shutdown": shutdown,
        "keep_result": 0,
        "job_timeout": JOB_TIMEOUT,
        **overrides,
    }
    return Worker(**options)
