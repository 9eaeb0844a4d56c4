"""The stack catalogue: the definitions in ``server/stacks/catalogue/``, present in every organization.

Each file becomes a stack with source ``catalogue``. Strategies for a stack that already exists
under that name: ``skip`` leaves it alone; ``update`` adds the file as the next version when its
``metadata.version`` is newer (semver) than the stored one; ``force`` stores the file whenever it
differs, and also takes back a stack of that name that a user edited. A broken file is logged
and left out, never fatal.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import anyio

from server.db.tables import Organization, Stack
from server.errors import ValidationFailed
from server.stacks.service import check_defaults, insert_stack, save_stack_version
from server.stacks.spec import Definition, load_text, parse_definition, semver_key

log = logging.getLogger(__name__)
Strategy = Literal["skip", "update", "force"]
CATALOGUE = Path(__file__).with_name("catalogue")
OUTCOMES = ("created", "updated", "unchanged", "skipped")
# Definitions already checked in this process, by file content: the files do not change while it
# runs, so a later start-up or a new organization costs no new parse and compile.
_checked: dict[str, Definition] = {}


@dataclass(frozen=True)
class Entry:
    path: Path
    definition: Definition


def read_catalogue(directory: Path = CATALOGUE) -> list[Entry]:
    """Every valid definition of the directory (the first file of a name wins)."""
    entries: dict[str, Entry] = {}
    for path in sorted(directory.glob("*.yml")):
        try:
            text = path.read_text(encoding="utf-8")
            key = hashlib.sha256(f"{path.name}\0{text}".encode()).hexdigest()
            definition = _checked.get(key)
            if definition is None:
                definition = parse_definition(load_text(text, path.name), path.name)
                check_defaults(definition)
                _checked[key] = definition
        except (OSError, UnicodeDecodeError, ValidationFailed) as exc:
            detail = exc.detail if isinstance(exc, ValidationFailed) else str(exc)
            log.warning("catalogue stack invalid, skipped", extra={"file": str(path), "error": detail})
            continue
        if definition.metadata.name in entries:
            log.warning("catalogue stack name used twice, skipped", extra={"file": str(path)})
            continue
        entries[definition.metadata.name] = Entry(path, definition)
    return list(entries.values())


async def _sync_one(organization_id: uuid.UUID, entry: Entry, strategy: Strategy) -> str:
    name = entry.definition.metadata.name
    row: dict[str, Any] | None = (
        await Stack.select(Stack.id, Stack.name, Stack.source, Stack.semver, Stack.latest_version)
        .where(Stack.organization == organization_id, Stack.name == name)
        .first()
    )
    if row is None:
        await insert_stack(organization_id, entry.definition, "catalogue", None)
        return "created"
    if strategy == "skip" or (row["source"] != "catalogue" and strategy != "force"):
        return "skipped"
    if strategy == "update" and semver_key(entry.definition.metadata.version) <= semver_key(row["semver"]):
        return "unchanged"
    current = {**row, "organization_id": organization_id}
    before = row["latest_version"]
    after = await save_stack_version(current, entry.definition, None, "catalogue")
    return "updated" if after != before or row["source"] != "catalogue" else "unchanged"


async def sync_catalogue(
    strategy: Strategy = "update", *, organization_id: uuid.UUID | None = None, directory: Path = CATALOGUE
) -> dict[str, int]:
    """Bring the catalogue into every organization (or only ``organization_id``); counts by outcome."""
    entries = await anyio.to_thread.run_sync(read_catalogue, directory)
    counts = dict.fromkeys(OUTCOMES, 0)
    if organization_id is None:
        organizations = [row["id"] for row in await Organization.select(Organization.id)]
    else:
        organizations = [organization_id]
    for organization in organizations:
        for entry in entries:
            try:
                outcome = await _sync_one(organization, entry, strategy)
            except Exception:  # noqa: BLE001 - e.g. a second server syncing at the same moment
                log.exception("catalogue stack not synced", extra={"file": str(entry.path)})
                outcome = "skipped"
            counts[outcome] += 1
    log.info("stack catalogue synced", extra={"catalogue": counts, "strategy": strategy})
    return counts
