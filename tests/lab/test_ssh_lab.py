"""Real Ansible over real SSH against the lab's bare-metal hosts (sshd daemons and containers)."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path
from typing import Any

from tests.lab.ansible import host_stats, run_playbook
from tests.lab.keys import wrong_key
from tests.lab.ssh_hosts import ContainerHosts, SshHosts, wait_no_ssh_mux


def baremetal(*groups: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for group in groups:
        for key, value in group.items():
            merged.setdefault(key, {}).update(value)
    return {"all": {"children": {"baremetal": merged}}}


def ok_events(runner: Any, task: str) -> dict[str, dict[str, Any]]:
    """Per host, the result of ``task``."""
    return {
        event["event_data"]["host"]: event["event_data"]["res"]
        for event in runner.events
        if event.get("event") == "runner_on_ok" and event["event_data"].get("task") == task
    }


def assert_no_ssh_left(private_data_dir: Path) -> None:
    assert wait_no_ssh_mux(private_data_dir) == []


def test_ping_reaches_every_baremetal_host(lab_ssh_hosts: SshHosts, tmp_path: Path) -> None:
    runner = run_playbook(
        tmp_path,
        baremetal(lab_ssh_hosts.inventory()),
        [{"hosts": "baremetal", "gather_facts": False, "tasks": [{"ping": {}}]}],
    )

    assert runner.status == "successful", runner.stdout.read()
    assert host_stats(runner) == {name: {"ok": 1} for name in ("bm1", "bm2", "bm3")}
    assert_no_ssh_left(tmp_path)


def test_playbook_runs_and_is_idempotent(lab_ssh_hosts: SshHosts, tmp_path: Path) -> None:
    out = tmp_path / "out"
    playbook = [
        {
            "hosts": "baremetal",
            "gather_subset": ["!all"],
            "tasks": [
                {"name": "dir", "file": {"path": str(out), "state": "directory", "mode": "0755"}},
                {"name": "copy", "copy": {"content": "lab\n", "dest": f"{out}/{{{{ inventory_hostname }}}}.txt"}},
                {
                    "name": "template",
                    "template": {"src": "host.j2", "dest": f"{out}/{{{{ inventory_hostname }}}}.host"},
                },
                {"name": "uname", "command": "uname -n", "register": "uname", "changed_when": False},
                {"name": "facts", "debug": {"msg": "{{ ansible_hostname }} {{ uname.stdout }}"}},
            ],
        }
    ]
    inventory = baremetal(lab_ssh_hosts.inventory())

    def run(name: str) -> Any:
        templates = tmp_path / name / "project" / "templates"
        templates.mkdir(parents=True)
        (templates / "host.j2").write_text("{{ inventory_hostname }} is {{ ansible_hostname }}\n")
        return run_playbook(tmp_path / name, inventory, playbook)

    first, second = run("first"), run("second")

    assert first.status == "successful", first.stdout.read()
    assert second.status == "successful", second.stdout.read()
    short_name = socket.gethostname().split(".")[0]
    for name in ("bm1", "bm2", "bm3"):
        assert host_stats(first)[name]["changed"] >= 2  # the shared directory is created by one of them
        assert host_stats(second)[name].get("changed", 0) == 0
        assert (out / f"{name}.txt").read_text() == "lab\n"
        assert (out / f"{name}.host").read_text() == f"{name} is {short_name}\n"
    assert {h: r["msg"] for h, r in ok_events(second, "facts").items()} == {
        name: f"{short_name} {short_name}" for name in ("bm1", "bm2", "bm3")
    }
    assert_no_ssh_left(tmp_path)


def test_wrong_key_makes_hosts_unreachable(lab_ssh_hosts: SshHosts, tmp_path: Path) -> None:
    inventory = baremetal(lab_ssh_hosts.inventory(private_key=wrong_key().private))

    runner = run_playbook(tmp_path, inventory, [{"hosts": "baremetal", "gather_facts": False, "tasks": [{"ping": {}}]}])

    assert runner.status == "failed"
    assert host_stats(runner) == {name: {"dark": 1} for name in ("bm1", "bm2", "bm3")}
    assert_no_ssh_left(tmp_path)


def test_container_hosts_have_their_own_hostname_and_filesystem(
    lab_container_hosts: ContainerHosts, tmp_path: Path
) -> None:
    marker = f"/root/windflow-lab-{uuid.uuid4().hex}"
    playbook = [
        {
            "hosts": "containers",
            "gather_subset": ["!all"],
            "tasks": [
                {"name": "ping", "ping": {}},
                {"name": "hostname", "assert": {"that": ["ansible_hostname == inventory_hostname"]}},
                {"name": "write", "copy": {"content": "{{ inventory_hostname }}\n", "dest": marker}},
                {"name": "read", "command": f"cat {marker}", "register": "read", "changed_when": False},
            ],
        }
    ]

    runner = run_playbook(tmp_path, baremetal(lab_container_hosts.inventory()), playbook)

    assert runner.status == "successful", runner.stdout.read()
    assert {h: r["stdout"] for h, r in ok_events(runner, "read").items()} == {"node1": "node1", "node2": "node2"}
    assert not Path(marker).exists()
    for name in ("node1", "node2"):
        assert lab_container_hosts.exec(name, ["cat", marker]) == (0, f"{name}\n")
    assert_no_ssh_left(tmp_path)
