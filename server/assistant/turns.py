"""One turn of a conversation: the user's message stored first, then the reply streamed and stored.

The reply is the model's text (with tool calls over WindFlow's data when the model has function
calling), then every playbook or stack in it becomes a proposal checked stage by stage; a proposal
that fails a blocking stage goes back to the model with the errors, up to ``max_repairs`` times.
Every request is redacted first. Events (``delta``, ``tool``, ``proposal``, ``evidence``, ``done``,
``error``) go to whoever follows the turn; the stored message is the truth when nobody does.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.assistant import checks, conversations, prompts, proposals, provider
from server.assistant.config import AssistantConfig, require_config
from server.assistant.evidence import Checked
from server.assistant.extraction import Found, find_proposals
from server.assistant.metrics import AssistantMetrics
from server.assistant.redaction import Redactor, organization_secrets
from server.assistant.streaming import Hub, Turn
from server.assistant.tools import TOOLS, call_tool, render_context, summary
from server.assistant.usage import check_budget, record_usage
from server.auth.principal import Principal
from server.auth.service import utcnow
from server.db.tables import AssistantMessage, Conversation
from server.errors import NotFound, ValidationFailed, WindFlowError
from server.runs.queue import RunQueue
from server.settings import Settings

log = logging.getLogger(__name__)
MAX_TOOL_ROUNDS = 5
STOP_POLL = 0.5  # seconds between looks at a stop request made through another server
CONTEXT_MARGIN = 64  # tokens kept free besides the reply's max_tokens
AfterChecks = Callable[["TurnRun", uuid.UUID, Checked], Awaitable[None]]


@dataclass(frozen=True)
class Services:
    """What a turn needs from the application (one per app, handed to the API as a dependency)."""

    settings: Settings
    hub: Hub
    metrics: AssistantMetrics
    queue: RunQueue

    @property
    def cache_dir(self) -> Path:
        return Path(self.settings.data_dir) / "cache"


@dataclass
class Request:
    """A turn to run: ``content`` is stored as the user's message, ``prompt`` (default: it) is sent."""

    content: str
    context: dict[str, Any] = field(default_factory=dict)
    prompt: str | None = None
    job: str = "chat"
    base: dict[str, Any] | None = None  # the playbook a change is made to: playbook_id, version, name, content
    base_from_context: bool = False  # chat: a playbook in the context is what a proposed playbook changes
    actions: list[dict[str, Any]] = field(default_factory=list)
    after_checks: AfterChecks | None = None


@dataclass
class TurnRun:
    """The state of one running turn."""

    services: Services
    principal: Principal
    config: AssistantConfig
    conversation_id: uuid.UUID
    message_id: uuid.UUID
    request: Request
    turn: Turn
    redactor: Redactor = field(default_factory=Redactor)
    tokens_in: int = 0
    tokens_out: int = 0
    first_token_ms: int | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)  # the conversation so far, this message last
    partial: list[str] = field(default_factory=list)  # the reply's text as it arrives
    messages: list[dict[str, Any]] = field(default_factory=list)  # the prompt as last sent, for repairs
    last_poll: float = 0.0
    stopped: bool = False

    def emit(self, event: dict[str, Any]) -> None:
        self.turn.publish(event)

    async def should_stop(self) -> bool:
        if self.turn.stop.is_set():
            self.stopped = True
            return True
        now = time.monotonic()
        if now - self.last_poll >= STOP_POLL:
            self.last_poll = now
            row = (
                await AssistantMessage.select(AssistantMessage.stop_requested)
                .where(AssistantMessage.id == self.message_id)
                .first()
            )
            if row is None or row["stop_requested"]:
                self.turn.stop.set()
                self.stopped = True
        return self.stopped

    async def complete(
        self, messages: list[dict[str, Any]], on_text: provider.OnText, tools: list[dict[str, Any]] | None = None
    ) -> provider.Completion:
        """One request to the model, redacted, counted and timed."""
        self.services.metrics.requests.labels(self.request.job).inc()
        completion = await provider.complete(
            self.config, self.redactor.messages(messages), on_text, tools=tools, should_stop=self.should_stop
        )
        self.tokens_in += completion.tokens_in
        self.tokens_out += completion.tokens_out
        self.services.metrics.tokens_used(completion.tokens_in, completion.tokens_out)
        if self.first_token_ms is None and completion.first_token_ms is not None:
            self.first_token_ms = completion.first_token_ms
            self.services.metrics.first_token.observe(completion.first_token_ms / 1000)
        return completion


