"""One importer per outside system: swapping or faking one of them then touches one seam."""

from __future__ import annotations

import ast
from pathlib import Path

SERVER = Path(__file__).resolve().parents[1] / "server"
ONLY_IMPORTERS = {
    "litellm": {"server/assistant/provider.py"},
    "ansible_runner": {"server/runs/executor.py"},
}


def imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_each_outside_system_has_one_importer() -> None:
    importers: dict[str, set[str]] = {package: set() for package in ONLY_IMPORTERS}
    for path in SERVER.rglob("*.py"):
        for package in imported_packages(path) & set(ONLY_IMPORTERS):
            importers[package].add(path.relative_to(SERVER.parent).as_posix())
    assert importers == ONLY_IMPORTERS
