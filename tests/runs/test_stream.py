"""``WebSocket /runs/{id}/stream``: every event exactly once, in order, across reconnects.

The end-to-end tests follow real runs (embedded mode, ~50 debug tasks on the local host). The
``Follower`` tests feed it a channel that loses, repeats and reorders messages, and a client that
stops reading, which the test client cannot do (its sends never block).
"""

from __future__ import annotations

import asyncio
import queue
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import pytest
from litestar.channels import ChannelsPlugin
from litestar.exceptions import WebSocketDisconnect
from litestar.testing import AsyncTestClient, WebSocketTestSession

from server.api.security import _pop_query_param
from server.db.tables import Run
from server.runs import stream
from server.runs.events import channel_of
from server.runs.stream import Follower
from tests.factories import headers_for, in_app_loop, make_organization, make_user
from tests.runs.test_events_api import debug_playbook
from tests.runs.test_launch import make_inventory, make_playbook, wait_finished

Client = AsyncTestClient[Any]
LOCAL_H = {"name": "local-h", "hosts": [{"name": "h", "connection": "local"}]}
RECEIVE_TIMEOUT = 60.0
FINAL = ("successful", "failed", "canceled", "timeout")


async def launch(client: Client, tasks: int = 50) -> dict[str, Any]:
    playbook = await make_playbook(client, debug_playbook(tasks), name=f"debug {uuid.uuid4().hex[:6]}")
    inventory = await make_inventory(client, {**LOCAL_H, "name": f"local {uuid.uuid4().hex[:6]}"})
    response = await client.post("/api/v1/runs", json={"playbook_id": playbook["id"], "inventory_id": inventory["id"]})
    assert response.status_code == 201, response.text
    return dict(response.json())


@asynccontextmanager
async def connect(
    client: Client, run_id: str, after: int | str = 0, **params: str
) -> AsyncIterator[WebSocketTestSession]:
    query = "&".join(f"{k}={v}" for k, v in {"after": str(after), **params}.items())
    with await client.websocket_connect(f"/api/v1/runs/{run_id}/stream?{query}") as ws:
        yield ws


def receive(ws: WebSocketTestSession) -> dict[str, Any]:
    message: dict[str, Any] = ws.receive_json(timeout=RECEIVE_TIMEOUT)
    return message


def receive_all(ws: WebSocketTestSession) -> tuple[list[dict[str, Any]], int]:
    """Every message until the server closes; and the close code."""
    messages = []
    while True:
        try:
            messages.append(receive(ws))
        except WebSocketDisconnect as closed:
            return messages, closed.code
        except queue.Empty:
            raise AssertionError(f"nothing for {RECEIVE_TIMEOUT} s after {messages[-3:]}") from None


def counters(messages: list[dict[str, Any]]) -> list[int]:
    return [event["counter"] for m in messages if m["type"] == "events" for event in m["events"]]


def closed_with(ws: WebSocketTestSession) -> int:
    with pytest.raises(WebSocketDisconnect) as closed:
        receive(ws)
    return closed.value.code


async def assert_complete(client: Client, run_id: str, messages: list[dict[str, Any]], seen: list[int]) -> None:
    run = await wait_finished(client, run_id)
    assert run["status"] == "successful", run
    assert seen == list(range(1, run["event_count"] + 1))
    assert run["event_count"] > 100  # 50 tasks: a start and a result each, and more
    last = messages[-1]
    assert last["type"] == "status" and last["status"] == "successful", last
    assert last["event_count"] == run["event_count"]
    finals = [i for i, m in enumerate(messages) if m["type"] == "status" and m["status"] in FINAL]
    assert finals in ([len(messages) - 1], [0, len(messages) - 1]), "only the first and last can be final"


async def test_a_client_connected_from_the_start_gets_every_event_once(admin_client: Client) -> None:
    run = await launch(admin_client)
    async with connect(admin_client, run["id"]) as ws:
        messages, code = receive_all(ws)
    assert code == 1000
    assert messages[0]["type"] == "status" and messages[0]["status"] in ("pending", "running")
    assert any(m["type"] == "progress" for m in messages)
    await assert_complete(admin_client, run["id"], messages, counters(messages))
    statuses = [m["status"] for m in messages if m["type"] == "status"]
    assert statuses == sorted(set(statuses), key=statuses.index), "a status is sent when it changes"
    stored = await admin_client.get(f"/api/v1/runs/{run['id']}/events", params={"limit": 1000})
    streamed = [event for m in messages if m["type"] == "events" for event in m["events"]]
    assert streamed == stored.json()["items"], "live events look like stored ones"


