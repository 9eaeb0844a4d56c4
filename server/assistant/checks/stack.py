"""Every check of a proposed stack: stack, compile, then the playbook stages on what it compiled to.

The definition is WindFlow's stack format or a plain docker-compose document (a mapping with
``services`` and no ``metadata``), imported as the stack service imports one. It compiles for the
target asked for, else its first; values come from the defaults, and a required variable without
one gets a placeholder of its type, so the compile can still be checked (the detail says which).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import anyio

from server.assistant.checks.parse import TRUNCATED
from server.assistant.checks.playbook import check_playbook
from server.assistant.evidence import PLAYBOOK_STAGES, Evidence, StackChecked, Stage, skipped, timed
from server.errors import ValidationFailed
from server.stacks.compiler import Compiled, compile_stack
from server.stacks.compose import from_compose
from server.stacks.service import check_defaults
from server.stacks.spec import Definition, load_text, parse_definition
from server.stacks.variables import Variable, check_value, resolve

log = logging.getLogger(__name__)
T = TypeVar("T")
DEFAULT_NAME = "assistant-stack"
_PREFIXES = ("body.definition.", "body.compose.", "body.", "definition.", "compose.", "compile.")
_TEXT_PLACEHOLDERS = ("example", "example.com", "admin@example.com", "https://example.com", "Example-1")


def _field(path: str) -> str:
    for prefix in _PREFIXES:
        if path.startswith(prefix):
            return path[len(prefix) :]
    return "" if path in ("definition", "compose", "body") else path


def _errors(exc: ValidationFailed) -> list[dict[str, str]]:
    return [{"field": _field(e.field), "message": e.message} for e in exc.errors] or [
        {"field": "", "message": exc.detail}
    ]


def _listed(errors: list[dict[str, str]]) -> str:
    return "\n".join(f"- {e['field']}: {e['message']}" if e["field"] else f"- {e['message']}" for e in errors)


def _compose_name(data: Mapping[str, Any]) -> str:
    services = data.get("services")
    first = next(iter(services), None) if isinstance(services, Mapping) and services else None
    return str(first) if isinstance(first, str) and first.strip() else DEFAULT_NAME


def _definition(source: str) -> tuple[Definition, str]:
    """The definition and its format (``windflow`` or ``compose``), checked as the service checks it."""
    data = load_text(source, "definition")
    if isinstance(data, Mapping) and "services" in data and "metadata" not in data:
        definition, kind = from_compose(source, _compose_name(data), "compose"), "compose"
    else:
        definition, kind = parse_definition(source, "definition"), "windflow"
    check_defaults(definition)
    return definition, kind


def _stack_stage(source: str) -> tuple[Evidence, Definition | None]:
    with timed() as timer:
        try:
            definition, kind = _definition(source)
        except ValidationFailed as exc:
            errors = _errors(exc)
            detail = "the stack definition is invalid:\n" + _listed(errors)
            return Evidence("stack", "failed", detail, timer.ms, {"errors": errors}), None
        meta = definition.metadata
        detail = (
            f"stack {meta.name} {meta.version} ({'imported from docker-compose' if kind == 'compose' else kind} "
            f"format) with {len(definition.template.get('services') or {})} service(s) and "
            f"{len(definition.variables)} variable(s), for {', '.join(meta.targets)}"
        )
        data = {"name": meta.name, "format": kind, "targets": list(meta.targets)}
        return Evidence("stack", "passed", detail, timer.ms, data), definition


def placeholder(variable: Variable) -> Any:
    """A value of the variable's type that its constraints accept, or None when none fits."""
    if variable.enum:
        candidates: list[Any] = [variable.enum[0]]
    elif variable.type == "boolean":
        candidates = [False]
    elif variable.type in ("integer", "number"):
        candidates = [v for v in (variable.minimum, 1, variable.maximum) if v is not None]
    else:
        wanted = variable.min_length or 0
        candidates = [text + "x" * max(wanted - len(text), 0) for text in _TEXT_PLACEHOLDERS]
    for candidate in candidates:
        try:
            return check_value(variable, candidate)
        except Exception:  # noqa: S112 - check_value's own error type is private; the next one may fit
            continue
    return None


def _values(definition: Definition) -> tuple[dict[str, Any], list[str]]:
    """Resolved values, with placeholders for what is required and has no default."""
    try:
        return resolve(definition.variables, {}, "values"), []
    except ValidationFailed as exc:
        missing = [e.field.split(".", 1)[1] for e in exc.errors if e.message == "is required"]
        given = {name: value for name in missing if (value := placeholder(definition.variables[name])) is not None}
        if not given:
            raise
    return resolve(definition.variables, given, "values"), sorted(given)


def _compile_stage(definition: Definition, target: str) -> tuple[Evidence, Compiled | None]:
    with timed() as timer:
        try:
            values, placeholders = _values(definition)
            compiled = compile_stack(definition, values, target, path="compile")
        except ValidationFailed as exc:
            errors = _errors(exc)
            detail = f"the stack does not compile for {target}:\n" + _listed(errors)
            return Evidence("compile", "failed", detail, timer.ms, {"target": target, "errors": errors}), None
        detail = f"compiled for {target}: a playbook of {compiled.content.count(chr(10))} lines"
        if placeholders:
            detail += (
                "; these required variables have no default, so placeholder values stood in for the check: "
                + ", ".join(placeholders)
                + " (a deployment must give them)"
            )
        data = {"target": target, "playbook": compiled.content, "placeholders": placeholders}
        return Evidence("compile", "passed", detail, timer.ms, data), compiled


async def _in_thread(stage: Stage, work: Callable[..., tuple[Evidence, T]], *args: Any) -> tuple[Evidence, T | None]:
    """A stage in a worker thread; one that breaks is a failed stage that says so."""
    try:
        return await anyio.to_thread.run_sync(work, *args)
    except Exception as exc:
        log.exception("assistant check stage broke", extra={"stage": stage})
        return Evidence(stage, "failed", f"the {stage} check could not run: {exc}"), None


async def check_stack(
    source: str, *, target: str | None = None, truncated: bool = False, cache_dir: Path | None = None
) -> StackChecked:
    """The evidence for a stack definition (or compose document) compiled for ``target``."""
    after_stack = ("compile", *PLAYBOOK_STAGES)
    if truncated:
        truncated_detail = TRUNCATED.replace("the playbook", "the stack definition")
        evidence = [Evidence("stack", "failed", truncated_detail, 0, {"truncated": True})]
        return StackChecked(source, [*evidence, *skipped(after_stack, "stack")], target or "", "", "")
    stack, definition = await _in_thread("stack", _stack_stage, source)
    if definition is None:
        return StackChecked(source, [stack, *skipped(after_stack, "stack")], target or "", "", "")
    chosen = target or definition.metadata.targets[0]
    compiled_evidence, compiled = await _in_thread("compile", _compile_stage, definition, chosen)
    name = definition.metadata.name
    if compiled is None:
        evidence = [stack, compiled_evidence, *skipped(PLAYBOOK_STAGES, "compile")]
        return StackChecked(source, evidence, chosen, name, "")
    checked = await check_playbook(compiled.content, cache_dir=cache_dir)
    return StackChecked(source, [stack, compiled_evidence, *checked.evidence], chosen, name, compiled.content)
