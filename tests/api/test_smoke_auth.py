from typing import Any

from litestar.testing import AsyncTestClient

from tests.factories import headers_for, make_user


async def test_me_after_login(admin_client: AsyncTestClient[Any]) -> None:
    response = await admin_client.get("/api/v1/users/me")
    assert response.status_code == 200
    assert response.json()["email"] == "admin@windflow.test"
    viewer = await make_user(admin_client, "viewer")
    headers = await headers_for(admin_client, viewer)
    response = await admin_client.get("/api/v1/users/me", headers=headers)
    assert response.json()["role"] == "viewer"
