"""Piccolo tables: the current shape of the schema (migrations build it, see ``migrations/``)."""

from __future__ import annotations

from piccolo.columns import (
    JSON,
    UUID,
    BigSerial,
    Boolean,
    ForeignKey,
    Integer,
    OnDelete,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Organization(Table, tablename="organization"):
    id = UUID(primary_key=True)
    name = Varchar(length=100, unique=True)
    description = Text(default="")
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class User(Table, tablename="account"):
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


class Membership(Table, tablename="membership"):
    id = UUID(primary_key=True)
    user = ForeignKey(User, on_delete=OnDelete.cascade)
    organization = ForeignKey(Organization, on_delete=OnDelete.cascade)
    role = Varchar(length=20)
    created_at = Timestamptz(default=TimestamptzNow())


class ApiToken(Table, tablename="api_token"):
    id = UUID(primary_key=True)
    user = ForeignKey(User, on_delete=OnDelete.cascade)
    name = Varchar(length=100)
    token_hash = Varchar(length=64, unique=True)
    prefix = Varchar(length=16)
    created_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz(null=True, default=None)
    last_used_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)


class RefreshToken(Table, tablename="refresh_token"):
    id = UUID(primary_key=True)
    user = ForeignKey(User, on_delete=OnDelete.cascade)
    token_hash = Varchar(length=64, unique=True)
    family_id = UUID()
    created_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)


class AuditLog(Table, tablename="audit_log"):
    """Kept when its actor or organization is deleted, so it holds ids rather than foreign keys."""

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


class IdempotencyRecord(Table, tablename="idempotency_record"):
    id = UUID(primary_key=True)
    key_hash = Varchar(length=64, unique=True)
    request_hash = Varchar(length=64)
    status_code = Integer(default=0)
    content_type = Varchar(length=100, default="")
    body = Text(default="")
    created_at = Timestamptz(default=TimestamptzNow())


class Credential(Table, tablename="credential"):
    """A secret for reaching targets; ``secret`` is AEAD ciphertext (see ``server/credentials/crypto.py``)."""

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


class Inventory(Table, tablename="inventory"):
    """Hosts, groups and variables kept as one validated document (``server/inventories/spec.py``)."""

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


class InventoryCredential(Table, tablename="inventory_credential"):
    """Which credentials an inventory uses, so a credential in use cannot be deleted."""

    id = UUID(primary_key=True)
    inventory = ForeignKey(Inventory, on_delete=OnDelete.cascade)
    credential = ForeignKey(Credential, on_delete=OnDelete.restrict)


class Playbook(Table, tablename="playbook"):
    """A named playbook; its content lives in versions (every save is a new one)."""

    id = UUID(primary_key=True)
    organization = ForeignKey(Organization, on_delete=OnDelete.cascade)
    name = Varchar(length=100)
    description = Text(default="")
    source = Varchar(length=20, default="manual")
    latest_version = Integer(default=0)
    created_by = UUID(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class PlaybookVersion(Table, tablename="playbook_version"):
    id = UUID(primary_key=True)
    playbook = ForeignKey(Playbook, on_delete=OnDelete.cascade)
    version = Integer()
    content = Text()
    checksum = Varchar(length=64)
    created_by = UUID(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class Run(Table, tablename="run"):
    """One execution of a playbook version against an inventory; written before it is queued."""

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
    # A run of content that is no saved playbook (an assistant proposal's check): the playbook itself.
    content = Text(default="")
    proposal = UUID(null=True, default=None)
    created_by = UUID(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class RunEvent(Table, tablename="run_event"):
    """One Ansible event of a run, in runner's counter order (unique per run)."""

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


class Stack(Table, tablename="stack"):
    """A stack definition of an organization; its documents live in versions (every change is one)."""

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


class StackVersion(Table, tablename="stack_version"):
    id = UUID(primary_key=True)
    stack = ForeignKey(Stack, on_delete=OnDelete.cascade)
    version = Integer()
    semver = Varchar(length=64, default="")
    definition = JSON(default="{}")
    checksum = Varchar(length=64)
    created_by = UUID(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class Deployment(Table, tablename="deployment"):
    """A stack deployed (or undeployed) on an inventory; its secret values sit in ``secrets`` (a credential)."""

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


class AssistantSettings(Table, tablename="assistant_settings"):
    """An organization's overrides of the server's LLM defaults; ``credential`` holds its API key."""

    id = UUID(primary_key=True)
    organization = ForeignKey(Organization, on_delete=OnDelete.cascade)
    credential = ForeignKey(Credential, null=True, on_delete=OnDelete.restrict)
    config = JSON(default="{}")
    updated_by = UUID(null=True, default=None)
    updated_at = Timestamptz(default=TimestamptzNow())


class Conversation(Table, tablename="conversation"):
    """A chat of one user in one organization."""

    id = UUID(primary_key=True)
    organization = ForeignKey(Organization, on_delete=OnDelete.cascade)
    owner = ForeignKey(User, on_delete=OnDelete.cascade)
    title = Varchar(length=200, default="")
    context = JSON(default="{}")
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class AssistantMessage(Table, tablename="assistant_message"):
    """One turn's text: the user's, or the assistant's with its tool calls, tokens and status."""

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


class AssistantProposal(Table, tablename="assistant_proposal"):
    """A playbook, stack or change the assistant proposed, with every attempt and its evidence."""

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


class AssistantUsage(Table, tablename="assistant_usage"):
    """Tokens an organization spent per UTC day; kept when conversations are deleted (budgets)."""

    id = UUID(primary_key=True)
    organization = ForeignKey(Organization, on_delete=OnDelete.cascade)
    day = Varchar(length=10)
    requests = Integer(default=0)
    tokens_in = Integer(default=0)
    tokens_out = Integer(default=0)


class SchemaMigration(Table, tablename="windflow_migration"):
    name = Varchar(length=100, primary_key=True)
    applied_at = Timestamptz(default=TimestamptzNow())


TABLES: tuple[type[Table], ...] = (
    Organization,
    User,
    Membership,
    ApiToken,
    RefreshToken,
    AuditLog,
    IdempotencyRecord,
    Credential,
    Inventory,
    InventoryCredential,
    Playbook,
    PlaybookVersion,
    Run,
    RunEvent,
    Stack,
    StackVersion,
    Deployment,
    AssistantSettings,
    Conversation,
    AssistantMessage,
    AssistantProposal,
    AssistantUsage,
    SchemaMigration,
)
