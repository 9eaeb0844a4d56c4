"""What the model may look at: WindFlow's own data, read with the caller's organization and role.

Every tool reads; none writes or starts anything (the model proposes, a person applies). Results
are JSON text, capped in size; the turn redacts them like every other message before they leave.
Models with function calling get :data:`TOOLS`; for the others :func:`render_context` puts the
message's context into the prompt instead.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import msgspec

from server.assistant import checks
from server.assistant.failures import failure_bundle
from server.auth.principal import Principal
from server.errors import WindFlowError
from server.inventories import service as inventories
from server.inventories import spec as inventory_spec
from server.playbooks import service as playbooks
from server.runs import service as runs
from server.stacks import service as stacks

MAX_RESULT = 12_000
LIST_SIZE = 50


def _function(
    name: str, description: str, properties: dict[str, Any], required: tuple[str, ...] = ()
) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": list(required)},
        },
    }


ID = {"type": "string", "description": "the object's id (a UUID)"}
QUERY = {"type": "string", "description": "words to look for in names (optional)"}
TOOLS = [
    _function("list_inventories", "The organization's inventories: id, name, host and group counts.", {}),
    _function(
        "get_inventory",
        "One inventory: its groups, hosts with their kind (docker, kubernetes, vm, bare-metal), connection "
        "fields and plain variables. Credentials are never shown.",
        {"inventory_id": ID},
        ("inventory_id",),
    ),
    _function("list_playbooks", "The organization's playbooks: id, name, source, latest version.", {"query": QUERY}),
    _function(
        "get_playbook",
        "One playbook's content (the latest version, or the given one).",
        {"playbook_id": ID, "version": {"type": "integer", "minimum": 1}},
        ("playbook_id",),
    ),
    _function(
        "list_runs",
        "Recent runs, newest first: status, playbook, host results.",
        {"status": {"type": "string", "enum": ["pending", "running", "successful", "failed", "canceled", "timeout"]}},
    ),
    _function(
        "get_run",
        "A run's summary and its failed and unreachable events (host, task, module, message, output tails).",
        {"run_id": ID},
        ("run_id",),
    ),
    _function("list_stacks", "The stacks and catalogue entries: id, name, category, targets.", {"query": QUERY}),
    _function("get_stack", "One stack definition (metadata, template, variables).", {"stack_id": ID}, ("stack_id",)),
    _function(
        "list_modules",
        "Installed Ansible modules whose name or description matches the query (like ansible-doc --list).",
        {"query": {"type": "string", "description": "e.g. 'docker container' or 'apt'"}},
        ("query",),
    ),
    _function(
        "module_doc",
        "One module's documentation: its FQCN, description and every option (type, required, choices).",
        {"name": {"type": "string", "description": "a module name, e.g. ansible.builtin.copy or apt"}},
        ("name",),
    ),
]
TOOL_NAMES = frozenset(tool["function"]["name"] for tool in TOOLS)


def _uuid(arguments: dict[str, Any], key: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(arguments.get(key, "")))
    except ValueError:
        raise ToolError(f"{key} must be a UUID") from None


class ToolError(Exception):
    """A bad call by the model: the message goes back to it as the tool's result."""


def _document(document: inventory_spec.Document) -> dict[str, Any]:
    raw = msgspec.to_builtins(document)
    kinds = inventory_spec.host_kinds(document)
    for host in raw.get("hosts", []):
        host["kind"] = kinds.get(host["name"], host.get("kind"))
    for level in [raw, *raw.get("hosts", []), *raw.get("groups", [])]:
        for key in ("credential", "become_credential"):
            if key in level:
                level[key] = "(a credential)"
    return dict(raw)


async def _list_inventories(principal: Principal, arguments: dict[str, Any], cache_dir: Path) -> Any:
    rows, total = await inventories.list_inventories(principal, 1, LIST_SIZE)
    keys = ("id", "name", "description", "host_count", "group_count")
    return {"total": total, "items": [{k: row[k] for k in keys} for row in rows]}


async def _get_inventory(principal: Principal, arguments: dict[str, Any], cache_dir: Path) -> Any:
    row = await inventories.get_inventory(principal, _uuid(arguments, "inventory_id"))
    return {"id": row["id"], "name": row["name"], "document": _document(row["document"])}


async def _list_playbooks(principal: Principal, arguments: dict[str, Any], cache_dir: Path) -> Any:
    rows, total = await playbooks.list_playbooks(principal, 1, 100)
    query = str(arguments.get("query") or "").lower()
    keys = ("id", "name", "description", "source", "latest_version")
    items = [{k: r[k] for k in keys} for r in rows if query in r["name"].lower()]
    return {"total": total, "items": items[:LIST_SIZE]}


