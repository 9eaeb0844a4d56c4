"""Proposals: what the assistant proposed, every attempt with its evidence, checks on an inventory, saving.

A proposal is ``playbook``, ``stack`` or ``diff`` (a change to an existing playbook, shown as a unified
diff against the version it started from). Its status is ``passed`` when no stage of its latest
attempt, nor any check run, failed. A check run is a real run in check and diff mode; its result
joins the evidence when the run has finished (looked up when the proposal is read, so it never
depends on the process that launched it). Only a passed proposal is saved.
"""

from __future__ import annotations

import difflib
import json
import uuid
from typing import Any

import yaml

from server import audit
from server.assistant.failures import failure_bundle
from server.auth.principal import Principal, Role
from server.auth.service import utcnow
from server.db.tables import AssistantProposal, Inventory, Playbook, Run, Stack
from server.errors import Conflict, NotFound, ValidationFailed
from server.playbooks import service as playbooks
from server.runs import service as runs
from server.runs.queue import RunQueue
from server.runs.spec import RunOptions
from server.runs.status import RunStatus
from server.stacks import service as stacks
from server.stacks.compose import from_compose
from server.stacks.spec import parse_definition

COLUMNS = (
    AssistantProposal.id,
    AssistantProposal.organization,
    AssistantProposal.conversation,
    AssistantProposal.message,
    AssistantProposal.owner,
    AssistantProposal.kind,
    AssistantProposal.target,
    AssistantProposal.base,
    AssistantProposal.content,
    AssistantProposal.status,
    AssistantProposal.evidence,
    AssistantProposal.attempts,
    AssistantProposal.saved,
    AssistantProposal.created_at,
    AssistantProposal.updated_at,
)
RUNNABLE_STAGES = ("stack", "compile", "parse", "modules", "syntax")


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


async def playbook_base(
    principal: Principal, playbook_id: uuid.UUID | str, version: int | None = None
) -> dict[str, Any]:
    """What a change proposed to a playbook is a diff against."""
    if version is None:
        row = await playbooks.get_playbook(principal, uuid.UUID(str(playbook_id)))
        version, name = row["latest_version"], row["name"]
    else:
        row = await playbooks.get_version(principal, uuid.UUID(str(playbook_id)), version)
        name = (await playbooks.get_playbook(principal, uuid.UUID(str(playbook_id))))["name"]
    return {"playbook_id": str(playbook_id), "version": version, "name": name, "content": row["content"]}


def unified_diff(before: str, after: str, name: str) -> str:
    lines = difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True), f"a/{name}", f"b/{name}"
    )
    return "".join(lines)


def status_of(evidence: list[dict[str, Any]]) -> str:
    return "failed" if any(item["status"] == "failed" for item in evidence) else "passed"


