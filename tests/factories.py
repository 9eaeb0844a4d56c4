"""Factories for API-level test data: users in roles, organizations, logged-in headers."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
from litestar.testing import AsyncTestClient

PASSWORD = "member-password-1"
T = TypeVar("T")
_serial = itertools.count(1)


async def login(client: AsyncTestClient[Any], email: str, password: str = PASSWORD) -> dict[str, str]:
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def make_user(
    admin: AsyncTestClient[Any], role: str = "viewer", *, headers: dict[str, str] | None = None, **overrides: Any
) -> dict[str, Any]:
    """Create a user in the admin's current organization (or the one ``headers`` select)."""
    body = {"email": f"user{next(_serial)}@windflow.test", "password": PASSWORD, "role": role, **overrides}
    response = await admin.post("/api/v1/users", json=body, headers=headers or {})
    assert response.status_code == 201, response.text
    return {**response.json(), "password": body["password"]}


async def make_organization(admin: AsyncTestClient[Any], **overrides: Any) -> dict[str, Any]:
    body = {"name": f"Org {next(_serial)}", **overrides}
    response = await admin.post("/api/v1/organizations", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def headers_for(client: AsyncTestClient[Any], user: dict[str, Any]) -> dict[str, str]:
    return await login(client, user["email"], user.get("password", PASSWORD))


def files_containing(directory: Path, needle: str) -> list[Path]:
    """Files under ``directory`` whose bytes hold ``needle`` (to prove a secret left no trace)."""
    return [p for p in directory.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


async def in_app_loop(client: AsyncTestClient[Any], query: Callable[[], Awaitable[T]]) -> T:
    """Run a database query on the app's event loop, where its connection pool lives (PostgreSQL)."""
    return await anyio.to_thread.run_sync(client.blocking_portal.call, query)
