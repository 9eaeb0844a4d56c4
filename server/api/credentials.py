"""``/api/v1/credentials``: secrets of your current organization, write-only once stored."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, Parameter

from server.api.conventions import READ, WRITE, AnyRequest, Body, Name, Page, Paging, changes_of, problems
from server.api.security import admin, operator, principal_of
from server.credentials import service
from server.settings import Settings

KindName = Literal[
    "ssh_key",
    "password",
    "become",
    "kubeconfig",
    "docker_tls",
    "vault_password",
    "registry",
    "stack_secrets",
    "llm_api_key",
]
Description = Annotated[str, msgspec.Meta(max_length=2000)]
Inputs = Annotated[
    dict[str, Any],
    msgspec.Meta(
        description="the kind's fields, public and secret; secrets are stored encrypted and never returned. "
        "In a PATCH, fields not sent keep their values and `null` clears an optional one."
    ),
]


class CredentialRead(msgspec.Struct):
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    kind: KindName
    description: str
    inputs: dict[str, Any]
    metadata: dict[str, Any]
    secret_fields: list[str]
    fingerprint: str
    created_at: dt.datetime
    updated_at: dt.datetime


class CredentialCreate(Body):
    name: Name
    kind: KindName
    description: Description = ""
    inputs: Inputs = msgspec.field(default_factory=dict)


class CredentialUpdate(Body):
    name: Name | msgspec.UnsetType = msgspec.UNSET
    kind: KindName | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType = msgspec.UNSET
    inputs: Inputs | msgspec.UnsetType = msgspec.UNSET


def _credential(row: dict[str, Any]) -> CredentialRead:
    return msgspec.convert(row, CredentialRead)


class CredentialController(Controller):
    path = "/credentials"
    tags = ["credentials"]

    @get(
        "/",
        operation_id="listCredentials",
        summary="List the credentials of your current organization (operators)",
        guards=[operator],
        responses=problems(*READ, 403),
    )
    async def list_credentials(
        self,
        request: AnyRequest,
        paging: NamedDependency[Paging],
        kind: Annotated[KindName | None, Parameter(description="only credentials of this kind")] = None,
    ) -> Page[CredentialRead]:
        rows, total = await service.list_credentials(principal_of(request), paging.page, paging.size, kind)
        return paging.of([_credential(r) for r in rows], total)

    @post(
        "/",
        operation_id="createCredential",
        summary="Store a credential; its secret fields are encrypted and never shown again (admins)",
        guards=[admin],
        responses=problems(*WRITE),
    )
    async def create_credential(
        self, data: JSONBody[CredentialCreate], request: AnyRequest, settings: NamedDependency[Settings]
    ) -> CredentialRead:
        row = await service.create_credential(
            principal_of(request), settings.secret_key, data.name, data.kind, data.description, data.inputs
        )
        return _credential(row)

    @get(
        "/{credential_id:uuid}",
        operation_id="getCredential",
        summary="Read a credential's public fields and which secret fields are set (operators)",
        guards=[operator],
        responses=problems(*READ, 403),
    )
    async def get_credential(self, credential_id: FromPath[uuid.UUID], request: AnyRequest) -> CredentialRead:
        return _credential(await service.get_credential(principal_of(request), credential_id))

    @patch(
        "/{credential_id:uuid}",
        operation_id="updateCredential",
        summary="Rename, describe or change inputs; secret fields not sent are kept (admins)",
        guards=[admin],
        responses=problems(*WRITE),
    )
    async def update_credential(
        self,
        credential_id: FromPath[uuid.UUID],
        data: JSONBody[CredentialUpdate],
        request: AnyRequest,
        settings: NamedDependency[Settings],
    ) -> CredentialRead:
        row = await service.update_credential(
            principal_of(request), settings.secret_key, credential_id, changes_of(data)
        )
        return _credential(row)

    @delete(
        "/{credential_id:uuid}",
        operation_id="deleteCredential",
        summary="Delete a credential that no inventory uses (admins)",
        guards=[admin],
        responses=problems(*READ, 403, 409),
    )
    async def delete_credential(self, credential_id: FromPath[uuid.UUID], request: AnyRequest) -> None:
        await service.delete_credential(principal_of(request), credential_id)
