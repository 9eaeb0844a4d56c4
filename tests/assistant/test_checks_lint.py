"""The lint and syntax stages: real ansible-lint and ansible-playbook (each lint run costs seconds,
so runs are shared between tests)."""

from __future__ import annotations

from pathlib import Path

import anyio
import psutil  # type: ignore[import-untyped]

from server.assistant.checks import check_playbook, linter, warm_up
from server.assistant.checks.lint import line_map, lint_playbook
from server.assistant.checks.playbook import renumber
from server.assistant.checks.syntax import check_syntax
from server.assistant.evidence import Checked, Evidence
from server.playbooks.paths import roles_dir

FIXABLE = """\
- name: Fixable
  hosts: web
  gather_facts: false
  tasks:
    - name: install nginx
      apt: name=nginx state=present
"""
VIOLATIONS = """\
---
- hosts: web
  gather_facts: false
  roles:
    - docker_engine
  tasks:
    - name: Say hello
      ansible.builtin.shell: echo hello
"""
_checked: dict[str, Checked] = {}


async def checked(content: str) -> Checked:
    if content not in _checked:
        _checked[content] = await check_playbook(content)
    return _checked[content]


def _roles() -> dict[Path, bytes]:
    root = roles_dir()
    assert root is not None
    return {path: path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


async def test_autofix_gives_a_diff_and_fixed_content_that_passes() -> None:
    result = await checked(FIXABLE)
    lint = result.evidence[3]
    assert lint.stage == "lint" and lint.status == "passed", lint.detail
    fixed = lint.data["fixed"]
    assert fixed and fixed == result.content != FIXABLE
    assert "ansible.builtin.apt:" in fixed and "name: Install nginx" in fixed and fixed.startswith("---")
    assert lint.data["diff"].startswith("--- proposed.yml\n+++ fixed.yml\n")
    assert "+      ansible.builtin.apt:" in lint.data["diff"]
    assert "autofix changed the playbook" in lint.detail
    again = await checked(fixed)
    assert again.passed, again.problems()
    assert again.content == fixed
    assert again.evidence[3].data == {"violations": [], "diff": "", "fixed": ""}


async def test_violations_that_remain_fail_and_the_repository_stays_untouched() -> None:
    before = _roles()
    result = await checked(VIOLATIONS)
    after = _roles()
    assert before == after  # ansible-lint --fix rewrites roles it lints: it only ever saw a copy
    lint = {e.stage: e for e in result.evidence}["lint"]
    assert lint.status == "failed"
    rules = {v["rule"]: v for v in lint.data["violations"]}
    assert {"name[play]", "no-changed-when"} <= set(rules)
    assert rules["name[play]"]["line"] == 2
    assert rules["no-changed-when"]["task"] == "task 'Say hello'"
    assert "name[play] at line 2: All plays should be named." in lint.detail
    assert not result.passed and "lint" in result.failed_stages
    assert {e.stage: e.status for e in result.evidence}["syntax"] == "passed"  # the role exists


async def test_a_fresh_process_gives_the_same_evidence_as_the_fork_server() -> None:
    warm = (await checked(FIXABLE)).evidence[3]
    fresh = await lint_playbook(FIXABLE, warm=False)
    assert fresh.evidence.status == warm.status == "passed"
    assert fresh.evidence.data == warm.data
    assert fresh.fixed == warm.data["fixed"]


async def test_the_fork_server_comes_back_after_it_died() -> None:
    warm = (await checked(FIXABLE)).evidence[3]
    server = linter.fork_server()
    server.process.kill()
    server.process.wait()
    result = await lint_playbook(FIXABLE)
    assert result.evidence.data == warm.data
    assert linter.fork_server() is not server


async def test_a_cancelled_lint_leaves_no_run_and_no_files_behind() -> None:
    server = linter.fork_server()
    with anyio.move_on_after(0.5):
        await lint_playbook(FIXABLE)
    children: list[psutil.Process] = []
    for _ in range(50):  # the server reaps the killed run within its poll interval
        children = psutil.Process(server.process.pid).children(recursive=True)
        if not children:
            break
        await anyio.sleep(0.1)
    assert children == []
    assert await anyio.to_thread.run_sync(lambda: list((server.home.path / "jobs").iterdir())) == []
    assert linter.fork_server() is server  # still serving


async def test_warm_up_starts_the_fork_server() -> None:
    await warm_up()
    assert linter.fork_server().alive


async def test_a_role_that_does_not_exist_fails_the_syntax_check() -> None:
    content = "- name: Roles\n  hosts: all\n  roles:\n    - no_such_role_here\n"
    evidence = await check_syntax(content)
    assert evidence.status == "failed"
    assert "no_such_role_here" in evidence.detail and "not found" in evidence.detail
    assert evidence.detail.startswith("ansible-playbook --syntax-check rejects it")


async def test_the_syntax_check_accepts_a_good_playbook() -> None:
    evidence = await check_syntax(
        "- name: Ping\n  hosts: all\n  tasks:\n    - name: Ping\n      ansible.builtin.ping:\n"
    )
    assert evidence.status == "passed"


def test_evidence_of_the_text_before_the_fixes_is_renumbered_for_the_fixed_text() -> None:
    original = "- name: A\n  hosts: all\n  tasks:\n    - name: B\n      apt: name=x\n"
    fixed = "---\n- name: A\n  hosts: all\n  tasks:\n    - name: B\n      ansible.builtin.apt:\n        name: x\n"
    lines = line_map(original, fixed)
    assert lines[1] == 2 and lines[4] == 5 and lines[5] == 6
    problem = {"task": "task 'B' (task 1 of play 1, line 4)", "line": 4, "module": "apt", "message": "m"}
    evidence = Evidence("modules", "failed", "task 'B' (task 1 of play 1, line 4): m", 3, {"problems": [problem]})
    moved = renumber(evidence, lines)
    assert moved.detail == "task 'B' (task 1 of play 1, line 5): m"
    assert moved.data["problems"][0] == {**problem, "task": "task 'B' (task 1 of play 1, line 5)", "line": 5}
    syntax = renumber(Evidence("syntax", "failed", "Origin: main.yml:4:7", 1, {"line": 4}), lines)
    assert (syntax.detail, syntax.data) == ("Origin: main.yml:5:7", {"line": 5})
