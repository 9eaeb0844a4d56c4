"""Deployments of a stack: deploy, redeploy, undeploy, and their list with the last run.

A deployment is a stack compiled for one target and launched on an inventory through the run
engine. Its plain values are stored as they are, its secret values (passwords, generated or
given) in a ``stack_secrets`` credential: encrypted, never returned, and handed to the run as
``windflow_secrets``. The deployment, its playbook version and the run are written in one
transaction, then the run is queued. Redeploy keeps the values it is not given, generated
passwords included; undeploy compiles the removal and launches it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

import msgspec

from server.auth.principal import Principal
from server.auth.service import utcnow
from server.credentials import kinds
from server.credentials.service import seal_secret, unseal_secret
from server.db.engine import atomic
from server.db.pages import page_of
from server.db.tables import Credential, Deployment, Run
from server.errors import Conflict, NotFound
from server.runs.queue import RunQueue
from server.runs.service import check_target, enqueue_or_defer, get_run, insert_run
from server.runs.spec import RunOptions
from server.stacks.compiler import Compiled, compile_stack
from server.stacks.service import audit_event, json_value, load, store_playbook, summary
from server.stacks.spec import Definition, check_size
from server.stacks.variables import resolve

DEPLOYMENT = (
    Deployment.id,
    Deployment.organization,
    Deployment.stack,
    Deployment.stack_version,
    Deployment.name,
    Deployment.target,
    Deployment.inventory,
    Deployment.credentials,
    Deployment.parameters,
    Deployment.plain_values,
    Deployment.playbook,
    Deployment.state,
    Deployment.last_run,
    Deployment.created_at,
    Deployment.updated_at,
)
_definitions: dict[str, Definition] = {}


def _deployment(row: Mapping[str, Any], run: Mapping[str, Any] | None) -> dict[str, Any]:
    out = dict(row)
    out["organization_id"] = out.pop("organization")
    out["stack_id"] = out.pop("stack")
    out["inventory_id"] = out.pop("inventory")
    out["playbook_id"] = out.pop("playbook")
    out["last_run_id"] = out.pop("last_run")
    out["values"] = json_value(out.pop("plain_values"))
    for key in ("credentials", "parameters"):
        out[key] = json_value(out[key])
    run_status = run["status"] if run else None
    out["last_run_status"] = run_status
    out["status"] = _status(out["state"], run_status)
    return out


def _status(state: str, run_status: str | None) -> str:
    """What a user wants to know: deploying, deployed, failed, undeploying, undeployed."""
    if run_status in ("pending", "running"):
        return "deploying" if state == "deployed" else "undeploying"
    if run_status == "successful" or run_status is None:
        return state
    return "failed" if state == "deployed" else "undeploy_failed"


async def _runs(run_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    if not run_ids:
        return {}
    rows = await Run.select(Run.id, Run.status).where(Run.id.is_in(run_ids))
    return {row["id"]: row for row in rows}


async def list_deployments(
    principal: Principal, stack_id: uuid.UUID, page: int, size: int
) -> tuple[list[dict[str, Any]], int]:
    organization_id = principal.current_organization()
    await summary(organization_id, stack_id)
    query = Deployment.select(*DEPLOYMENT).where(Deployment.stack == stack_id).order_by(Deployment.name)
    rows = await page_of(query, page, size)
    runs = await _runs([row["last_run"] for row in rows if row["last_run"]])
    total = await Deployment.count().where(Deployment.stack == stack_id)
    return [_deployment(row, runs.get(row["last_run"])) for row in rows], total


async def _deployment_row(organization_id: uuid.UUID, stack_id: uuid.UUID, deployment_id: uuid.UUID) -> dict[str, Any]:
    row = (
        await Deployment.select(*DEPLOYMENT, Deployment.secrets)
        .where(Deployment.id == deployment_id, Deployment.stack == stack_id, Deployment.organization == organization_id)
        .first()
    )
    if row is None:
        raise NotFound("deployment not found")
    return dict(row)


async def get_deployment(principal: Principal, stack_id: uuid.UUID, deployment_id: uuid.UUID) -> dict[str, Any]:
    row = await _deployment_row(principal.current_organization(), stack_id, deployment_id)
    row.pop("secrets")
    runs = await _runs([row["last_run"]] if row["last_run"] else [])
    return _deployment(row, runs.get(row["last_run"]))


def _split(definition: Definition, values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    plain = {k: v for k, v in values.items() if k in definition.variables and not definition.variables[k].secret}
    secret = {k: v for k, v in values.items() if k in definition.variables and definition.variables[k].secret}
    return plain, secret


def _secrets_row(
    secret_key: str, organization_id: uuid.UUID, name: str, values: Mapping[str, Any], user_id: uuid.UUID | None
) -> Credential:
    credential_id = uuid.uuid4()
    checked = kinds.check(secret_key, "stack_secrets", {"values": json.dumps(dict(values), sort_keys=True)})
    return Credential(
        id=credential_id,
        organization=organization_id,
        name=name[:100],
        kind="stack_secrets",
        description="Secret values of a stack deployment (managed by WindFlow).",
        fields="{}",
        secret=seal_secret(secret_key, credential_id, checked.secret),
        fingerprint=checked.fingerprint,
        created_by=user_id,
    )


async def _previous_secrets(secret_key: str, credential_id: uuid.UUID | None) -> dict[str, Any]:
    if credential_id is None:
        return {}
    row = await Credential.select(Credential.secret).where(Credential.id == credential_id).first()
    if row is None:
        return {}
    values: dict[str, Any] = json.loads(unseal_secret(secret_key, credential_id, row["secret"])["values"])
    return values


async def deploy(
    principal: Principal,
    queue: RunQueue,
    secret_key: str,
    stack_id: uuid.UUID,
    *,
    target: str,
    inventory_id: uuid.UUID,
    values: Mapping[str, Any],
    parameters: Mapping[str, Any],
    options: RunOptions,
    name: str | None = None,
    version: int | None = None,
) -> dict[str, Any]:
    """Compile the stack for ``target`` and launch it on the inventory, as a new deployment."""
    organization_id = principal.current_organization()
    check_size(values, "body.values")
    check_size(parameters, "body.parameters")
    stack, number, definition = await load(organization_id, stack_id, version)
    resolved = resolve(definition.variables, values, "body.values")
    given = dict(parameters)
    if name:
        given.setdefault("project", name)
    compiled = compile_stack(definition, resolved, target, parameters=given)
    if await Deployment.exists().where(Deployment.organization == organization_id, Deployment.name == compiled.project):
        raise Conflict(f"a deployment named {compiled.project!r} already exists; redeploy it or choose another name")
    targets = await check_target(organization_id, inventory_id, options)
    plain, secret = _split(definition, resolved)
    deployment = Deployment(
        organization=organization_id,
        stack=stack_id,
        stack_version=number,
        name=compiled.project,
        target=target,
        inventory=inventory_id,
        credentials=json.dumps([str(c) for c in options.credentials]),
        parameters=json.dumps(given),
        plain_values=json.dumps(plain, default=str),
        state="deployed",
        created_by=principal.user_id,
    )
    async with atomic():
        if secret:
            credential = _secrets_row(
                secret_key, organization_id, f"deployment {compiled.project} secrets", secret, principal.user_id
            )
            await credential.save()
            deployment.secrets = credential.id
        await deployment.save()
        run_id = await _launch(principal, deployment, stack["name"], compiled, options, targets, deployment.secrets)
        detail = {"stack": stack["name"], "target": target, "stack_version": number}
        await audit_event("deployment.create", principal, organization_id, "deployment", deployment.id, detail)
    await enqueue_or_defer(queue, run_id)
    return await _with_run(principal, stack_id, deployment.id, run_id)


async def _launch(
    principal: Principal,
    deployment: Deployment | Mapping[str, Any],
    stack_name: str,
    compiled: Compiled,
    options: RunOptions,
    targets: list[str],
    secrets_id: uuid.UUID | None,
) -> uuid.UUID:
    """Inside the caller's transaction: store the playbook version, write the run, link it."""
    project = compiled.project
    suffix = "" if compiled.action == "deploy" else " (undeploy)"
    playbook_name = f"deployment {project}{suffix}"[:100]
    description = f"{compiled.action.capitalize()} of stack {stack_name} as {project} on {compiled.target}."
    playbook_id, version, version_id = await store_playbook(principal, playbook_name, description, compiled)
    if secrets_id is not None and secrets_id not in options.credentials:
        options = RunOptions(**{**_options_dict(options), "credentials": [*options.credentials, secrets_id]})
    inventory_id = deployment["inventory"] if isinstance(deployment, Mapping) else deployment.inventory
    deployment_id = deployment["id"] if isinstance(deployment, Mapping) else deployment.id
    run_id = await insert_run(principal, playbook_id, version_id, version, inventory_id, options, targets)
    await Deployment.update(
        {Deployment.last_run: run_id, Deployment.playbook: playbook_id, Deployment.updated_at: utcnow()}
    ).where(Deployment.id == deployment_id)
    return run_id


