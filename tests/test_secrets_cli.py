"""``windflow secrets rotate|status``: re-encrypting credentials under a new secret key."""

from __future__ import annotations

import os
import subprocess  # noqa: S404
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest

from server.auth.principal import Principal
from server.cli import main
from server.credentials import crypto, kinds, service
from server.db.engine import close_engine, open_engine
from server.db.tables import Credential, Organization
from server.settings import Settings
from tests.credentials.samples import kubeconfig, ssh_keypair

KEY_A = "old-secret-key-0123456789-abcdefghijklmnopqrstu"
KEY_B = "new-secret-key-0123456789-abcdefghijklmnopqrstu"


@pytest.fixture
def settings(clean_database: None, make_settings: Any, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings for key A; the environment the CLI reads says key B, on the same database."""
    made: Settings = make_settings(secret_key=KEY_A)
    for name in list(os.environ):
        if name.startswith("WINDFLOW_") and not name.startswith("WINDFLOW_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("WINDFLOW_ENV", "production")
    monkeypatch.setenv("WINDFLOW_SECRET_KEY", KEY_B)
    monkeypatch.setenv("WINDFLOW_DATABASE_URL", made.resolved_database_url)
    monkeypatch.setenv("WINDFLOW_DATA_DIR", str(made.data_dir))
    return made


@asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[None]:
    engine = await open_engine(settings)
    try:
        yield
    finally:
        await close_engine(engine)


async def windflow(*args: str) -> int:
    return await anyio.to_thread.run_sync(main, list(args))


async def seed(settings: Settings, tmp_path: Path) -> tuple[uuid.UUID, dict[uuid.UUID, dict[str, str]]]:
    """Three credentials sealed with key A: their organization and secrets by id."""
    inputs = {
        "password": {"username": "root", "password": "rotate-me-1"},
        "ssh_key": {"private_key": ssh_keypair(tmp_path, passphrase="pp").private_key, "passphrase": "pp"},
        "kubeconfig": {"kubeconfig": kubeconfig()},
    }
    async with database(settings):
        organization = Organization(name="Rotation")
        await organization.save()
        principal = Principal(uuid.uuid4(), "cli@windflow.test", True, organization.id)
        secrets = {}
        for kind, values in inputs.items():
            row = await service.create_credential(principal, KEY_A, kind, kind, "", values)
            secrets[row["id"]] = kinds.check(KEY_A, kind, values).secret
    return organization.id, secrets


async def stored(settings: Settings) -> dict[uuid.UUID, dict[str, Any]]:
    async with database(settings):
        rows = await Credential.select(Credential.id, Credential.secret, Credential.fingerprint)
    return {row["id"]: row for row in rows}


async def test_rotate_re_encrypts_every_credential_once(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    organization_id, secrets = await seed(settings, tmp_path)
    before = await stored(settings)
    monkeypatch.setenv("WINDFLOW_OLD_SECRET_KEY", KEY_A)

    assert await windflow("secrets", "rotate") == 0
    assert "rotated 3 credentials; 0 already under the current key" in capsys.readouterr().out

    async with database(settings):
        assert {
            i: c.secret for i, c in (await service.reveal(KEY_B, organization_id, list(secrets))).items()
        } == secrets
        with pytest.raises(crypto.SealedSecretError):
            await service.reveal(KEY_A, organization_id, list(secrets))
    after = await stored(settings)
    for credential_id, row in after.items():
        assert crypto.sealed_key_id(row["secret"]) == crypto.key_id(KEY_B)
        assert row["secret"] != before[credential_id]["secret"]
    fingerprints = {row["fingerprint"].split(":")[0] for row in after.values()}
    assert fingerprints == {"SHA256", "hmac-sha256"}
    assert all(
        (row["fingerprint"] == before[i]["fingerprint"]) == row["fingerprint"].startswith("SHA256:")
        for i, row in after.items()
    )

    assert await windflow("secrets", "rotate") == 0
    assert "rotated 0 credentials; 3 already under the current key" in capsys.readouterr().out
    assert await stored(settings) == after
    assert await windflow("secrets", "status") == 0
    assert (
        f"3 credentials under the current key ({crypto.key_id(KEY_B)}); 0 under other keys" in capsys.readouterr().out
    )


async def test_a_wrong_old_key_changes_nothing(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, secrets = await seed(settings, tmp_path)
    before = await stored(settings)
    key_file = tmp_path / "old-key"
    key_file.write_text("not-the-old-key-0123456789-abcdefghijklmnop\n")

    assert await windflow("secrets", "rotate", "--old-key-file", str(key_file)) == 1

    captured = capsys.readouterr()
    assert "nothing changed" in captured.err
    assert all(str(credential_id) in captured.err for credential_id in secrets)
    assert await stored(settings) == before


async def test_one_unreadable_credential_stops_the_whole_rotation(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, secrets = await seed(settings, tmp_path)
    stray = next(iter(secrets))
    async with database(settings):
        sealed = service.seal_secret("a-third-key-0123456789-abcdefghijklmnopqrstu", stray, {"password": "x"})
        await Credential.update({Credential.secret: sealed}).where(Credential.id == stray)
    before = await stored(settings)
    monkeypatch.setenv("WINDFLOW_OLD_SECRET_KEY", KEY_A)

    assert await windflow("secrets", "rotate") == 1

    assert f"neither key decrypts credentials {stray}\n" in capsys.readouterr().err
    assert await stored(settings) == before
    assert await windflow("secrets", "status") == 0
    assert "0 credentials under the current key" in capsys.readouterr().out


async def test_rotate_needs_the_old_key(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert await windflow("secrets", "rotate") == 2
    assert "WINDFLOW_OLD_SECRET_KEY" in capsys.readouterr().err
    assert await windflow("secrets", "rotate", "--old-key-file", "/nonexistent/old-key") == 2
    assert "cannot read --old-key-file" in capsys.readouterr().err


async def test_status_runs_as_a_command(settings: Settings, tmp_path: Path) -> None:
    await seed(settings, tmp_path)

    result = await anyio.to_thread.run_sync(
        lambda: subprocess.run(  # noqa: S603
            [sys.executable, "-m", "server", "secrets", "status"],
            env={**os.environ, "WINDFLOW_SECRET_KEY": KEY_A},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"3 credentials under the current key ({crypto.key_id(KEY_A)}); 0 under other keys\n"
