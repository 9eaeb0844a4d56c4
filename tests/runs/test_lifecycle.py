"""Run outcomes in the embedded mode: failure, cancel, timeout, no_log, relaunch, bad input."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest
from litestar.testing import AsyncTestClient

from tests.factories import headers_for, in_app_loop, make_organization, make_user
from tests.runs.test_launch import LOCAL, make_inventory, make_playbook, wait_finished

Client = AsyncTestClient[Any]
TWO_HOSTS = {
    "name": "two",
    "hosts": [
        {"name": "good", "connection": "local"},
        {"name": "bad", "connection": "local", "vars": {"should_fail": True}},
    ],
}
FAILS_ON_BAD = """- name: fails on one host
  hosts: all
  gather_facts: false
  tasks:
    - name: fail where asked
      ansible.builtin.fail:
        msg: asked to fail
      when: should_fail | default(false)
"""
SLEEPS = """- name: sleeps
  hosts: all
  gather_facts: false
  tasks:
    - name: sleep a long time
      ansible.builtin.command: sleep 300
      changed_when: false
"""
SECRET = """- name: keeps a secret
  hosts: all
  gather_facts: false
  tasks:
    - name: handle a secret
      ansible.builtin.debug:
        msg: "the secret is {{ hidden_value }}"
      no_log: true
