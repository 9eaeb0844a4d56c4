"""A playbook as data that remembers its lines, and the walk over its tasks.

Every mapping loads as a :class:`Node`: a dict that knows the lines it spans and the line of each
key, so a finding can say "line 12". Ansible's own tags (``!vault``, ``!unsafe``) load as
:class:`Tagged` strings: a vaulted value is not a literal secret. The walk yields every task of
every play (pre_tasks, tasks, post_tasks, handlers and the tasks nested in block/rescue/always)
with the words that point a person at it: its name, "task 3 of play 1" and its line.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import yaml

from server.playbooks.validation import IMPORT_KEYS

TASK_KEYWORDS = frozenset(
    {
        "action",
        "always",
        "any_errors_fatal",
        "args",
        "async",
        "become",
        "become_exe",
        "become_flags",
        "become_method",
        "become_user",
        "block",
        "changed_when",
        "check_mode",
        "collections",
        "connection",
        "debugger",
        "delay",
        "delegate_facts",
        "delegate_to",
        "diff",
        "environment",
        "failed_when",
        "ignore_errors",
        "ignore_unreachable",
        "listen",
        "local_action",
        "loop",
        "loop_control",
        "module_defaults",
        "name",
        "no_log",
        "notify",
        "poll",
        "port",
        "register",
        "remote_user",
        "rescue",
        "retries",
        "run_once",
        "tags",
        "throttle",
        "timeout",
        "until",
        "vars",
        "when",
    }
)
BLOCK_PARTS = ("block", "rescue", "always")
SECTIONS = (("pre_tasks", "pre-task"), ("tasks", "task"), ("post_tasks", "post-task"), ("handlers", "handler"))
TRUE_WORDS = frozenset({"true", "yes", "on", "1", "y"})


class Node(dict[str, Any]):
    """A YAML mapping with the lines it spans (counted from 1) and the line of each key."""

    line: int = 0
    end_line: int = 0
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line) if hasattr(self, "key_lines") else self.line


class Tagged(str):
    """A scalar with an Ansible tag such as ``!vault`` or ``!unsafe``."""

    tag: str = ""


class _Loader(yaml.CSafeLoader):
    """The C safe parser; mappings become :class:`Node`, Ansible's tags :class:`Tagged`."""


def _mapping(loader: _Loader, node: yaml.MappingNode) -> Iterator[Node]:
    data = Node()
    data.line = node.start_mark.line + 1
    end = node.end_mark
    data.end_line = end.line if end.column == 0 and end.line > node.start_mark.line else end.line + 1
    data.key_lines = {}
    yield data
    data.update(cast(dict[str, Any], loader.construct_mapping(node)))
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode):
            data.key_lines.setdefault(str(key_node.value), key_node.start_mark.line + 1)


