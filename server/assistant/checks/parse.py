"""The parse stage: the text is YAML, a list of plays, each with ``hosts`` or ``import_playbook``.

A reply cut off at the model's token limit never passes, even when what arrived happens to load:
the end of the playbook is missing, and nobody can tell what it would have said.
"""

from __future__ import annotations

import re
from typing import Any

import anyio
import yaml

from server.assistant.checks import document
from server.assistant.evidence import Evidence, timed
from server.errors import ValidationFailed
from server.playbooks.validation import check_structure

TRUNCATED = (
    "truncated: the reply was cut off at the model's token limit, so the playbook is incomplete; "
    "ask for a shorter playbook (fewer tasks) or for it in parts"
)
_LINE = re.compile(r"^line (\d+): ")


def _parse(content: str) -> tuple[Evidence, Any]:
    with timed() as timer:
        try:
            check_structure(content, "content")
            data = document.load(content)
        except ValidationFailed as exc:
            message = exc.errors[0].message if exc.errors else exc.detail
            found = _LINE.match(message)
            extra = {"line": int(found[1])} if found else {}
            return Evidence("parse", "failed", _advice(message), timer.ms, extra), None
        except (yaml.YAMLError, RecursionError) as exc:  # the checker above accepts what this loader does
            return Evidence("parse", "failed", f"invalid YAML: {exc}", timer.ms), None
        count = sum(1 for _ in document.tasks(data))
        detail = f"{len(data)} play(s), {count} task(s)"
        return Evidence("parse", "passed", detail, timer.ms, {"plays": len(data), "tasks": count}), data


def _advice(message: str) -> str:
    if "invalid YAML" in message:
        return f"{message}; fix the YAML there (indentation, a missing colon, an unquoted `: ` or `{{{{`)"
    if message.startswith("play "):
        return f"{message}; each play is a mapping with `hosts` and its tasks (or `import_playbook`)"
    return message


async def parse_playbook(content: str, *, truncated: bool = False) -> tuple[Evidence, Any]:
    """The parse evidence and the playbook as data with lines (None when it failed)."""
    if truncated:
        return Evidence("parse", "failed", TRUNCATED, 0, {"truncated": True}), None
    return await anyio.to_thread.run_sync(_parse, content)
