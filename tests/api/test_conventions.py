"""The HTTP conventions every endpoint shares: problem+json errors, validation paths, paging,
request ids, security headers, CORS, Idempotency-Key, rate limiting and the OpenAPI document."""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from litestar import get
from litestar.testing import AsyncTestClient, create_test_client

from server.api.problems import EXCEPTION_HANDLERS
from server.app import create_app
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.factories import PASSWORD, headers_for, login, make_user

USERS = "/api/v1/users"
PROBLEM_KEYS = {"status", "title", "detail", "code", "request_id"}
SECURITY_HEADERS = ("x-content-type-options", "x-frame-options", "referrer-policy", "content-security-policy")


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body.keys() >= PROBLEM_KEYS, body
    assert body["status"] == status
    assert body["code"] == code
    assert body["code"].isupper()
    assert body["title"]
    assert body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body


def fields_of(body: dict[str, Any]) -> list[str]:
    return [error["field"] for error in body.get("errors", [])]


def new_user_body(**overrides: Any) -> dict[str, Any]:
    return {"email": f"u{uuid.uuid4().hex[:12]}@windflow.test", "password": PASSWORD, "role": "viewer", **overrides}


# --- request bodies ------------------------------------------------------------------------


async def test_malformed_json_is_400(admin_client: AsyncTestClient[Any]) -> None:
    response = await admin_client.post(
        USERS, content=b'{"email": "a@b.cd", ', headers={"content-type": "application/json"}
    )
    assert_problem(response, 400, "MALFORMED_REQUEST")


async def test_wrong_type_names_the_field(admin_client: AsyncTestClient[Any]) -> None:
    response = await admin_client.post(USERS, json=new_user_body(email=5))
    body = assert_problem(response, 422, "VALIDATION_ERROR")
    assert fields_of(body) == ["body.email"]
    assert body["errors"][0]["message"]


async def test_unknown_field_is_rejected(admin_client: AsyncTestClient[Any]) -> None:
    response = await admin_client.post(USERS, json=new_user_body(zzz=1))
    body = assert_problem(response, 422, "VALIDATION_ERROR")
    assert fields_of(body) == ["body.zzz"]


async def test_missing_field_names_the_field(admin_client: AsyncTestClient[Any]) -> None:
    body = new_user_body()
    del body["email"]
    response = await admin_client.post(USERS, json=body)
    problem = assert_problem(response, 422, "VALIDATION_ERROR")
    assert fields_of(problem) == ["body.email"]


async def test_invalid_value_names_the_field(admin_client: AsyncTestClient[Any]) -> None:
    response = await admin_client.post(USERS, json=new_user_body(role="emperor"))
    body = assert_problem(response, 422, "VALIDATION_ERROR")
    assert fields_of(body) == ["body.role"]


async def test_nothing_is_created_by_a_rejected_body(admin_client: AsyncTestClient[Any]) -> None:
    await admin_client.post(USERS, json=new_user_body(zzz=1))
    assert (await admin_client.get(USERS)).json()["total"] == 1


async def test_oversize_body_is_413(clean_database: None, make_settings: Any) -> None:
    async with AsyncTestClient(create_app(make_settings(max_body_size=1000))) as client:
        client.headers.update(await login(client, ADMIN_EMAIL, ADMIN_PASSWORD))
        big = new_user_body(full_name="x" * 1500)
        body = assert_problem(await client.post(USERS, json=big), 413, "PAYLOAD_TOO_LARGE")
        assert "1000" in body["detail"]
        # Also through the Idempotency-Key path, which reads the body itself.
        response = await client.post(USERS, json=big, headers={"Idempotency-Key": "big-1"})
        assert_problem(response, 413, "PAYLOAD_TOO_LARGE")
        # And on a public endpoint, before any authentication.
        response = await client.post(
            "/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": "p" * 2000}, headers={"Authorization": ""}
        )
        assert_problem(response, 413, "PAYLOAD_TOO_LARGE")
        # A body under the limit still works on the same app.
        assert (await client.post(USERS, json=new_user_body())).status_code == 201


# --- paging --------------------------------------------------------------------------------


async def test_bad_paging_is_422_on_the_query_field(admin_client: AsyncTestClient[Any]) -> None:
    cases = {
        "size=0": "query.size",
        "size=101": "query.size",
        f"size={10**9}": "query.size",
        "size=two": "query.size",
        "page=0": "query.page",
        "page=-1": "query.page",
        "page=1.5": "query.page",
        "page=first": "query.page",
    }
    for query, field in cases.items():
        response = await admin_client.get(f"{USERS}?{query}")
        body = assert_problem(response, 422, "VALIDATION_ERROR")
        assert fields_of(body) == [field], query


