"""The assistant's jobs besides chat: explain a failed run, explain a playbook, optimise a playbook.

Each is a turn like any other (streamed, stored, redacted), in a new conversation or a given one,
with a brief the user did not have to write.
"""

from __future__ import annotations

import uuid
from typing import Any

from server.assistant import conversations, prompts, proposals
from server.assistant.config import require_config
from server.assistant.failures import failure_bundle
from server.assistant.optimise import compare, slowest_tasks
from server.assistant.streaming import Turn
from server.assistant.turn import Request, Services
from server.assistant.turns import start_turn
from server.assistant.usage import check_budget
from server.auth.principal import Principal, Role
from server.errors import Forbidden


async def _conversation(
    services: Services, principal: Principal, conversation_id: uuid.UUID | None, title: str, context: dict[str, Any]
) -> dict[str, Any]:
    """The given conversation, or a new one, but only once the assistant can answer in it."""
    config = await require_config(services.settings, principal.current_organization())
    await check_budget(config, principal.current_organization())
    if conversation_id is not None:
        return await conversations.conversation_row(principal, conversation_id, write=True)
    return await conversations.create_conversation(principal, title, context)


async def chat(
    services: Services, principal: Principal, conversation_id: uuid.UUID, content: str, context: dict[str, Any]
) -> tuple[Turn, dict[str, Any]]:
    """A message in a conversation; a playbook proposed while one is in context is a change to it."""
    request = Request(content, context, base_from_context=True)
    return await start_turn(services, principal, conversation_id, request)


async def explain_run(
    services: Services, principal: Principal, run_id: uuid.UUID, conversation_id: uuid.UUID | None
) -> tuple[Turn, dict[str, Any]]:
    bundle = await failure_bundle(principal, run_id)
    context = {"run_id": str(run_id)}
    if bundle["playbook_id"]:
        context["playbook_id"] = bundle["playbook_id"]
    base = None
    if bundle["playbook_id"] and bundle["version"]:
        base = await proposals.playbook_base(principal, bundle["playbook_id"], bundle["version"])
    actions = []
    if bundle["failed_hosts"] and bundle["playbook_id"]:
        actions.append(
            {
                "type": "relaunch",
                "label": f"Relaunch the failed hosts ({', '.join(bundle['failed_hosts'])})",
                "method": "POST",
                "path": f"/api/v1/runs/{run_id}/relaunch",
                "body": {"hosts": "failed"},
            }
        )
    target = await _conversation(
        services, principal, conversation_id, f"Why run {str(run_id)[:8]} {bundle['status']}", context
    )
    request = Request(
        f"Why did run {run_id} ({bundle['playbook'] or 'a playbook'}) end {bundle['status']}?",
        context,
        prompt=prompts.explain_run(bundle),
        job="explain_run",
        base=base,
        actions=actions,
    )
    return await start_turn(services, principal, target["id"], request)


async def explain_playbook(
    services: Services, principal: Principal, playbook_id: uuid.UUID, conversation_id: uuid.UUID | None
) -> tuple[Turn, dict[str, Any]]:
    base = await proposals.playbook_base(principal, playbook_id)
    context = {"playbook_id": str(playbook_id)}
    target = await _conversation(services, principal, conversation_id, f"What {base['name']} does", context)
    request = Request(
        f"Explain the playbook {base['name']} in plain words.",
        context,
        prompt=prompts.explain_playbook(base["name"], base["content"]),
        job="explain_playbook",
        base=base,
    )
    return await start_turn(services, principal, target["id"], request)


async def optimise_playbook(
    services: Services,
    principal: Principal,
    playbook_id: uuid.UUID,
    inventory_id: uuid.UUID | None,
    limit: str,
    conversation_id: uuid.UUID | None,
) -> tuple[Turn, dict[str, Any]]:
    """A faster version as a ``diff`` proposal; with an inventory, both versions run and are timed."""
    if inventory_id is not None and (principal.role or 0) < Role.operator:
        raise Forbidden("measuring on an inventory launches runs: this needs the operator role")
    if inventory_id is not None:
        await conversations.check_context(principal.current_organization(), {"inventory_id": inventory_id}, "body")
    base = await proposals.playbook_base(principal, playbook_id)
    slowest = await slowest_tasks(playbook_id)
    context: dict[str, Any] = {"playbook_id": str(playbook_id)}
    if inventory_id is not None:
        context["inventory_id"] = str(inventory_id)
    target = await _conversation(services, principal, conversation_id, f"A faster {base['name']}", context)
    if limit:
        context["limit"] = limit
    request = Request(
        f"Make the playbook {base['name']} faster.",
        context,
        prompt=prompts.optimise_playbook(base["name"], base["content"], slowest),
        job="optimise",
        base=base,
        after_checks=compare if inventory_id is not None else None,
    )
    return await start_turn(services, principal, target["id"], request)
