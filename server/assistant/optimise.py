"""Where a playbook spends its time, and whether a faster version really is: measured runs, not claims.

The slow tasks come from the per-task durations of the playbook's recent runs. With an inventory,
the original and the proposal both run on it (in check mode, unless the inventory says it is
disposable with ``windflow_disposable: true`` in its variables); on a disposable target the
proposal runs a second time, which must report ``changed=0``.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from server.assistant import proposals
from server.assistant.evidence import Evidence, Status
from server.db.tables import Inventory, Run, RunEvent
from server.runs import service as runs
from server.runs.spec import RunOptions
from server.runs.status import RunStatus

if TYPE_CHECKING:
    from server.assistant.evidence import Checked
    from server.assistant.turn import TurnRun

HOST_RESULTS = ("runner_on_ok", "runner_on_failed", "runner_on_skipped", "runner_on_unreachable")
RECENT_RUNS = 5
SLOWEST = 10
RUN_WAIT = 900.0  # seconds a measured run may take
POLL = 0.25


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def _duration(data: dict[str, Any]) -> float | None:
    value = data.get("duration")
    if isinstance(value, int | float):
        return float(value)
    return None


async def task_durations(run_ids: list[uuid.UUID]) -> dict[str, list[float]]:
    """Seconds each task took, one sample per host result, in the order tasks first appear."""
    if not run_ids:
        return {}
    rows = (
        await RunEvent.select(RunEvent.task, RunEvent.data)
        .where(RunEvent.run.is_in(run_ids), RunEvent.event.is_in(list(HOST_RESULTS)))
        .order_by(RunEvent.counter)
    )
    samples: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        seconds = _duration(_json(row["data"]) or {})
        if seconds is not None and row["task"]:
            samples[row["task"]].append(seconds)
    return dict(samples)


def ranked(samples: dict[str, list[float]], top: int = SLOWEST) -> list[dict[str, Any]]:
    means = sorted(
        ((round(sum(values) / len(values), 3), task, len(values)) for task, values in samples.items() if values),
        key=lambda item: item[0],
        reverse=True,
    )
    return [{"task": task, "mean_s": mean, "samples": count} for mean, task, count in means[:top]]


async def slowest_tasks(playbook_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = (
        await Run.select(Run.id)
        .where(Run.playbook == playbook_id, Run.status.is_in([RunStatus.successful, RunStatus.failed]))
        .order_by(Run.created_at, ascending=False)
        .limit(RECENT_RUNS)
    )
    return ranked(await task_durations([row["id"] for row in rows]))


async def is_disposable(inventory_id: uuid.UUID) -> bool:
    row = await Inventory.select(Inventory.document).where(Inventory.id == inventory_id).first()
    document = _json(row["document"]) if row else {}
    return bool((document or {}).get("vars", {}).get("windflow_disposable") is True)


@dataclass
class Measured:
    run_id: uuid.UUID
    status: str
    wall_s: float
    changed: int
    tasks: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": str(self.run_id),
            "status": self.status,
            "wall_s": self.wall_s,
            "changed": self.changed,
            "tasks": self.tasks,
        }


async def _measure(turn: TurnRun, content: str, proposal_id: uuid.UUID, options: RunOptions) -> Measured:
    inventory_id = uuid.UUID(str(turn.request.context["inventory_id"]))
    run = await runs.launch_content_run(
        turn.principal, turn.services.queue, content, inventory_id, options, proposal_id
    )
    deadline = time.monotonic() + RUN_WAIT
    row: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        row = (
            await Run.select(Run.status, Run.started_at, Run.finished_at, Run.host_stats)
            .where(Run.id == run["id"])
            .first()
        )
        if row is None or RunStatus(row["status"]).is_finished():
            break
        await asyncio.sleep(POLL)
    if row is None or not RunStatus(row["status"]).is_finished():
        return Measured(run["id"], row["status"] if row else "deleted", 0.0, 0, {})
    wall = (row["finished_at"] - row["started_at"]).total_seconds() if row["started_at"] else 0.0
    stats = _json(row["host_stats"]) or {}
    per_task = {task: round(max(values), 3) for task, values in (await task_durations([run["id"]])).items()}
    changed = sum(int(tally.get("changed", 0)) for tally in stats.values())
    return Measured(run["id"], row["status"], round(wall, 3), changed, per_task)


async def compare(turn: TurnRun, proposal_id: uuid.UUID, checked: Checked) -> None:
    """Run the original and the proposal on the turn's inventory; the figures join the evidence."""
    base = turn.request.base or {}
    if not turn.request.context.get("inventory_id") or not base.get("content"):
        return
    started = time.perf_counter()
    disposable = await is_disposable(uuid.UUID(str(turn.request.context["inventory_id"])))
    limit = str(turn.request.context.get("limit") or "")
    options = RunOptions(check=not disposable, diff=not disposable, limit=limit)
    before = await _measure(turn, base["content"], proposal_id, options)
    after = await _measure(turn, checked.content, proposal_id, options)
    second = await _measure(turn, checked.content, proposal_id, options) if disposable else None
    evidence = _evidence(before, after, second, disposable, int((time.perf_counter() - started) * 1000))
    turn.services.metrics.stage.labels("compare").observe(evidence.duration_ms / 1000)
    turn.emit({"type": "evidence", "proposal_id": str(proposal_id), **_public(evidence)})
    await proposals.append_evidence(proposal_id, evidence.as_dict())


def _public(item: Evidence) -> dict[str, Any]:
    return {"stage": item.stage, "status": item.status, "detail": item.detail, "duration_ms": item.duration_ms}


def _evidence(before: Measured, after: Measured, second: Measured | None, disposable: bool, ms: int) -> Evidence:
    mode = "for real (the inventory is disposable)" if disposable else "in check mode"
    data: dict[str, Any] = {
        "mode": "real" if disposable else "check",
        "before": before.as_dict(),
        "after": after.as_dict(),
    }
    if after.status != RunStatus.successful:
        detail = f"the proposal's run {mode} ended {after.status}; the original's ended {before.status}"
        return Evidence("compare", "failed", detail, ms, data)
    ratio = before.wall_s / after.wall_s if after.wall_s else 0.0
    detail = f"ran {mode}: wall time {before.wall_s} s before, {after.wall_s} s after"
    if ratio:
        detail += f" ({ratio:.2f}x)"
    status: Status = "passed"
    if second is not None:
        data["second"] = second.as_dict()
        detail += f"; a second run of the proposal reported changed={second.changed}"
        if second.status != RunStatus.successful or second.changed:
            status = "failed"
            detail += " (it must be 0: the proposal is not idempotent)"
    else:
        detail += "; idempotence not measured (check mode applies nothing)"
    if status == "passed" and after.wall_s > before.wall_s:
        status = "warning"
        detail += "; the proposal was not faster here"
    return Evidence("compare", status, detail, ms, data)