def _options_dict(options: RunOptions) -> dict[str, Any]:
    return msgspec.structs.asdict(options)


async def _with_run(
    principal: Principal, stack_id: uuid.UUID, deployment_id: uuid.UUID, run_id: uuid.UUID
) -> dict[str, Any]:
    return {
        "deployment": await get_deployment(principal, stack_id, deployment_id),
        "run": await get_run(principal, run_id),
    }


async def redeploy(
    principal: Principal,
    queue: RunQueue,
    secret_key: str,
    stack_id: uuid.UUID,
    deployment_id: uuid.UUID,
    *,
    values: Mapping[str, Any],
    parameters: Mapping[str, Any] | None,
    version: int | None,
    options: RunOptions | None,
) -> dict[str, Any]:
    """Deploy again, with the stack's latest version unless told otherwise; unspecified values are kept."""
    organization_id = principal.current_organization()
    check_size(values, "body.values")
    check_size(parameters or {}, "body.parameters")
    row = await _deployment_row(organization_id, stack_id, deployment_id)
    if row["inventory"] is None:
        raise Conflict("the deployment's inventory was deleted; deploy the stack again under a new name")
    stack, number, definition = await load(organization_id, stack_id, version)
    previous = {**json_value(row["plain_values"]), **await _previous_secrets(secret_key, row["secrets"])}
    resolved = resolve(definition.variables, values, "body.values", previous=previous)
    given = {**json_value(row["parameters"]), **(parameters or {}), "project": row["name"]}
    compiled = compile_stack(definition, resolved, row["target"], parameters=given)
    run_options = options or RunOptions(credentials=[uuid.UUID(c) for c in json_value(row["credentials"])])
    targets = await check_target(organization_id, row["inventory"], run_options)
    plain, secret = _split(definition, resolved)
    async with atomic():
        secrets_id = row["secrets"]
        if secret:
            credential = _secrets_row(
                secret_key, organization_id, f"deployment {row['name']} secrets", secret, principal.user_id
            )
            if secrets_id is None:
                await credential.save()
                secrets_id = credential.id
            else:
                sealed = seal_secret(secret_key, secrets_id, {"values": json.dumps(secret, sort_keys=True)})
                await Credential.update(
                    {
                        Credential.secret: sealed,
                        Credential.fingerprint: credential.fingerprint,
                        Credential.updated_at: utcnow(),
                    }
                ).where(Credential.id == secrets_id)
        await Deployment.update(
            {
                Deployment.stack_version: number,
                Deployment.plain_values: json.dumps(plain, default=str),
                Deployment.parameters: json.dumps(given),
                Deployment.credentials: json.dumps([str(c) for c in run_options.credentials if c != secrets_id]),
                Deployment.secrets: secrets_id,
                Deployment.state: "deployed",
            }
        ).where(Deployment.id == deployment_id)
        run_id = await _launch(principal, row, stack["name"], compiled, run_options, targets, secrets_id)
        detail = {"stack": stack["name"], "stack_version": number}
        await audit_event("deployment.redeploy", principal, organization_id, "deployment", deployment_id, detail)
    await enqueue_or_defer(queue, run_id)
    return await _with_run(principal, stack_id, deployment_id, run_id)


