"""Every check of a proposed playbook, in order: parse, modules, syntax, lint, safety.

Parse comes first: nothing else can read a playbook that does not load. Modules (in a thread),
the syntax check and lint (two subprocesses) are independent and run at the same time; safety
then reads the content as checked, lint's autofix applied.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio

from server.assistant.checks import linter, plugins
from server.assistant.checks.lint import Linted, line_map, lint_playbook
from server.assistant.checks.modules import check_modules
from server.assistant.checks.parse import parse_playbook
from server.assistant.checks.safety import check_safety
from server.assistant.checks.syntax import check_syntax
from server.assistant.evidence import Checked, Evidence, Stage, skipped

log = logging.getLogger(__name__)
AFTER_PARSE: tuple[Stage, ...] = ("modules", "syntax", "lint", "safety")


async def guarded(stage: Stage, work: Awaitable[Evidence]) -> Evidence:
    """A check that breaks is a failed stage that says so, never a lost proposal."""
    try:
        return await work
    except Exception as exc:
        log.exception("assistant check stage broke", extra={"stage": stage})
        return Evidence(stage, "failed", f"the {stage} check could not run: {exc}")


async def _lint(content: str) -> Linted:
    try:
        return await lint_playbook(content)
    except Exception as exc:
        log.exception("assistant check stage broke", extra={"stage": "lint"})
        return Linted(Evidence("lint", "failed", f"the lint check could not run: {exc}"), None)


async def check_playbook(content: str, *, truncated: bool = False, cache_dir: Path | None = None) -> Checked:
    """The evidence for ``content``; ``truncated`` when the model's reply was cut off at its limit.

    ``cache_dir`` is accepted like the lookups take it; a playbook check keeps nothing between
    processes (module docs come from the files, ansible-lint's caches live with its fork server).
    """
    parsed, data = await parse_playbook(content, truncated=truncated)
    if parsed.blocks:
        return Checked(content, [parsed, *skipped(AFTER_PARSE, "parse")])
    results: dict[str, Any] = {}

    async def keep(key: str, work: Callable[[], Awaitable[Any]]) -> None:
        results[key] = await work()

    async with anyio.create_task_group() as group:
        group.start_soon(keep, "lint", lambda: _lint(content))
        group.start_soon(keep, "syntax", lambda: guarded("syntax", check_syntax(content)))
        group.start_soon(keep, "modules", lambda: guarded("modules", check_modules(data)))
    linted: Linted = results["lint"]
    checked = linted.fixed or content
    modules, syntax = results["modules"], results["syntax"]
    if linted.fixed:
        lines = line_map(content, linted.fixed)
        modules, syntax = renumber(modules, lines), renumber(syntax, lines)
    safety = await guarded("safety", check_safety(checked))
    return Checked(checked, [parsed, modules, syntax, linted.evidence, safety])


_LINE = re.compile(r"\b(line |main\.yml:)(\d+)")


def renumber(evidence: Evidence, lines: dict[int, int]) -> Evidence:
    """Evidence of the text before lint's fixes, with its line numbers moved to the fixed text."""

    def move(text: str) -> str:
        return _LINE.sub(lambda m: f"{m[1]}{lines.get(int(m[2]), int(m[2]))}", text)

    def moved(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: moved(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [moved(item) for item in value]
        if key == "line" and isinstance(value, int):
            return lines.get(value, value)
        return move(value) if isinstance(value, str) else value

    return Evidence(evidence.stage, evidence.status, move(evidence.detail), evidence.duration_ms, moved(evidence.data))


async def warm_up() -> None:
    """Start now what the first check would wait for: the lint fork server and Ansible's loader."""
    await anyio.to_thread.run_sync(linter.fork_server)
    await anyio.to_thread.run_sync(plugins.resolve_module, "ansible.builtin.ping")
