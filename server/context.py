"""Per-request context that services and log records read without threading it through calls."""

from __future__ import annotations

from contextvars import ContextVar

request_id_var: ContextVar[str] = ContextVar("windflow_request_id", default="")
user_id_var: ContextVar[str] = ContextVar("windflow_user_id", default="")
