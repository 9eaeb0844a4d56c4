"""``/api/v1/runs``: launch a playbook version against an inventory, follow it, cancel, relaunch."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, Parameter

from server.api.conventions import READ, WRITE, AnyRequest, Body, Page, Paging, problems
from server.api.security import operator, principal_of, viewer
from server.runs import service
from server.runs.spec import RunOptions

StatusName = Literal["pending", "running", "successful", "failed", "canceled", "timeout"]


class RunCreate(RunOptions, kw_only=True, forbid_unknown_fields=True):
    """What to run where (and which version: the latest by default), with the run's options."""

    playbook_id: uuid.UUID
    inventory_id: uuid.UUID
    version: Annotated[int, msgspec.Meta(ge=1)] | None = None

    def options(self) -> RunOptions:
        fields = msgspec.structs.asdict(self)
        for key in ("playbook_id", "inventory_id", "version"):
            fields.pop(key)
        return RunOptions(**fields)


class Relaunch(Body):
    hosts: Literal["all", "failed"] = "all"


class RunRead(msgspec.Struct):
    id: uuid.UUID
    organization_id: uuid.UUID
    playbook_id: uuid.UUID | None
    playbook_version_id: uuid.UUID | None
    version: int | None
    inventory_id: uuid.UUID | None
    options: RunOptions
    status: StatusName
    reason: str
    attempts: int
    worker: str
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    host_stats: dict[str, dict[str, int]]
    event_count: int
    relaunch_of: uuid.UUID | None
    created_by: uuid.UUID | None
    created_at: dt.datetime
    proposal_id: uuid.UUID | None = None


def _run(row: dict[str, Any]) -> RunRead:
    return msgspec.convert(row, RunRead)


class RunController(Controller):
    path = "/runs"
    tags = ["runs"]

    @post(
        "/",
        operation_id="launchRun",
        summary="Launch a run (operators); it is stored as pending, then queued",
        guards=[operator],
        responses=problems(*WRITE),
    )
    async def launch(self, data: JSONBody[RunCreate], request: AnyRequest, run_queue: NamedDependency[Any]) -> RunRead:
        # Dependencies typed Any: Litestar validates parameters with msgspec, which cannot check a Protocol.
        row = await service.launch_run(
            principal_of(request), run_queue, data.playbook_id, data.inventory_id, data.options(), data.version
        )
        return _run(row)

    @get(
        "/",
        operation_id="listRuns",
        summary="Runs of your organization, newest first",
        guards=[viewer],
        responses=problems(401, 403, 404, 422),
    )
    async def list_runs(
        self,
        request: AnyRequest,
        paging: NamedDependency[Paging],
        status: Annotated[StatusName | None, Parameter(description="only runs in this status")] = None,
    ) -> Page[RunRead]:
        rows, total = await service.list_runs(principal_of(request), paging.page, paging.size, status)
        return paging.of([_run(r) for r in rows], total)

    @get(
        "/{run_id:uuid}",
        operation_id="getRun",
        summary="One run with its per-host summary",
        guards=[viewer],
        responses=problems(*READ, 403),
    )
    async def get_run(self, run_id: FromPath[uuid.UUID], request: AnyRequest) -> RunRead:
        return _run(await service.get_run(principal_of(request), run_id))

    @post(
        "/{run_id:uuid}/cancel",
        operation_id="cancelRun",
        status_code=200,
        summary="Cancel a pending or running run (operators)",
        guards=[operator],
        responses=problems(*WRITE),
    )
    async def cancel(
        self, run_id: FromPath[uuid.UUID], request: AnyRequest, run_publisher: NamedDependency[Any]
    ) -> RunRead:
        return _run(await service.cancel_run(principal_of(request), run_publisher, run_id))

    @post(
        "/{run_id:uuid}/relaunch",
        operation_id="relaunchRun",
        summary="Run again with the same options, on all hosts or only the failed ones (operators)",
        guards=[operator],
        responses=problems(*WRITE),
    )
    async def relaunch(
        self,
        run_id: FromPath[uuid.UUID],
        data: JSONBody[Relaunch],
        request: AnyRequest,
        run_queue: NamedDependency[Any],
    ) -> RunRead:
        return _run(await service.relaunch_run(principal_of(request), run_queue, run_id, data.hosts))
