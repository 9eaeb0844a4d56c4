"""Distributed mode for real: ``windflow worker`` processes, a Redis of the test's own, failures.

Each test starts a private ``redis-server`` on 127.0.0.1 so it can stop and restart it (Redis here
keeps nothing on disk, so a restart empties the queue: recovery must queue the runs again).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from server.app import create_app
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, SECRET_KEY
from tests.factories import login
from tests.runs.test_launch import LOCAL, make_inventory, make_playbook, wait_finished
from tests.runs.test_lifecycle import SLEEPS, launch, wait_status

Client = AsyncTestClient[Any]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateRedis:
    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        argv = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(argv, cwd=self.directory, stdout=subprocess.DEVNULL)
        for _ in range(100):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("private redis did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    redis = PrivateRedis(tmp_path)
    redis.start()
    yield redis
    redis.stop()


class Workers:
    """``python -m server worker`` processes sharing the test's database and Redis."""

    def __init__(self, settings: Any) -> None:
        self.env = {
            "PATH": os.environ["PATH"],
            "HOME": str(settings.data_dir),
            "WINDFLOW_ENV": "production",
            "WINDFLOW_SECRET_KEY": SECRET_KEY,
            "WINDFLOW_DATABASE_URL": settings.database_url,
            "WINDFLOW_REDIS_URL": settings.redis_url,
            "WINDFLOW_DATA_DIR": str(settings.data_dir),
            "WINDFLOW_RUN_HEARTBEAT_INTERVAL": "1",
            "WINDFLOW_LOG_LEVEL": "WARNING",
        }
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        process = subprocess.Popen([sys.executable, "-m", "server", "worker"], env=self.env)
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
async def distributed(
    clean_database: None, make_settings: Any, private_redis: PrivateRedis
) -> AsyncIterator[tuple[Client, Workers, PrivateRedis]]:
    settings = make_settings(
        redis_url=private_redis.url, run_heartbeat_timeout=4, run_recovery_interval=1, run_heartbeat_interval=1
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    workers = Workers(settings)
    async with AsyncTestClient(create_app(settings)) as client:
        client.headers.update(await login(client, ADMIN_EMAIL, ADMIN_PASSWORD))
        try:
            yield client, workers, private_redis
        finally:
            workers.stop()


async def test_a_worker_process_runs_it(distributed: tuple[Client, Workers, PrivateRedis]) -> None:
    client, workers, _ = distributed
    workers.start()
    playbook = await make_playbook(client)
    inventory = await make_inventory(client, LOCAL)
    run = await launch(client, playbook, inventory)
    finished = await wait_finished(client, run["id"], 120)
    assert finished["status"] == "successful", finished
    assert finished["worker"].startswith("worker:")


async def test_a_killed_worker_fails_its_run_as_worker_lost_and_leaves_nothing_running(
    distributed: tuple[Client, Workers, PrivateRedis],
) -> None:
    client, workers, _ = distributed
    worker = workers.start()
    playbook = await make_playbook(client, SLEEPS, "sleeps")
    inventory = await make_inventory(client, LOCAL)
    run = await launch(client, playbook, inventory)
    await wait_status(client, run["id"], "running", 60)
    await asyncio.sleep(1.5)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    began = time.monotonic()
    failed = await wait_finished(client, run["id"], 30)
    print(f"marked failed {time.monotonic() - began:.1f} s after the kill")  # a figure, not an assertion
    assert failed["status"] == "failed" and failed["reason"].startswith("worker lost"), failed
    await asyncio.sleep(0.5)
    from tests.runs.test_lifecycle import _sleepers

    assert _sleepers() == []

    # A new worker does not pick the run up again: once Ansible started, it is never re-run silently.
    workers.start()
    await asyncio.sleep(3)
    assert (await client.get(f"/api/v1/runs/{run['id']}")).json()["status"] == "failed"


async def test_runs_queued_when_redis_restarts_still_run(distributed: tuple[Client, Workers, PrivateRedis]) -> None:
    client, workers, redis = distributed
    playbook = await make_playbook(client)
    inventory = await make_inventory(client, LOCAL)
    queued = [await launch(client, playbook, inventory) for _ in range(3)]
    redis.stop()
    down = await launch(client, playbook, inventory)  # Redis is down: stored, not lost
    assert down["status"] == "pending"
    redis.start()  # empty: Redis here keeps nothing on disk
    workers.start()
    for run in [*queued, down]:
        finished = await wait_finished(client, run["id"], 120)
        assert finished["status"] == "successful", finished
        assert finished["attempts"] >= 2


def long_playbook() -> str:
    debug = "    - name: step {n}\n      ansible.builtin.debug:\n        msg: step {n}\n"
    pause = "    - name: a pause\n      ansible.builtin.command: sleep 4\n      changed_when: false\n"
    steps = "".join(debug.format(n=n) for n in range(20)) + pause + "".join(debug.format(n=n) for n in range(20, 40))
    return f"- name: long\n  hosts: all\n  gather_facts: false\n  tasks:\n{steps}"


async def test_a_streaming_client_survives_a_server_restart_without_a_gap(
    clean_database: None, make_settings: Any, private_redis: PrivateRedis
) -> None:
    from tests.runs.test_stream import connect, counters, receive, receive_all

    settings = make_settings(redis_url=private_redis.url)
    workers = Workers(settings)
    workers.start()
    try:
        async with AsyncTestClient(create_app(settings)) as first:
            headers = await login(first, ADMIN_EMAIL, ADMIN_PASSWORD)
            first.headers.update(headers)
            playbook = await make_playbook(first, long_playbook(), "long")
            inventory = await make_inventory(first, LOCAL)
            run = await launch(first, playbook, inventory)
            seen: list[int] = []
            async with connect(first, run["id"], token=headers["Authorization"].split()[1]) as ws:
                while len(seen) < 30:
                    seen += counters([receive(ws)])
        # The first server is gone (its lifespan ended); the run goes on in the worker.
        async with AsyncTestClient(create_app(settings)) as second:
            second.headers.update(headers)
            async with connect(second, run["id"], after=seen[-1], token=headers["Authorization"].split()[1]) as ws:
                messages, code = receive_all(ws)
            finished = await wait_finished(second, run["id"], 120)
        assert code == 1000 and finished["status"] == "successful"
        everything = seen + counters(messages)
        assert everything == list(range(1, finished["event_count"] + 1))
    finally:
        workers.stop()


async def test_a_run_pending_too_long_fails_saying_so(clean_database: None, make_settings: Any) -> None:
    """Recovery's own loop (every second here) fails a run no worker took within the pending timeout."""
    import datetime as dt

    from server.db.tables import Run
    from tests.factories import in_app_loop

    settings = make_settings(run_pending_timeout=60, run_recovery_interval=1)
    async with AsyncTestClient(create_app(settings)) as client:
        client.headers.update(await login(client, ADMIN_EMAIL, ADMIN_PASSWORD))
        me = (await client.get("/api/v1/users/me")).json()
        old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
        run = Run(organization=me["current_organization_id"], status="pending", created_at=old)
        await in_app_loop(client, run.save)
        failed = await wait_finished(client, str(run.id), 30)
    assert failed["status"] == "failed" and failed["reason"] == "not started within 60 s (no worker took it)"