async def test_list_envelope_pages_through_everything(admin_client: AsyncTestClient[Any]) -> None:
    created = [await make_user(admin_client) for _ in range(3)]

    first = await admin_client.get(f"{USERS}?size=2")
    assert first.status_code == 200
    page1 = first.json()
    assert set(page1) == {"items", "total", "page", "size"}
    assert (page1["total"], page1["page"], page1["size"], len(page1["items"])) == (4, 1, 2, 2)

    page2 = (await admin_client.get(f"{USERS}?size=2&page=2")).json()
    assert (page2["total"], page2["page"], page2["size"], len(page2["items"])) == (4, 2, 2, 2)

    page3 = (await admin_client.get(f"{USERS}?size=2&page=3")).json()
    assert page3["items"] == []
    assert page3["total"] == 4

    ids = [item["id"] for item in page1["items"] + page2["items"]]
    assert len(set(ids)) == 4
    assert {user["id"] for user in created} < set(ids)

    default = (await admin_client.get(USERS)).json()
    assert (default["page"], default["size"], len(default["items"])) == (1, 20, 4)


# --- request ids and headers ---------------------------------------------------------------


async def test_request_id_is_echoed(client: AsyncTestClient[Any]) -> None:
    response = await client.get("/api/v1/health", headers={"X-Request-ID": "trace-abc.123:x_y-z"})
    assert response.headers["x-request-id"] == "trace-abc.123:x_y-z"
    problem = await client.get(USERS, headers={"X-Request-ID": "my-request-1"})
    body = assert_problem(problem, 401, "AUTH_INVALID")
    assert body["request_id"] == "my-request-1"


async def test_request_id_is_generated(client: AsyncTestClient[Any]) -> None:
    first = await client.get("/api/v1/health")
    second = await client.get("/api/v1/health")
    for response in (first, second):
        request_id = response.headers["x-request-id"]
        assert uuid.UUID(hex=request_id).hex == request_id
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    body = assert_problem(await client.get("/api/v1/nowhere"), 404, "NOT_FOUND")
    assert uuid.UUID(hex=body["request_id"])


async def test_invalid_request_id_is_replaced(client: AsyncTestClient[Any]) -> None:
    for sent in ("a" * 200, "has spaces in it", "semi;colon", "<script>"):
        response = await client.get(USERS, headers={"X-Request-ID": sent})
        request_id = response.headers["x-request-id"]
        assert request_id != sent
        assert uuid.UUID(hex=request_id).hex == request_id
        assert response.json()["request_id"] == request_id
        assert response.headers.get_list("x-request-id") == [request_id]


async def test_security_headers_on_every_kind_of_response(admin_client: AsyncTestClient[Any]) -> None:
    ok = await admin_client.get(USERS)
    missing = await admin_client.get("/api/v1/no-such-thing")
    unauthenticated = await admin_client.get(USERS, headers={"Authorization": ""})
    invalid = await admin_client.post(USERS, json={})
    assert [r.status_code for r in (ok, missing, unauthenticated, invalid)] == [200, 404, 401, 422]
    for response in (ok, missing, unauthenticated, invalid):
        headers = response.headers
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"]
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert "strict-transport-security" not in headers
    assert "default-src 'none'" in ok.headers["content-security-policy"]


async def test_hsts_only_over_https(clean_database: None, make_settings: Any) -> None:
    app = create_app(make_settings())
    async with AsyncTestClient(app, base_url="https://testserver.local") as secure:
        for response in (await secure.get("/api/v1/health"), await secure.get(USERS)):
            assert "max-age=" in response.headers["strict-transport-security"]
            for name in SECURITY_HEADERS:
                assert name in response.headers
    async with AsyncTestClient(app, base_url="http://testserver.local") as plain:
        response = await plain.get("/api/v1/health")
        assert response.status_code == 200
        assert "strict-transport-security" not in response.headers


# --- CORS ----------------------------------------------------------------------------------


def preflight(origin: str) -> dict[str, str]:
    return {"Origin": origin, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}


async def test_cors_is_off_by_default(client: AsyncTestClient[Any]) -> None:
    response = await client.options(USERS, headers=preflight("https://ui.example"))
    assert "access-control-allow-origin" not in response.headers
    response = await client.get("/api/v1/health", headers={"Origin": "https://ui.example"})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


