"""The database engine for the configured URL, bound to every table."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, TransactionType

from server.db.tables import TABLES
from server.settings import Settings

log = logging.getLogger(__name__)


def make_engine(settings: Settings) -> Engine[Any]:
    url = settings.resolved_database_url
    if settings.is_sqlite:
        # sqlite:///relative/path.db or sqlite:////absolute/path.db
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return SQLiteEngine(path=str(path), timeout=30)
    dsn = url.replace("postgres://", "postgresql://", 1)
    return PostgresEngine(config={"dsn": dsn}, log_queries=False)


def bind_tables(engine: Engine[Any]) -> None:
    """Point every table at ``engine`` (Piccolo otherwise looks for a ``piccolo_conf`` module)."""
    for table in TABLES:
        table._meta.db = engine


async def open_engine(settings: Settings) -> Engine[Any]:
    engine = make_engine(settings)
    bind_tables(engine)
    if isinstance(engine, PostgresEngine):
        await engine.start_connection_pool(min_size=1, max_size=settings.database_pool_size)
    else:
        await engine.run_ddl("PRAGMA journal_mode=WAL")
    return engine


async def close_engine(engine: Engine[Any]) -> None:
    if isinstance(engine, PostgresEngine):
        await engine.close_connection_pool()


async def ping(engine: Engine[Any]) -> None:
    await engine.run_ddl("SELECT 1")


def atomic() -> Any:
    """A transaction on the bound engine: a service's writes land together or not at all."""
    engine = TABLES[0]._meta.db
    if isinstance(engine, SQLiteEngine):
        return engine.transaction(transaction_type=TransactionType.immediate)
    return engine.transaction()


async def lock_organization(organization_id: Any) -> None:
    """Inside :func:`atomic`: serialise writers of one organization (SQLite's transaction already does)."""
    engine = TABLES[0]._meta.db
    if isinstance(engine, PostgresEngine):
        await engine.run_ddl(f"SELECT pg_advisory_xact_lock(hashtext('{uuid.UUID(str(organization_id))}'))")
