"""The inventory document: hosts, groups, variables and how to reach each target kind.

An inventory is stored and edited as one document (like an Ansible YAML inventory, with typed
connection fields next to the free-form ``vars``). A host or group may carry a ``kind``; a host
without one takes the kind of its groups, then the inventory's, then ``bare-metal``. The
connection fields a level may set depend on its kind (``FIELDS_BY_KIND``); credentials are
referenced by id and never embedded.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Annotated, Any, Literal

import msgspec

from server.errors import FieldError, ValidationFailed

Kind = Literal["docker", "kubernetes", "vm", "bare-metal"]
KINDS: tuple[str, ...] = ("docker", "kubernetes", "vm", "bare-metal")
DEFAULT_KIND = "bare-metal"

HostName = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=255,
        pattern=r"^[A-Za-z0-9_.:@%-]+$",
        description="Ansible inventory hostname (letters, digits, `_ . : @ % -`)",
    ),
]
GroupName = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$",
        description="group name (a letter or `_`, then letters, digits, `_` or `-`)",
    ),
]
Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
Short = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
Vars = dict[str, Any]

VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Variables that hold secrets belong in a credential, where they are encrypted and write-only.
SECRET_VAR = re.compile(
    r"(^|_)(pass|password|passwd|passphrase|secret|token|api_key|private_key|key_data)$", re.IGNORECASE
)

SSH_FIELDS = ("address", "port", "user", "connection", "become", "become_method", "become_user", "become_credential")
FIELDS_BY_KIND: dict[str, frozenset[str]] = {
    "bare-metal": frozenset({*SSH_FIELDS, "credential"}),
    "vm": frozenset({*SSH_FIELDS, "credential", "hypervisor"}),
    "docker": frozenset({"docker_host", "container", "credential"}),
    "kubernetes": frozenset({"credential", "context", "namespace"}),
}
CREDENTIAL_KINDS_BY_FIELD: dict[str, dict[str, frozenset[str]]] = {
    "credential": {
        "bare-metal": frozenset({"ssh_key", "password"}),
        "vm": frozenset({"ssh_key", "password"}),
        "docker": frozenset({"docker_tls"}),
        "kubernetes": frozenset({"kubeconfig"}),
    },
    "become_credential": {kind: frozenset({"become", "password"}) for kind in KINDS},
}
CONNECTION_FIELDS = (
    "address",
    "port",
    "user",
    "connection",
    "become",
    "become_method",
    "become_user",
    "credential",
    "become_credential",
    "hypervisor",
    "docker_host",
    "container",
    "context",
    "namespace",
)


class Level(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """What the inventory, a group and a host share: a kind, connection fields and variables."""

    kind: Kind | None = None
    # vm and bare-metal: SSH (or local) access
    address: Short | None = msgspec.field(default=None)
    port: Port | None = None
    user: Short | None = None
    connection: Literal["ssh", "paramiko", "local"] | None = None
    become: bool | None = None
    become_method: Literal["sudo", "su", "doas", "pbrun", "pfexec", "runas"] | None = None
    become_user: Short | None = None
    credential: uuid.UUID | None = None
    become_credential: uuid.UUID | None = None
    hypervisor: Short | None = None
    # docker: the engine (unix:// or tcp:// URL) and, optionally, a container to run in
    docker_host: Annotated[str, msgspec.Meta(pattern=r"^(unix|tcp|ssh|npipe)://\S+$")] | None = None
    container: Short | None = None
    # kubernetes: the kubeconfig credential's context and the default namespace
    context: Short | None = None
    namespace: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)] | None = None
    vars: Vars = msgspec.field(default_factory=dict)

    def connection_fields(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in CONNECTION_FIELDS if getattr(self, f) is not None}


class Host(Level, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    name: HostName


class Group(Level, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    name: GroupName
    hosts: list[HostName] = msgspec.field(default_factory=list)
    children: list[GroupName] = msgspec.field(default_factory=list)


class Document(Level, forbid_unknown_fields=True, omit_defaults=True):
    """The whole inventory. Its own fields and ``vars`` apply to every host (Ansible's ``all``)."""

    hosts: list[Host] = msgspec.field(default_factory=list)
    groups: list[Group] = msgspec.field(default_factory=list)


RESERVED_GROUPS = frozenset({"all", "ungrouped"})


def validate(document: Document, prefix: str = "body") -> None:
    """Raise :class:`ValidationFailed` with every structural problem, each with its field path."""
    errors = list(_problems(document, prefix))
    if errors:
        raise ValidationFailed(errors[0].field + ": " + errors[0].message, errors[:50])


def _problems(document: Document, prefix: str) -> Iterator[FieldError]:
    yield from _level_problems(document, prefix)
    hosts: dict[str, int] = {}
    for i, host in enumerate(document.hosts):
        path = f"{prefix}.hosts.{i}"
        if host.name in hosts:
            yield FieldError(f"{path}.name", f"duplicate host {host.name!r} (also hosts.{hosts[host.name]})")
        else:
            hosts[host.name] = i
        yield from _level_problems(host, path)
    groups: dict[str, int] = {}
    for i, group in enumerate(document.groups):
        path = f"{prefix}.groups.{i}"
        if group.name in RESERVED_GROUPS:
            yield FieldError(f"{path}.name", f"{group.name!r} is implicit; set inventory-level fields and vars instead")
        elif group.name in groups:
            yield FieldError(f"{path}.name", f"duplicate group {group.name!r} (also groups.{groups[group.name]})")
        else:
            groups[group.name] = i
        yield from _level_problems(group, path)
        seen: set[str] = set()
        for j, member in enumerate(group.hosts):
            if member.endswith("\n"):
                yield FieldError(f"{path}.hosts.{j}", "must not end with a newline")
            elif member not in hosts:
                yield FieldError(f"{path}.hosts.{j}", f"unknown host {member!r}; list it under hosts first")
            elif member in seen:
                yield FieldError(f"{path}.hosts.{j}", f"host {member!r} is listed twice")
            seen.add(member)
    for i, group in enumerate(document.groups):
        for j, child in enumerate(group.children):
            if child not in groups:
                yield FieldError(f"{prefix}.groups.{i}.children.{j}", f"unknown group {child!r}")
            elif child == group.name:
                yield FieldError(f"{prefix}.groups.{i}.children.{j}", "a group cannot contain itself")
    if cycle := find_cycle(document.groups):
        index = groups.get(cycle[0], 0)
        yield FieldError(f"{prefix}.groups.{index}.children", "groups nest in a cycle: " + " → ".join(cycle))
    yield from _kind_conflicts(document, prefix, hosts)


def _level_problems(level: Level, path: str) -> Iterator[FieldError]:
    # The schema's patterns end in ``$``, which also matches before a final newline.
    names = {"name": getattr(level, "name", None), **level.connection_fields()}
    for field, value in names.items():
        if isinstance(value, str) and value.endswith("\n"):
            yield FieldError(f"{path}.{field}", "must not end with a newline")
    if level.kind is not None:
        allowed = FIELDS_BY_KIND[level.kind]
        for name in level.connection_fields():
            if name not in allowed:
                yield FieldError(f"{path}.{name}", f"does not apply to kind {level.kind!r}")
    for key in level.vars:
        if not VAR_NAME.fullmatch(key):
            yield FieldError(
                f"{path}.vars.{key}", "a variable name is letters, digits and _, not starting with a digit"
            )
        elif SECRET_VAR.search(key):
            yield FieldError(
                f"{path}.vars.{key}",
                "looks like a secret; store it in a credential (encrypted, write-only) and reference it",
            )


def find_cycle(groups: list[Group]) -> list[str] | None:
    """A nesting cycle as ``[a, b, …, a]``, or None (iterative DFS: deep chains do not recurse)."""
    children = {g.name: [c for c in g.children if c != g.name] for g in groups}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for root in children:
        if state.get(root):
            continue
        path: list[str] = [root]
        stack: list[Iterator[str]] = [iter(children[root])]
        state[root] = 1
        while stack:
            child = next(stack[-1], None)
            if child is None:
                state[path.pop()] = 2
                stack.pop()
                continue
            if child not in children:
                continue
            if state.get(child) == 1:
                return [*path[path.index(child) :], child]
            if not state.get(child):
                state[child] = 1
                path.append(child)
                stack.append(iter(children[child]))
    return None


def group_parents(document: Document) -> dict[str, list[str]]:
    """For each host, the groups that list it directly."""
    parents: dict[str, list[str]] = {}
    for group in document.groups:
        for member in group.hosts:
            parents.setdefault(member, []).append(group.name)
    return parents


def ancestors(document: Document) -> dict[str, list[str]]:
    """For each group, itself and every group that contains it, nearest first."""
    parents: dict[str, list[str]] = {}
    for group in document.groups:
        for child in group.children:
            parents.setdefault(child, []).append(group.name)
    result: dict[str, list[str]] = {}
    for group in document.groups:
        order, queue, seen = [], [group.name], {group.name}
        while queue:
            name = queue.pop(0)
            order.append(name)
            for parent in parents.get(name, []):
                if parent not in seen:
                    seen.add(parent)
                    queue.append(parent)
        result[group.name] = order
    return result


def host_kinds(document: Document) -> dict[str, str]:
    """Each host's effective kind: its own, else its nearest groups', else the inventory's."""
    groups = {g.name: g for g in document.groups}
    lineage = ancestors(document)
    direct = group_parents(document)
    kinds: dict[str, str] = {}
    for host in document.hosts:
        kind = host.kind
        if kind is None:
            for parent in direct.get(host.name, []):
                kind = next((groups[g].kind for g in lineage[parent] if groups[g].kind), None)
                if kind:
                    break
        kinds[host.name] = kind or document.kind or DEFAULT_KIND
    return kinds


def _kind_conflicts(document: Document, prefix: str, hosts: dict[str, int]) -> Iterator[FieldError]:
    """A host without its own kind must not inherit two different kinds from its groups."""
    if not any(g.kind for g in document.groups) or find_cycle(document.groups):
        return
    groups = {g.name: g for g in document.groups}
    lineage = ancestors(document)
    for name, parents in group_parents(document).items():
        if name not in hosts or document.hosts[hosts[name]].kind:
            continue
        found = {
            kind: parent
            for parent in parents
            if parent in lineage
            for kind in [next((groups[g].kind for g in lineage[parent] if groups[g].kind), None)]
            if kind
        }
        if len(found) > 1:
            detail = ", ".join(f"{g} ({k})" for k, g in sorted(found.items()))
            yield FieldError(
                f"{prefix}.hosts.{hosts[name]}.kind",
                f"host {name!r} inherits different kinds from {detail}; set its kind",
            )


def credential_refs(document: Document, prefix: str = "body") -> Iterator[tuple[str, str, uuid.UUID, str | None]]:
    """Every credential reference: (field path, field name, credential id, kind of the level or None)."""
    levels: list[tuple[str, Level]] = [(prefix, document)]
    levels += [(f"{prefix}.groups.{i}", g) for i, g in enumerate(document.groups)]
    levels += [(f"{prefix}.hosts.{i}", h) for i, h in enumerate(document.hosts)]
    for path, level in levels:
        for field in ("credential", "become_credential"):
            value = getattr(level, field)
            if value is not None:
                yield f"{path}.{field}", field, value, level.kind


def allowed_credential_kinds(field: str, level_kind: str | None) -> frozenset[str]:
    by_kind = CREDENTIAL_KINDS_BY_FIELD[field]
    if level_kind is not None:
        return by_kind[level_kind]
    return frozenset().union(*by_kind.values())


def summary(document: Document) -> dict[str, int]:
    return {"host_count": len(document.hosts), "group_count": len(document.groups)}
