"""Follow a run: its stored events after a counter, then live ones, each exactly once, in order.

Events reach the channel only after they are stored (see ``events.py``), so the database is the
truth and the channel a shortcut: a follower subscribes first, then reads what is stored, then
forwards live batches, dropping counters it already sent and fetching from the database any it
finds missing (a dropped message, a batch published between subscribing and reading). The final
status is published after every event is stored, so on seeing it the follower sends whatever is
still missing up to the run's ``event_count``, then the status, and stops.

Messages (JSON text): ``status`` first, ``events`` and ``progress`` as they come, ``status`` on
each change and last; ``lagged`` when the client reads too slowly, before the stream ends.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from typing import Any

import msgspec

from server.db.tables import Run, RunEvent
from server.runs.events import public
from server.runs.status import FINISHED

PAGE_SIZE = 500  # events per database page (and per ``events`` message sent from it)
SEND_TIMEOUT = 10.0  # seconds a send may block before the client counts as lagging
LAGGED_SEND_TIMEOUT = 1.0
IDLE_CHECK = 5.0  # seconds without a live message before the database is asked
SUBSCRIBER_BACKLOG = 64  # live messages held for one follower; older ones are dropped, then refetched

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001  # the server stops; the client resumes with ``?after=``
CLOSE_TRY_AGAIN_LATER = 1013  # the client lagged; it resumes with ``?after=``

# CSI (colours, cursor), OSC (titles, links), character set selection and two-byte escapes.
ANSI_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[ -/]+[0-~]|[@-Z\\-_])")


def strip_ansi(text: str) -> str:
    return ANSI_ESCAPE.sub("", text)


async def events_after(run_id: uuid.UUID, after: int, limit: int, upto: int | None = None) -> list[dict[str, Any]]:
    """Stored events with ``after < counter <= upto``, in counter order, at most ``limit``."""
    query = RunEvent.select().where(RunEvent.run == run_id, RunEvent.counter > after)
    if upto is not None:
        query = query.where(RunEvent.counter <= upto)
    rows = await query.order_by(RunEvent.counter).limit(limit).output(load_json=True)
    return [public(row) for row in rows]


async def stdout_of(run_id: uuid.UUID, ansi: bool = True, page_size: int = 1000) -> AsyncIterator[str]:
    """The run's output, page by page: each event's stdout and a newline, in counter order."""
    last = 0
    while True:
        query = RunEvent.select(RunEvent.counter, RunEvent.stdout).where(
            RunEvent.run == run_id, RunEvent.counter > last
        )
        rows = await query.order_by(RunEvent.counter).limit(page_size)
        text = "".join(row["stdout"] + "\n" for row in rows if row["stdout"])
        if text:
            yield text if ansi else strip_ansi(text)
        if len(rows) < page_size:
            return
        last = rows[-1]["counter"]


async def run_state(run_id: uuid.UUID) -> dict[str, Any] | None:
    """The run's status message as the database has it now (None when the run is gone)."""
    row = await Run.select(Run.status, Run.reason, Run.event_count).where(Run.id == run_id).first()
    if row is None:
        return None
    return {"type": "status", "run_id": str(run_id), **row}


def is_final(status: object) -> bool:
    return isinstance(status, str) and status in FINISHED


class _Closed:
    """The channel ended (the server is stopping)."""


CLOSED = _Closed()


class Lagged(Exception):
    """A send blocked longer than the follower's ``send_timeout``."""


