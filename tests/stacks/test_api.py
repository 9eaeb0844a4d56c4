"""``/api/v1/stacks``: definitions, versions, the form, compiles, deployments, and bad input."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from litestar.testing import AsyncTestClient

from tests.factories import in_app_loop
from tests.runs.test_launch import make_inventory, wait_finished

Client = AsyncTestClient[Any]
SITE = """
metadata:
  name: Tiny site
  version: 1.0.0
  description: One nginx container.
  category: Web
  tags: [web]
  targets: [docker, kubernetes]
template:
  image: "nginx:{{ nginx_version }}"
  ports: ["{{ port }}:80"]
  environment:
    ADMIN_PASSWORD: "{{ admin_password }}"
    GREETING: "hello {{ who }}"
  volumes: ["html:/usr/share/nginx/html"]
variables:
  nginx_version: {type: enum, enum: ["1.27-alpine", "1.26-alpine"], default: "1.27-alpine", label: Version}
  port: {type: integer, default: 8080, minimum: 1, maximum: 65535, label: Port}
  who: {type: string, default: world, pattern: "^[a-z]+$"}
  admin_password: {type: password, default: "{{ generate_password(24) }}", min_length: 12}
deployment_notes: "Open http://localhost:{{ port }}/ (password {{ admin_password }})."
"""
COMPOSE = """
services:
  db:
    image: postgres:16
    environment:
      POSTGRES_PASSWORD: ${POSTGRES_PASSWORD}
      POSTGRES_DB: ${DB_NAME:-app}
    healthcheck:
      test: ["CMD-SHELL", "pg_isready"]
      interval: 5s
    volumes: [db:/var/lib/postgresql/data]
  app:
    image: example/app:1
    ports: ["8000:8000"]
    depends_on:
      db: {condition: service_healthy}
volumes:
  db: {}
