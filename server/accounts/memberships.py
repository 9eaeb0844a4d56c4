"""Memberships: a user's role in an organization, and the rule that one admin always remains."""

from __future__ import annotations

import uuid
from typing import Any

from server import audit
from server.auth.principal import Principal, Role
from server.db.engine import atomic
from server.db.pages import page_of
from server.db.tables import Membership, User
from server.errors import Conflict, NotFound

MEMBER_COLUMNS = (
    Membership.user.id.as_alias("user_id"),
    Membership.user.email.as_alias("email"),
    Membership.user.full_name.as_alias("full_name"),
    Membership.user.is_active.as_alias("is_active"),
    Membership.organization.as_alias("organization_id"),
    Membership.role,
    Membership.created_at,
)


async def list_members(organization_id: uuid.UUID, page: int, size: int) -> tuple[list[dict[str, Any]], int]:
    where = Membership.organization == organization_id
    total = await Membership.count().where(where)
    rows = await page_of(Membership.select(*MEMBER_COLUMNS).where(where).order_by(Membership.created_at), page, size)
    return rows, total


async def get_member(organization_id: uuid.UUID, user_id: uuid.UUID) -> dict[str, Any]:
    row = await Membership.select(*MEMBER_COLUMNS).where(_membership(organization_id, user_id)).first()
    if row is None:
        raise NotFound("member not found")
    return row


def _membership(organization_id: uuid.UUID, user_id: uuid.UUID) -> Any:
    return (Membership.organization == organization_id) & (Membership.user == user_id)


async def _audit(
    action: str, principal: Principal, organization_id: uuid.UUID, user_id: uuid.UUID, role: Role | None = None
) -> None:
    await audit.record(
        action,
        actor=principal,
        organization_id=organization_id,
        target_type="user",
        target_id=user_id,
        detail={"role": role.name} if role else None,
    )


async def _ensure_admin_remains(organization_id: uuid.UUID, user_id: uuid.UUID) -> None:
    admins = await Membership.count().where(
        (Membership.organization == organization_id) & (Membership.role == Role.admin.name)
    )
    current = await get_member(organization_id, user_id)
    if current["role"] == Role.admin.name and admins <= 1:
        raise Conflict("an organization needs at least one admin; promote another member first")


async def add_member(
    principal: Principal, organization_id: uuid.UUID, user_id: uuid.UUID, role: Role
) -> dict[str, Any]:
    if not await User.exists().where(User.id == user_id):
        raise NotFound("user not found")
    async with atomic():
        if await Membership.exists().where(_membership(organization_id, user_id)):
            raise Conflict("the user is already a member of this organization")
        await Membership.insert(Membership(user=user_id, organization=organization_id, role=role.name))
        await _audit("membership.create", principal, organization_id, user_id, role)
    return await get_member(organization_id, user_id)


async def set_role(principal: Principal, organization_id: uuid.UUID, user_id: uuid.UUID, role: Role) -> dict[str, Any]:
    async with atomic():  # the last-admin check and the change land together
        if role != Role.admin:
            await _ensure_admin_remains(organization_id, user_id)
        else:
            await get_member(organization_id, user_id)
        await Membership.update({Membership.role: role.name}).where(_membership(organization_id, user_id))
        await _audit("membership.update", principal, organization_id, user_id, role)
    return await get_member(organization_id, user_id)


async def remove_member(principal: Principal, organization_id: uuid.UUID, user_id: uuid.UUID) -> None:
    async with atomic():
        await _ensure_admin_remains(organization_id, user_id)
        await Membership.delete().where(_membership(organization_id, user_id))
        await _audit("membership.delete", principal, organization_id, user_id)
