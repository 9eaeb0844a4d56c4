"""Conversations with the scripted OpenAI-protocol server: streaming, storing, tools, outages, budgets."""

from __future__ import annotations

from typing import Any

from tests.assistant.conftest import (
    API_KEY,
    GOOD_PLAYBOOK,
    Client,
    ask,
    ask_streaming,
    configure,
    conversation,
    fenced,
    of_type,
)
from tests.assistant.scripted_llm import Reply, ScriptedLLM, ToolCall
from tests.factories import headers_for, make_user


async def test_without_a_model_the_assistant_says_how_to_configure_one(admin_client: Client) -> None:
    status = (await admin_client.get("/api/v1/assistant")).json()
    assert status["configured"] is False and "WINDFLOW_LLM_MODEL" in status["how_to_configure"]
    response = await admin_client.post("/api/v1/assistant/conversations", json={})
    assert response.status_code == 503, response.text
    problem = response.json()
    assert problem["code"] == "ASSISTANT_NOT_CONFIGURED"
    assert "WINDFLOW_LLM_MODEL" in problem["detail"] and "/api/v1/assistant/settings" in problem["detail"]
    assert (await admin_client.get("/api/v1/assistant/conversations")).json()["total"] == 0


async def test_a_streamed_reply_arrives_in_pieces_and_is_stored_whole(
    assistant: Client, scripted_llm: ScriptedLLM
) -> None:
    assert (await assistant.get("/api/v1/assistant")).json()["configured"] is True
    scripted_llm.script(Reply(text="Ansible runs tasks in order, host by host.", usage=(40, 9)))
    conversation_id = await conversation(assistant, title="basics")
    path = f"/api/v1/assistant/conversations/{conversation_id}/messages"
    events = await ask_streaming(assistant, path, {"content": "How does Ansible run a play?"})
    deltas = of_type(events, "delta")
    assert len(deltas) > 3
    assert "".join(d["text"] for d in deltas) == "Ansible runs tasks in order, host by host."
    done = events[-1]
    assert done["type"] == "done" and done["usage"] == {"tokens_in": 40, "tokens_out": 9}

    messages = (await assistant.get(path)).json()["items"]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[0]["content"] == "How does Ansible run a play?"
    reply = messages[1]
    assert reply["id"] == done["message_id"] and reply["status"] == "complete"
    assert reply["content"] == "Ansible runs tasks in order, host by host."
    assert (reply["tokens_in"], reply["tokens_out"]) == (40, 9) and reply["model"] == "openai/scripted"

    (request,) = scripted_llm.chat_requests()
    assert request.body["stream"] is True and request.body["max_tokens"] == 2048
    assert request.body["messages"][0]["role"] == "system"
    assert request.body["messages"][-1] == {"role": "user", "content": "How does Ansible run a play?"}
    assert "tools" not in request.body  # an unknown model is assumed to have no function calling
    assert request.headers["authorization"] == f"Bearer {API_KEY}"


async def test_a_playbook_in_prose_and_fences_becomes_a_proposal_that_passes(
    assistant: Client, scripted_llm: ScriptedLLM
) -> None:
    scripted_llm.script(fenced(GOOD_PLAYBOOK))
    turn = await ask(assistant, await conversation(assistant), "Write a motd playbook")
    (proposal,) = turn["proposals"]
    assert proposal["kind"] == "playbook" and proposal["status"] == "passed", proposal["evidence"]
    assert [e["stage"] for e in proposal["evidence"]] == ["parse", "modules", "syntax", "lint", "safety"]
    assert all(e["status"] in ("passed", "warning") for e in proposal["evidence"])
    assert all(e["duration_ms"] >= 0 for e in proposal["evidence"])
    assert len(proposal["attempts"]) == 1
    assert turn["message"]["proposals"] == [{"id": proposal["id"], "kind": "playbook", "status": "passed"}]
    read = (await assistant.get(f"/api/v1/assistant/proposals/{proposal['id']}")).json()
    assert read["content"] == proposal["content"] and read["status"] == "passed"


async def test_yaml_written_straight_into_prose_is_found_too(assistant: Client, scripted_llm: ScriptedLLM) -> None:
    scripted_llm.script("Sure. This does it:\n\n" + GOOD_PLAYBOOK + "\nThat is all there is to it.")
    turn = await ask(assistant, await conversation(assistant), "motd please")
    (proposal,) = turn["proposals"]
    assert proposal["kind"] == "playbook" and proposal["status"] == "passed", proposal["evidence"]
    assert "That is all" not in proposal["content"]


