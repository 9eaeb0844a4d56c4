"""Ansible's YAML inventory format, read the way its ``yaml`` inventory plugin reads it.

The text is composed into YAML nodes (libyaml) and walked, so that every problem names its line;
variable values are constructed with PyYAML's safe constructor, as a plain ``yaml.load`` would.
Where Ansible only warns and skips (a key other than ``hosts``/``vars``/``children``, a group that
is not a mapping), an import refuses: skipped text would be silently lost.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

import yaml

from server.inventories.ansible_vars import level_vars
from server.inventories.spec import Document, Group

if TYPE_CHECKING:
    from server.inventories.ansible_text import Builder

STR = "tag:yaml.org,2002:str"
NULL = "tag:yaml.org,2002:null"
MAP = "tag:yaml.org,2002:map"
SECTIONS = ("vars", "children", "hosts")
SCALARS = (str, int, float, type(None), datetime.date)
Entry = tuple[str, yaml.Node, yaml.Node | None]


def read(content: str, builder: Builder) -> None:
    loader = yaml.CSafeLoader(content)
    try:
        root = loader.get_single_node()
        if root is not None:
            _Reader(loader, builder).inventory(root)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        builder.fail(_problem(exc), mark.line + 1 if mark else None)
    except yaml.YAMLError as exc:
        builder.fail(f"invalid YAML: {exc}")
    except RecursionError:
        builder.fail("groups or values nest too deeply")
    finally:
        loader.dispose()


def _problem(exc: yaml.MarkedYAMLError) -> str:
    problem = exc.problem or "invalid YAML"
    if "maximum nesting depth" in problem:  # PyYAML 6.0.3+ stops deep documents itself
        return "groups or values nest too deeply"
    if "'!vault'" in problem:
        return "encrypted values (!vault) cannot be imported; store the secret in a credential"
    if "could not determine a constructor" in problem:
        return f"unsupported YAML tag: {problem}"
    if exc.context and exc.context_mark and exc.problem_mark:
        return f"invalid YAML: {problem} ({exc.context} at line {exc.context_mark.line + 1})"
    return f"invalid YAML: {problem}"


class _Reader:
    def __init__(self, loader: yaml.CSafeLoader, builder: Builder) -> None:
        self.loader = loader
        self.builder = builder

    def inventory(self, node: yaml.Node) -> None:
        if _null(node) or (isinstance(node, yaml.MappingNode) and not node.value):
            return
        for name, key, value in self._entries(node, "the inventory (a mapping of groups)"):
            if name == "plugin" and value is not None and self._value(value, _line(key)):
                self.builder.fail("this is an inventory plugin's configuration, not an inventory", _line(key))
            self._group(name, value, _line(key))

    def _group(self, name: str, node: yaml.Node | None, line: int) -> None:
        self.builder.add_group(name, line)
        if node is None or _null(node):
            return
        for section, key, value in self._entries(node, f"group {name!r}"):
            if section not in SECTIONS:
                message = f"unexpected key {section!r} in group {name!r}: only hosts, vars and children"
                self.builder.fail(message, _line(key))
            if value is None or _null(value):
                continue
            if isinstance(value, yaml.ScalarNode) and value.tag == STR:  # `hosts: web1` is allowed
                entries: list[Entry] = [(value.value, value, None)]
            else:
                entries = self._entries(value, f"{section} of group {name!r}")
            for entry, entry_key, entry_value in entries:
                at = _line(entry_key)
                if section == "vars":
                    self.builder.set_group_var(name, entry, self._value(entry_value, at), at)
                elif section == "children":
                    self._group(entry, entry_value, at)
                    self.builder.add_child(name, entry, at)
                else:
                    self._hosts(name, entry, entry_key, entry_value)

    def _hosts(self, group: str, pattern: str, key: yaml.Node, node: yaml.Node | None) -> None:
        line = _line(key)
        names, port = self.builder.expand(pattern, line)
        variables: list[tuple[object, Any]] = []
        if isinstance(node, yaml.MappingNode):
            variables = [
                (name, self._value(value, line)) for name, _, value in self._entries(node, f"host {pattern!r}")
            ]
        elif node is not None and self._value(node, line):
            self.builder.fail(f"variables of host {pattern!r} must be a mapping", line)
        self.builder.add_hosts(names, port, group, variables, line)

    def _entries(self, node: yaml.Node, what: str) -> list[Entry]:
        """A mapping's string keys and value nodes; a repeated key keeps its place, the last value wins."""
        if not isinstance(node, yaml.MappingNode):
            self.builder.fail(f"{what} must be a mapping, not {_kind(node)}", _line(node))
        if node.tag != MAP:
            self.builder.fail(f"unsupported tag {node.tag!r} on {what}", _line(node))
        self.loader.flatten_mapping(node)  # merge keys (<<)
        entries: dict[str, Entry] = {}
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode) or key.tag != STR:
                self.builder.fail(f"key {_text(key)} in {what} must be a string (quote it)", _line(key))
            entries[key.value] = (key.value, key, value)
        return list(entries.values())

    def _value(self, node: yaml.Node | None, line: int) -> Any:
        if node is None:
            return None
        value = self.loader.construct_object(node, deep=True)
        try:
            supported = _supported(value)
        except RecursionError:
            supported = False
        if not supported:
            self.builder.fail(f"unsupported value {_text(node)} (strings, numbers, lists and mappings only)", line)
        return value


