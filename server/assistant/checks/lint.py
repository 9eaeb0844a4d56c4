"""The lint stage: ``ansible-lint --offline --profile production`` with its autofix.

Its ``--fix`` rewrites what it can (FQCNs, ``k=v`` to mappings, name casing, the ``---``); what
remains is the evidence, and the fixed text becomes the content as checked when it still parses.
Where and how ansible-lint runs (a private home, a copy of the roles, never the repository, never
a shell, never the network) is ``linter.py``. ``--offline`` keeps it from installing requirements
and refreshing its schemas, and also from asking GitHub for a newer version of itself.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from typing import Any

import yaml

from server.assistant.checks import document
from server.assistant.checks.linter import LINT_TIMEOUT, Outcome, run_lint
from server.assistant.evidence import Evidence, timed
from server.errors import ValidationFailed
from server.playbooks.validation import check_structure

MAX_OUTPUT = 2000
EXIT_CODES = (0, 2, 8)  # clean, violations remain, everything found was fixed
_NOISE = re.compile(r"CryptographyDeprecationWarning|from cryptography|^\s*$")
_PRIVATE_PATHS = re.compile(r"\S*windflow-lint-[^/\s:]*/(?:jobs/[^/\s:]*/project/)?")


@dataclass
class Linted:
    evidence: Evidence
    fixed: str | None  # lint's rewrite when it changed the playbook and the rewrite still parses


def _still_parses(text: str) -> bool:
    try:
        check_structure(text, "content")
    except ValidationFailed:
        return False
    return True


def line_map(original: str, fixed: str) -> dict[int, int]:
    """Lines of the original (which ansible-lint's findings name) to lines of the fixed text."""
    lines: dict[int, int] = {}
    matcher = difflib.SequenceMatcher(None, original.splitlines(), fixed.splitlines(), autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        for offset, line in enumerate(range(i1, i2)):
            lines[line + 1] = (j1 + offset if tag == "equal" else j1 + min(offset, max(j2 - j1 - 1, 0))) + 1
    return lines


def _violations(issues: list[dict[str, Any]], original: str, content: str) -> list[dict[str, Any]]:
    """The findings on ``content``: ansible-lint counts lines in the text before its fixes."""
    try:
        data = document.load(content)
    except yaml.YAMLError:
        data = None
    lines = line_map(original, content) if original != content else {}
    out: list[dict[str, Any]] = []
    for issue in issues:
        location = issue.get("location") or {}
        if location.get("path") not in (None, "main.yml"):
            continue
        line = (location.get("lines") or {}).get("begin") or ((location.get("positions") or {}).get("begin") or {}).get(
            "line"
        )
        line = lines.get(line, line) if isinstance(line, int) else None
        task = document.task_at(data, line) if line is not None and data is not None else None
        out.append(
            {
                "rule": str(issue.get("check_name") or ""),
                "line": line,
                "description": _PRIVATE_PATHS.sub("", str(issue.get("description") or "")),
                "severity": str(issue.get("severity") or "major"),
                "task": task.title if task else "",
            }
        )
    return out


def _describe(violation: dict[str, Any]) -> str:
    where = f" at line {violation['line']}" if violation["line"] else ""
    task = f" ({violation['task']})" if violation["task"] else ""
    return f"{violation['rule']}{where}{task}: {violation['description']}"


def _tool_failure(returncode: int | None, err: str) -> str:
    lines = [line for line in err.splitlines() if not _NOISE.search(line)]
    text = "\n".join(lines).strip()[-MAX_OUTPUT:]
    return f"ansible-lint could not check the playbook (exit code {returncode}): {text or 'no output'}"


def _finish(content: str, outcome: Outcome, ms: int) -> Linted:
    try:
        issues = json.loads(outcome.stdout) if outcome.stdout.strip() else []
    except json.JSONDecodeError:
        issues = None
    if outcome.returncode not in EXIT_CODES or not isinstance(issues, list):
        return Linted(Evidence("lint", "failed", _tool_failure(outcome.returncode, outcome.stderr), ms), None)
    fixed_text = outcome.fixed or content
    changed = fixed_text != content and _still_parses(fixed_text)
    checked = fixed_text if changed else content
    violations = _violations(issues, content, checked)
    diff = "".join(
        difflib.unified_diff(
            content.splitlines(keepends=True), checked.splitlines(keepends=True), "proposed.yml", "fixed.yml"
        )
    )
    data = {"violations": violations, "diff": diff, "fixed": checked if changed else ""}
    errors = [v for v in violations if v["severity"] != "minor"]
    fixed_note = "ansible-lint's autofix changed the playbook (see the diff); " if changed else ""
    if errors:
        detail = f"{fixed_note}{len(errors)} violation(s) remain:\n" + "\n".join(_describe(v) for v in violations)
        return Linted(Evidence("lint", "failed", detail, ms, data), checked if changed else None)
    if violations:
        detail = f"{fixed_note}warnings only:\n" + "\n".join(_describe(v) for v in violations)
        return Linted(Evidence("lint", "warning", detail, ms, data), checked if changed else None)
    detail = f"{fixed_note}no violation at the production profile"
    return Linted(Evidence("lint", "passed", detail, ms, data), checked if changed else None)


async def lint_playbook(content: str, *, warm: bool = True) -> Linted:
    """The lint evidence and, when ansible-lint's autofix changed the playbook, the fixed text.

    ``warm`` runs it in the fork server (``linter.py``); False, in a fresh process.
    """
    with timed() as timer:
        try:
            outcome = await run_lint(content, warm=warm)
        except TimeoutError:
            outcome = Outcome(None, "", "", "")
        if outcome.returncode is None:
            detail = f"ansible-lint did not finish within {LINT_TIMEOUT} s; try a smaller playbook"
            return Linted(Evidence("lint", "failed", detail, timer.ms), None)
        return _finish(content, outcome, timer.ms)
