"""Ansible inventory text (YAML or INI) to and from the inventory document.

Reading follows Ansible's own ``yaml`` and ``ini`` inventory plugins (host ranges, ``host:port``,
a host in several groups merging its variables in reading order, children declared before their
group) without running Ansible's inventory manager, which is far too slow for large inventories.
Host patterns are expanded by a copy of Ansible's ``parse_address`` and ``expand_hostname_range``.

Everything read stays a plain variable: the export is then exactly the original. Only a host's
``kind`` is set, when its own ``ansible_connection`` implies one.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn, cast

from server.errors import FieldError, ValidationFailed
from server.inventories import ansible_ini, ansible_yaml, spec
from server.inventories.ansible_vars import kind_of_vars

Format = Literal["yaml", "ini"]
IMPLICIT = ("all", "ungrouped")
HOST_NAME = re.compile(r"[A-Za-z0-9_.:@%-]{1,255}")
GROUP_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,99}")
MAX_PROBLEMS = 50
MAX_HOSTS = 100_000  # ranges make a few bytes stand for millions of hosts: refuse before building them


def parse(content: str, fmt: Format, field: str = "body.content") -> spec.Document:
    """Read an Ansible inventory; every problem is a :class:`ValidationFailed` on ``field``."""
    builder = Builder(field)
    if fmt == "yaml":
        ansible_yaml.read(content, builder)
    else:
        ansible_ini.read(content, builder)
    document = builder.document()
    spec.validate(document, prefix=field)
    return document


def dump(document: spec.Document, fmt: Format) -> str:
    """Ansible inventory text for ``document``: the same bytes for the same document.

    Every level's typed fields are written as the Ansible variables they stand for. Ansible reads
    back the same hosts, groups and variables, except in these cases:

    * INI: dates and times (from YAML) become ISO strings; non-finite floats (``.inf``, ``.nan``)
      become the strings ``inf``/``nan``, and a list or mapping holding one becomes a string as a
      whole; a host named ``---`` is refused by Ansible's INI reader.
    * Both: a host whose name has the form ``name:port`` (``db:5432``) reads back as ``name``
      with ``ansible_port``; a group that was also listed under ``all: children:`` while having
      other parents loses that (variable-neutral) ``all`` edge, which the document cannot hold.
    """
    return ansible_yaml.write(document) if fmt == "yaml" else ansible_ini.write(document)


@dataclass
class _Group:
    vars: dict[str, Any] = field(default_factory=dict)
    hosts: dict[str, None] = field(default_factory=dict)  # ordered sets
    children: dict[str, None] = field(default_factory=dict)


class Builder:
    """What Ansible's ``InventoryData`` does while a plugin reads, for the document's shape.

    ``all`` is the document itself; ``ungrouped`` is implicit (hosts in no group), so neither is
    stored as a group. Errors carry the line being read.
    """

    def __init__(self, field: str) -> None:
        self.field = field
        self.vars: dict[str, Any] = {}
        self.hosts: dict[str, dict[str, Any]] = {}
        self.groups: dict[str, _Group] = {}
        self.problems: list[FieldError] = []
        self._checked_vars: set[str] = set()
        self._edge_lines: dict[tuple[str, str], int] = {}

    def fail(self, message: str, line: int | None = None) -> NoReturn:
        text = f"line {line}: {message}" if line else message
        raise ValidationFailed(f"{self.field}: {text}", [FieldError(self.field, text)])

    def has_group(self, name: str) -> bool:
        return name in self.groups or name in IMPLICIT

    def add_group(self, name: object, line: int) -> str:
        if not isinstance(name, str):
            self.fail(f"group name {name!r} must be a string", line)
        if name not in self.groups and name not in IMPLICIT:
            if not GROUP_NAME.fullmatch(name):
                self.fail(
                    f"invalid group name {name!r}: a letter or _, then letters, digits, _ or - (at most 100)", line
                )
            self.groups[name] = _Group()
        return name

    def add_child(self, parent: str, child: str, line: int) -> None:
        if child in IMPLICIT:
            self.fail(f"{child!r} cannot be a child of group {parent!r}", line)
        if parent == "ungrouped":
            self.fail(f"'ungrouped' cannot have children (found {child!r})", line)
        if parent == child:
            self.fail(f"group {parent!r} cannot contain itself", line)
        if parent != "all":
            self.groups[parent].children[child] = None
            self._edge_lines.setdefault((parent, child), line)

    def set_group_var(self, group: str, key: object, value: Any, line: int) -> None:
        name = self._var_name(key, f"group {group!r}", line)
        if group == "all":
            self.vars[name] = value
        elif group == "ungrouped":
            self.fail("variables of 'ungrouped' cannot be kept; set them on its hosts or on 'all'", line)
        else:
            self.groups[group].vars[name] = value

    def add_hosts(
        self, names: list[str], port: int | None, group: str, variables: Iterable[tuple[object, Any]], line: int
    ) -> None:
        """Ansible's ``_populate_host_vars``: the port counts only where a host first appears."""
        pairs = [(self._var_name(key, f"host {names[0]!r}", line), value) for key, value in variables]
        members = self.groups[group].hosts if group not in IMPLICIT else None
        for name in names:
            host_vars = self.hosts.get(name)
            if host_vars is None:
                if len(self.hosts) >= MAX_HOSTS:
                    self.fail(f"more than {MAX_HOSTS} hosts", line)
                if not HOST_NAME.fullmatch(name):
                    self.fail(f"invalid host name {name!r}: letters, digits and _ . : @ % - (at most 255)", line)
                host_vars = self.hosts[name] = {"ansible_port": port} if port else {}
            if members is not None:
                members[name] = None
            for key, value in pairs:
                host_vars[key] = value

    def expand(self, pattern: object, line: int) -> tuple[list[str], int | None]:
        if not isinstance(pattern, str):
            self.fail(f"host pattern {pattern!r} must be a string (quote numbers)", line)
        try:
            return expand_host_pattern(pattern)
        except ValueError as exc:
            self.fail(f"host pattern {pattern!r}: {exc}", line)

    def _var_name(self, key: object, owner: str, line: int) -> str:
        if not isinstance(key, str):
            self.fail(f"variable name {key!r} of {owner} must be a string", line)
        if key not in self._checked_vars:
            self._checked_vars.add(key)
            problem = None
            if not spec.VAR_NAME.fullmatch(key):
                problem = "is not a valid name: letters, digits and _, not starting with a digit"
            elif spec.SECRET_VAR.search(key):
                problem = "looks like a secret; store it in a credential (encrypted, write-only) and reference it"
            if problem and len(self.problems) < MAX_PROBLEMS:
                self.problems.append(FieldError(self.field, f"line {line}: variable {key!r} of {owner} {problem}"))
        return key

    def document(self) -> spec.Document:
        if self.problems:
            first = self.problems[0]
            raise ValidationFailed(f"{first.field}: {first.message}", self.problems)
        hosts = [
            spec.Host(name=name, vars=variables, kind=cast(spec.Kind | None, kind_of_vars(variables)))
            for name, variables in self.hosts.items()
        ]
        groups = [
            spec.Group(name=name, vars=group.vars, hosts=list(group.hosts), children=list(group.children))
            for name, group in self.groups.items()
        ]
        if cycle := spec.find_cycle(groups):
            self.fail("groups nest in a cycle: " + " → ".join(cycle), self._edge_lines[cycle[-2], cycle[-1]])
        return spec.Document(vars=self.vars, hosts=hosts, groups=groups)


