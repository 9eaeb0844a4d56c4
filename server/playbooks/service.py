"""Playbooks of an organization and their versions.

A playbook's content lives only in its versions: creating one stores version 1, and every later
save whose content differs (by SHA-256) from the latest adds the next version; the same content
adds nothing. Versions are never changed or removed on their own, so a run can always say what it
ran. Every write lands with its audit row in one transaction; audit details name, never content.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any, Literal

from server import audit
from server.auth.principal import Principal
from server.auth.service import utcnow
from server.db.engine import atomic
from server.db.pages import page_of
from server.db.tables import Playbook, PlaybookVersion
from server.errors import Conflict, NotFound
from server.playbooks.validation import validate_playbook

Source = Literal["manual", "generated", "assistant", "library"]
SUMMARY = (
    Playbook.id,
    Playbook.organization,
    Playbook.name,
    Playbook.description,
    Playbook.source,
    Playbook.latest_version,
    Playbook.created_at,
    Playbook.updated_at,
)
VERSION = (
    PlaybookVersion.playbook,
    PlaybookVersion.version,
    PlaybookVersion.checksum,
    PlaybookVersion.created_by,
    PlaybookVersion.created_at,
)


def checksum_of(content: str) -> str:
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    row["organization_id"] = row.pop("organization")
    return row


def _decode_version(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    row["playbook_id"] = row.pop("playbook")
    return row


async def list_playbooks(
    principal: Principal, page: int, size: int, source: Source | None = None
) -> tuple[list[dict[str, Any]], int]:
    organization_id = principal.current_organization()
    query = Playbook.select(*SUMMARY).where(Playbook.organization == organization_id).order_by(Playbook.name)
    counter = Playbook.count().where(Playbook.organization == organization_id)
    if source is not None:
        query = query.where(Playbook.source == source)
        counter = counter.where(Playbook.source == source)
    rows = await page_of(query, page, size)
    return [_decode(row) for row in rows], await counter


async def _summary(organization_id: uuid.UUID, playbook_id: uuid.UUID) -> dict[str, Any]:
    row = (
        await Playbook.select(*SUMMARY)
        .where(Playbook.id == playbook_id, Playbook.organization == organization_id)
        .first()
    )
    if row is None:
        raise NotFound("playbook not found")
    return _decode(row)


async def _version(playbook_id: uuid.UUID, version: int) -> dict[str, Any] | None:
    row = (
        await PlaybookVersion.select(*VERSION, PlaybookVersion.id, PlaybookVersion.content)
        .where(PlaybookVersion.playbook == playbook_id, PlaybookVersion.version == version)
        .first()
    )
    return None if row is None else _decode_version(row)


async def get_playbook(principal: Principal, playbook_id: uuid.UUID) -> dict[str, Any]:
    """The playbook with its latest version's content."""
    row = await _summary(principal.current_organization(), playbook_id)
    latest = await _version(playbook_id, row["latest_version"])
    return {**row, "content": latest["content"] if latest else ""}


async def list_versions(
    principal: Principal, playbook_id: uuid.UUID, page: int, size: int
) -> tuple[list[dict[str, Any]], int]:
    """Newest first, without content."""
    await _summary(principal.current_organization(), playbook_id)
    query = (
        PlaybookVersion.select(*VERSION)
        .where(PlaybookVersion.playbook == playbook_id)
        .order_by(PlaybookVersion.version, ascending=False)
    )
    rows = await page_of(query, page, size)
    total = await PlaybookVersion.count().where(PlaybookVersion.playbook == playbook_id)
    return [_decode_version(row) for row in rows], total


async def get_version(principal: Principal, playbook_id: uuid.UUID, version: int) -> dict[str, Any]:
    await _summary(principal.current_organization(), playbook_id)
    row = await _version(playbook_id, version)
    if row is None:
        raise NotFound(f"this playbook has no version {version}")
    row.pop("id")
    return row


async def version_for_run(organization_id: uuid.UUID, playbook_id: uuid.UUID, version: int | None) -> dict[str, Any]:
    """What a run executes: the given version of the playbook (the latest when None).

    Returns ``playbook_id``, ``name``, ``version_id``, ``version``, ``content`` and ``checksum``;
    :class:`NotFound` when the playbook is not in the organization or has no such version.
    """
    playbook = await _summary(organization_id, playbook_id)
    number = playbook["latest_version"] if version is None else version
    row = await _version(playbook_id, number)
    if row is None:
        raise NotFound(f"this playbook has no version {number}")
    return {
        "playbook_id": playbook_id,
        "name": playbook["name"],
        "version_id": row["id"],
        "version": row["version"],
        "content": row["content"],
        "checksum": row["checksum"],
    }


