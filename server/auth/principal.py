"""Who is calling: the user, how they authenticated, and their role in each organization."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field

from server.errors import NotFound


class Role(enum.IntEnum):
    """Roles per organization; a higher role can do everything a lower one can."""

    viewer = 1
    operator = 2
    admin = 3

    @classmethod
    def parse(cls, name: str) -> Role:
        return cls[name]


ROLE_NAMES = tuple(role.name for role in Role)


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID
    email: str
    is_superadmin: bool
    organization_id: uuid.UUID | None
    roles: dict[uuid.UUID, Role] = field(default_factory=dict)
    via: str = "access_token"
    token_id: uuid.UUID | None = None

    def role_in(self, organization_id: uuid.UUID | None) -> Role | None:
        if organization_id is None:
            return None
        if self.is_superadmin:
            return Role.admin
        return self.roles.get(organization_id)

    @property
    def role(self) -> Role | None:
        return self.role_in(self.organization_id)

    def current_organization(self) -> uuid.UUID:
        """The organization this call acts in; objects of the others stay invisible (404)."""
        if self.organization_id is None:
            raise NotFound("you belong to no organization")
        return self.organization_id

    def can_see(self, organization_id: uuid.UUID) -> bool:
        return self.is_superadmin or organization_id in self.roles