async def test_cors_allows_only_configured_origins(clean_database: None, make_settings: Any) -> None:
    settings = make_settings(cors_origins=("https://ui.example",))
    async with AsyncTestClient(create_app(settings)) as client:
        allowed = await client.options(USERS, headers=preflight("https://ui.example"))
        assert allowed.status_code < 300
        assert allowed.headers["access-control-allow-origin"] == "https://ui.example"
        assert "GET" in allowed.headers["access-control-allow-methods"]

        simple = await client.get("/api/v1/health", headers={"Origin": "https://ui.example"})
        assert simple.headers["access-control-allow-origin"] == "https://ui.example"

        other = await client.options(USERS, headers=preflight("https://evil.example"))
        assert other.headers.get("access-control-allow-origin") != "https://evil.example"
        assert other.headers.get("access-control-allow-origin") != "*"
        simple_other = await client.get("/api/v1/health", headers={"Origin": "https://evil.example"})
        assert simple_other.headers.get("access-control-allow-origin") in (None, "https://ui.example")


# --- Idempotency-Key -----------------------------------------------------------------------


async def user_total(client: AsyncTestClient[Any]) -> int:
    response = await client.get(USERS)
    assert response.status_code == 200
    return int(response.json()["total"])


async def test_idempotency_key_replays_the_first_response(admin_client: AsyncTestClient[Any]) -> None:
    body = new_user_body()
    key = {"Idempotency-Key": "create-user-1"}
    first = await admin_client.post(USERS, json=body, headers=key)
    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers

    again = await admin_client.post(USERS, json=body, headers=key)
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert again.headers["content-type"] == first.headers["content-type"]
    assert again.headers["x-request-id"] != first.headers["x-request-id"]
    assert await user_total(admin_client) == 2

    # Without the key the same body is a new request, and a duplicate.
    duplicate = await admin_client.post(USERS, json=body)
    assert_problem(duplicate, 409, "CONFLICT")


async def test_idempotency_key_replays_an_error_too(admin_client: AsyncTestClient[Any]) -> None:
    key = {"Idempotency-Key": "bad-role"}
    first = await admin_client.post(USERS, json=new_user_body(email="same@windflow.test", role="emperor"), headers=key)
    assert_problem(first, 422, "VALIDATION_ERROR")
    again = await admin_client.post(USERS, json=new_user_body(email="same@windflow.test", role="emperor"), headers=key)
    assert again.status_code == 422
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"


async def test_idempotency_key_with_another_body_conflicts(admin_client: AsyncTestClient[Any]) -> None:
    key = {"Idempotency-Key": "create-user-2"}
    assert (await admin_client.post(USERS, json=new_user_body(), headers=key)).status_code == 201
    other = await admin_client.post(USERS, json=new_user_body(), headers=key)
    body = assert_problem(other, 409, "CONFLICT")
    assert "Idempotency-Key" in body["detail"]
    assert await user_total(admin_client) == 2


async def test_idempotency_keys_belong_to_their_user(admin_client: AsyncTestClient[Any]) -> None:
    other_admin = await make_user(admin_client, "admin")
    other_headers = await headers_for(admin_client, other_admin)
    key = "shared-key"

    mine = await admin_client.post(USERS, json=new_user_body(), headers={"Idempotency-Key": key})
    theirs = await admin_client.post(USERS, json=new_user_body(), headers={**other_headers, "Idempotency-Key": key})
    assert mine.status_code == theirs.status_code == 201
    assert "idempotent-replayed" not in theirs.headers
    assert mine.json()["id"] != theirs.json()["id"]
    assert await user_total(admin_client) == 4


async def test_idempotency_key_is_scoped_to_the_path(admin_client: AsyncTestClient[Any]) -> None:
    key = {"Idempotency-Key": "scoped"}
    user = await admin_client.post(USERS, json=new_user_body(), headers=key)
    token = await admin_client.post("/api/v1/tokens", json={"name": "ci"}, headers=key)
    assert user.status_code == token.status_code == 201
    assert "idempotent-replayed" not in token.headers
    assert "token" in token.json()


async def test_invalid_idempotency_key_is_422(admin_client: AsyncTestClient[Any]) -> None:
    for key in ("k" * 300, "has space"):
        response = await admin_client.post(USERS, json=new_user_body(), headers={"Idempotency-Key": key})
        body = assert_problem(response, 422, "VALIDATION_ERROR")
        assert fields_of(body) == ["header.Idempotency-Key"]
    assert await user_total(admin_client) == 1


