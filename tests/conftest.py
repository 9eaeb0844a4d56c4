"""The suite runs once per engine (``WINDFLOW_TEST_ENGINE=sqlite|postgres``, see the Makefile).

In the PostgreSQL pass only tests that touch the database run again. PostgreSQL and Redis must be
reachable: the suite stops at once, saying how to start them, rather than skipping anything.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_sync
from litestar.testing import AsyncTestClient

from server.app import create_app
from server.db.engine import close_engine, open_engine
from server.db.migrations import migrate
from server.db.tables import TABLES, SchemaMigration
from server.settings import Settings
from tests import services

pytest_plugins = ["tests.lab.fixtures"]

SECRET_KEY = "test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
ADMIN_EMAIL = "admin@windflow.test"
ADMIN_PASSWORD = "admin-password-1"
DB_FIXTURES = {"database_url", "clean_database", "client", "admin_client", "make_settings"}


def pytest_configure(config: pytest.Config) -> None:
    needed = [("Redis", services.REDIS_URL)]
    if services.ENGINE == "postgres":
        needed.append(("PostgreSQL", services.POSTGRES_URL))
    elif services.ENGINE != "sqlite":
        pytest.exit(f"WINDFLOW_TEST_ENGINE must be sqlite or postgres, not {services.ENGINE!r}", returncode=4)
    for name, url in needed:
        if message := services.unreachable(name, url):
            pytest.exit(message, returncode=3)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """PostgreSQL pass: keep the tests that use the database; SQLite pass: drop postgres-only ones."""
    keep, drop = [], []
    for item in items:
        uses_db = bool(DB_FIXTURES & set(getattr(item, "fixturenames", ())))
        pg_only = item.get_closest_marker("postgres_only") is not None
        wanted = uses_db if services.ENGINE == "postgres" else not pg_only
        (keep if wanted else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    # `make lab-up`/`lab-down` need the machine's one lab to themselves: run them before any test
    # starts the session's lab fixtures.
    items[:] = sorted(keep, key=lambda item: item.path.name != "test_cli_lab.py")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if services.ENGINE == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'windflow.db'}"
        return
    name, url = services.create_postgres_database()
    try:
        yield url
    finally:
        services.drop_postgres_database(name)


@pytest.fixture
def make_settings(database_url: str, tmp_path: Path) -> Any:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "env": "production",
            "secret_key": SECRET_KEY,
            "data_dir": tmp_path / "data",
            "database_url": database_url,
            "admin_email": ADMIN_EMAIL,
            "admin_password": ADMIN_PASSWORD,
            "rate_limit": 0,
            "login_ip_max_attempts": 1000,
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
async def clean_database(make_settings: Any) -> None:
    """Every test starts from an empty, fully migrated schema."""
    engine = await open_engine(make_settings())
    try:
        await migrate(engine)
        for table in reversed(TABLES):
            if table is not SchemaMigration:
                await table.delete(force=True)
    finally:
        await close_engine(engine)


@pytest.fixture
def redis_url() -> Iterator[str]:
    client = redis_sync.Redis.from_url(services.REDIS_URL)
    client.flushdb()
    yield services.REDIS_URL
    client.flushdb()
    client.close()


@pytest.fixture
async def client(clean_database: None, make_settings: Any) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(create_app(make_settings())) as test_client:
        yield test_client


@pytest.fixture
async def admin_client(client: AsyncTestClient[Any]) -> AsyncTestClient[Any]:
    """The client, logged in as the first admin (a superadmin) from the environment."""
    from tests.factories import login

    client.headers.update(await login(client, ADMIN_EMAIL, ADMIN_PASSWORD))
    return client


@pytest.fixture(scope="session")
def scripted_llm_server() -> Iterator[Any]:
    from tests.assistant.scripted_llm import ScriptedLLM

    server = ScriptedLLM().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def scripted_llm(scripted_llm_server: Any) -> Iterator[Any]:
    """The OpenAI-protocol server with scripted answers, emptied before and after each test."""
    scripted_llm_server.reset()
    yield scripted_llm_server
    scripted_llm_server.reset()


@pytest.fixture(autouse=True)
def _quiet_piccolo() -> None:
    logging.getLogger("piccolo").setLevel(logging.WARNING)
