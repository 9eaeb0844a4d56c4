"""Proposals: saving what passed, refusing what did not, checking on a real inventory, stacks."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.assistant.conftest import GOOD_PLAYBOOK, Client, ask, configure, conversation, fenced
from tests.assistant.scripted_llm import ScriptedLLM
from tests.factories import headers_for, make_user

LOCAL = {"name": "local", "hosts": [{"name": "controller", "connection": "local"}]}
UNSAFE = """- name: Configure the database user
  hosts: all
  gather_facts: false
  tasks:
    - name: Write the password file
      ansible.builtin.copy:
        dest: /tmp/windflow-db
        content: "ok\\n"
        mode: "0600"
      vars:
        db_password: Sup3rS3cretValue!
"""
COMPOSE = """services:
  db:
    image: postgres:16
    environment:
      POSTGRES_PASSWORD: ${POSTGRES_PASSWORD}
    volumes: [data:/var/lib/postgresql/data]
  web:
    image: nginx:1.27-alpine
    ports: ["8080:80"]
    depends_on: [db]
volumes:
  data: {}
"""


async def proposal_of(client: Client, llm: ScriptedLLM, reply: str, **context: Any) -> dict[str, Any]:
    llm.script(reply)
    turn = await ask(client, await conversation(client, context=context), "please")
    (proposal,) = turn["proposals"]
    return dict(proposal)


async def wait_check(client: Client, proposal_id: str, seconds: float = 120) -> dict[str, Any]:
    for _ in range(int(seconds * 10)):
        proposal = (await client.get(f"/api/v1/assistant/proposals/{proposal_id}")).json()
        check = [e for e in proposal["evidence"] if e["stage"] == "check"]
        if check and check[-1]["status"] != "running":
            return dict(proposal)
        await asyncio.sleep(0.1)
    raise AssertionError("the check run did not finish")


async def test_a_passed_playbook_is_saved_and_a_failed_one_is_refused(
    assistant: Client, scripted_llm: ScriptedLLM
) -> None:
    await configure(assistant, max_repairs=0)
    good = await proposal_of(assistant, scripted_llm, fenced(GOOD_PLAYBOOK))
    saved = await assistant.post(f"/api/v1/assistant/proposals/{good['id']}/save", json={"name": "motd"})
    assert saved.status_code == 201, saved.text
    playbook_id = saved.json()["saved"]["playbook_id"]
    playbook = (await assistant.get(f"/api/v1/playbooks/{playbook_id}")).json()
    assert playbook["source"] == "assistant" and playbook["content"] == good["content"]

    bad = await proposal_of(assistant, scripted_llm, fenced(UNSAFE))
    assert bad["status"] == "failed"
    safety = next(e for e in bad["evidence"] if e["stage"] == "safety")
    assert safety["status"] == "failed" and "db_password" in safety["detail"]
    refused = await assistant.post(f"/api/v1/assistant/proposals/{bad['id']}/save", json={"name": "unsafe"})
    assert refused.status_code == 409 and "safety" in refused.json()["detail"]
    assert (await assistant.get("/api/v1/playbooks?source=assistant")).json()["total"] == 1


async def test_viewers_chat_and_read_but_only_operators_save_or_check(
    assistant: Client, scripted_llm: ScriptedLLM
) -> None:
    viewer = await headers_for(assistant, await make_user(assistant, "viewer"))
    created = await assistant.post("/api/v1/assistant/conversations", json={}, headers=viewer)
    scripted_llm.script(fenced(GOOD_PLAYBOOK))
    path = f"/api/v1/assistant/conversations/{created.json()['id']}/messages"
    turn = (await assistant.post(path, json={"content": "motd"}, headers=viewer)).json()
    proposal_id = turn["proposals"][0]["id"]
    assert (await assistant.get(f"/api/v1/assistant/proposals/{proposal_id}", headers=viewer)).status_code == 200
    save = await assistant.post(f"/api/v1/assistant/proposals/{proposal_id}/save", json={"name": "x"}, headers=viewer)
    assert save.status_code == 403
    inventory = (await assistant.post("/api/v1/inventories", json=LOCAL)).json()
    check = await assistant.post(
        f"/api/v1/assistant/proposals/{proposal_id}/check", json={"inventory_id": inventory["id"]}, headers=viewer
    )
    assert check.status_code == 403
    operator = await headers_for(assistant, await make_user(assistant, "operator"))
    other = await assistant.get(f"/api/v1/assistant/proposals/{proposal_id}", headers=operator)
    assert other.status_code == 404  # someone else's proposal


async def test_a_playbook_drafted_for_an_inventory_is_checked_on_it_in_check_mode(
    assistant: Client, scripted_llm: ScriptedLLM
) -> None:
    await configure(assistant, tool_calling="off")
    inventory = (await assistant.post("/api/v1/inventories", json=LOCAL)).json()
    proposal = await proposal_of(assistant, scripted_llm, fenced(GOOD_PLAYBOOK), inventory_id=inventory["id"])
    assert '"controller"' in scripted_llm.chat_requests()[0].body["messages"][0]["content"]
    started = await assistant.post(
        f"/api/v1/assistant/proposals/{proposal['id']}/check", json={"inventory_id": inventory["id"]}
    )
    assert started.status_code == 201, started.text
    run_id = started.json()["run_id"]
    run = (await assistant.get(f"/api/v1/runs/{run_id}")).json()
    assert run["options"]["check"] is True and run["options"]["diff"] is True
    assert run["proposal_id"] == proposal["id"] and run["playbook_id"] is None
    checked = await wait_check(assistant, proposal["id"])
    check = checked["evidence"][-1]
    assert check["status"] == "passed", check
    assert list(check["data"]["hosts"]) == ["controller"] and check["data"]["hosts"]["controller"].startswith("ok")
    assert "controller" in check["detail"] and checked["status"] == "passed"
    relaunch = await assistant.post(f"/api/v1/runs/{run_id}/relaunch", json={"hosts": "all"})
    assert relaunch.status_code == 409


async def test_a_failing_check_fails_the_proposal(assistant: Client, scripted_llm: ScriptedLLM) -> None:
    failing = (
        GOOD_PLAYBOOK
        + """    - name: Read the configuration
      ansible.builtin.slurp:
        src: /nonexistent/windflow.conf