"""


async def create(client: Client, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/api/v1/stacks", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def errors_of(response: Any) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {e["field"]: e["message"] for e in response.json()["errors"]}


async def test_a_stack_from_yaml_text_then_a_new_version_and_its_form(admin_client: Client) -> None:
    stack = await create(admin_client, {"definition": SITE})
    assert (stack["name"], stack["semver"], stack["version"], stack["source"]) == ("Tiny site", "1.0.0", 1, "manual")
    assert stack["targets"] == ["docker", "kubernetes"]
    same = await admin_client.patch(f"/api/v1/stacks/{stack['id']}", json={"definition": SITE})
    assert same.json()["latest_version"] == 1  # the same document adds no version
    changed = SITE.replace("version: 1.0.0", "version: 1.1.0")
    updated = await admin_client.patch(f"/api/v1/stacks/{stack['id']}", json={"definition": changed})
    assert (updated.json()["latest_version"], updated.json()["semver"]) == (2, "1.1.0")
    versions = (await admin_client.get(f"/api/v1/stacks/{stack['id']}/versions")).json()
    assert [(v["version"], v["semver"]) for v in versions["items"]] == [(2, "1.1.0"), (1, "1.0.0")]
    first = (await admin_client.get(f"/api/v1/stacks/{stack['id']}/versions/1")).json()
    assert first["definition"]["metadata"]["version"] == "1.0.0"

    form = (await admin_client.get(f"/api/v1/stacks/{stack['id']}/form")).json()
    assert list(form["properties"]) == ["nginx_version", "port", "who", "admin_password"]
    assert form["properties"]["port"]["type"] == "integer" and form["properties"]["port"]["maximum"] == 65535
    assert form["properties"]["nginx_version"]["enum"] == ["1.27-alpine", "1.26-alpine"]
    password = form["properties"]["admin_password"]
    assert password["writeOnly"] is True and "default" not in password and password.get("x-generated") is True


async def test_an_object_definition_and_a_compose_file_are_accepted(admin_client: Client) -> None:
    document = yaml.safe_load(SITE)
    document["metadata"]["name"] = "Tiny site object"
    stack = await create(admin_client, {"definition": document})
    assert stack["definition"]["metadata"]["name"] == "Tiny site object"

    imported = await create(admin_client, {"compose": COMPOSE, "name": "Imported app"})
    assert imported["source"] == "compose" and imported["variables"] == ["postgres_password", "db_name"]
    form = (await admin_client.get(f"/api/v1/stacks/{imported['id']}/form")).json()
    assert form["properties"]["db_name"]["default"] == "app"
    assert form["properties"]["postgres_password"]["writeOnly"] is True
    assert "postgres_password" in form["required"]
    compiled = await admin_client.post(
        f"/api/v1/stacks/{imported['id']}/compile", json={"target": "docker", "values": {"postgres_password": "p" * 16}}
    )
    assert compiled.status_code == 200, compiled.text
    content = compiled.json()["content"]
    assert "POSTGRES_PASSWORD: '{{ windflow_secrets[''postgres_password''] }}'" in content
    assert "state: healthy" in content and content.index("imported-app-db-1") < content.index("imported-app-app-1")


async def test_compiling_twice_gives_the_same_bytes_and_no_new_version(admin_client: Client) -> None:
    stack = await create(admin_client, {"definition": SITE.replace("Tiny site", "Tiny site twice")})
    body = {"target": "docker", "values": {"port": 8081, "admin_password": "correct-horse-battery"}}
    first = (await admin_client.post(f"/api/v1/stacks/{stack['id']}/compile", json=body)).json()
    second = (await admin_client.post(f"/api/v1/stacks/{stack['id']}/compile", json=body)).json()
    assert first["content"] == second["content"] and first["version"] == second["version"] == 1
    assert "correct-horse-battery" not in first["content"] and first["secrets"] == ["admin_password"]
    assert first["deployment_notes"] == "Open http://localhost:8081/ (password ••••••••)."
    playbook = (await admin_client.get(f"/api/v1/playbooks/{first['playbook_id']}")).json()
    assert playbook["source"] == "generated" and playbook["content"] == first["content"]
    other = (
        await admin_client.post(f"/api/v1/stacks/{stack['id']}/compile", json={**body, "values": {"port": 9090}})
    ).json()
    assert other["version"] == 2
    kube = await admin_client.post(f"/api/v1/stacks/{stack['id']}/compile", json={**body, "target": "kubernetes"})
    assert "kind: Deployment" in kube.json()["content"]
    vm = await admin_client.post(f"/api/v1/stacks/{stack['id']}/compile", json={**body, "target": "vm"})
    assert errors_of(vm) == {"body.target": "this stack supports docker, kubernetes, not vm"}


BAD_DEFINITIONS = [
    ("metadata: [unclosed", "body.definition", "invalid YAML"),
    (
        SITE.replace("  category: Web\n", "  category: Web\n  colour: blue\n"),
        "body.definition.metadata.colour",
        "unknown field",
    ),
    (SITE.replace("  image:", "  imagee:"), "body.definition.template.imagee", "not supported"),
    (SITE.replace("version: 1.0.0", "version: one"), "body.definition.metadata.version", "semantic version"),
    (SITE.replace("default: 8080", "default: 99999"), "body.definition.variables.port.default", ""),
    (
        SITE.replace("hello {{ who }}", "hello {{ whom }}"),
        "body.definition.template.services.app.environment.GREETING",
        "not a declared",
    ),
    (
        SITE.replace("hello {{ who }}", "hello {{ who }"),
        "body.definition.template.services.app.environment.GREETING",
        "invalid template",
    ),
]


@pytest.mark.parametrize(("text", "field", "message"), BAD_DEFINITIONS)
async def test_bad_definitions_answer_422_with_the_path(
    admin_client: Client, text: str, field: str, message: str
) -> None:
    before = (await admin_client.get("/api/v1/stacks", params={"size": 100})).json()["total"]
    errors = errors_of(await admin_client.post("/api/v1/stacks", json={"definition": text}))
    assert field in errors, errors
    assert message in errors[field]
    assert (await admin_client.get("/api/v1/stacks", params={"size": 100})).json()["total"] == before


CYCLE = """
metadata: {name: Cycle, version: 1.0.0}
template:
  services:
    a: {image: busybox, depends_on: [b]}
    b: {image: busybox, depends_on: [c]}
    c: {image: busybox, depends_on: [a]}
