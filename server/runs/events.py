"""Runner events → rows, stored in batches, and only then published on the run's channel.

A subscriber therefore never sees an event the database does not have: a client that misses a
live message (slow, reconnecting) finds it with ``GET /runs/{id}/events?after=N``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

from server.credentials.masking import Masker
from server.db.engine import atomic
from server.db.tables import Run, RunEvent

log = logging.getLogger(__name__)

BATCH_SIZE = 500
BATCH_WINDOW = 0.02  # seconds: a small batch waits this long after its first event before it is written
FAILED_EVENTS = frozenset({"runner_on_failed", "runner_on_unreachable", "runner_item_on_failed"})
HOST_OUTCOMES = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_unreachable": "unreachable",
    "runner_on_skipped": "skipped",
}
CENSORED = "the output has been hidden due to the fact that 'no_log: true' was specified for this result"


def channel_of(run_id: uuid.UUID | str) -> str:
    return f"run.{run_id}"


class Publisher(Protocol):
    async def publish(self, channel: str, message: bytes) -> None: ...


async def publish_safely(publisher: Publisher, channel: str, message: bytes) -> None:
    """Publishing is best effort: what is stored is the truth, and followers refetch what they miss."""
    try:
        await publisher.publish(channel, message)
    except Exception as exc:  # noqa: BLE001 - a Redis hiccup must not stop a run's events being stored
        log.warning("could not publish a run message", extra={"channel": channel, "error": type(exc).__name__})


async def publish_status(
    publisher: Publisher, run_id: uuid.UUID | str, status: str, reason: str, event_count: int
) -> None:
    """The run's status message; a final one goes out only after all its events are stored."""
    message = {"type": "status", "run_id": str(run_id), "status": status, "reason": reason, "event_count": event_count}
    await publish_safely(publisher, channel_of(run_id), msgspec.json.encode(message))