async def test_a_client_that_reconnects_misses_nothing_and_sees_nothing_twice(admin_client: Client) -> None:
    run = await launch(admin_client)
    first: list[dict[str, Any]] = []
    async with connect(admin_client, run["id"]) as ws:
        while len(counters(first)) < 30:
            first.append(receive(ws))
            assert first[-1]["type"] != "status" or first[-1]["status"] not in FINAL
    last_seen = counters(first)[-1]
    await until_unsubscribed(admin_client, run["id"])
    await asyncio.sleep(1)  # events are stored meanwhile: the next client reads them, then live ones
    async with connect(admin_client, run["id"], after=last_seen) as ws:
        rest, code = receive_all(ws)
    assert code == 1000 and rest[0]["type"] == "status"
    await assert_complete(admin_client, run["id"], rest, counters(first) + counters(rest))
    await until_unsubscribed(admin_client, run["id"])


async def until_unsubscribed(client: Client, run_id: str) -> None:
    """A client that left, or whose stream ended, holds no subscription."""
    plugin = client.app.plugins.get(ChannelsPlugin)
    for _ in range(50):
        if not plugin._channels.get(channel_of(run_id)):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the follower of a closed WebSocket is still subscribed")


async def test_a_client_arriving_after_the_end_gets_everything_then_the_final_status(admin_client: Client) -> None:
    run = await launch(admin_client)
    finished = await wait_finished(admin_client, run["id"])
    async with connect(admin_client, run["id"]) as ws:
        messages, code = receive_all(ws)
    assert code == 1000
    assert messages[0] == messages[-1]  # the current status first, and last after the events
    await assert_complete(admin_client, run["id"], messages, counters(messages))
    async with connect(admin_client, run["id"], after=finished["event_count"] - 3) as ws:
        tail, code = receive_all(ws)
    assert code == 1000 and counters(tail) == list(range(finished["event_count"] - 2, finished["event_count"] + 1))


async def test_a_slow_client_gets_everything_once_or_is_told_where_to_resume(admin_client: Client) -> None:
    run = await launch(admin_client)
    seen: list[int] = []
    after, connections = 0, 0
    while True:
        connections += 1
        assert connections < 20
        async with connect(admin_client, run["id"], after=after) as ws:
            messages: list[dict[str, Any]] = []
            code = 0
            while not code:
                try:
                    messages.append(receive(ws))
                except WebSocketDisconnect as closed:
                    code = closed.code
                await asyncio.sleep(0.05)
        seen += counters(messages)
        if code == 1000:
            break
        assert code == 1013 and messages[-1]["type"] == "lagged", (code, messages[-1:])
        after = seen[-1] if seen else after
    await assert_complete(admin_client, run["id"], messages, seen)


async def test_a_token_can_come_in_the_query_string(admin_client: Client) -> None:
    run = await launch(admin_client, tasks=1)
    await wait_finished(admin_client, run["id"])
    access_token = admin_client.headers.pop("Authorization").removeprefix("Bearer ")
    try:
        async with connect(admin_client, run["id"], token=access_token) as ws:
            messages, code = receive_all(ws)
        assert code == 1000 and messages[-1]["status"] == "successful"
        created = await admin_client.post(
            "/api/v1/tokens", json={"name": "stream"}, headers={"Authorization": f"Bearer {access_token}"}
        )
        assert created.status_code == 201, created.text
        async with connect(admin_client, run["id"], token=created.json()["token"]) as ws:
            assert receive_all(ws)[1] == 1000
        for params in ({}, {"token": "not-a-token"}, {"token": ""}):
            async with connect(admin_client, run["id"], **params) as ws:
                assert closed_with(ws) == 4401, params
    finally:
        admin_client.headers["Authorization"] = f"Bearer {access_token}"


async def test_another_organization_or_a_bad_counter_is_refused(admin_client: Client) -> None:
    run = await launch(admin_client, tasks=1)
    await wait_finished(admin_client, run["id"])
    other = await make_organization(admin_client)
    outsider = await make_user(admin_client, "admin", headers={"X-Organization-ID": other["id"]})
    own = admin_client.headers["Authorization"]
    admin_client.headers["Authorization"] = (await headers_for(admin_client, outsider))["Authorization"]
    try:
        async with connect(admin_client, run["id"]) as ws:
            assert closed_with(ws) == 4404
    finally:
        admin_client.headers["Authorization"] = own
    async with connect(admin_client, str(uuid.uuid4())) as ws:
        assert closed_with(ws) == 4404
    for after in ("-1", "x", str(2**31)):
        async with connect(admin_client, run["id"], after=after) as ws:
            assert closed_with(ws) == 4422


# The follower on its own: a lossy channel and a stuck client.