def _supported(value: Any) -> bool:
    if isinstance(value, SCALARS):
        return True
    if isinstance(value, list):
        return all(_supported(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(key, str | int | float) and _supported(item) for key, item in value.items())
    return False


def _null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == NULL


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _kind(node: yaml.Node) -> str:
    return "a list" if isinstance(node, yaml.SequenceNode) else f"{_text(node)}"


def _text(node: yaml.Node) -> str:
    if isinstance(node, yaml.ScalarNode):
        return repr(node.value)
    return "a list" if isinstance(node, yaml.SequenceNode) else "a mapping"


class _Dumper(yaml.CSafeDumper):  # type: ignore[misc,unused-ignore]
    def ignore_aliases(self, data: Any) -> bool:  # no &anchors: shared values are written out in full
        return True


def write(document: Document) -> str:
    """YAML that Ansible reads as ``document``: ``all`` with its vars, ungrouped hosts and groups.

    Groups nest under their parents; a group with several parents is written in full under the
    first and as an empty entry under the others, and each host's variables are written where the
    host first appears, so that Ansible reads every variable exactly once.
    """
    groups = {group.name: group for group in document.groups}
    nested = {child for group in document.groups for child in group.children}
    grouped = {name for group in document.groups for name in group.hosts}
    host_vars = {host.name: level_vars(host) for host in document.hosts}
    written_hosts: set[str] = set()
    written_groups: set[str] = set()

    def host_entry(name: str) -> dict[str, Any]:
        if name in written_hosts:
            return {}
        written_hosts.add(name)
        return host_vars.get(name, {})

    def body(group: Group) -> dict[str, Any]:
        if group.name in written_groups:
            return {}
        written_groups.add(group.name)
        return _level(
            level_vars(group),
            {name: host_entry(name) for name in group.hosts},
            {name: body(groups[name]) for name in group.children},
        )

    ungrouped = {host.name: host_entry(host.name) for host in document.hosts if host.name not in grouped}
    top = {group.name: body(group) for group in document.groups if group.name not in nested}
    inventory = {"all": _level(level_vars(document), ungrouped, top)}
    text: str = yaml.dump(
        inventory, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1 << 16
    )
    return text


def _level(variables: dict[str, Any], hosts: dict[str, Any], children: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if variables:
        out["vars"] = variables
    if hosts:
        out["hosts"] = hosts
    if children:
        out["children"] = children
    return out
