"""JSON access logs without secrets, Prometheus metrics by route template, liveness and readiness."""

from __future__ import annotations

import io
import json
import logging
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from server.app import create_app
from server.observability import JsonFormatter
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.factories import PASSWORD, headers_for, make_user

DOWN_REDIS = "redis://127.0.0.1:1/0"


class JsonLog:
    """Every record of every logger, formatted as the server formats it in production."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]

    def access(self) -> list[dict[str, Any]]:
        return [e for e in self.entries() if e["logger"] == "windflow.access"]


@pytest.fixture
def json_log() -> Iterator[JsonLog]:
    log = JsonLog()
    handler = logging.StreamHandler(log.stream)
    handler.setFormatter(JsonFormatter())
    handler.setLevel(logging.DEBUG)
    # Everything the server side logs, down to SQL; the test client's own httpx lines are not the server's.
    levels = {"": logging.DEBUG, "piccolo": logging.DEBUG, "server": logging.DEBUG, "httpx": logging.WARNING}
    saved = {name: logging.getLogger(name or None).level for name in levels}
    logging.getLogger().addHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name or None).setLevel(level)
    try:
        yield log
    finally:
        logging.getLogger().removeHandler(handler)
        for name, level in saved.items():
            logging.getLogger(name or None).setLevel(level)


# --- logs ----------------------------------------------------------------------------------


async def test_access_line_carries_the_request_context(admin_client: AsyncTestClient[Any], json_log: JsonLog) -> None:
    me = (await admin_client.get("/api/v1/users/me")).json()
    user_id = str(uuid.uuid4())
    response = await admin_client.get(f"/api/v1/users/{user_id}", headers={"X-Request-ID": "obs-test-1"})
    assert response.status_code == 404

    lines = [e for e in json_log.access() if e.get("request_id") == "obs-test-1"]
    assert len(lines) == 1
    line = lines[0]
    assert line["level"] == "info"
    assert line["method"] == "GET"
    assert line["path"] == f"/api/v1/users/{user_id}"
    assert line["status"] == 404
    assert line["user_id"] == me["id"]
    assert isinstance(line["duration_ms"], int | float)
    assert line["duration_ms"] >= 0
    assert line["time"]


async def test_access_line_of_each_request_matches_its_header(
    admin_client: AsyncTestClient[Any], json_log: JsonLog
) -> None:
    responses = [
        await admin_client.get("/api/v1/users"),
        await admin_client.post("/api/v1/users", json={"zzz": 1}),
        await admin_client.get("/nowhere"),
    ]
    by_id = {e["request_id"]: e for e in json_log.access()}
    for response in responses:
        line = by_id[response.headers["x-request-id"]]
        assert line["status"] == response.status_code
        assert line["path"] == response.request.url.path
        assert line["method"] == response.request.method


async def test_anonymous_access_line_has_no_user(client: AsyncTestClient[Any], json_log: JsonLog) -> None:
    response = await client.get("/api/v1/users")
    assert response.status_code == 401
    line = next(e for e in json_log.access() if e["request_id"] == response.headers["x-request-id"])
    assert line["status"] == 401
    assert "user_id" not in line


async def test_user_id_does_not_leak_into_the_next_request(
    admin_client: AsyncTestClient[Any], json_log: JsonLog
) -> None:
    await admin_client.get("/api/v1/users/me")
    anonymous = await admin_client.get("/api/v1/health", headers={"Authorization": ""})
    line = next(e for e in json_log.access() if e["request_id"] == anonymous.headers["x-request-id"])
    assert "user_id" not in line


async def test_secrets_never_reach_the_logs(client: AsyncTestClient[Any], json_log: JsonLog) -> None:
    wrong = await client.post("/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": "wrong-password-99"})
    assert wrong.status_code == 401
    login = await client.post("/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert login.status_code == 200
    tokens = login.json()
    admin = {"Authorization": f"Bearer {tokens['access_token']}"}

    member = await make_user(client, "viewer", headers=admin)
    member_headers = await headers_for(client, member)
    api_token = (await client.post("/api/v1/tokens", json={"name": "ci"}, headers=admin)).json()["token"]
    assert (await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {api_token}"})).status_code == 200
    assert (await client.get("/api/v1/users", headers=admin)).status_code == 200
    assert (await client.get("/api/v1/users/me", headers=member_headers)).status_code == 200
    refreshed = await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200
    new_password = "changed-password-77"
    changed = await client.patch(
        "/api/v1/users/me", json={"password": new_password, "current_password": PASSWORD}, headers=member_headers
    )
    assert changed.status_code == 200
    logout = await client.post("/api/v1/auth/logout", json={"refresh_token": refreshed.json()["refresh_token"]})
    assert logout.status_code == 204

    assert json_log.access(), "nothing was logged"
    secrets = {
        "admin password": ADMIN_PASSWORD,
        "wrong password": "wrong-password-99",
        "member password": PASSWORD,
        "new password": new_password,
        "access token": tokens["access_token"],
        "refresh token": tokens["refresh_token"],
        "refreshed access token": refreshed.json()["access_token"],
        "refreshed refresh token": refreshed.json()["refresh_token"],
        "api token": api_token,
        "member token": member_headers["Authorization"].removeprefix("Bearer "),
    }
    for name, secret in secrets.items():
        assert secret not in json_log.text, f"the {name} was logged"


# --- metrics -------------------------------------------------------------------------------


def samples(text: str, name: str) -> list[dict[str, str]]:
    """The label sets of the samples called ``name`` in Prometheus text."""
    found = []
    for line in text.splitlines():
        if line.startswith(name + "{"):
            labels = line[len(name) + 1 : line.rindex("}")]
            found.append(dict(re.findall(r'(\w+)="([^"]*)"', labels)))
    return found


async def test_metrics_are_prometheus_text_by_route_template(admin_client: AsyncTestClient[Any]) -> None:
    some_id = uuid.uuid4()
    assert (await admin_client.get("/api/v1/users")).status_code == 200
    assert (await admin_client.get(f"/api/v1/users/{some_id}")).status_code == 404
    assert (await admin_client.get(f"/api/v1/users/{uuid.uuid4()}")).status_code == 404
    assert (await admin_client.get("/api/no/such/path")).status_code == 404

    response = await admin_client.get("/metrics", headers={"Authorization": ""})
    assert response.status_code == 200
    content_type = response.headers["content-type"]
    assert content_type.startswith("text/plain")
    assert "version=0.0.4" in content_type
    assert content_type.count("charset") == 1
    text = response.text
    assert "# TYPE windflow_http_requests_total counter" in text
    assert "# TYPE windflow_http_request_duration_seconds histogram" in text

    requests = samples(text, "windflow_http_requests_total")
    assert {"method": "GET", "route": "/api/v1/users", "status": "200"} in requests
    by_id = [s for s in requests if s["route"].startswith("/api/v1/users/") and s["status"] == "404"]
    assert len(by_id) == 1
    assert "{" in by_id[0]["route"]
    assert str(some_id) not in text
    assert "/api/no/such/path" not in text

    buckets = samples(text, "windflow_http_request_duration_seconds_bucket")
    users_buckets = [b for b in buckets if b["route"] == "/api/v1/users" and b["method"] == "GET"]
    assert {b["le"] for b in users_buckets} >= {"0.005", "0.1", "1.0", "+Inf"}
    assert 'windflow_http_request_duration_seconds_count{method="GET",route="/api/v1/users"} 1.0' in text


async def test_metrics_count_every_request(client: AsyncTestClient[Any]) -> None:
    for _ in range(3):
        await client.get("/api/v1/health")
    text = (await client.get("/metrics")).text
    assert 'windflow_http_requests_total{method="GET",route="/api/v1/health",status="200"} 3.0' in text


# --- health --------------------------------------------------------------------------------


async def test_liveness(client: AsyncTestClient[Any]) -> None:
    response = await client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["status"] == "ok"


async def test_readiness_without_redis(client: AsyncTestClient[Any]) -> None:
    response = await client.get("/api/v1/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok"}}


async def test_readiness_with_redis(clean_database: None, make_settings: Any, redis_url: str) -> None:
    async with AsyncTestClient(create_app(make_settings(redis_url=redis_url))) as client:
        response = await client.get("/api/v1/health/ready")
        assert response.status_code == 200
        assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


async def test_readiness_when_redis_is_down(clean_database: None, make_settings: Any) -> None:
    async with AsyncTestClient(create_app(make_settings(redis_url=DOWN_REDIS))) as client:
        response = await client.get("/api/v1/health/ready")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] != "ok"
        assert body["checks"]["database"] == "ok"
        assert body["checks"]["redis"].startswith("down")
        # Liveness does not depend on Redis.
        assert (await client.get("/api/v1/health")).status_code == 200
