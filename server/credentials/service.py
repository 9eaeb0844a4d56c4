"""Credentials of the caller's current organization: public fields readable, secrets write-only.

Secret values are sealed with the credential's id as associated data (``crypto.py``), leave this
module only through :func:`reveal` (for the parts of the server that hand them to Ansible), and
never reach a response, a log line or an audit row: audit rows name the fields, not their values.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio

from server import audit
from server.auth.principal import Principal
from server.auth.service import utcnow
from server.credentials import crypto, kinds
from server.db.engine import atomic
from server.db.pages import page_of
from server.db.tables import AssistantSettings, Credential, Deployment, InventoryCredential
from server.errors import Conflict, FieldError, NotFound, ValidationFailed

COLUMNS = (
    Credential.id,
    Credential.organization,
    Credential.name,
    Credential.kind,
    Credential.description,
    Credential.fields,
    Credential.fingerprint,
    Credential.created_at,
    Credential.updated_at,
)


@dataclass(frozen=True)
class Revealed:
    """A credential with its secret values decrypted; its ``repr`` names the secret fields only."""

    id: uuid.UUID
    name: str
    kind: str
    fields: dict[str, Any]
    secret: dict[str, str] = field(repr=False)

    def __repr__(self) -> str:
        hidden = ", ".join(sorted(self.secret))
        return (
            f"Revealed(id={self.id!r}, name={self.name!r}, kind={self.kind!r}, fields={self.fields!r}, "
            f"secret=<hidden: {hidden}>)"
        )


def seal_secret(secret_key: str, credential_id: uuid.UUID, secret: Mapping[str, str]) -> str:
    return crypto.seal(secret_key, json.dumps(dict(secret), sort_keys=True).encode(), credential_id.bytes)


def unseal_secret(secret_key: str, credential_id: uuid.UUID, token: str) -> dict[str, str]:
    values: dict[str, str] = json.loads(crypto.open_sealed(secret_key, token, credential_id.bytes))
    return values


def _stored_fields(checked: kinds.Checked) -> dict[str, Any]:
    return {"inputs": checked.inputs, "metadata": checked.metadata, "secret_fields": sorted(checked.secret)}


def _view(row: dict[str, Any]) -> dict[str, Any]:
    stored = row["fields"] if isinstance(row["fields"], dict) else json.loads(row["fields"])
    return {
        "id": row["id"],
        "organization_id": row["organization"],
        "name": row["name"],
        "kind": row["kind"],
        "description": row["description"],
        "inputs": stored.get("inputs", {}),
        "metadata": stored.get("metadata", {}),
        "secret_fields": stored.get("secret_fields", []),
        "fingerprint": row["fingerprint"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def _reject_nul(**texts: str) -> None:
    errors = [
        FieldError(f"body.{name}", "must not contain NUL characters") for name, text in texts.items() if "\x00" in text
    ]
    if errors:
        raise ValidationFailed("; ".join(f"{e.field}: {e.message}" for e in errors), errors)


async def _row(organization_id: uuid.UUID, credential_id: uuid.UUID, *extra: Any) -> dict[str, Any]:
    row = (
        await Credential.select(*COLUMNS, *extra)
        .where(Credential.organization == organization_id, Credential.id == credential_id)
        .output(load_json=True)
        .first()
    )
    if row is None:
        raise NotFound("credential not found")
    return dict(row)


async def _name_taken(organization_id: uuid.UUID, name: str, except_id: uuid.UUID | None = None) -> bool:
    query = Credential.exists().where(Credential.organization == organization_id, Credential.name == name)
    if except_id is not None:
        query = query.where(Credential.id != except_id)
    return bool(await query)


async def _audit(principal: Principal, action: str, row: dict[str, Any], detail: dict[str, Any]) -> None:
    await audit.record(
        action,
        actor=principal,
        organization_id=row["organization"],
        target_type="credential",
        target_id=row["id"],
        detail={"name": row["name"], "kind": row["kind"], **detail},
    )


async def list_credentials(
    principal: Principal, page: int, size: int, kind: str | None = None
) -> tuple[list[dict[str, Any]], int]:
    where = [Credential.organization == principal.current_organization()]
    if kind is not None:
        where.append(Credential.kind == kind)
    query = Credential.select(*COLUMNS).where(*where).order_by(Credential.name).output(load_json=True)
    rows = await page_of(query, page, size)
    return [_view(row) for row in rows], await Credential.count().where(*where)


async def get_credential(principal: Principal, credential_id: uuid.UUID) -> dict[str, Any]:
    return _view(await _row(principal.current_organization(), credential_id))


async def create_credential(
    principal: Principal, secret_key: str, name: str, kind: str, description: str, inputs: Mapping[str, Any]
) -> dict[str, Any]:
    organization_id = principal.current_organization()
    _reject_nul(name=name, description=description)
    checked = await anyio.to_thread.run_sync(kinds.check, secret_key, kind, dict(inputs))
    if await _name_taken(organization_id, name):
        raise Conflict(f"a credential named {name!r} already exists")
    credential_id = uuid.uuid4()
    credential = Credential(
        id=credential_id,
        organization=organization_id,
        name=name,
        kind=kind,
        description=description,
        fields=_stored_fields(checked),
        secret=seal_secret(secret_key, credential_id, checked.secret),
        fingerprint=checked.fingerprint,
        created_by=principal.user_id,
    )
    async with atomic():
        await credential.save()
        row = {"id": credential_id, "organization": organization_id, "name": name, "kind": kind}
        await _audit(principal, "credential.create", row, {"fields": sorted([*checked.inputs, *checked.secret])})
    return await get_credential(principal, credential_id)


async def _merge_inputs(
    secret_key: str, row: dict[str, Any], inputs: Mapping[str, Any]
) -> tuple[kinds.Checked, list[str]]:
    """Validate the stored inputs overlaid with ``inputs``; secrets not sent keep their values."""
    kind = kinds.kind_of(row["kind"])
    stored = row["fields"]
    old_secret = unseal_secret(secret_key, row["id"], row["secret"]) if stored.get("secret_fields") else {}
    old = {**stored.get("inputs", {}), **old_secret}
    checked = await anyio.to_thread.run_sync(kinds.check, secret_key, kind.name, {**old, **inputs})
    new = {**checked.inputs, **checked.secret}
    return checked, [name for name in kind.fields if old.get(name) != new.get(name)]


async def update_credential(
    principal: Principal, secret_key: str, credential_id: uuid.UUID, changes: Mapping[str, Any]
) -> dict[str, Any]:
    """Apply a PATCH: ``name``, ``description`` and ``inputs`` (merged); the kind never changes."""
    organization_id = principal.current_organization()
    row = await _row(organization_id, credential_id, Credential.secret)
    if changes.get("kind", row["kind"]) != row["kind"]:
        raise ValidationFailed.for_field("body.kind", "the kind of a credential cannot change; create a new one")
    _reject_nul(**{key: changes[key] for key in ("name", "description") if key in changes})
    values: dict[Any, Any] = {}
    changed_inputs: list[str] = []
    if "inputs" in changes:
        checked, changed_inputs = await _merge_inputs(secret_key, row, changes["inputs"])
        if changed_inputs:
            values[Credential.fields] = _stored_fields(checked)
            values[Credential.secret] = seal_secret(secret_key, credential_id, checked.secret)
            values[Credential.fingerprint] = checked.fingerprint
    attributes = [key for key in ("name", "description") if key in changes and changes[key] != row[key]]
    if "name" in attributes and await _name_taken(organization_id, changes["name"], credential_id):
        raise Conflict(f"a credential named {changes['name']!r} already exists")
    if values or attributes:
        values.update({getattr(Credential, key): changes[key] for key in attributes})
        values[Credential.updated_at] = utcnow()
        async with atomic():
            await Credential.update(values).where(Credential.id == credential_id)
            detail: dict[str, Any] = {"fields": changed_inputs}
            if attributes:
                detail["changed"] = attributes
            await _audit(principal, "credential.update", {**row, "name": changes.get("name", row["name"])}, detail)
    return await get_credential(principal, credential_id)


async def delete_credential(principal: Principal, credential_id: uuid.UUID) -> None:
    """Delete a credential no inventory uses; the check and the delete share one transaction."""
    organization_id = principal.current_organization()
    async with atomic():
        row = await _row(organization_id, credential_id)
        users = await (
            InventoryCredential.select(InventoryCredential.inventory.name)
            .where(InventoryCredential.credential == credential_id)
            .output(as_list=True)
        )
        if users:
            names = ", ".join(sorted(str(name) for name in users))
            raise Conflict(f"credential {row['name']!r} is used by inventories: {names}")
        deployments = (
            await Deployment.select(Deployment.name).where(Deployment.secrets == credential_id).output(as_list=True)
        )
        if deployments:
            # Its values (generated passwords included) are what the deployment's services run with.
            names = ", ".join(sorted(str(name) for name in deployments))
            raise Conflict(f"credential {row['name']!r} holds the secret values of deployments: {names}")
        if await AssistantSettings.exists().where(AssistantSettings.credential == credential_id):
            raise Conflict(
                f"credential {row['name']!r} is the assistant's API key; change the assistant settings first"
            )
        await Credential.delete().where(Credential.id == credential_id)
        stored = row["fields"]
        fields = sorted([*stored.get("inputs", {}), *stored.get("secret_fields", [])])
        await _audit(principal, "credential.delete", row, {"fields": fields})


async def credential_kinds(organization_id: uuid.UUID, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The kind of each of ``ids`` that exists in the organization (missing ones are left out)."""
    if not ids:
        return {}
    rows = await Credential.select(Credential.id, Credential.kind).where(
        Credential.organization == organization_id, Credential.id.is_in(list(ids))
    )
    return {row["id"]: row["kind"] for row in rows}


async def reveal(secret_key: str, organization_id: uuid.UUID, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, Revealed]:
    """Decrypt the credentials of ``ids`` in the organization, for handing to Ansible. Not for the API."""
    if not ids:
        return {}
    rows = (
        await Credential.select(Credential.id, Credential.name, Credential.kind, Credential.fields, Credential.secret)
        .where(Credential.organization == organization_id, Credential.id.is_in(list(ids)))
        .output(load_json=True)
    )
    revealed = {}
    for row in rows:
        stored = row["fields"]
        revealed[row["id"]] = Revealed(
            id=row["id"],
            name=row["name"],
            kind=row["kind"],
            fields={**stored.get("inputs", {}), **stored.get("metadata", {})},
            secret=unseal_secret(secret_key, row["id"], row["secret"]),
        )
    return revealed
