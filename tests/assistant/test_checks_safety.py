"""The safety stage: secrets fail, risky patterns warn, each finding says where and what to do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio

from server.assistant.checks import document
from server.assistant.checks.leaks import secret_key
from server.assistant.checks.modules import check_modules
from server.assistant.checks.safety import check_safety
from server.playbooks.paths import library_dir

GOLDEN = Path(__file__).parents[1] / "stacks" / "golden"


def play(*tasks: str, head: str = "") -> str:
    return f"- name: Test\n  hosts: web\n{head}  tasks:\n" + "".join(tasks)


async def findings(content: str) -> list[dict[str, Any]]:
    evidence = await check_safety(content)
    found: list[dict[str, Any]] = evidence.data["findings"]
    return found


async def rules(content: str) -> list[str]:
    return [item["rule"] for item in await findings(content)]


async def test_a_clean_playbook_passes() -> None:
    content = play("    - name: Ping\n      ansible.builtin.ping:\n")
    evidence = await check_safety(content)
    assert evidence.status == "passed"
    assert evidence.data == {"findings": []}


async def test_a_literal_password_fails_and_says_to_use_a_variable() -> None:
    content = play(
        "    - name: Create the user\n      community.mysql.mysql_user:\n        name: app\n"
        "        password: s3cr3t-Pa55\n"
    )
    evidence = await check_safety(content)
    assert evidence.status == "failed"
    (finding,) = evidence.data["findings"]
    assert finding == {
        "rule": "literal-secret",
        "severity": "failed",
        "task": "task 'Create the user'",
        "line": 7,
        "message": finding["message"],
    }
    assert "task 'Create the user' (task 1 of play 1, line 4): argument `password` (line 7)" in finding["message"]
    assert "variable" in finding["message"] and "vault" in finding["message"].lower()
    assert "no_log: true" in finding["message"]
    assert "s3cr3t" not in evidence.detail  # the value itself is never repeated


async def test_literal_secrets_in_vars_and_environment_fail() -> None:
    head = "  vars:\n    db_password: hunter2\n  environment:\n    API_TOKEN: abc123\n"
    content = play(
        "    - name: Task vars\n      ansible.builtin.ping:\n      vars:\n        clientSecret: xyz\n"
        "      environment:\n        GITHUB_TOKEN: plain\n",
        head=head,
    )
    found = await findings(content)
    assert [(f["rule"], f["line"]) for f in found] == [
        ("literal-secret", 4),
        ("literal-secret", 6),
        ("literal-secret", 11),
        ("literal-secret", 13),
    ]


async def test_secrets_from_variables_and_vault_are_safe_with_no_log() -> None:
    head = (
        '  vars:\n    db_password: "{{ vault_db_password }}"\n'
        "    api_token: !vault |\n      $ANSIBLE_VAULT;1.1;AES256\n      3132333435\n"
    )
    content = play(
        '    - name: User\n      ansible.builtin.user:\n        name: bob\n        password: "{{ bob_hash }}"\n'
        "      no_log: true\n"
        "    - name: Settings that only name a secret\n      ansible.builtin.user:\n        name: x\n"
        "        update_password: on_create\n        password_lock: true\n"
        "        ssh_key_file: .ssh/id_ed25519\n",
        head=head,
    )
    evidence = await check_safety(content)
    assert evidence.status == "passed", evidence.detail


async def test_a_secret_from_a_variable_without_no_log_warns() -> None:
    content = play(
        '    - name: User\n      ansible.builtin.user:\n        name: bob\n        password: "{{ bob_hash }}"\n'
    )
    evidence = await check_safety(content)
    assert evidence.status == "warning"
    (finding,) = evidence.data["findings"]
    assert finding["rule"] == "secret-without-no-log" and finding["severity"] == "warning"
    assert "no_log: true" in finding["message"]
    # no_log on an enclosing block or on the play covers it
    blocked = play(
        "    - name: Quiet\n      no_log: true\n      block:\n        - name: User\n"
        '          ansible.builtin.user:\n            name: bob\n            password: "{{ bob_hash }}"\n'
    )
    assert (await check_safety(blocked)).status == "passed"


async def test_private_key_material_fails_wherever_it_is() -> None:
    content = play(
        "    - name: Key\n      ansible.builtin.copy:\n        dest: /root/.ssh/id_rsa\n        mode: '0600'\n"
        "        content: |\n          -----BEGIN OPENSSH PRIVATE KEY-----\n          b3BlbnNzaC1rZXktdjEAAAAA\n"
        "          -----END OPENSSH PRIVATE KEY-----\n"
    )
    (finding,) = await findings(content)
    assert finding["rule"] == "private-key" and finding["severity"] == "failed"
    assert finding["line"] == 9
    assert finding["task"] == "task 'Key'"


async def test_well_known_token_shapes_fail() -> None:
    tokens = {
        "AKIAIOSFODNN7EXAMPLE": "an AWS access key id",
        "ghp_" + "a" * 36: "a GitHub token",
        "github_pat_" + "A1b2" * 8: "a GitHub token",
        "xoxb-123456789012-abcdefghij": "a Slack token",
        "sk-proj-" + "abc123XYZ" * 4: "an OpenAI-style API key",
    }
    for token, what in tokens.items():
        content = play(f'    - name: Show\n      ansible.builtin.debug:\n        msg: "uses {token}"\n')
        (finding,) = await findings(content)
        assert finding["rule"] == "token", token
        assert what in finding["message"]
    ordinary = play(
        '    - name: Show\n      ansible.builtin.debug:\n        msg: "the disk-usage-report of task-runner"\n'
    )
    assert await findings(ordinary) == []


async def test_a_url_with_a_password_fails() -> None:
    content = play(
        "    - name: Clone\n      ansible.builtin.git:\n        repo: https://bob:hunter2@git.example.com/app.git\n"
        "        dest: /srv/app\n        version: main\n"
    )
    assert await rules(content) == ["url-credentials"]


async def test_rm_rf_and_other_destructive_commands_warn() -> None:
    for command in (
        "rm -rf /var/lib/app",
        "rm -fr /tmp/x",
        "rm -r -f /data",
        "mkfs.ext4 /dev/sdb1",
        "dd if=/dev/zero of=/dev/sda bs=1M",
        "psql -c 'DROP DATABASE app'",
    ):
        content = play(f'    - name: Wipe\n      ansible.builtin.shell: "{command}"\n')
        evidence = await check_safety(content)
        assert evidence.status == "warning", command
        assert "destructive-command" in [f["rule"] for f in evidence.data["findings"]], command
    listing = play("    - name: List\n      ansible.builtin.command: ls -lrf /tmp\n")
    assert await rules(listing) == []


async def test_state_absent_on_data_warns() -> None:
    content = play(
        "    - name: Remove the data\n      ansible.builtin.file:\n        path: /srv/data\n        state: absent\n",
        "    - name: Old\n      file: path=/srv/old state=absent\n",
        "    - name: Drop the database\n      community.postgresql.postgresql_db:\n        name: app\n"
        "        state: absent\n",
        "    - name: Drop the volume\n      community.docker.docker_volume:\n        name: data\n"
        "        state: absent\n",
        "    - name: Drop the claim\n      kubernetes.core.k8s:\n        kind: PersistentVolumeClaim\n"
        "        name: data\n        namespace: app\n        state: absent\n",
        "    - name: Stop a container\n      community.docker.docker_container:\n        name: web\n"
        "        state: absent\n",
    )
    found = await findings(content)
    assert [(f["rule"], f["task"]) for f in found] == [
        ("deletes-data", "task 'Remove the data'"),
        ("deletes-data", "task 'Old'"),
        ("deletes-data", "task 'Drop the database'"),
        ("deletes-data", "task 'Drop the volume'"),
        ("deletes-data", "task 'Drop the claim'"),
    ]
    assert "/srv/data" in found[0]["message"] and found[0]["line"] == 4


async def test_become_on_all_hosts_without_serial_warns() -> None:
    risky = (
        "- name: Everywhere\n  hosts: all\n  become: true\n  tasks:\n    - name: Ping\n      ansible.builtin.ping:\n"
    )
    evidence = await check_safety(risky)
    assert evidence.status == "warning"
    (finding,) = evidence.data["findings"]
    assert finding["rule"] == "become-all-hosts" and finding["line"] == 3
    assert "serial" in finding["message"]
    assert await rules(risky.replace("  become: true\n", "  become: true\n  serial: 1\n")) == []
    assert await rules(risky.replace("hosts: all", "hosts: web")) == []
    assert await rules(risky.replace("hosts: all", "hosts: all:!db")) == ["become-all-hosts"]


async def test_shell_where_a_module_exists_warns_with_the_module() -> None:
    content = play(
        "    - name: Install\n      ansible.builtin.shell: sudo apt-get install -y nginx && systemctl restart nginx\n"
    )
    found = await findings(content)
    assert [f["rule"] for f in found] == ["command-instead-of-module"] * 2
    assert "ansible.builtin.apt" in found[0]["message"]
    assert "ansible.builtin.systemd" in found[1]["message"]
    others = {
        "mkdir -p /srv/app": "ansible.builtin.file",
        "curl -o /tmp/x https://example.com/x": "ansible.builtin.get_url",
        "git clone https://example.com/app.git /srv/app": "ansible.builtin.git",
        "tar -xzf /tmp/app.tgz -C /srv": "ansible.builtin.unarchive",
        "sed -i s/a/b/ /etc/app.conf": "ansible.builtin.lineinfile",
        "pip install requests": "ansible.builtin.pip",
        "docker run -d nginx": "community.docker.docker_container",
        "useradd bob": "ansible.builtin.user",
        "mount /dev/sdb1 /mnt": "ansible.posix.mount",
    }
    for command, module in others.items():
        (finding,) = await findings(play(f"    - name: Do\n      ansible.builtin.command: {command}\n"))
        assert module in finding["message"], command
    reading = play("    - name: Read\n      ansible.builtin.command: systemctl status nginx\n")
    assert await rules(reading) == []


def test_secret_keys() -> None:
    for key in (
        "password",
        "db_password",
        "DB_PASSWORD",
        "passwd",
        "api_key",
        "apiKey",
        "API_TOKEN",
        "secret",
        "client_secret",
        "private_key",
        "aws_secret_access_key",
        "login_pass",
        "passphrase",
    ):
        assert secret_key(key), key
    for key in (
        "password_file",
        "secret_name",
        "token_type",
        "update_password",
        "ssh_key_file",
        "name",
        "passenger",
        "bypass",
        "no_log",
        "private_key_path",
        "password_expire_max",
    ):
        assert not secret_key(key), key


async def test_windflows_own_playbooks_pass_modules_and_never_fail_safety() -> None:
    """The compiled catalogue and the library: real playbooks, so no false failure hides here."""
    library = library_dir()
    assert library is not None
    paths = await anyio.to_thread.run_sync(lambda: sorted([*GOLDEN.glob("*.yml"), *library.glob("*.yml")]))
    assert len(paths) > 40
    for path in paths:
        text = await anyio.to_thread.run_sync(path.read_text)
        modules = await check_modules(document.load(text))
        assert modules.status == "passed", (path.name, modules.detail)
        safety = await check_safety(text)
        assert safety.status != "failed", (path.name, safety.detail)
        rules = {finding["rule"] for finding in safety.data["findings"]}
        assert rules <= {"become-all-hosts", "deletes-data"}, (path.name, rules)