# --- rate limiting -------------------------------------------------------------------------


async def test_global_rate_limit(clean_database: None, make_settings: Any) -> None:
    async with AsyncTestClient(create_app(make_settings(rate_limit=5))) as client:
        client.headers.update(await login(client, ADMIN_EMAIL, ADMIN_PASSWORD))  # request 1
        statuses = [(await client.get("/api/v1/users/me")).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 200]

        limited = await client.get("/api/v1/users/me")
        assert_problem(limited, 429, "RATE_LIMITED")
        assert int(limited.headers["retry-after"]) > 0
        assert limited.headers["x-content-type-options"] == "nosniff"
        assert_problem(await client.get(USERS), 429, "RATE_LIMITED")

        for _ in range(3):
            assert (await client.get("/api/v1/health")).status_code == 200
        assert (await client.get("/api/v1/health/ready")).status_code == 200
        assert (await client.get("/metrics")).status_code == 200


# --- routing errors ------------------------------------------------------------------------


async def test_unknown_path_is_404_problem(admin_client: AsyncTestClient[Any]) -> None:
    assert_problem(await admin_client.get("/api/v1/does-not-exist"), 404, "NOT_FOUND")
    assert_problem(await admin_client.get(f"{USERS}/{uuid.uuid4()}"), 404, "NOT_FOUND")


async def test_wrong_method_is_405_problem(admin_client: AsyncTestClient[Any]) -> None:
    assert_problem(await admin_client.put(USERS, json={}), 405, "METHOD_NOT_ALLOWED")
    assert_problem(await admin_client.delete("/api/v1/health"), 405, "METHOD_NOT_ALLOWED")


async def test_unauthenticated_is_401_problem(client: AsyncTestClient[Any]) -> None:
    assert_problem(await client.get(USERS), 401, "AUTH_INVALID")
    assert_problem(await client.get(USERS, headers={"Authorization": "Bearer nonsense"}), 401, "AUTH_INVALID")


# --- OpenAPI -------------------------------------------------------------------------------


async def test_openapi_document_is_public_and_complete(client: AsyncTestClient[Any]) -> None:
    response = await client.get("/api/schema/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    operations = [
        (method, path, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]
    assert len(operations) >= 20
    ids = [operation.get("operationId") for _, _, operation in operations]
    assert all(ids), [f"{m} {p}" for m, p, o in operations if not o.get("operationId")]
    assert len(set(ids)) == len(ids)
    for method, path, operation in operations:
        where = f"{method.upper()} {path}"
        assert operation.get("summary"), where
        problem_responses = [
            status
            for status, spec in operation.get("responses", {}).items()
            if status.startswith("4") and "application/problem+json" in spec.get("content", {})
        ]
        assert problem_responses, where
    assert "/api/v1/users" in schema["paths"]
    assert "/api/v1/health" in schema["paths"]


async def test_api_docs_serve_html(client: AsyncTestClient[Any]) -> None:
    redirect = await client.get("/api/docs", follow_redirects=False)
    assert redirect.status_code in (301, 302, 307, 308)
    page = await client.get(redirect.headers["location"])
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "<html" in page.text.lower()
    followed = await client.get("/api/docs", follow_redirects=True)
    assert followed.status_code == 200
    assert followed.headers["content-type"].startswith("text/html")


async def test_an_empty_body_is_named_as_such(admin_client: AsyncTestClient[Any]) -> None:
    response = await admin_client.post("/api/v1/users", content=b"", headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "body", "message": "a JSON body is required"}]


@pytest.mark.parametrize(
    "error",
    [
        sqlite3.IntegrityError("UNIQUE constraint failed: inventory.organization, inventory.name"),
        asyncpg.exceptions.UniqueViolationError("duplicate key value violates unique constraint"),
        asyncpg.exceptions.ForeignKeyViolationError("violates foreign key constraint"),
    ],
)
def test_a_constraint_that_catches_a_race_answers_409(error: Exception) -> None:
    """Two requests can both pass a service's "name free?" check; the index then decides, with a 409."""

    @get("/race", opt={"public": True}, sync_to_thread=False)
    def race() -> None:
        raise error

    with create_test_client([race], exception_handlers=EXCEPTION_HANDLERS) as client:
        response = client.get("/race")
    assert response.status_code == 409
    assert response.json()["code"] == "CONFLICT" and "constraint" not in response.text
