"""Organizations: the boundary of every object; members see only their own."""

from __future__ import annotations

import uuid
from typing import Any

from server import audit
from server.auth.principal import Principal, Role
from server.auth.service import utcnow
from server.db.engine import atomic
from server.db.pages import page_of
from server.db.tables import Membership, Organization
from server.errors import Conflict, NotFound
from server.playbooks.library import sync_bundled
from server.stacks.catalogue import sync_catalogue

COLUMNS = (
    Organization.id,
    Organization.name,
    Organization.description,
    Organization.created_at,
    Organization.updated_at,
)


def _with_role(principal: Principal, row: dict[str, Any]) -> dict[str, Any]:
    role = principal.role_in(row["id"])
    return {**row, "role": role.name if role else None}


async def list_organizations(principal: Principal, page: int, size: int) -> tuple[list[dict[str, Any]], int]:
    query = Organization.select(*COLUMNS).order_by(Organization.name)
    counter = Organization.count()
    if not principal.is_superadmin:
        ids = list(principal.roles) or [uuid.UUID(int=0)]
        query = query.where(Organization.id.is_in(ids))
        counter = counter.where(Organization.id.is_in(ids))
    rows = await page_of(query, page, size)
    return [_with_role(principal, row) for row in rows], await counter


async def get_organization(principal: Principal, organization_id: uuid.UUID) -> dict[str, Any]:
    row = await Organization.select(*COLUMNS).where(Organization.id == organization_id).first()
    if row is None or not principal.can_see(organization_id):
        raise NotFound("organization not found")
    return _with_role(principal, row)


async def _name_taken(name: str, except_id: uuid.UUID | None = None) -> bool:
    query = Organization.exists().where(Organization.name == name)
    if except_id is not None:
        query = query.where(Organization.id != except_id)
    return await query


async def create_organization(principal: Principal, name: str, description: str) -> dict[str, Any]:
    if await _name_taken(name):
        raise Conflict(f"an organization named {name!r} already exists")
    org = Organization(name=name, description=description)
    async with atomic():
        await org.save()
        await Membership.insert(Membership(user=principal.user_id, organization=org.id, role=Role.admin.name))
        await audit.record(
            "organization.create",
            actor=principal,
            organization_id=org.id,
            target_type="organization",
            target_id=org.id,
            detail={"name": name},
        )
    await sync_bundled(org.id)
    await sync_catalogue(organization_id=org.id)
    return {**await get_organization(principal, org.id), "role": Role.admin.name}


async def update_organization(
    principal: Principal, organization_id: uuid.UUID, changes: dict[str, Any]
) -> dict[str, Any]:
    await get_organization(principal, organization_id)
    if "name" in changes and await _name_taken(changes["name"], organization_id):
        raise Conflict(f"an organization named {changes['name']!r} already exists")
    if changes:
        values = {getattr(Organization, key): value for key, value in changes.items()}
        values[Organization.updated_at] = utcnow()
        await Organization.update(values).where(Organization.id == organization_id)
        await audit.record(
            "organization.update",
            actor=principal,
            organization_id=organization_id,
            target_type="organization",
            target_id=organization_id,
            detail={"fields": sorted(changes)},
        )
    return await get_organization(principal, organization_id)


async def delete_organization(principal: Principal, organization_id: uuid.UUID) -> None:
    await get_organization(principal, organization_id)
    await Organization.delete().where(Organization.id == organization_id)
    await audit.record(
        "organization.delete",
        actor=principal,
        organization_id=organization_id,
        target_type="organization",
        target_id=organization_id,
    )