# Ansible's parsing/utils/addresses.py patterns, compacted (same expressions, no verbose mode).
_NUMERIC_RANGE = r"\[(?:[0-9]+:[0-9]+)(?::[0-9]+)?\]"
_HEX_RANGE = r"\[(?:[0-9a-f]+:[0-9a-f]+)(?::[0-9]+)?\]"
_ALNUM_RANGE = r"\[(?:[a-z]:[a-z]|[0-9]+:[0-9]+)(?::[0-9]+)?\]"
_V6 = rf"(?:[0-9a-f]{{1,4}}|{_HEX_RANGE})"
_V4 = rf"(?:[01]?[0-9]{{1,2}}|2[0-4][0-9]|25[0-5]|{_NUMERIC_RANGE})"
_LABEL = rf"(?:[\w]|{_ALNUM_RANGE})(?:[\w_-]|{_ALNUM_RANGE})*(?<![_-])"
_PORT_PATTERNS = (
    re.compile(r"^\[(.+)\]:([0-9]+)$"),
    re.compile(r"^((?:[^:\[\]]|\[[^\]]*\])*):([0-9]+)$"),
)
_ADDRESS_PATTERNS = (
    re.compile(rf"^(?:{_V4}\.){{3}}{_V4}$", re.I),
    re.compile(
        f"^((?:{_V6}:){{7}}{_V6}|(?:{_V6}:){{1,6}}:|(?:{_V6}:)(?::{_V6}){{1,6}}|(?:{_V6}:){{2}}(?::{_V6}){{1,5}}|"
        f"(?:{_V6}:){{3}}(?::{_V6}){{1,4}}|(?:{_V6}:){{4}}(?::{_V6}){{1,3}}|(?:{_V6}:){{5}}(?::{_V6}){{1,2}}|"
        f"(?:{_V6}:){{6}}(?::{_V6})|:(?::{_V6}){{1,6}}|{_V6}?::|(?:0:){{6}}(?:{_V6}\\.){{3}}{_V6}|"
        f"::(?:ffff:)?(?:{_V6}\\.){{3}}{_V6}|(?:0:){{5}}ffff:(?:{_V6}\\.){{3}}{_V6})$",
        re.I,
    ),
    re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$", re.I),
)