BROKEN = GOOD_PLAYBOOK.replace("ansible.builtin.copy:", "ansible.builtin.copyy:")


async def test_an_unknown_module_is_repaired_on_the_second_attempt(
    assistant: Client, scripted_llm: ScriptedLLM
) -> None:
    scripted_llm.script(fenced(BROKEN), fenced(GOOD_PLAYBOOK, before="Fixed: the module is ansible.builtin.copy."))
    conversation_id = await conversation(assistant)
    events = await ask_streaming(
        assistant, f"/api/v1/assistant/conversations/{conversation_id}/messages", {"content": "motd"}
    )
    proposals = of_type(events, "proposal")
    assert [p["attempt"] for p in proposals] == [1, 2] and len({p["id"] for p in proposals}) == 1
    first = [e for e in of_type(events, "evidence") if e["attempt"] == 1]
    assert {e["stage"]: e["status"] for e in first}["modules"] == "failed"
    assert any(d.get("attempt") == 2 for d in of_type(events, "delta"))  # the repair streamed too

    repair = scripted_llm.chat_requests()[1].body["messages"][-1]["content"]
    assert "copyy" in repair and "modules" in repair
    proposal = (await assistant.get(f"/api/v1/assistant/proposals/{proposals[0]['id']}")).json()
    assert proposal["status"] == "passed" and len(proposal["attempts"]) == 2
    assert proposal["attempts"][0]["status"] == "failed" and proposal["attempts"][1]["status"] == "passed"
    assert "ansible.builtin.copy:" in proposal["content"]


async def test_a_reply_cut_off_at_the_token_limit_is_truncated_and_never_passes(
    assistant: Client, scripted_llm: ScriptedLLM
) -> None:
    await configure(assistant, max_repairs=0, max_tokens=64)
    cut = (
        "Here you go:\n\n```yaml\n- name: Big play\n  hosts: all\n  tasks:\n"
        "    - name: One\n      ansible.builtin.debug:\n"
    )
    cut = cut.replace("Big play", "A big play")
    scripted_llm.script(Reply(text=cut, finish_reason="length"))
    turn = await ask(assistant, await conversation(assistant), "a big playbook")
    assert turn["message"]["finish_reason"] == "length"
    (proposal,) = turn["proposals"]
    parse = proposal["evidence"][0]
    assert parse["stage"] == "parse" and parse["status"] == "failed" and parse["detail"].startswith("truncated")
    assert proposal["status"] == "failed"
    assert scripted_llm.chat_requests()[0].body["max_tokens"] == 64


async def test_a_tool_calling_model_reads_windflow_data(assistant: Client, scripted_llm: ScriptedLLM) -> None:
    await configure(assistant, tool_calling="on")
    body = {"name": "web", "hosts": [{"name": "web1", "address": "127.0.0.2"}], "vars": {"http_port": 8080}}
    inventory = (await assistant.post("/api/v1/inventories", json=body)).json()
    scripted_llm.script(
        Reply(tool_calls=[ToolCall("get_inventory", {"inventory_id": inventory["id"]})]),
        Reply(text="The inventory web has one host, web1, serving on port 8080."),
    )
    conversation_id = await conversation(assistant, context={"inventory_id": inventory["id"]})
    events = await ask_streaming(
        assistant, f"/api/v1/assistant/conversations/{conversation_id}/messages", {"content": "What is in it?"}
    )
    (tool,) = of_type(events, "tool")
    assert tool["name"] == "get_inventory" and tool["ok"] is True and tool["result"] == "web"

    first, second = scripted_llm.chat_requests()
    assert {t["function"]["name"] for t in first.body["tools"]} >= {"get_inventory", "get_run", "module_doc"}
    assert inventory["id"] in first.body["messages"][0]["content"]  # the context is named, not pasted
    answer = second.body["messages"][-1]
    assert answer["role"] == "tool" and "web1" in answer["content"] and "8080" in answer["content"]
    stored = (await assistant.get(f"/api/v1/assistant/conversations/{conversation_id}/messages")).json()["items"]
    assert stored[1]["tool_calls"][0]["name"] == "get_inventory"


