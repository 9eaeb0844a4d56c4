"""Every error becomes ``application/problem+json`` (RFC 9457) here, and only here.

Body: ``type``, ``status``, ``title``, ``detail``, a stable upper-case ``code``, ``errors`` (field
path and message) and ``request_id``. Unexpected exceptions are logged with their traceback and
answered 500 without any of their text.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from http import HTTPStatus
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_413_REQUEST_ENTITY_TOO_LARGE

from server.api.request_context import request_id_of
from server.errors import FieldError, RateLimited, ValidationFailed, WindFlowError

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"

STATUS_CODES = {
    400: ("MALFORMED_REQUEST", "Malformed request"),
    401: ("AUTH_INVALID", "Authentication failed"),
    403: ("FORBIDDEN", "Forbidden"),
    404: ("NOT_FOUND", "Not found"),
    405: ("METHOD_NOT_ALLOWED", "Method not allowed"),
    409: ("CONFLICT", "Conflict"),
    413: ("PAYLOAD_TOO_LARGE", "Payload too large"),
    415: ("UNSUPPORTED_MEDIA_TYPE", "Unsupported media type"),
    422: ("VALIDATION_ERROR", "Validation failed"),
    429: ("RATE_LIMITED", "Too many requests"),
    500: ("INTERNAL_ERROR", "Internal server error"),
    502: ("BAD_GATEWAY", "Bad gateway"),
    503: ("UNAVAILABLE", "Service unavailable"),
}


class Problem(msgspec.Struct, omit_defaults=True):
    """The error body of every endpoint."""

    status: int
    title: str
    detail: str
    code: str
    request_id: str
    type: str = "about:blank"
    errors: list[FieldError] = msgspec.field(default_factory=list)


def problem_response(
    request: Request[Any, Any, Any],
    status: int,
    detail: str,
    *,
    code: str | None = None,
    title: str | None = None,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Problem]:
    default_code, default_title = STATUS_CODES.get(status, ("HTTP_ERROR", "Error"))
    body = Problem(
        status=status,
        title=title or default_title,
        detail=detail,
        code=code or default_code,
        request_id=request_id_of(request.scope),
        errors=errors or [],
    )
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


_JSON_PATH = re.compile(r"at `\$(?P<path>[^`]*)`")
_NAMED_FIELD = re.compile(r"(?:unknown|missing required) field `([^`]*)`")


def _field_errors(exc: ValidationException) -> list[FieldError]:
    """Litestar/msgspec messages → dotted paths such as ``body.email`` or ``query.size``."""
    errors = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", "invalid value"))
        if message == "'data'":  # Litestar's KeyError text when there is no body at all
            message = "a JSON body is required"
        source = str(getattr(item.get("source"), "value", item.get("source") or "body"))
        key = item.get("key")
        if key and not (source == "body" and key == "data"):
            key = re.sub(r"\[(\d+)\]", r".\1", str(key))
            if named := _NAMED_FIELD.search(message):
                key = f"{key}.{named.group(1)}"
            errors.append(FieldError(f"{source}.{key}", message))
            continue
        match = _JSON_PATH.search(message)
        path = re.sub(r"\[(\d+)\]", r".\1", match.group("path")).lstrip(".") if match else ""
        message = _JSON_PATH.sub("", message).rstrip(" -")
        if named := _NAMED_FIELD.search(message):
            path = f"{path}.{named.group(1)}".lstrip(".")
        errors.append(FieldError("body" + (f".{path}" if path else ""), message))
    return errors


def handle_validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Problem]:
    errors = _field_errors(exc)
    if any("malformed" in e.message.lower() or "json is malformed" in e.message.lower() for e in errors) or (
        not errors and "decode" in str(exc.detail).lower()
    ):
        return problem_response(request, 400, "the request body is not valid JSON", errors=errors)
    detail = "; ".join(f"{e.field}: {e.message}" for e in errors) or str(exc.detail)
    return problem_response(request, 422, detail, errors=errors)


def handle_domain_error(request: Request[Any, Any, Any], exc: WindFlowError) -> Response[Problem]:
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
    errors = exc.errors if isinstance(exc, ValidationFailed) else None
    if exc.status == 500:
        log.error("internal error", exc_info=exc)
    return problem_response(
        request, exc.status, exc.detail, code=exc.code, title=exc.title, errors=errors, headers=headers
    )


_DEFAULT_DETAILS = {
    401: "authentication required",
    403: "you are not allowed to do this",
    404: "no such resource",
    405: "this method is not allowed on this path",
    429: "too many requests; slow down",
}


def handle_http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Problem]:
    status = exc.status_code
    detail = exc.detail
    if not detail or detail == HTTPStatus(status).phrase:
        detail = _DEFAULT_DETAILS.get(status, HTTPStatus(status).phrase.lower())
    if status == HTTP_413_REQUEST_ENTITY_TOO_LARGE:
        limit = request.app.state.settings.max_body_size
        detail = f"the request body is larger than the limit of {limit} bytes"
    sent = {k.lower(): v for k, v in (exc.headers or {}).items()}
    headers = {k: v for k, v in sent.items() if k in {"retry-after", "allow"} or k.startswith("ratelimit-")}
    if status == 429 and "retry-after" not in headers and "ratelimit-reset" in sent:
        # Litestar's rate limiter only sends the draft RateLimit-* headers; clients know Retry-After.
        headers["retry-after"] = str(max(1, int(sent["ratelimit-reset"])))
    return problem_response(request, status, detail, headers=headers or None)


def handle_integrity_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    """A unique or foreign-key constraint caught a race the service's own checks could not see."""
    log.info("constraint violation answered 409", extra={"error": type(exc).__name__})
    return problem_response(
        request, 409, "this conflicts with a change made at the same moment (a duplicate name?); retry", code="CONFLICT"
    )


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    log.error("unhandled exception", exc_info=exc)
    return problem_response(request, 500, "an unexpected error occurred; quote the request id when reporting it")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    sqlite3.IntegrityError: handle_integrity_error,
    asyncpg.exceptions.IntegrityConstraintViolationError: handle_integrity_error,
    ValidationException: handle_validation,
    WindFlowError: handle_domain_error,
    HTTPException: handle_http_error,
    Exception: handle_unexpected,
}
