"""``/api/v1/tokens``: API tokens for automation, acting as the user who made them."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

import msgspec
from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from server.api.conventions import READ, WRITE, AnyRequest, Body, Name, Page, Paging, problems
from server.api.security import authenticated, principal_of
from server.auth import service
from server.db.tables import ApiToken


class TokenCreate(Body):
    name: Name
    expires_in_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] | None = None


class TokenRead(msgspec.Struct):
    id: uuid.UUID
    name: str
    prefix: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


class TokenCreated(TokenRead):
    token: str


def _read(row: ApiToken) -> TokenRead:
    return msgspec.convert(row.to_dict(), TokenRead)


class TokenController(Controller):
    path = "/tokens"
    tags = ["tokens"]
    guards = [authenticated]

    @post(
        "/",
        operation_id="createApiToken",
        summary="Create an API token (the secret is shown only here)",
        responses=problems(*WRITE),
    )
    async def create(self, data: JSONBody[TokenCreate], request: AnyRequest) -> TokenCreated:
        row, token = await service.create_api_token(principal_of(request), data.name, data.expires_in_days)
        return TokenCreated(**msgspec.structs.asdict(_read(row)), token=token)

    @get("/", operation_id="listApiTokens", summary="List your API tokens", responses=problems(*READ))
    async def list_tokens(self, request: AnyRequest, paging: NamedDependency[Paging]) -> Page[TokenRead]:
        rows, total = await service.list_api_tokens(principal_of(request), paging.page, paging.size)
        return paging.of([_read(r) for r in rows], total)

    @delete("/{token_id:uuid}", operation_id="revokeApiToken", summary="Revoke an API token", responses=problems(*READ))
    async def revoke(self, token_id: FromPath[uuid.UUID], request: AnyRequest) -> None:
        await service.revoke_api_token(principal_of(request), token_id)
