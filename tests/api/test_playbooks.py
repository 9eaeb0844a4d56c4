"""``/api/v1/playbooks``: versions on every real change, Ansible's verdict on bad content, roles,
organizations, and the built-in library."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from server.playbooks.validation import validate_playbook
from tests.factories import headers_for, make_organization, make_user

Client = AsyncTestClient[Any]
URL = "/api/v1/playbooks"
LIBRARY = Path(__file__).parents[2] / "playbooks"
PING = """\
- name: Ping
  hosts: all
  gather_facts: false
  tasks:
    - name: Ping the host
      ansible.builtin.ping:
"""
UPTIME = PING.replace("Ping the host", "Read the uptime").replace(
    "ansible.builtin.ping:", "ansible.builtin.command: uptime\n      changed_when: false"
)


async def create(client: Client, name: str = "ping", content: str = PING, **extra: Any) -> dict[str, Any]:
    response = await client.post(URL, json={"name": name, "content": content, **extra})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def manual_count(client: Client, headers: dict[str, str] | None = None) -> int:
    response = await client.get(URL, params={"source": "manual"}, headers=headers or {})
    assert response.status_code == 200, response.text
    return int(response.json()["total"])


def content_error(response: Any) -> str:
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["field"] == "body.content"
    return str(error["message"])


async def test_create_read_update_delete_with_versions(admin_client: Client) -> None:
    playbook = await create(admin_client, description="reachability")
    assert set(playbook) == {
        "id", "organization_id", "name", "description", "source", "latest_version", "content", "created_at",
        "updated_at",
    }  # fmt: skip
    assert (playbook["source"], playbook["latest_version"], playbook["content"]) == ("manual", 1, PING)
    url = f"{URL}/{playbook['id']}"
    assert (await admin_client.get(url)).json() == playbook

    changed = (await admin_client.patch(url, json={"content": UPTIME})).json()
    assert (changed["latest_version"], changed["content"]) == (2, UPTIME)
    same = (await admin_client.patch(url, json={"content": UPTIME, "description": "uptime"})).json()
    assert (same["latest_version"], same["description"]) == (2, "uptime")
    back = (await admin_client.patch(url, json={"content": PING, "name": "ping again"})).json()
    assert (back["latest_version"], back["name"]) == (3, "ping again")

    listing = (await admin_client.get(f"{url}/versions")).json()
    assert listing["total"] == 3 and [v["version"] for v in listing["items"]] == [3, 2, 1]
    assert "content" not in listing["items"][0] and len(listing["items"][0]["checksum"]) == 64
    assert listing["items"][0]["checksum"] == listing["items"][2]["checksum"]
    second = (await admin_client.get(f"{url}/versions/2")).json()
    assert (second["version"], second["content"], second["playbook_id"]) == (2, UPTIME, playbook["id"])
    assert (await admin_client.get(f"{url}/versions/4")).status_code == 404
    paged = (await admin_client.get(f"{url}/versions", params={"size": 1, "page": 3})).json()
    assert [v["version"] for v in paged["items"]] == [1]

    listed = (await admin_client.get(URL, params={"source": "manual"})).json()
    assert [p["name"] for p in listed["items"]] == ["ping again"] and "content" not in listed["items"][0]

    assert (await admin_client.delete(url)).status_code == 204
    assert (await admin_client.get(url)).status_code == 404
    assert (await admin_client.get(f"{url}/versions/1")).status_code == 404
    events = (await admin_client.get("/api/v1/audit-log")).json()["items"]
    ours = [e for e in events if e["target_type"] == "playbook" and e["target_id"] == playbook["id"]]
    assert {e["action"] for e in ours} == {"playbook.create", "playbook.update", "playbook.delete"}
    assert all("content" not in e["detail"] and "hosts: all" not in str(e["detail"]) for e in ours)
    assert next(e["detail"] for e in ours if e["action"] == "playbook.create") == {"name": "ping", "version": 1}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("- hosts: all\n  tasks: [\n", "line 3: invalid YAML"),
        ("name: not a list\n", "a YAML list of plays"),
        (PING + "- name: No hosts\n  tasks: []\n", "play 2: has neither `hosts`"),
        ("- hosts: all\n  tasks:\n    - name: X\n      windflow.nowhere.nothing:\n", "couldn't resolve module"),
        ("- hosts: all\n  roles: [missing_role]\n", "the role 'missing_role' was not found"),
    ],
)
async def test_bad_content_answers_422_and_saves_nothing(admin_client: Client, content: str, expected: str) -> None:
    assert expected in content_error(await admin_client.post(URL, json={"name": "bad", "content": content}))
    assert await manual_count(admin_client) == 0

    playbook = await create(admin_client)
    url = f"{URL}/{playbook['id']}"
    assert expected in content_error(await admin_client.patch(url, json={"content": content, "name": "renamed"}))
    after = (await admin_client.get(url)).json()
    assert after == playbook


async def test_names_are_unique_per_organization(admin_client: Client) -> None:
    first = await create(admin_client, "same")
    response = await admin_client.post(URL, json={"name": "same", "content": PING})
    assert response.status_code == 409 and response.json()["code"] == "CONFLICT"
    other = await create(admin_client, "other")
    renamed = await admin_client.patch(f"{URL}/{other['id']}", json={"name": "same"})
    assert renamed.status_code == 409
    assert (await admin_client.patch(f"{URL}/{first['id']}", json={"name": "same"})).status_code == 200
    organization = await make_organization(admin_client)
    elsewhere = await admin_client.post(
        URL, json={"name": "same", "content": PING}, headers={"X-Organization-ID": organization["id"]}
    )
    assert elsewhere.status_code == 201


async def test_roles_and_other_organizations(admin_client: Client) -> None:
    viewer = await headers_for(admin_client, await make_user(admin_client, "viewer"))
    operator = await headers_for(admin_client, await make_user(admin_client, "operator"))
    assert (await admin_client.post(URL, json={"name": "v", "content": PING}, headers=viewer)).status_code == 403
    created = await admin_client.post(URL, json={"name": "o", "content": PING}, headers=operator)
    assert created.status_code == 201, created.text
    url = f"{URL}/{created.json()['id']}"
    for path in (url, f"{url}/versions", f"{url}/versions/1"):
        assert (await admin_client.get(path, headers=viewer)).status_code == 200
    assert (await admin_client.patch(url, json={"description": "x"}, headers=viewer)).status_code == 403
    assert (await admin_client.delete(url, headers=viewer)).status_code == 403
    assert (await admin_client.patch(url, json={"description": "x"}, headers=operator)).status_code == 200

    other = await make_organization(admin_client)
    outsider = await headers_for(
        admin_client, await make_user(admin_client, "admin", headers={"X-Organization-ID": other["id"]})
    )
    for path in (url, f"{url}/versions", f"{url}/versions/1"):
        assert (await admin_client.get(path, headers=outsider)).status_code == 404
    assert (await admin_client.patch(url, json={"description": "x"}, headers=outsider)).status_code == 404
    assert (await admin_client.delete(url, headers=outsider)).status_code == 404
    assert await manual_count(admin_client, outsider) == 0
    assert (await admin_client.delete(url, headers=operator)).status_code == 204


async def test_unknown_fields_and_empty_content_are_refused(admin_client: Client) -> None:
    response = await admin_client.post(URL, json={"name": "x", "content": PING, "source": "library"})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "body.source"
    assert (await admin_client.post(URL, json={"name": "x", "content": ""})).status_code == 422
    assert (await admin_client.get(URL, params={"source": "elsewhere"})).status_code == 422


async def test_the_library_is_in_every_organization(admin_client: Client) -> None:
    files = sorted(LIBRARY.glob("*.yml"))
    assert {"ping", "gather_facts", "update_packages", "install_docker", "reboot", "disk_usage", "uptime"} <= {
        f.stem for f in files
    }
    listing = (await admin_client.get(URL, params={"source": "library", "size": 100})).json()
    assert listing["total"] == len(files)
    assert all(p["source"] == "library" and p["latest_version"] == 1 and p["description"] for p in listing["items"])
    assert {"Ping", "Install Docker", "Disk usage"} <= {p["name"] for p in listing["items"]}

    organization = await make_organization(admin_client)
    later = await admin_client.get(
        URL, params={"source": "library", "size": 100}, headers={"X-Organization-ID": organization["id"]}
    )
    assert [p["name"] for p in later.json()["items"]] == [p["name"] for p in listing["items"]]

    ping = next(p for p in listing["items"] if p["name"] == "Ping")
    edited = await admin_client.patch(f"{URL}/{ping['id']}", json={"content": PING})
    assert (edited.json()["source"], edited.json()["latest_version"]) == ("manual", 2)


async def test_every_library_playbook_passes_the_real_syntax_check(admin_client: Client) -> None:
    listing = (await admin_client.get(URL, params={"source": "library", "size": 100})).json()
    bodies = [(await admin_client.get(f"{URL}/{p['id']}")).json()["content"] for p in listing["items"]]
    assert len(bodies) >= 7
    await asyncio.gather(*(validate_playbook(content) for content in bodies))
