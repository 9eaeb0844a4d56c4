"""Settings read from ``WINDFLOW_*`` environment variables.

One frozen object, built once and passed in (``create_app(settings)``, the CLI, the worker). This
module imports nothing from ``server`` so every other module may depend on it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

PREFIX = "WINDFLOW_"
DEFAULT_SECRET_KEYS = frozenset({"", "change-me", "changeme", "secret", "windflow"})
MIN_SECRET_KEY_LENGTH = 32
ENVIRONMENTS = ("development", "production")


class SettingsError(ValueError):
    """A setting is missing or has a value the server cannot use."""


def _env_field(default: Any, help_text: str) -> Any:
    return field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class Settings:
    """Every ``WINDFLOW_<NAME>`` variable maps to the lower-case field ``name``."""

    env: str = _env_field("production", "`development` or `production`; development relaxes the secret-key check")
    host: str = _env_field("127.0.0.1", "address `windflow serve` binds to")
    port: int = _env_field(8000, "port `windflow serve` listens on")
    data_dir: Path = _env_field(Path("./data"), "directory for the SQLite file, run directories and the dev secret key")
    database_url: str = _env_field(
        "", "`postgresql://user@host/db` for PostgreSQL; unset = `sqlite:///<data_dir>/windflow.db`"
    )
    database_pool_size: int = _env_field(10, "largest PostgreSQL connection pool per process")
    redis_url: str = _env_field("", "`redis://host:6379/0` for distributed mode; unset = embedded (in-process)")
    secret_key: str = _env_field(
        "", "signs tokens and derives encryption keys; required outside development (>= 32 chars)"
    )
    admin_email: str = _env_field("", "first admin created at start-up when no user exists")
    admin_password: str = _env_field("", "password of that first admin")
    log_level: str = _env_field("INFO", "`DEBUG`, `INFO`, `WARNING` or `ERROR`")
    access_token_ttl: int = _env_field(900, "lifetime of an access token, seconds")
    refresh_token_ttl: int = _env_field(1_209_600, "lifetime of a refresh token, seconds (14 days)")
    max_body_size: int = _env_field(1_048_576, "largest request body accepted, bytes")
    rate_limit: int = _env_field(600, "requests per minute per client address; 0 turns the limit off")
    login_max_failures: int = _env_field(5, "failed logins per account before it is locked")
    login_ip_max_attempts: int = _env_field(30, "login attempts per client address per lockout window")
    login_lockout_seconds: int = _env_field(900, "length of a login lockout window, seconds")
    cors_origins: tuple[str, ...] = _env_field((), "comma-separated origins allowed by CORS; empty = CORS off")
    idempotency_ttl: int = _env_field(86_400, "how long an `Idempotency-Key` replays its first response, seconds")
    worker_concurrency: int = _env_field(4, "runs one worker (or the embedded one) executes at the same time")
    run_one_per_host: bool = _env_field(
        False, "when true, a run waits while another run of its organization is using one of its hosts"
    )
    run_heartbeat_interval: int = _env_field(5, "how often a worker marks its running runs alive, seconds")
    run_heartbeat_timeout: int = _env_field(
        30, "a running run whose worker is silent this long fails with the reason 'worker lost', seconds"
    )
    run_pending_timeout: int = _env_field(3600, "a run still pending after this long fails, seconds")
    run_recovery_interval: int = _env_field(60, "how often recovery re-queues and fails stuck runs, seconds")
    run_retention_days: int = _env_field(30, "days a finished run's artifacts (runner files) are kept")
    stack_catalogue: str = _env_field(
        "update", "how start-up loads the stack catalogue: `skip` existing, `update` if newer, `force`"
    )
    web_dir: str = _env_field("", "directory of the built web app; unset = the repository's `web/dist`")
    llm_model: str = _env_field("", "model name for the assistant (litellm syntax)")
    llm_api_base: str = _env_field("", "base URL of an OpenAI-compatible LLM server")
    llm_api_key: str = _env_field("", "API key of the LLM provider (never logged or returned)")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``environ`` (default ``os.environ``); ``overrides`` win."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(PREFIX + f.name.upper())
            if raw is not None:
                values[f.name] = _parse(f.name, f.type, raw)
        values.update(overrides)
        return cls(**values)

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        if self.env not in ENVIRONMENTS:
            raise SettingsError(f"WINDFLOW_ENV must be one of {', '.join(ENVIRONMENTS)}, not {self.env!r}")
        if not 0 < self.port < 65536:
            raise SettingsError(f"WINDFLOW_PORT must be between 1 and 65535, not {self.port}")
        for name in (
            "access_token_ttl",
            "refresh_token_ttl",
            "max_body_size",
            "database_pool_size",
            "login_max_failures",
            "login_ip_max_attempts",
            "login_lockout_seconds",
            "idempotency_ttl",
        ):
            if getattr(self, name) <= 0:
                raise SettingsError(f"WINDFLOW_{name.upper()} must be a positive number")
        if self.rate_limit < 0:
            raise SettingsError("WINDFLOW_RATE_LIMIT must be 0 (off) or a positive number")
        if bool(self.admin_email) != bool(self.admin_password):
            raise SettingsError("set both WINDFLOW_ADMIN_EMAIL and WINDFLOW_ADMIN_PASSWORD, or neither")
        url = self.resolved_database_url
        if not url.startswith(("sqlite://", "postgresql://", "postgres://")):
            raise SettingsError("WINDFLOW_DATABASE_URL must start with sqlite:// or postgresql://")
        if self.stack_catalogue not in ("skip", "update", "force"):
            raise SettingsError("WINDFLOW_STACK_CATALOGUE must be skip, update or force")
        if self.redis_url and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError("WINDFLOW_REDIS_URL must start with redis://, rediss:// or unix://")

    @property
    def is_development(self) -> bool:
        return self.env == "development"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'windflow.db').as_posix()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite://")

    def secret_key_problem(self) -> str | None:
        """Why the secret key is unusable in production, or None when it is fine."""
        key = self.secret_key
        if not key:
            return "WINDFLOW_SECRET_KEY is not set"
        if key.lower() in DEFAULT_SECRET_KEYS:
            return "WINDFLOW_SECRET_KEY still has a well-known default value"
        if len(key) < MIN_SECRET_KEY_LENGTH:
            return f"WINDFLOW_SECRET_KEY is shorter than {MIN_SECRET_KEY_LENGTH} characters"
        return None

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    def __repr__(self) -> str:
        hidden = {"secret_key", "admin_password", "llm_api_key"}
        shown = ", ".join(
            f"{f.name}={'***' if f.name in hidden and getattr(self, f.name) else getattr(self, f.name)!r}"
            for f in fields(self)
        )
        return f"Settings({shown})"


def _parse(name: str, annotation: Any, raw: str) -> Any:
    kind = str(annotation)
    try:
        if kind == "int":
            return int(raw)
        if kind == "Path":
            return Path(raw)
        if kind == "bool":
            return _boolean(name, raw)
        if kind.startswith("tuple"):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
    except SettingsError:
        raise
    except ValueError:
        raise SettingsError(f"{PREFIX}{name.upper()} must be a whole number, not {raw!r}") from None
    return raw.strip() if name != "secret_key" else raw


def _boolean(name: str, raw: str) -> bool:
    word = raw.strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off", ""):
        return False
    raise SettingsError(f"{PREFIX}{name.upper()} must be true or false, not {raw!r}")


def documented_settings() -> list[tuple[str, str, str]]:
    """(variable, default, description) for every setting, for the README and its test."""
    rows = []
    for f in fields(Settings):
        default = f.default
        if isinstance(default, tuple):
            default = ",".join(default)
        elif isinstance(default, Path) and not default.is_absolute():
            default = f"./{default.as_posix()}"
        rows.append((PREFIX + f.name.upper(), str(default), f.metadata["help"]))
    return rows