"""
SAME_PORT = """
metadata: {name: Same port, version: 1.0.0}
template:
  services:
    a: {image: busybox, ports: ["8080:80"]}
    b: {image: busybox, ports: ["127.0.0.1:8080:81"]}
"""
ODD_NETWORK = """
metadata: {name: Odd network, version: 1.0.0}
template:
  services:
    a: {image: busybox, networks: [back]}
  networks:
    back: {internal: yes-please, ipam: {driver: default}}
"""
UNHEALTHY = """
metadata: {name: Unhealthy, version: 1.0.0}
template:
  services:
    a: {image: busybox}
    b: {image: busybox, depends_on: {a: {condition: service_healthy}}}
"""


async def test_cycles_port_clashes_and_missing_health_checks_are_refused(admin_client: Client) -> None:
    errors = errors_of(await admin_client.post("/api/v1/stacks", json={"definition": CYCLE}))
    assert errors == {"body.definition.template.services.a.depends_on": "depends_on cycle: a -> b -> c -> a"}
    errors = errors_of(await admin_client.post("/api/v1/stacks", json={"definition": SAME_PORT}))
    assert errors == {"body.definition.template.services.b.ports.0": "host port 8080/tcp is already published by a"}
    errors = errors_of(await admin_client.post("/api/v1/stacks", json={"definition": UNHEALTHY}))
    assert errors == {
        "body.definition.template.services.b.depends_on.a": "waits for 'a' to be healthy, but 'a' has no healthcheck"
    }
    errors = errors_of(await admin_client.post("/api/v1/stacks", json={"definition": ODD_NETWORK}))
    assert errors == {
        "body.definition.template.networks.back.internal": "must be true or false",
        "body.definition.template.networks.back.ipam": "not supported; networks take driver, external, internal",
    }
    errors = errors_of(await admin_client.post("/api/v1/stacks", json={"definition": SITE, "compose": COMPOSE}))
    assert list(errors) == ["body.compose"]
    errors = errors_of(await admin_client.post("/api/v1/stacks", json={"compose": "services: 3\n", "name": "x"}))
    assert list(errors) == ["body.compose"]


async def test_bad_values_answer_422_with_the_variable(admin_client: Client) -> None:
    stack = await create(admin_client, {"definition": SITE.replace("Tiny site", "Tiny site values")})
    url = f"/api/v1/stacks/{stack['id']}/compile"
    cases = [
        ({"port": "80"}, "body.values.port"),
        ({"port": 70000}, "body.values.port"),
        ({"who": "Robert'); DROP"}, "body.values.who"),
        ({"nginx_version": "latest"}, "body.values.nginx_version"),
        ({"admin_password": "short"}, "body.values.admin_password"),
        ({"nobody": 1}, "body.values.nobody"),
    ]
    for values, field in cases:
        errors = errors_of(await admin_client.post(url, json={"target": "docker", "values": values}))
        assert field in errors, (values, errors)
    clash = SITE.replace("Tiny site", "Tiny site ports").replace(
        'ports: ["{{ port }}:80"]', 'ports: ["{{ port }}:80", "{{ port }}:81"]'
    )
    response = await admin_client.post("/api/v1/stacks", json={"definition": clash})
    assert "body.definition.template.services.app.ports.1" in errors_of(response)


async def test_deploy_stores_secrets_encrypted_and_lists_the_deployment(admin_client: Client) -> None:
    stack = await create(admin_client, {"definition": SITE.replace("Tiny site", "Tiny site deploy")})
    inventory = await make_inventory(
        admin_client,
        {
            "name": "nowhere",
            "hosts": [{"name": "engine", "kind": "docker", "docker_host": "unix:///nonexistent/docker.sock"}],
        },
    )
    body = {"inventory_id": inventory["id"], "target": "docker", "values": {"admin_password": "deploy-secret-value-1"}}
    response = await admin_client.post(f"/api/v1/stacks/{stack['id']}/deploy", json=body)
    assert response.status_code == 201, response.text
    launched = response.json()
    deployment = launched["deployment"]
    assert deployment["name"] == "tiny-site-deploy" and deployment["values"]["port"] == 8080
    assert "admin_password" not in deployment["values"]
    run = await wait_finished(admin_client, launched["run"]["id"])
    assert run["status"] == "failed"  # there is no engine at that socket: the run says so
    listed = (await admin_client.get(f"/api/v1/stacks/{stack['id']}/deployments")).json()["items"]
    assert [(d["name"], d["status"], d["last_run_status"]) for d in listed] == [
        ("tiny-site-deploy", "failed", "failed")
    ]
    again = await admin_client.post(f"/api/v1/stacks/{stack['id']}/deploy", json=body)
    assert again.status_code == 409

    from server.db.tables import AuditLog, Credential, Deployment, Run

    rows = await in_app_loop(admin_client, lambda: Credential.select().where(Credential.kind == "stack_secrets"))
    deployments = await in_app_loop(admin_client, lambda: Deployment.select())
    audit = await in_app_loop(admin_client, lambda: AuditLog.select())
    runs = await in_app_loop(admin_client, lambda: Run.select())
    dumped = json.dumps([rows, deployments, audit, runs], default=str)
    assert "deploy-secret-value-1" not in dumped and len(rows) >= 1
    credentials = (await admin_client.get("/api/v1/credentials", params={"size": 100})).json()["items"]
    assert "deploy-secret-value-1" not in json.dumps(credentials)
    held = [c for c in credentials if c["kind"] == "stack_secrets" and "tiny-site-deploy" in c["name"]]
    refused = await admin_client.delete(f"/api/v1/credentials/{held[0]['id']}")
    assert refused.status_code == 409 and "tiny-site-deploy" in refused.json()["detail"]

    # The credential is what the run received; redeploy keeps the password it does not repeat.
    redeploy = await admin_client.post(
        f"/api/v1/stacks/{stack['id']}/deployments/{deployment['id']}/redeploy", json={"values": {"port": 8082}}
    )
    assert redeploy.status_code == 201, redeploy.text
    assert redeploy.json()["deployment"]["values"]["port"] == 8082
    await wait_finished(admin_client, redeploy.json()["run"]["id"])
    refused = await admin_client.delete(f"/api/v1/stacks/{stack['id']}")
    assert refused.status_code == 409
    kept = await admin_client.delete(f"/api/v1/stacks/{stack['id']}/deployments/{deployment['id']}")
    assert kept.status_code == 409


async def test_bad_deploy_requests_store_nothing(admin_client: Client) -> None:
    stack = await create(admin_client, {"definition": SITE.replace("Tiny site", "Tiny site bad deploy")})
    inventory = await make_inventory(
        admin_client, {"name": "bad deploy", "hosts": [{"name": "h1", "connection": "local"}]}
    )
    url = f"/api/v1/stacks/{stack['id']}/deploy"
    base = {"inventory_id": inventory["id"], "target": "docker"}
    cases = [
        ({**base, "target": "mainframe"}, "body.target"),
        ({**base, "inventory_id": "00000000-0000-0000-0000-000000000000"}, "body.inventory_id"),
        ({**base, "values": {"port": -1}}, "body.values.port"),
        ({**base, "parameters": {"pull": "sometimes"}}, "body.parameters.pull"),
        ({**base, "parameters": {"unknown": 1}}, "body.parameters.unknown"),
        ({**base, "name": "Not A Name"}, "body.name"),
        ({**base, "limit": "nohost"}, "body.limit"),
        ({**base, "credentials": ["00000000-0000-0000-0000-000000000000"]}, "body.credentials.0"),
    ]
    for body, field in cases:
        errors = errors_of(await admin_client.post(url, json=body))
        assert field in errors, (body, errors)
    listed = (await admin_client.get(f"/api/v1/stacks/{stack['id']}/deployments")).json()
    assert listed["total"] == 0


async def test_diff_between_two_stack_versions(admin_client: Client) -> None:
    stack = await create(admin_client, {"definition": SITE.replace("Tiny site", "Tiny site diff")})
    newer = (
        SITE.replace("Tiny site", "Tiny site diff")
        .replace("version: 1.0.0", "version: 1.0.1")
        .replace('default: "1.27-alpine"', 'default: "1.26-alpine"')
    )
    await admin_client.patch(f"/api/v1/stacks/{stack['id']}", json={"definition": newer})
    body = {"target": "docker", "from_version": 1, "to_version": 2}
    diff = (await admin_client.post(f"/api/v1/stacks/{stack['id']}/diff", json=body)).json()
    assert not diff["identical"]
    assert "-        image: nginx:1.27-alpine\n+        image: nginx:1.26-alpine\n" in diff["diff"]
    same = (await admin_client.post(f"/api/v1/stacks/{stack['id']}/diff", json={**body, "to_version": 1})).json()
    assert same == {**same, "identical": True, "diff": ""}
    missing = await admin_client.post(f"/api/v1/stacks/{stack['id']}/diff", json={**body, "to_version": 9})
    assert list(errors_of(missing)) == ["body.to_version"]


async def test_the_catalogue_is_loaded_at_start_up(admin_client: Client) -> None:
    stacks = (await admin_client.get("/api/v1/stacks", params={"size": 100})).json()["items"]
    catalogue = [s for s in stacks if s["source"] == "catalogue"]
    assert len(catalogue) >= 6, [s["name"] for s in stacks]


INJECTIONS = [
    "{{ self._TemplateReference__context }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.environ }}",
    "{{ lipsum.__globals__['os'].environ['WF_CANARY'] }}",
    "{% include '/etc/hostname' %}",
    "{{ who.__class__.__base__ }}",
]


@pytest.mark.parametrize("text", INJECTIONS)
async def test_template_injection_through_the_api_reads_nothing(
    admin_client: Client, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    monkeypatch.setenv("WF_CANARY", "canary-8b1f2e")
    definition = SITE.replace("Tiny site", "Tiny site injected").replace("hello {{ who }}", text.replace('"', "'"))
    response = await admin_client.post("/api/v1/stacks", json={"definition": definition})
    assert response.status_code == 422, response.text
    assert "canary-8b1f2e" not in response.text and "os" not in response.json()["errors"][0]["message"].split()


# Written the way definitions of the public format are: target_type, deployment_name, a single
# container with container_name and restart_policy, and name generators in defaults.
PUBLIC_STYLE = """
metadata:
  name: "Key-value store"
  version: "1.0.0"
  category: "Database"
  author: "WindFlow"
  license: "MIT"
  icon_url: "https://example.org/icon.svg"
  screenshots: []
  is_public: true
  target_type: "docker"
  deployment_name: "{{ container_name }}"
