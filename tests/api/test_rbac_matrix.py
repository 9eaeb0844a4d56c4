"""Role x endpoint: what each kind of caller gets from every guarded endpoint.

Callers: ``admin``, ``operator`` and ``viewer`` of organization A (none a superadmin), ``outsider``
(admin of organization B only), ``anonymous`` (no token) and ``superadmin``. Objects live in A, so
the outsider must get 404 (never 403: existence is not revealed) wherever the route names one.
The assistant answers through the scripted OpenAI-protocol server; its conversation and proposal
belong to A's viewer, so other members get 404 except an admin reading for audit.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from server.app import create_app
from tests.assistant.conftest import GOOD_PLAYBOOK, fenced, llm_settings
from tests.assistant.scripted_llm import Reply, ScriptedLLM
from tests.factories import headers_for, make_organization, make_user

ROLES = ("admin", "operator", "viewer", "outsider", "anonymous", "superadmin")
ALL_USERS = {"admin": 200, "operator": 200, "viewer": 200, "outsider": 200, "anonymous": 401, "superadmin": 200}


def expect(admin: int, operator: int, viewer: int, outsider: int, superadmin: int | None = None) -> dict[str, int]:
    return {
        "admin": admin,
        "operator": operator,
        "viewer": viewer,
        "outsider": outsider,
        "anonymous": 401,
        "superadmin": admin if superadmin is None else superadmin,
    }


@dataclass
class World:
    client: AsyncTestClient[Any]
    org_a: str
    org_b: str
    headers: dict[str, dict[str, str]]
    member: dict[str, Any]
    superadmin_headers: dict[str, str] = field(default_factory=dict)
    inventory: str = ""
    credential: str = ""
    playbook: str = ""
    run: str = ""
    stack: str = ""
    deployment: str = ""
    local_inventory: str = ""
    conversation: str = ""
    proposal: str = ""

    async def disposable_user(self, organization: str) -> str:
        """A fresh viewer, for calls that delete, demote or add their target."""
        headers = {**self.superadmin_headers, "X-Organization-ID": organization}
        return str((await make_user(self.client, "viewer", headers=headers))["id"])

    async def disposable(self, what: str) -> str:
        """A fresh user, inventory or credential of A, for calls that delete their target."""
        if what == "user":
            return await self.disposable_user(self.org_a)
        if what == "conversation":
            response = await self.client.post(
                "/api/v1/assistant/conversations", json={}, headers=self.headers["viewer"]
            )
            assert response.status_code == 201, response.text
            return str(response.json()["id"])
        headers = {**self.superadmin_headers, "X-Organization-ID": self.org_a}
        serial = uuid.uuid4().hex[:8]
        body = {"name": f"{what} {serial}"}
        if what == "credential":
            body |= {"kind": "password", "inputs": {"username": "deploy", "password": "matrix-secret"}}
        if what == "playbook":
            body |= {"content": "- hosts: all\n  gather_facts: false\n  tasks: []\n"}
        if what == "run":
            body = {"playbook_id": self.playbook, "inventory_id": self.inventory}
        if what == "stack":
            body |= {"compose": STACK_COMPOSE}
        if what == "deployment":
            body = {"inventory_id": self.inventory, "target": "docker", "name": f"matrix-{serial}"}
            response = await self.client.post(f"/api/v1/stacks/{self.stack}/deploy", json=body, headers=headers)
            assert response.status_code == 201, response.text
            return str(response.json()["deployment"]["id"])
        collection = {
            "inventory": "inventories",
            "credential": "credentials",
            "playbook": "playbooks",
            "run": "runs",
            "stack": "stacks",
        }[what]
        response = await self.client.post(f"/api/v1/{collection}", json=body, headers=headers)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    outcomes: dict[str, int]
    body: dict[str, Any] | None = None
    disposable: str = ""  # path takes {target}: a fresh user, inventory or credential of A per call
    adds_outsider: bool = False  # body names a fresh user of B, to be added to A

    async def url(self, world: World) -> str:
        target = await world.disposable(self.disposable) if self.disposable else ""
        return self.path.format(
            a=world.org_a,
            member=world.member["id"],
            target=target,
            inv=world.inventory,
            cred=world.credential,
            pb=world.playbook,
            run=world.run,
            stack=world.stack,
            dep=world.deployment,
            conv=world.conversation,
            prop=world.proposal,
        )

    async def payload(self, world: World, counter: list[int]) -> dict[str, Any] | None:
        if self.adds_outsider:
            return {"user_id": await world.disposable_user(world.org_b), "role": "viewer"}
        if self.method == "POST" and self.path == "/api/v1/runs":
            return {"playbook_id": world.playbook, "inventory_id": world.inventory}
        if self.method == "POST" and self.path.endswith("/check"):
            return {"inventory_id": world.local_inventory}
        if self.method == "POST" and self.path.endswith("/deploy"):
            return {"inventory_id": world.inventory, "target": "docker", "name": f"matrix-{new_email(counter)[6:-14]}"}
        if self.method == "POST" and self.path.endswith("/users"):
            return {**(self.body or {}), "email": new_email(counter)}
        if self.method == "POST" and self.path.endswith(
            ("/organizations", "/inventories", "/import", "/credentials", "/playbooks", "/stacks")
        ):
            return {**(self.body or {}), "name": new_email(counter)}
        return self.body


STACK_COMPOSE = "services:\n  web:\n    image: busybox:1\n"


def new_email(counter: list[int]) -> str:
    counter[0] += 1
    return f"matrix{counter[0]}@windflow.test"


CASES = [
    Case("GET", "/api/v1/users/me", ALL_USERS),
    Case("PATCH", "/api/v1/users/me", ALL_USERS, body={"full_name": "Someone"}),
    Case("GET", "/api/v1/users", expect(200, 200, 200, 200)),  # outsider sees B's users, not A's
    Case("POST", "/api/v1/users", expect(201, 403, 403, 201), body={"role": "viewer", "password": "password-123"}),
    Case("GET", "/api/v1/users/{member}", expect(200, 200, 200, 404)),
    Case("PATCH", "/api/v1/users/{member}", expect(200, 403, 403, 404), body={"full_name": "Renamed"}),
    Case("DELETE", "/api/v1/users/{target}", expect(204, 403, 403, 404), disposable="user"),
    Case("GET", "/api/v1/organizations", ALL_USERS),
    Case("POST", "/api/v1/organizations", expect(403, 403, 403, 403, superadmin=201), body={}),
    Case("GET", "/api/v1/organizations/{a}", expect(200, 200, 200, 404)),
    Case("PATCH", "/api/v1/organizations/{a}", expect(200, 403, 403, 404), body={"description": "changed"}),
    Case("GET", "/api/v1/organizations/{a}/members", expect(200, 200, 200, 404)),
    Case("POST", "/api/v1/organizations/{a}/members", expect(201, 403, 403, 404), adds_outsider=True),
    Case("GET", "/api/v1/organizations/{a}/members/{member}", expect(200, 200, 200, 404)),
    Case(
        "PATCH",
        "/api/v1/organizations/{a}/members/{target}",
        expect(200, 403, 403, 404),
        body={"role": "operator"},
        disposable="user",
    ),
    Case("DELETE", "/api/v1/organizations/{a}/members/{target}", expect(204, 403, 403, 404), disposable="user"),
    Case("GET", "/api/v1/audit-log", expect(200, 403, 403, 200)),  # outsider reads B's log
    Case("GET", "/api/v1/tokens", ALL_USERS),
    Case("POST", "/api/v1/tokens", {**ALL_USERS, **{r: 201 for r in ROLES if r != "anonymous"}}, body={"name": "ci"}),
    # Viewers read inventories; operators edit and use them; another organization's answer 404.
    Case("GET", "/api/v1/inventories", expect(200, 200, 200, 200)),
    Case("POST", "/api/v1/inventories", expect(201, 201, 403, 201), body={"hosts": [{"name": "h1"}]}),
    Case("POST", "/api/v1/inventories/import", expect(201, 201, 403, 201), body={"format": "ini", "content": "h1\n"}),
    Case("GET", "/api/v1/inventories/{inv}", expect(200, 200, 200, 404)),
    Case("PATCH", "/api/v1/inventories/{inv}", expect(200, 200, 403, 404), body={"description": "changed"}),
    Case("DELETE", "/api/v1/inventories/{target}", expect(204, 204, 403, 404), disposable="inventory"),
    Case("GET", "/api/v1/inventories/{inv}/export", expect(200, 200, 200, 404)),
    Case("POST", "/api/v1/inventories/{inv}/check", expect(200, 200, 403, 404)),
    Case("POST", "/api/v1/inventories/{inv}/sync", expect(409, 409, 403, 404)),  # 409: it has no source
    # Operators use credentials (see their metadata); only admins manage them.
    Case("GET", "/api/v1/credentials", expect(200, 200, 403, 200)),
    Case(
        "POST",
        "/api/v1/credentials",
        expect(201, 403, 403, 201),
        body={"kind": "password", "inputs": {"username": "u", "password": "matrix-secret"}},
    ),
    Case("GET", "/api/v1/credentials/{cred}", expect(200, 200, 403, 404)),
    Case("PATCH", "/api/v1/credentials/{cred}", expect(200, 403, 403, 404), body={"description": "changed"}),
    Case("DELETE", "/api/v1/credentials/{target}", expect(204, 403, 403, 404), disposable="credential"),
    # Viewers read playbooks and runs; operators write playbooks, launch, cancel and relaunch.
    Case("GET", "/api/v1/playbooks", expect(200, 200, 200, 200)),
    Case(
        "POST",
        "/api/v1/playbooks",
        expect(201, 201, 403, 201),
        body={"content": "- hosts: all\n  gather_facts: false\n  tasks: []\n"},
    ),
    Case("GET", "/api/v1/playbooks/{pb}", expect(200, 200, 200, 404)),
    Case("PATCH", "/api/v1/playbooks/{pb}", expect(200, 200, 403, 404), body={"description": "changed"}),
    Case("DELETE", "/api/v1/playbooks/{target}", expect(204, 204, 403, 404), disposable="playbook"),
    Case("GET", "/api/v1/playbooks/{pb}/versions", expect(200, 200, 200, 404)),
    Case("GET", "/api/v1/playbooks/{pb}/versions/1", expect(200, 200, 200, 404)),
    Case("GET", "/api/v1/runs", expect(200, 200, 200, 200)),
    Case("POST", "/api/v1/runs", expect(201, 201, 403, 422)),  # 422: A's inventory is not in B
    Case("GET", "/api/v1/runs/{run}", expect(200, 200, 200, 404)),
    Case("GET", "/api/v1/runs/{run}/events", expect(200, 200, 200, 404)),
    Case("GET", "/api/v1/runs/{run}/stdout", expect(200, 200, 200, 404)),
    Case("POST", "/api/v1/runs/{target}/cancel", expect(200, 200, 403, 404), disposable="run"),
    Case("POST", "/api/v1/runs/{run}/relaunch", expect(201, 201, 403, 404), body={"hosts": "all"}),
    # Viewers read stacks, forms, diffs and deployments; operators write, compile, deploy and undeploy.
    Case("GET", "/api/v1/stacks", expect(200, 200, 200, 200)),
    Case("POST", "/api/v1/stacks", expect(201, 201, 403, 201), body={"compose": STACK_COMPOSE}),
    Case("GET", "/api/v1/stacks/{stack}", expect(200, 200, 200, 404)),
    Case("PATCH", "/api/v1/stacks/{stack}", expect(200, 200, 403, 404), body={"compose": STACK_COMPOSE}),
    Case("DELETE", "/api/v1/stacks/{target}", expect(204, 204, 403, 404), disposable="stack"),
    Case("GET", "/api/v1/stacks/{stack}/versions", expect(200, 200, 200, 404)),
    Case("GET", "/api/v1/stacks/{stack}/versions/1", expect(200, 200, 200, 404)),
    Case("GET", "/api/v1/stacks/{stack}/form", expect(200, 200, 200, 404)),
    Case("POST", "/api/v1/stacks/{stack}/compile", expect(200, 200, 403, 404), body={"target": "docker"}),
    Case(
        "POST",
        "/api/v1/stacks/{stack}/diff",
        expect(200, 200, 200, 404),
        body={"target": "docker", "from_version": 1, "to_version": 1},
    ),
    Case("POST", "/api/v1/stacks/{stack}/deploy", expect(201, 201, 403, 404)),
    Case("GET", "/api/v1/stacks/{stack}/deployments", expect(200, 200, 200, 404)),
    Case("GET", "/api/v1/stacks/{stack}/deployments/{dep}", expect(200, 200, 200, 404)),
    Case("POST", "/api/v1/stacks/{stack}/deployments/{dep}/redeploy", expect(201, 201, 403, 404), body={}),
    Case(
        "POST",
        "/api/v1/stacks/{stack}/deployments/{target}/undeploy",
        expect(201, 201, 403, 404),
        body={},
        disposable="deployment",
    ),
    # 409: a deployment is forgotten only once it is undeployed
    Case("DELETE", "/api/v1/stacks/{stack}/deployments/{target}", expect(409, 409, 403, 404), disposable="deployment"),
    # Every member may chat; a conversation is its owner's (an admin reads it for audit); settings are for
    # admins; checking and saving proposals need an operator (saving, the proposal's owner too).
    Case("GET", "/api/v1/assistant", expect(200, 200, 200, 200)),
    Case("GET", "/api/v1/assistant/settings", expect(200, 403, 403, 200)),
    Case("PUT", "/api/v1/assistant/settings", expect(200, 403, 403, 200), body={}),
    Case("POST", "/api/v1/assistant/conversations", expect(201, 201, 201, 201), body={}),
    Case("GET", "/api/v1/assistant/conversations", expect(200, 200, 200, 200)),
    Case("GET", "/api/v1/assistant/conversations/{conv}", expect(200, 404, 200, 404)),
    Case("PATCH", "/api/v1/assistant/conversations/{conv}", expect(404, 404, 200, 404), body={"title": "renamed"}),
    Case("DELETE", "/api/v1/assistant/conversations/{target}", expect(404, 404, 204, 404), disposable="conversation"),
    Case("GET", "/api/v1/assistant/conversations/{conv}/messages", expect(200, 404, 200, 404)),
    Case("POST", "/api/v1/assistant/conversations/{conv}/messages", expect(404, 404, 201, 404), body={"content": "hi"}),
    Case("POST", "/api/v1/assistant/conversations/{conv}/stop", expect(404, 404, 200, 404)),
    Case("GET", "/api/v1/assistant/proposals/{prop}", expect(200, 404, 200, 404)),
    Case("POST", "/api/v1/assistant/proposals/{prop}/check", expect(201, 404, 403, 404)),
    Case("POST", "/api/v1/assistant/proposals/{prop}/save", expect(404, 404, 403, 404), body={"name": "saved"}),
    Case("POST", "/api/v1/runs/{run}/explain", expect(201, 201, 201, 404), body={}),
    Case("POST", "/api/v1/playbooks/{pb}/explain", expect(201, 201, 201, 404), body={}),
    Case("POST", "/api/v1/playbooks/{pb}/optimise", expect(201, 201, 201, 404), body={}),
]


@pytest.fixture
async def client(
    clean_database: None, make_settings: Any, scripted_llm: ScriptedLLM
) -> AsyncIterator[AsyncTestClient[Any]]:
    """This module's app has an assistant: the scripted model answers "ok" to whatever it is asked."""
    scripted_llm.responder = lambda body: Reply(text="ok")
    async with AsyncTestClient(create_app(make_settings(**llm_settings(scripted_llm)))) as test_client:
        yield test_client


