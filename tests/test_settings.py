from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from server.app import check_secret_key, create_app
from server.settings import Settings, SettingsError, documented_settings

ROOT = Path(__file__).resolve().parent.parent


def test_reads_every_type_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "WINDFLOW_PORT": "9001",
            "WINDFLOW_DATA_DIR": "/srv/wf",
            "WINDFLOW_CORS_ORIGINS": "https://a.example, https://b.example,",
            "WINDFLOW_REDIS_URL": "redis://127.0.0.1:6379/0",
            "UNRELATED": "x",
        }
    )
    assert settings.port == 9001
    assert settings.data_dir == Path("/srv/wf")
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert settings.resolved_database_url == "sqlite:////srv/wf/windflow.db"
    assert settings.redis_url == "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"WINDFLOW_PORT": "eighty"}, "WINDFLOW_PORT"),
        ({"WINDFLOW_PORT": "70000"}, "WINDFLOW_PORT"),
        ({"WINDFLOW_ENV": "staging"}, "WINDFLOW_ENV"),
        ({"WINDFLOW_DATABASE_URL": "mysql://x"}, "WINDFLOW_DATABASE_URL"),
        ({"WINDFLOW_REDIS_URL": "http://x"}, "WINDFLOW_REDIS_URL"),
        ({"WINDFLOW_ADMIN_EMAIL": "a@b.c"}, "WINDFLOW_ADMIN_PASSWORD"),
        ({"WINDFLOW_ACCESS_TOKEN_TTL": "0"}, "WINDFLOW_ACCESS_TOKEN_TTL"),
        ({"WINDFLOW_RATE_LIMIT": "-1"}, "WINDFLOW_RATE_LIMIT"),
    ],
)
def test_bad_values_name_the_variable(environ: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        Settings.from_env(environ)


def test_repr_hides_secrets() -> None:
    settings = Settings(secret_key="s" * 40, admin_email="a@b.c", admin_password="hunter2-hunter2", llm_api_key="sk-1")
    text = repr(settings)
    assert "s" * 40 not in text and "hunter2-hunter2" not in text and "sk-1" not in text
    assert "a@b.c" in text


@pytest.mark.parametrize("key", ["", "change-me", "secret", "too-short-key"])
def test_production_refuses_a_missing_default_or_short_key(key: str, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="WINDFLOW_SECRET_KEY"):
        create_app(Settings(env="production", secret_key=key, data_dir=tmp_path))


def test_development_generates_one_private_key_and_keeps_it(tmp_path: Path) -> None:
    first = check_secret_key(Settings(env="development", data_dir=tmp_path))
    second = check_secret_key(Settings(env="development", data_dir=tmp_path))
    key_file = tmp_path / "secret_key"
    assert first.secret_key == second.secret_key == key_file.read_text().strip()
    assert len(first.secret_key) >= 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_readme_documents_every_setting_with_its_default() -> None:
    readme = (ROOT / "README.md").read_text()
    rows = dict(re.findall(r"^\| `(WINDFLOW_[A-Z_]+)` \| ([^|]+) \|", readme, flags=re.M))
    expected = {name: f"`{default}`" if default else "(unset)" for name, default, _ in documented_settings()}
    assert {name: value.strip() for name, value in rows.items()} == expected


def test_every_setting_is_read_by_from_env() -> None:
    environ = {name: "7" for name, _, _ in documented_settings() if name.endswith(("_TTL", "_SIZE", "_SECONDS"))}
    settings = Settings.from_env(environ)
    assert settings.access_token_ttl == 7 and settings.max_body_size == 7 and settings.login_lockout_seconds == 7


def test_import_layers_hold() -> None:
    """``lint-imports`` enforces api -> domain -> db/settings/errors (contracts in pyproject.toml)."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_boolean_setting_reads_true_and_false_and_refuses_anything_else() -> None:
    assert Settings.from_env({"WINDFLOW_RUN_ONE_PER_HOST": "true"}).run_one_per_host is True
    assert Settings.from_env({"WINDFLOW_RUN_ONE_PER_HOST": "0"}).run_one_per_host is False
    with pytest.raises(SettingsError, match="must be true or false"):
        Settings.from_env({"WINDFLOW_RUN_ONE_PER_HOST": "maybe"})
