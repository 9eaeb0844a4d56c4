"""``/api/v1/audit-log``: what happened in your current organization (admins)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency

from server.api.conventions import READ, AnyRequest, Page, Paging, problems
from server.api.security import admin, principal_of
from server.db.pages import page_of
from server.db.tables import AuditLog


class AuditEntry(msgspec.Struct):
    id: uuid.UUID
    action: str
    actor_id: uuid.UUID | None
    actor_email: str
    target_type: str
    target_id: str
    detail: dict[str, Any]
    request_id: str
    created_at: dt.datetime


class AuditController(Controller):
    path = "/audit-log"
    tags = ["audit"]

    @get(
        "/",
        operation_id="listAuditLog",
        summary="List audit events of your current organization, newest first",
        guards=[admin],
        responses=problems(*READ, 403),
    )
    async def list_audit(self, request: AnyRequest, paging: NamedDependency[Paging]) -> Page[AuditEntry]:
        where = AuditLog.organization_id == principal_of(request).organization_id
        rows = await page_of(
            AuditLog.select().where(where).order_by(AuditLog.created_at, ascending=False).output(load_json=True),
            paging.page,
            paging.size,
        )
        total = await AuditLog.count().where(where)
        return paging.of([msgspec.convert(r, AuditEntry, strict=False) for r in rows], total)
