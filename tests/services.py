"""Where the test suite finds PostgreSQL and Redis, and how it makes its own database."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from urllib.parse import urlsplit, urlunsplit

import asyncpg

ENGINE = os.environ.get("WINDFLOW_TEST_ENGINE", "sqlite")
POSTGRES_URL = os.environ.get("WINDFLOW_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("WINDFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")

HOW_TO_START = {
    "PostgreSQL": "start it (e.g. `pg_ctlcluster --skip-systemctl-redirect 15 main start`) "
    "or point WINDFLOW_TEST_DATABASE_URL at a server that allows CREATE DATABASE",
    "Redis": "start it (e.g. `redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save ''`) "
    "or point WINDFLOW_TEST_REDIS_URL at one",
}


def unreachable(name: str, url: str) -> str | None:
    """A message saying how to start ``name`` when nothing listens at ``url``, else None."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), timeout=3):
            return None
    except OSError as exc:
        return f"{name} is not reachable at {parts.hostname}:{parts.port} ({exc}); {HOW_TO_START[name]}."


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def _admin(sql: str) -> None:
    connection = await asyncpg.connect(POSTGRES_URL)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def create_postgres_database() -> tuple[str, str]:
    name = f"windflow_test_{os.getpid()}_{secrets.token_hex(4)}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    return name, _with_database(POSTGRES_URL, name)


def drop_postgres_database(name: str) -> None:
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