def parse_address(address: str) -> tuple[str, int | None]:
    """Ansible's ``parse_address(allow_ranges=True)``: ``(host, port)``, ValueError if no host."""
    port = None
    for pattern in _PORT_PATTERNS:  # both apply in turn, as in Ansible (``[a:1]:2`` → ``a``, 1)
        if m := pattern.match(address):
            address, port = m.group(1), int(m.group(2))
    if not any(pattern.match(address) for pattern in _ADDRESS_PATTERNS):
        raise ValueError(f"not a valid network hostname: {address}")
    return address, port


def expand_host_pattern(pattern: str) -> tuple[list[str], int | None]:
    """Ansible's ``_expand_hostpattern``: the host names and the port a pattern stands for."""
    try:
        host, port = parse_address(pattern)
    except ValueError:
        host, port = pattern, None
    return (expand_hostname_range(host) if "[" in host else [host]), port


def expand_hostname_range(line: str) -> list[str]:
    """Ansible's ``expand_hostname_range``: ``web[01:03]`` → web01, web02, web03 (``[a:c]`` too)."""
    try:
        head, bounds_text, tail = line.replace("[", "|", 1).replace("]", "|", 1).split("|")
    except ValueError:
        raise ValueError("unbalanced [ ] in host range") from None
    bounds = bounds_text.split(":")
    if len(bounds) not in (2, 3):
        raise ValueError("host range must be begin:end or begin:end:step")
    begin, end = bounds[0] or "0", bounds[1]
    step = int(bounds[2]) if len(bounds) == 3 else 1
    if not end:
        raise ValueError("host range must specify end value")
    width = len(begin) if begin[0] == "0" and len(begin) > 1 else 0
    if width and width != len(end):
        raise ValueError("host range must specify equal-length begin and end formats")
    sequence: Iterable[str | int]
    try:
        first, last = string.ascii_letters.index(begin), string.ascii_letters.index(end)
    except ValueError:
        sequence = range(int(begin), int(end) + 1, step)
    else:
        if first > last:
            raise ValueError("host range must have begin <= end")
        sequence = string.ascii_letters[first : last + 1 : step]
    names: list[str] = []
    for item in sequence:
        name = f"{head}{str(item).zfill(width) if width else item}{tail}"
        names.extend(expand_hostname_range(name) if "[" in name else [name])
        if len(names) > MAX_HOSTS:
            raise ValueError(f"host range stands for more than {MAX_HOSTS} hosts")
    return names
