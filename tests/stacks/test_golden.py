"""Every catalogue stack compiled for every target it supports: golden bytes, syntax check, lint.

The golden files in ``golden/`` are what the compiler must produce, byte for byte. After an
intended change, regenerate them with ``UPDATE_GOLDEN=1 .venv/bin/pytest tests/stacks/test_golden.py``
and read the diff. Every golden playbook passes ``ansible-playbook --syntax-check`` and
``ansible-lint --offline`` at the production profile, with no rule skipped.
"""

from __future__ import annotations

import functools
import os
import random
import subprocess
from pathlib import Path

import pytest

from server.playbooks.paths import roles_dir
from server.runs.executor import VENV_BIN, clean_env
from server.stacks.catalogue import CATALOGUE
from server.stacks.compiler import compile_stack
from server.stacks.spec import Definition, load_text, parse_definition
from server.stacks.variables import resolve

GOLDEN = Path(__file__).with_name("golden")


@functools.cache
def definition(stem: str) -> Definition:
    path = CATALOGUE / f"{stem}.yml"
    return parse_definition(load_text(path.read_text(encoding="utf-8"), path.name), path.name)


def cases() -> list[tuple[str, str, str]]:
    out = []
    for path in sorted(CATALOGUE.glob("*.yml")):
        for target in definition(path.stem).metadata.targets:
            out += [(path.stem, target, "deploy"), (path.stem, target, "undeploy")]
    return out


def compiled(stem: str, target: str, action: str) -> str:
    stack = definition(stem)
    # Generated values come from a seeded generator: ports and ids are the same on every run.
    values = resolve(stack.variables, {}, rng=random.Random(7))  # noqa: S311 - test data
    return compile_stack(stack, values, target, action=action, remove_volumes=action == "undeploy").content


def golden_path(stem: str, target: str, action: str) -> Path:
    return GOLDEN / f"{stem}.{target}.{action}.yml"


@pytest.mark.parametrize(("stem", "target", "action"), cases())
def test_compiles_to_the_golden_bytes(stem: str, target: str, action: str) -> None:
    content = compiled(stem, target, action)
    path = golden_path(stem, target, action)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(content, encoding="utf-8")
    assert path.read_text(encoding="utf-8") == content
    assert compiled(stem, target, action) == content  # and again: the same input, the same bytes


def test_there_is_no_stale_golden_file() -> None:
    expected = {golden_path(*case).name for case in cases()}
    assert {p.name for p in GOLDEN.glob("*.yml")} == expected


def test_the_catalogue_has_at_least_six_stacks_and_a_multi_service_one() -> None:
    stems = sorted(p.stem for p in CATALOGUE.glob("*.yml"))
    assert len(stems) >= 6, stems
    assert any(len(definition(s).template["services"]) >= 3 for s in stems)


def _ansible_env(tmp_path: Path) -> dict[str, str]:
    return clean_env(tmp_path, ANSIBLE_ROLES_PATH=str(roles_dir()), ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"))


def test_every_golden_playbook_passes_the_syntax_check(tmp_path: Path) -> None:
    files = sorted(str(p) for p in GOLDEN.glob("*.yml"))
    inventory = tmp_path / "hosts"
    inventory.write_text("target ansible_connection=local\n")
    result = subprocess.run(  # noqa: S603 - fixed argv
        [str(VENV_BIN / "ansible-playbook"), "--syntax-check", "-i", str(inventory), *files],
        env=_ansible_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _lint(tmp_path: Path, cwd: Path, *paths: str) -> None:
    """``ansible-lint --offline`` at the production profile, strict, with no rule skipped."""
    argv = [str(VENV_BIN / "ansible-lint"), "--offline", "--profile", "production", "--nocolor", "--strict", *paths]
    env = {**_ansible_env(tmp_path), "NO_COLOR": "1"}
    result = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=600, check=False)  # noqa: S603
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_golden_playbook_passes_ansible_lint_production(tmp_path: Path) -> None:
    _lint(tmp_path, tmp_path, str(GOLDEN))


def test_the_repository_roles_and_library_pass_ansible_lint_production(tmp_path: Path) -> None:
    _lint(tmp_path, roles_dir().parent, "roles", "playbooks")
