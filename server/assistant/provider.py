"""The one module that talks to LLM providers, through litellm, streaming.

litellm is imported lazily (it takes seconds) with its model cost map read locally and every
logging callback, debug banner and tokenizer download off, so nothing phones home. Every request
sets ``max_tokens`` and a timeout explicitly; 429 and 5xx answers are retried with exponential
backoff (honouring ``Retry-After``) a bounded number of times, but only before the first token
arrived, so a retry never repeats text the user already saw. Any provider failure becomes
:class:`ProviderFailed` (502) with the provider's own message, the API key masked out of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import anyio

from server.assistant.config import AssistantConfig
from server.errors import ProviderFailed

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3  # the first request and two retries
BACKOFF = 0.5  # seconds before the first retry; doubled each time
MAX_RETRY_AFTER = 30.0  # a provider asking to wait longer than this fails now instead
DEFAULT_CONTEXT_WINDOW = 8192
RETRIED = frozenset({429, 500, 502, 503, 504, 529})
_litellm: ModuleType | None = None
_lock = threading.Lock()


def _load() -> ModuleType:
    global _litellm
    with _lock:
        if _litellm is None:
            os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            os.environ.setdefault("LITELLM_TELEMETRY", "False")
            import litellm

            litellm.suppress_debug_info = True
            litellm.set_verbose = False  # type: ignore[attr-defined]
            litellm.turn_off_message_logging = True
            litellm.disable_hf_tokenizer_download = True
            litellm.drop_params = True
            litellm.success_callback = []
            litellm.failure_callback = []
            litellm.callbacks = []
            if hasattr(litellm, "telemetry"):
                litellm.telemetry = False
            for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm"):
                logging.getLogger(name).setLevel(logging.CRITICAL)
            _litellm = litellm
    return _litellm


async def load() -> ModuleType:
    """litellm, imported in a thread the first time so the event loop never waits seconds."""
    return _litellm if _litellm is not None else await anyio.to_thread.run_sync(_load)


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str

    def parsed(self) -> dict[str, Any]:
        try:
            value = json.loads(self.arguments or "{}")
        except json.JSONDecodeError:
            return {}
        return value if isinstance(value, dict) else {}


@dataclass
class Completion:
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    first_token_ms: int | None = None
    estimated: bool = False


OnText = Callable[[str], Awaitable[None]]


def supports_tools(config: AssistantConfig, litellm: ModuleType) -> bool:
    if config.tool_calling != "auto":
        return config.tool_calling == "on"
    try:
        return bool(litellm.supports_function_calling(model=config.model))
    except Exception:  # noqa: BLE001 - an unknown model: assume it cannot call tools
        return False


def context_window(config: AssistantConfig, litellm: ModuleType) -> int:
    if config.context_window:
        return config.context_window
    try:
        info = litellm.get_model_info(config.model)
    except Exception:  # noqa: BLE001 - unknown to litellm's local map
        return DEFAULT_CONTEXT_WINDOW
    return int(info.get("max_input_tokens") or info.get("max_tokens") or DEFAULT_CONTEXT_WINDOW)


def count_tokens(config: AssistantConfig, litellm: ModuleType, messages: list[dict[str, Any]]) -> int:
    try:
        return int(litellm.token_counter(model=config.model, messages=messages))
    except Exception:  # noqa: BLE001 - fall back to a rough count (4 characters a token)
        return sum(len(json.dumps(m)) for m in messages) // 4


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return int(status) if isinstance(status, int) else None


def _retry_after(exc: BaseException) -> float | None:
    headers: Any = getattr(exc, "litellm_response_headers", None)
    response = getattr(exc, "response", None)
    if headers is None and response is not None:
        headers = getattr(response, "headers", None)
    if headers is None:
        return None
    value = headers.get("retry-after") if hasattr(headers, "get") else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(str(value))
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def provider_message(exc: BaseException, api_key: str) -> str:
    """The provider's words without litellm's prefixes and never with the key."""
    message = str(getattr(exc, "message", "") or exc) or type(exc).__name__
    for prefix in ("litellm.", "OpenAIException - ", "AnthropicException - "):
        message = message.replace(prefix, "")
    if api_key and len(api_key) >= 4:
        message = message.replace(api_key, "********")
    message = " ".join(message.split())
    return message if len(message) <= 500 else message[:499] + "…"


def _failure(exc: BaseException, config: AssistantConfig) -> ProviderFailed:
    status = _status(exc)
    kind = type(exc).__name__
    if isinstance(exc, TimeoutError) or "Timeout" in kind:
        detail = f"the LLM provider did not answer within {config.timeout} s"
    else:
        where = f"{status} " if status else ""
        detail = f"the LLM provider answered {where}({kind}): {provider_message(exc, config.api_key)}"
    failure = ProviderFailed(detail)
    failure.provider_status = status  # type: ignore[attr-defined]
    return failure


def _request(config: AssistantConfig, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "model": config.model,
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": config.max_tokens,
        "temperature": config.temperature,
        "timeout": config.timeout,
        "num_retries": 0,
        "max_retries": 0,
    }
    if config.api_base:
        kwargs["api_base"] = config.api_base
        kwargs["api_key"] = config.api_key or "no-key"  # OpenAI-compatible servers often need none
    elif config.api_key:
        kwargs["api_key"] = config.api_key
    if config.api_version:
        kwargs["api_version"] = config.api_version
    if tools:
        kwargs["tools"] = tools
        kwargs["tool_choice"] = "auto"
    return kwargs


async def complete(
    config: AssistantConfig,
    messages: list[dict[str, Any]],
    on_text: OnText,
    *,
    tools: list[dict[str, Any]] | None = None,
    should_stop: Callable[[], Awaitable[bool]] | None = None,
) -> Completion:
    """Stream one completion, handing each piece of text to ``on_text`` as it arrives."""
    litellm = await load()
    kwargs = _request(config, messages, tools or [])
    for attempt in range(1, MAX_ATTEMPTS + 1):
        completion = Completion()
        began = time.perf_counter()
        try:
            return await _stream(litellm, kwargs, completion, began, on_text, should_stop, config, messages)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every provider failure becomes a ProviderFailed
            status = _status(exc)
            wait = _retry_after(exc)
            retry = completion.first_token_ms is None and status in RETRIED and attempt < MAX_ATTEMPTS
            if retry and wait is not None and wait > MAX_RETRY_AFTER:
                retry = False
            if not retry:
                raise _failure(exc, config) from None
            delay = wait if wait is not None else BACKOFF * 2 ** (attempt - 1)
            log.warning(
                "LLM provider failed; retrying",
                extra={"status": status, "error": type(exc).__name__, "attempt": attempt, "delay": delay},
            )
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


async def _stream(
    litellm: ModuleType,
    kwargs: dict[str, Any],
    completion: Completion,
    began: float,
    on_text: OnText,
    should_stop: Callable[[], Awaitable[bool]] | None,
    config: AssistantConfig,
    messages: list[dict[str, Any]],
) -> Completion:
    response = await litellm.acompletion(**kwargs)
    calls: dict[int, ToolCall] = {}
    pieces: list[str] = []
    try:
        async for chunk in response:
            usage = getattr(chunk, "usage", None)
            if usage is not None and getattr(usage, "prompt_tokens", None) is not None:
                completion.tokens_in = int(usage.prompt_tokens or 0)
                completion.tokens_out = int(usage.completion_tokens or 0)
            for choice in chunk.choices or []:
                delta = choice.delta
                if choice.finish_reason:
                    completion.finish_reason = str(choice.finish_reason)
                if delta is None:
                    continue
                for call in getattr(delta, "tool_calls", None) or []:
                    slot = calls.setdefault(int(call.index or 0), ToolCall("", "", ""))
                    slot.id = call.id or slot.id
                    if call.function is not None:
                        slot.name = call.function.name or slot.name
                        slot.arguments += call.function.arguments or ""
                    if completion.first_token_ms is None:
                        completion.first_token_ms = int((time.perf_counter() - began) * 1000)
                text = getattr(delta, "content", None)
                if text:
                    if completion.first_token_ms is None:
                        completion.first_token_ms = int((time.perf_counter() - began) * 1000)
                    pieces.append(text)
                    await on_text(text)
                    # Let the followers send it now: buffered chunks would otherwise be read in one go.
                    await asyncio.sleep(0)
            if should_stop is not None and await should_stop():
                completion.finish_reason = "stopped"
                break
    finally:
        closer = getattr(response, "aclose", None)
        if closer is not None:
            with contextlib.suppress(Exception):  # closing a finished stream may complain; nothing is lost
                await closer()
    completion.text = "".join(pieces)
    completion.tool_calls = [c for _, c in sorted(calls.items()) if c.name]
    if not completion.tokens_in and not completion.tokens_out:
        completion.estimated = True
        completion.tokens_in = count_tokens(config, litellm, messages)
        completion.tokens_out = count_tokens(config, litellm, [{"role": "assistant", "content": completion.text}])
    return completion
