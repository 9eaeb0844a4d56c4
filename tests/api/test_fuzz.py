"""Schemathesis fuzzes every operation of the OpenAPI document against a real uvicorn server.

Two promises are checked on every response: never a 5xx, and every 4xx is problem+json. Each
operation gets random inputs (valid and invalid), and those with path parameters also get valid
bodies aimed at real objects, so the handlers run and not only the router's 404. Deletes run last.
"""

from __future__ import annotations

from typing import Any

import hypothesis
import requests
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error

from server.app import create_app
from tests.assistant.conftest import llm_settings
from tests.assistant.scripted_llm import Reply, ScriptedLLM
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.serving import serving

EXAMPLES = 20
FUZZ_SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
)
# The order operations run in: reads, then writes, then removals, and the organization last. The
# assistant's settings come late: a fuzzed api_base must never be asked anything (only 127.0.0.1 is).
LAST = ("putAssistantSettings", "removeMember", "revokeApiToken", "deleteUser", "deleteOrganization")


def header(response: schemathesis.Response, name: str) -> str:
    values = next((v for k, v in response.headers.items() if k.lower() == name), [])
    return ", ".join(values)


def check_problem_json(response: schemathesis.Response) -> None:
    if 400 <= response.status_code < 500:
        content_type = header(response, "content-type")
        assert content_type.startswith("application/problem+json"), (response.status_code, content_type)
        body = response.json()
        assert body["status"] == response.status_code
        assert body["code"].isupper()
        assert body["request_id"] == header(response, "x-request-id")


def order_of(operation: APIOperation) -> tuple[int, str]:
    operation_id = operation.definition.raw.get("operationId", "")
    if operation_id in LAST:
        return (1 + LAST.index(operation_id), operation_id)
    return (0, operation_id)


def make_world(session: requests.Session, base_url: str, auth: dict[str, str]) -> dict[str, dict[str, str]]:
    """Real ids for path parameters, per path prefix: the admin's organization, two members (one
    for the user routes, one for the member routes, so deleting one leaves the other) and a token."""

    def create(path: str, body: dict[str, Any]) -> str:
        response = session.post(f"{base_url}/api/v1/{path}", json=body, headers=auth)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    me = session.get(f"{base_url}/api/v1/users/me", headers=auth)
    assert me.status_code == 200, me.text
    org_id = me.json()["current_organization_id"]
    member = {"password": "member-password-1", "role": "viewer"}
    return {
        "/api/v1/users": {"user_id": create("users", {**member, "email": "fuzz-user@windflow.test"})},
        "/api/v1/organizations": {
            "org_id": org_id,
            "user_id": create("users", {**member, "email": "fuzz-member@windflow.test"}),
        },
        "/api/v1/tokens": {"token_id": create("tokens", {"name": "fuzz"})},
    }


def strategy_for(operation: APIOperation, world: dict[str, dict[str, str]]) -> st.SearchStrategy[Case]:
    strategies = [operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)]
    ids = next((ids for prefix, ids in world.items() if operation.path.startswith(prefix)), {})
    names = [p.name for p in operation.path_parameters]
    if names and all(name in ids for name in names):
        real = {name: ids[name] for name in names}
        strategies.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=real))
    return st.one_of(strategies)


def fuzz(
    operation: APIOperation,
    world: dict[str, dict[str, str]],
    session: requests.Session,
    base_url: str,
    auth: dict[str, str],
) -> int:
    calls = 0

    @FUZZ_SETTINGS
    @given(case=strategy_for(operation, world))
    def run(case: Case) -> None:
        nonlocal calls
        calls += 1
        response = case.call(base_url=base_url, session=session, headers=auth, timeout=30)
        case.validate_response(response, checks=[not_a_server_error])
        check_problem_json(response)

    run()
    return calls


def test_every_operation_survives_fuzzing(clean_database: None, make_settings: Any, scripted_llm: ScriptedLLM) -> None:
    scripted_llm.responder = lambda body: Reply(text="ok")  # the assistant answers every fuzzed message
    settings = make_settings(**llm_settings(scripted_llm))
    with serving(create_app(settings)) as base_url, requests.Session() as session:
        login = session.post(f"{base_url}/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        assert login.status_code == 200, login.text
        auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
        world = make_world(session, base_url, auth)

        schema = schemathesis.openapi.from_url(f"{base_url}/api/schema/openapi.json")
        operations = sorted((result.ok() for result in schema.get_all_operations()), key=order_of)
        operation_ids = [order_of(operation)[1] for operation in operations]
        assert len(operations) >= 20
        assert {"listUsers", "createUser", "login", "getReadiness", "deleteOrganization"} <= set(operation_ids)
        assert operation_ids[-1] == "deleteOrganization"

        failures = []
        for operation in operations:
            try:
                calls = fuzz(operation, world, session, base_url, auth)
            except Exception as exc:  # noqa: BLE001 - collect every operation's failure, then report all
                failures.append(f"{operation.label}: {type(exc).__name__}: {exc}")
            else:
                assert calls, f"{operation.label} was never called"  # few when there is nothing to vary
        assert not failures, "\n\n".join(failures)
