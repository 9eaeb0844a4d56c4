"""The assistant's jobs end to end: explain a failed run, explain a playbook, optimise one with measured runs."""

from __future__ import annotations

from typing import Any

from tests.assistant.conftest import GOOD_PLAYBOOK, Client, ask_streaming, fenced, of_type
from tests.assistant.scripted_llm import Reply, ScriptedLLM
from tests.runs.test_launch import make_inventory, make_playbook, wait_finished

FAILING = """- name: Prepare the disk
  hosts: all
  gather_facts: false
  tasks:
    - name: Say where we are
      ansible.builtin.debug:
        msg: "on {{ inventory_hostname }}"
    - name: Check the free space
      ansible.builtin.fail:
        msg: "disk full on {{ inventory_hostname }}"
"""
SLOW = """- name: Slow setup
  hosts: all
  gather_facts: false
  tasks:
    - name: Wait for the first thing
      ansible.builtin.command: sleep 0.4
      changed_when: false
    - name: Wait for the second thing
      ansible.builtin.command: sleep 0.4
      changed_when: false
"""
FAST = """- name: Slow setup
  hosts: all
  gather_facts: false
  tasks:
    - name: Report readiness
      ansible.builtin.debug:
        msg: ready
"""


async def launch(client: Client, content: str, inventory: dict[str, Any], name: str) -> dict[str, Any]:
    playbook = await make_playbook(client, content, name)
    launched = await client.post("/api/v1/runs", json={"playbook_id": playbook["id"], "inventory_id": inventory["id"]})
    assert launched.status_code == 201, launched.text
    return {"playbook": playbook, "run": await wait_finished(client, launched.json()["id"])}


async def test_explaining_a_failed_run_sends_its_failures_and_proposes_a_fix(
    assistant: Client, scripted_llm: ScriptedLLM
) -> None:
    inventory = await make_inventory(assistant)
    launched = await launch(assistant, FAILING, inventory, "disk")
    run = launched["run"]
    assert run["status"] == "failed"
    fixed = FAILING.replace(
        'ansible.builtin.fail:\n        msg: "disk full on {{ inventory_hostname }}"',
        "ansible.builtin.debug:\n        msg: checked",
    )
    scripted_llm.script(fenced(fixed, before="The task 'Check the free space' fails on purpose: it is a fail task."))
    events = await ask_streaming(assistant, f"/api/v1/runs/{run['id']}/explain", {})
    done = events[-1]
    assert done["type"] == "done"
    assert done["actions"] == [
        {
            "type": "relaunch",
            "label": "Relaunch the failed hosts (controller)",
            "method": "POST",
            "path": f"/api/v1/runs/{run['id']}/relaunch",
            "body": {"hosts": "failed"},
        }
    ]
    (proposal,) = done["proposals"]
    read = (await assistant.get(f"/api/v1/assistant/proposals/{proposal['id']}")).json()
    assert read["kind"] == "diff" and read["base"]["playbook_id"] == launched["playbook"]["id"]
    assert "-      ansible.builtin.fail:" in read["base"]["diff"]

    prompt = scripted_llm.chat_requests()[0].body["messages"][-1]["content"]
    for fact in (
        "disk full on controller",
        "Check the free space",
        "ansible.builtin.fail",
        "controller",
        "failed_hosts",
    ):
        assert fact in prompt, fact
    conversation = (await assistant.get(f"/api/v1/assistant/conversations/{read['conversation_id']}")).json()
    assert conversation["context"]["run_id"] == run["id"]


async def test_explaining_a_playbook_in_plain_words(assistant: Client, scripted_llm: ScriptedLLM) -> None:
    playbook = await make_playbook(assistant, GOOD_PLAYBOOK, "motd")
    scripted_llm.script("It writes a greeting into /tmp/windflow-motd on every host; running it twice is safe.")
    response = await assistant.post(f"/api/v1/playbooks/{playbook['id']}/explain", json={})
    assert response.status_code == 201, response.text
    assert response.json()["proposals"] == [] and "twice is safe" in response.json()["message"]["content"]
    prompt = scripted_llm.chat_requests()[0].body["messages"][-1]["content"]
    assert "dest: /tmp/windflow-motd" in prompt and "plain words" in prompt  # noqa: S108 - text, not a file


