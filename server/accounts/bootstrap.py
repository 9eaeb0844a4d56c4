"""The first account: created from the environment or the CLI when the database has no user."""

from __future__ import annotations

import logging
import uuid

from server import audit
from server.auth.passwords import hash_password, password_problem
from server.auth.principal import Role
from server.auth.service import normalize_email
from server.db.engine import atomic
from server.db.tables import Membership, Organization, User
from server.errors import Conflict, ValidationFailed

log = logging.getLogger(__name__)
DEFAULT_ORGANIZATION = "Default"


async def create_account(
    email: str, password: str, *, superadmin: bool, organization: str = DEFAULT_ORGANIZATION, role: Role = Role.admin
) -> uuid.UUID:
    """Create a user in ``organization`` (made when missing); used by the CLI and at start-up."""
    email = normalize_email(email)
    if "@" not in email:
        raise ValidationFailed.for_field("email", "is not an email address")
    if problem := password_problem(password):
        raise ValidationFailed.for_field("password", problem)
    if await User.exists().where(User.email == email):
        raise Conflict(f"a user with email {email} already exists")
    password_hash = await hash_password(password)
    async with atomic():
        org = await Organization.objects().where(Organization.name == organization).first()
        if org is None:
            org = Organization(name=organization)
            await org.save()
        user = User(email=email, password_hash=password_hash, is_superadmin=superadmin, current_organization=org.id)
        await user.save()
        await Membership.insert(Membership(user=user.id, organization=org.id, role=role.name))
        await audit.record(
            "user.create",
            actor=None,
            actor_email="system",
            organization_id=org.id,
            target_type="user",
            target_id=user.id,
            detail={"email": email, "role": role.name, "superadmin": superadmin},
        )
    return user.id


async def ensure_first_admin(email: str, password: str) -> bool:
    """Create the first admin when no user exists; True when one was created."""
    if not email or await User.count() > 0:
        return False
    await create_account(email, password, superadmin=True)
    log.info("first admin created", extra={"email": normalize_email(email)})
    return True
