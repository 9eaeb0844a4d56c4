"""``/api/v1/stacks``: stack definitions with versions, their form, compiles, deployments and diffs."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, Parameter

from server.api.conventions import READ, WRITE, AnyRequest, Body, Page, Paging, problems
from server.api.runs import RunRead
from server.api.security import operator, principal_of, viewer
from server.runs.spec import RunOptions
from server.settings import Settings
from server.stacks import deployments, service

Target = Literal["docker", "kubernetes", "vm", "bare-metal"]
Values = Annotated[dict[str, Any], msgspec.Meta(description="variable name → value (see the form)")]
Parameters = Annotated[
    dict[str, Any], msgspec.Meta(description="target parameters (project, namespace, bind_address, …)")
]
Version = Annotated[int, msgspec.Meta(ge=1, le=2_147_483_647)]
DefinitionInput = Annotated[
    str | dict[str, Any], msgspec.Meta(description="the stack definition, as YAML/JSON text or as an object")
]
ComposeInput = Annotated[str, msgspec.Meta(min_length=1, description="a docker-compose.yml, as text")]
NO_NUL = r"^[^\x00]*$"  # PostgreSQL stores no NUL character
StackName = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=NO_NUL)]
DeploymentName = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")]


class StackCreate(Body):
    definition: DefinitionInput | None = None
    compose: ComposeInput | None = None
    name: StackName | None = None


class StackUpdate(Body):
    definition: DefinitionInput | None = None
    compose: ComposeInput | None = None


class StackSummary(msgspec.Struct):
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    description: str
    category: str
    tags: list[str]
    targets: list[Target]
    semver: str
    source: Literal["manual", "compose", "catalogue", "assistant"]
    latest_version: int
    created_at: dt.datetime
    updated_at: dt.datetime


class StackRead(StackSummary):
    version: int
    definition: dict[str, Any]
    deployment_notes: str
    variables: list[str]


class StackVersionSummary(msgspec.Struct):
    stack_id: uuid.UUID
    version: int
    semver: str
    checksum: str
    created_by: uuid.UUID | None
    created_at: dt.datetime


class CompileRequest(Body):
    target: Target
    values: Values = msgspec.field(default_factory=dict)
    parameters: Parameters = msgspec.field(default_factory=dict)
    version: Version | None = None
    action: Literal["deploy", "undeploy"] = "deploy"
    remove_volumes: bool = False


class CompileResult(msgspec.Struct):
    stack_id: uuid.UUID
    stack_version: int
    target: Target
    action: str
    project: str
    playbook_id: uuid.UUID
    version: int
    content: str
    checksum: str
    secrets: list[str]
    deployment_notes: str


class DeployRequest(RunOptions, kw_only=True, forbid_unknown_fields=True):
    """Where and how: the inventory and target kind, the stack's values, and the run's options."""

    inventory_id: uuid.UUID
    target: Target
    values: Values = msgspec.field(default_factory=dict)
    parameters: Parameters = msgspec.field(default_factory=dict)
    name: DeploymentName | None = None
    version: Version | None = None

    def options(self) -> RunOptions:
        fields = msgspec.structs.asdict(self)
        for key in ("inventory_id", "target", "values", "parameters", "name", "version"):
            fields.pop(key)
        return RunOptions(**fields)


class RedeployRequest(Body):
    values: Values = msgspec.field(default_factory=dict)
    parameters: Parameters | None = None
    version: Version | None = None
    credentials: list[uuid.UUID] | None = None


class UndeployRequest(Body):
    remove_volumes: bool = False


class DiffRequest(Body):
    target: Target
    from_version: Version
    to_version: Version
    values: Values = msgspec.field(default_factory=dict)
    parameters: Parameters = msgspec.field(default_factory=dict)


class DiffResult(msgspec.Struct):
    target: Target
    from_version: int
    to_version: int
    identical: bool
    diff: str


class DeploymentRead(msgspec.Struct):
    id: uuid.UUID
    organization_id: uuid.UUID
    stack_id: uuid.UUID
    stack_version: int
    name: str
    target: Target
    inventory_id: uuid.UUID | None
    credentials: list[uuid.UUID]
    parameters: dict[str, Any]
    values: dict[str, Any]
    playbook_id: uuid.UUID | None
    state: Literal["deployed", "undeployed"]
    status: Literal["deploying", "deployed", "failed", "undeploying", "undeployed", "undeploy_failed"]
    last_run_id: uuid.UUID | None
    last_run_status: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


class DeploymentRun(msgspec.Struct):
    deployment: DeploymentRead
    run: RunRead


S = TypeVar("S", bound=msgspec.Struct)


def _as(row: dict[str, Any], model: type[S]) -> S:
    return msgspec.convert(row, model)


def _launched(result: dict[str, Any]) -> DeploymentRun:
    return DeploymentRun(deployment=_as(result["deployment"], DeploymentRead), run=_as(result["run"], RunRead))


class StackController(Controller):
    path = "/stacks"
    tags = ["stacks"]

    @get(
        "/",
        operation_id="listStacks",
        summary="List the stacks of your organization, by name",
        guards=[viewer],
        responses=problems(401, 403, 404, 422),
    )
    async def list_stacks(
        self,
        request: AnyRequest,
        paging: NamedDependency[Paging],
        category: Annotated[
            str | None, Parameter(max_length=100, pattern=NO_NUL, description="only this category")
        ] = None,
        q: Annotated[str | None, Parameter(max_length=100, pattern=NO_NUL, description="name contains")] = None,
    ) -> Page[StackSummary]:
        rows, total = await service.list_stacks(principal_of(request), paging.page, paging.size, category, q)
        return paging.of([_as(r, StackSummary) for r in rows], total)

    @post(
        "/",
        operation_id="createStack",
        summary="Create a stack from a definition, or from a docker-compose file and a name (operators)",
        guards=[operator],
        responses=problems(*WRITE),
    )
    async def create_stack(self, data: JSONBody[StackCreate], request: AnyRequest) -> StackRead:
        row = await service.create_stack(principal_of(request), data.definition, data.compose, data.name)
        return _as(row, StackRead)

    @get(
        "/{stack_id:uuid}",
        operation_id="getStack",
        summary="Read a stack with its latest definition",
        guards=[viewer],
        responses=problems(*READ, 403),
    )
    async def get_stack(self, stack_id: FromPath[uuid.UUID], request: AnyRequest) -> StackRead:
        return _as(await service.get_stack(principal_of(request), stack_id), StackRead)

    @patch(
        "/{stack_id:uuid}",
        operation_id="updateStack",
        summary="Change a stack's definition; a different document becomes the next version (operators)",
        guards=[operator],
        responses=problems(*WRITE),
    )
    async def update_stack(
        self, stack_id: FromPath[uuid.UUID], data: JSONBody[StackUpdate], request: AnyRequest
    ) -> StackRead:
        row = await service.update_stack(principal_of(request), stack_id, data.definition, data.compose)
        return _as(row, StackRead)

    @delete(
        "/{stack_id:uuid}",
        operation_id="deleteStack",
        summary="Delete a stack that is not deployed anywhere (operators)",
        guards=[operator],
        responses=problems(*READ, 403, 409),
    )
    async def delete_stack(self, stack_id: FromPath[uuid.UUID], request: AnyRequest) -> None:
        await service.delete_stack(principal_of(request), stack_id)

    @get(
        "/{stack_id:uuid}/versions",
        operation_id="listStackVersions",
        summary="List a stack's versions, newest first",
        guards=[viewer],
        responses=problems(*READ, 403),
    )
    async def list_versions(
        self, stack_id: FromPath[uuid.UUID], request: AnyRequest, paging: NamedDependency[Paging]
    ) -> Page[StackVersionSummary]:
        rows, total = await service.list_versions(principal_of(request), stack_id, paging.page, paging.size)
        return paging.of([_as(r, StackVersionSummary) for r in rows], total)

    @get(
        "/{stack_id:uuid}/versions/{version:int}",
        operation_id="getStackVersion",
        summary="Read one version of a stack with its definition",
        guards=[viewer],
        responses=problems(*READ, 403),
    )
    async def get_version(
        self,
        stack_id: FromPath[uuid.UUID],
        version: Annotated[int, Parameter(ge=1, le=2_147_483_647, description="version number, from 1")],
        request: AnyRequest,
    ) -> StackRead:
        return _as(await service.get_stack(principal_of(request), stack_id, version), StackRead)

    @get(
        "/{stack_id:uuid}/form",
        operation_id="getStackForm",
        summary="The JSON Schema of the stack's variables, for a form",
        guards=[viewer],
        responses=problems(*READ, 403),
    )
    async def form(
        self,
        stack_id: FromPath[uuid.UUID],
        request: AnyRequest,
        version: Annotated[int | None, Parameter(ge=1, le=2_147_483_647, description="the latest by default")] = None,
    ) -> dict[str, Any]:
        return await service.form(principal_of(request), stack_id, version)

    @post(
        "/{stack_id:uuid}/compile",
        operation_id="compileStack",
        summary="Compile the stack for a target kind into a generated playbook version (operators)",
        guards=[operator],
        responses=problems(*WRITE),
        status_code=200,
    )
    async def compile(
        self, stack_id: FromPath[uuid.UUID], data: JSONBody[CompileRequest], request: AnyRequest
    ) -> CompileResult:
        row = await service.compile_playbook(
            principal_of(request),
            stack_id,
            data.target,
            data.values,
            data.parameters,
            data.version,
            data.action,
            data.remove_volumes,
        )
        return _as(row, CompileResult)

    @post(
        "/{stack_id:uuid}/diff",
        operation_id="diffStackVersions",
        summary="Unified diff of the playbooks two stack versions compile to (same values)",
        guards=[viewer],
        responses=problems(*WRITE),
        status_code=200,
    )
    async def diff(self, stack_id: FromPath[uuid.UUID], data: JSONBody[DiffRequest], request: AnyRequest) -> DiffResult:
        row = await service.diff_versions(
            principal_of(request),
            stack_id,
            data.target,
            data.from_version,
            data.to_version,
            data.values,
            data.parameters,
        )
        return _as(row, DiffResult)

    @post(
        "/{stack_id:uuid}/deploy",
        operation_id="deployStack",
        summary="Compile the stack and launch it on an inventory as a new deployment (operators)",
        guards=[operator],
        responses=problems(*WRITE),
    )
    async def deploy(
        self,
        stack_id: FromPath[uuid.UUID],
        data: JSONBody[DeployRequest],
        request: AnyRequest,
        run_queue: NamedDependency[Any],
        settings: NamedDependency[Settings],
    ) -> DeploymentRun:
        result = await deployments.deploy(
            principal_of(request),
            run_queue,
            settings.secret_key,
            stack_id,
            target=data.target,
            inventory_id=data.inventory_id,
            values=data.values,
            parameters=data.parameters,
            options=data.options(),
            name=data.name,
            version=data.version,
        )
        return _launched(result)

    @get(
        "/{stack_id:uuid}/deployments",
        operation_id="listDeployments",
        summary="List the deployments of a stack with their last run",
        guards=[viewer],
        responses=problems(*READ, 403),
    )
    async def list_deployments(
        self, stack_id: FromPath[uuid.UUID], request: AnyRequest, paging: NamedDependency[Paging]
    ) -> Page[DeploymentRead]:
        rows, total = await deployments.list_deployments(principal_of(request), stack_id, paging.page, paging.size)
        return paging.of([_as(r, DeploymentRead) for r in rows], total)

    @get(
        "/{stack_id:uuid}/deployments/{deployment_id:uuid}",
        operation_id="getDeployment",
        summary="Read a deployment (its secret values are never shown)",
        guards=[viewer],
        responses=problems(*READ, 403),
    )
    async def get_deployment(
        self, stack_id: FromPath[uuid.UUID], deployment_id: FromPath[uuid.UUID], request: AnyRequest
    ) -> DeploymentRead:
        return _as(await deployments.get_deployment(principal_of(request), stack_id, deployment_id), DeploymentRead)

    @post(
        "/{stack_id:uuid}/deployments/{deployment_id:uuid}/redeploy",
        operation_id="redeployStack",
        summary="Deploy again (latest stack version by default); values not given are kept (operators)",
        guards=[operator],
        responses=problems(*WRITE),
    )
    async def redeploy(
        self,
        stack_id: FromPath[uuid.UUID],
        deployment_id: FromPath[uuid.UUID],
        data: JSONBody[RedeployRequest],
        request: AnyRequest,
        run_queue: NamedDependency[Any],
        settings: NamedDependency[Settings],
    ) -> DeploymentRun:
        options = RunOptions(credentials=data.credentials) if data.credentials is not None else None
        result = await deployments.redeploy(
            principal_of(request),
            run_queue,
            settings.secret_key,
            stack_id,
            deployment_id,
            values=data.values,
            parameters=data.parameters,
            version=data.version,
            options=options,
        )
        return _launched(result)

    @post(
        "/{stack_id:uuid}/deployments/{deployment_id:uuid}/undeploy",
        operation_id="undeployStack",
        summary="Remove what the deployment created; volumes only with remove_volumes (operators)",
        guards=[operator],
        responses=problems(*WRITE),
    )
    async def undeploy(
        self,
        stack_id: FromPath[uuid.UUID],
        deployment_id: FromPath[uuid.UUID],
        data: JSONBody[UndeployRequest],
        request: AnyRequest,
        run_queue: NamedDependency[Any],
        settings: NamedDependency[Settings],
    ) -> DeploymentRun:
        result = await deployments.undeploy(
            principal_of(request),
            run_queue,
            settings.secret_key,
            stack_id,
            deployment_id,
            remove_volumes=data.remove_volumes,
        )
        return _launched(result)

    @delete(
        "/{stack_id:uuid}/deployments/{deployment_id:uuid}",
        operation_id="deleteDeployment",
        summary="Forget an undeployed deployment and its secret values (operators)",
        guards=[operator],
        responses=problems(*READ, 403, 409),
    )
    async def delete_deployment(
        self, stack_id: FromPath[uuid.UUID], deployment_id: FromPath[uuid.UUID], request: AnyRequest
    ) -> None:
        await deployments.delete_deployment(principal_of(request), stack_id, deployment_id)
