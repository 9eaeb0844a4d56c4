"""Real Ansible over real SSH against the lab VM, and proof that the guest reaches nothing."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path
from typing import Any

from tests.lab.ansible import host_stats, run_playbook
from tests.lab.ssh_hosts import wait_no_ssh_mux
from tests.lab.vm import VirtualMachine


def vm_inventory(vm: VirtualMachine) -> dict[str, Any]:
    return {"all": {"children": {"vm": vm.inventory()}}}


def results(runner: Any, task: str) -> dict[str, Any]:
    return {
        event["event_data"]["host"]: event["event_data"]["res"]
        for event in runner.events
        if event.get("event") in ("runner_on_ok", "runner_on_failed") and event["event_data"].get("task") == task
    }


def test_playbook_runs_on_the_vm(lab_vm: VirtualMachine, tmp_path: Path) -> None:
    marker = f"/root/windflow-lab-{uuid.uuid4().hex}"
    playbook = [
        {
            "hosts": "vm",
            "gather_subset": ["!all"],
            "tasks": [
                {"name": "ping", "ping": {}},
                {"name": "hostname", "assert": {"that": ["ansible_hostname == 'vm1'"]}},
                {"name": "write", "copy": {"content": "{{ inventory_hostname }}\n", "dest": marker}},
                {"name": "read", "command": f"cat {marker}", "register": "read", "changed_when": False},
            ],
        }
    ]

    runner = run_playbook(tmp_path, vm_inventory(lab_vm), playbook)

    assert runner.status == "successful", runner.stdout.read()
    assert host_stats(runner)["vm1"].get("failures", 0) == 0
    assert results(runner, "read")["vm1"]["stdout"] == "vm1"
    assert not Path(marker).exists()  # the guest's filesystem, not this machine's
    assert wait_no_ssh_mux(tmp_path) == []


def test_the_guest_reaches_nothing(lab_vm: VirtualMachine, tmp_path: Path) -> None:
    # A listener on this machine's loopback: without restrict=on, the guest would reach it as 10.0.2.2.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        probe = (
            "import socket,sys\n"
            "try:\n"
            f"    socket.create_connection(('10.0.2.2', {port}), timeout=5).close()\n"
            "except OSError as exc:\n"
            "    sys.exit(f'unreachable: {exc}')\n"
        )
        playbook = [
            {
                "hosts": "vm",
                "gather_facts": False,
                "tasks": [
                    {
                        "name": "connect",
                        "command": {"argv": ["python3", "-c", probe]},
                        "register": "connect",
                        "failed_when": False,
                        "changed_when": False,
                    }
                ],
            }
        ]

        runner = run_playbook(tmp_path, vm_inventory(lab_vm), playbook)

        assert runner.status == "successful", runner.stdout.read()
        result = results(runner, "connect")["vm1"]
        assert result["rc"] != 0
        assert "unreachable" in result["stderr"]
        try:
            accepted = listener.accept()
        except BlockingIOError:
            accepted = None
        assert accepted is None
    assert wait_no_ssh_mux(tmp_path) == []