"""


async def launch(client: Client, playbook: dict[str, Any], inventory: dict[str, Any], **options: Any) -> dict[str, Any]:
    body = {"playbook_id": playbook["id"], "inventory_id": inventory["id"], **options}
    response = await client.post("/api/v1/runs", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def wait_status(client: Client, run_id: str, status: str, seconds: float = 60) -> dict[str, Any]:
    for _ in range(int(seconds * 20)):
        run = (await client.get(f"/api/v1/runs/{run_id}")).json()
        if run["status"] == status:
            return dict(run)
        await asyncio.sleep(0.05)
    raise AssertionError(f"run never reached {status}: {run}")


async def test_a_failed_host_fails_the_run_and_relaunch_failed_targets_it(admin_client: Client) -> None:
    playbook = await make_playbook(admin_client, FAILS_ON_BAD, "fails")
    inventory = await make_inventory(admin_client, TWO_HOSTS)
    run = await wait_finished(admin_client, (await launch(admin_client, playbook, inventory))["id"])
    assert run["status"] == "failed" and "exited with status 2" in run["reason"]
    assert run["host_stats"]["bad"]["failed"] == 1 and run["host_stats"]["good"]["failed"] == 0

    again = await admin_client.post(f"/api/v1/runs/{run['id']}/relaunch", json={"hosts": "failed"})
    assert again.status_code == 201, again.text
    assert again.json()["options"]["limit"] == "bad" and again.json()["relaunch_of"] == run["id"]
    rerun = await wait_finished(admin_client, again.json()["id"])
    assert set(rerun["host_stats"]) == {"bad"}

    everything = await admin_client.post(f"/api/v1/runs/{run['id']}/relaunch", json={"hosts": "all"})
    assert everything.status_code == 201 and everything.json()["options"].get("limit", "") == ""
    await wait_finished(admin_client, everything.json()["id"])


async def test_cancel_stops_a_running_run_within_a_second(admin_client: Client) -> None:
    playbook = await make_playbook(admin_client, SLEEPS, "sleeps")
    inventory = await make_inventory(admin_client, LOCAL)
    run = await launch(admin_client, playbook, inventory)
    await wait_status(admin_client, run["id"], "running")
    await asyncio.sleep(1.5)  # let Ansible start the command
    began = time.monotonic()
    response = await admin_client.post(f"/api/v1/runs/{run['id']}/cancel")
    assert response.status_code == 200, response.text
    ended = await wait_finished(admin_client, run["id"], 30)
    assert ended["status"] == "canceled" and ended["reason"] == "canceled on request"
    print(f"cancel took {time.monotonic() - began:.2f} s")  # a figure, not an assertion
    assert not [p for p in _sleepers()], "the command Ansible started is still running"
    assert (await admin_client.post(f"/api/v1/runs/{run['id']}/cancel")).status_code == 409


def _sleepers() -> list[int]:
    import psutil

    return [p.pid for p in psutil.process_iter(["cmdline"]) if (p.info["cmdline"] or [])[:2] == ["sleep", "300"]]


async def test_timeout_ends_the_run_with_status_timeout(admin_client: Client) -> None:
    playbook = await make_playbook(admin_client, SLEEPS, "sleeps")
    inventory = await make_inventory(admin_client, LOCAL)
    run = await wait_finished(admin_client, (await launch(admin_client, playbook, inventory, timeout=2))["id"], 60)
    assert run["status"] == "timeout" and "timeout of 2 s" in run["reason"]


async def test_no_log_output_is_never_stored(admin_client: Client) -> None:
    playbook = await make_playbook(admin_client, SECRET, "secret")
    inventory = await make_inventory(admin_client, LOCAL)
    run = await launch(admin_client, playbook, inventory, extra_vars={"hidden_value": "tops3cret-value"})
    finished = await wait_finished(admin_client, run["id"])
    assert finished["status"] == "successful"
    from server.db.tables import RunEvent

    rows = await in_app_loop(
        admin_client,
        lambda: RunEvent.select(RunEvent.stdout, RunEvent.data).where(RunEvent.run == uuid.UUID(run["id"])),
    )
    assert rows and "tops3cret-value" not in repr(rows)


async def test_twenty_runs_at_once_all_finish(admin_client: Client) -> None:
    playbook = await make_playbook(admin_client)
    inventory = await make_inventory(admin_client, LOCAL)
    runs = await asyncio.gather(*[launch(admin_client, playbook, inventory) for _ in range(20)])
    finished = [await wait_finished(admin_client, run["id"], 300) for run in runs]
    assert [run["status"] for run in finished] == ["successful"] * 20


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"playbook_id": str(uuid.uuid4())}, "body.playbook_id"),
        ({"inventory_id": str(uuid.uuid4())}, "body.inventory_id"),
        ({"version": 7}, "body.version"),
        ({"extra_vars": "not=a mapping"}, "body.extra_vars"),
        ({"extra_vars": {"bad-name": 1}}, "body.extra_vars.bad-name"),
        ({"extra_vars": {"db_password": "x"}}, "body.extra_vars.db_password"),
        ({"forks": -1}, "body.forks"),
        ({"verbosity": 9}, "body.verbosity"),
        ({"credentials": [str(uuid.uuid4())]}, "body.credentials.0"),
        ({"tags": ["a b"]}, "body.tags.0"),
        ({"limit": "no-such-host"}, "body.limit"),
    ],
)
async def test_bad_launches_answer_422_and_store_nothing(
    admin_client: Client, change: dict[str, Any], field: str
) -> None:
    playbook = await make_playbook(admin_client)
    inventory = await make_inventory(admin_client, LOCAL)
    body = {"playbook_id": playbook["id"], "inventory_id": inventory["id"], **change}
    response = await admin_client.post("/api/v1/runs", json=body)
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]
    assert (await admin_client.get("/api/v1/runs")).json()["total"] == 0


async def test_another_organizations_inventory_or_run_is_not_reachable(admin_client: Client) -> None:
    playbook = await make_playbook(admin_client)
    other = await make_organization(admin_client)
    elsewhere = {"X-Organization-ID": other["id"]}
    foreign = (await admin_client.post("/api/v1/inventories", json=LOCAL, headers=elsewhere)).json()
    body = {"playbook_id": playbook["id"], "inventory_id": foreign["id"]}
    response = await admin_client.post("/api/v1/runs", json=body)
    assert [e["field"] for e in response.json()["errors"]] == ["body.inventory_id"]

    inventory = await make_inventory(admin_client, LOCAL)
    run = await launch(admin_client, playbook, inventory)
    outsider = await headers_for(admin_client, await make_user(admin_client, "admin", headers=elsewhere))
    assert (await admin_client.get(f"/api/v1/runs/{run['id']}", headers=outsider)).status_code == 404
    assert (await admin_client.post(f"/api/v1/runs/{run['id']}/cancel", headers=outsider)).status_code == 404
    viewer = await headers_for(admin_client, await make_user(admin_client, "viewer"))
    assert (await admin_client.post("/api/v1/runs", json=body, headers=viewer)).status_code == 403
    await wait_finished(admin_client, run["id"])


async def test_a_timed_out_run_leaves_no_process_behind(admin_client: Client) -> None:
    playbook = await make_playbook(admin_client, SLEEPS, "sleeps")
    inventory = await make_inventory(admin_client, LOCAL)
    run = await wait_finished(admin_client, (await launch(admin_client, playbook, inventory, timeout=3))["id"], 60)
    assert run["status"] == "timeout"
    assert _sleepers() == []


def test_old_run_directories_are_pruned_and_recent_ones_kept(tmp_path: Path) -> None:
    import datetime as dt
    import os

    from server.runs.recovery import prune_artifacts
    from server.settings import Settings

    settings = Settings(data_dir=tmp_path, run_retention_days=30)
    old, recent = tmp_path / "runs" / "old", tmp_path / "runs" / "recent"
    for directory in (old, recent):
        (directory / "artifacts").mkdir(parents=True)
    forty_days_ago = time.time() - 40 * 86_400
    os.utime(old, (forty_days_ago, forty_days_ago))
    assert prune_artifacts(settings, dt.datetime.now(dt.UTC)) == 1
    assert not old.exists() and recent.exists()


async def test_a_run_that_cannot_be_prepared_fails_saying_why(admin_client: Client) -> None:
    playbook = await make_playbook(admin_client)
    inventory = await make_inventory(admin_client, LOCAL)
    runs_dir = Path(admin_client.app.state.settings.data_dir) / "runs"
    await anyio.Path(runs_dir).parent.mkdir(parents=True, exist_ok=True)
    await anyio.Path(runs_dir).write_text("a file where the run directories belong")
    run = await wait_finished(admin_client, (await launch(admin_client, playbook, inventory))["id"], 60)
    assert run["status"] == "failed" and run["reason"].startswith("could not prepare the run"), run
