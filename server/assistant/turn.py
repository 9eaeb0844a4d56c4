"""What a running turn is made of: the app's services, the request, and the turn's own state."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.assistant import provider
from server.assistant.config import AssistantConfig
from server.assistant.evidence import Checked
from server.assistant.metrics import AssistantMetrics
from server.assistant.redaction import Redactor
from server.assistant.streaming import Hub, Turn
from server.auth.principal import Principal
from server.db.tables import AssistantMessage
from server.errors import ValidationFailed
from server.runs.queue import RunQueue
from server.settings import Settings

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

    async def fit(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Drop the oldest history until the prompt fits the model's context window with room to answer."""
        litellm = await provider.load()
        window = provider.context_window(self.config, litellm)
        budget = max(window - self.config.max_tokens - CONTEXT_MARGIN, window // 2)
        system, rest = messages[0], messages[1:]
        while len(rest) > 1 and provider.count_tokens(self.config, litellm, [system, *rest]) > budget:
            rest.pop(0)
        if provider.count_tokens(self.config, litellm, [system, *rest]) > budget:
            raise ValidationFailed.for_field(
                "body.content",
                f"the message and its context are longer than the model's context window ({window} tokens)",
            )
        return [system, *rest]


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
