"""Runs of an organization: launch (row first, then the queue), read, cancel, relaunch."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any, Literal

import msgspec

from server import audit
from server.auth.principal import Principal
from server.auth.service import utcnow
from server.credentials.service import credential_kinds
from server.db.engine import atomic
from server.db.pages import page_of
from server.db.tables import Inventory, Playbook, Run
from server.errors import Conflict, FieldError, NotFound, ValidationFailed
from server.inventories.check import select_hosts
from server.inventories.spec import SECRET_VAR, VAR_NAME
from server.inventories.spec import Document as InventoryDocument
from server.playbooks.service import version_for_run
from server.runs.events import Publisher, publish_status
from server.runs.queue import RunQueue
from server.runs.spec import RunOptions
from server.runs.status import RunStatus

log = logging.getLogger(__name__)
RUN_CREDENTIAL_KINDS = frozenset(
    {"ssh_key", "password", "become", "vault_password", "registry", "kubeconfig", "docker_tls", "stack_secrets"}
)
COLUMNS = (
    Run.id,
    Run.organization,
    Run.playbook,
    Run.playbook_version,
    Run.playbook_version.version.as_alias("version"),
    Run.inventory,
    Run.options,
    Run.status,
    Run.reason,
    Run.attempts,
    Run.worker,
    Run.started_at,
    Run.finished_at,
    Run.host_stats,
    Run.event_count,
    Run.relaunch_of,
    Run.proposal,
    Run.created_by,
    Run.created_at,
)


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    for key in ("options", "host_stats"):
        if isinstance(row[key], str | bytes):
            row[key] = json.loads(row[key])
    row["organization_id"] = row.pop("organization")
    row["playbook_id"] = row.pop("playbook")
    row["inventory_id"] = row.pop("inventory")
    row["playbook_version_id"] = row.pop("playbook_version")
    row["proposal_id"] = row.pop("proposal")
    return row


async def get_run(principal: Principal, run_id: uuid.UUID) -> dict[str, Any]:
    row = (
        await Run.select(*COLUMNS).where(Run.id == run_id, Run.organization == principal.current_organization()).first()
    )
    if row is None:
        raise NotFound("run not found")
    return _decode(row)


async def list_runs(
    principal: Principal, page: int, size: int, status: str | None = None
) -> tuple[list[dict[str, Any]], int]:
    organization_id = principal.current_organization()
    query = Run.select(*COLUMNS).where(Run.organization == organization_id).order_by(Run.created_at, ascending=False)
    counter = Run.count().where(Run.organization == organization_id)
    if status:
        query, counter = query.where(Run.status == status), counter.where(Run.status == status)
    return [_decode(r) for r in await page_of(query, page, size)], await counter


async def check_target(
    organization_id: uuid.UUID, inventory_id: uuid.UUID, options: RunOptions, errors: list[FieldError] | None = None
) -> list[str]:
    """The hosts a run of ``options`` on the inventory reaches; raises ValidationFailed (or fills ``errors``)."""
    own = errors if errors is not None else []
    inventory = (
        await Inventory.select(Inventory.document)
        .where(Inventory.id == inventory_id, Inventory.organization == organization_id)
        .first()
    )
    targets: list[str] = []
    if inventory is None:
        own.append(FieldError("body.inventory_id", "no such inventory in this organization"))
    else:
        document = msgspec.json.decode(_raw(inventory["document"]), type=InventoryDocument)
        try:
            targets = select_hosts(document, options.limit or None, "body.limit")
        except ValidationFailed as exc:
            own += exc.errors
    kinds = await credential_kinds(organization_id, options.credentials)
    for index, credential_id in enumerate(options.credentials):
        kind = kinds.get(credential_id)
        if kind is None:
            own.append(FieldError(f"body.credentials.{index}", "no such credential in this organization"))
        elif kind not in RUN_CREDENTIAL_KINDS:
            own.append(FieldError(f"body.credentials.{index}", f"a {kind} credential cannot be given to a run"))
    for key in options.extra_vars:
        if not VAR_NAME.fullmatch(key):
            own.append(FieldError(f"body.extra_vars.{key}", "a variable name is letters, digits and _"))
        elif SECRET_VAR.search(key):
            own.append(FieldError(f"body.extra_vars.{key}", "looks like a secret; pass it as a credential"))
    if errors is None and own:
        raise ValidationFailed(f"{own[0].field}: {own[0].message}", own)
    return targets


async def _check_launch(
    organization_id: uuid.UUID,
    playbook_id: uuid.UUID,
    version: int | None,
    inventory_id: uuid.UUID,
    options: RunOptions,
) -> dict[str, Any]:
    errors: list[FieldError] = []
    try:
        playbook_version = await version_for_run(organization_id, playbook_id, version)
    except NotFound as exc:
        field = "body.version" if version is not None and "version" in exc.detail else "body.playbook_id"
        errors.append(FieldError(field, exc.detail))
        playbook_version = {}
    targets = await check_target(organization_id, inventory_id, options, errors)
    if errors:
        raise ValidationFailed(f"{errors[0].field}: {errors[0].message}", errors)
    return {**playbook_version, "targets": targets}


def _raw(value: Any) -> str | bytes:
    return value if isinstance(value, str | bytes) else json.dumps(value)


async def launch_run(
    principal: Principal,
    queue: RunQueue,
    playbook_id: uuid.UUID,
    inventory_id: uuid.UUID,
    options: RunOptions,
    version: int | None = None,
    relaunch_of: uuid.UUID | None = None,
) -> dict[str, Any]:
    """Write the run (``pending``), then queue it; a queue that is down leaves it for recovery."""
    organization_id = principal.current_organization()
    playbook_version = await _check_launch(organization_id, playbook_id, version, inventory_id, options)
    async with atomic():
        run_id = await insert_run(
            principal,
            playbook_id,
            playbook_version["version_id"],
            playbook_version["version"],
            inventory_id,
            options,
            playbook_version["targets"],
            relaunch_of,
        )
    await enqueue_or_defer(queue, run_id)
    return await get_run(principal, run_id)


async def insert_run(
    principal: Principal,
    playbook_id: uuid.UUID | None,
    version_id: uuid.UUID | None,
    version: int | None,
    inventory_id: uuid.UUID,
    options: RunOptions,
    targets: list[str],
    relaunch_of: uuid.UUID | None = None,
    *,
    content: str = "",
    proposal_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Write a pending run and its audit row, inside the caller's transaction; the caller queues it.

    A run either names a playbook version, or carries its ``content`` (a proposal's check run).
    """
    organization_id = principal.current_organization()
    run = Run(
        organization=organization_id,
        playbook=playbook_id,
        playbook_version=version_id,
        inventory=inventory_id,
        options=msgspec.json.encode(options).decode(),
        targets=json.dumps(targets),
        status=RunStatus.pending,
        attempts=1,
        relaunch_of=relaunch_of,
        content=content,
        proposal=proposal_id,
        created_by=principal.user_id,
    )
    await run.save()
    detail: dict[str, Any] = {"playbook_id": str(playbook_id), "version": version}
    if proposal_id is not None:
        detail = {"proposal_id": str(proposal_id)}
    await audit.record(
        "run.relaunch" if relaunch_of else "run.launch",
        actor=principal,
        organization_id=organization_id,
        target_type="run",
        target_id=run.id,
        detail=detail,
    )
    return run.id


