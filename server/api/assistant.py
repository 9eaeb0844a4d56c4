"""``/api/v1/assistant``: settings, conversations streamed as server-sent events, proposals with evidence.

A message sent with ``Accept: text/event-stream`` is answered as it is written: each ``data:`` line
is a JSON object whose ``type`` is ``delta``, ``tool``, ``proposal``, ``evidence``, ``done`` or
``error``. Without that header the answer is 201 with the stored reply and its proposals. Either
way the user's message is stored first and the reply is stored whole, even if the client leaves.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Response, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage
from litestar.status_codes import HTTP_201_CREATED

from server.api.conventions import READ, WRITE, AnyRequest, Body, Page, Paging, changes_of, problems
from server.api.security import admin, operator, principal_of, viewer
from server.assistant import config as assistant_config
from server.assistant import conversations, jobs, proposals
from server.assistant.streaming import Turn
from server.assistant.turn import Services
from server.assistant.turns import stop_turns
from server.errors import WindFlowError

NoNul = msgspec.Meta(pattern=r"^[^\x00]*$")
Title = Annotated[str, msgspec.Meta(max_length=200, pattern=r"^[^\x00]*$")]
Content = Annotated[
    str, msgspec.Meta(min_length=1, max_length=100_000, pattern=r"^[^\x00]*$", description="what you ask")
]
Target = Literal["docker", "kubernetes", "vm", "bare-metal"]
Limit = Annotated[str, msgspec.Meta(max_length=10_000, pattern=r"^[^\x00]*$")]
EVENT_STREAM = "text/event-stream"
CHAT = (400, 401, 403, 404, 409, 413, 422, 502, 503)
STREAM_SPEC = {
    200: ResponseSpec(
        data_container=str,
        media_type=EVENT_STREAM,
        description="With `Accept: text/event-stream`: the reply as server-sent events (JSON `data:` lines).",
        generate_examples=False,
    )
}


class Context(Body, omit_defaults=True):
    """What the conversation or message is about; ids of your organization's objects."""

    inventory_id: uuid.UUID | None = None
    playbook_id: uuid.UUID | None = None
    run_id: uuid.UUID | None = None
    stack_id: uuid.UUID | None = None
    target: Target | None = None


def _context(context: Context | None) -> dict[str, Any]:
    return {} if context is None else msgspec.to_builtins(context)


class ConversationCreate(Body):
    title: Title = ""
    context: Context | None = None


class ConversationUpdate(Body):
    title: Title | msgspec.UnsetType = msgspec.UNSET
    context: Context | msgspec.UnsetType = msgspec.UNSET