def _created(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _censor(data: dict[str, Any]) -> dict[str, Any]:
    """Drop what a ``no_log`` task produced or was given; Ansible already censors its stdout."""
    res = data.get("res")
    hidden = data.get("no_log") or (isinstance(res, dict) and res.get("_ansible_no_log"))
    if not hidden:
        return data
    kept = {k: v for k, v in data.items() if k not in ("res", "task_args", "resolved_action_args")}
    return {**kept, "res": {"censored": CENSORED}}


def mask_event(masker: Masker, event: dict[str, Any]) -> dict[str, Any]:
    """The event with the run's secret values masked where Ansible prints them: stdout and its data."""
    if not masker:
        return event
    masked = {**event, "event_data": masker.value(event.get("event_data") or {})}
    if isinstance(event.get("stdout"), str):
        masked["stdout"] = masker.text(event["stdout"])
    return masked


def to_row(run_id: uuid.UUID, event: dict[str, Any]) -> dict[str, Any]:
    """The stored shape of one runner event."""
    data = _censor(dict(event.get("event_data") or {}))
    res = data.get("res")
    name = str(event.get("event", ""))
    return {
        "run": run_id,
        "counter": int(event["counter"]),
        "uuid": str(event.get("uuid", "")),
        "event": name,
        "host": str(data.get("host") or data.get("remote_addr") or ""),
        "play": str(data.get("play") or ""),
        "task": str(data.get("task") or ""),
        "role": str(data.get("role") or ""),
        "changed": bool(isinstance(res, dict) and res.get("changed")),
        "failed": name in FAILED_EVENTS and not data.get("ignore_errors"),
        "stdout": str(event.get("stdout") or ""),
        "start_line": int(event.get("start_line") or 0),
        "end_line": int(event.get("end_line") or 0),
        "created": _created(event.get("created")),
        "data": data,
    }


def public(row: dict[str, Any]) -> dict[str, Any]:
    """A stored row as clients see it (REST and WebSocket alike)."""
    out = {k: v for k, v in row.items() if k not in ("run", "id")}
    out["run_id"] = str(row["run"])
    return out


@dataclass
class Progress:
    """What a run is doing now: its current task, tasks started, and each host's tallies."""

    task: str = ""
    tasks_started: int = 0
    hosts: dict[str, dict[str, int]] = field(default_factory=dict)

    def update(self, row: dict[str, Any]) -> None:
        if row["event"] == "playbook_on_task_start":
            self.task = row["task"]
            self.tasks_started += 1
        outcome = HOST_OUTCOMES.get(row["event"])
        if outcome and row["host"]:
            tally = self.hosts.setdefault(row["host"], {})
            tally[outcome] = tally.get(outcome, 0) + 1
            if row["changed"]:
                tally["changed"] = tally.get("changed", 0) + 1

    def message(self) -> dict[str, Any]:
        return {"type": "progress", "task": self.task, "tasks_started": self.tasks_started, "hosts": self.hosts}


@dataclass
class SinkStats:
    stored: int = 0
    last_counter: int = 0
    lags: list[tuple[float, float]] = field(default_factory=list)  # (callback→stored, stored→published)


class EventSink:
    """Receives events from runner's thread; stores them in batches; then publishes each batch.

    With a ``masker``, the run's secret values are masked before an event becomes a row, so neither
    the database nor the live stream (which publishes the rows) ever holds them.
    """

    def __init__(
        self,
        run_id: uuid.UUID,
        publisher: Publisher,
        on_batch: Callable[[SinkStats, int], None] | None = None,
        masker: Masker | None = None,
    ) -> None:
        self.run_id = run_id
        self.publisher = publisher
        self.on_batch = on_batch
        self.masker = masker or Masker()
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.progress = Progress()
        self.stats = SinkStats()
        self.task = asyncio.create_task(self._consume(), name=f"events {run_id}")

    def put_threadsafe(self, event: dict[str, Any]) -> None:
        """Called by runner's event handler, in runner's thread."""
        if "counter" in event:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, {**event, "_received": time.time()})

    async def close(self) -> SinkStats:
        """Store and publish everything received so far, then stop."""
        self.loop.call_soon_threadsafe(self.queue.put_nowait, None)
        await self.task
        return self.stats

    async def _consume(self) -> None:
        """Take what has arrived; a small batch waits up to ``BATCH_WINDOW`` for company."""
        done = False
        while not done:
            first = await self.queue.get()
            if first is None:
                return
            batch = [first]
            done = self._drain(batch)
            if not done and len(batch) < BATCH_SIZE // 10:
                await asyncio.sleep(max(0.0, first["_received"] + BATCH_WINDOW - time.time()))
                done = self._drain(batch)
            await self._flush(batch)

    def _drain(self, batch: list[dict[str, Any]]) -> bool:
        """Move queued events into ``batch`` (up to ``BATCH_SIZE``); True when the end was reached."""
        while len(batch) < BATCH_SIZE:
            try:
                item = self.queue.get_nowait()
            except asyncio.QueueEmpty:
                return False
            if item is None:
                return True
            batch.append(item)
        return False

    async def _flush(self, batch: list[dict[str, Any]]) -> None:
        received = [event.pop("_received") for event in batch]
        rows = [to_row(self.run_id, mask_event(self.masker, event)) for event in batch]
        last = max(self.stats.last_counter, *(row["counter"] for row in rows))
        async with atomic():
            await RunEvent.insert(*[RunEvent(**row) for row in rows]).on_conflict(
                target=(RunEvent.run, RunEvent.counter), action="DO NOTHING"
            )
            # ``event_count`` is the highest stored counter: runner numbers a run's events 1, 2, 3, …
            await Run.update({Run.event_count: last}).where(Run.id == self.run_id)
        self.stats.last_counter = last
        self.stats.stored += len(rows)
        stored_at = time.time()
        for row in rows:
            self.progress.update(row)
        message = {"type": "events", "run_id": str(self.run_id), "events": [public(row) for row in rows]}
        channel = channel_of(self.run_id)
        await publish_safely(self.publisher, channel, msgspec.json.encode(message))
        await publish_safely(self.publisher, channel, msgspec.json.encode(self.progress.message()))
        published_at = time.time()
        # From Ansible's callback (the event's own time) to stored, and from stored to published.
        emitted = [row["created"].timestamp() if row["created"] else r for row, r in zip(rows, received, strict=True)]
        self.stats.lags += [(stored_at - e, published_at - stored_at) for e in emitted]
        if self.on_batch:
            self.on_batch(self.stats, len(rows))


class ChannelsPublisher:
    """Publishes through the app's Litestar ``ChannelsPlugin`` (memory or Redis backend)."""

    def __init__(self, plugin: Any) -> None:
        self.plugin = plugin

    async def publish(self, channel: str, message: bytes) -> None:
        await self.plugin.wait_published(message, [channel])


class BackendPublisher:
    """A worker process without an app: publishes straight to the channels backend (Redis)."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend

    async def publish(self, channel: str, message: bytes) -> None:
        await self.backend.publish(message, [channel])