def view(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for key in ("organization", "conversation", "message", "owner"):
        out[f"{key}_id"] = out.pop(key)
    for key in ("base", "saved"):
        out[key] = _json(out[key]) or {}
    for key in ("evidence", "attempts"):
        out[key] = _json(out[key]) or []
    return out


async def create(
    *,
    organization_id: uuid.UUID,
    conversation_id: uuid.UUID,
    message_id: uuid.UUID,
    owner: uuid.UUID,
    kind: str,
    target: str,
    base: dict[str, Any],
) -> uuid.UUID:
    proposal = AssistantProposal(
        organization=organization_id,
        conversation=conversation_id,
        message=message_id,
        owner=owner,
        kind=kind,
        target=target,
        base=json.dumps(base),
        status="failed",
    )
    await proposal.save()
    return proposal.id


async def record_attempt(
    proposal_id: uuid.UUID, attempt: dict[str, Any], base: dict[str, Any], target: str = ""
) -> None:
    """Add an attempt; the proposal's content, evidence and status become that attempt's."""
    row = await AssistantProposal.select(AssistantProposal.attempts).where(AssistantProposal.id == proposal_id).first()
    attempts = (_json(row["attempts"]) if row else None) or []
    attempts.append(attempt)
    await AssistantProposal.update(
        {
            AssistantProposal.attempts: json.dumps(attempts),
            AssistantProposal.content: attempt["content"],
            AssistantProposal.evidence: json.dumps(attempt["evidence"]),
            AssistantProposal.status: attempt["status"],
            AssistantProposal.base: json.dumps(base),
            **({AssistantProposal.target: target} if target else {}),
            AssistantProposal.updated_at: utcnow(),
        }
    ).where(AssistantProposal.id == proposal_id)


async def append_evidence(proposal_id: uuid.UUID, item: dict[str, Any]) -> None:
    """Evidence found after the stages (a comparison of runs); the status follows it."""
    row = await AssistantProposal.select(AssistantProposal.evidence).where(AssistantProposal.id == proposal_id).first()
    evidence = [*((_json(row["evidence"]) if row else None) or []), item]
    await AssistantProposal.update(
        {
            AssistantProposal.evidence: json.dumps(evidence, default=str),
            AssistantProposal.status: status_of(evidence),
            AssistantProposal.updated_at: utcnow(),
        }
    ).where(AssistantProposal.id == proposal_id)


async def _row(principal: Principal, proposal_id: uuid.UUID) -> dict[str, Any]:
    """The proposal if it is the caller's (or, to read, the caller administers its organization)."""
    row = (
        await AssistantProposal.select(*COLUMNS)
        .where(
            AssistantProposal.id == proposal_id,
            AssistantProposal.organization == principal.current_organization(),
        )
        .first()
    )
    if row is None:
        raise NotFound("proposal not found")
    if row["owner"] != principal.user_id and (principal.role or 0) < Role.admin:
        raise NotFound("proposal not found")
    return view(row)


async def get_proposal(principal: Principal, proposal_id: uuid.UUID) -> dict[str, Any]:
    proposal = await _row(principal, proposal_id)
    if any(item["stage"] == "check" and item["status"] == "running" for item in proposal["evidence"]):
        proposal = await _settle_checks(principal, proposal)
    return proposal


async def list_for_message(message_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = (
        await AssistantProposal.select(*COLUMNS)
        .where(AssistantProposal.message == message_id)
        .order_by(AssistantProposal.created_at)
    )
    return [view(row) for row in rows]


def _host_lines(run: dict[str, Any]) -> tuple[str, dict[str, str]]:
    per_host = {}
    for host, tally in sorted(run["host_stats"].items()):
        if tally.get("unreachable"):
            per_host[host] = "unreachable"
        elif tally.get("failed"):
            per_host[host] = "failed"
        else:
            per_host[host] = f"ok ({tally.get('changed', 0)} would change)"
    text = "; ".join(f"{host}: {result}" for host, result in per_host.items()) or "no host ran"
    return text, per_host


async def _settle_checks(principal: Principal, proposal: dict[str, Any]) -> dict[str, Any]:
    changed = False
    for item in proposal["evidence"]:
        if item["stage"] != "check" or item["status"] != "running":
            continue
        run = (
            await Run.select(Run.status, Run.host_stats, Run.reason, Run.started_at, Run.finished_at)
            .where(Run.id == item["data"]["run_id"])
            .first()
        )
        if run is None:
            item.update(status="failed", detail="the check run was deleted")
            changed = True
            continue
        if not RunStatus(run["status"]).is_finished():
            continue
        run["host_stats"] = _json(run["host_stats"]) or {}
        hosts, per_host = _host_lines(run)
        bundle = await failure_bundle(principal, item["data"]["run_id"])
        failures = [f"{f['host']} / {f['task']}: {f['msg']}" for f in bundle["failures"][:5]]
        ok = run["status"] == RunStatus.successful
        item["status"] = "passed" if ok else "failed"
        item["detail"] = f"check mode on {item['data'].get('inventory', 'the inventory')}: {run['status']}. {hosts}"
        if failures:
            item["detail"] += ". " + "; ".join(failures)
        elif not ok and run["reason"]:
            item["detail"] += f". {run['reason']}"
        if run["started_at"] and run["finished_at"]:
            item["duration_ms"] = int((run["finished_at"] - run["started_at"]).total_seconds() * 1000)
        item["data"]["hosts"] = per_host
        item["data"]["run_status"] = run["status"]
        changed = True
    if changed:
        status = status_of(proposal["evidence"])
        await AssistantProposal.update(
            {
                AssistantProposal.evidence: json.dumps(proposal["evidence"], default=str),
                AssistantProposal.status: status,
                AssistantProposal.updated_at: utcnow(),
            }
        ).where(AssistantProposal.id == proposal["id"])
        proposal["status"] = status
    return proposal


def runnable_content(proposal: dict[str, Any]) -> str:
    """The playbook a check runs: the proposal itself, or the playbook its stack compiled to."""
    blocked = [e["stage"] for e in proposal["evidence"] if e["stage"] in RUNNABLE_STAGES and e["status"] == "failed"]
    if blocked:
        raise Conflict(f"the proposal cannot run: its {', '.join(blocked)} stage failed")
    if proposal["kind"] != "stack":
        return str(proposal["content"])
    compiled = next((e for e in proposal["evidence"] if e["stage"] == "compile"), None)
    if compiled is None or not compiled["data"].get("playbook"):
        raise Conflict("the stack was not compiled; nothing to run")
    return str(compiled["data"]["playbook"])


async def check_proposal(
    principal: Principal, queue: RunQueue, proposal_id: uuid.UUID, inventory_id: uuid.UUID, limit: str
) -> dict[str, Any]:
    """Launch a real run of the proposal in check and diff mode; its result joins the evidence."""
    proposal = await get_proposal(principal, proposal_id)
    content = runnable_content(proposal)
    options = RunOptions(check=True, diff=True, limit=limit)
    run = await runs.launch_content_run(principal, queue, content, inventory_id, options, proposal_id)
    inventory = await Inventory.select(Inventory.name).where(Inventory.id == inventory_id).first()
    name = inventory["name"] if inventory else "the inventory"
    data = {"run_id": str(run["id"]), "inventory_id": str(inventory_id), "inventory": name, "limit": limit}
    item = {"stage": "check", "status": "running", "detail": f"check mode run {run['id']} on {name}", "duration_ms": 0}
    item["data"] = data
    evidence = [*proposal["evidence"], item]
    await AssistantProposal.update(
        {AssistantProposal.evidence: json.dumps(evidence), AssistantProposal.updated_at: utcnow()}
    ).where(AssistantProposal.id == proposal_id)
    return {"proposal": await get_proposal(principal, proposal_id), "run": run}


def _refusal(proposal: dict[str, Any]) -> str | None:
    failed = [e["stage"] for e in proposal["evidence"] if e["status"] == "failed"]
    if failed:
        return f"the proposal did not pass: its {', '.join(dict.fromkeys(failed))} stage failed"
    if any(e["status"] == "running" for e in proposal["evidence"]):
        return "a check run of this proposal has not finished yet"
    return None


async def save_proposal(principal: Principal, proposal_id: uuid.UUID, name: str | None) -> dict[str, Any]:
    """Save a passed proposal: a playbook version (source ``assistant``) or a stack."""
    proposal = await get_proposal(principal, proposal_id)
    if proposal["owner_id"] != principal.user_id:
        raise NotFound("proposal not found")
    if refusal := _refusal(proposal):
        raise Conflict(refusal)
    if proposal["kind"] == "stack":
        saved = await _save_stack(principal, proposal, name)
    else:
        saved = await _save_playbook(principal, proposal, name)
    await AssistantProposal.update(
        {AssistantProposal.saved: json.dumps(saved, default=str), AssistantProposal.updated_at: utcnow()}
    ).where(AssistantProposal.id == proposal_id)
    await audit.record(
        "proposal.save",
        actor=principal,
        organization_id=proposal["organization_id"],
        target_type="proposal",
        target_id=proposal_id,
        detail={k: str(v) for k, v in saved.items()},
    )
    return {**proposal, "saved": saved}


async def _save_playbook(principal: Principal, proposal: dict[str, Any], name: str | None) -> dict[str, Any]:
    organization_id = principal.current_organization()
    base_id = proposal["base"].get("playbook_id")
    target: dict[str, Any] | None = None
    if name:
        target = (
            await Playbook.select(Playbook.id)
            .where(Playbook.organization == organization_id, Playbook.name == name)
            .first()
        )
    elif base_id:
        target = (
            await Playbook.select(Playbook.id)
            .where(Playbook.organization == organization_id, Playbook.id == uuid.UUID(str(base_id)))
            .first()
        )
        if target is None:
            raise Conflict("the playbook this change was made for was deleted; save it under a name")
    else:
        raise ValidationFailed.for_field("body.name", "a new playbook needs a name")
    content = str(proposal["content"])
    if target is None:  # a name was given, and no playbook has it yet
        row = await playbooks.create_playbook(principal, str(name), "proposed by the assistant", content, "assistant")
    else:
        row = await playbooks.update_playbook(principal, target["id"], {"content": content})
    return {"type": "playbook", "playbook_id": row["id"], "version": row["latest_version"], "name": row["name"]}


async def _save_stack(principal: Principal, proposal: dict[str, Any], name: str | None) -> dict[str, Any]:
    organization_id = principal.current_organization()
    text = str(proposal["content"])
    data = yaml.safe_load(text)
    if isinstance(data, dict) and "metadata" in data:
        if name:
            data["metadata"] = {**data["metadata"], "name": name}
        definition = parse_definition(data)
    else:
        definition = from_compose(text, name or proposal["base"].get("name") or "assistant-stack")
    stacks.check_defaults(definition)
    existing = (
        await Stack.select(Stack.id)
        .where(Stack.organization == organization_id, Stack.name == definition.metadata.name)
        .first()
    )
    if existing is None:
        stack_id = await stacks.insert_stack(organization_id, definition, "assistant", principal)
    else:
        current = await stacks.summary(organization_id, existing["id"])
        await stacks.save_stack_version(current, definition, principal)
        stack_id = existing["id"]
    stack = await stacks.get_stack(principal, stack_id)
    return {"type": "stack", "stack_id": stack_id, "version": stack["version"], "name": stack["name"]}
