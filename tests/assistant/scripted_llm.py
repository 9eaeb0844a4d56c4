"""A real HTTP server on 127.0.0.1 that speaks OpenAI's chat-completions protocol with scripted answers.

It stands in for a paid provider: litellm reaches it through ``api_base`` exactly as it would reach
OpenAI, over HTTP, with server-sent events when it streams. Each request takes the next scripted
:class:`Reply` (or asks ``responder``); every request body is kept in ``requests`` so that a test
can prove what left the server (and what never did). An unscripted request gets a 500 that names
the problem, so a test that forgets a reply fails loudly.
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "scripted"


@dataclass
class ToolCall:
    name: str
    arguments: dict[str, Any]


@dataclass
class Reply:
    """One answer: text and/or tool calls, streamed in ``pieces`` (default: word by word)."""

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str = ""  # default: "tool_calls" when there are some, else "stop"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    error: str = "scripted failure"
    first_token_delay: float = 0.0
    piece_delay: float = 0.0
    pieces: list[str] | None = None
    usage: tuple[int, int] | None = None  # (prompt, completion) tokens; default: word counts

    def split(self) -> list[str]:
        if self.pieces is not None:
            return self.pieces
        words = self.text.split(" ")
        return [word + (" " if i < len(words) - 1 else "") for i, word in enumerate(words)] if self.text else []


Responder = Callable[[dict[str, Any]], Reply]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float

    @property
    def text(self) -> str:
        """Everything the request carried but its headers, as one string (for secret searches)."""
        return json.dumps(self.body)


class ScriptedLLM:
    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.responder: Responder | None = None
        self.requests: list[Received] = []
        self.lock = threading.Lock()
        self._ids = itertools.count(1)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def start(self) -> ScriptedLLM:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)

    def script(self, *replies: Reply | str) -> None:
        with self.lock:
            self.replies.extend(Reply(text=r) if isinstance(r, str) else r for r in replies)

    def reset(self) -> None:
        with self.lock:
            self.replies.clear()
            self.requests.clear()
            self.responder = None

    def chat_requests(self) -> list[Received]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def _next(self, body: dict[str, Any]) -> Reply:
        with self.lock:
            if self.replies:
                return self.replies.popleft()
        if self.responder is not None:
            return self.responder(body)
        return Reply(status=500, error="the scripted LLM server has no answer left for this request")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        llm = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                # One request per connection: a test's app (and its event loop) never reuses another's.
                super().setup()
                self.close_connection = True
                # Each event goes out at once, as a provider's would (no Nagle wait behind delayed ACKs).
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                return

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path.rstrip("/").endswith("/models"):
                    self._json(200, {"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "test"}]})
                else:
                    self._json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b"{}"
                body = json.loads(raw or b"{}")
                with llm.lock:
                    llm.requests.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic())
                    )
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._json(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})
                    return
                reply = llm._next(body)
                if reply.first_token_delay:
                    time.sleep(reply.first_token_delay)
                if reply.status != 200:
                    error = {"error": {"message": reply.error, "type": "server_error", "code": str(reply.status)}}
                    self._json(reply.status, error, reply.headers)
                elif body.get("stream"):
                    self._stream(body, reply)
                else:
                    self._json(200, self._completion(body, reply))

            def _json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("connection", "close")
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def _usage(self, body: dict[str, Any], reply: Reply) -> dict[str, int]:
                if reply.usage is not None:
                    prompt, completion = reply.usage
                else:
                    prompt = sum(len(str(m.get("content") or "").split()) for m in body.get("messages", []))
                    completion = len(reply.text.split()) + 10 * len(reply.tool_calls)
                return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

            def _finish(self, reply: Reply) -> str:
                return reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")

            def _calls(self, reply: Reply) -> list[dict[str, Any]]:
                return [
                    {
                        "id": f"call_{next(llm._ids)}",
                        "type": "function",
                        "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                    }
                    for call in reply.tool_calls
                ]

            def _completion(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
                message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
                if reply.tool_calls:
                    message["tool_calls"] = self._calls(reply)
                return {
                    "id": f"chatcmpl-{next(llm._ids)}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", MODEL),
                    "choices": [{"index": 0, "message": message, "finish_reason": self._finish(reply)}],
                    "usage": self._usage(body, reply),
                }

            def _chunk(self, body: dict[str, Any], delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
                return {
                    "id": "chatcmpl-stream",
                    "object": "chat.completion.chunk",
                    "created": int(time.time()),
                    "model": body.get("model", MODEL),
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                }

            def _send_event(self, payload: dict[str, Any] | str) -> None:
                data = payload if isinstance(payload, str) else json.dumps(payload)
                frame = f"data: {data}\n\n".encode()
                self.wfile.write(f"{len(frame):x}\r\n".encode() + frame + b"\r\n")
                self.wfile.flush()

            def _stream(self, body: dict[str, Any], reply: Reply) -> None:
                self.send_response(200)
                self.send_header("connection", "close")
                self.send_header("content-type", "text/event-stream")
                self.send_header("cache-control", "no-cache")
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                try:
                    self._send_event(self._chunk(body, {"role": "assistant", "content": ""}, None))
                    for piece in reply.split():
                        self._send_event(self._chunk(body, {"content": piece}, None))
                        if reply.piece_delay:
                            time.sleep(reply.piece_delay)
                    for index, call in enumerate(self._calls(reply)):
                        head = {**call, "function": {"name": call["function"]["name"], "arguments": ""}}
                        self._send_event(self._chunk(body, {"tool_calls": [{"index": index, **head}]}, None))
                        arguments = call["function"]["arguments"]
                        for start in range(0, len(arguments), 16):
                            piece = {"index": index, "function": {"arguments": arguments[start : start + 16]}}
                            self._send_event(self._chunk(body, {"tool_calls": [piece]}, None))
                    self._send_event(self._chunk(body, {}, self._finish(reply)))
                    if (body.get("stream_options") or {}).get("include_usage"):
                        usage = self._chunk(body, {}, None)
                        usage["choices"] = []
                        usage["usage"] = self._usage(body, reply)
                        self._send_event(usage)
                    self._send_event("[DONE]")
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    return

        return Handler
