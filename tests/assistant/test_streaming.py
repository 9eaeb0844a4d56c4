"""A real server and a real streaming client: leaving mid-stream loses nothing; stopping keeps the text."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from tests.assistant.scripted_llm import Reply, ScriptedLLM

Served = tuple[str, dict[str, str]]
WORDS = [f"word{i}" for i in range(120)]


async def _conversation(http: httpx.AsyncClient) -> str:
    response = await http.post("/api/v1/assistant/conversations", json={})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _reply(http: httpx.AsyncClient, conversation_id: str, seconds: float = 30) -> dict[str, Any]:
    """The stored assistant message once it is no longer streaming."""
    for _ in range(int(seconds * 10)):
        items = (await http.get(f"/api/v1/assistant/conversations/{conversation_id}/messages")).json()["items"]
        if len(items) == 2 and items[1]["status"] != "streaming":
            return dict(items[1])
        await asyncio.sleep(0.1)
    raise AssertionError(f"the reply never finished: {items}")


async def test_a_client_that_leaves_mid_stream_loses_nothing(served: Served, scripted_llm: ScriptedLLM) -> None:
    base_url, auth = served
    scripted_llm.script(Reply(text=" ".join(WORDS), piece_delay=0.01))
    async with httpx.AsyncClient(base_url=base_url, headers=auth, timeout=30) as http:
        conversation_id = await _conversation(http)
        seen = []
        headers = {"accept": "text/event-stream"}
        body = {"content": "count to 120"}
        path = f"/api/v1/assistant/conversations/{conversation_id}/messages"
        async with http.stream("POST", path, json=body, headers=headers) as response:
            assert response.status_code == 200
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    seen.append(json.loads(line[5:]))
                if len(seen) == 3:
                    break  # the client goes away
        assert all(event["type"] == "delta" for event in seen)
        reply = await _reply(http, conversation_id)
    assert reply["status"] == "complete" and reply["content"] == " ".join(WORDS)


async def test_a_stopped_reply_keeps_what_was_written(served: Served, scripted_llm: ScriptedLLM) -> None:
    base_url, auth = served
    scripted_llm.script(Reply(text=" ".join(WORDS), piece_delay=0.05))
    async with httpx.AsyncClient(base_url=base_url, headers=auth, timeout=30) as http:
        conversation_id = await _conversation(http)
        path = f"/api/v1/assistant/conversations/{conversation_id}/messages"
        sending = asyncio.create_task(http.post(path, json={"content": "talk a lot"}))
        for _ in range(100):
            await asyncio.sleep(0.1)
            stopped = (await http.post(f"/api/v1/assistant/conversations/{conversation_id}/stop")).json()
            if stopped["stopped"]:
                break
        turn = (await sending).json()
    message = turn["message"]
    assert message["status"] == "stopped" and message["finish_reason"] == "stopped"
    assert message["content"].startswith("word0 ") and "word119" not in message["content"]


async def test_a_reply_being_written_reads_back_with_what_it_says_so_far(
    served: Served, scripted_llm: ScriptedLLM
) -> None:
    base_url, auth = served
    scripted_llm.script(Reply(text=" ".join(WORDS), piece_delay=0.05))
    async with httpx.AsyncClient(base_url=base_url, headers=auth, timeout=30) as http:
        conversation_id = await _conversation(http)
        path = f"/api/v1/assistant/conversations/{conversation_id}/messages"
        sending = asyncio.create_task(http.post(path, json={"content": "talk"}))
        partial = ""
        for _ in range(100):
            await asyncio.sleep(0.1)
            items = (await http.get(path)).json()["items"]
            if len(items) == 2 and items[1]["status"] == "streaming" and items[1]["content"].startswith("word0 word1"):
                partial = items[1]["content"]
                break
        await sending
        reply = await _reply(http, conversation_id)
    assert partial and " ".join(WORDS).startswith(partial) and len(partial) < len(reply["content"])
