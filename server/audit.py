"""The audit log: who did what to which object, written in the same transaction as the change."""

from __future__ import annotations

import uuid
from typing import Any

from server.auth.principal import Principal
from server.context import request_id_var
from server.db.tables import AuditLog


async def record(
    action: str,
    *,
    actor: Principal | None,
    organization_id: uuid.UUID | None = None,
    target_type: str = "",
    target_id: uuid.UUID | str = "",
    detail: dict[str, Any] | None = None,
    actor_email: str = "",
) -> None:
    """Store one audit event. ``detail`` must never hold a secret: callers pass names, not values."""
    await AuditLog.insert(
        AuditLog(
            organization_id=organization_id,
            actor_id=actor.user_id if actor else None,
            actor_email=actor.email if actor else actor_email,
            action=action,
            target_type=target_type,
            target_id=str(target_id),
            detail=detail or {},
            request_id=request_id_var.get(),
        )
    )
