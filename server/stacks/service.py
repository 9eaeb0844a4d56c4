"""Stacks of an organization: definitions with versions, the form, compiles and diffs.

A stack's definition lives in its versions, like a playbook's content: a change of the document
adds the next version. Compiling stores the playbook as a ``generated`` playbook version (the
same bytes add no version). Deployments are in ``deployments.py``.
"""

from __future__ import annotations

import difflib
import json
import uuid
from collections.abc import Mapping
from typing import Any

from piccolo.engine.sqlite import SQLiteEngine

from server import audit
from server.auth.principal import Principal
from server.auth.service import utcnow
from server.db.engine import atomic
from server.db.pages import page_of
from server.db.tables import Credential, Deployment, Playbook, PlaybookVersion, Stack, StackVersion
from server.errors import Conflict, NotFound, ValidationFailed
from server.playbooks.service import checksum_of, insert_playbook, save_version
from server.stacks.compiler import Compiled, compile_stack
from server.stacks.compose import from_compose
from server.stacks.form import form_schema
from server.stacks.spec import Definition, check_size, definition_checksum, parse_definition
from server.stacks.variables import resolve

SUMMARY = (
    Stack.id,
    Stack.organization,
    Stack.name,
    Stack.description,
    Stack.category,
    Stack.tags,
    Stack.targets,
    Stack.semver,
    Stack.source,
    Stack.latest_version,
    Stack.created_at,
    Stack.updated_at,
)
_definitions: dict[str, Definition] = {}


