"""Launching runs in the embedded mode: real ansible-playbook on this machine, every event stored."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar.testing import AsyncTestClient

Client = AsyncTestClient[Any]
PING = """- name: ping the controller
  hosts: all
  gather_facts: false
  tasks:
    - name: ping
      ansible.builtin.ping:
    - name: say hello
      ansible.builtin.debug:
        msg: "hello {{ who | default('world') }}"
"""
LOCAL = {"name": "local", "hosts": [{"name": "controller", "connection": "local"}]}


async def make_playbook(client: Client, content: str = PING, name: str = "ping") -> dict[str, Any]:
    response = await client.post("/api/v1/playbooks", json={"name": name, "content": content})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def make_inventory(client: Client, body: dict[str, Any] = LOCAL) -> dict[str, Any]:
    response = await client.post("/api/v1/inventories", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def wait_finished(client: Client, run_id: str, seconds: float = 120) -> dict[str, Any]:
    for _ in range(int(seconds * 10)):
        run = (await client.get(f"/api/v1/runs/{run_id}")).json()
        if run["status"] not in ("pending", "running"):
            return dict(run)
        await asyncio.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish: {run}")


async def test_a_run_goes_from_pending_to_successful(admin_client: Client) -> None:
    playbook = await make_playbook(admin_client)
    inventory = await make_inventory(admin_client)
    body = {"playbook_id": playbook["id"], "inventory_id": inventory["id"], "extra_vars": {"who": "windflow"}}
    launched = await admin_client.post("/api/v1/runs", json=body)
    assert launched.status_code == 201, launched.text
    assert launched.json()["status"] in ("pending", "running")
    run = await wait_finished(admin_client, launched.json()["id"])
    assert run["status"] == "successful", run
    assert run["host_stats"]["controller"]["ok"] == 2
    assert run["event_count"] > 5 and run["version"] == 1


async def test_metrics_count_runs_events_and_lag(admin_client: Client) -> None:
    playbook = await make_playbook(admin_client)
    inventory = await make_inventory(admin_client)
    launched = await admin_client.post(
        "/api/v1/runs", json={"playbook_id": playbook["id"], "inventory_id": inventory["id"]}
    )
    run = await wait_finished(admin_client, launched.json()["id"])
    text = (await admin_client.get("/metrics")).text
    assert 'windflow_runs_finished_total{status="successful"} 1.0' in text
    assert f"windflow_run_events_ingested_total {float(run['event_count'])}" in text
    assert 'windflow_run_event_lag_seconds_count{stage="stored"}' in text
    assert 'windflow_run_event_lag_seconds_count{stage="published"}' in text
    assert "windflow_run_duration_seconds_count 1.0" in text
    assert 'windflow_runs{status="successful"}' in text and "windflow_run_queue_depth" in text
