"""Secret values → ``********`` in what a run prints, as CI systems mask their registered secrets.

A task may print a credential on purpose (``debug: var=ansible_password``) and a failing module
may echo its arguments; neither must reach a stored event, the stdout or the live stream. The
:class:`Masker` knows every secret value of the credentials a run uses, and the forms in which
Ansible's output shows them: as they are, escaped inside JSON strings (a key's newlines as
``\\n``), and, for multi-line values, line by line (a YAML callback prints a key as a block).

Values shorter than :data:`MIN_LENGTH` are not masked: a password ``abc`` would turn every
``abc`` of the output into stars and tell the reader which letters it is made of. Lines of a
multi-line value count from :data:`MIN_LINE`, so a kubeconfig masks its ``apiVersion: v1`` line
too (harmless) but not its ``users:``.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable
from typing import Any

from server.credentials.service import Revealed

MASK = "********"
MIN_LENGTH = 4
MIN_LINE = 8


def secret_values(revealed: Iterable[Revealed]) -> list[str]:
    """Every secret field of each credential; a ``stack_secrets`` credential gives each of its values."""
    values: list[str] = []
    for credential in revealed:
        for name, secret in credential.secret.items():
            if credential.kind == "stack_secrets" and name == "values":
                values += _stack_values(secret)
            else:
                values.append(secret)
    return values


def _stack_values(document: str) -> list[str]:
    try:
        parsed = json.loads(document)
    except ValueError:
        return [document]
    return list(_leaves(parsed))


def _leaves(value: Any) -> Iterable[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    elif isinstance(value, str):
        yield value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        # ``true`` and ``null`` would mask every ``true`` and ``null`` of the output.
        yield str(value)


def forms(value: str) -> set[str]:
    """The value and the shapes Ansible's output gives it; empty when it is too short to mask."""
    if len(value.strip()) < MIN_LENGTH:
        return set()
    found: set[str] = set()
    for whole in {value, value.strip()}:  # ``lookup('file')`` and many modules strip the last newline
        escaped = json.dumps(whole)[1:-1]
        found |= {whole, escaped, json.dumps(whole, ensure_ascii=False)[1:-1], json.dumps(escaped)[1:-1]}
    if "\n" in value or "\r" in value:
        found |= {line.strip() for line in value.splitlines() if len(line.strip()) >= MIN_LINE}
    return {form for form in found if len(form) >= MIN_LENGTH}


class Masker:
    """Replaces known secret values with ``mask``; falsy, and free to call, when it knows none.

    Every occurrence of every form is covered, overlapping ones included, and the union of them is
    replaced: a value inside a longer one (a key's line inside the key) leaves no piece behind.
    ``str.find`` per form beats one regular-expression alternation several times over (Python's
    ``re`` tries each alternative at each position; ``find`` is a C loop). Most strings hold no
    secret at all: that costs one ``find`` per form no longer than the string.
    """

    __slots__ = ("_forms", "_lengths", "_mask")

    def __init__(self, values: Iterable[str] = (), mask: str = MASK) -> None:
        self._mask = mask
        found: set[str] = set()
        for value in values:
            found |= forms(value)
        self._forms = tuple(sorted(found, key=lambda form: (-len(form), form)))
        self._lengths = [-len(form) for form in self._forms]  # ascending, for ``bisect``

    @classmethod
    def of(cls, revealed: Iterable[Revealed]) -> Masker:
        return cls(secret_values(revealed))

    def __bool__(self) -> bool:
        return bool(self._forms)

    def text(self, value: str) -> str:
        if not self._forms or not value:
            return value
        spans: list[tuple[int, int]] = []
        # Forms longer than the text cannot be in it: a short string (a word, a line) skips them.
        for form in self._forms[bisect.bisect_left(self._lengths, -len(value)) :]:
            start = value.find(form)
            while start != -1:
                spans.append((start, start + len(form)))
                start = value.find(form, start + 1)
        if not spans:
            return value
        spans.sort()
        parts: list[str] = []
        done = 0
        for start, end in spans:
            if start > done or not parts:
                parts += [value[done:start], self._mask]
            done = max(done, end)
        parts.append(value[done:])
        return "".join(parts)

    def value(self, obj: Any) -> Any:
        """``obj`` with every string in it masked, keys included; other leaves as they are."""
        if not self._forms:
            return obj
        return self._walk(obj)

    def _walk(self, obj: Any) -> Any:
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, dict):
            return {(self.text(k) if isinstance(k, str) else k): self._walk(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self._walk(item) for item in obj]
        if isinstance(obj, tuple):
            return tuple(self._walk(item) for item in obj)
        return obj
