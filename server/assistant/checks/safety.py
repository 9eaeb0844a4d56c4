"""The safety stage: what a person should know before approving the playbook.

Failures are secrets written into it (literal passwords, private keys, tokens): they would be
stored and shown with the playbook. Warnings are legitimate but risky patterns (``hazards.py``)
and secrets passed without ``no_log``. It runs on the content as checked, lint's fixes applied.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import anyio
import yaml

from server.assistant.checks import document, hazards, leaks, plugins
from server.assistant.checks.document import Task
from server.assistant.checks.findings import Finding
from server.assistant.evidence import Evidence, Status, timed


def _arguments(task: Task) -> tuple[str, document.Action, Mapping[str, Any]]:
    action = document.action_of(task.data)
    if action.module is None:
        return "", action, {}
    module = plugins.resolve_module(action.module) or action.module
    args = action.args
    if action.text is not None and not action.templated and module not in hazards.COMMAND_MODULES:
        with contextlib.suppress(ValueError):
            args = document.merged(plugins.split_kv(action.text), args)
    return module, action, args


def findings(content: str, data: Any) -> list[Finding]:
    """Everything found, in the order of the lines."""
    found: list[Finding] = [*leaks.play_findings(data), *hazards.play_findings(data)]
    for task in document.tasks(data, blocks=True):
        found += _task_findings(task)
    secret_lines = {item.line for item in found if item.rule == "literal-secret"}
    found += [item for item in leaks.text_findings(content, data) if item.line not in secret_lines]
    return sorted(found, key=lambda item: (item.line or 0, item.rule))


def _task_findings(task: Task) -> Iterator[Finding]:
    if task.is_block:
        yield from leaks.task_findings(task, {}, None)
        return
    module, action, args = _arguments(task)
    yield from leaks.task_findings(task, args, module or None)
    if module:
        yield from hazards.command_findings(task, module, action, args)
        yield from hazards.deletion_findings(task, module, args)


def _check(content: str) -> Evidence:
    with timed() as timer:
        try:
            data = document.load(content)
        except yaml.YAMLError as exc:
            return Evidence("safety", "failed", f"the playbook does not load as YAML: {exc}", timer.ms)
        found = findings(content, data)
        payload = {"findings": [item.as_dict() for item in found]}
        if not found:
            detail = "no literal secret, destructive command or risky pattern found"
            return Evidence("safety", "passed", detail, timer.ms, payload)
        status: Status = "failed" if any(item.severity == "failed" for item in found) else "warning"
        detail = "\n".join(f"{item.severity}: {item.message}" for item in found)
        return Evidence("safety", status, detail, timer.ms, payload)


async def check_safety(content: str) -> Evidence:
    return await anyio.to_thread.run_sync(_check, content)