async def test_optimising_a_playbook_measures_both_versions_on_a_disposable_target(
    assistant: Client, scripted_llm: ScriptedLLM
) -> None:
    body = {
        "name": "scratch",
        "hosts": [{"name": "controller", "connection": "local"}],
        "vars": {"windflow_disposable": True},
    }
    inventory = await make_inventory(assistant, body)
    launched = await launch(assistant, SLOW, inventory, "slow")
    assert launched["run"]["status"] == "successful"
    reasons = "1. The two sleeps only wait; a debug task reports the same readiness at once.\n\n"
    scripted_llm.script(reasons + fenced(FAST, before="Here is the faster playbook:"))
    playbook_id = launched["playbook"]["id"]
    events = await ask_streaming(
        assistant, f"/api/v1/playbooks/{playbook_id}/optimise", {"inventory_id": inventory["id"]}
    )
    prompt = scripted_llm.chat_requests()[0].body["messages"][-1]["content"]
    assert "Wait for the first thing" in prompt and "s on average" in prompt

    compare = [e for e in of_type(events, "evidence") if e["stage"] == "compare"]
    assert len(compare) == 1 and compare[0]["status"] == "passed", compare
    (summary,) = events[-1]["proposals"]
    proposal = (await assistant.get(f"/api/v1/assistant/proposals/{summary['id']}")).json()
    assert proposal["kind"] == "diff" and proposal["status"] == "passed"
    measured = next(e for e in proposal["evidence"] if e["stage"] == "compare")
    data = measured["data"]
    assert data["mode"] == "real"
    assert data["before"]["wall_s"] > data["after"]["wall_s"] > 0
    assert set(data["before"]["tasks"]) == {"Wait for the first thing", "Wait for the second thing"}
    assert data["before"]["tasks"]["Wait for the first thing"] >= 0.4
    assert set(data["after"]["tasks"]) == {"Report readiness"}
    assert data["second"]["changed"] == 0 and "changed=0" in measured["detail"]


async def test_optimising_without_an_inventory_ranks_tasks_but_runs_nothing(
    assistant: Client, scripted_llm: ScriptedLLM
) -> None:
    playbook = await make_playbook(assistant, SLOW, "slow")
    scripted_llm.script(fenced(FAST))
    response = await assistant.post(f"/api/v1/playbooks/{playbook['id']}/optimise", json={})
    assert response.status_code == 201, response.text
    (proposal,) = response.json()["proposals"]
    assert proposal["kind"] == "diff" and "compare" not in {e["stage"] for e in proposal["evidence"]}
    assert "No recent run" in scripted_llm.chat_requests()[0].body["messages"][-1]["content"]
    assert (await assistant.get("/api/v1/runs")).json()["total"] == 0


async def test_metrics_count_requests_tokens_first_tokens_and_stages(
    assistant: Client, scripted_llm: ScriptedLLM
) -> None:
    scripted_llm.script(Reply(text=fenced(GOOD_PLAYBOOK), usage=(120, 80), first_token_delay=0.3))
    response = await assistant.post("/api/v1/assistant/conversations", json={})
    turn = await assistant.post(
        f"/api/v1/assistant/conversations/{response.json()['id']}/messages", json={"content": "motd"}
    )
    assert turn.json()["message"]["first_token_ms"] >= 300
    text = (await assistant.get("/metrics")).text
    assert 'windflow_assistant_requests_total{job="chat"} 1.0' in text
    assert 'windflow_assistant_tokens_total{direction="in"} 120.0' in text
    assert 'windflow_assistant_tokens_total{direction="out"} 80.0' in text
    assert "windflow_assistant_first_token_seconds_count 1.0" in text
    for stage in ("parse", "modules", "syntax", "lint", "safety"):
        assert f'windflow_assistant_stage_seconds_count{{stage="{stage}"}} 1.0' in text


async def test_a_provider_that_never_answers_times_out_as_a_502(assistant: Client, scripted_llm: ScriptedLLM) -> None:
    await assistant.put("/api/v1/assistant/settings", json={"timeout": 5})
    scripted_llm.script(Reply(text="too late", first_token_delay=6))
    response = await assistant.post("/api/v1/assistant/conversations", json={})
    turn = await assistant.post(
        f"/api/v1/assistant/conversations/{response.json()['id']}/messages", json={"content": "hello"}
    )
    assert turn.status_code == 502 and "within 5 s" in turn.json()["detail"], turn.text
    text = (await assistant.get("/metrics")).text
    assert 'windflow_assistant_errors_total{code="LLM_PROVIDER_ERROR"} 1.0' in text


async def test_optimising_on_an_inventory_that_is_not_disposable_runs_both_in_check_mode(
    assistant: Client, scripted_llm: ScriptedLLM
) -> None:
    inventory = await make_inventory(assistant)
    playbook = await make_playbook(assistant, SLOW, "slow")
    scripted_llm.script(fenced(FAST))
    response = await assistant.post(
        f"/api/v1/playbooks/{playbook['id']}/optimise", json={"inventory_id": inventory["id"]}
    )
    assert response.status_code == 201, response.text
    (proposal,) = response.json()["proposals"]
    measured = next(e for e in proposal["evidence"] if e["stage"] == "compare")
    assert measured["data"]["mode"] == "check" and "second" not in measured["data"]
    assert "idempotence not measured" in measured["detail"]
    runs = (await assistant.get("/api/v1/runs")).json()["items"]
    assert len(runs) == 2 and all(run["options"]["check"] for run in runs)
    assert {run["proposal_id"] for run in runs} == {proposal["id"]}
