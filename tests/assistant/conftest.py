"""An app whose assistant talks to the scripted OpenAI-protocol server, and helpers to read its streams."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from server.app import create_app
from tests.assistant.scripted_llm import ScriptedLLM
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.factories import login
from tests.serving import serving

API_KEY = "sk-test-0123456789abcdefghijklmnop"
MODEL = "openai/scripted"
Client = AsyncTestClient[Any]


def llm_settings(llm: ScriptedLLM, **overrides: Any) -> dict[str, Any]:
    return {"llm_model": MODEL, "llm_api_base": llm.api_base, "llm_api_key": API_KEY, **overrides}


@pytest.fixture
async def assistant(clean_database: None, make_settings: Any, scripted_llm: ScriptedLLM) -> AsyncIterator[Client]:
    """The first admin's client on an app configured for the scripted model (no tools unless asked)."""
    settings = make_settings(**llm_settings(scripted_llm))
    async with AsyncTestClient(create_app(settings)) as client:
        client.headers.update(await login(client, ADMIN_EMAIL, ADMIN_PASSWORD))
        yield client


async def configure(client: Client, **values: Any) -> dict[str, Any]:
    response = await client.put("/api/v1/assistant/settings", json=values)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def conversation(client: Client, **body: Any) -> str:
    response = await client.post("/api/v1/assistant/conversations", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def ask(client: Client, conversation_id: str, content: str, **extra: Any) -> dict[str, Any]:
    """Send a message without streaming: the finished turn (201)."""
    body = {"content": content, **extra}
    response = await client.post(f"/api/v1/assistant/conversations/{conversation_id}/messages", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def sse_events(text: str) -> list[dict[str, Any]]:
    """Every ``data:`` payload of a server-sent event stream, decoded."""
    events = []
    for block in text.replace("\r\n", "\n").replace("\r", "\n").split("\n\n"):
        data = [line[len("data:") :].strip() for line in block.splitlines() if line.startswith("data:")]
        if data:
            events.append(json.loads("\n".join(data)))
    return events


async def ask_streaming(client: Client, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    response = await client.post(path, json=body, headers={"accept": "text/event-stream"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return sse_events(response.text)


def of_type(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [event for event in events if event["type"] == kind]


GOOD_PLAYBOOK = """- name: Make sure the motd is there
  hosts: all
  gather_facts: false
  tasks:
    - name: Write the message of the day
      ansible.builtin.copy:
        dest: /tmp/windflow-motd
        content: "hello\\n"
        mode: "0644"
"""


def fenced(playbook: str, before: str = "Here is the playbook:", after: str = "Run it in check mode first.") -> str:
    return f"{before}\n\n```yaml\n{playbook}```\n\n{after}"


@pytest.fixture
def served(clean_database: None, make_settings: Any, scripted_llm: ScriptedLLM) -> Iterator[tuple[str, dict[str, str]]]:
    """The same app under a real uvicorn server (for clients that leave mid-stream): URL and auth headers."""
    settings = make_settings(**llm_settings(scripted_llm))
    with serving(create_app(settings)) as base_url:
        response = httpx.post(f"{base_url}/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        assert response.status_code == 200, response.text
        yield base_url, {"Authorization": f"Bearer {response.json()['access_token']}"}
