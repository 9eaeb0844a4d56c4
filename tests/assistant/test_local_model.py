"""A real small model (SmolLM2-135M under llama.cpp) through WindFlow's streaming endpoint.

Its answers are not useful content and are not asserted: this proves the path with a real model,
tokens arriving one by one over the wire and the whole reply stored.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.app import create_app
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.lab.local_llm import MODEL_ALIAS, LocalModel
from tests.serving import serving


@pytest.fixture(scope="module")
def local_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalModel]:
    model = LocalModel(Path(tmp_path_factory.mktemp("llama")))
    model.start()
    try:
        yield model
    finally:
        model.stop()


async def test_tokens_of_a_real_model_stream_one_by_one_and_the_reply_is_stored(
    clean_database: None, make_settings: Any, local_model: LocalModel
) -> None:
    settings = make_settings(llm_model=f"openai/{MODEL_ALIAS}", llm_api_base=local_model.api_base)
    with serving(create_app(settings)) as base_url:
        async with httpx.AsyncClient(base_url=base_url, timeout=120) as http:
            login = await http.post("/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
            http.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
            answer = await http.put("/api/v1/assistant/settings", json={"max_tokens": 40, "context_window": 2048})
            assert answer.status_code == 200, answer.text
            created = await http.post("/api/v1/assistant/conversations", json={})
            path = f"/api/v1/assistant/conversations/{created.json()['id']}/messages"
            reads_with_text = 0
            events: list[dict[str, Any]] = []
            buffer = ""
            headers = {"accept": "text/event-stream"}
            async with http.stream(
                "POST", path, json={"content": "Say hello to Ansible."}, headers=headers
            ) as response:
                assert response.status_code == 200
                async for raw in response.aiter_text():
                    buffer += raw
                    *complete, buffer = buffer.replace("\r\n", "\n").split("\n\n")
                    new = [json.loads(block[5:]) for block in complete if block.startswith("data:")]
                    reads_with_text += any(event["type"] == "delta" for event in new)
                    events += new
            deltas = [event for event in events if event["type"] == "delta"]
            assert events[-1]["type"] == "done", events[-1]
            assert len(deltas) >= 3 and reads_with_text >= 3  # pieces arrived as separate reads
            stored = (await http.get(path)).json()["items"]
    assert stored[1]["status"] == "complete" and stored[1]["content"] == "".join(d["text"] for d in deltas)
    assert stored[1]["tokens_out"] > 0
