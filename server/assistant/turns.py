"""One turn of a conversation: the user's message stored first, then the reply streamed and stored.

The reply is the model's text (with tool calls over WindFlow's data when the model has function
calling); then every playbook or stack in it becomes a proposal (``repair.py``).
Every request is redacted first. Events (``delta``, ``tool``, ``proposal``, ``evidence``, ``done``,
``error``) go to whoever follows the turn; the stored message is the truth when nobody does.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import uuid
from typing import Any

from server.assistant import checks, conversations, prompts, provider, repair
from server.assistant.config import require_config
from server.assistant.redaction import Redactor, organization_secrets
from server.assistant.streaming import Turn
from server.assistant.tools import TOOLS, call_tool, render_context, summary
from server.assistant.turn import Request, Services, TurnRun, together
from server.assistant.usage import check_budget, record_usage
from server.auth.principal import Principal
from server.auth.service import utcnow
from server.db.tables import AssistantMessage, Conversation
from server.errors import WindFlowError

log = logging.getLogger(__name__)
MAX_TOOL_ROUNDS = 5


async def start_turn(
    services: Services, principal: Principal, conversation_id: uuid.UUID, request: Request
) -> tuple[Turn, dict[str, Any]]:
    """Check what can be checked, store the user's message, and start the reply; returns the turn.

    The reads before the model is asked run at the same time: they are the time to first token.
    """
    organization_id = principal.current_organization()
    conversation, config, context, secrets, past = await together(
        conversations.conversation_row(principal, conversation_id, write=True),
        require_config(services.settings, organization_id),
        conversations.check_context(organization_id, request.context, "body.context"),
        organization_secrets(services.settings.secret_key, organization_id),
        conversations.history(conversation_id),
    )
    await check_budget(config, organization_id)
    request.context = context = {**conversation["context"], **context}
    # What the user pasted is kept as the model sees it: a secret in it is stored redacted, never in clear.
    redactor = Redactor([*secrets, config.api_key])
    now = utcnow()
    user = AssistantMessage(
        conversation=conversation_id,
        role="user",
        content=redactor.text(request.content),
        context=json.dumps(context),
        created_at=now,
    )
    reply = AssistantMessage(
        conversation=conversation_id,
        role="assistant",
        status="streaming",
        model=config.model,
        context=json.dumps(context),
        created_at=now + dt.timedelta(microseconds=1),  # after the user's, however the clock ticks
    )
    await AssistantMessage.insert(user, reply)
    turn = Turn(reply.id, conversation_id)
    history = [*past, {"role": "user", "content": user.content}]
    run = TurnRun(services, principal, config, conversation_id, reply.id, request, turn, redactor, history=history)
    services.hub.start(turn, _run(run, "" if conversation["title"] else prompts.title_of(user.content)))
    return turn, {"user_message_id": user.id, "message_id": reply.id}


async def _touch(conversation_id: uuid.UUID, title: str) -> None:
    changes: dict[Any, Any] = {Conversation.updated_at: utcnow()}
    if title:
        changes[Conversation.title] = title
    await Conversation.update(changes).where(Conversation.id == conversation_id)


async def _run(run: TurnRun, title: str) -> None:
    # The conversation's activity and title are written beside the model's first request, not before it.
    touch = asyncio.create_task(_touch(run.conversation_id, title))
    if not run.services.hub.warmed:
        # The first check of a process would wait a second for its tools: start them while the model writes.
        run.services.hub.warmed = True
        run.services.hub.spare(checks.warm_up())
    try:
        await _answer(run)
    finally:
        with contextlib.suppress(Exception):
            await touch


async def _answer(run: TurnRun) -> None:
    try:
        text, finish = await _reply(run)
        if not run.stopped:
            await repair.propose_all(run, text, finish == "length")
        await _finish(run, text, "stopped" if run.stopped else "complete", finish)
    except asyncio.CancelledError:
        await asyncio.shield(_finish(run, "".join(run.partial), "stopped", "stopped"))
        raise
    except WindFlowError as exc:
        run.turn.failure = exc
        await _fail(run, exc.code, exc.detail)
    except Exception:  # noqa: BLE001 - a turn must end with a stored message and a final event
        log.exception("assistant turn failed", extra={"message_id": str(run.message_id)})
        failure = WindFlowError("the assistant failed unexpectedly; quote the message id when reporting it")
        run.turn.failure = failure
        await _fail(run, failure.code, failure.detail)


async def _prompt(run: TurnRun, tools: bool) -> list[dict[str, Any]]:
    context = run.request.context
    context_text = "" if tools else await render_context(run.principal, context, run.services.cache_dir)
    system = {"role": "system", "content": prompts.system_prompt(tools, context_text, context)}
    messages = [{"role": row["role"], "content": row["content"]} for row in run.history if row["content"]]
    if run.request.prompt is not None and messages and messages[-1]["role"] == "user":
        messages[-1] = {"role": "user", "content": run.request.prompt}
    return await run.fit([system, *messages])


async def _reply(run: TurnRun) -> tuple[str, str]:
    """The model's answer, after any tool calls; returns its text and the last finish reason."""
    litellm = await provider.load()
    tools_on = provider.supports_tools(run.config, litellm)
    messages = await _prompt(run, tools_on)
    texts: list[str] = []

    async def on_text(piece: str) -> None:
        run.partial.append(piece)
        run.emit({"type": "delta", "text": piece})

    finish = ""
    for round_number in range(1, MAX_TOOL_ROUNDS + 1):
        offer = TOOLS if tools_on and round_number < MAX_TOOL_ROUNDS else None
        completion = await run.complete(messages, on_text, offer)
        finish = completion.finish_reason
        if completion.text:
            texts.append(completion.text)
        if run.stopped or not completion.tool_calls:
            break
        messages.append(
            {
                "role": "assistant",
                "content": completion.text or None,
                "tool_calls": [
                    {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                    for c in completion.tool_calls
                ],
            }
        )
        for call in completion.tool_calls:
            result, ok = await call_tool(run.principal, call.name, call.parsed(), run.services.cache_dir)
            short = summary(result, ok)
            run.tool_calls.append({"name": call.name, "arguments": call.parsed(), "ok": ok, "result": short})
            run.emit({"type": "tool", "name": call.name, "arguments": call.parsed(), "ok": ok, "result": short})
            messages.append({"role": "tool", "tool_call_id": call.id, "name": call.name, "content": result})
    run.messages = messages
    return "".join(texts), finish


async def _finish(run: TurnRun, text: str, status: str, finish: str) -> None:
    await AssistantMessage.update(
        {
            AssistantMessage.content: text,
            AssistantMessage.status: status,
            AssistantMessage.finish_reason: finish,
            AssistantMessage.tokens_in: run.tokens_in,
            AssistantMessage.tokens_out: run.tokens_out,
            AssistantMessage.first_token_ms: run.first_token_ms,
            AssistantMessage.tool_calls: json.dumps(run.tool_calls, default=str),
            AssistantMessage.actions: json.dumps(run.request.actions, default=str),
            AssistantMessage.finished_at: utcnow(),
        }
    ).where(AssistantMessage.id == run.message_id)
    await record_usage(run.principal.current_organization(), run.tokens_in, run.tokens_out)
    found = await conversations.proposal_summaries([run.message_id])
    run.emit(
        {
            "type": "done",
            "message_id": str(run.message_id),
            "status": status,
            "finish_reason": finish,
            "usage": {"tokens_in": run.tokens_in, "tokens_out": run.tokens_out},
            "proposals": [{**p, "id": str(p["id"])} for p in found.get(run.message_id, [])],
            "actions": run.request.actions,
        }
    )


async def _fail(run: TurnRun, code: str, detail: str) -> None:
    run.services.metrics.errors.labels(code).inc()
    await AssistantMessage.update(
        {
            AssistantMessage.content: "".join(run.partial),
            AssistantMessage.status: "error",
            AssistantMessage.error: json.dumps({"code": code, "detail": detail}),
            AssistantMessage.tokens_in: run.tokens_in,
            AssistantMessage.tokens_out: run.tokens_out,
            AssistantMessage.tool_calls: json.dumps(run.tool_calls, default=str),
            AssistantMessage.finished_at: utcnow(),
        }
    ).where(AssistantMessage.id == run.message_id)
    if run.tokens_in or run.tokens_out:
        await record_usage(run.principal.current_organization(), run.tokens_in, run.tokens_out)
    run.emit({"type": "error", "message_id": str(run.message_id), "code": code, "detail": detail})


async def stop_turns(services: Services, principal: Principal, conversation_id: uuid.UUID) -> int:
    """Ask the conversation's running reply to stop (here at once, on another server within a second)."""
    await conversations.conversation_row(principal, conversation_id, write=True)
    stopped = await (
        AssistantMessage.update({AssistantMessage.stop_requested: True})
        .where(AssistantMessage.conversation == conversation_id, AssistantMessage.status == "streaming")
        .returning(AssistantMessage.id)
    )
    for turn in services.hub.running_in(conversation_id):
        turn.stop.set()
    return len(stopped)


async def recover_interrupted(older_than: dt.timedelta = dt.timedelta()) -> int:
    """At start-up: replies left ``streaming`` by a server that stopped are marked as interrupted.

    With one server (embedded) every such reply is dead; with several, only old ones are, since
    another server may be writing a recent one.
    """
    detail = {"code": "INTERRUPTED", "detail": "the server stopped while this reply was being written"}
    rows = await (
        AssistantMessage.update(
            {
                AssistantMessage.status: "error",
                AssistantMessage.error: json.dumps(detail),
                AssistantMessage.finished_at: utcnow(),
            }
        )
        .where(AssistantMessage.status == "streaming", AssistantMessage.created_at <= utcnow() - older_than)
        .returning(AssistantMessage.id)
    )
    return len(rows)
