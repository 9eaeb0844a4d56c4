"""Events per second the run engine stores and publishes, with none lost.

Run from the repository: ``.venv/bin/python bench/event_ingest.py``. A thread feeds N synthetic,
runner-shaped events (counter 1..N) into ``EventSink.put_threadsafe`` as fast as it can, as
ansible-runner's thread does; the sink stores them in batches and publishes each stored batch. Three
publishers: one that only counts, the app's memory ``ChannelsPlugin``, and the Redis pub/sub backend
(a private ``redis-server``), each with a subscriber that counts. The baseline is the driver's raw
``executemany`` of the same rows on a connection of Piccolo's engine, batch by batch, in the same
run; Piccolo's own bulk insert (what ``EventSink`` uses) is measured next to it. On a fresh SQLite
database, and also on a scratch PostgreSQL database when ``WINDFLOW_BENCH_DATABASE_URL`` is set.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import bench_settings, database_kinds, machine, percentile, private_redis, scratch_database, table  # noqa: E402, I001
from server.db.engine import close_engine, open_engine  # noqa: E402
from server.db.migrations import migrate  # noqa: E402
from server.db.tables import Organization, Run, RunEvent  # noqa: E402
from server.runs.events import BATCH_SIZE, ChannelsPublisher, EventSink, Publisher, channel_of, to_row  # noqa: E402
from server.runs.stream import SUBSCRIBER_BACKLOG  # noqa: E402

N = 50_000
HOSTS = 10
GOAL = 5_000  # events per second; AWX documents about 1,100/s on a 4-CPU node
DRAIN = 30.0  # seconds a subscriber may take to receive the rest after the sink closed


def synthetic_events(n: int = N) -> list[dict[str, Any]]:
    """A playbook's worth of events: each task starts, then reports ok on every host."""
    events: list[dict[str, Any]] = []
    line = 0
    play = {"play": "bench play", "play_uuid": str(uuid.uuid4()), "playbook": "main.yml", "play_pattern": "all"}
    task = 0
    for counter in range(1, n + 1):
        if counter % (HOSTS + 1) == 1:
            task += 1
            name, stdout, data = "playbook_on_task_start", f"\r\nTASK [task {task}] " + "*" * 60, {}
        else:
            host = f"host{counter % (HOSTS + 1)}"
            res = {"msg": f"line {task}", "changed": False, "_ansible_verbose_always": True, "_ansible_no_log": False}
            name, stdout = "runner_on_ok", f'ok: [{host}] => {{\r\n    "msg": "line {task}"\r\n}}'
            data = {"host": host, "remote_addr": host, "res": res, "duration": 0.004, "event_loop": None}
        task_data = {"task": f"task {task}", "task_uuid": f"{task:032x}", "task_action": "debug", "role": ""}
        lines = stdout.count("\n") + 1
        events.append(
            {
                "event": name,
                "uuid": str(uuid.uuid4()),
                "counter": counter,
                "stdout": stdout,
                "start_line": line,
                "end_line": line + lines,
                "runner_ident": "run",
                "pid": 4242,
                "created": dt.datetime.now(dt.UTC).isoformat(),
                "event_data": {**play, **task_data, **data},
            }
        )
        line += lines
    return events


def emit(sink: EventSink, events: list[dict[str, Any]]) -> None:
    """What runner's thread does, as fast as it can: stamp Ansible's ``created`` and hand it over."""
    for event in events:
        event["created"] = dt.datetime.now(dt.UTC).isoformat()
        sink.put_threadsafe(event)


class Envelope(msgspec.Struct):
    type: str
    events: list[msgspec.Raw] = []


class Counter:
    """Counts the events in the messages it is given, and when the last one came."""

    def __init__(self) -> None:
        self.events = 0
        self.last = 0.0

    def count(self, message: bytes) -> None:
        self.events += len(msgspec.json.decode(message, type=Envelope).events)
        self.last = time.perf_counter()


class CountingPublisher(Counter):
    async def publish(self, channel: str, message: bytes) -> None:
        self.count(message)