async def name_taken(organization_id: uuid.UUID, name: str, except_id: uuid.UUID | None = None) -> bool:
    query = Playbook.exists().where(Playbook.organization == organization_id, Playbook.name == name)
    if except_id is not None:
        query = query.where(Playbook.id != except_id)
    return await query


async def insert_playbook(
    organization_id: uuid.UUID,
    name: str,
    description: str,
    content: str,
    source: Source,
    actor: Principal | None,
) -> uuid.UUID:
    """Store a new playbook as version 1 with its audit row (the content is already validated)."""
    user_id = actor.user_id if actor else None
    playbook = Playbook(
        organization=organization_id,
        name=name,
        description=description,
        source=source,
        latest_version=1,
        created_by=user_id,
    )
    async with atomic():
        await playbook.save()
        await PlaybookVersion.insert(
            PlaybookVersion(
                playbook=playbook.id, version=1, content=content, checksum=checksum_of(content), created_by=user_id
            )
        )
        await _audit("playbook.create", actor, organization_id, playbook.id, {"name": name, "version": 1})
    return playbook.id


async def create_playbook(
    principal: Principal, name: str, description: str, content: str, source: Source = "manual"
) -> dict[str, Any]:
    organization_id = principal.current_organization()
    if await name_taken(organization_id, name):
        raise Conflict(f"a playbook named {name!r} already exists in this organization")
    await validate_playbook(content)
    playbook_id = await insert_playbook(organization_id, name, description, content, source, principal)
    return await get_playbook(principal, playbook_id)


async def save_version(
    current: dict[str, Any], content: str | None, values: dict[Any, Any], actor: Principal | None
) -> int:
    """Apply ``values`` to the playbook and, when ``content`` is given, add it as the next version."""
    version: int = current["latest_version"]
    user_id = actor.user_id if actor else None
    async with atomic():
        if content is not None:
            version += 1
            await PlaybookVersion.insert(
                PlaybookVersion(
                    playbook=current["id"],
                    version=version,
                    content=content,
                    checksum=checksum_of(content),
                    created_by=user_id,
                )
            )
            values[Playbook.latest_version] = version
        await Playbook.update({**values, Playbook.updated_at: utcnow()}).where(Playbook.id == current["id"])
        name = values.get(Playbook.name, current["name"])
        detail = {"name": name, "version": version, "fields": sorted(column._meta.name for column in values)}
        await _audit("playbook.update", actor, current["organization_id"], current["id"], detail)
    return version


async def update_playbook(principal: Principal, playbook_id: uuid.UUID, changes: dict[str, Any]) -> dict[str, Any]:
    """Apply a PATCH of ``name``, ``description`` and ``content``; only a real change is written.

    Changing the name or the content of a ``library`` playbook makes it ``manual``: it is yours
    now, and the library sync leaves it alone.
    """
    current = await get_playbook(principal, playbook_id)
    values: dict[Any, Any] = {}
    if "name" in changes and changes["name"] != current["name"]:
        if await name_taken(current["organization_id"], changes["name"], playbook_id):
            raise Conflict(f"a playbook named {changes['name']!r} already exists in this organization")
        values[Playbook.name] = changes["name"]
    if "description" in changes and changes["description"] != current["description"]:
        values[Playbook.description] = changes["description"]
    content: str | None = changes.get("content")
    if content is not None and checksum_of(content) == checksum_of(current["content"]):
        content = None  # the latest version, checked when it was saved
    if content is not None:
        await validate_playbook(content)
    if current["source"] == "library" and (content is not None or Playbook.name in values):
        values[Playbook.source] = "manual"
    if values or content is not None:
        await save_version(current, content, values, principal)
    return await get_playbook(principal, playbook_id)


async def delete_playbook(principal: Principal, playbook_id: uuid.UUID) -> None:
    """Remove the playbook and its versions; runs keep their history with the link cleared."""
    current = await _summary(principal.current_organization(), playbook_id)
    async with atomic():
        await Playbook.delete().where(Playbook.id == playbook_id)
        detail = {"name": current["name"], "version": current["latest_version"]}
        await _audit("playbook.delete", principal, current["organization_id"], playbook_id, detail)


async def _audit(
    action: str, actor: Principal | None, organization_id: uuid.UUID, playbook_id: uuid.UUID, detail: dict[str, Any]
) -> None:
    await audit.record(
        action,
        actor=actor,
        actor_email="" if actor else "system",
        organization_id=organization_id,
        target_type="playbook",
        target_id=playbook_id,
        detail=detail,
    )
