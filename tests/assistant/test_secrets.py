"""Planted secrets never reach the model: not a credential printed by a run, not a vault string, not the key."""

from __future__ import annotations

from typing import Any

from tests.assistant.conftest import API_KEY, Client, ask, conversation
from tests.assistant.scripted_llm import ScriptedLLM
from tests.factories import files_containing
from tests.runs.test_launch import make_playbook, wait_finished

PLANTED = "Planted-Passw0rd-7f3c9e"
VAULT = """$ANSIBLE_VAULT;1.1;AES256
62313365396662343061393464336163383764373764613633653634306231386433626436623361
6132333837633637356639343465336539373865376162650a666566343534633639616361653061"""
LEAKY = """- name: Leak on purpose
  hosts: all
  gather_facts: false
  tasks:
    - name: Fail and print the password
      ansible.builtin.fail:
        msg: "could not log in as {{ ansible_user }} with {{ ansible_password }}"
"""


async def test_planted_secrets_are_absent_from_every_request_and_the_stored_output(
    assistant: Client, scripted_llm: ScriptedLLM, tmp_path: Any
) -> None:
    body = {"name": "deploy", "kind": "password", "inputs": {"username": "deploy", "password": PLANTED}}
    credential = (await assistant.post("/api/v1/credentials", json=body)).json()
    hosts = [{"name": "controller", "connection": "local", "credential": credential["id"]}]
    inventory = (await assistant.post("/api/v1/inventories", json={"name": "local", "hosts": hosts})).json()
    playbook = await make_playbook(assistant, LEAKY, "leaky")
    launched = await assistant.post(
        "/api/v1/runs", json={"playbook_id": playbook["id"], "inventory_id": inventory["id"]}
    )
    run = await wait_finished(assistant, launched.json()["id"])
    assert run["status"] == "failed"
    stdout = (await assistant.get(f"/api/v1/runs/{run['id']}/stdout")).text
    assert PLANTED not in stdout and "with ********" in stdout
    assert PLANTED not in (await assistant.get(f"/api/v1/runs/{run['id']}/events")).text

    scripted_llm.script("The login failed.", "Noted.", "Noted again.")
    await assistant.post(f"/api/v1/runs/{run['id']}/explain", json={})
    conversation_id = await conversation(assistant, context={"run_id": run["id"]})
    await ask(
        assistant, conversation_id, f"This vault string came from group_vars:\n{VAULT}\nand db_password: {PLANTED}"
    )
    await ask(assistant, conversation_id, f"the password is {PLANTED}, is that right?")

    requests = scripted_llm.chat_requests()
    assert len(requests) == 3
    for request in requests:
        assert PLANTED not in request.text
        assert "62313365396662343061393464336163" not in request.text
        assert API_KEY not in request.text
    assert "[REDACTED" in requests[1].text and "could not log in as deploy with ********" in requests[0].text
    stored = (await assistant.get(f"/api/v1/assistant/conversations/{conversation_id}/messages")).json()
    assert stored["total"] == 4 and PLANTED not in str(stored)  # what the user pasted is kept redacted too
    assert "This vault string came from group_vars" in stored["items"][0]["content"]
    assert files_containing(tmp_path / "data", PLANTED) == []