async def build_world(client: AsyncTestClient[Any], llm: ScriptedLLM) -> World:
    superadmin_headers = dict(client.headers)
    org_a = (await client.get("/api/v1/users/me")).json()["current_organization_id"]
    users = {role: await make_user(client, role) for role in ("admin", "operator", "viewer")}
    member = await make_user(client, "viewer")
    org_b = (await make_organization(client))["id"]
    outsider = await make_user(client, "admin", headers={"X-Organization-ID": org_b})
    # The superadmin created B and so is a member; the outsider must only be in B.
    headers = {role: await headers_for(client, user) for role, user in users.items()}
    headers["outsider"] = await headers_for(client, outsider)
    headers["superadmin"] = superadmin_headers
    client.headers.pop("Authorization")
    world = World(client, org_a, org_b, headers, member, superadmin_headers)
    world.inventory = await world.disposable("inventory")
    world.credential = await world.disposable("credential")
    world.playbook = await world.disposable("playbook")
    world.run = await world.disposable("run")
    world.stack = await world.disposable("stack")
    world.deployment = await world.disposable("deployment")
    headers = {**superadmin_headers, "X-Organization-ID": org_a}
    local = {"name": "local", "hosts": [{"name": "controller", "connection": "local"}]}
    world.local_inventory = str((await client.post("/api/v1/inventories", json=local, headers=headers)).json()["id"])
    world.conversation = await world.disposable("conversation")
    world.proposal = await _viewer_proposal(world, llm)
    return world


