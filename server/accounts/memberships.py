"""Memberships: a user's role in an organization, and the rule that one admin always remains."""

from __future__ import annotations

import uuid
from typing import Any

from server import audit
from server.auth.principal import Principal, Role
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
    row = await (
        Membership.select(*MEMBER_COLUMNS)
        .where((Membership.organization == organization_id) & (Membership.user == user_id))
        .first()
    )
    if row is None:
        raise NotFound("member not found")
    return row


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
    if await Membership.exists().where((Membership.organization == organization_id) & (Membership.user == user_id)):
        raise Conflict("the user is already a member of this organization")
    await Membership.insert(Membership(user=user_id, organization=organization_id, role=role.name))
    await audit.record(
        "membership.create",
        actor=principal,
        organization_id=organization_id,
        target_type="user",
        target_id=user_id,
        detail={"role": role.name},
    )
    return await get_member(organization_id, user_id)


async def set_role(principal: Principal, organization_id: uuid.UUID, user_id: uuid.UUID, role: Role) -> dict[str, Any]:
    if role != Role.admin:
        await _ensure_admin_remains(organization_id, user_id)
    else:
        await get_member(organization_id, user_id)
    await Membership.update({Membership.role: role.name}).where(
        (Membership.organization == organization_id) & (Membership.user == user_id)
    )
    await audit.record(
        "membership.update",
        actor=principal,
        organization_id=organization_id,
        target_type="user",
        target_id=user_id,
        detail={"role": role.name},
    )
    return await get_member(organization_id, user_id)


async def remove_member(principal: Principal, organization_id: uuid.UUID, user_id: uuid.UUID) -> None:
    await _ensure_admin_remains(organization_id, user_id)
    await Membership.delete().where((Membership.organization == organization_id) & (Membership.user == user_id))
    await audit.record(
        "membership.delete", actor=principal, organization_id=organization_id, target_type="user", target_id=user_id
    )
