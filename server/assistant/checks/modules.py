"""The modules stage: every task calls an installed module with arguments that module documents.

Names resolve through Ansible's own routing (``apt`` → ``ansible.builtin.apt``,
``docker_container`` → ``community.docker.docker_container``); an unknown name comes back with
the closest installed ones. Free-form modules (command, shell, set_fact…) take what they are
given; so do arguments that are one expression, known only when the task runs.
"""

from __future__ import annotations

import difflib
import functools
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import anyio

from server.assistant.checks import document, plugins
from server.assistant.checks.document import Action, Task
from server.assistant.evidence import Evidence, timed

# Modules whose extra arguments are data (host variables, group keys), though their docs list few.
TAKES_ANY = frozenset({"ansible.builtin.add_host", "ansible.builtin.group_by"})
MAX_LISTED = 12


@functools.cache
def _short_names() -> dict[str, list[str]]:
    names: dict[str, list[str]] = defaultdict(list)
    for fqcn in plugins.installed_names():
        names[fqcn.rsplit(".", 1)[-1]].append(fqcn)
    return dict(names)


def suggest(name: str, limit: int = 3) -> list[str]:
    """Installed modules whose names are close to ``name``, as FQCNs, closest first."""
    short = name.rsplit(".", 1)[-1]
    shorts = _short_names()
    close = difflib.get_close_matches(short, shorts, n=limit, cutoff=0.7)
    out: list[str] = []
    collection = name.rsplit(".", 1)[0] if name.count(".") >= 2 else ""
    for match in close:
        routed = plugins.resolve_module(match)
        choices = [f for f in shorts[match] if collection and f.startswith(collection + ".")]
        out.append(choices[0] if choices else routed or shorts[match][0])
    return list(dict.fromkeys(out))[:limit]


def _unknown(module: str, found: plugins.Found) -> str:
    if found.removed:
        return f"module `{module}` was removed from Ansible: {found.removed}"
    close = suggest(module)
    hint = f"; did you mean {', '.join(close)}?" if close else "; look it up with list_modules"
    return f"no installed module is called `{module}`{hint}"


def _given(action: Action, doc: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """The arguments as a mapping (``k=v`` text split), None when they cannot be known here."""
    if action.templated or doc["free_form"] or doc["name"] in TAKES_ANY:
        return None, None
    args = dict(action.args)
    if action.text is not None:
        try:
            pairs = plugins.split_kv(action.text)
        except ValueError as exc:
            return None, f"its arguments cannot be split into name=value pairs: {exc}"
        raw = pairs.pop("_raw_params", None)
        if raw:
            return None, f"`{doc['name']}` takes name=value pairs or a mapping, and `{raw}` is neither"
        args.update(pairs)
    return args, None


def _argument_problems(task: Task, action: Action, doc: Mapping[str, Any]) -> list[str]:
    args, problem = _given(action, doc)
    if problem:
        return [problem]
    if args is None:
        return []
    options: dict[str, dict[str, Any]] = doc["options"]
    names = {alias: option for option, spec in options.items() for alias in (option, *spec["aliases"])}
    problems: list[str] = []
    for key in args:
        if not isinstance(key, str) or document.is_template(key):
            continue
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
            hint = f"did you mean `{close[0]}`? " if close else ""
            listed = ", ".join(sorted(options)[:MAX_LISTED]) + (", …" if len(options) > MAX_LISTED else "")
            problems.append(f"`{doc['name']}` has no argument `{key}`; {hint}its arguments: {listed}")
            continue
        problems += _choice_problem(doc["name"], key, args[key], options[names[key]])
    if not task.module_defaults:
        for option, spec in options.items():
            if spec["required"] and not any(alias in args for alias in (option, *spec["aliases"])):
                problems.append(f"`{doc['name']}` requires the argument `{option}` ({spec['description']})")
    return problems


def _choice_problem(module: str, key: str, value: Any, spec: Mapping[str, Any]) -> list[str]:
    choices = spec.get("choices")
    if not isinstance(choices, list) or not choices or spec.get("type") == "bool":
        return []
    values = value if isinstance(value, list) else [value]
    allowed = {str(choice) for choice in choices}
    for item in values:
        if isinstance(item, bool) or item is None or document.is_template(item) or isinstance(item, dict):
            continue
        if str(item) not in allowed:
            return [f"argument `{key}` of `{module}` must be one of {', '.join(sorted(allowed))}, not `{item}`"]
    return []


def _check(data: Any) -> Evidence:
    with timed() as timer:
        resolved: dict[str, str] = {}
        problems: list[dict[str, Any]] = []
        deprecated: list[str] = []
        count = 0
        for task in document.tasks(data):
            count += 1
            action = document.action_of(task.data)
            if action.problem or action.module is None:
                problems.append(_problem(task, action.module, action.problem or "calls no module"))
                continue
            found = plugins.find_module(action.module)
            if found.fqcn is None:
                problems.append(_problem(task, action.module, _unknown(action.module, found)))
                continue
            resolved[action.module] = found.fqcn
            if found.deprecated:
                deprecated.append(f"{task.label}: `{found.fqcn}` is deprecated; see module_doc for its successor")
            doc = plugins.module_doc(found.fqcn)
            if doc is not None:
                problems += [_problem(task, found.fqcn, text) for text in _argument_problems(task, action, doc)]
        data_out: dict[str, Any] = {"modules": resolved, "problems": problems}
        if problems:
            detail = "\n".join(f"{p['task']}: {p['message']}" for p in problems)
            return Evidence("modules", "failed", detail, timer.ms, data_out)
        if deprecated:
            return Evidence("modules", "warning", "\n".join(deprecated), timer.ms, data_out)
        fqcns = sorted(set(resolved.values()))
        detail = f"{count} task(s) call {len(fqcns)} installed module(s) with documented arguments: " + ", ".join(fqcns)
        return Evidence("modules", "passed", detail, timer.ms, data_out)


def _problem(task: Task, module: str | None, message: str) -> dict[str, Any]:
    return {"task": task.label, "line": task.line, "module": module or "", "message": message}


async def check_modules(data: Any) -> Evidence:
    """The modules evidence for a parsed playbook (Ansible's loader runs in a worker thread)."""
    return await anyio.to_thread.run_sync(_check, data)
