"""Settings that shape tokens and idempotency do what the README says."""

from __future__ import annotations

import asyncio
from typing import Any

import jwt
from litestar.testing import AsyncTestClient

from server.app import create_app
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.factories import login

CREDENTIALS = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}


async def test_access_token_lifetime_follows_the_setting(clean_database: None, make_settings: Any) -> None:
    async with AsyncTestClient(create_app(make_settings(access_token_ttl=321))) as client:
        body = (await client.post("/api/v1/auth/login", json=CREDENTIALS)).json()
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert body["expires_in"] == 321
    assert claims["exp"] - claims["iat"] == 321


async def test_refresh_tokens_expire_after_the_setting(clean_database: None, make_settings: Any) -> None:
    async with AsyncTestClient(create_app(make_settings(refresh_token_ttl=1))) as client:
        refresh_token = (await client.post("/api/v1/auth/login", json=CREDENTIALS)).json()["refresh_token"]
        await asyncio.sleep(1.2)
        response = await client.post("/api/v1/auth/refresh", json={"refresh_token": refresh_token})
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


async def test_idempotency_keys_are_forgotten_after_the_setting(clean_database: None, make_settings: Any) -> None:
    async with AsyncTestClient(create_app(make_settings(idempotency_ttl=1))) as client:
        client.headers.update(await login(client, ADMIN_EMAIL, ADMIN_PASSWORD))
        headers = {"Idempotency-Key": "nightly-token"}
        first = await client.post("/api/v1/tokens", json={"name": "one"}, headers=headers)
        reused = await client.post("/api/v1/tokens", json={"name": "two"}, headers=headers)
        await asyncio.sleep(1.2)
        later = await client.post("/api/v1/tokens", json={"name": "two"}, headers=headers)
    assert (first.status_code, reused.status_code, later.status_code) == (201, 409, 201)
    assert later.json()["name"] == "two"
