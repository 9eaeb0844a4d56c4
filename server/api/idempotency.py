"""``Idempotency-Key`` on create requests: same key and body replay the first response.

A record is claimed before the handler runs (a unique key, so two concurrent requests cannot both
run), filled with the response when it succeeds, and dropped when the handler fails with a server
error, so the client may retry. Keys are scoped to the caller, method and path.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from typing import Any, cast

from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

from server.auth.principal import Principal
from server.auth.service import utcnow
from server.credentials.crypto import derive_key
from server.db.tables import IdempotencyRecord
from server.errors import Conflict, ValidationFailed
from server.settings import Settings

HEADER = b"idempotency-key"
_VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def _digest(key: bytes, *parts: bytes) -> str:
    """A keyed hash: a stored request hash must not let anyone guess a password sent in the body."""
    h = hmac.new(key, digestmod=hashlib.sha256)
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


class IdempotencyMiddleware(ASGIMiddleware):
    scopes = ("http",)  # type: ignore[assignment]
    exclude_opt_key = "public"

    def __init__(self, settings: Settings) -> None:
        self.ttl = dt.timedelta(seconds=settings.idempotency_ttl)
        self.max_body = settings.max_body_size
        self.key = derive_key(settings.secret_key, b"windflow idempotency v1")

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        key = next((v for k, v in scope.get("headers", []) if k == HEADER), None)
        principal = scope.get("user")
        method = cast("HTTPScope", scope)["method"]
        if key is None or method != "POST" or not isinstance(principal, Principal):
            await next_app(scope, receive, send)
            return
        key_text = key.decode("latin-1")
        if not _VALID_KEY.match(key_text):
            raise ValidationFailed.for_field("header.Idempotency-Key", "must be 1-255 printable ASCII characters")
        body, more = await _read_body(receive, self.max_body)
        key_hash = _digest(self.key, str(principal.user_id).encode(), method.encode(), scope["path"].encode(), key)
        request_hash = _digest(self.key, scope.get("query_string", b""), body)

        if not await self._claim(key_hash, request_hash):
            await self._replay(key_hash, request_hash, send)
            return

        captured: dict[str, Any] = {"status": 0, "content_type": "", "body": bytearray()}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["content_type"] = next(
                    (v.decode("latin-1") for k, v in message.get("headers", []) if k.lower() == b"content-type"), ""
                )
            elif message["type"] == "http.response.body":
                captured["body"] += message.get("body", b"")
            await send(message)

        try:
            await next_app(scope, _replaying(body, more, receive), capture)
        except BaseException:
            await IdempotencyRecord.delete().where(IdempotencyRecord.key_hash == key_hash)
            raise
        if captured["status"] >= 500 or captured["status"] == 0:
            await IdempotencyRecord.delete().where(IdempotencyRecord.key_hash == key_hash)
            return
        await IdempotencyRecord.update(
            {
                IdempotencyRecord.status_code: captured["status"],
                IdempotencyRecord.content_type: captured["content_type"],
                IdempotencyRecord.body: bytes(captured["body"]).decode("utf-8", "replace"),
            }
        ).where(IdempotencyRecord.key_hash == key_hash)

    async def _claim(self, key_hash: str, request_hash: str) -> bool:
        await IdempotencyRecord.delete().where(IdempotencyRecord.created_at < utcnow() - self.ttl)
        if await IdempotencyRecord.exists().where(IdempotencyRecord.key_hash == key_hash):
            return False
        try:
            await IdempotencyRecord.insert(IdempotencyRecord(key_hash=key_hash, request_hash=request_hash))
        except Exception:  # the unique key: another request claimed it a moment ago
            if await IdempotencyRecord.exists().where(IdempotencyRecord.key_hash == key_hash):
                return False
            raise
        return True

    async def _replay(self, key_hash: str, request_hash: str, send: Send) -> None:
        record = await IdempotencyRecord.objects().where(IdempotencyRecord.key_hash == key_hash).first()
        if record is None or record.status_code == 0:
            raise Conflict("a request with this Idempotency-Key is still being processed; retry shortly")
        if record.request_hash != request_hash:
            raise Conflict("this Idempotency-Key was already used with a different request body")
        headers = [(b"idempotent-replayed", b"true")]
        if record.content_type:
            headers.append((b"content-type", record.content_type.encode("latin-1")))
        body = record.body.encode()
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": record.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, bool]:
    """Read up to ``limit + 1`` bytes; ``more`` says whether the client had more to send."""
    chunks = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return bytes(chunks), False
        chunks += message.get("body", b"")
        if not message.get("more_body", False):
            return bytes(chunks), False
        if len(chunks) > limit:
            return bytes(chunks), True


def _replaying(body: bytes, more: bool, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": more}
        return await receive()

    return replay