async def _get_playbook(principal: Principal, arguments: dict[str, Any], cache_dir: Path) -> Any:
    playbook_id = _uuid(arguments, "playbook_id")
    version = arguments.get("version")
    if isinstance(version, int) and version >= 1:
        row = await playbooks.get_version(principal, playbook_id, version)
        return {"playbook_id": playbook_id, "version": version, "content": row["content"]}
    row = await playbooks.get_playbook(principal, playbook_id)
    return {
        "playbook_id": playbook_id,
        "name": row["name"],
        "version": row["latest_version"],
        "content": row["content"],
    }


async def _list_runs(principal: Principal, arguments: dict[str, Any], cache_dir: Path) -> Any:
    status = arguments.get("status") if isinstance(arguments.get("status"), str) else None
    rows, total = await runs.list_runs(principal, 1, 10, status)
    keys = ("id", "status", "reason", "playbook_id", "version", "inventory_id", "host_stats", "created_at")
    return {"total": total, "items": [{k: row[k] for k in keys} for row in rows]}


async def _get_run(principal: Principal, arguments: dict[str, Any], cache_dir: Path) -> Any:
    return await failure_bundle(principal, _uuid(arguments, "run_id"))


async def _list_stacks(principal: Principal, arguments: dict[str, Any], cache_dir: Path) -> Any:
    query = str(arguments.get("query") or "") or None
    rows, total = await stacks.list_stacks(principal, 1, LIST_SIZE, search=query)
    keys = ("id", "name", "description", "category", "targets", "source")
    return {"total": total, "items": [{k: row[k] for k in keys} for row in rows]}


async def _get_stack(principal: Principal, arguments: dict[str, Any], cache_dir: Path) -> Any:
    row = await stacks.get_stack(principal, _uuid(arguments, "stack_id"))
    return {"id": row["id"], "name": row["name"], "version": row["version"], "definition": row["definition"]}


async def _list_modules(principal: Principal, arguments: dict[str, Any], cache_dir: Path) -> Any:
    return {"modules": await checks.list_modules(str(arguments.get("query") or ""), 40, cache_dir=cache_dir)}


async def _module_doc(principal: Principal, arguments: dict[str, Any], cache_dir: Path) -> Any:
    name = str(arguments.get("name") or "")
    doc = await checks.module_doc(name, cache_dir=cache_dir)
    if doc is None:
        raise ToolError(f"no installed module is called {name!r}; try list_modules")
    return doc


HANDLERS = {
    "list_inventories": _list_inventories,
    "get_inventory": _get_inventory,
    "list_playbooks": _list_playbooks,
    "get_playbook": _get_playbook,
    "list_runs": _list_runs,
    "get_run": _get_run,
    "list_stacks": _list_stacks,
    "get_stack": _get_stack,
    "list_modules": _list_modules,
    "module_doc": _module_doc,
}


def _text(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= MAX_RESULT else text[: MAX_RESULT - 40] + '… (cut: the result was too long)"'


async def call_tool(principal: Principal, name: str, arguments: dict[str, Any], cache_dir: Path) -> tuple[str, bool]:
    """The tool's result as JSON text, and whether it succeeded (a failure is text for the model too)."""
    handler = HANDLERS.get(name)
    if handler is None:
        return _text({"error": f"there is no tool {name!r}; the tools are: {', '.join(sorted(HANDLERS))}"}), False
    try:
        return _text(await handler(principal, arguments, cache_dir)), True
    except (ToolError, WindFlowError) as exc:
        return _text({"error": str(exc)}), False


def summary(result: str, ok: bool) -> str:
    """A short line for the user about what a tool returned."""
    if not ok:
        return str(json.loads(result).get("error", "failed"))[:200]
    try:
        value = json.loads(result)
    except json.JSONDecodeError:
        return f"{len(result)} characters"
    if isinstance(value, dict):
        if "items" in value:
            return f"{len(value['items'])} of {value.get('total', len(value['items']))}"
        if "failures" in value:
            return f"run {value.get('status')}, {len(value['failures'])} failure(s)"
        if "modules" in value:
            return f"{len(value['modules'])} module(s)"
        if "name" in value:
            return str(value["name"])[:200]
    return f"{len(result)} characters"


async def render_context(principal: Principal, context: dict[str, Any], cache_dir: Path) -> str:
    """For a model without tools: the context objects themselves, as the tools would have shown them."""
    parts = []
    calls = (
        ("inventory_id", "get_inventory", "Inventory"),
        ("playbook_id", "get_playbook", "Playbook"),
        ("run_id", "get_run", "Run"),
        ("stack_id", "get_stack", "Stack"),
    )
    for key, tool, title in calls:
        if context.get(key):
            text, ok = await call_tool(principal, tool, {key: context[key]}, cache_dir)
            if ok:
                parts.append(f"{title} ({key} {context[key]}):\n{text}")
    return "\n\n".join(parts)