async def stored_run(client: Client) -> tuple[uuid.UUID, list[dict[str, Any]]]:
    """A finished run put back to ``running``, and its stored events."""
    run = await launch(client, tasks=5)
    run = await wait_finished(client, run["id"])
    run_id = uuid.UUID(run["id"])
    events = await in_app_loop(client, lambda: stream.events_after(run_id, 0, 1000))
    assert len(events) == run["event_count"] > 12
    await in_app_loop(client, lambda: Run.update({Run.status: "running"}).where(Run.id == run_id).run())
    return run_id, events


def encoded(message: dict[str, Any]) -> bytes:
    return msgspec.json.encode(message)


async def channel(messages: list[dict[str, Any]]) -> AsyncIterator[bytes]:
    for message in messages:
        yield encoded(message)
    await asyncio.sleep(3600)


async def follow(client: Client, follower: Follower, live: AsyncIterator[bytes]) -> int:
    return await in_app_loop(client, lambda: follower.follow(live))


async def test_the_follower_fills_gaps_and_drops_repeats(admin_client: Client) -> None:
    run_id, events = await stored_run(admin_client)
    total = len(events)

    def batch(first: int, last: int) -> dict[str, Any]:
        return {"type": "events", "run_id": str(run_id), "events": events[first - 1 : last]}

    status = {"type": "status", "run_id": str(run_id), "reason": "", "event_count": 0}
    live = [
        {**status, "status": "running"},
        batch(1, 3),
        batch(7, 9),  # 4-6 were dropped from the backlog
        batch(2, 8),  # already sent
        {"type": "progress", "task": "task 2", "tasks_started": 2, "hosts": {}},
        batch(11, 12),  # 10 is missing
        {**status, "status": "successful", "event_count": total},  # the rest was dropped
    ]
    sent: list[dict[str, Any]] = []

    async def send(text: str) -> None:
        sent.append(msgspec.json.decode(text))

    code = await follow(admin_client, Follower(run_id, 0, send), channel(live))
    assert code == 1000
    assert counters(sent) == list(range(1, total + 1))
    assert [m["type"] for m in sent if m["type"] != "events"] == ["status", "progress", "status"]
    assert sent[0]["status"] == "running" and sent[-1]["status"] == "successful"
    assert sent[-1]["event_count"] == total


async def test_a_stuck_client_is_told_where_to_resume(admin_client: Client) -> None:
    run_id, events = await stored_run(admin_client)
    sent: list[dict[str, Any]] = []

    async def send(text: str) -> None:
        if len(sent) == 2:  # the status and one page went out; then the client stops reading
            sent.append({"type": "stuck"})
            await asyncio.sleep(3600)
        sent.append(msgspec.json.decode(text))

    follower = Follower(run_id, 0, send, send_timeout=0.2, page_size=5)
    code = await follow(admin_client, follower, channel([]))
    assert code == 1013
    assert counters(sent) == [1, 2, 3, 4, 5]
    assert sent[-1] == {"type": "lagged", "run_id": str(run_id), "resume_after": 5}


async def test_a_quiet_channel_does_not_hide_the_end(admin_client: Client) -> None:
    run_id, events = await stored_run(admin_client)
    sent: list[str] = []

    async def send(text: str) -> None:
        sent.append(text)

    async def silent() -> AsyncIterator[bytes]:
        # The final status is lost: the run ends while the channel stays quiet.
        await Run.update({Run.status: "successful"}).where(Run.id == run_id)
        await asyncio.sleep(3600)
        yield b""

    code = await follow(admin_client, Follower(run_id, 0, send, idle_check=0.2), silent())
    messages = [msgspec.json.decode(text) for text in sent]
    assert code == 1000
    assert counters(messages) == list(range(1, len(events) + 1))
    assert messages[0]["status"] == "running" and messages[-1]["status"] == "successful"


async def test_a_closing_channel_ends_the_stream_for_a_resume(admin_client: Client) -> None:
    run_id, events = await stored_run(admin_client)
    sent: list[str] = []

    async def send(text: str) -> None:
        sent.append(text)

    async def closing() -> AsyncIterator[bytes]:
        return
        yield b""

    code = await follow(admin_client, Follower(run_id, 3, send), closing())
    assert code == 1001
    assert counters([msgspec.json.decode(text) for text in sent]) == list(range(4, len(events) + 1))


def test_the_query_token_leaves_the_query_string_before_anything_logs_it() -> None:
    scope: dict[str, Any] = {"query_string": b"after=12&token=wf_secret%2Bvalue&x="}
    assert _pop_query_param(scope, "token") == "wf_secret+value"  # type: ignore[arg-type]
    assert scope["query_string"] == b"after=12&x="
    assert _pop_query_param(scope, "token") == ""  # type: ignore[arg-type]
    assert scope["query_string"] == b"after=12&x="