"""
    )
    proposal = await proposal_of(assistant, scripted_llm, fenced(failing))
    inventory = (await assistant.post("/api/v1/inventories", json=LOCAL)).json()
    await assistant.post(f"/api/v1/assistant/proposals/{proposal['id']}/check", json={"inventory_id": inventory["id"]})
    checked = await wait_check(assistant, proposal["id"])
    assert checked["evidence"][-1]["status"] == "failed" and checked["status"] == "failed"
    assert "controller" in checked["evidence"][-1]["detail"]
    refused = await assistant.post(f"/api/v1/assistant/proposals/{proposal['id']}/save", json={"name": "x"})
    assert refused.status_code == 409 and "check" in refused.json()["detail"]


async def test_a_stack_drafted_from_compose_is_compiled_checked_and_saved(
    assistant: Client, scripted_llm: ScriptedLLM
) -> None:
    reply = "This compose file runs PostgreSQL and nginx:\n\n```yaml\n" + COMPOSE + "```\n"
    proposal = await proposal_of(assistant, scripted_llm, reply, target="docker")
    assert proposal["kind"] == "stack"
    stages = [e["stage"] for e in proposal["evidence"]]
    assert stages == ["stack", "compile", "parse", "modules", "syntax", "lint", "safety"]
    assert proposal["status"] == "passed", proposal["evidence"]
    assert proposal["target"] == "docker"
    saved = await assistant.post(f"/api/v1/assistant/proposals/{proposal['id']}/save", json={"name": "pg-web"})
    assert saved.status_code == 201, saved.text
    stack = (await assistant.get(f"/api/v1/stacks/{saved.json()['saved']['stack_id']}")).json()
    assert stack["name"] == "pg-web" and stack["source"] == "assistant"
    assert stack["variables"] == ["postgres_password"]


async def test_a_playbook_proposed_about_a_playbook_is_a_diff(assistant: Client, scripted_llm: ScriptedLLM) -> None:
    original = GOOD_PLAYBOOK.replace("hello", "hi")
    created = await assistant.post("/api/v1/playbooks", json={"name": "motd", "content": original})
    playbook = created.json()
    proposal = await proposal_of(assistant, scripted_llm, fenced(GOOD_PLAYBOOK), playbook_id=playbook["id"])
    assert proposal["kind"] == "diff" and proposal["base"]["playbook_id"] == playbook["id"]
    assert '-        content: "hi\\n"' in proposal["base"]["diff"]
    assert '+        content: "hello\\n"' in proposal["base"]["diff"]
    saved = await assistant.post(f"/api/v1/assistant/proposals/{proposal['id']}/save", json={})
    assert saved.status_code == 201, saved.text
    assert saved.json()["saved"] == {
        "type": "playbook",
        "playbook_id": playbook["id"],
        "version": 2,
        "name": "motd",
    }
