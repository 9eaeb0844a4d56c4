"""Credentials (encrypted), inventories and the link that keeps a used credential from deletion."""

from __future__ import annotations

from typing import Any

from piccolo.columns import JSON, UUID, ForeignKey, Integer, OnDelete, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.engine.base import Engine
from piccolo.table import Table

INDEXES = (
    "CREATE UNIQUE INDEX credential_organization_name ON credential (organization, name)",
    "CREATE UNIQUE INDEX inventory_organization_name ON inventory (organization, name)",
    "CREATE UNIQUE INDEX inventory_credential_pair ON inventory_credential (inventory, credential)",
    "CREATE INDEX inventory_credential_credential ON inventory_credential (credential)",
)


async def upgrade(engine: Engine[Any]) -> None:
    class Organization(Table, tablename="organization", db=engine):
        id = UUID(primary_key=True)

    class Credential(Table, tablename="credential", db=engine):
        id = UUID(primary_key=True)
        organization = ForeignKey(Organization, on_delete=OnDelete.cascade)
        name = Varchar(length=100)
        kind = Varchar(length=32)
        description = Text(default="")
        fields = JSON(default="{}")
        secret = Text()
        fingerprint = Varchar(length=100, default="")
        created_by = UUID(null=True, default=None)
        created_at = Timestamptz(default=TimestamptzNow())
        updated_at = Timestamptz(default=TimestamptzNow())

    class Inventory(Table, tablename="inventory", db=engine):
        id = UUID(primary_key=True)
        organization = ForeignKey(Organization, on_delete=OnDelete.cascade)
        name = Varchar(length=100)
        description = Text(default="")
        document = JSON(default="{}")
        host_count = Integer(default=0)
        group_count = Integer(default=0)
        source = JSON(null=True, default=None)
        synced_at = Timestamptz(null=True, default=None)
        sync_status = Varchar(length=20, default="")
        sync_error = Text(default="")
        created_at = Timestamptz(default=TimestamptzNow())
        updated_at = Timestamptz(default=TimestamptzNow())

    class InventoryCredential(Table, tablename="inventory_credential", db=engine):
        id = UUID(primary_key=True)
        inventory = ForeignKey(Inventory, on_delete=OnDelete.cascade)
        credential = ForeignKey(Credential, on_delete=OnDelete.restrict)

    for table in (Credential, Inventory, InventoryCredential):
        await table.create_table()
    for ddl in INDEXES:
        await engine.run_ddl(ddl)
