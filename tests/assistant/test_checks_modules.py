"""The modules stage and the lookups the model uses: real Ansible, in this process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio

from server.assistant.checks import docs, document, list_modules, module_doc, resolve_module
from server.assistant.checks.modules import check_modules
from server.assistant.evidence import Evidence


def play(*tasks: str, handlers: str = "") -> str:
    body = "".join(tasks)
    text = f"- name: Test\n  hosts: all\n  tasks:\n{body}"
    return text + (f"  handlers:\n{handlers}" if handlers else "")


async def modules_of(content: str) -> Evidence:
    return await check_modules(document.load(content))


def messages(evidence: Evidence) -> list[str]:
    return [p["message"] for p in evidence.data["problems"]]


async def test_short_names_resolve_to_fqcns() -> None:
    content = play(
        "    - name: Install\n      apt:\n        name: nginx\n",
        "    - name: Container\n      docker_container:\n        name: web\n        image: nginx\n",
        "    - name: Ping\n      ansible.builtin.ping:\n",
    )
    evidence = await modules_of(content)
    assert evidence.status == "passed", evidence.detail
    assert evidence.data["modules"] == {
        "apt": "ansible.builtin.apt",
        "docker_container": "community.docker.docker_container",
        "ansible.builtin.ping": "ansible.builtin.ping",
    }
    assert "community.docker.docker_container" in evidence.detail


async def test_an_unknown_module_fails_with_close_names() -> None:
    content = play(
        "    - name: Nothing\n      ansible.builtin.nosuchthing:\n        x: 1\n",
        "    - name: Typo\n      aptt:\n        name: nginx\n",
    )
    evidence = await modules_of(content)
    assert evidence.status == "failed"
    first, second = evidence.data["problems"]
    assert first["task"] == "task 'Nothing' (task 1 of play 1, line 4)"
    assert first["line"] == 4
    assert "no installed module is called `ansible.builtin.nosuchthing`" in first["message"]
    assert second["module"] == "aptt"
    assert "did you mean ansible.builtin.apt" in second["message"]
    assert "task 'Typo'" in evidence.detail


async def test_a_removed_module_says_what_replaced_it() -> None:
    evidence = await modules_of(
        play("    - name: Old\n      community.docker.docker_compose:\n        project_src: .\n")
    )
    assert evidence.status == "failed"
    assert "removed" in evidence.detail and "docker_compose_v2" in evidence.detail


async def test_an_unknown_argument_fails_with_the_close_one() -> None:
    evidence = await modules_of(play("    - name: Install\n      ansible.builtin.apt:\n        nmae: nginx\n"))
    assert evidence.status == "failed"
    (message,) = messages(evidence)
    assert "`ansible.builtin.apt` has no argument `nmae`" in message
    assert "did you mean `name`?" in message


async def test_aliases_count_as_arguments() -> None:
    evidence = await modules_of(play("    - name: Install\n      ansible.builtin.apt:\n        pkg: nginx\n"))
    assert evidence.status == "passed", evidence.detail


async def test_a_missing_required_argument_fails() -> None:
    evidence = await modules_of(play("    - name: Copy\n      ansible.builtin.copy:\n        content: hi\n"))
    assert evidence.status == "failed"
    (message,) = messages(evidence)
    assert "requires the argument `dest`" in message


async def test_module_defaults_may_give_required_arguments() -> None:
    content = (
        "- name: Test\n  hosts: all\n  module_defaults:\n    ansible.builtin.copy:\n      dest: /tmp/x\n"
        "  tasks:\n    - name: Copy\n      ansible.builtin.copy:\n        content: hi\n"
    )
    assert (await modules_of(content)).status == "passed"


async def test_a_choice_outside_the_documented_ones_fails() -> None:
    evidence = await modules_of(play("    - name: Install\n      apt: name=nginx state=installed\n"))
    assert evidence.status == "failed"
    assert "must be one of" in evidence.detail and "`installed`" in evidence.detail


async def test_k_v_arguments_are_split_and_checked() -> None:
    good = await modules_of(play("    - name: Install\n      apt: name=nginx state=present\n"))
    assert good.status == "passed", good.detail
    bad = await modules_of(play("    - name: Install\n      apt: nginx state=present\n"))
    assert bad.status == "failed"
    assert "takes name=value pairs or a mapping" in bad.detail


async def test_free_form_modules_take_what_they_are_given() -> None:
    content = play(
        "    - name: Command\n      ansible.builtin.command: echo hi creates=/tmp/x\n",
        "    - name: Shell\n      shell: ls | wc -l\n",
        "    - name: Facts\n      set_fact:\n        anything: 1\n        other: two\n",
        "    - name: Flush\n      meta: flush_handlers\n",
        "    - name: Raw\n      raw: uptime\n",
        "    - name: Host\n      add_host:\n        name: extra\n        groups: web\n        custom_var: 1\n",
        "    - name: Group\n      group_by:\n        key: os_{{ ansible_facts.distribution }}\n",
        "    - name: Include\n      include_tasks: other.yml\n",
        "    - name: Script\n      script: files/run.sh --flag\n",
    )
    evidence = await modules_of(content)
    assert evidence.status == "passed", evidence.detail
    assert evidence.data["modules"]["include_tasks"] == "ansible.builtin.include_tasks"


async def test_arguments_that_are_one_expression_are_not_checked() -> None:
    content = play(
        '    - name: File\n      ansible.builtin.file: "{{ file_args }}"\n',
        '    - name: Copy\n      ansible.builtin.copy:\n      args: "{{ copy_args }}"\n',
    )
    assert (await modules_of(content)).status == "passed"


async def test_nested_blocks_and_handlers_are_checked() -> None:
    content = play(
        "    - name: Outer\n      block:\n        - name: Inner\n          block:\n"
        "            - name: Deep\n              ansible.builtin.apt:\n                nmae: x\n"
        "      rescue:\n        - name: Rescue\n          ansible.builtin.nosuch:\n"
        "      always:\n        - name: Always\n          ansible.builtin.ping:\n",
        handlers="    - name: Restart\n      service:\n        name: nginx\n        bogus: 1\n",
    )
    evidence = await modules_of(content)
    assert evidence.status == "failed"
    tasks = [p["task"] for p in evidence.data["problems"]]
    assert tasks == [
        "task 'Deep' (task 1 in the block of task 1 in the block of task 1 of play 1, line 8)",
        "task 'Rescue' (task 1 in the rescue of task 1 of play 1, line 12)",
        "task 'Restart' (handler 1 of play 1, line 18)",
    ]
    assert evidence.data["modules"]["service"] == "ansible.builtin.service"


async def test_action_and_local_action_name_their_module() -> None:
    content = play(
        "    - name: Action\n      action: ansible.builtin.apt name=nginx\n",
        "    - name: Local\n      local_action:\n        module: ansible.builtin.copy\n        dest: /tmp/x\n"
        "        content: hi\n",
        "    - name: Bad local\n      local_action:\n        module: ansible.builtin.copy\n        content: hi\n",
    )
    evidence = await modules_of(content)
    assert evidence.status == "failed"
    assert [p["task"].split(" (")[0] for p in evidence.data["problems"]] == ["task 'Bad local'"]


async def test_a_task_calls_exactly_one_module() -> None:
    content = play(
        "    - name: Two\n      ansible.builtin.ping:\n      ansible.builtin.debug:\n        msg: hi\n",
        "    - name: None\n      when: true\n",
    )
    evidence = await modules_of(content)
    assert evidence.status == "failed"
    first, second = messages(evidence)
    assert "more than one module" in first
    assert "calls no module" in second


def test_task_keywords_are_ansibles() -> None:
    from ansible.playbook.block import Block
    from ansible.playbook.handler import Handler

    attributes = set(Handler.fattributes) | set(Block.fattributes)
    internal = {"async_val", "loop_with"}
    assert attributes - internal <= document.TASK_KEYWORDS
    assert document.TASK_KEYWORDS - attributes == {"local_action"}


def test_an_ansible_cfg_or_ansible_variables_do_not_change_what_resolves(tmp_path: Path) -> None:
    """A fresh process, since Ansible reads its configuration once, when it is imported."""
    (tmp_path / "ansible.cfg").write_text("[defaults]\ncollections_scan_sys_path = False\ncollections_path = /none\n")
    script = (
        "import os, warnings\n"
        "warnings.simplefilter('error')\n"
        "from server.assistant.checks.plugins import resolve_module\n"
        "print(resolve_module('docker_container'), os.environ['ANSIBLE_COLLECTIONS_SCAN_SYS_PATH'],"
        " os.environ.get('ANSIBLE_CONFIG'))\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(Path(__file__).parents[2]),
        "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "False",
    }
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    # The module resolves as if neither were there, and the process's environment is as it was.
    assert result.stdout.split() == ["community.docker.docker_container", "False", "None"]


def test_resolve_module() -> None:
    assert resolve_module("apt") == "ansible.builtin.apt"
    assert resolve_module("ansible.builtin.apt") == "ansible.builtin.apt"
    assert resolve_module("docker_container") == "community.docker.docker_container"
    assert resolve_module("ufw") == "community.general.ufw"
    assert resolve_module("aptt") is None
    assert resolve_module("") is None
    assert resolve_module("community.docker.docker_compose") is None  # removed


async def test_module_doc_shortens_the_documentation() -> None:
    doc = await module_doc("apt")
    assert doc is not None
    assert doc["name"] == "ansible.builtin.apt"
    assert doc["free_form"] is False
    assert doc["short_description"]
    assert "\n" not in doc["description"]
    name = doc["options"]["name"]
    assert name["aliases"] == ["package", "pkg"]
    assert name["type"] == "list" and name["required"] is False
    assert doc["options"]["state"]["choices"] == ["absent", "build-dep", "latest", "present", "fixed"]
    json.dumps(doc)  # plain data, ready for the model
    command = await module_doc("ansible.builtin.command")
    assert command is not None and command["free_form"] is True
    assert await module_doc("nosuchmodule") is None
    assert (await module_doc("copy") or {})["options"]["dest"]["required"] is True


async def test_list_modules_from_ansible_doc_is_cached_on_disk(tmp_path: Path) -> None:
    docs._lists.clear()
    found = await list_modules("apt", limit=5, cache_dir=tmp_path)
    assert found[0] == {"name": "ansible.builtin.apt", "description": found[0]["description"]}
    assert all(set(item) == {"name", "description"} for item in found)
    assert len(found) == 5
    names = [item["name"] for item in found]
    assert names[1].rsplit(".", 1)[-1].startswith("apt")  # prefixes right after the exact name
    (cached,) = await anyio.to_thread.run_sync(lambda: list(tmp_path.glob("ansible-modules-*.json")))
    assert docs.cache_key() in cached.name
    listed: dict[str, Any] = json.loads(cached.read_text())
    assert "community.docker.docker_container" in listed
    # Another process reads the file at once: no ansible-doc run when it is there.
    real = dict(docs._lists)
    docs._lists.clear()
    cached.write_text(json.dumps({"example.only.module": "Manages packages, as a test"}))
    try:
        assert await list_modules("PACKAGES", cache_dir=tmp_path) == [
            {"name": "example.only.module", "description": "Manages packages, as a test"}
        ]
    finally:
        docs._lists.clear()
        docs._lists.update(real)


async def test_list_modules_matches_descriptions_and_limits() -> None:
    found = await list_modules("docker container", limit=50)
    assert found, "a description match"
    assert all("docker container" in (i["name"] + i["description"]).lower() for i in found)
    assert await list_modules("apt", limit=0) == []
    everything = await list_modules("", limit=3)
    assert len(everything) == 3
