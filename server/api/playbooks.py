"""``/api/v1/playbooks``: playbooks with every saved version, checked by Ansible before they are stored."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, TypeVar

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, Parameter

from server.api.conventions import READ, WRITE, AnyRequest, Body, Name, Page, Paging, changes_of, problems
from server.api.security import operator, principal_of, viewer
from server.playbooks import service
from server.playbooks.service import Source

Description = Annotated[str, msgspec.Meta(max_length=2000)]
Content = Annotated[str, msgspec.Meta(min_length=1, description="the playbook YAML (at most 1 MiB)")]


class PlaybookCreate(Body):
    name: Name
    content: Content
    description: Description = ""


class PlaybookUpdate(Body):
    name: Name | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType = msgspec.UNSET
    content: Content | msgspec.UnsetType = msgspec.UNSET


class PlaybookSummary(msgspec.Struct):
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    description: str
    source: Source
    latest_version: int
    created_at: dt.datetime
    updated_at: dt.datetime


class PlaybookRead(PlaybookSummary):
    content: str


class PlaybookVersionSummary(msgspec.Struct):
    playbook_id: uuid.UUID
    version: int
    checksum: str
    created_by: uuid.UUID | None
    created_at: dt.datetime


class PlaybookVersionRead(PlaybookVersionSummary):
    content: str


S = TypeVar("S", bound=msgspec.Struct)


def _as(row: dict[str, Any], model: type[S]) -> S:
    return msgspec.convert(row, model)


class PlaybookController(Controller):
    path = "/playbooks"
    tags = ["playbooks"]

    @get(
        "/",
        operation_id="listPlaybooks",
        summary="List the playbooks of your organization, by name",
        guards=[viewer],
        responses=problems(401, 403, 404, 422),
    )
    async def list_playbooks(
        self,
        request: AnyRequest,
        paging: NamedDependency[Paging],
        source: Annotated[Source | None, Parameter(description="only playbooks of this origin")] = None,
    ) -> Page[PlaybookSummary]:
        rows, total = await service.list_playbooks(principal_of(request), paging.page, paging.size, source)
        return paging.of([_as(r, PlaybookSummary) for r in rows], total)

    @post(
        "/",
        operation_id="createPlaybook",
        summary="Create a playbook (version 1) after Ansible's syntax check (operators)",
        guards=[operator],
        responses=problems(*WRITE),
    )
    async def create_playbook(self, data: JSONBody[PlaybookCreate], request: AnyRequest) -> PlaybookRead:
        row = await service.create_playbook(principal_of(request), data.name, data.description, data.content)
        return _as(row, PlaybookRead)

    @get(
        "/{playbook_id:uuid}",
        operation_id="getPlaybook",
        summary="Read a playbook with its latest content",
        guards=[viewer],
        responses=problems(*READ, 403),
    )
    async def get_playbook(self, playbook_id: FromPath[uuid.UUID], request: AnyRequest) -> PlaybookRead:
        return _as(await service.get_playbook(principal_of(request), playbook_id), PlaybookRead)

    @patch(
        "/{playbook_id:uuid}",
        operation_id="updatePlaybook",
        summary="Change a playbook; new content becomes the next version (operators)",
        guards=[operator],
        responses=problems(*WRITE),
    )
    async def update_playbook(
        self, playbook_id: FromPath[uuid.UUID], data: JSONBody[PlaybookUpdate], request: AnyRequest
    ) -> PlaybookRead:
        row = await service.update_playbook(principal_of(request), playbook_id, changes_of(data))
        return _as(row, PlaybookRead)

    @delete(
        "/{playbook_id:uuid}",
        operation_id="deletePlaybook",
        summary="Delete a playbook and its versions; past runs keep their history (operators)",
        guards=[operator],
        responses=problems(*READ, 403),
    )
    async def delete_playbook(self, playbook_id: FromPath[uuid.UUID], request: AnyRequest) -> None:
        await service.delete_playbook(principal_of(request), playbook_id)

    @get(
        "/{playbook_id:uuid}/versions",
        operation_id="listPlaybookVersions",
        summary="List a playbook's versions, newest first (without content)",
        guards=[viewer],
        responses=problems(*READ, 403),
    )
    async def list_versions(
        self, playbook_id: FromPath[uuid.UUID], request: AnyRequest, paging: NamedDependency[Paging]
    ) -> Page[PlaybookVersionSummary]:
        rows, total = await service.list_versions(principal_of(request), playbook_id, paging.page, paging.size)
        return paging.of([_as(r, PlaybookVersionSummary) for r in rows], total)

    @get(
        "/{playbook_id:uuid}/versions/{version:int}",
        operation_id="getPlaybookVersion",
        summary="Read one version of a playbook with its content",
        guards=[viewer],
        responses=problems(*READ, 403),
    )
    async def get_version(
        self,
        playbook_id: FromPath[uuid.UUID],
        version: Annotated[int, Parameter(ge=1, le=2_147_483_647, description="version number, from 1")],
        request: AnyRequest,
    ) -> PlaybookVersionRead:
        row = await service.get_version(principal_of(request), playbook_id, version)
        return _as(row, PlaybookVersionRead)
