"""A run's events: pages after a counter, the whole output as text, and the live WebSocket stream.

The WebSocket (``/runs/{id}/stream?after=N``) speaks the protocol described in
``server/runs/stream.py``. Every refusal happens after the handshake is accepted, so that a
browser can read the close code (a refused handshake reaches it as a bare 1006): 4401 no or bad
token (``BearerAuthMiddleware``), 4404 no such run in your organization (or no role in it), 4422
a bad ``after``. A stream ends with 1000 after the final status, 1013 after ``lagged`` and 1001
when the server stops; the client resumes with ``?after=`` its last counter.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import uuid
from contextlib import suppress
from typing import Annotated, Any

import msgspec
from litestar import Controller, WebSocket, get, websocket
from litestar.channels import ChannelsPlugin
from litestar.di import NamedDependency
from litestar.exceptions import WebSocketDisconnect
from litestar.params import FromPath, Parameter
from litestar.response import Stream

from server.api.conventions import READ, AnyRequest, problems
from server.api.runs import StatusName
from server.api.security import close_reason, principal_of, viewer
from server.errors import ValidationFailed, WindFlowError
from server.runs import service, stream
from server.runs.events import channel_of
from server.runs.status import RunStatus

log = logging.getLogger(__name__)
MAX_COUNTER = 2**31 - 1  # run_event.counter is a 32-bit integer
TEXT_PLAIN = "text/plain"  # Litestar adds "; charset=utf-8"


class RunEventRead(msgspec.Struct):
    run_id: uuid.UUID
    counter: int
    uuid: str
    event: str
    host: str
    play: str
    task: str
    role: str
    changed: bool
    failed: bool
    stdout: str
    start_line: int
    end_line: int
    created: dt.datetime | None
    data: dict[str, Any]


class RunEventPage(msgspec.Struct):
    items: list[RunEventRead]
    after: int
    next_after: int
    last_counter: int
    run_status: StatusName
    finished: bool


class RunEventController(Controller):
    path = "/runs"
    tags = ["runs"]

    @get(
        "/{run_id:uuid}/events",
        operation_id="listRunEvents",
        summary="Stored events of a run after a counter, in counter order",
        description=(
            "Resume with `after=next_after` until `finished` is true: the run has ended and every "
            "event up to `last_counter` (its highest stored counter) has been returned."
        ),
        guards=[viewer],
        responses=problems(*READ, 403),
    )
    async def list_events(
        self,
        run_id: FromPath[uuid.UUID],
        request: AnyRequest,
        after: Annotated[int, Parameter(ge=0, le=MAX_COUNTER, description="only events with a higher counter")] = 0,
        limit: Annotated[int, Parameter(ge=1, le=1000, description="at most this many events (1-1000)")] = 200,
    ) -> RunEventPage:
        run = await service.get_run(principal_of(request), run_id)
        rows = await stream.events_after(run_id, after, limit)
        next_after = rows[-1]["counter"] if rows else after
        last_counter = max(run["event_count"], next_after)
        finished = RunStatus(run["status"]).is_finished() and next_after >= last_counter
        return RunEventPage(
            items=msgspec.convert(rows, list[RunEventRead]),
            after=after,
            next_after=next_after,
            last_counter=last_counter,
            run_status=run["status"],
            finished=finished,
        )

    @get(
        "/{run_id:uuid}/stdout",
        operation_id="getRunStdout",
        summary="The run's whole output as text (ANSI colours kept unless ansi=false)",
        media_type=TEXT_PLAIN,
        guards=[viewer],
        responses=problems(*READ, 403),
    )
    async def get_stdout(
        self,
        run_id: FromPath[uuid.UUID],
        request: AnyRequest,
        ansi: Annotated[bool, Parameter(description="keep ANSI escape sequences (colours)")] = True,
    ) -> Stream:
        await service.get_run(principal_of(request), run_id)
        return Stream(stream.stdout_of(run_id, ansi=ansi), media_type=TEXT_PLAIN)

    @websocket("/{run_id:uuid}/stream")
    async def stream_events(
        self, socket: WebSocket[Any, Any, Any], run_id: FromPath[uuid.UUID], channels: NamedDependency[Any]
    ) -> None:
        """Authorization is checked here, after accepting, so that the client sees the close code."""
        await socket.accept()
        try:
            after = _after(socket.query_params.get("after"))
            viewer(socket, socket.route_handler)
            await service.get_run(principal_of(socket), run_id)
        except WindFlowError as exc:
            await socket.close(code=4000 + exc.status, reason=close_reason(exc.detail))
            return
        follower = stream.Follower(run_id, after, functools.partial(_send_text, socket))
        try:
            await _follow(socket, channels, follower)
        except Exception:
            log.exception("run stream failed", extra={"run_id": str(run_id)})
            with suppress(Exception):
                await socket.close(code=1011)


async def _follow(socket: WebSocket[Any, Any, Any], channels: ChannelsPlugin, follower: stream.Follower) -> None:
    channel = channel_of(follower.run_id)
    subscriber = await channels.subscribe(channel)  # before the database is read: nothing slips by
    try:
        pump = asyncio.create_task(follower.follow(subscriber.iter_events()))
        watch = asyncio.create_task(_disconnected(socket))
        try:
            await asyncio.wait({pump, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (pump, watch):
                task.cancel()
            await asyncio.gather(pump, watch, return_exceptions=True)
    finally:
        await channels.unsubscribe(subscriber, channel)
    if pump.cancelled():  # the client went away first
        return
    with suppress(WebSocketDisconnect, OSError):  # a client that hung up first: nothing to close
        await socket.close(code=pump.result())


async def _send_text(socket: WebSocket[Any, Any, Any], text: str) -> None:
    try:
        await socket.send_text(text)
    except OSError as exc:  # the server's "client disconnected"
        raise WebSocketDisconnect(detail="the client went away") from exc


def _after(value: str | None) -> int:
    if value is None or value == "":
        return 0
    if not (value.isascii() and value.isdigit()) or int(value) > MAX_COUNTER:
        raise ValidationFailed.for_field("query.after", f"a counter from 0 to {MAX_COUNTER}")
    return int(value)


async def _disconnected(socket: WebSocket[Any, Any, Any]) -> None:
    """Returns when the client goes away; what it sends meanwhile is ignored."""
    while (await socket.receive())["type"] != "websocket.disconnect":
        pass
