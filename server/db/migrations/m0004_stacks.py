"""Stacks with their versions, and deployments of stacks."""

from __future__ import annotations

from typing import Any

from piccolo.columns import JSON, UUID, ForeignKey, Integer, OnDelete, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.engine.base import Engine
from piccolo.table import Table

INDEXES = (
    "CREATE UNIQUE INDEX stack_organization_name ON stack (organization, name)",
    "CREATE UNIQUE INDEX stack_version_number ON stack_version (stack, version)",
    "CREATE UNIQUE INDEX deployment_organization_name ON deployment (organization, name)",
    "CREATE INDEX deployment_stack ON deployment (stack)",
)


async def upgrade(engine: Engine[Any]) -> None:
    class Organization(Table, tablename="organization", db=engine):
        id = UUID(primary_key=True)

    class Inventory(Table, tablename="inventory", db=engine):
        id = UUID(primary_key=True)

    class Credential(Table, tablename="credential", db=engine):
        id = UUID(primary_key=True)

    class Playbook(Table, tablename="playbook", db=engine):
        id = UUID(primary_key=True)

    class Stack(Table, tablename="stack", db=engine):
        id = UUID(primary_key=True)
        organization = ForeignKey(Organization, on_delete=OnDelete.cascade)
        name = Varchar(length=100)
        description = Text(default="")
        category = Varchar(length=100, default="")
        tags = JSON(default="[]")
        targets = JSON(default="[]")
        semver = Varchar(length=64, default="")
        source = Varchar(length=20, default="manual")
        latest_version = Integer(default=0)
        created_by = UUID(null=True, default=None)
        created_at = Timestamptz(default=TimestamptzNow())
        updated_at = Timestamptz(default=TimestamptzNow())

    class StackVersion(Table, tablename="stack_version", db=engine):
        id = UUID(primary_key=True)
        stack = ForeignKey(Stack, on_delete=OnDelete.cascade)
        version = Integer()
        semver = Varchar(length=64, default="")
        definition = JSON(default="{}")
        checksum = Varchar(length=64)
        created_by = UUID(null=True, default=None)
        created_at = Timestamptz(default=TimestamptzNow())

    class Deployment(Table, tablename="deployment", db=engine):
        id = UUID(primary_key=True)
        organization = ForeignKey(Organization, on_delete=OnDelete.cascade)
        stack = ForeignKey(Stack, on_delete=OnDelete.cascade)
        stack_version = Integer(default=1)
        name = Varchar(length=100)
        target = Varchar(length=20)
        inventory = ForeignKey(Inventory, null=True, on_delete=OnDelete.set_null)
        credentials = JSON(default="[]")
        parameters = JSON(default="{}")
        plain_values = JSON(default="{}")
        secrets = ForeignKey(Credential, null=True, on_delete=OnDelete.set_null)
        playbook = ForeignKey(Playbook, null=True, on_delete=OnDelete.set_null)
        state = Varchar(length=20, default="deployed")
        last_run = UUID(null=True, default=None)
        created_by = UUID(null=True, default=None)
        created_at = Timestamptz(default=TimestamptzNow())
        updated_at = Timestamptz(default=TimestamptzNow())

    for table in (Stack, StackVersion, Deployment):
        await table.create_table()
    for ddl in INDEXES:
        await engine.run_ddl(ddl)
