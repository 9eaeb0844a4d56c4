"""``WINDFLOW_RUN_ONE_PER_HOST``: runs sharing a host take turns; runs on other hosts do not wait."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from litestar.testing import AsyncTestClient

from server.app import create_app
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.factories import login
from tests.runs.test_launch import make_inventory, make_playbook, wait_finished
from tests.runs.test_lifecycle import launch

NAP = """- name: nap
  hosts: all
  gather_facts: false
  tasks:
    - name: wait a little
      ansible.builtin.command: sleep 2
      changed_when: false
"""
HOSTS = {"name": "pair", "hosts": [{"name": "a", "connection": "local"}, {"name": "b", "connection": "local"}]}


def when(run: dict[str, Any], key: str) -> dt.datetime:
    return dt.datetime.fromisoformat(run[key])


async def test_runs_on_one_host_take_turns_and_others_do_not_wait(clean_database: None, make_settings: Any) -> None:
    async with AsyncTestClient(create_app(make_settings(run_one_per_host=True, worker_concurrency=3))) as client:
        client.headers.update(await login(client, ADMIN_EMAIL, ADMIN_PASSWORD))
        playbook = await make_playbook(client, NAP, "nap")
        inventory = await make_inventory(client, HOSTS)
        on_a, also_a, on_b = await asyncio.gather(
            launch(client, playbook, inventory, limit="a"),
            launch(client, playbook, inventory, limit="a"),
            launch(client, playbook, inventory, limit="b"),
        )
        first, second, other = [await wait_finished(client, run["id"], 120) for run in (on_a, also_a, on_b)]
        assert {first["status"], second["status"], other["status"]} == {"successful"}
        one, two = sorted((first, second), key=lambda run: when(run, "started_at"))
        assert when(two, "started_at") >= when(one, "finished_at"), "two runs used host a at once"
        # b's run overlapped with a's first run instead of queueing behind it.
        assert when(other, "started_at") < when(one, "finished_at")
