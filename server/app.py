"""The one place that wires WindFlow together: ``create_app(settings)``."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import anyio
from litestar import Litestar, Router
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.channels.backends.redis import RedisChannelsPubSubBackend
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore
from litestar.stores.redis import RedisStore
from redis.asyncio import Redis

from server import __version__
from server.accounts.bootstrap import ensure_first_admin
from server.api.assistant import AssistantController, AssistantJobController
from server.api.audit import AuditController
from server.api.auth import AuthController
from server.api.conventions import provide_paging
from server.api.credentials import CredentialController
from server.api.health import HealthController, api_docs, metrics
from server.api.idempotency import IdempotencyMiddleware
from server.api.inventories import InventoryController
from server.api.organizations import MemberController, OrganizationController
from server.api.playbooks import PlaybookController
from server.api.problems import EXCEPTION_HANDLERS
from server.api.request_context import RequestContextMiddleware
from server.api.run_events import RunEventController
from server.api.runs import RunController
from server.api.security import BearerAuthMiddleware
from server.api.stacks import StackController
from server.api.tokens import TokenController
from server.api.users import MeController, UserController
from server.api.webapp import asset, bundle_dir, page
from server.assistant.metrics import AssistantMetrics
from server.assistant.streaming import Hub
from server.assistant.turn import Services
from server.assistant.turns import recover_interrupted
from server.auth.limiter import LoginLimiter
from server.db.engine import close_engine, open_engine
from server.db.migrations import migrate
from server.observability import Metrics
from server.playbooks.library import sync_bundled
from server.runs.engine import Engine, worker_name
from server.runs.events import ChannelsPublisher
from server.runs.metrics import RunMetrics
from server.runs.queue import ArqQueue, LocalQueue, RunQueue
from server.runs.recovery import recovery_loop
from server.runs.stream import SUBSCRIBER_BACKLOG
from server.settings import Settings, SettingsError
from server.stacks.catalogue import Strategy, sync_catalogue

log = logging.getLogger(__name__)
RECOVERY_STOP_TIMEOUT = 30  # seconds a recovery pass under way may take to finish at shutdown
API_PREFIX = "/api/v1"
INTERRUPTED_AFTER = dt.timedelta(hours=1)  # distributed: a reply still streaming this long has lost its server


def check_secret_key(settings: Settings) -> Settings:
    """Refuse a missing or default key in production; in development keep one in the data dir."""
    problem = settings.secret_key_problem()
    if problem is None:
        return settings
    if not settings.is_development:
        raise SettingsError(
            f"{problem}. Set it to a long random value, e.g. "
            "WINDFLOW_SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))'), "
            "or set WINDFLOW_ENV=development to use a generated key kept in the data directory."
        )
    key_file = Path(settings.data_dir) / "secret_key"
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.touch(mode=0o600)
        key_file.write_text(secrets.token_urlsafe(48))
    log.warning("development mode: using the generated secret key in the data directory")
    return settings.replace(secret_key=key_file.read_text().strip())


def make_store(redis: Redis | None, namespace: str) -> Store:
    if redis is None:
        return MemoryStore()
    return RedisStore(redis, namespace=f"windflow:{namespace}")


def create_app(settings: Settings) -> Litestar:
    settings = check_secret_key(settings)
    metrics_registry = Metrics()
    redis: Redis | None = Redis.from_url(settings.redis_url) if settings.redis_url else None
    login_limiter = LoginLimiter(make_store(redis, "login"), settings)
    # Run events fan out through Litestar channels: Redis pub/sub when distributed, memory embedded.
    channels = ChannelsPlugin(
        backend=RedisChannelsPubSubBackend(redis=redis) if redis is not None else MemoryChannelsBackend(),
        arbitrary_channels_allowed=True,
        # A slow follower loses its oldest live messages, never blocks the others; it refetches
        # the missing events from the database (server/runs/stream.py).
        subscriber_max_backlog=SUBSCRIBER_BACKLOG,
        subscriber_backlog_strategy="dropleft",
    )
    run_metrics = RunMetrics(metrics_registry.registry)
    publisher = ChannelsPublisher(channels)
    run_queue: RunQueue
    if settings.redis_url:
        run_queue = ArqQueue(settings.redis_url)
    else:
        run_engine = Engine(settings, publisher, worker_name("embedded"), run_metrics)
        run_queue = LocalQueue(run_engine.execute, settings.worker_concurrency, run_engine.interrupt_all)
    assistant = Services(settings, Hub(), AssistantMetrics(metrics_registry.registry), run_queue)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await anyio.Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
        engine = await open_engine(settings)
        try:
            await migrate(engine)
            await ensure_first_admin(settings.admin_email, settings.admin_password)
            await sync_bundled()
            await sync_catalogue(cast(Strategy, settings.stack_catalogue))
            await recover_interrupted(INTERRUPTED_AFTER if settings.redis_url else dt.timedelta())
            app.state.engine = engine
            stop_recovery = asyncio.Event()
            recovery = asyncio.create_task(recovery_loop(settings, run_queue, publisher, run_metrics, stop_recovery))
            try:
                yield
            finally:
                stop_recovery.set()  # the pass under way finishes: its queries are not cut off
                await asyncio.wait({recovery}, timeout=RECOVERY_STOP_TIMEOUT)
                recovery.cancel()
                await assistant.hub.close()
                await run_queue.close()
        finally:
            await close_engine(engine)
            if redis is not None:
                await redis.aclose()

    middleware: list[Any] = [BearerAuthMiddleware(settings), IdempotencyMiddleware(settings)]
    stores = {}
    if settings.rate_limit:
        stores["rate_limit"] = make_store(redis, "rate_limit")
        middleware.insert(
            0,
            RateLimitConfig(
                rate_limit=("minute", settings.rate_limit), exclude=["/metrics", f"{API_PREFIX}/health"]
            ).middleware,
        )

    api = Router(
        path=API_PREFIX,
        route_handlers=[
            AuthController,
            MeController,
            UserController,
            TokenController,
            OrganizationController,
            MemberController,
            CredentialController,
            AuditController,
            InventoryController,
            PlaybookController,
            StackController,
            RunController,
            RunEventController,
            AssistantController,
            AssistantJobController,
            HealthController,
        ],
    )
    app = Litestar(
        route_handlers=[api, metrics, api_docs, asset, page],
        lifespan=[lifespan],
        middleware=middleware,
        stores=stores,
        dependencies={
            "paging": Provide(provide_paging, sync_to_thread=False),
            "settings": Provide(lambda: settings, sync_to_thread=False, use_cache=True),
            "login_limiter": Provide(lambda: login_limiter, sync_to_thread=False, use_cache=True),
            "run_queue": Provide(lambda: run_queue, sync_to_thread=False, use_cache=True),
            "run_publisher": Provide(lambda: publisher, sync_to_thread=False, use_cache=True),
            "assistant": Provide(lambda: assistant, sync_to_thread=False, use_cache=True),
        },
        plugins=[channels],
        exception_handlers=EXCEPTION_HANDLERS,
        state=State(
            {
                "settings": settings,
                "metrics": metrics_registry,
                "redis": redis,
                "engine": None,
                "web_dir": bundle_dir(settings.web_dir),
            }
        ),
        openapi_config=OpenAPIConfig(
            title="WindFlow API",
            version=__version__,
            path="/api/schema",
            render_plugins=[SwaggerRenderPlugin(path="/swagger"), ScalarRenderPlugin(path="/scalar")],
            use_handler_docstrings=False,
        ),
        cors_config=CORSConfig(allow_origins=list(settings.cors_origins), allow_credentials=False)
        if settings.cors_origins
        else None,
        request_max_body_size=settings.max_body_size,
        debug=False,
        # Logging is ours (JSON on stdout, see observability.py); Litestar's default would replace it.
        logging_config=None,
    )
    # Litestar's middleware only wraps matched routes; this must also see 404s and early errors.
    app.asgi_handler = RequestContextMiddleware(app.asgi_handler, metrics_registry)
    return app
