"""What the benchmarks share: settings, a logged-in app, a scratch database, a private Redis, worker
processes, percentiles and the table they print.

Everything here starts only what a ``with`` block stops again, on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from server.settings import Settings  # noqa: E402

SECRET_KEY = "bench-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"  # noqa: S105 - a throwaway database
ADMIN_EMAIL = "bench@windflow.test"
ADMIN_PASSWORD = "bench-password-1"  # noqa: S105 - a throwaway database
POSTGRES_VARIABLE = "WINDFLOW_BENCH_DATABASE_URL"
FINAL = ("successful", "failed", "canceled", "timeout")


def bench_settings(directory: Path, database_url: str = "", **overrides: Any) -> Settings:
    """Production settings on a throwaway database in ``directory`` (no rate limit)."""
    values: dict[str, Any] = {
        "env": "production",
        "secret_key": SECRET_KEY,
        "data_dir": directory / "data",
        "database_url": database_url or f"sqlite:///{directory / 'bench.db'}",
        "admin_email": ADMIN_EMAIL,
        "admin_password": ADMIN_PASSWORD,
        "rate_limit": 0,
        "login_ip_max_attempts": 100_000,
        **overrides,
    }
    return Settings(**values)


def database_kinds() -> list[str]:
    """SQLite always; PostgreSQL too when ``WINDFLOW_BENCH_DATABASE_URL`` names a server."""
    return ["sqlite", "postgres"] if os.environ.get(POSTGRES_VARIABLE) else ["sqlite"]


async def _postgres_admin(sql: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    connection = await asyncpg.connect(os.environ[POSTGRES_VARIABLE])
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@contextmanager
def scratch_database(directory: Path, kind: str = "sqlite") -> Iterator[str]:
    """A new, empty database's URL: a file in ``directory``, or a PostgreSQL database dropped after."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / f'bench-{secrets.token_hex(3)}.db'}"
        return
    name = f"windflow_bench_{os.getpid()}_{secrets.token_hex(4)}"
    asyncio.run(_postgres_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield urlunsplit(urlsplit(os.environ[POSTGRES_VARIABLE])._replace(path=f"/{name}"))
    finally:
        asyncio.run(_postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, seconds: float = 10) -> None:
    for _ in range(int(seconds / 0.05)):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {seconds} s")


@contextmanager
def private_redis(directory: Path) -> Iterator[str]:
    """A ``redis-server`` of our own on a free port, keeping nothing on disk; its URL."""
    port = free_port()
    argv = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(argv, cwd=directory, stdout=subprocess.DEVNULL)  # noqa: S603 - our own argv
    try:
        wait_listening(port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


@contextmanager
def worker_process(settings: Settings) -> Iterator[subprocess.Popen[bytes]]:
    """One ``python -m server worker`` on the settings' database and Redis; stopped with SIGTERM."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(settings.data_dir),
        "WINDFLOW_ENV": "production",
        "WINDFLOW_SECRET_KEY": settings.secret_key,
        "WINDFLOW_DATABASE_URL": settings.database_url,
        "WINDFLOW_REDIS_URL": settings.redis_url,
        "WINDFLOW_DATA_DIR": str(settings.data_dir),
        "WINDFLOW_WORKER_CONCURRENCY": str(settings.worker_concurrency),
        "WINDFLOW_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen([sys.executable, "-m", "server", "worker"], env=env, cwd=ROOT)  # noqa: S603
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# Through the app: a logged-in client, a playbook, an inventory, and a run followed to its end.


def debug_playbook(tasks: int) -> str:
    lines = ["- name: debug tasks", "  hosts: all", "  gather_facts: false", "  tasks:"]
    for number in range(1, tasks + 1):
        lines += [f"    - name: task {number}", "      ansible.builtin.debug:", f'        msg: "line {number}"']
    return "\n".join(lines) + "\n"


def local_inventory(hosts: int) -> dict[str, Any]:
    """``localhost`` alone, or ``local1`` … ``localN``: every one with ``connection: local``."""
    names = ["localhost"] if hosts == 1 else [f"local{n}" for n in range(1, hosts + 1)]
    return {
        "name": f"local-{hosts}-{secrets.token_hex(3)}",
        "hosts": [{"name": n, "connection": "local"} for n in names],
    }


async def log_in(client: Any) -> None:
    body = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    response = await client.post("/api/v1/auth/login", json=body)
    if response.status_code != 200:
        raise RuntimeError(f"login failed: {response.text[:300]}")
    client.headers["Authorization"] = f"Bearer {response.json()['access_token']}"


async def created(client: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(path, json=body)
    if response.status_code != 201:
        raise RuntimeError(f"POST {path} answered {response.status_code}: {response.text[:300]}")
    return dict(response.json())


async def launch_body(client: Any, tasks: int, hosts: int, **options: Any) -> dict[str, Any]:
    """Stores a debug playbook and a local inventory; the body that launches a run of them."""
    name = f"debug-{tasks}-{secrets.token_hex(3)}"
    playbook = await created(client, "/api/v1/playbooks", {"name": name, "content": debug_playbook(tasks)})
    inventory = await created(client, "/api/v1/inventories", local_inventory(hosts))
    return {"playbook_id": playbook["id"], "inventory_id": inventory["id"], **options}


async def wait_final(client: Any, run_id: str, poll: float = 0.01, seconds: float = 300) -> dict[str, Any]:
    """``GET /runs/{id}`` every ``poll`` seconds until the run's status is final."""
    for _ in range(int(seconds / poll)):
        run = dict((await client.get(f"/api/v1/runs/{run_id}")).json())
        if run["status"] in FINAL:
            return run
        await asyncio.sleep(poll)
    raise RuntimeError(f"run {run_id} did not finish within {seconds} s")


@dataclass
class Served:
    app: Any
    http: Any  # an httpx.AsyncClient, logged in as the admin
    port: int

    def stream_url(self, run_id: str) -> str:
        token = self.http.headers["Authorization"].removeprefix("Bearer ")
        return f"ws://127.0.0.1:{self.port}/api/v1/runs/{run_id}/stream?after=0&token={token}"


@asynccontextmanager
async def served(settings: Settings) -> AsyncIterator[Served]:
    """The app under a real uvicorn on a free 127.0.0.1 port, in this event loop (as ``windflow serve``)."""
    import httpx
    import uvicorn

    from server.app import create_app

    app, port = create_app(settings), free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False, ws="auto")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        await asyncio.to_thread(wait_listening, port, 120)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as http:
            await log_in(http)
            yield Served(app, http, port)
    finally:
        server.should_exit = True
        await serving


async def final_status(url: str, seconds: float = 600) -> tuple[dict[str, Any], float]:
    """Follow a run's WebSocket stream: its final status and when it came (``perf_counter``).

    The stream is read on until the server closes it, as a polite client does.
    """
    import json

    import websockets

    final: tuple[dict[str, Any], float] | None = None
    async with asyncio.timeout(seconds), websockets.connect(url, max_size=None) as socket:
        async for text in socket:
            message = json.loads(text)
            if final is None and message["type"] == "status" and message["status"] in FINAL:
                final = dict(message), time.perf_counter()
    if final is None:
        raise RuntimeError("the stream closed before the run's final status")
    return final


def start_latency(run: dict[str, Any]) -> float:
    """``started_at - created_at`` of a run as the API returns it, in seconds."""
    return (dt.datetime.fromisoformat(run["started_at"]) - dt.datetime.fromisoformat(run["created_at"])).total_seconds()


# Figures.


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` from 0 to 100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain text table: the first column left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))

    return "\n".join([line(cells[0]), "  ".join("-" * w for w in widths), *map(line, cells[1:])])


def machine() -> str:
    """Cores and load averages, to read the figures by."""
    one, five, fifteen = os.getloadavg()
    return f"{os.cpu_count()} cores; load average {one:.2f} {five:.2f} {fifteen:.2f} (1, 5, 15 min)"