@asynccontextmanager
async def channels_publisher(backend: Any, channel: str) -> AsyncIterator[tuple[Publisher, Counter]]:
    """The app's plugin configuration on ``backend``, with one subscriber that counts."""
    from litestar.channels import ChannelsPlugin

    plugin = ChannelsPlugin(
        backend=backend,
        arbitrary_channels_allowed=True,
        subscriber_max_backlog=SUBSCRIBER_BACKLOG,
        subscriber_backlog_strategy="dropleft",
    )
    counter = Counter()
    async with plugin:
        subscriber = await plugin.subscribe(channel)

        async def consume() -> None:
            async for message in subscriber.iter_events():
                counter.count(message)

        task = asyncio.create_task(consume())
        try:
            yield ChannelsPublisher(plugin), counter
        finally:
            task.cancel()
            await plugin.unsubscribe(subscriber)


@asynccontextmanager
async def publisher_named(name: str, channel: str, redis_url: str) -> AsyncIterator[tuple[Publisher, Counter]]:
    if name == "counting publisher":
        publisher = CountingPublisher()
        yield publisher, publisher
    elif name == "memory ChannelsPlugin":
        from litestar.channels.backends.memory import MemoryChannelsBackend

        async with channels_publisher(MemoryChannelsBackend(), channel) as pair:
            yield pair
    else:
        from litestar.channels.backends.redis import RedisChannelsPubSubBackend
        from redis.asyncio import Redis

        redis = Redis.from_url(redis_url)
        try:
            async with channels_publisher(RedisChannelsPubSubBackend(redis=redis), channel) as pair:
                yield pair
        finally:
            await redis.aclose()


async def new_run(organization: uuid.UUID) -> uuid.UUID:
    run = Run(organization=organization, status="running", options="{}", attempts=1)
    await run.save()
    return uuid.UUID(str(run.id))


@dataclass
class Result:
    name: str
    seconds: float
    published_seconds: float | None = None
    stored: int = N
    published: int = N
    event_count: int = N
    lags: tuple[list[float], list[float]] = field(default_factory=lambda: ([], []))


COLUMNS = ("run", "counter", "uuid", "event", "host", "play", "task", "role", "changed", "failed", "stdout")
COLUMNS += ("start_line", "end_line", "created", "data")


async def executemany(engine: Any, rows: list[dict[str, Any]]) -> None:
    """The driver's ``executemany`` on a connection of Piccolo's engine, one transaction a batch."""
    postgres = engine.engine_type == "postgres"
    marks = [f"${n}" if postgres else "?" for n in range(1, len(COLUMNS) + 1)]
    names = ", ".join(f'"{c}"' for c in COLUMNS)
    sql = f"INSERT INTO run_event ({names}) VALUES ({', '.join(marks)}) ON CONFLICT (run, counter) DO NOTHING"  # noqa: S608
    values = [tuple(msgspec.json.encode(r[c]).decode() if c == "data" else r[c] for c in COLUMNS) for r in rows]
    batches = [values[first : first + BATCH_SIZE] for first in range(0, len(values), BATCH_SIZE)]
    if postgres:
        async with engine.pool.acquire() as connection:
            for batch in batches:
                async with connection.transaction():
                    await connection.executemany(sql, batch)
        return
    connection = await engine.get_connection()
    try:
        for batch in batches:  # Piccolo's connections autocommit: without BEGIN, a transaction a row
            await connection.execute("BEGIN")
            await connection.executemany(sql, batch)
            await connection.execute("COMMIT")
    finally:
        await connection.close()


async def raw_insert(engine: Any, organization: uuid.UUID, events: list[dict[str, Any]], bulk: bool) -> Result:
    """The baselines: the same rows, ``BATCH_SIZE`` at a time, nothing published."""
    run_id = await new_run(organization)
    rows = [to_row(run_id, event) for event in events]
    began = time.perf_counter()
    if bulk:
        for first in range(0, len(rows), BATCH_SIZE):
            await RunEvent.insert(*[RunEvent(**row) for row in rows[first : first + BATCH_SIZE]])
    else:
        await executemany(engine, rows)
    seconds = time.perf_counter() - began
    stored = await RunEvent.count().where(RunEvent.run == run_id)
    name = "Piccolo RunEvent.insert(*rows)" if bulk else "raw executemany (driver)"
    return Result(f"{name}, {BATCH_SIZE} a batch", seconds, None, stored, 0, 0)


