"""From Ansible's callback to a WebSocket client: the latency of live run events, p50 and p99.

Run from the repository: ``.venv/bin/python bench/event_delivery.py``. The app runs embedded (fresh
SQLite, or PostgreSQL when ``WINDFLOW_BENCH_DATABASE_URL`` is set); a thread emits synthetic
runner events through ``EventSink`` at a steady rate, stamping Ansible's ``created`` as it goes, and
1, then 50, clients follow the run on ``/api/v1/runs/{id}/stream``. Latency = the client's receive
time − the event's ``created``.

The app is served by uvicorn on a free 127.0.0.1 port, in this process, as ``windflow serve`` does;
the clients (``websockets``) run in a child process, so their work is not charged to the server.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    FINAL,
    Served,
    bench_settings,
    database_kinds,
    machine,
    percentile,
    scratch_database,
    served,
    table,
)
from bench.event_ingest import synthetic_events  # noqa: E402

RATE = 1_000  # events per second
SECONDS = 5
SUBSCRIBERS = (1, 50)
TIMEOUT = 120.0  # seconds any one wait may take


class Event(msgspec.Struct):
    created: dt.datetime | None = None


class Message(msgspec.Struct):
    type: str
    events: list[Event] = []
    status: str = ""


class Tally:
    """What one client received: how many events, each one's latency, and whether the run ended."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.messages = 0
        self.final = False
        self.subscribed = asyncio.Event()  # the first message (the run's status) came

    def take(self, text: str | bytes, at: float) -> None:
        message = msgspec.json.decode(text, type=Message)
        self.messages += 1
        self.subscribed.set()
        self.latencies += [at - e.created.timestamp() for e in message.events if e.created]
        self.final = self.final or message.type == "status" and message.status in FINAL


# The clients: a child process with real WebSocket connections.


async def websocket_clients(url: str, count: int) -> None:
    """Child process: ``count`` connections; "ready" once each is subscribed, then their tallies as JSON."""
    import websockets

    tallies = [Tally() for _ in range(count)]

    async def follow(tally: Tally) -> None:
        async with websockets.connect(url, max_size=None) as socket:
            async for text in socket:
                tally.take(text, time.time())

    tasks = [asyncio.create_task(follow(t)) for t in tallies]
    async with asyncio.timeout(TIMEOUT):
        await asyncio.gather(*(t.subscribed.wait() for t in tallies))
        print("ready", flush=True)
        await asyncio.gather(*tasks)
    print(json.dumps([[t.latencies, t.final] for t in tallies]), flush=True)


@asynccontextmanager
async def child_clients(url: str, count: int) -> AsyncIterator[Callable[[], Awaitable[list[Tally]]]]:
    """Yields once every client is subscribed; what it yields waits for the tallies."""
    argv = [sys.executable, __file__, "--clients", str(count), url]
    child = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE)
    try:
        assert child.stdout is not None  # noqa: S101 - PIPE was asked for
        line = await asyncio.wait_for(child.stdout.readline(), TIMEOUT)
        if line.strip() != b"ready":
            raise RuntimeError(f"the clients did not connect: {line[:300]!r}")

        async def tallies() -> list[Tally]:
            out, _ = await asyncio.wait_for(child.communicate(), TIMEOUT)
            found = []
            for latencies, final in json.loads(out):
                found.append(Tally())
                found[-1].latencies, found[-1].final = latencies, final
            return found

        yield tallies
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()


# The server side: the app, a run row, and the synthetic emitter.


def emit(sink: Any, events: list[dict[str, Any]]) -> None:
    """Runner's thread at a steady ``RATE``, stamping each event's ``created`` when it is handed over."""
    began = time.perf_counter()
    for number, event in enumerate(events):
        delay = began + number / RATE - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        event["created"] = dt.datetime.now(dt.UTC).isoformat()
        sink.put_threadsafe(event)


async def deliver(app: Served, count: int) -> tuple[list[Tally], list[float]]:
    """One run: ``count`` clients follow it while the events are emitted; the run then ends."""
    from litestar.channels import ChannelsPlugin

    from server.db.tables import Run
    from server.runs.events import ChannelsPublisher, EventSink, channel_of

    organization = (await app.http.get("/api/v1/users/me")).json()["current_organization_id"]
    run = Run(organization=uuid.UUID(organization), status="running", options="{}", attempts=1)
    await run.save()
    publisher = ChannelsPublisher(app.app.plugins.get(ChannelsPlugin))
    async with child_clients(app.stream_url(str(run.id)), count) as collect:
        sink = EventSink(run.id, publisher)
        await asyncio.to_thread(emit, sink, synthetic_events(RATE * SECONDS))
        stats = await sink.close()
        await Run.update({Run.status: "successful", Run.event_count: stats.last_counter}).where(Run.id == run.id)
        final = {"type": "status", "run_id": str(run.id), "status": "successful", "event_count": stats.last_counter}
        await publisher.publish(channel_of(run.id), msgspec.json.encode({**final, "reason": ""}))
        return await collect(), [stored for stored, _ in stats.lags]


async def measure(settings: Any) -> list[list[object]]:
    rows: list[list[object]] = []
    async with served(settings) as app:
        for count in SUBSCRIBERS:
            tallies, stored = await deliver(app, count)
            rows.append(row(count, tallies, stored))
    return rows


def row(count: int, tallies: list[Tally], stored: list[float]) -> list[object]:
    latencies = [latency for tally in tallies for latency in tally.latencies]
    expected = RATE * SECONDS
    complete = sum(len(t.latencies) == expected and t.final for t in tallies)
    ms = [f"{percentile(values, q) * 1000:.1f}" for values in (latencies, stored) for q in (50, 99)]
    return [count, f"{len(latencies):,}", f"{complete}/{count}", *ms[:2], f"{max(latencies) * 1000:.1f}", *ms[2:]]


def main() -> int:
    if sys.argv[1:2] == ["--clients"]:
        asyncio.run(websocket_clients(sys.argv[3], int(sys.argv[2])))
        return 0
    kind = database_kinds()[-1]
    with tempfile.TemporaryDirectory(prefix="windflow-bench-") as name, scratch_database(Path(name), kind) as url:
        rows = asyncio.run(measure(bench_settings(Path(name), url)))
    how = "uvicorn on 127.0.0.1, the clients (websockets) in a child process"
    print(f"{RATE:,} events/s for {SECONDS} s through EventSink; {how}; database: {kind}; {machine()}")
    headers = ["subscribers", "events received", "complete", "p50 ms", "p99 ms", "max ms"]
    print(table([*headers, "stored lag p50 ms", "stored lag p99 ms"], rows))
    print(
        "latency = client receive time - the event's Ansible `created`; complete: clients that got every event"
        " and the final status. stored lag (SinkStats): created → row stored, before it is published."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