async def undeploy(
    principal: Principal,
    queue: RunQueue,
    secret_key: str,
    stack_id: uuid.UUID,
    deployment_id: uuid.UUID,
    *,
    remove_volumes: bool,
) -> dict[str, Any]:
    """Launch the removal of what the deployment created (its volumes only when asked)."""
    organization_id = principal.current_organization()
    row = await _deployment_row(organization_id, stack_id, deployment_id)
    if row["inventory"] is None:
        raise Conflict("the deployment's inventory was deleted; nothing can be reached to undeploy")
    stack, _, definition = await load(organization_id, stack_id, row["stack_version"])
    previous = {**json_value(row["plain_values"]), **await _previous_secrets(secret_key, row["secrets"])}
    resolved = resolve(definition.variables, {}, "body.values", previous=previous)
    given = {**json_value(row["parameters"]), "project": row["name"]}
    compiled = compile_stack(
        definition, resolved, row["target"], action="undeploy", parameters=given, remove_volumes=remove_volumes
    )
    options = RunOptions(credentials=[uuid.UUID(c) for c in json_value(row["credentials"])])
    targets = await check_target(organization_id, row["inventory"], options)
    async with atomic():
        await Deployment.update({Deployment.state: "undeployed"}).where(Deployment.id == deployment_id)
        run_id = await _launch(principal, row, stack["name"], compiled, options, targets, row["secrets"])
        detail = {"stack": stack["name"], "remove_volumes": remove_volumes}
        await audit_event("deployment.undeploy", principal, organization_id, "deployment", deployment_id, detail)
    await enqueue_or_defer(queue, run_id)
    return await _with_run(principal, stack_id, deployment_id, run_id)


async def delete_deployment(principal: Principal, stack_id: uuid.UUID, deployment_id: uuid.UUID) -> None:
    """Forget an undeployed deployment and its secret values (a deployed one must be undeployed first)."""
    organization_id = principal.current_organization()
    row = await _deployment_row(organization_id, stack_id, deployment_id)
    runs = await _runs([row["last_run"]] if row["last_run"] else [])
    status = _status(row["state"], (runs.get(row["last_run"]) or {}).get("status"))
    if status != "undeployed":
        raise Conflict(f"the deployment is {status}; undeploy it first")
    async with atomic():
        await Deployment.delete().where(Deployment.id == deployment_id)
        if row["secrets"]:
            await Credential.delete().where(Credential.id == row["secrets"])
        await audit_event(
            "deployment.delete", principal, organization_id, "deployment", deployment_id, {"name": row["name"]}
        )
