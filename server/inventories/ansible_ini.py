"""Ansible's INI inventory format, read the way ``ansible/plugins/inventory/ini.py`` reads it.

Values go through ``ast.literal_eval`` as in Ansible (``x=5`` is a number, ``x='5'`` a string) and
are written back so that the same evaluation gives the same value. INI cannot say everything YAML
can; ``write`` lists what it changes.
"""

from __future__ import annotations

import ast
import datetime
import re
import shlex
import warnings
from typing import TYPE_CHECKING, Any

from server.inventories.ansible_vars import level_vars
from server.inventories.spec import Document

if TYPE_CHECKING:
    from server.inventories.ansible_text import Builder

SECTION = re.compile(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:\#.*)?$")
GROUP_NAME_LINE = re.compile(r"^([^:\]\s]+)\s*(?:\#.*)?$")
SAFE_WORD = re.compile(r"[\w@%+=:,./-]+", re.ASCII)
SHLEX_SPECIAL = re.compile(r"[\'\"\\#]")
SHLEX_SPACE = re.compile(r"[ \t\r\n]+")
COMMENT = ("#", ";")


class _Pending:
    """A group named before it is declared: by ``[g:vars]`` or in another group's ``:children``."""

    def __init__(self, line: int, state: str, parents: list[str]) -> None:
        self.line, self.state, self.parents = line, state, parents


def read(content: str, builder: Builder) -> None:
    """Ansible's ``InventoryModule._parse``: one pass, lines before any section are ``ungrouped``."""
    pending: dict[str, _Pending] = {}
    group, state = "ungrouped", "hosts"
    for number, raw in enumerate(content.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in COMMENT:
            continue
        if m := SECTION.match(line):
            group, state = m.group(1), m.group(2) or "hosts"
            _section(builder, pending, group, state, number)
        elif line.startswith("[") and line.endswith("]"):
            builder.fail(
                f"invalid section {line!r}: no spaces, and only [name], [name:vars] or [name:children]", number
            )
        elif state == "hosts":
            _host_line(builder, line, group, number)
        elif state == "vars":
            key, sep, value = line.partition("=")
            if not sep:
                builder.fail(f"expected key=value in [{group}:vars], got {line!r}", number)
            builder.set_group_var(group, key.strip(), _value(builder, value.strip(), number), number)
        else:
            if not (m := GROUP_NAME_LINE.match(line)):
                builder.fail(f"expected a group name in [{group}:children], got {line!r}", number)
            child = m.group(1)
            if builder.has_group(child):
                builder.add_child(group, child, number)
            elif child in pending:
                pending[child].parents.append(group)
            else:
                pending[child] = _Pending(number, "children", [group])
    for name, declaration in pending.items():
        if declaration.state == "vars":
            builder.fail(f"section [{name}:vars] names a group that is never declared", declaration.line)
        builder.fail(
            f"section [{declaration.parents[-1]}:children] includes undeclared group {name!r}", declaration.line
        )


def _section(builder: Builder, pending: dict[str, _Pending], group: str, state: str, line: int) -> None:
    if state not in ("hosts", "children", "vars"):
        builder.fail(f"section [{group}:{state}] has unknown type {state!r} (use :vars or :children)", line)
    if not builder.has_group(group):
        # [g] or [g:children] declare a group; [g:vars] only if it is declared somewhere else too.
        if state == "vars" and group not in pending:
            pending[group] = _Pending(line, state, [])
        builder.add_group(group, line)
    if group in pending and state != "vars":
        if pending[group].state == "children":
            _add_pending_children(builder, pending, group, line)
        else:
            del pending[group]


def _add_pending_children(builder: Builder, pending: dict[str, _Pending], group: str, line: int) -> None:
    for parent in pending[group].parents:
        builder.add_child(parent, group, line)
        if parent in pending and pending[parent].state == "children":
            _add_pending_children(builder, pending, parent, line)
    del pending[group]


def _host_line(builder: Builder, line: str, group: str, number: int) -> None:
    """``alpha``, ``beta:2345 user=admin``, ``web[01:20] x='1'  # comment``."""
    try:
        tokens = split(line)
    except ValueError as exc:
        builder.fail(f"cannot read host line {line!r}: {exc}", number)
    if not tokens:
        builder.fail(f"expected a host, got {line!r}", number)
    names, port = builder.expand(tokens[0], number)
    if tokens[0].strip().endswith(":") and port is None:
        builder.fail(f"host pattern {tokens[0]!r} ends in ':' (reserved for a port)", number)
    if "---" in (name.strip() for name in names):
        builder.fail("host '---' looks like the start of a YAML document; is this file YAML?", number)
    variables: dict[str, Any] = {}
    for token in tokens[1:]:
        key, sep, value = token.partition("=")
        if not sep:
            builder.fail(f"expected key=value after the host, got {token!r}", number)
        variables[key] = _value(builder, value, number)
    builder.add_hosts(names, port, group, variables.items(), number)


def split(line: str) -> list[str]:
    """``shlex.split(line, comments=True)``, without its per-character loop when no quote, escape or ``#``."""
    if SHLEX_SPECIAL.search(line):
        return shlex.split(line, comments=True)
    return [token for token in SHLEX_SPACE.split(line) if token]


def _value(builder: Builder, text: str, line: int) -> Any:
    """Ansible's ``_parse_value``: a Python literal if it is one, else the text itself."""
    try:
        return _coerce(_literal_eval(text))
    except (ValueError, SyntaxError):
        return text
    except (TypeError, MemoryError, RecursionError) as exc:
        builder.fail(f"cannot read value {text!r}: {exc}", line)


def _literal_eval(text: str) -> Any:
    if "\\" not in text:
        return ast.literal_eval(text)
    with warnings.catch_warnings():  # invalid escapes warn, and Ansible keeps the value
        warnings.simplefilter("ignore", SyntaxWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        return ast.literal_eval(text)


def _coerce(value: Any) -> Any:
    """Ansible's ``_parse_recursive_coerce_types_and_tag``: tuples and sets become lists, and so on."""
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple | set | frozenset):
        return [_coerce(item) for item in value]
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str | int | float | bool) or key is None:
                raise TypeError(f"unsupported mapping key {key!r}")
        return {key: _coerce(item) for key, item in value.items()}
    if value is ...:
        return "..."
    if isinstance(value, complex):
        return str(value)
    if isinstance(value, bytes):
        return value.decode()
    return value


def write(document: Document) -> str:
    """INI text that Ansible reads as ``document``, each host's variables on its first line.

    Strings that would read as something else (``5``, ``True``, ``[1]``, padded or multi-line
    text) are written as Python literals (``'5'``), as are lists and mappings; what INI cannot
    represent at all is listed in ``ansible_text.dump``.
    """
    out: list[str] = []
    if all_vars := level_vars(document):
        out += ["[all:vars]", *_var_lines(all_vars), ""]
    host_vars = {host.name: level_vars(host) for host in document.hosts}
    grouped = {name for group in document.groups for name in group.hosts}
    written: set[str] = set()

    def host_line(name: str) -> str:
        if name in written:
            return name
        written.add(name)
        variables = host_vars.get(name, {})
        return " ".join([name, *(f"{key}={_word(_literal(value))}" for key, value in variables.items())])

    if ungrouped := [host.name for host in document.hosts if host.name not in grouped]:
        out += ["[ungrouped]", *map(host_line, ungrouped), ""]
    for group in document.groups:
        if group.hosts or not group.children:
            out += [f"[{group.name}]", *map(host_line, group.hosts), ""]
        if group.children:
            out += [f"[{group.name}:children]", *group.children, ""]
        if variables := level_vars(group):
            out += [f"[{group.name}:vars]", *_var_lines(variables), ""]
    return "\n".join(out[:-1]) + "\n" if out else ""


def _var_lines(variables: dict[str, Any]) -> list[str]:
    return [f"{key} = {_literal(value)}" for key, value in variables.items()]


def _literal(value: Any) -> str:
    """Text that ``_parse_value`` turns back into ``value``."""
    if isinstance(value, datetime.date):
        value = value.isoformat()
    if isinstance(value, str):
        return value if _reads_as_itself(value) else repr(value)
    return repr(_plain(value))


def _plain(value: Any) -> Any:
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _reads_as_itself(text: str) -> bool:
    if not text or not text.isprintable() or text != text.strip():
        return False
    try:
        _literal_eval(text)
    except (ValueError, SyntaxError):
        return True
    except Exception:  # anything else (TypeError, RecursionError…) fails in Ansible too
        return False
    return False


def _word(text: str) -> str:
    """One shell word for ``shlex.split`` (POSIX): bare, in single quotes, or in double quotes."""
    if SAFE_WORD.fullmatch(text):
        return text
    if "'" not in text:
        return f"'{text}'"
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
