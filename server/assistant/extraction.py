"""Find the playbooks and stack definitions in a model's reply: fenced, or written straight into prose.

A fenced block (```yaml, ```yml, ``` or ~~~) is a candidate; so, when the reply has no fence, is a run
of YAML-looking lines that starts a play list (``- hosts:``, ``- name:``, ``---``) or a stack
(``metadata:``, ``services:``). A candidate is kept when it looks like a playbook or a stack even if
its YAML does not load (the parse stage reports that, and the model repairs it). An unclosed fence at
the end of a reply cut off by the token limit is kept too, marked ``closed=False``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import yaml

Kind = Literal["playbook", "stack"]
YAML_LANGS = frozenset({"", "yaml", "yml", "ansible", "yaml+jinja", "jinja2"})
_FENCE = re.compile(r"^(?P<indent>[ \t]{0,3})(?P<fence>`{3,}|~{3,})[ \t]*(?P<lang>[\w+-]*)[^\n]*$", re.MULTILINE)
_PLAY_START = re.compile(r"^(---\s*$|- (name|hosts|import_playbook|ansible\.builtin\.import_playbook):)")
_STACK_START = re.compile(r"^(metadata|services|version|template|name):")
_YAML_LINE = re.compile(r"^([ \t]+\S|- |#|---|\.\.\.|[A-Za-z_][\w.-]*:(\s|$))")
_PLAYBOOK_HINT = re.compile(r"^\s*-?\s*(hosts|tasks|roles|import_playbook):", re.MULTILINE)
_STACK_HINT = re.compile(r"^(metadata|services|template):", re.MULTILINE)


@dataclass(frozen=True)
class Found:
    kind: Kind
    text: str
    closed: bool = True


class _Loader(yaml.CSafeLoader):
    """Ansible's tags (``!vault``, ``!unsafe``) load as plain data here."""


_Loader.add_multi_constructor("!", lambda loader, suffix, node: None)


def classify(text: str) -> Kind | None:
    """``playbook``, ``stack`` or None, from the YAML when it loads, else from its shape."""
    try:
        data: Any = yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader with Ansible's tags ignored
    except yaml.YAMLError:
        data = None
    except RecursionError:
        return None
    if isinstance(data, list):
        plays = [p for p in data if isinstance(p, dict)]
        if plays and all(
            ("hosts" in p or "import_playbook" in p or "ansible.builtin.import_playbook" in p) for p in plays
        ):
            return "playbook"
        return None
    if isinstance(data, dict):
        if "metadata" in data and "template" in data:
            return "stack"
        if isinstance(data.get("services"), dict):
            return "stack"
        return None
    if _PLAYBOOK_HINT.search(text) and re.search(r"^\s*-", text, re.MULTILINE):
        return "playbook"
    if _STACK_HINT.search(text):
        return "stack"
    return None


def _fenced(reply: str) -> tuple[list[tuple[str, str, bool]], bool]:
    """(lang, body, closed) of every fenced block; and whether the reply had a fence at all."""
    blocks = []
    position = 0
    any_fence = False
    while True:
        opening = _FENCE.search(reply, position)
        if opening is None:
            break
        any_fence = True
        fence = opening.group("fence")
        closer = re.compile(rf"^[ \t]{{0,3}}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$", re.MULTILINE)
        closing = closer.search(reply, opening.end())
        start = opening.end() + 1
        if closing is None:
            blocks.append((opening.group("lang").lower(), reply[start:], False))
            break
        blocks.append((opening.group("lang").lower(), reply[start : closing.start()], True))
        position = closing.end()
    return blocks, any_fence


def _in_prose(reply: str) -> list[str]:
    """Runs of YAML lines in a reply without fences, each starting like a play list or a stack."""
    found: list[str] = []
    lines = reply.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if not (_PLAY_START.match(line) or _STACK_START.match(line)):
            index += 1
            continue
        block = [line]
        index += 1
        while index < len(lines):
            current = lines[index]
            if current.strip() == "":
                following = next((lines[j] for j in range(index + 1, len(lines)) if lines[j].strip()), "")
                if not following or not _YAML_LINE.match(following) or not following.startswith((" ", "\t", "-")):
                    break
            elif not _YAML_LINE.match(current):
                break
            block.append(current)
            index += 1
        found.append("\n".join(block).strip("\n") + "\n")
    return found


def find_proposals(reply: str) -> list[Found]:
    blocks, any_fence = _fenced(reply)
    found = []
    for lang, body, closed in blocks:
        if lang not in YAML_LANGS or not body.strip():
            continue
        kind = classify(body)
        if kind is None and not closed and re.search(r"^\s*-\s", body, re.MULTILINE):
            kind = "playbook"  # cut off mid-playbook: the parse stage will say it was truncated
        if kind is not None:
            found.append(Found(kind, body if body.endswith("\n") else body + "\n", closed))
    if not any_fence:
        for text in _in_prose(reply):
            kind = classify(text)
            if kind is not None:
                found.append(Found(kind, text))
    return found