class Follower:
    """Sends one client a run's events after ``after`` and its statuses, then stops at the end.

    ``send`` delivers one JSON text message; ``live`` yields the raw messages of the run's channel
    and must have been subscribed before :meth:`follow` is called.
    """

    def __init__(
        self,
        run_id: uuid.UUID,
        after: int,
        send: Callable[[str], Awaitable[None]],
        *,
        send_timeout: float = SEND_TIMEOUT,
        idle_check: float = IDLE_CHECK,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.run_id = run_id
        self.last = after  # the highest counter sent
        self.send = send
        self.send_timeout = send_timeout
        self.idle_check = idle_check
        self.page_size = page_size
        self.status = ""  # the last status sent
        self._pending: asyncio.Task[bytes | _Closed] | None = None

    async def follow(self, live: AsyncIterator[bytes]) -> int:
        """Stream until the run ends (or the client lags, or the channel closes); the close code."""
        try:
            return await self._follow(live)
        except Lagged:
            lagged = {"type": "lagged", "run_id": str(self.run_id), "resume_after": self.last}
            with suppress(TimeoutError):
                await asyncio.wait_for(self.send(_encode(lagged)), LAGGED_SEND_TIMEOUT)
            return CLOSE_TRY_AGAIN_LATER
        finally:
            if self._pending is not None:
                self._pending.cancel()
                with suppress(asyncio.CancelledError):
                    await self._pending

    async def _follow(self, live: AsyncIterator[bytes]) -> int:
        state = await run_state(self.run_id)
        if state is None:
            return CLOSE_NORMAL
        await self._send(state)
        if is_final(state["status"]):
            await self._finish(state)
            return CLOSE_NORMAL
        await self._send_stored()
        while True:
            raw = await self._next(live)
            if raw is None:  # nothing for a while: a lost message must not stall the client
                state = await run_state(self.run_id)
                if state is None or is_final(state["status"]):
                    await self._finish(state)
                    return CLOSE_NORMAL
                await self._send_stored()
                continue
            if isinstance(raw, _Closed):
                await self._send_stored()
                return CLOSE_GOING_AWAY
            message = msgspec.json.decode(raw)
            kind = message.get("type") if isinstance(message, dict) else None
            if kind == "events":
                await self._send_live(message.get("events") or [])
            elif kind == "status" and is_final(message.get("status")):
                state = await run_state(self.run_id)
                count = max(int(message.get("event_count") or 0), state["event_count"] if state else 0)
                await self._finish({**message, "event_count": count})
                return CLOSE_NORMAL
            elif kind == "progress" or kind == "status" and message.get("status") != self.status:
                await self._send(message)

    async def _next(self, live: AsyncIterator[bytes]) -> bytes | _Closed | None:
        """The next live message; None after ``idle_check`` seconds of silence (the wait goes on)."""
        if self._pending is None:
            self._pending = asyncio.create_task(_take(live))
        done, _ = await asyncio.wait({self._pending}, timeout=self.idle_check)
        if not done:
            return None
        task, self._pending = self._pending, None
        return task.result()

    async def _send_live(self, events: list[dict[str, Any]]) -> None:
        fresh = sorted((e for e in events if int(e["counter"]) > self.last), key=lambda e: int(e["counter"]))
        if not fresh:
            return
        if int(fresh[0]["counter"]) > self.last + 1:  # a gap: the missing ones are stored already
            await self._send_stored(upto=int(fresh[0]["counter"]) - 1)
        fresh = [e for e in fresh if int(e["counter"]) > self.last]
        if fresh:
            await self._send_events(fresh)

    async def _send_stored(self, upto: int | None = None) -> None:
        while True:
            events = await events_after(self.run_id, self.last, self.page_size, upto)
            if events:
                await self._send_events(events)
            if len(events) < self.page_size:
                return

    async def _finish(self, state: dict[str, Any] | None) -> None:
        """Everything stored up to the final ``event_count``, then the final status."""
        if state is None:
            return
        await self._send_stored(upto=max(int(state.get("event_count") or 0), self.last))
        await self._send({**state, "type": "status", "run_id": str(self.run_id)})

    async def _send_events(self, events: list[dict[str, Any]]) -> None:
        await self._send({"type": "events", "run_id": str(self.run_id), "events": events})
        self.last = int(events[-1]["counter"])

    async def _send(self, message: dict[str, Any]) -> None:
        try:
            await asyncio.wait_for(self.send(_encode(message)), self.send_timeout)
        except TimeoutError:
            raise Lagged from None
        if message["type"] == "status":
            self.status = str(message["status"])


async def _take(live: AsyncIterator[bytes]) -> bytes | _Closed:
    try:
        return await anext(live)
    except StopAsyncIteration:
        return CLOSED


def _encode(message: dict[str, Any]) -> str:
    return msgspec.json.encode(message).decode()
