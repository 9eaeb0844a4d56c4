"""Playbooks with their versions, runs and run events."""

from __future__ import annotations

from typing import Any

from piccolo.columns import JSON, UUID, BigSerial, Boolean, ForeignKey, Integer, OnDelete, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.engine.base import Engine
from piccolo.table import Table

INDEXES = (
    "CREATE UNIQUE INDEX playbook_organization_name ON playbook (organization, name)",
    "CREATE UNIQUE INDEX playbook_version_number ON playbook_version (playbook, version)",
    "CREATE INDEX run_organization_created ON run (organization, created_at)",
    "CREATE INDEX run_status ON run (status)",
    "CREATE UNIQUE INDEX run_event_counter ON run_event (run, counter)",
)


async def upgrade(engine: Engine[Any]) -> None:
    class Organization(Table, tablename="organization", db=engine):
        id = UUID(primary_key=True)

    class Inventory(Table, tablename="inventory", db=engine):
        id = UUID(primary_key=True)

    class Playbook(Table, tablename="playbook", db=engine):
        id = UUID(primary_key=True)
        organization = ForeignKey(Organization, on_delete=OnDelete.cascade)
        name = Varchar(length=100)
        description = Text(default="")
        source = Varchar(length=20, default="manual")
        latest_version = Integer(default=0)
        created_by = UUID(null=True, default=None)
        created_at = Timestamptz(default=TimestamptzNow())
        updated_at = Timestamptz(default=TimestamptzNow())

    class PlaybookVersion(Table, tablename="playbook_version", db=engine):
        id = UUID(primary_key=True)
        playbook = ForeignKey(Playbook, on_delete=OnDelete.cascade)
        version = Integer()
        content = Text()
        checksum = Varchar(length=64)
        created_by = UUID(null=True, default=None)
        created_at = Timestamptz(default=TimestamptzNow())

    class Run(Table, tablename="run", db=engine):
        id = UUID(primary_key=True)
        organization = ForeignKey(Organization, on_delete=OnDelete.cascade)
        playbook = ForeignKey(Playbook, null=True, on_delete=OnDelete.set_null)
        playbook_version = ForeignKey(PlaybookVersion, null=True, on_delete=OnDelete.set_null)
        inventory = ForeignKey(Inventory, null=True, on_delete=OnDelete.set_null)
        options = JSON(default="{}")
        targets = JSON(default="[]")
        status = Varchar(length=20, default="pending")
        reason = Text(default="")
        attempts = Integer(default=0)
        next_attempt_at = Timestamptz(null=True, default=None)
        cancel_requested = Boolean(default=False)
        worker = Varchar(length=200, default="")
        heartbeat_at = Timestamptz(null=True, default=None)
        started_at = Timestamptz(null=True, default=None)
        finished_at = Timestamptz(null=True, default=None)
        host_stats = JSON(default="{}")
        event_count = Integer(default=0)
        relaunch_of = UUID(null=True, default=None)
        created_by = UUID(null=True, default=None)
        created_at = Timestamptz(default=TimestamptzNow())

    class RunEvent(Table, tablename="run_event", db=engine):
        id = BigSerial(primary_key=True)
        run = ForeignKey(Run, on_delete=OnDelete.cascade)
        counter = Integer()
        uuid = Varchar(length=36, default="")
        event = Varchar(length=64)
        host = Varchar(length=255, default="")
        play = Text(default="")
        task = Text(default="")
        role = Text(default="")
        changed = Boolean(default=False)
        failed = Boolean(default=False)
        stdout = Text(default="")
        start_line = Integer(default=0)
        end_line = Integer(default=0)
        created = Timestamptz(null=True, default=None)
        data = JSON(default="{}")

    for table in (Playbook, PlaybookVersion, Run, RunEvent):
        await table.create_table()
    for ddl in INDEXES:
        await engine.run_ddl(ddl)