async def together(*work: Awaitable[Any]) -> list[Any]:
    """Independent reads at the same time; the first failure is raised as itself (not a group)."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(_awaited(item)) for item in work]
    except ExceptionGroup as failures:
        raise failures.exceptions[0] from None
    return [task.result() for task in tasks]


async def _awaited(item: Awaitable[Any]) -> Any:
    return await item


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
            await _propose_all(run, text, finish == "length")
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
    return await _fit(run, [system, *messages])


async def _fit(run: TurnRun, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop the oldest history until the prompt fits the model's context window with room to answer."""
    litellm = await provider.load()
    window = provider.context_window(run.config, litellm)
    budget = max(window - run.config.max_tokens - CONTEXT_MARGIN, window // 2)
    system, rest = messages[0], messages[1:]
    while len(rest) > 1 and provider.count_tokens(run.config, litellm, [system, *rest]) > budget:
        rest.pop(0)
    if provider.count_tokens(run.config, litellm, [system, *rest]) > budget:
        raise ValidationFailed.for_field(
            "body.content", f"the message and its context are longer than the model's context window ({window} tokens)"
        )
    return [system, *rest]


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


def _diff_base(run: TurnRun, found: Found) -> dict[str, Any]:
    base = run.request.base
    if found.kind != "playbook" or not base:
        return {}
    return {k: base[k] for k in ("playbook_id", "version", "name") if k in base}


async def _check(run: TurnRun, kind: str, content: str, truncated: bool) -> Checked:
    cache = run.services.cache_dir
    if kind == "stack":
        return await checks.check_stack(
            content, target=run.request.context.get("target"), truncated=truncated, cache_dir=cache
        )
    return await checks.check_playbook(content, truncated=truncated, cache_dir=cache)


async def _propose_all(run: TurnRun, text: str, truncated: bool) -> None:
    found_all = find_proposals(text)
    playbook_id = run.request.context.get("playbook_id")
    if found_all and run.request.base is None and run.request.base_from_context and playbook_id:
        with contextlib.suppress(NotFound):  # deleted since: the proposal is a new playbook then
            run.request.base = await proposals.playbook_base(run.principal, playbook_id)
    for found in found_all:
        if run.stopped:
            return
        await _propose(run, found, text, truncated or not found.closed)


async def _propose(run: TurnRun, found: Found, reply: str, truncated: bool) -> None:
    base = _diff_base(run, found)
    kind = "diff" if base else found.kind
    proposal_id = await proposals.create(
        organization_id=run.principal.current_organization(),
        conversation_id=run.conversation_id,
        message_id=run.message_id,
        owner=run.principal.user_id,
        kind=kind,
        target=str(run.request.context.get("target") or ""),
        base=base,
    )
    content, finish = found.text, "length" if truncated else "stop"
    for attempt in range(1, run.config.max_repairs + 2):
        run.emit({"type": "proposal", "id": str(proposal_id), "kind": kind, "content": content, "attempt": attempt})
        checked = await _check(run, found.kind, content, finish == "length")
        for item in checked.evidence:
            run.services.metrics.stage.labels(item.stage).observe(item.duration_ms / 1000)
            run.emit({"type": "evidence", "proposal_id": str(proposal_id), "attempt": attempt, **_event(item)})
        if base and run.request.base:
            base["diff"] = proposals.unified_diff(
                run.request.base["content"], checked.content, base.get("name", "playbook")
            )
        target = getattr(checked, "target", "")
        record = {
            "attempt": attempt,
            "proposed": content,
            "content": checked.content,
            "status": "passed" if checked.passed else "failed",
            "evidence": [item.as_dict() for item in checked.evidence],
            "finish_reason": finish,
        }
        await proposals.record_attempt(proposal_id, record, base, target)
        if checked.passed:
            if run.request.after_checks is not None:
                await run.request.after_checks(run, proposal_id, checked)
            return
        if attempt > run.config.max_repairs or run.stopped:
            return
        repaired = await _repair(run, found.kind, checked, reply, proposal_id, attempt + 1, finish == "length")
        if repaired is None:
            return
        content, finish = repaired


def _event(item: Any) -> dict[str, Any]:
    return {"stage": item.stage, "status": item.status, "detail": item.detail, "duration_ms": item.duration_ms}


async def _repair(
    run: TurnRun, kind: str, checked: Checked, reply: str, proposal_id: uuid.UUID, attempt: int, truncated: bool
) -> tuple[str, str] | None:
    """Ask the model to fix what failed; its new proposal and finish reason, or None when it gave none.

    The repair is asked without tools: the tool exchanges of the reply are left out of its prompt.
    """
    said = [m for m in run.messages if m["role"] != "tool" and not m.get("tool_calls")]
    messages = [
        *said,
        {"role": "assistant", "content": reply},
        {"role": "user", "content": prompts.repair_request(kind, checked.content, checked.problems(), truncated)},
    ]

    async def on_text(piece: str) -> None:
        run.emit({"type": "delta", "text": piece, "proposal_id": str(proposal_id), "attempt": attempt})

    completion = await run.complete(await _fit(run, messages), on_text)
    candidates = [f for f in find_proposals(completion.text) if f.kind == kind] or find_proposals(completion.text)
    if not candidates:
        return None
    cut = completion.finish_reason == "length" or not candidates[0].closed
    return candidates[0].text, "length" if cut else "stop"


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
