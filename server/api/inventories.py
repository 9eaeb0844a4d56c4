"""``/api/v1/inventories``: hosts and groups of Docker, Kubernetes, VM and bare-metal targets."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec
from litestar import Controller, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, Parameter

from server.api.conventions import READ, WRITE, AnyRequest, Body, Name, Page, Paging, changes_of, problems
from server.api.security import operator, principal_of, viewer
from server.auth.service import utcnow
from server.inventories import service, spec
from server.inventories.check import HostCheck
from server.inventories.sources import Source
from server.settings import Settings

Description = Annotated[str, msgspec.Meta(max_length=2000)]
Format = Literal["yaml", "ini"]


class InventoryCreate(spec.Document, kw_only=True, forbid_unknown_fields=True):
    name: Name
    description: Description = ""
    source: Source | None = None


if TYPE_CHECKING:

    class InventoryUpdate(Body):
        """Built below from the document's fields; mypy sees only this."""

else:
    # Every document field may be sent alone; what is sent replaces that part of the document.
    InventoryUpdate = msgspec.defstruct(
        "InventoryUpdate",
        [
            ("name", Name | msgspec.UnsetType, msgspec.UNSET),
            ("description", Description | msgspec.UnsetType, msgspec.UNSET),
            ("source", Source | None | msgspec.UnsetType, msgspec.UNSET),
            *[(f.name, f.type | msgspec.UnsetType, msgspec.UNSET) for f in msgspec.structs.fields(spec.Document)],
        ],
        bases=(Body,),
        forbid_unknown_fields=True,
        module=__name__,
    )


class InventorySummary(msgspec.Struct):
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    description: str
    host_count: int
    group_count: int
    source: Source | None
    synced_at: dt.datetime | None
    sync_status: str
    sync_error: str
    created_at: dt.datetime
    updated_at: dt.datetime


if TYPE_CHECKING:

    class InventoryRead(spec.Document):
        """Built below: the document's fields and the summary's."""

else:
    # The whole inventory: its document (as sent to create it) and the summary's fields.
    InventoryRead = msgspec.defstruct(
        "InventoryRead",
        [(f.name, f.type, f.default) for f in msgspec.structs.fields(InventorySummary)],
        bases=(spec.Document,),
        kw_only=True,
        omit_defaults=False,
        module=__name__,
    )


class InventoryImport(Body):
    name: Name
    format: Format
    content: Annotated[str, msgspec.Meta(min_length=1)]
    description: Description = ""


class CheckReport(msgspec.Struct):
    inventory_id: uuid.UUID
    checked_at: dt.datetime
    reachable: int
    unreachable: int
    hosts: list[HostCheck]


def _summary(row: dict[str, Any]) -> InventorySummary:
    return msgspec.convert({k: v for k, v in row.items() if k != "document"}, InventorySummary)


def _read(row: dict[str, Any]) -> InventoryRead:
    document = msgspec.structs.asdict(row["document"])
    fields = {k: v for k, v in row.items() if k != "document"}
    return InventoryRead(**document, **fields)


def _work_dir(settings: Settings) -> Path:
    return Path(settings.data_dir) / "work"


