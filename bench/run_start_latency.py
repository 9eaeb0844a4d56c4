"""How soon a launched run starts: ``started_at - created_at`` of the run row, p50 and p99.

Run from the repository: ``.venv/bin/python bench/run_start_latency.py [RUNS]`` (default 200). Both
timestamps are written by the server: ``created_at`` when ``POST /api/v1/runs`` builds the row,
``started_at`` when a worker claims it (``pending`` → ``running``). Runs are launched one after
another, each waited for until its final status, so the figure is latency, not queueing.

Distributed mode: a private ``redis-server`` on a free 127.0.0.1 port and one real
``python -m server worker`` process. Embedded mode: the app runs the run itself. Both on a fresh
SQLite database (PostgreSQL when ``WINDFLOW_BENCH_DATABASE_URL`` is set).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    bench_settings,
    database_kinds,
    launch_body,
    log_in,
    machine,
    percentile,
    private_redis,
    scratch_database,
    start_latency,
    table,
    wait_final,
    worker_process,
)
from server.settings import Settings  # noqa: E402

RUNS = 200
WARM_UP = 3  # runs not counted: the worker's first job, the first run directory, imports
GOALS = {50: 0.010, 99: 0.050}  # seconds


async def latencies(settings: Settings, runs: int, distributed: bool) -> list[float]:
    """Launch ``runs`` runs one by one; the start latency of each."""
    from litestar.testing import AsyncTestClient

    from server.app import create_app

    found: list[float] = []
    async with AsyncTestClient(create_app(settings), timeout=120) as client:
        await log_in(client)
        body = await launch_body(client, tasks=1, hosts=1)
        # The worker starts once the app has migrated the database.
        with worker_process(settings) if distributed else nullcontext() as process:
            for number in range(WARM_UP + runs):
                if process is not None and process.poll() is not None:
                    raise RuntimeError(f"the worker exited with {process.returncode}")
                response = await client.post("/api/v1/runs", json=body)
                if response.status_code != 201:
                    raise RuntimeError(f"launch failed: {response.text[:300]}")
                run = await wait_final(client, response.json()["id"], seconds=120)
                if run["status"] != "successful":
                    raise RuntimeError(f"run {number} ended {run['status']}: {run['reason']}")
                if number >= WARM_UP:
                    found.append(start_latency(run))
    return found


def row(mode: str, values: list[float], concurrency: int, seconds: float) -> list[Any]:
    p50, p99 = percentile(values, 50), percentile(values, 99)
    met = "yes" if p50 <= GOALS[50] and p99 <= GOALS[99] else "NO"
    ms = [f"{v * 1000:.1f}" for v in (p50, p99, min(values), max(values))]
    return [mode, len(values), concurrency, *ms, met, f"{seconds:.0f}"]


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else RUNS
    kind = database_kinds()[-1]
    rows = []
    with tempfile.TemporaryDirectory(prefix="windflow-bench-") as name:
        directory = Path(name)
        with scratch_database(directory, kind) as database_url, private_redis(directory) as redis_url:
            modes = (("distributed (1 worker process)", redis_url), ("embedded", ""))
            for number, (mode, redis) in enumerate(modes):
                settings = bench_settings(directory / f"mode{number}", database_url, redis_url=redis)
                began = time.monotonic()
                values = asyncio.run(latencies(settings, runs, distributed=bool(redis)))
                rows.append(row(mode, values, settings.worker_concurrency, time.monotonic() - began))
    headers = ["mode", "runs", "concurrency", "p50 ms", "p99 ms", "min ms", "max ms", "goal met", "wall s"]
    print(f"one debug task on localhost per run, one run at a time; database: {kind}; {machine()}")
    print(table(headers, rows))
    print(
        f"latency = started_at - created_at of the run row; goal: p50 <= {GOALS[50] * 1000:.0f} ms, "
        f"p99 <= {GOALS[99] * 1000:.0f} ms. concurrency: runs one worker (or the embedded server) may execute "
        f"at once. {WARM_UP} warm-up runs per mode are not counted."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
