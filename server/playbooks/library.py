"""The built-in library: the repository's ``playbooks/*.yml``, present in every organization.

Each file becomes a playbook with source ``library``, named after its first play's ``name`` (the
file stem when it has none) and described by a ``# description: ...`` comment line in the file.
Files are checked like any playbook; a broken one is logged and left out, never fatal.

Strategies for a playbook that already exists under that name:
``skip`` leaves it as it is; ``update`` adds a new version when the file differs from its latest
version (and refreshes the description); ``force`` does the same and also takes back a playbook of
that name that is no longer ``library`` (edited by a user): the file becomes its next version.
A library playbook that was deleted comes back at the next sync, like a missing file would.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import anyio
import yaml

from server.db.tables import Organization, Playbook, PlaybookVersion
from server.errors import ValidationFailed
from server.playbooks.paths import library_dir
from server.playbooks.service import checksum_of, insert_playbook, save_version
from server.playbooks.validation import validate_playbook

log = logging.getLogger(__name__)
Strategy = Literal["skip", "update", "force"]
Outcome = Literal["created", "updated", "unchanged", "skipped"]
OUTCOMES: tuple[Outcome, ...] = ("created", "updated", "unchanged", "skipped")
_DESCRIPTION = re.compile(r"^#\s*description:\s*(?P<text>.+?)\s*$", re.MULTILINE | re.IGNORECASE)
_CHECKS = 2  # syntax checks at a time: each is an ansible-playbook process
# Checksums of library files that passed validation in this process: the files do not change
# while it runs, so an organization created later costs no new ansible-playbook call.
_validated: set[str] = set()


@dataclass(frozen=True)
class LibraryFile:
    path: Path
    name: str
    description: str
    content: str
    checksum: str


def read_library_file(path: Path) -> LibraryFile:
    content = path.read_text(encoding="utf-8")
    name = path.stem
    try:
        plays = yaml.load(content, Loader=yaml.CSafeLoader)  # noqa: S506 - the C safe loader
    except yaml.YAMLError:
        plays = None  # validation reports it
    if isinstance(plays, list) and plays and isinstance(plays[0], dict):
        first = str(plays[0].get("name") or "").strip()
        name = first[:100].strip() or name
    match = _DESCRIPTION.search(content)
    description = match.group("text")[:2000] if match else ""
    return LibraryFile(path, name, description, content, checksum_of(content))


def read_library(directory: Path) -> list[LibraryFile]:
    files = []
    for path in sorted(directory.glob("*.yml")):
        try:
            files.append(read_library_file(path))
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("library playbook unreadable, skipped", extra={"file": str(path), "error": str(exc)})
    return files


async def _checked(files: list[LibraryFile]) -> list[LibraryFile]:
    """The files that pass validation (unique names; the first file of a name wins)."""
    limit = asyncio.Semaphore(_CHECKS)

    async def passes(file: LibraryFile) -> bool:
        if file.checksum in _validated:
            return True
        async with limit:
            try:
                await validate_playbook(file.content, field=file.path.name)
            except ValidationFailed as exc:
                log.warning("library playbook invalid, skipped", extra={"file": str(file.path), "error": exc.detail})
                return False
            except Exception:  # noqa: BLE001 - e.g. no ansible-playbook: start without the library
                log.exception("library playbook could not be checked, skipped", extra={"file": str(file.path)})
                return False
        _validated.add(file.checksum)
        return True

    verdicts = await asyncio.gather(*(passes(file) for file in files))
    good: dict[str, LibraryFile] = {}
    for file, ok in zip(files, verdicts, strict=True):
        if ok and file.name not in good:
            good[file.name] = file
        elif ok:
            log.warning("library playbook name used twice, skipped", extra={"file": str(file.path)})
    return list(good.values())


async def _latest_checksum(playbook_id: uuid.UUID, version: int) -> str | None:
    row = (
        await PlaybookVersion.select(PlaybookVersion.checksum)
        .where(PlaybookVersion.playbook == playbook_id, PlaybookVersion.version == version)
        .first()
    )
    return None if row is None else str(row["checksum"])


async def _sync_one(organization_id: uuid.UUID, file: LibraryFile, strategy: Strategy) -> Outcome:
    row: dict[str, Any] | None = (
        await Playbook.select(
            Playbook.id, Playbook.name, Playbook.description, Playbook.source, Playbook.latest_version
        )
        .where(Playbook.organization == organization_id, Playbook.name == file.name)
        .first()
    )
    if row is None:
        await insert_playbook(organization_id, file.name, file.description, file.content, "library", None)
        return "created"
    same = await _latest_checksum(row["id"], row["latest_version"]) == file.checksum
    if row["source"] != "library" and strategy != "force":
        return "skipped"
    if strategy == "skip":
        return "unchanged" if same else "skipped"
    values: dict[Any, Any] = {}
    if row["source"] != "library":
        values[Playbook.source] = "library"
    if row["description"] != file.description:
        values[Playbook.description] = file.description
    if same and not values:
        return "unchanged"
    current = {**row, "organization_id": organization_id}
    await save_version(current, None if same else file.content, values, None)
    return "updated"


async def sync_library(
    directory: Path, strategy: Strategy = "update", *, organization_id: uuid.UUID | None = None
) -> dict[str, int]:
    """Bring the library into every organization (or only ``organization_id``).

    Returns how many (organization, playbook) pairs were ``created``, ``updated``, ``unchanged``
    or ``skipped`` (a user's playbook holds the name, or the write failed), and how many files
    were ``invalid``.
    """
    files = await anyio.to_thread.run_sync(read_library, directory)
    valid = await _checked(files)
    counts: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
    counts["invalid"] = len({f.path for f in files} - {f.path for f in valid})
    if organization_id is None:
        organizations = [row["id"] for row in await Organization.select(Organization.id)]
    else:
        organizations = [organization_id]
    for organization in organizations:
        for file in valid:
            try:
                outcome = await _sync_one(organization, file, strategy)
            except Exception:  # noqa: BLE001 - e.g. a second server syncing at the same moment
                log.exception("library playbook not synced", extra={"file": str(file.path)})
                outcome = "skipped"
            counts[outcome] += 1
    log.info("playbook library synced", extra={"library": counts, "strategy": strategy})
    return counts


async def sync_bundled(organization_id: uuid.UUID | None = None) -> dict[str, int]:
    """Sync the repository's library (at start-up, and for a new organization); none found, no-op."""
    directory = library_dir()
    if directory is None:
        return {}
    return await sync_library(directory, organization_id=organization_id)