class InventoryController(Controller):
    path = "/inventories"
    tags = ["inventories"]

    @get(
        "/",
        operation_id="listInventories",
        summary="List the inventories of your organization",
        guards=[viewer],
        responses=problems(401, 403, 404, 422),
    )
    async def list_inventories(self, request: AnyRequest, paging: NamedDependency[Paging]) -> Page[InventorySummary]:
        rows, total = await service.list_inventories(principal_of(request), paging.page, paging.size)
        return paging.of([_summary(r) for r in rows], total)

    @post(
        "/",
        operation_id="createInventory",
        summary="Create an inventory (operators)",
        guards=[operator],
        responses=problems(*WRITE),
    )
    async def create_inventory(self, data: JSONBody[InventoryCreate], request: AnyRequest) -> InventoryRead:
        fields = msgspec.structs.asdict(data)
        name, description, source = fields.pop("name"), fields.pop("description"), fields.pop("source")
        document = spec.Document(**fields)
        return _read(await service.create_inventory(principal_of(request), name, description, document, source))

    @post(
        "/import",
        operation_id="importInventory",
        summary="Create an inventory from Ansible YAML or INI text",
        guards=[operator],
        responses=problems(*WRITE),
    )
    async def import_inventory(self, data: JSONBody[InventoryImport], request: AnyRequest) -> InventoryRead:
        row = await service.import_inventory(
            principal_of(request), data.name, data.description, data.format, data.content
        )
        return _read(row)

    @get(
        "/{inventory_id:uuid}",
        operation_id="getInventory",
        summary="Read an inventory with its hosts and groups",
        guards=[viewer],
        responses=problems(*READ, 403),
    )
    async def get_inventory(self, inventory_id: FromPath[uuid.UUID], request: AnyRequest) -> InventoryRead:
        return _read(await service.get_inventory(principal_of(request), inventory_id))

    @patch(
        "/{inventory_id:uuid}",
        operation_id="updateInventory",
        summary="Change an inventory; each document field sent replaces that part (operators)",
        guards=[operator],
        responses=problems(*WRITE),
    )
    async def update_inventory(
        self, inventory_id: FromPath[uuid.UUID], data: JSONBody[InventoryUpdate], request: AnyRequest
    ) -> InventoryRead:
        return _read(await service.update_inventory(principal_of(request), inventory_id, changes_of(data)))

    @delete(
        "/{inventory_id:uuid}",
        operation_id="deleteInventory",
        summary="Delete an inventory (operators)",
        guards=[operator],
        responses=problems(*READ, 403),
    )
    async def delete_inventory(self, inventory_id: FromPath[uuid.UUID], request: AnyRequest) -> None:
        await service.delete_inventory(principal_of(request), inventory_id)

    @get(
        "/{inventory_id:uuid}/export",
        operation_id="exportInventory",
        summary="The inventory as Ansible YAML or INI text (credentials are not exported)",
        guards=[viewer],
        responses=problems(*READ, 403),
        media_type="text/plain",
    )
    async def export_inventory(
        self,
        inventory_id: FromPath[uuid.UUID],
        request: AnyRequest,
        format: Annotated[Format, Parameter(description="yaml or ini")] = "yaml",
    ) -> Response[str]:
        filename, text = await service.export_inventory(principal_of(request), inventory_id, format)
        media_type = "application/yaml" if format == "yaml" else "text/plain; charset=utf-8"
        headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
        return Response(text, media_type=media_type, headers=headers)

    @post(
        "/{inventory_id:uuid}/check",
        operation_id="checkInventory",
        status_code=200,
        summary="Try every host for real (ping over SSH, Docker /_ping, Kubernetes /version)",
        guards=[operator],
        responses=problems(*WRITE),
    )
    async def check_inventory(
        self,
        inventory_id: FromPath[uuid.UUID],
        request: AnyRequest,
        settings: NamedDependency[Settings],
        limit: Annotated[str | None, Parameter(max_length=2000, description="Ansible-style host pattern")] = None,
    ) -> CheckReport:
        hosts = await service.check_inventory(
            principal_of(request), settings.secret_key, _work_dir(settings), inventory_id, limit
        )
        reachable = sum(1 for h in hosts if h.reachable)
        return CheckReport(inventory_id, utcnow(), reachable, len(hosts) - reachable, hosts)

    @post(
        "/{inventory_id:uuid}/sync",
        operation_id="syncInventory",
        status_code=200,
        summary="Refresh hosts and groups from the inventory's dynamic source",
        guards=[operator],
        responses=problems(*WRITE),
    )
    async def sync_inventory(
        self, inventory_id: FromPath[uuid.UUID], request: AnyRequest, settings: NamedDependency[Settings]
    ) -> InventoryRead:
        row = await service.sync_inventory(
            principal_of(request), settings.secret_key, _work_dir(settings), inventory_id
        )
        return _read(row)
