"""``/api/v1/inventories``: documents, validation with field paths, roles and nothing half-saved."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from tests.credentials.samples import ssh_keypair
from tests.factories import files_containing, headers_for, make_organization, make_user

Client = AsyncTestClient[Any]

WEB = {
    "name": "web",
    "description": "web tier",
    "vars": {"ntp_server": "127.0.0.1"},
    "hosts": [
        {"name": "web1", "address": "127.0.0.2", "port": 2222, "user": "root"},
        {"name": "web2", "address": "127.0.0.3", "vars": {"weight": 3}},
        {"name": "engine", "kind": "docker", "docker_host": "unix:///run/docker.sock"},
    ],
    "groups": [
        {"name": "frontend", "hosts": ["web1", "web2"], "vars": {"http_port": 8080}},
        {"name": "production", "children": ["frontend"], "kind": "bare-metal", "become": True},
    ],
}


async def ssh_key_credential(client: Client, tmp_path: Path, name: str = "deploy key") -> dict[str, Any]:
    body = {
        "name": name,
        "kind": "ssh_key",
        "inputs": {"username": "root", "private_key": ssh_keypair(tmp_path).private_key},
    }
    response = await client.post("/api/v1/credentials", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def password_credential(client: Client, name: str = "sudo") -> dict[str, Any]:
    body = {"name": name, "kind": "become", "inputs": {"password": "become-secret-1"}}
    response = await client.post("/api/v1/credentials", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def count(client: Client) -> int:
    response = await client.get("/api/v1/inventories")
    assert response.status_code == 200, response.text
    return int(response.json()["total"])


def fields_of(response: Any) -> list[str]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "VALIDATION_ERROR"
    return [error["field"] for error in body["errors"]]


async def test_create_read_list_update_delete(admin_client: Client) -> None:
    created = await admin_client.post("/api/v1/inventories", json=WEB)
    assert created.status_code == 201, created.text
    inventory = created.json()
    assert inventory["host_count"] == 3 and inventory["group_count"] == 2
    assert inventory["hosts"][0] == {"name": "web1", "address": "127.0.0.2", "port": 2222, "user": "root"}
    assert inventory["groups"][1]["children"] == ["frontend"]

    read = (await admin_client.get(f"/api/v1/inventories/{inventory['id']}")).json()
    assert read["hosts"] == inventory["hosts"] and read["vars"] == {"ntp_server": "127.0.0.1"}
    listing = (await admin_client.get("/api/v1/inventories")).json()
    assert listing["total"] == 1 and "hosts" not in listing["items"][0]
    assert listing["items"][0]["host_count"] == 3

    hosts = [{"name": "db1", "address": "127.0.0.4"}]
    changed = await admin_client.patch(
        f"/api/v1/inventories/{inventory['id']}", json={"hosts": hosts, "groups": [], "description": "db"}
    )
    assert changed.status_code == 200, changed.text
    assert [h["name"] for h in changed.json()["hosts"]] == ["db1"]
    assert changed.json()["description"] == "db" and changed.json()["vars"] == {"ntp_server": "127.0.0.1"}

    assert (await admin_client.delete(f"/api/v1/inventories/{inventory['id']}")).status_code == 204
    assert (await admin_client.get(f"/api/v1/inventories/{inventory['id']}")).status_code == 404
    actions = [e["action"] for e in (await admin_client.get("/api/v1/audit-log")).json()["items"]]
    assert {"inventory.create", "inventory.update", "inventory.delete"} <= set(actions)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"hosts": [{"name": "a"}, {"name": "a"}]}, "body.hosts.1.name"),
        ({"hosts": [{"name": "a", "kind": "mainframe"}]}, "body.hosts.0.kind"),
        ({"hosts": [{"name": "a", "kind": "docker", "port": 22}]}, "body.hosts.0.port"),
        ({"hosts": [{"name": "a", "port": 70000}]}, "body.hosts.0.port"),
        ({"hosts": [{"name": "bad name"}]}, "body.hosts.0.name"),
        ({"hosts": [{"name": "a", "colour": "red"}]}, "body.hosts.0.colour"),
        ({"vars": {"ansible_password": "hunter2"}}, "body.vars.ansible_password"),
        ({"hosts": [{"name": "a", "vars": {"ansible_become_pass": "x"}}]}, "body.hosts.0.vars.ansible_become_pass"),
        ({"groups": [{"name": "g", "hosts": ["ghost"]}]}, "body.groups.0.hosts.0"),
        ({"groups": [{"name": "g", "children": ["nope"]}]}, "body.groups.0.children.0"),
        ({"groups": [{"name": "all"}]}, "body.groups.0.name"),
        (
            {
                "groups": [
                    {"name": "a", "children": ["b"]},
                    {"name": "b", "children": ["c"]},
                    {"name": "c", "children": ["a"]},
                ]
            },
            "body.groups.0.children",
        ),
        (
            {
                "hosts": [{"name": "h"}],
                "groups": [
                    {"name": "d", "kind": "docker", "hosts": ["h"]},
                    {"name": "k", "kind": "vm", "hosts": ["h"]},
                ],
            },
            "body.hosts.0.kind",
        ),
        ({"credential": "00000000-0000-0000-0000-000000000001"}, "body.credential"),
    ],
)
async def test_bad_documents_answer_422_with_the_path_and_save_nothing(
    admin_client: Client, change: dict[str, Any], field: str
) -> None:
    body = {"name": "broken", "hosts": [], "groups": [], **change}
    response = await admin_client.post("/api/v1/inventories", json=body)
    assert field in fields_of(response)
    assert await count(admin_client) == 0


async def test_credentials_must_exist_here_and_be_of_the_right_kind(admin_client: Client, tmp_path: Path) -> None:
    key = await ssh_key_credential(admin_client, tmp_path)
    become = await password_credential(admin_client)
    wrong = {"hosts": [{"name": "a", "credential": become["id"]}, {"name": "b", "become_credential": key["id"]}]}
    response = await admin_client.post("/api/v1/inventories", json={"name": "x", **wrong})
    errors = {e["field"]: e["message"] for e in response.json()["errors"]}
    assert "is a become credential" in errors["body.hosts.0.credential"]
    assert "is a ssh_key credential" in errors["body.hosts.1.become_credential"]
    docker = {"hosts": [{"name": "a", "kind": "docker", "credential": key["id"]}]}
    assert fields_of(await admin_client.post("/api/v1/inventories", json={"name": "x", **docker})) == [
        "body.hosts.0.credential"
    ]

    other = await make_organization(admin_client)
    elsewhere = {"X-Organization-ID": other["id"]}
    body = {"name": "x", "hosts": [{"name": "a", "credential": key["id"]}]}
    assert fields_of(await admin_client.post("/api/v1/inventories", json=body, headers=elsewhere)) == [
        "body.hosts.0.credential"
    ]

    good = {"name": "ok", "credential": key["id"], "become_credential": become["id"], "hosts": [{"name": "a"}]}
    created = await admin_client.post("/api/v1/inventories", json=good)
    assert created.status_code == 201, created.text
    refused = await admin_client.delete(f"/api/v1/credentials/{key['id']}")
    assert refused.status_code == 409, refused.text
    assert (await admin_client.delete(f"/api/v1/inventories/{created.json()['id']}")).status_code == 204
    assert (await admin_client.delete(f"/api/v1/credentials/{key['id']}")).status_code == 204


async def test_a_rejected_update_changes_nothing(admin_client: Client) -> None:
    inventory = (await admin_client.post("/api/v1/inventories", json=WEB)).json()
    url = f"/api/v1/inventories/{inventory['id']}"
    cyclic = {"name": "renamed", "groups": [{"name": "a", "children": ["a"]}]}
    assert "body.groups.0.children.0" in fields_of(await admin_client.patch(url, json=cyclic))
    after = (await admin_client.get(url)).json()
    assert after["name"] == "web" and after["groups"] == inventory["groups"]
    assert after["updated_at"] == inventory["updated_at"]


async def test_names_are_unique_per_organization(admin_client: Client) -> None:
    assert (await admin_client.post("/api/v1/inventories", json={"name": "same"})).status_code == 201
    assert (await admin_client.post("/api/v1/inventories", json={"name": "same"})).status_code == 409
    other = await make_organization(admin_client)
    response = await admin_client.post(
        "/api/v1/inventories", json={"name": "same"}, headers={"X-Organization-ID": other["id"]}
    )
    assert response.status_code == 201


async def test_import_export_and_bad_text(admin_client: Client) -> None:
    text = "[web]\nweb[1:3] ansible_port=2222\n\n[web:vars]\nhttp_port=8080\n\n[site:children]\nweb\n"
    imported = await admin_client.post(
        "/api/v1/inventories/import", json={"name": "ini", "format": "ini", "content": text}
    )
    assert imported.status_code == 201, imported.text
    body = imported.json()
    assert [h["name"] for h in body["hosts"]] == ["web1", "web2", "web3"] and body["group_count"] == 2
    exported = await admin_client.get(f"/api/v1/inventories/{body['id']}/export", params={"format": "yaml"})
    assert exported.status_code == 200 and "http_port: 8080" in exported.text
    assert 'filename="ini.yml"' in exported.headers["content-disposition"]
    ini = await admin_client.get(f"/api/v1/inventories/{body['id']}/export", params={"format": "ini"})
    assert "[web:vars]" in ini.text

    for fmt, content in (("yaml", "all:\n  hosts: [unclosed\n"), ("ini", "[web\nhost1\n"), ("ini", "[g:vars]\nx=1\n")):
        response = await admin_client.post(
            "/api/v1/inventories/import", json={"name": "bad", "format": fmt, "content": content}
        )
        assert fields_of(response)[0].startswith("body.content"), (fmt, content)
    secret = "[web]\nweb1 ansible_password=hunter2\n"
    response = await admin_client.post(
        "/api/v1/inventories/import", json={"name": "bad", "format": "ini", "content": secret}
    )
    assert response.status_code == 422 and "hunter2" not in response.text
    assert await count(admin_client) == 1


async def test_roles_and_other_organizations(admin_client: Client, tmp_path: Path) -> None:
    viewer = await headers_for(admin_client, await make_user(admin_client, "viewer"))
    operator = await headers_for(admin_client, await make_user(admin_client, "operator"))
    assert (await admin_client.post("/api/v1/inventories", json={"name": "v"}, headers=viewer)).status_code == 403
    created = await admin_client.post(
        "/api/v1/inventories", json={"name": "o", **{"hosts": [{"name": "h"}]}}, headers=operator
    )
    assert created.status_code == 201
    url = f"/api/v1/inventories/{created.json()['id']}"
    assert (await admin_client.get(url, headers=viewer)).status_code == 200
    assert (await admin_client.get(f"{url}/export", headers=viewer)).status_code == 200
    assert (await admin_client.patch(url, json={"description": "x"}, headers=viewer)).status_code == 403
    assert (await admin_client.post(f"{url}/check", headers=viewer)).status_code == 403
    assert (await admin_client.patch(url, json={"description": "x"}, headers=operator)).status_code == 200
    # Operators use credentials in inventories but cannot create them.
    assert (await admin_client.post("/api/v1/credentials", json={"name": "k"}, headers=operator)).status_code == 403

    other = await make_organization(admin_client)
    outsider = await headers_for(
        admin_client, await make_user(admin_client, "admin", headers={"X-Organization-ID": other["id"]})
    )
    assert (await admin_client.get(url, headers=outsider)).status_code == 404
    assert (await admin_client.delete(url, headers=outsider)).status_code == 404
    assert (await admin_client.get("/api/v1/inventories", headers=outsider)).json()["total"] == 0


async def test_check_explains_failures_without_a_lab(
    admin_client: Client, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    become = await password_credential(admin_client, "local sudo")
    body = {
        "name": "local",
        "hosts": [
            {
                "name": "controller",
                "connection": "local",
                "become_credential": become["id"],
                "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
            },
            {"name": "closed", "address": "127.0.0.1", "port": 1, "user": "root"},
            {"name": "no-engine", "kind": "docker", "docker_host": "unix:///nonexistent/docker.sock"},
            {"name": "no-kubeconfig", "kind": "kubernetes"},
        ],
    }
    inventory = (await admin_client.post("/api/v1/inventories", json=body)).json()
    response = await admin_client.post(f"/api/v1/inventories/{inventory['id']}/check")
    assert response.status_code == 200, response.text
    report = response.json()
    hosts = {h["name"]: h for h in report["hosts"]}
    assert report["reachable"] == 1 and report["unreachable"] == 3
    assert hosts["controller"]["reachable"] and hosts["controller"]["latency_ms"] >= 0
    assert hosts["closed"]["error_code"] == "refused" and "connection refused" in hosts["closed"]["error"]
    assert hosts["no-engine"]["error_code"] == "no_engine"
    assert hosts["no-kubeconfig"]["error_code"] == "no_credential"

    limited = await admin_client.post(f"/api/v1/inventories/{inventory['id']}/check", params={"limit": "no-*"})
    assert [h["name"] for h in limited.json()["hosts"]] == ["no-engine", "no-kubeconfig"]
    nothing = await admin_client.post(f"/api/v1/inventories/{inventory['id']}/check", params={"limit": "zzz"})
    assert fields_of(nothing) == ["query.limit"]

    # The become password went to Ansible in a 0600 file that is gone now; nothing else saw it.
    audit = (await admin_client.get("/api/v1/audit-log", params={"size": 100})).text
    out, err = capfd.readouterr()
    for text in (response.text, caplog.text, audit, out, err):
        assert "become-secret-1" not in text
    assert files_containing(Path(admin_client.app.state.settings.data_dir), "become-secret-1") == []


async def test_sources_are_validated_and_sync_needs_one(admin_client: Client) -> None:
    static = (await admin_client.post("/api/v1/inventories", json={"name": "static"})).json()
    assert (await admin_client.post(f"/api/v1/inventories/{static['id']}/sync")).status_code == 409
    k8s = {"name": "k", "source": {"plugin": "kubernetes.core.k8s"}}
    assert fields_of(await admin_client.post("/api/v1/inventories", json=k8s)) == ["body.source.credential"]
    mixed = {"name": "d", "source": {"plugin": "community.docker.docker_containers"}, "hosts": [{"name": "h"}]}
    assert fields_of(await admin_client.post("/api/v1/inventories", json=mixed)) == ["body.hosts"]
    unknown = {"name": "u", "source": {"plugin": "amazon.aws.aws_ec2"}}
    assert fields_of(await admin_client.post("/api/v1/inventories", json=unknown)) == ["body.source.plugin"]

    failing = {
        "name": "d",
        "source": {"plugin": "community.docker.docker_containers", "docker_host": "unix:///nonexistent.sock"},
    }
    created = (await admin_client.post("/api/v1/inventories", json=failing)).json()
    synced = await admin_client.post(f"/api/v1/inventories/{created['id']}/sync")
    assert synced.status_code == 200, synced.text
    assert synced.json()["sync_status"] == "failed" and synced.json()["synced_at"]
    assert synced.json()["sync_error"]
