"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import logging

import msgspec
from litestar import Controller, Response, get
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.response import Redirect

from server import __version__
from server.api.conventions import problems
from server.api.security import PUBLIC
from server.db.engine import ping

log = logging.getLogger(__name__)


class Health(msgspec.Struct):
    status: str
    version: str


class Readiness(msgspec.Struct):
    status: str
    checks: dict[str, str]


class HealthController(Controller):
    path = "/health"
    tags = ["health"]
    opt = PUBLIC

    @get("/", operation_id="getHealth", summary="Liveness: the process answers", responses=problems())
    async def health(self) -> Health:
        return Health(status="ok", version=__version__)

    @get(
        "/ready",
        operation_id="getReadiness",
        summary="Readiness: database (and Redis when configured) answer",
        responses={
            **problems(),
            503: ResponseSpec(Readiness, description="A dependency is down; `checks` says which."),
        },
    )
    async def ready(self, state: State) -> Response[Readiness]:
        checks: dict[str, str] = {}
        try:
            await ping(state.engine)
            checks["database"] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            log.warning("readiness: database down", extra={"error": type(exc).__name__})
            checks["database"] = f"down: {type(exc).__name__}"
        if state.redis is not None:
            try:
                await state.redis.ping()
                checks["redis"] = "ok"
            except Exception as exc:  # noqa: BLE001
                log.warning("readiness: redis down", extra={"error": type(exc).__name__})
                checks["redis"] = f"down: {type(exc).__name__}"
        ok = all(v == "ok" for v in checks.values())
        return Response(Readiness(status="ok" if ok else "unavailable", checks=checks), status_code=200 if ok else 503)


@get(
    "/metrics",
    operation_id="getMetrics",
    summary="Prometheus metrics (text format)",
    opt=PUBLIC,
    media_type="text/plain; version=0.0.4",
    include_in_schema=True,
    tags=["health"],
    responses=problems(),
)
async def metrics(state: State) -> Response[bytes]:
    return Response(state.metrics.render(), media_type="text/plain; version=0.0.4")  # Litestar adds the charset


@get(
    "/api/docs",
    operation_id="getApiDocs",
    summary="Interactive API documentation (Swagger UI)",
    opt=PUBLIC,
    include_in_schema=False,
)
async def api_docs() -> Redirect:
    return Redirect("/api/schema/swagger", status_code=302)
