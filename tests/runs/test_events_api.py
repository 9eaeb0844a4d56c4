"""``GET /runs/{id}/events`` and ``/runs/{id}/stdout`` on a real run (embedded mode, local host)."""

from __future__ import annotations

import uuid
from typing import Any

from litestar.testing import AsyncTestClient

from server.db.tables import RunEvent
from server.runs.stream import strip_ansi
from tests.factories import headers_for, in_app_loop, make_organization, make_user
from tests.runs.test_launch import make_inventory, make_playbook, wait_finished

Client = AsyncTestClient[Any]
LOCAL_H = {"name": "local-h", "hosts": [{"name": "h", "connection": "local"}]}


def debug_playbook(tasks: int) -> str:
    lines = ["- name: many tasks", "  hosts: all", "  gather_facts: false", "  tasks:"]
    for number in range(1, tasks + 1):
        lines += [f"    - name: task {number}", "      ansible.builtin.debug:", f'        msg: "line {number}"']
    return "\n".join(lines) + "\n"


async def finished_run(client: Client, tasks: int = 12) -> dict[str, Any]:
    playbook = await make_playbook(client, debug_playbook(tasks), name=f"debug {tasks}")
    inventory = await make_inventory(client, LOCAL_H)
    launched = await client.post("/api/v1/runs", json={"playbook_id": playbook["id"], "inventory_id": inventory["id"]})
    assert launched.status_code == 201, launched.text
    run = await wait_finished(client, launched.json()["id"])
    assert run["status"] == "successful", run
    return run


async def test_pages_cover_every_counter_once(admin_client: Client) -> None:
    run = await finished_run(admin_client)
    url = f"/api/v1/runs/{run['id']}/events"
    counters: list[int] = []
    after, pages = 0, 0
    while True:
        response = await admin_client.get(url, params={"after": after, "limit": 7})
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["after"] == after and page["run_status"] == "successful"
        assert page["last_counter"] == run["event_count"]
        assert len(page["items"]) <= 7
        counters += [item["counter"] for item in page["items"]]
        assert page["next_after"] == (page["items"][-1]["counter"] if page["items"] else after)
        after, pages = page["next_after"], pages + 1
        if page["finished"]:
            break
        assert pages < 100
    assert counters == list(range(1, run["event_count"] + 1))
    assert pages == -(-run["event_count"] // 7)
    past_the_end = (await admin_client.get(url, params={"after": after})).json()
    assert past_the_end["items"] == [] and past_the_end["next_after"] == after and past_the_end["finished"]


async def test_an_event_has_its_public_fields(admin_client: Client) -> None:
    run = await finished_run(admin_client, tasks=2)
    page = (await admin_client.get(f"/api/v1/runs/{run['id']}/events", params={"limit": 1000})).json()
    assert page["finished"] and len(page["items"]) == run["event_count"]
    ok = [e for e in page["items"] if e["event"] == "runner_on_ok"]
    assert [e["task"] for e in ok] == ["task 1", "task 2"]
    first = ok[0]
    assert first["run_id"] == run["id"] and first["host"] == "h" and first["data"]["res"]["msg"] == "line 1"
    assert first["created"] and "id" not in first and "run" not in first
    default = (await admin_client.get(f"/api/v1/runs/{run['id']}/events")).json()
    assert len(default["items"]) == min(200, run["event_count"])


async def colour(client: Client, run_id: str) -> None:
    """What ``ANSIBLE_FORCE_COLOR`` would store: the ``ok:`` lines in green."""
    rows = await in_app_loop(
        client,
        lambda: RunEvent.select(RunEvent.id, RunEvent.stdout).where(
            RunEvent.run == uuid.UUID(run_id), RunEvent.event == "runner_on_ok"
        ),
    )
    for row in rows:
        stdout = f"\x1b[0;32m{row['stdout']}\x1b[0m"
        await in_app_loop(
            client, lambda r=row, s=stdout: RunEvent.update({RunEvent.stdout: s}).where(RunEvent.id == r["id"])
        )


async def test_stdout_is_every_event_in_order(admin_client: Client) -> None:
    run = await finished_run(admin_client)
    await colour(admin_client, run["id"])
    items = (await admin_client.get(f"/api/v1/runs/{run['id']}/events", params={"limit": 1000})).json()["items"]
    expected = "".join(e["stdout"] + "\n" for e in items if e["stdout"])
    response = await admin_client.get(f"/api/v1/runs/{run['id']}/stdout")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text == expected
    assert "TASK [task 12]" in response.text and "PLAY RECAP" in response.text
    assert "\x1b[0;32mok: [h]" in response.text, "colours are kept"
    plain = await admin_client.get(f"/api/v1/runs/{run['id']}/stdout", params={"ansi": "false"})
    assert plain.text == strip_ansi(expected) and "\x1b" not in plain.text


def test_strip_ansi_removes_escapes_and_keeps_text() -> None:
    coloured = "\x1b[0;32mok: [h]\x1b[0m\n\x1b]0;title\x07\x1b[1;31mfailed\x1b[0m \x1b(B"
    assert strip_ansi(coloured) == "ok: [h]\nfailed "


async def test_another_organizations_run_is_not_found(admin_client: Client) -> None:
    run = await finished_run(admin_client, tasks=1)
    other = await make_organization(admin_client)
    outsider = await make_user(admin_client, "admin", headers={"X-Organization-ID": other["id"]})
    headers = await headers_for(admin_client, outsider)
    for path in ("events", "stdout"):
        response = await admin_client.get(f"/api/v1/runs/{run['id']}/{path}", headers=headers)
        assert response.status_code == 404, response.text
        assert response.json()["code"] == "NOT_FOUND"
    missing = await admin_client.get("/api/v1/runs/00000000-0000-0000-0000-000000000000/events")
    assert missing.status_code == 404


async def test_paging_bounds(admin_client: Client) -> None:
    run = await finished_run(admin_client, tasks=1)
    highest = await admin_client.get(f"/api/v1/runs/{run['id']}/events", params={"after": 2**31 - 1, "limit": 1000})
    assert highest.status_code == 200, highest.text
    assert highest.json()["items"] == [] and highest.json()["finished"]
    for params in ({"limit": 0}, {"limit": 1001}, {"after": -1}, {"after": 2**31}):
        response = await admin_client.get(f"/api/v1/runs/{run['id']}/events", params=params)
        assert response.status_code == 422, (params, response.text)
