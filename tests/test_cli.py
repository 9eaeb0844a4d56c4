"""The ``windflow`` command, run as a real subprocess (``python -m server``)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess  # noqa: S404
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from server.app import create_app
from server.settings import Settings

SECRET_KEY = "cli-test-secret-key-0123456789-abcdefghijklmnop"
CLI_TIMEOUT = 60


@pytest.fixture
def database_file(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


@pytest.fixture
def cli_env(tmp_path: Path, database_file: str) -> dict[str, str]:
    """The caller's environment without its WindFlow settings, pointed at a fresh SQLite file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WINDFLOW_") or k.startswith("WINDFLOW_TEST_")}
    env.update(WINDFLOW_DATA_DIR=str(tmp_path), WINDFLOW_DATABASE_URL=database_file)
    return env


def windflow(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", "server", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )


def test_migrate_applies_once_then_reports_up_to_date(cli_env: dict[str, str]) -> None:
    first = windflow(cli_env, "migrate")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("applied: ")

    second = windflow(cli_env, "migrate")
    assert second.returncode == 0, second.stderr
    assert "up to date" in second.stdout
    assert "applied" not in second.stdout


async def test_created_user_can_log_in(cli_env: dict[str, str], database_file: str, tmp_path: Path) -> None:
    created = await asyncio.to_thread(
        windflow, cli_env, "users", "create", "--email", "Ops@Example.com", "--password", "cli-password-1", "--admin"
    )
    assert created.returncode == 0, created.stderr
    assert "ops@example.com" in created.stdout

    settings = Settings(env="production", secret_key=SECRET_KEY, database_url=database_file, data_dir=tmp_path)
    async with AsyncTestClient(create_app(settings)) as client:
        login = await client.post("/api/v1/auth/login", json={"email": "ops@example.com", "password": "cli-password-1"})
        assert login.status_code == 200, login.text
        me = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"})
        assert me.json()["is_superadmin"] is True
        assert me.json()["role"] == "admin"
        assert [m["organization_name"] for m in me.json()["memberships"]] == ["Default"]


def test_create_user_rejects_a_duplicate_email(cli_env: dict[str, str]) -> None:
    first = windflow(cli_env, "users", "create", "--email", "dup@example.com", "--password", "cli-password-1")
    assert first.returncode == 0, first.stderr

    again = windflow(cli_env, "users", "create", "--email", "DUP@example.com", "--password", "cli-password-2")

    assert again.returncode == 1
    assert "already exists" in again.stderr


def test_create_user_rejects_a_short_password(cli_env: dict[str, str]) -> None:
    result = windflow(cli_env, "users", "create", "--email", "short@example.com", "--password", "short")

    assert result.returncode == 1
    assert "password" in result.stderr
    assert "at least" in result.stderr


def test_create_user_reads_the_password_from_stdin(cli_env: dict[str, str]) -> None:
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "server", "users", "create", "--email", "piped@example.com"],
        env=cli_env,
        input="piped-password-1\n",
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "piped@example.com" in result.stdout
    assert "as viewer of Default" in result.stdout


@pytest.mark.parametrize("secret_key", [None, "change-me"])
def test_serve_in_production_refuses_a_missing_or_default_secret_key(
    cli_env: dict[str, str], secret_key: str | None
) -> None:
    env = {**cli_env, "WINDFLOW_ENV": "production"}
    if secret_key is not None:
        env["WINDFLOW_SECRET_KEY"] = secret_key

    result = windflow(env, "serve", "--port", str(free_port()))

    assert result.returncode == 2
    assert "WINDFLOW_SECRET_KEY" in result.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_healthy(base_url: str, process: subprocess.Popen[bytes]) -> None:
    """Poll the health endpoint for up to ~20 s; fail early when the server dies."""
    for _ in range(100):
        assert process.poll() is None, f"the server exited with {process.returncode}"
        try:
            if httpx.get(f"{base_url}/api/v1/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("the server did not become healthy")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


def test_serve_answers_http_and_logs_json(cli_env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    env = {
        **cli_env,
        "WINDFLOW_ENV": "development",
        "WINDFLOW_ADMIN_EMAIL": "root@example.com",
        "WINDFLOW_ADMIN_PASSWORD": "root-password-1",
        "WINDFLOW_HOST": "127.0.0.1",
        "WINDFLOW_PORT": str(port),
    }
    stdout_path, stderr_path = tmp_path / "stdout.log", tmp_path / "stderr.log"
    base_url = f"http://127.0.0.1:{port}"
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        process = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "server", "serve"], env=env, stdout=stdout, stderr=stderr
        )
        try:
            wait_until_healthy(base_url, process)
            login = httpx.post(
                f"{base_url}/api/v1/auth/login",
                json={"email": "root@example.com", "password": "root-password-1"},
                headers={"X-Request-ID": "cli-test-login-1"},
                timeout=10,
            )
            assert login.status_code == 200, login.text
            assert login.headers["x-request-id"] == "cli-test-login-1"
            me = httpx.get(
                f"{base_url}/api/v1/users/me",
                headers={"Authorization": f"Bearer {login.json()['access_token']}"},
                timeout=10,
            )
            assert me.json()["email"] == "root@example.com"
        finally:
            stop(process)

    # uvicorn re-raises the SIGTERM it handled once shutdown is done; -SIGKILL would mean it hung.
    assert process.returncode in (0, -signal.SIGTERM), stderr_path.read_text()
    assert (tmp_path / "secret_key").exists()
    lines = [line for line in stdout_path.read_text().splitlines() if line.strip()]
    entries: list[dict[str, Any]] = [json.loads(line) for line in lines]
    assert "Application shutdown complete." in [e["message"] for e in entries]
    login_entries = [e for e in entries if e.get("request_id") == "cli-test-login-1"]
    assert login_entries, stdout_path.read_text()
    assert any(e.get("path") == "/api/v1/auth/login" and e.get("status") == 200 for e in login_entries)
