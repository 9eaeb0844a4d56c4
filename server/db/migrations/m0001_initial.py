"""Organizations, users, memberships, API and refresh tokens, audit log, idempotency records."""

from __future__ import annotations

from typing import Any

from piccolo.columns import (
    JSON,
    UUID,
    Boolean,
    ForeignKey,
    Integer,
    OnDelete,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.engine.base import Engine
from piccolo.table import Table

INDEXES = (
    'CREATE UNIQUE INDEX membership_user_organization ON membership ("user", organization)',
    "CREATE INDEX membership_organization ON membership (organization)",
    'CREATE INDEX api_token_user ON api_token ("user")',
    "CREATE INDEX refresh_token_family ON refresh_token (family_id)",
    "CREATE INDEX audit_log_organization_created ON audit_log (organization_id, created_at)",
    "CREATE INDEX idempotency_record_created ON idempotency_record (created_at)",
)


async def upgrade(engine: Engine[Any]) -> None:
    class Organization(Table, tablename="organization", db=engine):
        id = UUID(primary_key=True)
        name = Varchar(length=100, unique=True)
        description = Text(default="")
        created_at = Timestamptz(default=TimestamptzNow())
        updated_at = Timestamptz(default=TimestamptzNow())

    class User(Table, tablename="account", db=engine):
        id = UUID(primary_key=True)
        email = Varchar(length=254, unique=True)
        password_hash = Varchar(length=255)
        full_name = Varchar(length=200, default="")
        is_active = Boolean(default=True)
        is_superadmin = Boolean(default=False)
        current_organization = ForeignKey(Organization, null=True, on_delete=OnDelete.set_null)
        last_login_at = Timestamptz(null=True, default=None)
        created_at = Timestamptz(default=TimestamptzNow())
        updated_at = Timestamptz(default=TimestamptzNow())

    class Membership(Table, tablename="membership", db=engine):
        id = UUID(primary_key=True)
        user = ForeignKey(User, on_delete=OnDelete.cascade)
        organization = ForeignKey(Organization, on_delete=OnDelete.cascade)
        role = Varchar(length=20)
        created_at = Timestamptz(default=TimestamptzNow())

    class ApiToken(Table, tablename="api_token", db=engine):
        id = UUID(primary_key=True)
        user = ForeignKey(User, on_delete=OnDelete.cascade)
        name = Varchar(length=100)
        token_hash = Varchar(length=64, unique=True)
        prefix = Varchar(length=16)
        created_at = Timestamptz(default=TimestamptzNow())
        expires_at = Timestamptz(null=True, default=None)
        last_used_at = Timestamptz(null=True, default=None)
        revoked_at = Timestamptz(null=True, default=None)

    class RefreshToken(Table, tablename="refresh_token", db=engine):
        id = UUID(primary_key=True)
        user = ForeignKey(User, on_delete=OnDelete.cascade)
        token_hash = Varchar(length=64, unique=True)
        family_id = UUID()
        created_at = Timestamptz(default=TimestamptzNow())
        expires_at = Timestamptz()
        used_at = Timestamptz(null=True, default=None)
        revoked_at = Timestamptz(null=True, default=None)

    class AuditLog(Table, tablename="audit_log", db=engine):
        id = UUID(primary_key=True)
        organization_id = UUID(null=True, default=None)
        actor_id = UUID(null=True, default=None)
        actor_email = Varchar(length=254, default="")
        action = Varchar(length=64)
        target_type = Varchar(length=32, default="")
        target_id = Varchar(length=64, default="")
        detail = JSON(default="{}")
        request_id = Varchar(length=64, default="")
        created_at = Timestamptz(default=TimestamptzNow())

    class IdempotencyRecord(Table, tablename="idempotency_record", db=engine):
        id = UUID(primary_key=True)
        key_hash = Varchar(length=64, unique=True)
        request_hash = Varchar(length=64)
        status_code = Integer(default=0)
        content_type = Varchar(length=100, default="")
        body = Text(default="")
        created_at = Timestamptz(default=TimestamptzNow())

    for table in (Organization, User, Membership, ApiToken, RefreshToken, AuditLog, IdempotencyRecord):
        await table.create_table()
    for ddl in INDEXES:
        await engine.run_ddl(ddl)