async def test_a_model_without_tools_gets_the_context_in_its_prompt(
    assistant: Client, scripted_llm: ScriptedLLM
) -> None:
    await configure(assistant, tool_calling="off")
    body = {"name": "db", "hosts": [{"name": "db1", "address": "127.0.0.3"}]}
    inventory = (await assistant.post("/api/v1/inventories", json=body)).json()
    scripted_llm.script("db1 is the only host.")
    conversation_id = await conversation(assistant)
    await ask(assistant, conversation_id, "Which hosts?", context={"inventory_id": inventory["id"]})
    (request,) = scripted_llm.chat_requests()
    assert "tools" not in request.body
    assert "db1" in request.body["messages"][0]["content"] and "127.0.0.3" in request.body["messages"][0]["content"]


async def test_a_provider_outage_is_a_502_and_keeps_the_users_message(
    assistant: Client, scripted_llm: ScriptedLLM
) -> None:
    scripted_llm.script(*[Reply(status=503, error="the model is overloaded") for _ in range(3)])
    conversation_id = await conversation(assistant)
    response = await assistant.post(
        f"/api/v1/assistant/conversations/{conversation_id}/messages", json={"content": "hello?"}
    )
    assert response.status_code == 502, response.text
    problem = response.json()
    assert problem["code"] == "LLM_PROVIDER_ERROR" and "the model is overloaded" in problem["detail"]
    assert API_KEY not in response.text
    assert len(scripted_llm.chat_requests()) == 3  # the first try and two retries
    messages = (await assistant.get(f"/api/v1/assistant/conversations/{conversation_id}/messages")).json()["items"]
    assert messages[0]["content"] == "hello?"
    assert messages[1]["status"] == "error" and messages[1]["error"]["code"] == "LLM_PROVIDER_ERROR"


async def test_a_provider_that_echoes_the_key_never_gets_it_shown_or_logged(
    assistant: Client, scripted_llm: ScriptedLLM, caplog: Any
) -> None:
    scripted_llm.script(Reply(status=401, error=f"Incorrect API key provided: {API_KEY}. Check it."))
    caplog.set_level("DEBUG")
    conversation_id = await conversation(assistant)
    response = await assistant.post(
        f"/api/v1/assistant/conversations/{conversation_id}/messages", json={"content": "hello"}
    )
    assert response.status_code == 502 and "Incorrect API key provided: ********" in response.json()["detail"]
    assert len(scripted_llm.chat_requests()) == 1  # a 401 is not retried
    stored = (await assistant.get(f"/api/v1/assistant/conversations/{conversation_id}/messages")).text
    assert API_KEY not in response.text and API_KEY not in stored and API_KEY not in caplog.text


async def test_a_429_is_retried_after_the_time_the_provider_asks(assistant: Client, scripted_llm: ScriptedLLM) -> None:
    scripted_llm.script(Reply(status=429, headers={"Retry-After": "1"}, error="slow down"), "Here I am.")
    turn = await ask(assistant, await conversation(assistant), "hi")
    assert turn["message"]["content"] == "Here I am."
    first, second = scripted_llm.chat_requests()
    assert second.at - first.at >= 0.9


async def test_the_daily_budget_refuses_a_turn_before_anything_is_stored(
    assistant: Client, scripted_llm: ScriptedLLM
) -> None:
    await configure(assistant, daily_token_budget=100)
    scripted_llm.script(Reply(text="That used the budget.", usage=(90, 20)))
    conversation_id = await conversation(assistant)
    await ask(assistant, conversation_id, "spend it")
    response = await assistant.post(
        f"/api/v1/assistant/conversations/{conversation_id}/messages", json={"content": "once more"}
    )
    assert response.status_code == 429, response.text
    assert response.json()["code"] == "ASSISTANT_BUDGET_EXCEEDED" and int(response.headers["retry-after"]) > 0
    assert (await assistant.get(f"/api/v1/assistant/conversations/{conversation_id}/messages")).json()["total"] == 2
    await assistant.delete(f"/api/v1/assistant/conversations/{conversation_id}")
    again = await assistant.post("/api/v1/assistant/conversations", json={})
    response = await assistant.post(
        f"/api/v1/assistant/conversations/{again.json()['id']}/messages", json={"content": "x"}
    )
    assert response.status_code == 429  # deleting conversations gives no tokens back


async def test_history_is_trimmed_to_the_context_window_newest_kept(
    assistant: Client, scripted_llm: ScriptedLLM
) -> None:
    await configure(assistant, context_window=1024, max_tokens=128)
    conversation_id = await conversation(assistant)
    for number in range(6):
        scripted_llm.script(f"answer {number} " + "filler " * 60)
        await ask(assistant, conversation_id, f"question {number} " + "padding " * 60)
    sent = scripted_llm.chat_requests()[-1].body["messages"]
    contents = " ".join(str(m["content"]) for m in sent)
    assert "question 5" in contents and "question 0" not in contents
    assert sent[0]["role"] == "system"