class ConversationRead(msgspec.Struct):
    id: uuid.UUID
    organization_id: uuid.UUID
    owner_id: uuid.UUID
    title: str
    context: dict[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime


class MessageCreate(Body):
    content: Content
    context: Context | None = None


class Later(Body):
    """Where the job's turn goes: a conversation of yours, or a new one."""

    conversation_id: uuid.UUID | None = None


class OptimiseBody(Later, kw_only=True):
    inventory_id: uuid.UUID | None = None
    limit: Limit = ""


class ToolCallRead(msgspec.Struct):
    name: str
    arguments: dict[str, Any]
    ok: bool
    result: str


class ProposalSummary(msgspec.Struct):
    id: uuid.UUID
    kind: str
    status: str


class MessageError(msgspec.Struct):
    code: str
    detail: str


class MessageRead(msgspec.Struct):
    id: uuid.UUID
    conversation_id: uuid.UUID
    role: Literal["user", "assistant"]
    content: str
    status: Literal["complete", "streaming", "stopped", "error"]
    finish_reason: str
    error: MessageError | None
    context: dict[str, Any]
    tool_calls: list[ToolCallRead]
    actions: list[dict[str, Any]]
    model: str
    tokens_in: int
    tokens_out: int
    first_token_ms: int | None
    created_at: dt.datetime
    finished_at: dt.datetime | None
    proposals: list[ProposalSummary]


class EvidenceRead(msgspec.Struct):
    stage: str
    status: Literal["passed", "warning", "failed", "skipped", "running"]
    detail: str
    duration_ms: int
    data: dict[str, Any] = msgspec.field(default_factory=dict)


class AttemptRead(msgspec.Struct):
    attempt: int
    proposed: str
    content: str
    status: Literal["passed", "failed"]
    evidence: list[EvidenceRead]
    finish_reason: str


class ProposalRead(msgspec.Struct):
    id: uuid.UUID
    organization_id: uuid.UUID
    conversation_id: uuid.UUID
    message_id: uuid.UUID
    owner_id: uuid.UUID | None
    kind: Literal["playbook", "stack", "diff"]
    target: str
    base: dict[str, Any]
    content: str
    status: Literal["passed", "failed"]
    evidence: list[EvidenceRead]
    attempts: list[AttemptRead]
    saved: dict[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime


class TurnRead(msgspec.Struct):
    """A finished turn: the stored reply and every proposal it made."""

    conversation_id: uuid.UUID
    user_message_id: uuid.UUID
    message: MessageRead
    proposals: list[ProposalRead]


class CheckBody(Body):
    inventory_id: uuid.UUID
    limit: Limit = ""


class CheckRead(msgspec.Struct):
    proposal: ProposalRead
    run_id: uuid.UUID


class SaveBody(Body):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^\S(.*\S)?$")] | None = None


class StoppedRead(msgspec.Struct):
    stopped: int


class SettingsBody(Body):
    """Overrides of the server's defaults; leave a field out (or null) to use the server's."""

    model: Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^\S+$")] | None = None
    api_base: Annotated[str, msgspec.Meta(max_length=2048, pattern=r"^https?://[^\s/?#@]+(/\S*)?$")] | None = None
    api_version: Annotated[str, msgspec.Meta(max_length=50, pattern=r"^[\w.-]+$")] | None = None
    llm_api_key: uuid.UUID | None = None
    max_tokens: Annotated[int, msgspec.Meta(ge=16, le=131_072)] | None = None
    temperature: Annotated[float, msgspec.Meta(ge=0, le=2)] | None = None
    daily_token_budget: Annotated[int, msgspec.Meta(ge=0, le=2_000_000_000)] | None = None
    max_repairs: Annotated[int, msgspec.Meta(ge=0, le=5)] | None = None
    context_window: Annotated[int, msgspec.Meta(ge=512, le=10_000_000)] | None = None
    tool_calling: Literal["auto", "on", "off"] | None = None
    timeout: Annotated[int, msgspec.Meta(ge=5, le=600)] | None = None


class EffectiveRead(msgspec.Struct):
    model: str
    api_base: str
    max_tokens: int
    temperature: float
    daily_token_budget: int
    max_repairs: int
    context_window: int
    tool_calling: str
    timeout: int
    source: str
    has_api_key: bool


class SettingsRead(msgspec.Struct):
    model: str | None
    api_base: str | None
    api_version: str | None
    llm_api_key: uuid.UUID | None
    max_tokens: int | None
    temperature: float | None
    daily_token_budget: int | None
    max_repairs: int | None
    context_window: int | None
    tool_calling: str | None
    timeout: int | None
    effective: EffectiveRead | None


class AssistantStatus(msgspec.Struct):
    configured: bool
    model: str | None
    source: str | None
    how_to_configure: str | None


def _encode(event: dict[str, Any]) -> ServerSentEventMessage:
    return ServerSentEventMessage(data=json.dumps(event, default=str))


async def _events(turn: Turn) -> AsyncIterator[ServerSentEventMessage]:
    async for event in turn.follow():
        yield _encode(event)


def wants_stream(request: AnyRequest) -> bool:
    return EVENT_STREAM in request.headers.get("accept", "")


async def answer(request: AnyRequest, turn: Turn, ids: dict[str, Any]) -> Response[Any]:
    """The turn as an event stream, or (waited for) its stored reply; a failed turn is its problem."""
    if wants_stream(request):
        return ServerSentEvent(
            _events(turn), status_code=200, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )
    await turn.finished.wait()
    if turn.failure is not None:
        raise turn.failure
    message = await conversations.get_message(ids["message_id"])
    found = await proposals.list_for_message(ids["message_id"])
    body = TurnRead(
        conversation_id=turn.conversation_id,
        user_message_id=ids["user_message_id"],
        message=msgspec.convert(message, MessageRead),
        proposals=[msgspec.convert(p, ProposalRead) for p in found],
    )
    return Response(body, status_code=HTTP_201_CREATED)


def _services(value: Any) -> Services:
    if not isinstance(value, Services):  # pragma: no cover - wired in app.py
        raise WindFlowError("the assistant is not wired")
    return value


class AssistantController(Controller):
    path = "/assistant"
    tags = ["assistant"]

    @get(
        "/",
        operation_id="getAssistantStatus",
        summary="Whether the assistant has a model, and which",
        guards=[viewer],
        responses=problems(401, 403, 404),
    )
    async def status(self, request: AnyRequest, assistant: NamedDependency[Any]) -> AssistantStatus:
        services = _services(assistant)
        principal = principal_of(request)
        found = await assistant_config.effective_config(services.settings, principal.current_organization())
        if found is None:
            return AssistantStatus(False, None, None, assistant_config.HOW_TO_CONFIGURE)
        return AssistantStatus(True, found.model, found.source, None)

    @get(
        "/settings",
        operation_id="getAssistantSettings",
        summary="The organization's assistant settings and the effective values (admins)",
        guards=[admin],
        responses=problems(*READ, 403),
    )
    async def get_settings(self, request: AnyRequest, assistant: NamedDependency[Any]) -> SettingsRead:
        row = await assistant_config.read_settings(_services(assistant).settings, principal_of(request))
        return msgspec.convert(row, SettingsRead)

    @put(
        "/settings",
        operation_id="putAssistantSettings",
        summary="Replace the organization's assistant settings (admins); the key is an llm_api_key credential",
        guards=[admin],
        responses=problems(*WRITE),
    )
    async def put_settings(
        self, data: JSONBody[SettingsBody], request: AnyRequest, assistant: NamedDependency[Any]
    ) -> SettingsRead:
        values = msgspec.structs.asdict(data)
        credential = values.pop("llm_api_key")
        row = await assistant_config.write_settings(
            _services(assistant).settings, principal_of(request), values, credential
        )
        return msgspec.convert(row, SettingsRead)

    @post(
        "/conversations",
        operation_id="createConversation",
        summary="Start a conversation (any member); its context is the default of its messages",
        guards=[viewer],
        responses=problems(*WRITE, 503),
    )
    async def create_conversation(
        self, data: JSONBody[ConversationCreate], request: AnyRequest, assistant: NamedDependency[Any]
    ) -> ConversationRead:
        principal = principal_of(request)
        await assistant_config.require_config(_services(assistant).settings, principal.current_organization())
        row = await conversations.create_conversation(principal, data.title, _context(data.context))
        return msgspec.convert(row, ConversationRead)

    @get(
        "/conversations",
        operation_id="listConversations",
        summary="Your conversations, most recent first (admins may ask for everyone's)",
        guards=[viewer],
        responses=problems(401, 403, 404, 422),
    )
    async def list_conversations(
        self,
        request: AnyRequest,
        paging: NamedDependency[Paging],
        everyone: Annotated[bool, QueryParameter(name="all", description="admins: every member's")] = False,
    ) -> Page[ConversationRead]:
        rows, total = await conversations.list_conversations(principal_of(request), paging.page, paging.size, everyone)
        return paging.of([msgspec.convert(r, ConversationRead) for r in rows], total)

    @get(
        "/conversations/{conversation_id:uuid}",
        operation_id="getConversation",
        summary="Read a conversation (yours; admins may read any for audit)",
        guards=[viewer],
        responses=problems(*READ, 403),
    )
    async def get_conversation(self, conversation_id: FromPath[uuid.UUID], request: AnyRequest) -> ConversationRead:
        row = await conversations.get_conversation(principal_of(request), conversation_id)
        return msgspec.convert(row, ConversationRead)

    @patch(
        "/conversations/{conversation_id:uuid}",
        operation_id="updateConversation",
        summary="Rename a conversation or change its context",
        guards=[viewer],
        responses=problems(*WRITE),
    )
    async def update_conversation(
        self, conversation_id: FromPath[uuid.UUID], data: JSONBody[ConversationUpdate], request: AnyRequest
    ) -> ConversationRead:
        changes = changes_of(data)
        if isinstance(data.context, Context):
            changes["context"] = _context(data.context)
        row = await conversations.update_conversation(principal_of(request), conversation_id, changes)
        return msgspec.convert(row, ConversationRead)

    @delete(
        "/conversations/{conversation_id:uuid}",
        operation_id="deleteConversation",
        summary="Delete a conversation with its messages and proposals (saved playbooks stay)",
        guards=[viewer],
        responses=problems(*READ, 403),
    )
    async def delete_conversation(self, conversation_id: FromPath[uuid.UUID], request: AnyRequest) -> None:
        await conversations.delete_conversation(principal_of(request), conversation_id)

    @get(
        "/conversations/{conversation_id:uuid}/messages",
        operation_id="listMessages",
        summary="A conversation's messages, oldest first",
        guards=[viewer],
        responses=problems(*READ, 403),
    )
    async def list_messages(
        self,
        conversation_id: FromPath[uuid.UUID],
        request: AnyRequest,
        paging: NamedDependency[Paging],
        assistant: NamedDependency[Any],
    ) -> Page[MessageRead]:
        rows, total = await conversations.list_messages(
            principal_of(request), conversation_id, paging.page, paging.size
        )
        turns = _services(assistant).hub.turns
        for row in rows:
            if row["status"] == "streaming" and (turn := turns.get(row["id"])) is not None:
                row["content"] = turn.text()  # a reply being written here: what it says so far
        return paging.of([msgspec.convert(r, MessageRead) for r in rows], total)

    @post(
        "/conversations/{conversation_id:uuid}/messages",
        operation_id="sendMessage",
        summary="Ask; streamed as server-sent events with Accept: text/event-stream, else 201 when done",
        guards=[viewer],
        responses={**problems(*CHAT), **STREAM_SPEC},
        status_code=HTTP_201_CREATED,
    )
    async def send_message(
        self,
        conversation_id: FromPath[uuid.UUID],
        data: JSONBody[MessageCreate],
        request: AnyRequest,
        assistant: NamedDependency[Any],
    ) -> Response[Any]:
        principal = principal_of(request)
        turn, ids = await jobs.chat(
            _services(assistant), principal, conversation_id, data.content, _context(data.context)
        )
        return await answer(request, turn, ids)

    @post(
        "/conversations/{conversation_id:uuid}/stop",
        operation_id="stopGeneration",
        summary="Stop the reply being written in this conversation; what was written is kept",
        guards=[viewer],
        responses=problems(*READ, 403),
        status_code=200,
    )
    async def stop(
        self, conversation_id: FromPath[uuid.UUID], request: AnyRequest, assistant: NamedDependency[Any]
    ) -> StoppedRead:
        return StoppedRead(await stop_turns(_services(assistant), principal_of(request), conversation_id))

    @get(
        "/proposals/{proposal_id:uuid}",
        operation_id="getProposal",
        summary="A proposal with its evidence and every attempt",
        guards=[viewer],
        responses=problems(*READ, 403),
    )
    async def get_proposal(self, proposal_id: FromPath[uuid.UUID], request: AnyRequest) -> ProposalRead:
        return msgspec.convert(await proposals.get_proposal(principal_of(request), proposal_id), ProposalRead)

    @post(
        "/proposals/{proposal_id:uuid}/check",
        operation_id="checkProposal",
        summary="Run the proposal in check and diff mode on an inventory; the result joins its evidence (operators)",
        guards=[operator],
        responses=problems(*WRITE),
    )
    async def check_proposal(
        self,
        proposal_id: FromPath[uuid.UUID],
        data: JSONBody[CheckBody],
        request: AnyRequest,
        assistant: NamedDependency[Any],
    ) -> CheckRead:
        found = await proposals.check_proposal(
            principal_of(request), _services(assistant).queue, proposal_id, data.inventory_id, data.limit
        )
        return CheckRead(proposal=msgspec.convert(found["proposal"], ProposalRead), run_id=found["run"]["id"])

    @post(
        "/proposals/{proposal_id:uuid}/save",
        operation_id="saveProposal",
        summary="Save a passed proposal as a playbook version or a stack (operators); a failed one is a 409",
        guards=[operator],
        responses=problems(*WRITE),
    )
    async def save_proposal(
        self, proposal_id: FromPath[uuid.UUID], data: JSONBody[SaveBody], request: AnyRequest
    ) -> ProposalRead:
        saved = await proposals.save_proposal(principal_of(request), proposal_id, data.name)
        return msgspec.convert(saved, ProposalRead)


class AssistantJobController(Controller):
    """The assistant's jobs on runs and playbooks, answered like a message."""

    path = "/"
    tags = ["assistant"]

    @post(
        "/runs/{run_id:uuid}/explain",
        operation_id="explainRun",
        summary="Why a run failed, with a fix as a proposal where possible (streamed like a message)",
        guards=[viewer],
        responses={**problems(*CHAT), **STREAM_SPEC},
        status_code=HTTP_201_CREATED,
    )
    async def explain_run(
        self, run_id: FromPath[uuid.UUID], data: JSONBody[Later], request: AnyRequest, assistant: NamedDependency[Any]
    ) -> Response[Any]:
        turn, ids = await jobs.explain_run(_services(assistant), principal_of(request), run_id, data.conversation_id)
        return await answer(request, turn, ids)

    @post(
        "/playbooks/{playbook_id:uuid}/explain",
        operation_id="explainPlaybook",
        summary="A playbook in plain words (streamed like a message)",
        guards=[viewer],
        responses={**problems(*CHAT), **STREAM_SPEC},
        status_code=HTTP_201_CREATED,
    )
    async def explain_playbook(
        self,
        playbook_id: FromPath[uuid.UUID],
        data: JSONBody[Later],
        request: AnyRequest,
        assistant: NamedDependency[Any],
    ) -> Response[Any]:
        turn, ids = await jobs.explain_playbook(
            _services(assistant), principal_of(request), playbook_id, data.conversation_id
        )
        return await answer(request, turn, ids)

    @post(
        "/playbooks/{playbook_id:uuid}/optimise",
        operation_id="optimisePlaybook",
        summary="A faster playbook as a diff proposal; with an inventory both versions run and are timed",
        guards=[viewer],
        responses={**problems(*CHAT), **STREAM_SPEC},
        status_code=HTTP_201_CREATED,
    )
    async def optimise_playbook(
        self,
        playbook_id: FromPath[uuid.UUID],
        data: JSONBody[OptimiseBody],
        request: AnyRequest,
        assistant: NamedDependency[Any],
    ) -> Response[Any]:
        turn, ids = await jobs.optimise_playbook(
            _services(assistant),
            principal_of(request),
            playbook_id,
            data.inventory_id,
            data.limit,
            data.conversation_id,
        )
        return await answer(request, turn, ids)
