"""Schema migrations: ordered modules ``mNNNN_<what>.py``, each with ``async def upgrade(engine)``.

Each migration describes the tables as they were when it was written (Piccolo tables declared
inside it), so later changes to ``server/db/tables.py`` never change what an old migration does.
Applied names are recorded in ``windflow_migration``; all pending ones run in one transaction,
serialised across processes (an advisory lock on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite).
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any

from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, TransactionType

from server.db.tables import SchemaMigration

log = logging.getLogger(__name__)
_LOCK_ID = 0x57464D47  # "WFMG"

Upgrade = Callable[[Engine[Any]], Awaitable[None]]


def migration_modules() -> dict[str, ModuleType]:
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name.startswith("m"))
    return {name: importlib.import_module(f"{__name__}.{name}") for name in names}


async def migrate(engine: Engine[Any]) -> list[str]:
    """Apply every pending migration; returns the names applied (empty when up to date)."""
    await SchemaMigration.create_table(if_not_exists=True)
    if isinstance(engine, SQLiteEngine):
        transaction = engine.transaction(transaction_type=TransactionType.immediate)
    else:
        transaction = engine.transaction()
    applied_now: list[str] = []
    async with transaction:
        if isinstance(engine, PostgresEngine):
            await engine.run_ddl(f"SELECT pg_advisory_xact_lock({_LOCK_ID})")
        applied = {row["name"] for row in await SchemaMigration.select(SchemaMigration.name)}
        for name, module in migration_modules().items():
            if name in applied:
                continue
            upgrade: Upgrade = module.upgrade
            await upgrade(engine)
            await SchemaMigration.insert(SchemaMigration(name=name))
            applied_now.append(name)
    for name in applied_now:
        log.info("migration applied", extra={"migration": name})
    return applied_now
