"""Playbook validation: our quick structural look, then the real ``ansible-playbook --syntax-check``."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.errors import ValidationFailed
from server.playbooks import validation
from server.playbooks.validation import validate_playbook

PING = """\
- name: Ping
  hosts: all
  gather_facts: false
  tasks:
    - name: Ping the host
      ansible.builtin.ping:
"""


async def rejected(content: str, field: str = "body.content") -> str:
    with pytest.raises(ValidationFailed) as caught:
        await validate_playbook(content, field)
    [error] = caught.value.errors
    assert error.field == field
    return error.message


async def test_a_valid_playbook_passes() -> None:
    await validate_playbook(PING)


async def test_malformed_yaml_names_the_line() -> None:
    message = await rejected("- hosts: all\n  tasks:\n    - name: [unclosed\n")
    assert message.startswith("line ") and "invalid YAML" in message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "empty"),
        ("hosts: all\n", "a YAML list of plays, not a dict"),
        ("just text", "not a str"),
        ("[]", "no play"),
    ],
)
async def test_not_a_list_of_plays(content: str, expected: str) -> None:
    assert expected in await rejected(content)


async def test_a_play_without_hosts_is_named_by_its_number() -> None:
    content = PING + "- name: Second\n  tasks: []\n"
    assert (await rejected(content, "body.plays")).startswith("play 2: has neither `hosts`")
    assert (await rejected("- just a string\n")).startswith("play 1: is a str")


@pytest.mark.parametrize("target", ["/etc/passwd", "../outside.yml"])
async def test_import_playbook_stays_in_the_project(target: str) -> None:
    assert "must not point outside the project" in await rejected(f"- import_playbook: {target}\n")


async def test_an_unknown_module_answers_with_ansibles_own_words() -> None:
    content = "- hosts: all\n  tasks:\n    - name: Nope\n      windflow.nowhere.nothing:\n        x: 1\n"
    message = await rejected(content)
    assert "couldn't resolve module/action 'windflow.nowhere.nothing'" in message
    assert "[WARNING]" not in message and "ERROR" not in message and "\x1b[" not in message
    assert message.startswith("couldn't resolve")  # nothing before Ansible's words (no Python warnings)
    assert "windflow-check-" not in message  # no temp directory paths
    assert len(message) <= validation.MAX_MESSAGE


async def test_a_missing_role_is_refused_and_a_bundled_one_is_found() -> None:
    message = await rejected("- hosts: all\n  roles:\n    - no_such_role\n")
    assert "the role 'no_such_role' was not found" in message
    await validate_playbook("- hosts: all\n  roles:\n    - disk_report\n")


async def test_ansible_tags_do_not_break_the_quick_look() -> None:
    await validate_playbook("- hosts: all\n  vars:\n    raw: !unsafe '{{ not templated }}'\n  tasks: []\n")


async def test_too_large_or_not_utf8_is_refused_before_ansible_runs() -> None:
    big = PING + "#" * validation.MAX_CONTENT_BYTES
    assert "at most" in await rejected(big)
    assert "UTF-8" in await rejected(PING + "# \ud800\n")


def test_the_bundled_directories_are_found() -> None:
    from server.playbooks.paths import library_dir, roles_dir

    assert roles_dir() == Path(__file__).parents[2] / "roles"
    assert library_dir() == Path(__file__).parents[2] / "playbooks"


async def test_a_syntax_check_that_hangs_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(validation, "SYNTAX_CHECK_TIMEOUT", 0.01)
    assert "did not finish within" in await rejected(PING)
