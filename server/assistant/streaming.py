"""Live turns: each runs as its own task, and any number of listeners follow its events.

A turn does not belong to the request that started it: a client that disconnects (or never
listened) loses nothing, because the turn goes on and stores its reply. A listener that arrives
late gets every event from the start, then the live ones, each once, until ``done`` or ``error``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from server.errors import WindFlowError

log = logging.getLogger(__name__)
FINAL = frozenset({"done", "error"})
SHUTDOWN_TIMEOUT = 10  # seconds running turns get to store what they have when the server stops


@dataclass
class Turn:
    message_id: uuid.UUID
    conversation_id: uuid.UUID
    events: list[dict[str, Any]] = field(default_factory=list)
    listeners: set[asyncio.Queue[dict[str, Any]]] = field(default_factory=set)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    failure: WindFlowError | None = None

    def publish(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        for queue in self.listeners:
            queue.put_nowait(event)
        if event.get("type") in FINAL:
            self.finished.set()

    def text(self) -> str:
        """The reply written so far (repairs aside), for a reader who is not following the stream."""
        return "".join(e["text"] for e in self.events if e.get("type") == "delta" and "proposal_id" not in e)

    async def follow(self) -> AsyncIterator[dict[str, Any]]:
        """Every event of the turn, from the first, ending with ``done`` or ``error``."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for event in self.events:
            queue.put_nowait(event)
        self.listeners.add(queue)
        try:
            while True:
                event = await queue.get()
                yield event
                if event.get("type") in FINAL:
                    return
        finally:
            self.listeners.discard(queue)


class Hub:
    """The turns running in this process."""

    def __init__(self) -> None:
        self.turns: dict[uuid.UUID, Turn] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.warmed = False  # the checks' tools (lint server, Ansible's loader) were started

    def start(self, turn: Turn, work: Coroutine[Any, Any, None]) -> None:
        self.turns[turn.message_id] = turn
        self._keep(work, f"assistant turn {turn.message_id}", lambda: self.turns.pop(turn.message_id, None))

    def spare(self, work: Coroutine[Any, Any, None]) -> None:
        """Work on the side that nobody waits for (kept referenced until it ends)."""
        self._keep(work, "assistant side work")

    def _keep(self, work: Coroutine[Any, Any, None], name: str, then: Callable[[], object] | None = None) -> None:
        task = asyncio.create_task(work, name=name)
        self.tasks.add(task)

        def forget(done: asyncio.Task[None]) -> None:
            self.tasks.discard(done)
            if then is not None:
                then()
            if not done.cancelled() and done.exception() is not None:
                log.error("%s failed", name, exc_info=done.exception())

        task.add_done_callback(forget)

    def running_in(self, conversation_id: uuid.UUID) -> list[Turn]:
        return [turn for turn in self.turns.values() if turn.conversation_id == conversation_id]

    async def close(self) -> None:
        """Stop every turn; each stores what it has (as ``stopped``) before the database closes."""
        for turn in list(self.turns.values()):
            turn.stop.set()
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=SHUTDOWN_TIMEOUT)
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=SHUTDOWN_TIMEOUT)
