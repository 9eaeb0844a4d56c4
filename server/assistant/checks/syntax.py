"""The syntax stage: ``ansible-playbook --syntax-check`` with the repository's roles.

It sees what only Ansible knows: a role that does not exist, a keyword in the wrong place, an
include whose file is missing.
"""

from __future__ import annotations

import re

from server.assistant.evidence import Evidence, timed
from server.errors import ValidationFailed
from server.playbooks.validation import syntax_check

_ORIGIN = re.compile(r"main\.yml:(\d+)")
_LINE = re.compile(r"\bline (\d+)")
# Python's warnings that Ansible's own start-up prints (cryptography's DSA notice): not the playbook's.
_NOISE = re.compile(r"^\S+\.py:\d+: \w*Warning: |^\s+from cryptography")


def _clean(message: str) -> str:
    return "\n".join(line for line in message.splitlines() if not _NOISE.search(line)).strip()


async def check_syntax(content: str) -> Evidence:
    with timed() as timer:
        try:
            await syntax_check(content, "content")
        except ValidationFailed as exc:
            message = _clean(exc.errors[0].message if exc.errors else exc.detail)
            found = _ORIGIN.search(message) or _LINE.search(message)
            data = {"line": int(found[1])} if found else {}
            detail = f"ansible-playbook --syntax-check rejects it: {message}"
            return Evidence("syntax", "failed", detail, timer.ms, data)
    return Evidence("syntax", "passed", "ansible-playbook --syntax-check accepts it", timer.ms)