async def launch_content_run(
    principal: Principal,
    queue: RunQueue,
    content: str,
    inventory_id: uuid.UUID,
    options: RunOptions,
    proposal_id: uuid.UUID,
) -> dict[str, Any]:
    """Run ``content`` (already checked) that is no saved playbook: an assistant proposal's check."""
    targets = await check_target(principal.current_organization(), inventory_id, options)
    async with atomic():
        run_id = await insert_run(
            principal, None, None, None, inventory_id, options, targets, content=content, proposal_id=proposal_id
        )
    await enqueue_or_defer(queue, run_id)
    return await get_run(principal, run_id)


async def enqueue_or_defer(queue: RunQueue, run_id: uuid.UUID, delay: float = 0) -> bool:
    try:
        return await queue.enqueue(run_id, delay)
    except Exception as exc:  # noqa: BLE001 - Redis down: the run stays pending, recovery retries it
        log.warning("could not queue run", extra={"run_id": str(run_id), "error": type(exc).__name__})
        await Run.update({Run.reason: "waiting: the queue was unavailable; it will be retried"}).where(Run.id == run_id)
        return False


async def cancel_run(principal: Principal, publisher: Publisher, run_id: uuid.UUID) -> dict[str, Any]:
    """A pending run ends at once; a running one is stopped by its worker within about a second."""
    current = await get_run(principal, run_id)
    if RunStatus(current["status"]).is_finished():
        raise Conflict(f"the run already ended ({current['status']})")
    canceled = await (
        Run.update(
            {Run.status: RunStatus.canceled, Run.reason: "canceled before it started", Run.finished_at: utcnow()}
        )
        .where(Run.id == run_id, Run.status == RunStatus.pending)
        .returning(Run.id)
    )
    await Run.update({Run.cancel_requested: True}).where(Run.id == run_id)
    if canceled:
        await publish_status(publisher, run_id, RunStatus.canceled, "canceled before it started", 0)
    await audit.record(
        "run.cancel", actor=principal, organization_id=current["organization_id"], target_type="run", target_id=run_id
    )
    return await get_run(principal, run_id)


async def relaunch_run(
    principal: Principal, queue: RunQueue, run_id: uuid.UUID, hosts: Literal["all", "failed"]
) -> dict[str, Any]:
    current = await get_run(principal, run_id)
    if current["proposal_id"] is not None:
        raise Conflict("this run checked an assistant proposal; check the proposal again instead")
    if current["playbook_id"] is None or current["inventory_id"] is None:
        raise Conflict("the run's playbook or inventory was deleted; launch a new run instead")
    options = msgspec.convert(current["options"], RunOptions)
    if hosts == "failed":
        failed = sorted(
            host for host, tally in current["host_stats"].items() if tally.get("failed") or tally.get("unreachable")
        )
        if not failed:
            raise Conflict("no host failed in this run")
        options = msgspec.structs.replace(options, limit=",".join(failed))
    playbook = await Playbook.select(Playbook.id).where(Playbook.id == current["playbook_id"]).first()
    if playbook is None:
        raise Conflict("the run's playbook was deleted")
    return await launch_run(
        principal,
        queue,
        current["playbook_id"],
        current["inventory_id"],
        options,
        version=current["version"],
        relaunch_of=run_id,
    )
