"""A compact account of why a run failed, from its stored events: what the model needs, nothing more.

Per failed or unreachable host event: host, play, task, module, message, the tails of stderr and
stdout, return code and duration. No-log results were already censored when they were stored.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from server.auth.principal import Principal
from server.db.tables import Inventory, Playbook, RunEvent
from server.runs.service import get_run
from server.runs.stream import strip_ansi

FAILED_EVENTS = ("runner_on_failed", "runner_on_unreachable", "runner_item_on_failed")
MAX_FAILURES = 20
TAIL_CHARS = 1500
TAIL_LINES = 30


def tail(text: Any, chars: int = TAIL_CHARS) -> str:
    if not isinstance(text, str) or not text:
        return ""
    lines: str = "\n".join(str(text).splitlines()[-TAIL_LINES:])
    return lines if len(lines) <= chars else "…" + lines[-chars:]


def _failure(row: dict[str, Any]) -> dict[str, Any]:
    data = row["data"]
    if isinstance(data, str | bytes):
        data = json.loads(data)
    res = data.get("res") if isinstance(data.get("res"), dict) else {}
    item: dict[str, Any] = {
        "host": row["host"],
        "play": row["play"],
        "task": row["task"],
        "module": data.get("resolved_action") or data.get("task_action") or "",
        "event": "unreachable" if row["event"] == "runner_on_unreachable" else "failed",
        "msg": tail(str(res.get("msg", "")), 800),
    }
    for key in ("stderr", "stdout", "module_stderr", "module_stdout"):
        if value := tail(res.get(key)):
            item[key] = value
    for key in ("rc", "cmd"):
        if res.get(key) not in (None, ""):
            item[key] = res[key] if key == "rc" else tail(str(res[key]), 300)
    if data.get("duration") is not None:
        item["duration_s"] = round(float(data["duration"]), 3)
    return item


async def failure_bundle(principal: Principal, run_id: uuid.UUID) -> dict[str, Any]:
    """The run's summary and its failures (at most ``MAX_FAILURES``), ready to be shown to a model."""
    run = await get_run(principal, run_id)
    rows = (
        await RunEvent.select(RunEvent.event, RunEvent.host, RunEvent.play, RunEvent.task, RunEvent.data)
        .where(RunEvent.run == run_id, RunEvent.event.is_in(list(FAILED_EVENTS)), RunEvent.failed.eq(True))
        .order_by(RunEvent.counter)
        .limit(MAX_FAILURES)
    )
    playbook = inventory = None
    if run["playbook_id"]:
        playbook = await Playbook.select(Playbook.name).where(Playbook.id == run["playbook_id"]).first()
    if run["inventory_id"]:
        inventory = await Inventory.select(Inventory.name).where(Inventory.id == run["inventory_id"]).first()
    hosts = run["host_stats"]
    failed_hosts = sorted(h for h, t in hosts.items() if t.get("failed") or t.get("unreachable"))
    bundle: dict[str, Any] = {
        "run_id": str(run_id),
        "status": run["status"],
        "reason": run["reason"],
        "playbook": playbook["name"] if playbook else None,
        "playbook_id": str(run["playbook_id"]) if run["playbook_id"] else None,
        "version": run["version"],
        "inventory": inventory["name"] if inventory else None,
        "check_mode": bool(run["options"].get("check")),
        "limit": run["options"].get("limit", ""),
        "host_stats": hosts,
        "failed_hosts": failed_hosts,
        "failures": [_failure(row) for row in rows],
    }
    if not rows and run["status"] not in ("successful", "pending", "running"):
        bundle["output_tail"] = await _output_tail(run_id)
    return bundle


async def _output_tail(run_id: uuid.UUID) -> str:
    rows = (
        await RunEvent.select(RunEvent.stdout)
        .where(RunEvent.run == run_id, RunEvent.stdout != "")
        .order_by(RunEvent.counter, ascending=False)
        .limit(TAIL_LINES)
    )
    return tail(strip_ansi("\n".join(row["stdout"] for row in reversed(rows))))
