"""The proposals in a reply: each checked stage by stage, and sent back to the model while it fails.

Every attempt is stored with its evidence; the repair request carries the draft as it was checked
and what failed, and is asked without tools.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from server.assistant import checks, prompts, proposals
from server.assistant.evidence import Checked
from server.assistant.extraction import Found, find_proposals
from server.assistant.turn import TurnRun
from server.errors import NotFound


def _diff_base(run: TurnRun, found: Found) -> dict[str, Any]:
    base = run.request.base
    if found.kind != "playbook" or not base:
        return {}
    return {k: base[k] for k in ("playbook_id", "version", "name") if k in base}


async def _check(run: TurnRun, kind: str, content: str, truncated: bool) -> Checked:
    cache = run.services.cache_dir
    if kind == "stack":
        return await checks.check_stack(
            content, target=run.request.context.get("target"), truncated=truncated, cache_dir=cache
        )
    return await checks.check_playbook(content, truncated=truncated, cache_dir=cache)


async def propose_all(run: TurnRun, text: str, truncated: bool) -> None:
    found_all = find_proposals(text)
    playbook_id = run.request.context.get("playbook_id")
    if found_all and run.request.base is None and run.request.base_from_context and playbook_id:
        with contextlib.suppress(NotFound):  # deleted since: the proposal is a new playbook then
            run.request.base = await proposals.playbook_base(run.principal, playbook_id)
    for found in found_all:
        if run.stopped:
            return
        await _propose(run, found, text, truncated or not found.closed)


async def _propose(run: TurnRun, found: Found, reply: str, truncated: bool) -> None:
    base = _diff_base(run, found)
    kind = "diff" if base else found.kind
    proposal_id = await proposals.create(
        organization_id=run.principal.current_organization(),
        conversation_id=run.conversation_id,
        message_id=run.message_id,
        owner=run.principal.user_id,
        kind=kind,
        target=str(run.request.context.get("target") or ""),
        base=base,
    )
    content, finish = found.text, "length" if truncated else "stop"
    for attempt in range(1, run.config.max_repairs + 2):
        run.emit({"type": "proposal", "id": str(proposal_id), "kind": kind, "content": content, "attempt": attempt})
        checked = await _check(run, found.kind, content, finish == "length")
        for item in checked.evidence:
            run.services.metrics.stage.labels(item.stage).observe(item.duration_ms / 1000)
            run.emit({"type": "evidence", "proposal_id": str(proposal_id), "attempt": attempt, **_event(item)})
        if base and run.request.base:
            base["diff"] = proposals.unified_diff(
                run.request.base["content"], checked.content, base.get("name", "playbook")
            )
        target = getattr(checked, "target", "")
        record = {
            "attempt": attempt,
            "proposed": content,
            "content": checked.content,
            "status": "passed" if checked.passed else "failed",
            "evidence": [item.as_dict() for item in checked.evidence],
            "finish_reason": finish,
        }
        await proposals.record_attempt(proposal_id, record, base, target)
        if checked.passed:
            if run.request.after_checks is not None:
                await run.request.after_checks(run, proposal_id, checked)
            return
        if attempt > run.config.max_repairs or run.stopped:
            return
        repaired = await _repair(run, found.kind, checked, reply, proposal_id, attempt + 1, finish == "length")
        if repaired is None:
            return
        content, finish = repaired


def _event(item: Any) -> dict[str, Any]:
    return {"stage": item.stage, "status": item.status, "detail": item.detail, "duration_ms": item.duration_ms}


async def _repair(
    run: TurnRun, kind: str, checked: Checked, reply: str, proposal_id: uuid.UUID, attempt: int, truncated: bool
) -> tuple[str, str] | None:
    """Ask the model to fix what failed; its new proposal and finish reason, or None when it gave none.

    The repair is asked without tools: the tool exchanges of the reply are left out of its prompt.
    """
    said = [m for m in run.messages if m["role"] != "tool" and not m.get("tool_calls")]
    messages = [
        *said,
        {"role": "assistant", "content": reply},
        {"role": "user", "content": prompts.repair_request(kind, checked.content, checked.problems(), truncated)},
    ]

    async def on_text(piece: str) -> None:
        run.emit({"type": "delta", "text": piece, "proposal_id": str(proposal_id), "attempt": attempt})

    completion = await run.complete(await run.fit(messages), on_text)
    candidates = [f for f in find_proposals(completion.text) if f.kind == kind] or find_proposals(completion.text)
    if not candidates:
        return None
    cut = completion.finish_reason == "length" or not candidates[0].closed
    return candidates[0].text, "length" if cut else "stop"