async def _viewer_proposal(world: World, llm: ScriptedLLM) -> str:
    path = f"/api/v1/assistant/conversations/{world.conversation}/messages"
    llm.script(fenced(GOOD_PLAYBOOK))
    response = await world.client.post(path, json={"content": "a playbook"}, headers=world.headers["viewer"])
    assert response.status_code == 201, response.text
    (proposal,) = response.json()["proposals"]
    return str(proposal["id"])


async def call(world: World, case: Case, role: str, counter: list[int]) -> int:
    body = await case.payload(world, counter)
    headers = world.headers.get(role, {})
    response = await world.client.request(case.method, await case.url(world), json=body, headers=headers)
    return response.status_code


async def test_role_endpoint_matrix(admin_client: AsyncTestClient[Any], scripted_llm: ScriptedLLM) -> None:
    world = await build_world(admin_client, scripted_llm)
    counter = [0]
    mismatches = []
    for case in CASES:
        for role in ROLES:
            status = await call(world, case, role, counter)
            if status != case.outcomes[role]:
                mismatches.append(f"{role:10} {case.method:6} {case.path}: got {status}, want {case.outcomes[role]}")
    assert mismatches == []


async def test_matrix_covers_every_guarded_route(admin_client: AsyncTestClient[Any]) -> None:
    app = admin_client.app
    guarded = {
        (method, route.path.replace(":uuid", ""))
        for route in app.routes
        for handler in getattr(route, "route_handlers", [])
        for method in handler.http_methods
        if method != "OPTIONS" and handler.resolve_guards()
    }
    placeholders = {
        "{member}": "{user_id}",
        "{a}": "{org_id}",
        "{inv}": "{inventory_id}",
        "{cred}": "{credential_id}",
        "{pb}": "{playbook_id}",
        "{run}": "{run_id}",
        "{stack}": "{stack_id}",
        "{dep}": "{deployment_id}",
        "{conv}": "{conversation_id}",
        "{prop}": "{proposal_id}",
        "/versions/1": "/versions/{version:int}",
    }
    targets = {
        "user": "{user_id}",
        "inventory": "{inventory_id}",
        "credential": "{credential_id}",
        "playbook": "{playbook_id}",
        "run": "{run_id}",
        "stack": "{stack_id}",
        "deployment": "{deployment_id}",
        "conversation": "{conversation_id}",
    }

    def template(path: str, disposable: str = "") -> str:
        path = path.replace("{target}", targets.get(disposable, "{target}"))
        for short, name in placeholders.items():
            path = path.replace(short, name)
        return path

    covered = {(case.method, template(case.path, case.disposable)) for case in CASES}
    covered.add(("DELETE", "/api/v1/tokens/{token_id}"))  # owner-scoped: tests/api/test_auth.py
    covered.add(("DELETE", "/api/v1/organizations/{org_id}"))  # see test_only_superadmin_deletes_organizations
    assert guarded - covered == set()


async def test_only_superadmin_deletes_organizations(
    admin_client: AsyncTestClient[Any], scripted_llm: ScriptedLLM
) -> None:
    world = await build_world(admin_client, scripted_llm)
    for role in ("admin", "operator", "viewer", "outsider"):
        response = await world.client.delete(f"/api/v1/organizations/{world.org_a}", headers=world.headers[role])
        assert response.status_code == 403, role
    response = await world.client.delete(f"/api/v1/organizations/{world.org_b}", headers=world.superadmin_headers)
    assert response.status_code == 204
    response = await world.client.get(f"/api/v1/organizations/{world.org_b}", headers=world.superadmin_headers)
    assert response.status_code == 404