template:
  image: "redis:{{ version }}"
  container_name: "{{ deployment_name }}"
  command: redis-server --appendonly yes
  ports: ["{{ host_port }}:6379"]
  volumes: ["{{ volume_name }}:/data"]
  restart_policy: "unless-stopped"
  labels: {managed_by: windflow, deployment_name: "{{ deployment_name }}"}
variables:
  version: {type: string, label: "Version", default: "7", enum: ["7", "6"], required: true, group: "General", help: "…"}
  container_name:
    type: string
    label: "Container name"
    default: "{{ generate_animalname('kv') }}"
    pattern: "^[a-zA-Z0-9][a-zA-Z0-9_.-]*$"
  host_port: {type: number, label: "Host port", default: 6379, minimum: 1, maximum: 65535}
  volume_name: {type: string, default: "{{ generate_cosmicname('kv-data') }}"}
deployment_notes: "Connect to {{ deployment_name }} on port {{ host_port }}."
"""


async def test_a_definition_in_the_public_style_compiles(admin_client: Client) -> None:
    stack = await create(admin_client, {"definition": PUBLIC_STYLE})
    assert stack["targets"] == ["docker", "vm", "bare-metal"]
    body = {"target": "docker", "values": {"container_name": "kv_main", "volume_name": "kv-data"}}
    compiled = (await admin_client.post(f"/api/v1/stacks/{stack['id']}/compile", json=body)).json()
    content = compiled["content"]
    assert compiled["project"] == "kv-main"
    assert "name: kv-main-app-1" in content and "hostname: kv-main" in content
    assert "restart_policy: unless-stopped" in content and "source: kv-main_kv-data" in content
    assert compiled["deployment_notes"] == "Connect to kv-main on port 6379."
    generated = (await admin_client.post(f"/api/v1/stacks/{stack['id']}/compile", json={"target": "docker"})).json()
    assert generated["project"].startswith("kv-") and generated["project"].count("-") == 2


LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(8)
)


async def test_a_yaml_bomb_or_a_deep_document_is_refused_at_once(admin_client: Client) -> None:
    bomb = await admin_client.post("/api/v1/stacks", json={"definition": LAUGHS})
    assert errors_of(bomb) == {"body.definition": "holds more than 100000 values (anchors expanded)"}
    deep: dict[str, Any] = {}
    for _ in range(200):
        deep = {"x": deep}
    response = await admin_client.post("/api/v1/stacks", json={"definition": {"metadata": deep}})
    assert errors_of(response) == {"body.definition": "nests more than 50 levels deep"}
    compose = await admin_client.post("/api/v1/stacks", json={"compose": LAUGHS, "name": "bomb"})
    assert errors_of(compose) == {"body.compose": "holds more than 100000 values (anchors expanded)"}


async def test_nul_characters_are_refused_not_stored(admin_client: Client) -> None:
    document = yaml.safe_load(SITE)
    document["metadata"]["name"] = "Tiny\x00site"
    response = await admin_client.post("/api/v1/stacks", json={"definition": document})
    assert errors_of(response) == {"body.definition.metadata.name": "must not contain NUL characters"}
    assert (await admin_client.get("/api/v1/stacks", params={"category": "a\x00b"})).status_code == 422
    stack = await create(admin_client, {"definition": SITE.replace("Tiny site", "Tiny site nul")})
    compiled = await admin_client.post(
        f"/api/v1/stacks/{stack['id']}/compile", json={"target": "docker", "values": {"who": "a\x00b"}}
    )
    assert errors_of(compiled) == {"body.values.who": "must not contain NUL characters"}


async def test_the_list_filters_by_category_and_by_name_ignoring_case(admin_client: Client) -> None:
    await create(admin_client, {"definition": SITE.replace("Tiny site", "Tiny Site Search")})
    found = (await admin_client.get("/api/v1/stacks", params={"q": "site search"})).json()
    assert [s["name"] for s in found["items"]] == ["Tiny Site Search"]
    web = (await admin_client.get("/api/v1/stacks", params={"category": "Web", "size": 100})).json()
    assert "Tiny Site Search" in [s["name"] for s in web["items"]] and all(s["category"] == "Web" for s in web["items"])