def json_value(value: Any) -> Any:
    """A JSON column as Python: SQLite gives text, PostgreSQL may give the value."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def _decode(row: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["organization_id"] = out.pop("organization")
    for key in ("tags", "targets"):
        out[key] = json_value(out[key])
    return out


def definition_of(document: Mapping[str, Any]) -> Definition:
    """A stored (already valid) document as a Definition, parsed once per process."""
    checksum = definition_checksum(document)
    cached = _definitions.get(checksum)
    if cached is None:
        if len(_definitions) > 512:
            _definitions.clear()
        cached = _definitions[checksum] = parse_definition(document, "definition")
    return cached


def parse_input(definition: str | Mapping[str, Any] | None, compose: str | None, name: str | None) -> Definition:
    """The body of a create or update: a definition (text or object), or a compose file and a name."""
    if definition is not None and compose is not None:
        raise ValidationFailed.for_field("body.compose", "give either definition or compose, not both")
    if compose is not None:
        if not name:
            raise ValidationFailed.for_field("body.name", "is required with compose")
        return from_compose(compose, name)
    if definition is None:
        raise ValidationFailed.for_field("body.definition", "is required (or compose with name)")
    parsed = parse_definition(definition)
    check_defaults(parsed)
    return parsed


def check_defaults(definition: Definition) -> None:
    """Compile the stack with its defaults for every target it supports, so shape errors show now.

    Values a user must give (required, no default) are not known yet: then only the template's
    syntax was checked, and the rest waits for the first compile.
    """
    try:
        values = resolve(definition.variables, {}, "body.definition.variables")
    except ValidationFailed:
        return
    for target in definition.metadata.targets:
        try:
            compile_stack(definition, values, target, path="body")
        except ValidationFailed as exc:
            errors = [
                type(e)(e.field.replace("template.", "body.definition.template.", 1), e.message)
                if e.field.startswith("template.")
                else e
                for e in exc.errors
            ]
            raise ValidationFailed(f"{errors[0].field}: {errors[0].message}", errors) from None


async def summary(organization_id: uuid.UUID, stack_id: uuid.UUID) -> dict[str, Any]:
    row = await Stack.select(*SUMMARY).where(Stack.id == stack_id, Stack.organization == organization_id).first()
    if row is None:
        raise NotFound("stack not found")
    return _decode(row)


async def _document(stack_id: uuid.UUID, version: int) -> dict[str, Any] | None:
    row = (
        await StackVersion.select(StackVersion.definition)
        .where(StackVersion.stack == stack_id, StackVersion.version == version)
        .first()
    )
    return None if row is None else dict(json_value(row["definition"]))


async def load(
    organization_id: uuid.UUID, stack_id: uuid.UUID, version: int | None = None
) -> tuple[dict[str, Any], int, Definition]:
    stack = await summary(organization_id, stack_id)
    number = stack["latest_version"] if version is None else version
    document = await _document(stack_id, number)
    if document is None:
        raise NotFound(f"this stack has no version {number}")
    return stack, number, definition_of(document)


def _read(stack: dict[str, Any], definition: Definition, version: int) -> dict[str, Any]:
    return {
        **stack,
        "version": version,
        "definition": definition.source,
        "deployment_notes": definition.deployment_notes,
        "variables": list(definition.variables),
    }


async def list_stacks(
    principal: Principal, page: int, size: int, category: str | None = None, search: str | None = None
) -> tuple[list[dict[str, Any]], int]:
    organization_id = principal.current_organization()
    query = Stack.select(*SUMMARY).where(Stack.organization == organization_id).order_by(Stack.name)
    counter = Stack.count().where(Stack.organization == organization_id)
    if category:
        query, counter = query.where(Stack.category == category), counter.where(Stack.category == category)
    if search:
        pattern = "%" + search.replace("%", "").replace("_", "") + "%"
        # SQLite's LIKE already ignores case (ASCII); PostgreSQL needs ILIKE.
        sqlite = isinstance(Stack._meta.db, SQLiteEngine)
        matches = Stack.name.like(pattern) if sqlite else Stack.name.ilike(pattern)
        query, counter = query.where(matches), counter.where(matches)
    rows = await page_of(query, page, size)
    return [_decode(row) for row in rows], await counter


async def get_stack(principal: Principal, stack_id: uuid.UUID, version: int | None = None) -> dict[str, Any]:
    stack, number, definition = await load(principal.current_organization(), stack_id, version)
    return _read(stack, definition, number)


def _stack_values(definition: Definition) -> dict[Any, Any]:
    meta = definition.metadata
    return {
        Stack.name: meta.name,
        Stack.description: meta.description,
        Stack.category: meta.category,
        Stack.tags: json.dumps(list(meta.tags)),
        Stack.targets: json.dumps(list(meta.targets)),
        Stack.semver: meta.version,
    }


async def insert_stack(
    organization_id: uuid.UUID, definition: Definition, source: str, actor: Principal | None
) -> uuid.UUID:
    if await Stack.exists().where(Stack.organization == organization_id, Stack.name == definition.metadata.name):
        raise Conflict(f"a stack named {definition.metadata.name!r} already exists in this organization")
    user_id = actor.user_id if actor else None
    stack = Stack(organization=organization_id, source=source, latest_version=1, created_by=user_id)
    for column, value in _stack_values(definition).items():
        setattr(stack, column._meta.name, value)
    async with atomic():
        await stack.save()
        await StackVersion.insert(
            StackVersion(
                stack=stack.id,
                version=1,
                semver=definition.metadata.version,
                definition=json.dumps(definition.source),
                checksum=definition.checksum,
                created_by=user_id,
            )
        )
        await audit_event("stack.create", actor, organization_id, "stack", stack.id, {"name": definition.metadata.name})
    return stack.id


async def save_stack_version(
    current: dict[str, Any], definition: Definition, actor: Principal | None, source: str | None = None
) -> int:
    """Store ``definition`` as the next version when it differs from the latest; returns the latest number."""
    latest = await _document(current["id"], current["latest_version"])
    if (
        latest is not None
        and definition_checksum(latest) == definition.checksum
        and source in (None, current["source"])
    ):
        return int(current["latest_version"])
    if definition.metadata.name != current["name"] and await Stack.exists().where(
        Stack.organization == current["organization_id"],
        Stack.name == definition.metadata.name,
        Stack.id != current["id"],
    ):
        raise Conflict(f"a stack named {definition.metadata.name!r} already exists in this organization")
    version = int(current["latest_version"])
    user_id = actor.user_id if actor else None
    values = _stack_values(definition)
    async with atomic():
        if latest is None or definition_checksum(latest) != definition.checksum:
            version += 1
            await StackVersion.insert(
                StackVersion(
                    stack=current["id"],
                    version=version,
                    semver=definition.metadata.version,
                    definition=json.dumps(definition.source),
                    checksum=definition.checksum,
                    created_by=user_id,
                )
            )
        if source is not None:
            values[Stack.source] = source
        await Stack.update({**values, Stack.latest_version: version, Stack.updated_at: utcnow()}).where(
            Stack.id == current["id"]
        )
        detail = {"name": definition.metadata.name, "version": version}
        await audit_event("stack.update", actor, current["organization_id"], "stack", current["id"], detail)
    return version


async def create_stack(
    principal: Principal, definition: str | Mapping[str, Any] | None, compose: str | None, name: str | None
) -> dict[str, Any]:
    parsed = parse_input(definition, compose, name)
    source = "compose" if compose is not None else "manual"
    stack_id = await insert_stack(principal.current_organization(), parsed, source, principal)
    return await get_stack(principal, stack_id)


async def update_stack(
    principal: Principal, stack_id: uuid.UUID, definition: str | Mapping[str, Any] | None, compose: str | None
) -> dict[str, Any]:
    current = await summary(principal.current_organization(), stack_id)
    parsed = parse_input(definition, compose, current["name"])
    source = "manual" if current["source"] == "catalogue" else None  # edited: the catalogue leaves it alone
    await save_stack_version(current, parsed, principal, source)
    return await get_stack(principal, stack_id)


async def delete_stack(principal: Principal, stack_id: uuid.UUID) -> None:
    current = await summary(principal.current_organization(), stack_id)
    live = await Deployment.select(Deployment.name).where(Deployment.stack == stack_id, Deployment.state == "deployed")
    if live:
        names = ", ".join(sorted(row["name"] for row in live))
        raise Conflict(f"the stack is deployed ({names}); undeploy first")
    secrets = [
        row["secrets"] for row in await Deployment.select(Deployment.secrets).where(Deployment.stack == stack_id)
    ]
    async with atomic():
        await Stack.delete().where(Stack.id == stack_id)
        if any(secrets):
            await Credential.delete().where(Credential.id.is_in([s for s in secrets if s]))
        await audit_event(
            "stack.delete", principal, current["organization_id"], "stack", stack_id, {"name": current["name"]}
        )


async def list_versions(
    principal: Principal, stack_id: uuid.UUID, page: int, size: int
) -> tuple[list[dict[str, Any]], int]:
    await summary(principal.current_organization(), stack_id)
    query = (
        StackVersion.select(
            StackVersion.version,
            StackVersion.semver,
            StackVersion.checksum,
            StackVersion.created_by,
            StackVersion.created_at,
        )
        .where(StackVersion.stack == stack_id)
        .order_by(StackVersion.version, ascending=False)
    )
    rows = await page_of(query, page, size)
    total = await StackVersion.count().where(StackVersion.stack == stack_id)
    return [{**row, "stack_id": stack_id} for row in rows], total


async def form(principal: Principal, stack_id: uuid.UUID, version: int | None = None) -> dict[str, Any]:
    stack, _, definition = await load(principal.current_organization(), stack_id, version)
    return form_schema(definition.variables, stack["name"], definition.metadata.description)


# --- compile -------------------------------------------------------------------------------


async def store_playbook(
    principal: Principal, name: str, description: str, compiled: Compiled
) -> tuple[uuid.UUID, int, uuid.UUID]:
    """The compiled playbook as a version of the generated playbook ``name``; (id, version, version id)."""
    organization_id = principal.current_organization()
    row = (
        await Playbook.select(Playbook.id, Playbook.name, Playbook.source, Playbook.latest_version)
        .where(Playbook.organization == organization_id, Playbook.name == name)
        .first()
    )
    if row is None:
        playbook_id = await insert_playbook(
            organization_id, name, description, compiled.content, "generated", principal
        )
        version = 1
    else:
        if row["source"] != "generated":
            raise Conflict(f"a playbook named {name!r} exists and was not generated; rename it first")
        playbook_id = row["id"]
        latest = (
            await PlaybookVersion.select(PlaybookVersion.checksum)
            .where(PlaybookVersion.playbook == playbook_id, PlaybookVersion.version == row["latest_version"])
            .first()
        )
        version = int(row["latest_version"])
        if latest is None or latest["checksum"] != checksum_of(compiled.content):
            current = {**row, "organization_id": organization_id}
            version = await save_version(current, compiled.content, {}, principal)
    version_row = (
        await PlaybookVersion.select(PlaybookVersion.id)
        .where(PlaybookVersion.playbook == playbook_id, PlaybookVersion.version == version)
        .first()
    )
    assert version_row is not None  # noqa: S101 - written just above
    return playbook_id, version, version_row["id"]


async def compile_playbook(
    principal: Principal,
    stack_id: uuid.UUID,
    target: str,
    values: Mapping[str, Any],
    parameters: Mapping[str, Any],
    version: int | None = None,
    action: str = "deploy",
    remove_volumes: bool = False,
) -> dict[str, Any]:
    check_size(values, "body.values")
    check_size(parameters, "body.parameters")
    stack, number, definition = await load(principal.current_organization(), stack_id, version)
    resolved = resolve(definition.variables, values, "body.values")
    compiled = compile_stack(
        definition, resolved, target, action=action, parameters=parameters, remove_volumes=remove_volumes
    )
    suffix = "" if action == "deploy" else " (undeploy)"
    name = f"{stack['name']}: {target}{suffix}"[:100]
    playbook_id, playbook_version, _ = await store_playbook(
        principal, name, f"Compiled from stack {stack['name']} for {target}.", compiled
    )
    return {
        "stack_id": stack_id,
        "stack_version": number,
        "target": target,
        "action": action,
        "project": compiled.project,
        "playbook_id": playbook_id,
        "version": playbook_version,
        "content": compiled.content,
        "checksum": compiled.checksum,
        "secrets": list(compiled.secrets),
        "deployment_notes": compiled.notes,
    }


def unified_diff(old: str, new: str, old_label: str, new_label: str) -> str:
    return "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), old_label, new_label))


async def diff_versions(
    principal: Principal,
    stack_id: uuid.UUID,
    target: str,
    old: int,
    new: int,
    values: Mapping[str, Any],
    parameters: Mapping[str, Any],
) -> dict[str, Any]:
    """The compiled playbooks of two stack versions (same values and parameters), as a unified diff."""
    organization_id = principal.current_organization()
    check_size(values, "body.values")
    check_size(parameters, "body.parameters")
    contents = []
    for field, number in (("body.from_version", old), ("body.to_version", new)):
        try:
            _, _, definition = await load(organization_id, stack_id, number)
        except NotFound as exc:
            if "version" not in exc.detail:
                raise
            raise ValidationFailed.for_field(field, exc.detail) from None
        resolved = resolve(definition.variables, values, "body.values")
        contents.append(compile_stack(definition, resolved, target, parameters=parameters).content)
    diff = unified_diff(contents[0], contents[1], f"version {old}", f"version {new}")
    return {"target": target, "from_version": old, "to_version": new, "identical": not diff, "diff": diff}


async def audit_event(
    action: str,
    actor: Principal | None,
    organization_id: uuid.UUID,
    target_type: str,
    target_id: uuid.UUID,
    detail: dict[str, Any],
) -> None:
    await audit.record(
        action,
        actor=actor,
        actor_email="" if actor else "system",
        organization_id=organization_id,
        target_type=target_type,
        target_id=target_id,
        detail=detail,
    )
