"""The outermost layer of every HTTP request: request id, security headers, access log, metrics.

Litestar's own middleware only wraps matched routes, so 404s, 405s and errors raised by other
middleware would escape it; this wraps the whole ASGI handler instead (see ``server/app.py``).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from server.context import request_id_var, user_id_var
from server.observability import Metrics

log = logging.getLogger("windflow.access")
REQUEST_ID_HEADER = "x-request-id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_STATE_KEY = "windflow.request_id"

API_CSP = "default-src 'none'; frame-ancestors 'none'"
# The Swagger/ReDoc pages load their bundles from the same origin only.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://unpkg.com; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://unpkg.com https://fonts.googleapis.com; "
    "img-src 'self' data: https:; font-src 'self' https://fonts.gstatic.com; frame-ancestors 'none'"
)
APP_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; "
    "frame-ancestors 'none'"
)


def request_id_of(scope: Scope | Any) -> str:
    """The request's id: the client's ``X-Request-ID`` when sane, else a new UUID."""
    state = scope.setdefault("state", {})
    if _STATE_KEY not in state:
        sent = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"x-request-id"), "")
        state[_STATE_KEY] = sent if _VALID_REQUEST_ID.match(sent) else uuid.uuid4().hex
    return str(state[_STATE_KEY])


def _csp_for(path: str) -> str:
    if path.startswith("/api/docs") or path.startswith("/api/schema") and not path.endswith(".json"):
        return DOCS_CSP
    if path.startswith("/api/") or path == "/metrics":
        return API_CSP
    return APP_CSP


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        started = time.perf_counter()
        request_id = request_id_of(scope)
        request_id_var.set(request_id)
        user_id_var.set("")
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                headers += [
                    (b"x-request-id", request_id.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"content-security-policy", _csp_for(scope["path"]).encode()),
                ]
                if scope.get("scheme") == "https":
                    headers.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("path_template") or "<unmatched>"
            self.metrics.observe(method, route, status, elapsed)
            log.info(
                "request",
                extra={
                    "method": method,
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "client": (scope.get("client") or ("", 0))[0],
                },
            )
