"""Login, token rotation, access and API tokens, login throttling and ``/users/me``."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any, TypeVar

from litestar.testing import AsyncTestClient

from server.app import create_app
from server.auth.tokens import digest, issue_access_token
from server.db.tables import ApiToken, RefreshToken
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, SECRET_KEY
from tests.factories import headers_for, in_app_loop, make_organization, make_user

LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/users/me"
TOKENS = "/api/v1/tokens"
T = TypeVar("T")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def log_in(client: AsyncTestClient[Any], email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD) -> Any:
    response = await client.post(LOGIN, json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return response.json()


async def refresh(client: AsyncTestClient[Any], refresh_token: str) -> Any:
    return await client.post(REFRESH, json={"refresh_token": refresh_token})


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    return body


# Login


async def test_login_returns_a_bearer_token_pair(client: AsyncTestClient[Any]) -> None:
    tokens = await log_in(client)

    assert tokens["token_type"] == "bearer"
    assert tokens["access_token"]
    assert tokens["refresh_token"]
    assert tokens["access_token"] != tokens["refresh_token"]
    me = await client.get(ME, headers=bearer(tokens["access_token"]))
    assert me.status_code == 200
    assert me.json()["email"] == ADMIN_EMAIL


async def test_wrong_password_and_unknown_email_look_the_same(client: AsyncTestClient[Any]) -> None:
    wrong_password = await client.post(LOGIN, json={"email": ADMIN_EMAIL, "password": "not-the-password"})
    unknown_email = await client.post(LOGIN, json={"email": "nobody@windflow.test", "password": ADMIN_PASSWORD})

    first = assert_problem(wrong_password, 401, "AUTH_INVALID")
    second = assert_problem(unknown_email, 401, "AUTH_INVALID")
    assert first["detail"] == second["detail"]
    assert "access_token" not in wrong_password.text


async def test_disabled_user_cannot_log_in(admin_client: AsyncTestClient[Any]) -> None:
    user = await make_user(admin_client, "operator")
    await headers_for(admin_client, user)

    disabled = await admin_client.patch(f"/api/v1/users/{user['id']}", json={"is_active": False})
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["is_active"] is False

    response = await admin_client.post(LOGIN, json={"email": user["email"], "password": user["password"]})
    assert_problem(response, 401, "AUTH_INVALID")


async def test_login_email_is_case_insensitive(admin_client: AsyncTestClient[Any]) -> None:
    tokens = await log_in(admin_client, "Admin@WindFlow.TEST")
    me = await admin_client.get(ME, headers=bearer(tokens["access_token"]))
    assert me.json()["email"] == ADMIN_EMAIL

    user = await make_user(admin_client, "viewer", email="Mixed.Case@WindFlow.test")
    assert user["email"] == "mixed.case@windflow.test"
    await log_in(admin_client, "MIXED.CASE@windflow.TEST", user["password"])


# Refresh and logout


async def test_refresh_rotates_and_reuse_revokes_the_family(client: AsyncTestClient[Any]) -> None:
    first = await log_in(client)

    rotated = await refresh(client, first["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["token_type"] == "bearer"
    assert (await client.get(ME, headers=bearer(second["access_token"]))).status_code == 200

    reused = await refresh(client, first["refresh_token"])
    assert_problem(reused, 401, "AUTH_INVALID")
    newest = await refresh(client, second["refresh_token"])
    assert_problem(newest, 401, "AUTH_INVALID")


async def test_refresh_family_revocation_spares_other_logins(client: AsyncTestClient[Any]) -> None:
    stolen = await log_in(client)
    other = await log_in(client)
    assert (await refresh(client, stolen["refresh_token"])).status_code == 200

    assert (await refresh(client, stolen["refresh_token"])).status_code == 401
    assert (await refresh(client, other["refresh_token"])).status_code == 200


async def test_logout_revokes_the_refresh_token(client: AsyncTestClient[Any]) -> None:
    tokens = await log_in(client)

    response = await client.post(LOGOUT, json={"refresh_token": tokens["refresh_token"]})
    assert response.status_code == 204

    assert_problem(await refresh(client, tokens["refresh_token"]), 401, "AUTH_INVALID")


async def test_unknown_refresh_token_is_rejected(client: AsyncTestClient[Any]) -> None:
    assert_problem(await refresh(client, "wfr_not-a-real-token"), 401, "AUTH_INVALID")


# Access tokens


async def test_expired_access_token_is_rejected(admin_client: AsyncTestClient[Any]) -> None:
    user_id = uuid.UUID((await admin_client.get(ME)).json()["id"])
    expired = issue_access_token(SECRET_KEY, user_id, ttl=1, now=time.time() - 100)

    response = await admin_client.get(ME, headers=bearer(expired))

    body = assert_problem(response, 401, "AUTH_INVALID")
    assert "expired" in body["detail"]


async def test_access_token_signed_with_another_key_is_rejected(admin_client: AsyncTestClient[Any]) -> None:
    user_id = uuid.UUID((await admin_client.get(ME)).json()["id"])
    forged = issue_access_token("another-secret-key-0123456789-abcdefghijklmnop", user_id, ttl=900)

    response = await admin_client.get(ME, headers=bearer(forged))

    body = assert_problem(response, 401, "AUTH_INVALID")
    assert "expired" not in body["detail"]


async def test_missing_or_malformed_authorization_is_rejected(client: AsyncTestClient[Any]) -> None:
    assert_problem(await client.get(ME), 401, "AUTH_INVALID")
    assert_problem(await client.get(ME, headers={"Authorization": "Basic abc"}), 401, "AUTH_INVALID")
    assert_problem(await client.get(ME, headers=bearer("not-a-jwt")), 401, "AUTH_INVALID")


# API tokens


async def create_token(client: AsyncTestClient[Any], name: str = "ci", **extra: Any) -> dict[str, Any]:
    response = await client.post(TOKENS, json={"name": name, **extra})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_api_token_is_shown_once_and_works_as_bearer(admin_client: AsyncTestClient[Any]) -> None:
    created = await create_token(admin_client, "deploy-bot")
    token = created["token"]
    assert token.startswith("wfp_")
    assert token.startswith(created["prefix"])

    listed = await admin_client.get(TOKENS)
    assert listed.status_code == 200
    assert token not in listed.text
    (item,) = listed.json()["items"]
    assert item["id"] == created["id"]
    assert "token" not in item

    me = await admin_client.get(ME, headers=bearer(token))
    assert me.status_code == 200, me.text
    assert me.json()["email"] == ADMIN_EMAIL


async def test_revoked_api_token_is_rejected(admin_client: AsyncTestClient[Any]) -> None:
    created = await create_token(admin_client)
    assert (await admin_client.get(ME, headers=bearer(created["token"]))).status_code == 200

    revoked = await admin_client.delete(f"{TOKENS}/{created['id']}")
    assert revoked.status_code == 204

    assert_problem(await admin_client.get(ME, headers=bearer(created["token"])), 401, "AUTH_INVALID")
    listed = (await admin_client.get(TOKENS)).json()["items"]
    assert listed[0]["revoked_at"] is not None


async def test_another_user_cannot_revoke_an_api_token(admin_client: AsyncTestClient[Any]) -> None:
    created = await create_token(admin_client)
    other = await headers_for(admin_client, await make_user(admin_client, "admin"))

    response = await admin_client.delete(f"{TOKENS}/{created['id']}", headers=other)

    assert_problem(response, 404, "NOT_FOUND")
    assert (await admin_client.get(ME, headers=bearer(created["token"]))).status_code == 200
    assert created["id"] not in (await admin_client.get(TOKENS, headers=other)).text


async def test_expired_api_token_is_rejected(admin_client: AsyncTestClient[Any]) -> None:
    created = await create_token(admin_client, expires_in_days=1)
    assert (await admin_client.get(ME, headers=bearer(created["token"]))).status_code == 200

    yesterday = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    await in_app_loop(
        admin_client,
        lambda: ApiToken.update({ApiToken.expires_at: yesterday}).where(ApiToken.id == uuid.UUID(created["id"])).run(),
    )

    body = assert_problem(await admin_client.get(ME, headers=bearer(created["token"])), 401, "AUTH_INVALID")
    assert "expired" in body["detail"]


async def test_api_token_expiry_cannot_be_in_the_past(admin_client: AsyncTestClient[Any]) -> None:
    response = await admin_client.post(TOKENS, json={"name": "ci", "expires_in_days": 0})

    body = assert_problem(response, 422, "VALIDATION_ERROR")
    assert body["errors"][0]["field"] == "body.expires_in_days"


async def test_tokens_are_stored_hashed(admin_client: AsyncTestClient[Any]) -> None:
    created = await create_token(admin_client)
    token = created["token"]

    row = await in_app_loop(
        admin_client, lambda: ApiToken.select().where(ApiToken.id == uuid.UUID(created["id"])).first().run()
    )
    assert row is not None
    assert row["token_hash"] != token
    assert row["token_hash"] == digest(token)
    assert all(token not in str(value) for value in row.values())

    refresh_token = (await log_in(admin_client))["refresh_token"]
    stored = await in_app_loop(
        admin_client,
        lambda: RefreshToken.select().where(RefreshToken.token_hash == digest(refresh_token)).first().run(),
    )
    assert stored is not None
    assert all(refresh_token not in str(value) for value in stored.values())


# Login throttling


async def test_account_locks_after_repeated_failures(clean_database: None, make_settings: Any) -> None:
    async with AsyncTestClient(create_app(make_settings(login_max_failures=3))) as client:
        for _ in range(3):
            failed = await client.post(LOGIN, json={"email": ADMIN_EMAIL, "password": "wrong-password"})
            assert_problem(failed, 401, "AUTH_INVALID")

        locked = await client.post(LOGIN, json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})

        body = assert_problem(locked, 429, "ACCOUNT_LOCKED")
        assert "locked" in body["detail"]
        assert int(locked.headers["retry-after"]) > 0


async def test_successful_login_resets_the_failure_count(clean_database: None, make_settings: Any) -> None:
    async with AsyncTestClient(create_app(make_settings(login_max_failures=2))) as client:
        for _ in range(3):
            failed = await client.post(LOGIN, json={"email": ADMIN_EMAIL, "password": "wrong-password"})
            assert failed.status_code == 401
            await log_in(client)


async def test_login_attempts_per_address_are_limited(clean_database: None, make_settings: Any) -> None:
    async with AsyncTestClient(create_app(make_settings(login_ip_max_attempts=3))) as client:
        await log_in(client)
        assert (await client.post(LOGIN, json={"email": "a@windflow.test", "password": "x"})).status_code == 401
        await log_in(client)

        limited = await client.post(LOGIN, json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})

        assert_problem(limited, 429, "RATE_LIMITED")
        assert int(limited.headers["retry-after"]) > 0


async def test_account_lock_is_shared_through_redis(clean_database: None, make_settings: Any, redis_url: str) -> None:
    settings = make_settings(redis_url=redis_url, login_max_failures=2)
    email = f"lock-{uuid.uuid4().hex[:12]}@windflow.test"
    # App B starts first: Piccolo binds tables to the newest engine, so A (started last) owns the
    # database while B only answers from the lock, which it can learn of only through Redis.
    async with AsyncTestClient(create_app(settings)) as app_b, AsyncTestClient(create_app(settings)) as app_a:
        app_a.headers.update(await headers_for(app_a, {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        user = await make_user(app_a, "viewer", email=email)
        for _ in range(2):
            failed = await app_a.post(LOGIN, json={"email": email, "password": "wrong-password"})
            assert_problem(failed, 401, "AUTH_INVALID")

        locked = await app_b.post(LOGIN, json={"email": email, "password": user["password"]})

        body = assert_problem(locked, 429, "ACCOUNT_LOCKED")
        assert "locked" in body["detail"]
        assert int(locked.headers["retry-after"]) > 0
        also_locked = await app_a.post(LOGIN, json={"email": email, "password": user["password"]})
        assert_problem(also_locked, 429, "ACCOUNT_LOCKED")


# /users/me


async def test_me_shows_memberships_and_current_organization(admin_client: AsyncTestClient[Any]) -> None:
    response = await admin_client.get(ME)

    assert response.status_code == 200
    me = response.json()
    assert me["email"] == ADMIN_EMAIL
    assert me["is_superadmin"] is True
    assert me["role"] == "admin"
    (membership,) = me["memberships"]
    assert membership["organization_name"] == "Default"
    assert membership["role"] == "admin"
    assert me["current_organization_id"] == membership["organization_id"]


async def test_password_change_needs_the_current_password(admin_client: AsyncTestClient[Any]) -> None:
    user = await make_user(admin_client, "viewer")
    headers = await headers_for(admin_client, user)

    for body in ({"password": "new-password-1"}, {"password": "new-password-1", "current_password": "wrong-one"}):
        response = await admin_client.patch(ME, json=body, headers=headers)
        problem = assert_problem(response, 422, "VALIDATION_ERROR")
        assert problem["errors"][0]["field"] == "body.current_password"

    await log_in(admin_client, user["email"], user["password"])


async def test_password_change_revokes_refresh_tokens(admin_client: AsyncTestClient[Any]) -> None:
    user = await make_user(admin_client, "viewer")
    tokens = await log_in(admin_client, user["email"], user["password"])

    response = await admin_client.patch(
        ME,
        json={"password": "brand-new-password", "current_password": user["password"]},
        headers=bearer(tokens["access_token"]),
    )
    assert response.status_code == 200, response.text

    assert_problem(await refresh(admin_client, tokens["refresh_token"]), 401, "AUTH_INVALID")
    old = await admin_client.post(LOGIN, json={"email": user["email"], "password": user["password"]})
    assert old.status_code == 401
    await log_in(admin_client, user["email"], "brand-new-password")


async def test_current_organization_must_be_one_of_yours(admin_client: AsyncTestClient[Any]) -> None:
    user = await make_user(admin_client, "viewer")
    headers = await headers_for(admin_client, user)
    elsewhere = await make_organization(admin_client)

    response = await admin_client.patch(ME, json={"current_organization_id": elsewhere["id"]}, headers=headers)

    problem = assert_problem(response, 422, "VALIDATION_ERROR")
    assert problem["errors"][0]["field"] == "body.current_organization_id"
    me = (await admin_client.get(ME, headers=headers)).json()
    assert me["current_organization_id"] != elsewhere["id"]


async def test_switching_current_organization_sticks(admin_client: AsyncTestClient[Any]) -> None:
    user = await make_user(admin_client, "viewer")
    headers = await headers_for(admin_client, user)
    second = await make_organization(admin_client)
    added = await admin_client.post(
        f"/api/v1/organizations/{second['id']}/members", json={"user_id": user["id"], "role": "operator"}
    )
    assert added.status_code == 201, added.text

    response = await admin_client.patch(ME, json={"current_organization_id": second["id"]}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["current_organization_id"] == second["id"]

    me = (await admin_client.get(ME, headers=headers)).json()
    assert me["current_organization_id"] == second["id"]
    assert me["role"] == "operator"
    assert {m["organization_id"] for m in me["memberships"]} >= {second["id"]}
    assert len(me["memberships"]) == 2


async def test_organization_header_for_a_foreign_organization_is_not_found(
    admin_client: AsyncTestClient[Any],
) -> None:
    user = await make_user(admin_client, "viewer")
    headers = await headers_for(admin_client, user)
    own = (await admin_client.get(ME, headers=headers)).json()["current_organization_id"]
    elsewhere = await make_organization(admin_client)

    response = await admin_client.get(ME, headers={**headers, "X-Organization-ID": elsewhere["id"]})

    assert_problem(response, 404, "NOT_FOUND")
    chosen = await admin_client.get(ME, headers={**headers, "X-Organization-ID": own})
    assert chosen.status_code == 200
    assert chosen.json()["current_organization_id"] == own
