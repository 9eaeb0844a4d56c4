"""The assistant: settings per organization, conversations, messages, proposals and daily usage;
runs of content that is no saved playbook (a proposal's check)."""

from __future__ import annotations

from typing import Any

from piccolo.columns import JSON, UUID, Boolean, ForeignKey, Integer, OnDelete, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.engine.base import Engine
from piccolo.table import Table

DDL = (
    "ALTER TABLE run ADD COLUMN content TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE run ADD COLUMN proposal UUID NULL",
    "CREATE UNIQUE INDEX assistant_settings_organization ON assistant_settings (organization)",
    "CREATE INDEX conversation_user ON conversation (organization, owner, updated_at)",
    "CREATE INDEX assistant_message_conversation ON assistant_message (conversation, created_at)",
    "CREATE INDEX assistant_proposal_message ON assistant_proposal (message)",
    "CREATE UNIQUE INDEX assistant_usage_day ON assistant_usage (organization, day)",
)


async def upgrade(engine: Engine[Any]) -> None:
    class Organization(Table, tablename="organization", db=engine):
        id = UUID(primary_key=True)

    class User(Table, tablename="account", db=engine):
        id = UUID(primary_key=True)

    class Credential(Table, tablename="credential", db=engine):
        id = UUID(primary_key=True)

    class AssistantSettings(Table, tablename="assistant_settings", db=engine):
        id = UUID(primary_key=True)
        organization = ForeignKey(Organization, on_delete=OnDelete.cascade)
        credential = ForeignKey(Credential, null=True, on_delete=OnDelete.restrict)
        config = JSON(default="{}")
        updated_by = UUID(null=True, default=None)
        updated_at = Timestamptz(default=TimestamptzNow())

    class Conversation(Table, tablename="conversation", db=engine):
        id = UUID(primary_key=True)
        organization = ForeignKey(Organization, on_delete=OnDelete.cascade)
        owner = ForeignKey(User, on_delete=OnDelete.cascade)
        title = Varchar(length=200, default="")
        context = JSON(default="{}")
        created_at = Timestamptz(default=TimestamptzNow())
        updated_at = Timestamptz(default=TimestamptzNow())

    class AssistantMessage(Table, tablename="assistant_message", db=engine):
        id = UUID(primary_key=True)
        conversation = ForeignKey(Conversation, on_delete=OnDelete.cascade)
        role = Varchar(length=16)
        content = Text(default="")
        status = Varchar(length=16, default="complete")
        finish_reason = Varchar(length=32, default="")
        error = JSON(default="{}")
        context = JSON(default="{}")
        tool_calls = JSON(default="[]")
        actions = JSON(default="[]")
        model = Varchar(length=200, default="")
        tokens_in = Integer(default=0)
        tokens_out = Integer(default=0)
        first_token_ms = Integer(null=True, default=None)
        stop_requested = Boolean(default=False)
        created_at = Timestamptz(default=TimestamptzNow())
        finished_at = Timestamptz(null=True, default=None)

    class AssistantProposal(Table, tablename="assistant_proposal", db=engine):
        id = UUID(primary_key=True)
        organization = ForeignKey(Organization, on_delete=OnDelete.cascade)
        conversation = ForeignKey(Conversation, on_delete=OnDelete.cascade)
        message = ForeignKey(AssistantMessage, on_delete=OnDelete.cascade)
        owner = UUID(null=True, default=None)
        kind = Varchar(length=16)
        target = Varchar(length=20, default="")
        base = JSON(default="{}")
        content = Text(default="")
        status = Varchar(length=16, default="failed")
        evidence = JSON(default="[]")
        attempts = JSON(default="[]")
        saved = JSON(default="{}")
        created_at = Timestamptz(default=TimestamptzNow())
        updated_at = Timestamptz(default=TimestamptzNow())

    class AssistantUsage(Table, tablename="assistant_usage", db=engine):
        id = UUID(primary_key=True)
        organization = ForeignKey(Organization, on_delete=OnDelete.cascade)
        day = Varchar(length=10)
        requests = Integer(default=0)
        tokens_in = Integer(default=0)
        tokens_out = Integer(default=0)

    for table in (AssistantSettings, Conversation, AssistantMessage, AssistantProposal, AssistantUsage):
        await table.create_table()
    for ddl in DDL:
        await engine.run_ddl(ddl)
