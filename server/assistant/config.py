"""Which model the assistant talks to, and with what limits: server defaults, per-organization overrides.

The server's defaults come from ``WINDFLOW_LLM_MODEL``, ``WINDFLOW_LLM_API_BASE`` and
``WINDFLOW_LLM_API_KEY``. An organization's admin may override any of them (``PUT
/api/v1/assistant/settings``); the API key then lives in an ``llm_api_key`` credential, encrypted
like every credential, and is only decrypted here, right before a request leaves.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from server import audit
from server.auth.principal import Principal
from server.auth.service import utcnow
from server.credentials.service import credential_kinds, reveal
from server.db.engine import atomic
from server.db.tables import AssistantSettings
from server.errors import FieldError, NotConfigured, ValidationFailed
from server.settings import Settings

ToolCalling = Literal["auto", "on", "off"]
DEFAULT_MAX_TOKENS = 2048
DEFAULT_TEMPERATURE = 0.2
DEFAULT_MAX_REPAIRS = 2
DEFAULT_TIMEOUT = 120
# litellm's model prefix for each provider of an ``llm_api_key`` credential.
PROVIDER_PREFIX = {
    "openai": "openai",
    "anthropic": "anthropic",
    "azure": "azure",
    "ollama": "ollama_chat",
    "openai_compatible": "openai",
}
HOW_TO_CONFIGURE = (
    "the assistant has no model: set WINDFLOW_LLM_MODEL (with WINDFLOW_LLM_API_BASE and WINDFLOW_LLM_API_KEY "
    "as the provider needs) on the server, or let an admin choose a model and an llm_api_key credential "
    "with PUT /api/v1/assistant/settings"
)
OVERRIDES = (
    "model",
    "api_base",
    "api_version",
    "max_tokens",
    "temperature",
    "daily_token_budget",
    "max_repairs",
    "context_window",
    "tool_calling",
    "timeout",
)


@dataclass(frozen=True)
class AssistantConfig:
    """The effective configuration of one organization's assistant; ``api_key`` never leaves the server."""

    model: str
    api_base: str = ""
    api_version: str = ""
    api_key: str = field(default="", repr=False)
    max_tokens: int = DEFAULT_MAX_TOKENS
    temperature: float = DEFAULT_TEMPERATURE
    daily_token_budget: int = 0
    max_repairs: int = DEFAULT_MAX_REPAIRS
    context_window: int = 0
    tool_calling: ToolCalling = "auto"
    timeout: int = DEFAULT_TIMEOUT
    source: Literal["server", "organization"] = "server"


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


async def _row(organization_id: uuid.UUID) -> dict[str, Any] | None:
    row = (
        await AssistantSettings.select(AssistantSettings.credential, AssistantSettings.config)
        .where(AssistantSettings.organization == organization_id)
        .first()
    )
    return None if row is None else {"credential": row["credential"], "config": dict(_json(row["config"]) or {})}


def _model_name(model: str, provider: str | None) -> str:
    """``gpt-4o`` with an ``openai`` credential is ``openai/gpt-4o``; a name with a prefix is kept."""
    prefix = PROVIDER_PREFIX.get(provider or "")
    if not prefix or "/" in model:
        return model
    return f"{prefix}/{model}"


async def effective_config(settings: Settings, organization_id: uuid.UUID) -> AssistantConfig | None:
    """The organization's overrides over the server's defaults; None when no model is configured."""
    row = await _row(organization_id)
    overrides: dict[str, Any] = {k: v for k, v in (row or {}).get("config", {}).items() if v is not None}
    values: dict[str, Any] = {
        "model": settings.llm_model,
        "api_base": settings.llm_api_base,
        "api_key": settings.llm_api_key,
    }
    provider = None
    if row and row["credential"]:
        revealed = await reveal(settings.secret_key, organization_id, [row["credential"]])
        credential = revealed.get(row["credential"])
        if credential is not None:
            provider = credential.fields.get("provider")
            values["api_key"] = credential.secret.get("api_key", "")
            for name in ("model", "api_base"):
                if credential.fields.get(name):
                    values[name] = credential.fields[name]
    values.update({k: overrides[k] for k in OVERRIDES if k in overrides})
    if not values.get("model"):
        return None
    values["model"] = _model_name(str(values["model"]), provider)
    return AssistantConfig(**values, source="organization" if row else "server")


async def require_config(settings: Settings, organization_id: uuid.UUID) -> AssistantConfig:
    config = await effective_config(settings, organization_id)
    if config is None:
        raise NotConfigured(HOW_TO_CONFIGURE)
    return config


async def read_settings(settings: Settings, principal: Principal) -> dict[str, Any]:
    """What an admin sees: the overrides, the credential's id, and the effective values (no key)."""
    organization_id = principal.current_organization()
    row = await _row(organization_id) or {"credential": None, "config": {}}
    config = await effective_config(settings, organization_id)
    return {
        **{name: row["config"].get(name) for name in OVERRIDES},
        "llm_api_key": row["credential"],
        "effective": None if config is None else public_view(config),
    }


def public_view(config: AssistantConfig) -> dict[str, Any]:
    return {
        "model": config.model,
        "api_base": config.api_base,
        "max_tokens": config.max_tokens,
        "temperature": config.temperature,
        "daily_token_budget": config.daily_token_budget,
        "max_repairs": config.max_repairs,
        "context_window": config.context_window,
        "tool_calling": config.tool_calling,
        "timeout": config.timeout,
        "source": config.source,
        "has_api_key": bool(config.api_key),
    }


async def write_settings(
    settings: Settings, principal: Principal, values: dict[str, Any], credential_id: uuid.UUID | None
) -> dict[str, Any]:
    """Replace the organization's overrides (a field left out or null falls back to the server's)."""
    organization_id = principal.current_organization()
    if credential_id is not None:
        kind = (await credential_kinds(organization_id, [credential_id])).get(credential_id)
        if kind is None:
            raise ValidationFailed.for_field("body.llm_api_key", "no such credential in this organization")
        if kind != "llm_api_key":
            raise ValidationFailed(
                f"body.llm_api_key: a {kind} credential is not an API key",
                [FieldError("body.llm_api_key", f"must be an llm_api_key credential, not {kind}")],
            )
    config = {name: values.get(name) for name in OVERRIDES if values.get(name) is not None}
    async with atomic():
        existing = await AssistantSettings.exists().where(AssistantSettings.organization == organization_id)
        row: dict[Any, Any] = {
            AssistantSettings.credential: credential_id,
            AssistantSettings.config: json.dumps(config),
            AssistantSettings.updated_by: principal.user_id,
            AssistantSettings.updated_at: utcnow(),
        }
        if existing:
            await AssistantSettings.update(row).where(AssistantSettings.organization == organization_id)
        else:
            await AssistantSettings.insert(
                AssistantSettings(
                    organization=organization_id,
                    credential=credential_id,
                    config=json.dumps(config),
                    updated_by=principal.user_id,
                )
            )
        await audit.record(
            "assistant.settings",
            actor=principal,
            organization_id=organization_id,
            target_type="organization",
            target_id=organization_id,
            detail={"fields": sorted(config), "llm_api_key": str(credential_id) if credential_id else None},
        )
    return await read_settings(settings, principal)
