"""Users as seen from an organization: its members, their accounts and roles."""

from __future__ import annotations

import uuid
from typing import Any

from server import audit
from server.accounts.memberships import add_member, get_member, remove_member, set_role
from server.auth.passwords import hash_password, verify_password
from server.auth.principal import Principal, Role
from server.auth.service import normalize_email, revoke_user_sessions, utcnow
from server.db.engine import atomic
from server.db.pages import page_of
from server.db.tables import Membership, Organization, User
from server.errors import Conflict, Forbidden, NotFound, ValidationFailed

USER_COLUMNS = (
    User.id,
    User.email,
    User.full_name,
    User.is_active,
    User.is_superadmin,
    User.created_at,
    User.last_login_at,
)


def _require_organization(principal: Principal) -> uuid.UUID:
    if principal.organization_id is None:
        raise Forbidden("you belong to no organization")
    return principal.organization_id


async def _user_row(user_id: uuid.UUID) -> dict[str, Any]:
    row = await User.select(*USER_COLUMNS).where(User.id == user_id).first()
    if row is None:
        raise NotFound("user not found")
    return row


async def get_user(principal: Principal, user_id: uuid.UUID) -> dict[str, Any]:
    """A member of the caller's current organization, with their role in it."""
    organization_id = _require_organization(principal)
    member = (
        await Membership.select(Membership.role)
        .where((Membership.organization == organization_id) & (Membership.user == user_id))
        .first()
    )
    if member is None and not principal.is_superadmin:
        raise NotFound("user not found")
    return {**await _user_row(user_id), "role": member["role"] if member else None}


async def list_users(principal: Principal, page: int, size: int) -> tuple[list[dict[str, Any]], int]:
    organization_id = _require_organization(principal)
    where = Membership.organization == organization_id
    columns = [getattr(Membership.user, c._meta.name).as_alias(c._meta.name) for c in USER_COLUMNS]
    rows = await page_of(
        Membership.select(*columns, Membership.role).where(where).order_by(Membership.user.email), page, size
    )
    return rows, await Membership.count().where(where)


async def create_user(
    principal: Principal, email: str, password: str, role: Role, full_name: str, is_superadmin: bool
) -> dict[str, Any]:
    organization_id = _require_organization(principal)
    if is_superadmin and not principal.is_superadmin:
        raise Forbidden("only a superadmin can create a superadmin")
    email = normalize_email(email)
    if await User.exists().where(User.email == email):
        raise Conflict("a user with this email already exists; add them to the organization as a member")
    user = User(
        email=email,
        password_hash=await hash_password(password),
        full_name=full_name,
        is_superadmin=is_superadmin,
        current_organization=organization_id,
    )
    async with atomic():
        await user.save()
        await audit.record(
            "user.create",
            actor=principal,
            organization_id=organization_id,
            target_type="user",
            target_id=user.id,
            detail={"email": email, "role": role.name},
        )
        await add_member(principal, organization_id, user.id, role)
    return await get_user(principal, user.id)


async def _require_authority_over(principal: Principal, user_id: uuid.UUID) -> None:
    """Account-wide changes need admin rights in every organization the user belongs to."""
    if principal.is_superadmin:
        return
    organizations = await Membership.select(Membership.organization).where(Membership.user == user_id)
    if any(principal.role_in(m["organization"]) != Role.admin for m in organizations):
        raise Forbidden("the user also belongs to organizations you do not administer")


async def update_user(principal: Principal, user_id: uuid.UUID, changes: dict[str, Any]) -> dict[str, Any]:
    organization_id = _require_organization(principal)
    await get_user(principal, user_id)
    if "is_superadmin" in changes and not principal.is_superadmin:
        raise Forbidden("only a superadmin can grant or remove superadmin")
    if user_id == principal.user_id and changes.get("is_active") is False:
        raise Conflict("you cannot disable your own account")
    role = changes.pop("role", None)
    if changes:
        await _require_authority_over(principal, user_id)
    account: dict[Any, Any] = {
        getattr(User, k): changes[k] for k in ("full_name", "is_active", "is_superadmin") if k in changes
    }
    if "password" in changes:
        account[User.password_hash] = await hash_password(changes["password"])
    if "email" in changes:
        account[User.email] = email = normalize_email(changes["email"])
        if await User.exists().where((User.email == email) & (User.id != user_id)):
            raise Conflict("a user with this email already exists")
    async with atomic():
        if role is not None:
            await set_role(principal, organization_id, user_id, Role.parse(role))
        if account:
            account[User.updated_at] = utcnow()
            await User.update(account).where(User.id == user_id)
            if "password" in changes or changes.get("is_active") is False:
                await revoke_user_sessions(user_id)
            await audit.record(
                "user.update",
                actor=principal,
                organization_id=organization_id,
                target_type="user",
                target_id=user_id,
                detail={"fields": sorted(changes)},
            )
    return await get_user(principal, user_id)


async def delete_user(principal: Principal, user_id: uuid.UUID) -> None:
    """Remove the user from the current organization; the account goes when it belongs nowhere."""
    organization_id = _require_organization(principal)
    if user_id == principal.user_id:
        raise Conflict("you cannot remove yourself; ask another admin")
    await get_member(organization_id, user_id)
    async with atomic():
        await remove_member(principal, organization_id, user_id)
        user = await _user_row(user_id)
        if not user["is_superadmin"] and not await Membership.exists().where(Membership.user == user_id):
            await User.delete().where(User.id == user_id)
            await audit.record(
                "user.delete",
                actor=principal,
                organization_id=organization_id,
                target_type="user",
                target_id=user_id,
            )


async def get_me(principal: Principal) -> dict[str, Any]:
    row = await _user_row(principal.user_id)
    memberships = (
        await Membership.select(
            Membership.organization.as_alias("organization_id"),
            Membership.organization.name.as_alias("organization_name"),
            Membership.role,
        )
        .where(Membership.user == principal.user_id)
        .order_by(Membership.created_at)
    )
    role = principal.role
    return {
        **row,
        "current_organization_id": principal.organization_id,
        "role": role.name if role else None,
        "memberships": memberships,
    }


async def update_me(principal: Principal, changes: dict[str, Any]) -> dict[str, Any]:
    account: dict[Any, Any] = {}
    if "full_name" in changes:
        account[User.full_name] = changes["full_name"]
    if "current_organization_id" in changes:
        wanted = changes["current_organization_id"]
        if not (
            wanted in principal.roles
            or (principal.is_superadmin and await Organization.exists().where(Organization.id == wanted))
        ):
            raise ValidationFailed.for_field("body.current_organization_id", "you are not a member of it")
        account[User.current_organization] = wanted
    if "password" in changes:
        user = await User.objects().where(User.id == principal.user_id).first()
        if user is None or not await verify_password(user.password_hash, changes.get("current_password") or ""):
            raise ValidationFailed.for_field("body.current_password", "does not match your password")
        account[User.password_hash] = await hash_password(changes["password"])
    if account:
        account[User.updated_at] = utcnow()
        await User.update(account).where(User.id == principal.user_id)
        if User.password_hash in account:
            await revoke_user_sessions(principal.user_id)
        await audit.record(
            "user.update_self",
            actor=principal,
            target_type="user",
            target_id=principal.user_id,
            detail={"fields": sorted(k for k in changes if k != "current_password")},
        )
    me = await get_me(principal)
    if User.current_organization in account:
        wanted = account[User.current_organization]
        role = principal.role_in(wanted)
        me.update(current_organization_id=wanted, role=role.name if role else None)
    return me
