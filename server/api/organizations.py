"""``/api/v1/organizations`` and their members."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from server.accounts import memberships, organizations
from server.api.conventions import READ, WRITE, AnyRequest, Body, Name, Page, Paging, changes_of, problems
from server.api.security import admin, authenticated, principal_of, superadmin, viewer
from server.api.users import RoleName
from server.auth.principal import Role

Description = Annotated[str, msgspec.Meta(max_length=2000)]


class OrganizationRead(msgspec.Struct):
    id: uuid.UUID
    name: str
    description: str
    role: RoleName | None
    created_at: dt.datetime
    updated_at: dt.datetime


class OrganizationCreate(Body):
    name: Name
    description: Description = ""


class OrganizationUpdate(Body):
    name: Name | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType = msgspec.UNSET


class MemberRead(msgspec.Struct):
    user_id: uuid.UUID
    email: str
    full_name: str
    is_active: bool
    organization_id: uuid.UUID
    role: RoleName
    created_at: dt.datetime


class MemberCreate(Body):
    user_id: uuid.UUID
    role: RoleName


class MemberUpdate(Body):
    role: RoleName


def _org(row: dict[str, Any]) -> OrganizationRead:
    return msgspec.convert(row, OrganizationRead)


def _member(row: dict[str, Any]) -> MemberRead:
    return msgspec.convert(row, MemberRead)


class OrganizationController(Controller):
    path = "/organizations"
    tags = ["organizations"]

    @get(
        "/",
        operation_id="listOrganizations",
        summary="List your organizations (all, for a superadmin)",
        guards=[authenticated],
        responses=problems(401, 422),
    )
    async def list_organizations(self, request: AnyRequest, paging: NamedDependency[Paging]) -> Page[OrganizationRead]:
        rows, total = await organizations.list_organizations(principal_of(request), paging.page, paging.size)
        return paging.of([_org(r) for r in rows], total)

    @post(
        "/",
        operation_id="createOrganization",
        summary="Create an organization (superadmins)",
        guards=[superadmin],
        responses=problems(*WRITE),
    )
    async def create_organization(self, data: JSONBody[OrganizationCreate], request: AnyRequest) -> OrganizationRead:
        return _org(await organizations.create_organization(principal_of(request), data.name, data.description))

    @get(
        "/{org_id:uuid}",
        operation_id="getOrganization",
        summary="Read an organization you belong to",
        guards=[viewer],
        responses=problems(*READ),
    )
    async def get_organization(self, org_id: FromPath[uuid.UUID], request: AnyRequest) -> OrganizationRead:
        return _org(await organizations.get_organization(principal_of(request), org_id))

    @patch(
        "/{org_id:uuid}",
        operation_id="updateOrganization",
        summary="Rename or describe an organization (admins)",
        guards=[admin],
        responses=problems(*WRITE),
    )
    async def update_organization(
        self, org_id: FromPath[uuid.UUID], data: JSONBody[OrganizationUpdate], request: AnyRequest
    ) -> OrganizationRead:
        return _org(await organizations.update_organization(principal_of(request), org_id, changes_of(data)))

    @delete(
        "/{org_id:uuid}",
        operation_id="deleteOrganization",
        summary="Delete an organization and everything in it (superadmins)",
        guards=[superadmin],
        responses=problems(*READ, 403),
    )
    async def delete_organization(self, org_id: FromPath[uuid.UUID], request: AnyRequest) -> None:
        await organizations.delete_organization(principal_of(request), org_id)


class MemberController(Controller):
    path = "/organizations/{org_id:uuid}/members"
    tags = ["organizations"]

    @get(
        "/",
        operation_id="listMembers",
        summary="List the members of an organization",
        guards=[viewer],
        responses=problems(*READ),
    )
    async def list_members(self, org_id: FromPath[uuid.UUID], paging: NamedDependency[Paging]) -> Page[MemberRead]:
        rows, total = await memberships.list_members(org_id, paging.page, paging.size)
        return paging.of([_member(r) for r in rows], total)

    @post(
        "/",
        operation_id="addMember",
        summary="Add an existing user to an organization (admins)",
        guards=[admin],
        responses=problems(*WRITE),
    )
    async def add_member(
        self, org_id: FromPath[uuid.UUID], data: JSONBody[MemberCreate], request: AnyRequest
    ) -> MemberRead:
        return _member(await memberships.add_member(principal_of(request), org_id, data.user_id, Role.parse(data.role)))

    @get(
        "/{user_id:uuid}",
        operation_id="getMember",
        summary="Read one member's role",
        guards=[viewer],
        responses=problems(*READ),
    )
    async def get_member(self, org_id: FromPath[uuid.UUID], user_id: FromPath[uuid.UUID]) -> MemberRead:
        return _member(await memberships.get_member(org_id, user_id))

    @patch(
        "/{user_id:uuid}",
        operation_id="updateMember",
        summary="Change a member's role (admins)",
        guards=[admin],
        responses=problems(*WRITE),
    )
    async def update_member(
        self,
        org_id: FromPath[uuid.UUID],
        user_id: FromPath[uuid.UUID],
        data: JSONBody[MemberUpdate],
        request: AnyRequest,
    ) -> MemberRead:
        return _member(await memberships.set_role(principal_of(request), org_id, user_id, Role.parse(data.role)))

    @delete(
        "/{user_id:uuid}",
        operation_id="removeMember",
        summary="Remove a member from an organization (admins)",
        guards=[admin],
        responses=problems(*READ, 403, 409),
    )
    async def remove_member(
        self, org_id: FromPath[uuid.UUID], user_id: FromPath[uuid.UUID], request: AnyRequest
    ) -> None:
        await memberships.remove_member(principal_of(request), org_id, user_id)
