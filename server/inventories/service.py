"""Inventories of an organization: create, read, change, delete, import and export.

Every write validates the whole document and its credential references first, then stores the
inventory and its credential links in one transaction: a rejected write changes nothing.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Literal

import anyio
import msgspec

from server import audit
from server.auth.principal import Principal
from server.auth.service import utcnow
from server.credentials.service import credential_kinds, reveal
from server.db.engine import atomic
from server.db.pages import page_of
from server.db.tables import Inventory, InventoryCredential
from server.errors import Conflict, FieldError, NotFound, ValidationFailed
from server.inventories import ansible_text, check, spec
from server.inventories.check import HostCheck
from server.inventories.sources import Source, SyncFailed, check_source, sync_source

Format = Literal["yaml", "ini"]
SUMMARY = (
    Inventory.id,
    Inventory.organization,
    Inventory.name,
    Inventory.description,
    Inventory.host_count,
    Inventory.group_count,
    Inventory.source,
    Inventory.synced_at,
    Inventory.sync_status,
    Inventory.sync_error,
    Inventory.created_at,
    Inventory.updated_at,
)


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    row["organization_id"] = row.pop("organization")
    if isinstance(row.get("source"), str):
        row["source"] = msgspec.json.decode(row["source"])
    if "document" in row:
        raw = row.pop("document")
        row["document"] = msgspec.json.decode(raw, type=spec.Document) if isinstance(raw, str | bytes) else raw
    return row


async def list_inventories(principal: Principal, page: int, size: int) -> tuple[list[dict[str, Any]], int]:
    organization_id = principal.current_organization()
    query = Inventory.select(*SUMMARY).where(Inventory.organization == organization_id).order_by(Inventory.name)
    rows = await page_of(query, page, size)
    total = await Inventory.count().where(Inventory.organization == organization_id)
    return [_decode(row) for row in rows], total


async def get_inventory(principal: Principal, inventory_id: uuid.UUID) -> dict[str, Any]:
    row = (
        await Inventory.select(*SUMMARY, Inventory.document)
        .where(Inventory.id == inventory_id, Inventory.organization == principal.current_organization())
        .first()
    )
    if row is None:
        raise NotFound("inventory not found")
    return _decode(row)


async def _name_taken(organization_id: uuid.UUID, name: str, except_id: uuid.UUID | None = None) -> bool:
    query = Inventory.exists().where(Inventory.organization == organization_id, Inventory.name == name)
    if except_id is not None:
        query = query.where(Inventory.id != except_id)
    return await query


async def _check_references(
    organization_id: uuid.UUID, document: spec.Document, source: Source | None, prefix: str
) -> set[uuid.UUID]:
    """Every referenced credential exists in the organization and is of a kind its field takes."""
    refs = list(spec.credential_refs(document, prefix))
    if source is not None and source.credential is not None:
        refs.append((f"{prefix}.source.credential", "source", source.credential, None))
    kinds = await credential_kinds(organization_id, list({ref[2] for ref in refs}))
    errors: list[FieldError] = []
    for path, field, credential_id, level_kind in refs:
        kind = kinds.get(credential_id)
        if field == "source" and source is not None:
            allowed = source.credential_kinds()
        else:
            allowed = spec.allowed_credential_kinds(field, level_kind)
        if kind is None:
            errors.append(FieldError(path, "no such credential in this organization"))
        elif kind not in allowed:
            errors.append(FieldError(path, f"is a {kind} credential; this field takes {' or '.join(sorted(allowed))}"))
    if errors:
        raise ValidationFailed(f"{errors[0].field}: {errors[0].message}", errors)
    return {ref[2] for ref in refs}


async def _validated(
    organization_id: uuid.UUID, document: spec.Document, source: Source | None, prefix: str, members_changed: bool
) -> set[uuid.UUID]:
    spec.validate(document, prefix)
    if source is not None:
        check_source(source, document, prefix, members_changed)
    return await _check_references(organization_id, document, source, prefix)


async def _link_credentials(inventory_id: uuid.UUID, credentials: set[uuid.UUID]) -> None:
    await InventoryCredential.delete().where(InventoryCredential.inventory == inventory_id)
    if credentials:
        await InventoryCredential.insert(
            *[InventoryCredential(inventory=inventory_id, credential=c) for c in sorted(credentials)]
        )


async def create_inventory(
    principal: Principal,
    name: str,
    description: str,
    document: spec.Document,
    source: Source | None = None,
    prefix: str = "body",
    action: str = "inventory.create",
) -> dict[str, Any]:
    organization_id = principal.current_organization()
    credentials = await _validated(organization_id, document, source, prefix, True)
    if await _name_taken(organization_id, name):
        raise Conflict(f"an inventory named {name!r} already exists in this organization")
    encoded = await anyio.to_thread.run_sync(msgspec.json.encode, document)
    inventory = Inventory(
        organization=organization_id,
        name=name,
        description=description,
        document=encoded.decode(),
        source=msgspec.json.encode(source).decode() if source else None,
        host_count=len(document.hosts),
        group_count=len(document.groups),
    )
    async with atomic():
        await inventory.save()
        await _link_credentials(inventory.id, credentials)
        await audit.record(
            action,
            actor=principal,
            organization_id=organization_id,
            target_type="inventory",
            target_id=inventory.id,
            detail={"name": name, **spec.summary(document)},
        )
    return await get_inventory(principal, inventory.id)


DOCUMENT_FIELDS = frozenset(spec.Document.__struct_fields__)


async def update_inventory(principal: Principal, inventory_id: uuid.UUID, changes: dict[str, Any]) -> dict[str, Any]:
    """Apply a PATCH: ``name``, ``description``, ``source`` and any top-level document field."""
    current = await get_inventory(principal, inventory_id)
    organization_id = principal.current_organization()
    document_changes = {k: v for k, v in changes.items() if k in DOCUMENT_FIELDS}
    document: spec.Document = msgspec.structs.replace(current["document"], **document_changes)
    source_changed = "source" in changes
    source = changes["source"] if source_changed else _source_of(current)
    members_changed = "hosts" in changes or "groups" in changes
    if source_changed and source is not None and not members_changed:
        # A new source owns the hosts and groups from its first sync on.
        document = msgspec.structs.replace(document, hosts=[], groups=[])
        document_changes = {**document_changes, "hosts": [], "groups": []}
    credentials = await _validated(organization_id, document, source, "body", members_changed)
    if "name" in changes and await _name_taken(organization_id, changes["name"], inventory_id):
        raise Conflict(f"an inventory named {changes['name']!r} already exists in this organization")
    values: dict[Any, Any] = {Inventory.updated_at: utcnow()}
    for key in ("name", "description"):
        if key in changes:
            values[getattr(Inventory, key)] = changes[key]
    if document_changes:
        values[Inventory.document] = msgspec.json.encode(document).decode()
        values[Inventory.host_count] = len(document.hosts)
        values[Inventory.group_count] = len(document.groups)
    if source_changed:
        values[Inventory.source] = msgspec.json.encode(source).decode() if source else None
    async with atomic():
        await Inventory.update(values).where(Inventory.id == inventory_id)
        await _link_credentials(inventory_id, credentials)
        await audit.record(
            "inventory.update",
            actor=principal,
            organization_id=organization_id,
            target_type="inventory",
            target_id=inventory_id,
            detail={"fields": sorted(changes)},
        )
    return await get_inventory(principal, inventory_id)


def _source_of(row: dict[str, Any]) -> Source | None:
    return msgspec.convert(row["source"], Source) if row.get("source") else None


async def delete_inventory(principal: Principal, inventory_id: uuid.UUID) -> None:
    current = await get_inventory(principal, inventory_id)
    async with atomic():
        await Inventory.delete().where(Inventory.id == inventory_id)
        await audit.record(
            "inventory.delete",
            actor=principal,
            organization_id=current["organization_id"],
            target_type="inventory",
            target_id=inventory_id,
            detail={"name": current["name"]},
        )


async def import_inventory(
    principal: Principal, name: str, description: str, fmt: Format, content: str
) -> dict[str, Any]:
    """Create an inventory from Ansible inventory text (parsed off the event loop)."""
    document = await anyio.to_thread.run_sync(ansible_text.parse, content, fmt, "body.content")
    return await create_inventory(
        principal, name, description, document, prefix="body.content", action="inventory.import"
    )


async def export_inventory(principal: Principal, inventory_id: uuid.UUID, fmt: Format) -> tuple[str, str]:
    """The inventory as Ansible text: (file name, content). Credentials are referenced, never exported."""
    current = await get_inventory(principal, inventory_id)
    text = await anyio.to_thread.run_sync(ansible_text.dump, current["document"], fmt)
    suffix = "yml" if fmt == "yaml" else "ini"
    return f"{current['name']}.{suffix}", text


async def store_synced(inventory_id: uuid.UUID, document: spec.Document | None, error: str) -> None:
    """Record a sync: the new hosts and groups on success, the error (and the old hosts) on failure."""
    values: dict[Any, Any] = {
        Inventory.synced_at: utcnow(),
        Inventory.sync_status: "failed" if error else "successful",
        Inventory.sync_error: error,
        Inventory.updated_at: utcnow(),
    }
    if document is not None:
        values[Inventory.document] = msgspec.json.encode(document).decode()
        values[Inventory.host_count] = len(document.hosts)
        values[Inventory.group_count] = len(document.groups)
    await Inventory.update(values).where(Inventory.id == inventory_id)


async def _secrets_for(settings_key: str, organization_id: uuid.UUID, ids: set[uuid.UUID]) -> dict[uuid.UUID, Any]:
    return dict(await reveal(settings_key, organization_id, sorted(ids))) if ids else {}


async def check_inventory(
    principal: Principal, secret_key: str, work_dir: Path, inventory_id: uuid.UUID, limit: str | None
) -> list[HostCheck]:
    """Try every (or every ``limit``-selected) host of the inventory for real."""
    current = await get_inventory(principal, inventory_id)
    document: spec.Document = current["document"]
    ids = {ref[2] for ref in spec.credential_refs(document)}
    secrets = await _secrets_for(secret_key, current["organization_id"], ids)
    return await check.check_inventory(document, secrets, work_dir, limit)


async def sync_inventory(
    principal: Principal, secret_key: str, work_dir: Path, inventory_id: uuid.UUID
) -> dict[str, Any]:
    """Refresh hosts and groups from the inventory's source; a failure is stored, not raised."""
    current = await get_inventory(principal, inventory_id)
    source = _source_of(current)
    if source is None:
        raise Conflict("this inventory has no source to sync; set `source` first")
    ids = {source.credential} if source.credential else set()
    secrets = await _secrets_for(secret_key, current["organization_id"], ids)
    try:
        document: spec.Document | None = await sync_source(source, current["document"], secrets, work_dir)
        error = ""
    except SyncFailed as exc:
        document, error = None, str(exc) or "the source could not be listed"
    async with atomic():
        await store_synced(inventory_id, document, error)
        await audit.record(
            "inventory.sync",
            actor=principal,
            organization_id=current["organization_id"],
            target_type="inventory",
            target_id=inventory_id,
            detail={"status": "failed" if error else "successful", **(spec.summary(document) if document else {})},
        )
    return await get_inventory(principal, inventory_id)
