"""``/api/v1/users``: the members of your current organization, and ``/users/me``."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from server.accounts import users
from server.api.conventions import READ, WRITE, AnyRequest, Body, Email, NewPassword, Page, Paging, changes_of, problems
from server.api.security import admin, authenticated, principal_of, viewer
from server.auth.principal import Role

RoleName = Literal["admin", "operator", "viewer"]
FullName = Annotated[str, msgspec.Meta(max_length=200)]


class UserRead(msgspec.Struct):
    id: uuid.UUID
    email: str
    full_name: str
    is_active: bool
    is_superadmin: bool
    role: RoleName | None
    created_at: dt.datetime
    last_login_at: dt.datetime | None


class MembershipSummary(msgspec.Struct):
    organization_id: uuid.UUID
    organization_name: str
    role: RoleName


class MeRead(UserRead):
    current_organization_id: uuid.UUID | None
    memberships: list[MembershipSummary]


class UserCreate(Body):
    email: Email
    password: NewPassword
    role: RoleName
    full_name: FullName = ""
    is_superadmin: bool = False


class UserUpdate(Body):
    email: Email | msgspec.UnsetType = msgspec.UNSET
    password: NewPassword | msgspec.UnsetType = msgspec.UNSET
    full_name: FullName | msgspec.UnsetType = msgspec.UNSET
    role: RoleName | msgspec.UnsetType = msgspec.UNSET
    is_active: bool | msgspec.UnsetType = msgspec.UNSET
    is_superadmin: bool | msgspec.UnsetType = msgspec.UNSET


class MeUpdate(Body):
    full_name: FullName | msgspec.UnsetType = msgspec.UNSET
    current_organization_id: uuid.UUID | msgspec.UnsetType = msgspec.UNSET
    password: NewPassword | msgspec.UnsetType = msgspec.UNSET
    current_password: Annotated[str, msgspec.Meta(max_length=256)] | msgspec.UnsetType = msgspec.UNSET


def _user(row: dict[str, Any]) -> UserRead:
    return msgspec.convert(row, UserRead)


class MeController(Controller):
    path = "/users/me"
    tags = ["users"]
    guards = [authenticated]

    @get(
        "/",
        operation_id="getCurrentUser",
        summary="Who am I: account, current organization and memberships",
        responses=problems(401),
    )
    async def get_me(self, request: AnyRequest) -> MeRead:
        return msgspec.convert(await users.get_me(principal_of(request)), MeRead)

    @patch(
        "/",
        operation_id="updateCurrentUser",
        summary="Change your name, password (with current_password) or current organization",
        responses=problems(400, 401, 413, 422),
    )
    async def update_me(self, data: JSONBody[MeUpdate], request: AnyRequest) -> MeRead:
        return msgspec.convert(await users.update_me(principal_of(request), changes_of(data)), MeRead)


class UserController(Controller):
    path = "/users"
    tags = ["users"]

    @get(
        "/",
        operation_id="listUsers",
        summary="List the users of your current organization",
        guards=[viewer],
        responses=problems(*READ, 403),
    )
    async def list_users(self, request: AnyRequest, paging: NamedDependency[Paging]) -> Page[UserRead]:
        rows, total = await users.list_users(principal_of(request), paging.page, paging.size)
        return paging.of([_user(r) for r in rows], total)

    @post(
        "/",
        operation_id="createUser",
        summary="Create a user in your current organization (admins)",
        guards=[admin],
        responses=problems(*WRITE),
    )
    async def create_user(self, data: JSONBody[UserCreate], request: AnyRequest) -> UserRead:
        row = await users.create_user(
            principal_of(request), data.email, data.password, Role.parse(data.role), data.full_name, data.is_superadmin
        )
        return _user(row)

    @get(
        "/{user_id:uuid}",
        operation_id="getUser",
        summary="Read a user of your current organization",
        guards=[viewer],
        responses=problems(*READ, 403),
    )
    async def get_user(self, user_id: FromPath[uuid.UUID], request: AnyRequest) -> UserRead:
        return _user(await users.get_user(principal_of(request), user_id))

    @patch(
        "/{user_id:uuid}",
        operation_id="updateUser",
        summary="Change a user's role in your organization, or their account (admins)",
        guards=[admin],
        responses=problems(*WRITE),
    )
    async def update_user(
        self, user_id: FromPath[uuid.UUID], data: JSONBody[UserUpdate], request: AnyRequest
    ) -> UserRead:
        return _user(await users.update_user(principal_of(request), user_id, changes_of(data)))

    @delete(
        "/{user_id:uuid}",
        operation_id="deleteUser",
        summary="Remove a user from your organization (the account goes when it belongs nowhere)",
        guards=[admin],
        responses=problems(*READ, 403, 409),
    )
    async def delete_user(self, user_id: FromPath[uuid.UUID], request: AnyRequest) -> None:
        await users.delete_user(principal_of(request), user_id)
