"""Conversations and their messages: each belongs to one user in one organization.

Another user never finds someone's conversation (404), except an organization admin, who may read
(never write) them for audit. A conversation's ``context`` (an inventory, playbook, run or stack it
is about) is the default of each of its messages; ids are checked against the organization.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from server import audit
from server.auth.principal import Principal, Role
from server.auth.service import utcnow
from server.db.engine import atomic
from server.db.pages import page_of
from server.db.tables import (
    AssistantMessage,
    AssistantProposal,
    Conversation,
    Inventory,
    Playbook,
    Run,
    Stack,
)
from server.errors import FieldError, NotFound, ValidationFailed

CONTEXT_TABLES: dict[str, Any] = {"inventory_id": Inventory, "playbook_id": Playbook, "run_id": Run, "stack_id": Stack}
TARGETS = ("docker", "kubernetes", "vm", "bare-metal")
CONVERSATION = (
    Conversation.id,
    Conversation.organization,
    Conversation.owner,
    Conversation.title,
    Conversation.context,
    Conversation.created_at,
    Conversation.updated_at,
)
MESSAGE = (
    AssistantMessage.id,
    AssistantMessage.conversation,
    AssistantMessage.role,
    AssistantMessage.content,
    AssistantMessage.status,
    AssistantMessage.finish_reason,
    AssistantMessage.error,
    AssistantMessage.context,
    AssistantMessage.tool_calls,
    AssistantMessage.actions,
    AssistantMessage.model,
    AssistantMessage.tokens_in,
    AssistantMessage.tokens_out,
    AssistantMessage.first_token_ms,
    AssistantMessage.created_at,
    AssistantMessage.finished_at,
)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def _conversation(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["organization_id"] = out.pop("organization")
    out["owner_id"] = out.pop("owner")
    out["context"] = _json(out["context"]) or {}
    return out


def message_view(row: dict[str, Any], proposals: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    out = dict(row)
    out["conversation_id"] = out.pop("conversation")
    for key in ("error", "context"):
        out[key] = _json(out[key]) or {}
    for key in ("tool_calls", "actions"):
        out[key] = _json(out[key]) or []
    out["error"] = out["error"] or None
    out["proposals"] = proposals or []
    return out


async def check_context(organization_id: uuid.UUID, context: dict[str, Any], path: str) -> dict[str, Any]:
    """Drop unset keys; every id must name an object of the organization."""
    clean = {k: v for k, v in context.items() if v is not None}
    errors = []
    for key, table in CONTEXT_TABLES.items():
        if key in clean:
            exists = await table.exists().where(table.id == clean[key], table.organization == organization_id)
            if not exists:
                errors.append(FieldError(f"{path}.{key}", f"no such {key.removesuffix('_id')} in this organization"))
            else:
                clean[key] = str(clean[key])
    if errors:
        raise ValidationFailed(f"{errors[0].field}: {errors[0].message}", errors)
    return clean


async def create_conversation(principal: Principal, title: str, context: dict[str, Any]) -> dict[str, Any]:
    organization_id = principal.current_organization()
    context = await check_context(organization_id, context, "body.context")
    conversation = Conversation(
        organization=organization_id, owner=principal.user_id, title=title, context=json.dumps(context)
    )
    async with atomic():
        await conversation.save()
        await audit.record(
            "conversation.create",
            actor=principal,
            organization_id=organization_id,
            target_type="conversation",
            target_id=conversation.id,
        )
    return await get_conversation(principal, conversation.id)


async def list_conversations(
    principal: Principal, page: int, size: int, everyone: bool = False
) -> tuple[list[dict[str, Any]], int]:
    """The caller's conversations, newest activity first; an admin may ask for everyone's."""
    organization_id = principal.current_organization()
    where = [Conversation.organization == organization_id]
    if not (everyone and (principal.role or 0) >= Role.admin):
        where.append(Conversation.owner == principal.user_id)
    query = Conversation.select(*CONVERSATION).where(*where).order_by(Conversation.updated_at, ascending=False)
    rows = await page_of(query, page, size)
    return [_conversation(row) for row in rows], await Conversation.count().where(*where)


async def conversation_row(principal: Principal, conversation_id: uuid.UUID, *, write: bool) -> dict[str, Any]:
    """The conversation if the caller owns it, or (to read) is an admin of its organization."""
    row = (
        await Conversation.select(*CONVERSATION)
        .where(Conversation.id == conversation_id, Conversation.organization == principal.current_organization())
        .first()
    )
    if row is None:
        raise NotFound("conversation not found")
    mine = row["owner"] == principal.user_id
    if not mine and (write or (principal.role or 0) < Role.admin):
        raise NotFound("conversation not found")
    return _conversation(row)


async def get_conversation(principal: Principal, conversation_id: uuid.UUID) -> dict[str, Any]:
    return await conversation_row(principal, conversation_id, write=False)


async def update_conversation(
    principal: Principal, conversation_id: uuid.UUID, changes: dict[str, Any]
) -> dict[str, Any]:
    current = await conversation_row(principal, conversation_id, write=True)
    values: dict[Any, Any] = {}
    if "title" in changes:
        values[Conversation.title] = changes["title"]
    if "context" in changes:
        context = await check_context(current["organization_id"], changes["context"] or {}, "body.context")
        values[Conversation.context] = json.dumps(context)
    if values:
        await Conversation.update({**values, Conversation.updated_at: utcnow()}).where(
            Conversation.id == conversation_id
        )
    return await get_conversation(principal, conversation_id)


async def delete_conversation(principal: Principal, conversation_id: uuid.UUID) -> None:
    current = await conversation_row(principal, conversation_id, write=True)
    async with atomic():
        await Conversation.delete().where(Conversation.id == conversation_id)
        await audit.record(
            "conversation.delete",
            actor=principal,
            organization_id=current["organization_id"],
            target_type="conversation",
            target_id=conversation_id,
        )


async def proposal_summaries(message_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[dict[str, Any]]]:
    if not message_ids:
        return {}
    rows = (
        await AssistantProposal.select(
            AssistantProposal.id, AssistantProposal.message, AssistantProposal.kind, AssistantProposal.status
        )
        .where(AssistantProposal.message.is_in(message_ids))
        .order_by(AssistantProposal.created_at)
    )
    found: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for row in rows:
        found.setdefault(row["message"], []).append({"id": row["id"], "kind": row["kind"], "status": row["status"]})
    return found


async def list_messages(
    principal: Principal, conversation_id: uuid.UUID, page: int, size: int
) -> tuple[list[dict[str, Any]], int]:
    """Oldest first, as a chat reads."""
    await conversation_row(principal, conversation_id, write=False)
    query = (
        AssistantMessage.select(*MESSAGE)
        .where(AssistantMessage.conversation == conversation_id)
        .order_by(AssistantMessage.created_at)
        .order_by(AssistantMessage.role, ascending=False)  # a user message before the reply of the same instant
    )
    rows = await page_of(query, page, size)
    proposals = await proposal_summaries([row["id"] for row in rows])
    total = await AssistantMessage.count().where(AssistantMessage.conversation == conversation_id)
    return [message_view(row, proposals.get(row["id"])) for row in rows], total


async def get_message(message_id: uuid.UUID) -> dict[str, Any]:
    row = await AssistantMessage.select(*MESSAGE).where(AssistantMessage.id == message_id).first()
    if row is None:
        raise NotFound("message not found")
    proposals = await proposal_summaries([message_id])
    return message_view(row, proposals.get(message_id))


async def history(conversation_id: uuid.UUID, limit: int = 200) -> list[dict[str, Any]]:
    """The conversation's finished messages, oldest first (the newest ``limit``)."""
    rows = (
        await AssistantMessage.select(AssistantMessage.id, AssistantMessage.role, AssistantMessage.content)
        .where(AssistantMessage.conversation == conversation_id, AssistantMessage.status != "streaming")
        .order_by(AssistantMessage.created_at, ascending=False)
        .limit(limit)
    )
    return list(reversed(rows))