async def through_sink(name: str, organization: uuid.UUID, events: list[dict[str, Any]], redis_url: str) -> Result:
    run_id = await new_run(organization)
    async with publisher_named(name, channel_of(run_id), redis_url) as (publisher, counter):
        sink = EventSink(run_id, publisher)
        emitter = threading.Thread(target=emit, args=(sink, events), name="emitter")
        began = time.perf_counter()
        emitter.start()
        await asyncio.to_thread(emitter.join)
        stats = await sink.close()
        seconds = time.perf_counter() - began
        for _ in range(int(DRAIN / 0.01)):
            if counter.events >= len(events):
                break
            await asyncio.sleep(0.01)
    stored = await RunEvent.count().where(RunEvent.run == run_id)
    row = await Run.select(Run.event_count).where(Run.id == run_id).first()
    lags = ([lag for lag, _ in stats.lags], [lag for _, lag in stats.lags])
    published = counter.last - began if counter.events else None
    return Result(f"EventSink → {name}", seconds, published, stored, counter.events, row["event_count"], lags)


async def measure(database_url: str, directory: Path, redis_url: str) -> list[Result]:
    engine = await open_engine(bench_settings(directory, database_url))
    try:
        await migrate(engine)
        organization = Organization(name=f"bench {uuid.uuid4().hex[:8]}")
        await organization.save()
        events = synthetic_events()
        results = [await raw_insert(engine, organization.id, events, bulk) for bulk in (False, True)]
        for name in ("counting publisher", "memory ChannelsPlugin", "Redis pub/sub ChannelsPlugin"):
            results.append(await through_sink(name, organization.id, events, redis_url))
        return results
    finally:
        await close_engine(engine)


def loss(result: Result) -> str:
    if result.published == 0:  # the baseline publishes nothing
        return "-" if result.stored == N else f"stored {result.stored}/{N}"
    if (result.stored, result.published, result.event_count) == (N, N, N):
        return "0"
    return f"stored {result.stored}, published {result.published}, event_count {result.event_count} of {N}"


def lag(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{percentile(values, 50) * 1000:.0f} / {percentile(values, 99) * 1000:.0f}"


def rows_of(kind: str, results: list[Result]) -> list[list[object]]:
    baseline = results[0].seconds
    rows: list[list[object]] = []
    for result in results:
        published = f"{result.published / result.published_seconds:,.0f}" if result.published_seconds else "-"
        rate = N / result.seconds
        met = "-" if result.published_seconds is None else ("yes" if rate >= GOAL and loss(result) == "0" else "NO")
        ratio = f"{result.seconds / baseline:.1f}x"
        rows.append([f"{kind}: {result.name}", f"{result.seconds:.2f}", f"{rate:,.0f}", published, ratio, loss(result)])
        rows[-1] += [lag(result.lags[0]), lag(result.lags[1]), met]
    return rows


def main() -> int:
    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory(prefix="windflow-bench-") as name, private_redis(Path(name)) as redis_url:
        for kind in database_kinds():
            with scratch_database(Path(name), kind) as database_url:
                rows += rows_of(kind, asyncio.run(measure(database_url, Path(name), redis_url)))
    headers = ["database: pipeline", "s", "stored/s", "published/s", "x raw", "loss"]
    headers += ["stored lag p50/p99 ms", "publish lag p50/p99 ms", f">= {GOAL:,}/s"]
    print(f"{N:,} synthetic runner events ({HOSTS} hosts), fed from one thread; batch {BATCH_SIZE}; {machine()}")
    print(table(headers, rows))
    print(
        "stored/s: N / (first event handed over → EventSink.close() returned, all stored and published). "
        "published/s: N / (first event → the subscriber's last one). x raw: seconds / the raw insert's. "
        "Lags from SinkStats: Ansible's created → stored, stored → published."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