def _tagged(loader: _Loader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if not isinstance(node, yaml.ScalarNode):
        return None
    value = Tagged(loader.construct_scalar(node))
    value.tag = f"!{suffix}"
    return value


_Loader.add_constructor("tag:yaml.org,2002:map", _mapping)
_Loader.add_multi_constructor("!", _tagged)


def load(content: str) -> Any:
    """The YAML as data with lines; raises yaml.YAMLError as PyYAML does."""
    return yaml.load(content, Loader=_Loader)  # noqa: S506 - a safe loader (CSafeLoader) with Ansible's tags as text


def is_template(value: Any) -> bool:
    """A value Ansible renders (a variable, an expression), not a literal."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def is_vaulted(value: Any) -> bool:
    return isinstance(value, Tagged) and value.tag == "!vault"


def truthy(value: Any) -> bool:
    """What Ansible takes for true; an expression counts (it may well be)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    return isinstance(value, str) and (value.strip().lower() in TRUE_WORDS or is_template(value))


def line_of(value: Any) -> int | None:
    return value.line if isinstance(value, Node) else None


def merged(*mappings: Mapping[str, Any]) -> Node:
    """One mapping of several (later ones win), keeping the line of each key where known."""
    out = Node()
    out.key_lines = {}
    for mapping in mappings:
        out.update(mapping)
        if isinstance(mapping, Node):
            if not out.line:
                out.line, out.end_line = mapping.line, mapping.end_line
            out.key_lines.update(getattr(mapping, "key_lines", {}))
    return out


@dataclass(frozen=True)
class Task:
    """One task (or a block, ``is_block``) and what its enclosing blocks and play give it."""

    data: Mapping[str, Any]
    play: int
    where: str  # "task 3 of play 1", "task 1 in the block of task 2 of play 1"
    no_log: bool = False  # set here, on an enclosing block or on the play
    module_defaults: bool = False  # the play or an enclosing block sets module_defaults
    is_block: bool = False

    @property
    def name(self) -> str:
        name = self.data.get("name")
        return name.strip() if isinstance(name, str) else ""

    @property
    def line(self) -> int | None:
        return line_of(self.data)

    @property
    def title(self) -> str:
        """Its name when it has one (``task 'Install nginx'``), else where it sits."""
        return f"task '{self.name}'" if self.name else self.where

    @property
    def label(self) -> str:
        """How a message names the task: its name, where it sits and its line."""
        where = f"{self.where}, line {self.line}" if self.line else self.where
        return f"task '{self.name}' ({where})" if self.name else where


@dataclass
class Action:
    """The module a task calls and its arguments, as written (``k=v`` text is not split here)."""

    module: str | None
    args: Mapping[str, Any] = field(default_factory=dict)
    text: str | None = None  # string arguments: free-form text or ``k=v`` pairs
    templated: bool = False  # the arguments are one expression, known only when the task runs
    problem: str | None = None


def plays(data: Any) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """Each play with its number (from 1), imports of other playbooks left out."""
    if not isinstance(data, list):
        return
    for number, play in enumerate(data, start=1):
        if isinstance(play, Mapping) and not any(key in play for key in IMPORT_KEYS):
            yield number, play


def tasks(data: Any, *, blocks: bool = False) -> Iterator[Task]:
    """Every task of every play, nested ones included; ``blocks`` also yields the blocks themselves."""
    for number, play in plays(data):
        no_log = truthy(play.get("no_log"))
        defaults = bool(play.get("module_defaults"))
        for section, noun in SECTIONS:
            items = play.get(section)
            if isinstance(items, list):
                yield from _walk(items, noun, f"of play {number}", number, no_log, defaults, blocks)


def _walk(
    items: list[Any], noun: str, parent: str, play: int, no_log: bool, defaults: bool, blocks: bool
) -> Iterator[Task]:
    for index, item in enumerate(items, start=1):
        if not isinstance(item, Mapping):
            continue
        where = f"{noun} {index} {parent}"
        quiet = no_log or truthy(item.get("no_log"))
        scoped = defaults or bool(item.get("module_defaults"))
        if any(part in item for part in BLOCK_PARTS):
            if blocks:
                yield Task(item, play, where, quiet, scoped, is_block=True)
            for part in BLOCK_PARTS:
                nested = item.get(part)
                if isinstance(nested, list):
                    yield from _walk(nested, "task", f"in the {part} of {where}", play, quiet, scoped, blocks)
            continue
        yield Task(item, play, where, quiet, scoped)


def action_of(task: Mapping[str, Any]) -> Action:
    """Which module ``task`` calls: the one key that is not a keyword, or ``action``/``local_action``."""
    candidates = [k for k in task if isinstance(k, str) and k not in TASK_KEYWORDS and not k.startswith("with_")]
    written = [key for key in ("action", "local_action") if key in task]
    if len(candidates) + len(written) > 1:
        names = ", ".join(f"`{key}`" for key in [*written, *candidates])
        return Action(None, problem=f"calls more than one module ({names}); a task calls exactly one")
    if not candidates and not written:
        return Action(None, problem="calls no module; give it one, such as ansible.builtin.debug")
    if candidates:
        action = _arguments(candidates[0], task[candidates[0]])
    else:
        action = _written_action(task[written[0]], written[0])
    extra = task.get("args")
    if extra is not None and action.problem is None:
        if isinstance(extra, Mapping):
            action.args = merged(action.args, extra)
        elif is_template(extra):
            action.templated = True
        else:
            action.problem = "`args` must be a mapping of the module's arguments"
    return action


def _arguments(module: str, value: Any) -> Action:
    if value is None:
        return Action(module)
    if isinstance(value, Mapping):
        return Action(module, args=merged(value))
    if isinstance(value, str):
        stripped = value.strip()
        lone = stripped.startswith("{{") and stripped.endswith("}}") and stripped.count("{{") == 1
        return Action(module, text=value, templated=lone)
    if isinstance(value, bool | int | float):
        return Action(module, text=str(value))
    return Action(module, problem=f"the arguments of `{module}` must be a mapping or text, not a list")


def _written_action(value: Any, keyword: str) -> Action:
    """``action: apt name=x`` or ``action: {module: apt, name: x}``."""
    if isinstance(value, Mapping):
        module = value.get("module")
        if not isinstance(module, str) or not module.strip():
            return Action(None, problem=f"`{keyword}` as a mapping needs `module:` naming the module")
        return Action(module.strip(), args=merged({k: v for k, v in value.items() if k != "module"}))
    if isinstance(value, str) and value.strip():
        module, _, rest = value.strip().partition(" ")
        return _arguments(module, rest.strip() or None)
    return Action(None, problem=f"`{keyword}` must name a module")


def task_at(data: Any, line: int) -> Task | None:
    """The innermost task whose lines hold ``line``."""
    best: tuple[int, Task] | None = None
    for task in tasks(data, blocks=True):
        node = task.data
        if isinstance(node, Node) and node.line <= line <= node.end_line:
            span = node.end_line - node.line
            if best is None or span <= best[0]:
                best = (span, task)
    return best[1] if best else None