async def test_settings_are_for_admins_and_never_show_the_key(assistant: Client, scripted_llm: ScriptedLLM) -> None:
    body = {
        "name": "llm",
        "kind": "llm_api_key",
        "inputs": {"provider": "openai_compatible", "api_key": "sk-organization-key-0123456789"},
    }
    credential = (await assistant.post("/api/v1/credentials", json=body)).json()
    wrong = (
        await assistant.post(
            "/api/v1/credentials", json={"name": "pw", "kind": "password", "inputs": {"username": "u", "password": "p"}}
        )
    ).json()
    response = await assistant.put("/api/v1/assistant/settings", json={"llm_api_key": wrong["id"]})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "body.llm_api_key"
    settings = await configure(assistant, llm_api_key=credential["id"], temperature=0.5)
    assert settings["effective"]["has_api_key"] is True and settings["effective"]["temperature"] == 0.5
    assert "sk-organization-key" not in str(settings)

    scripted_llm.script("ok")
    await ask(assistant, await conversation(assistant), "hi")
    (request,) = scripted_llm.chat_requests()
    assert request.headers["authorization"] == "Bearer sk-organization-key-0123456789"
    assert request.body["temperature"] == 0.5
    deleted = await assistant.delete(f"/api/v1/credentials/{credential['id']}")
    assert deleted.status_code == 409 and "assistant" in deleted.json()["detail"]

    viewer = await headers_for(assistant, await make_user(assistant, "viewer"))
    assert (await assistant.get("/api/v1/assistant/settings", headers=viewer)).status_code == 403
    assert (await assistant.get("/api/v1/assistant", headers=viewer)).json()["configured"] is True


async def test_conversations_are_private_but_admins_may_read_them(assistant: Client, scripted_llm: ScriptedLLM) -> None:
    viewer = await headers_for(assistant, await make_user(assistant, "viewer"))
    other = await headers_for(assistant, await make_user(assistant, "operator"))
    created = await assistant.post("/api/v1/assistant/conversations", json={"title": "mine"}, headers=viewer)
    conversation_id = created.json()["id"]
    scripted_llm.script("hello viewer")
    path = f"/api/v1/assistant/conversations/{conversation_id}"
    sent = await assistant.post(f"{path}/messages", json={"content": "hi"}, headers=viewer)
    assert sent.status_code == 201, sent.text
    assert (await assistant.get(path, headers=other)).status_code == 404
    assert (await assistant.get(f"{path}/messages", headers=other)).status_code == 404
    assert (await assistant.get(path)).status_code == 200  # the admin, for audit
    assert (await assistant.get(f"{path}/messages")).json()["total"] == 2
    assert (await assistant.post(f"{path}/messages", json={"content": "x"})).status_code == 404  # read only
    assert (await assistant.patch(path, json={"title": "x"})).status_code == 404
    listed = (await assistant.get("/api/v1/assistant/conversations", headers=other)).json()
    assert listed["total"] == 0
    everyone = (await assistant.get("/api/v1/assistant/conversations?all=true")).json()
    assert conversation_id in {c["id"] for c in everyone["items"]}
    renamed = await assistant.patch(path, json={"title": "renamed"}, headers=viewer)
    assert renamed.json()["title"] == "renamed"


async def test_bad_input_is_a_422_with_the_field(assistant: Client) -> None:
    conversation_id = await conversation(assistant)
    path = f"/api/v1/assistant/conversations/{conversation_id}/messages"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"content": ""}, "body.content"),
        ({"content": "a\x00b"}, "body.content"),
        (
            {"content": "x", "context": {"inventory_id": "00000000-0000-0000-0000-000000000001"}},
            "body.context.inventory_id",
        ),
        ({"content": "x", "context": {"colour": "red"}}, "body.context.colour"),
    ]
    for body, field in cases:
        response = await assistant.post(path, json=body)
        assert response.status_code == 422, (body, response.text)
        assert field in {e["field"] for e in response.json()["errors"]}, response.json()
    response = await assistant.put("/api/v1/assistant/settings", json={"temperature": 7})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "body.temperature"
    assert (await assistant.get(path)).json()["total"] == 0
