"""Real runs on every kind of lab target: SSH hosts, the VM, a container, Kubernetes; remote cancel."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import anyio
import psutil
from litestar.testing import AsyncTestClient

from tests.inventories.test_check_lab import CONTAINER, credential, kubeconfig_text, target_container  # noqa: F401
from tests.lab.docker_engine import DockerEngine
from tests.lab.keys import lab_key
from tests.lab.kubernetes import KubernetesCluster
from tests.lab.ssh_hosts import SshHosts
from tests.lab.vm import VirtualMachine
from tests.runs.test_launch import make_inventory, make_playbook, wait_finished
from tests.runs.test_lifecycle import launch, wait_status

Client = AsyncTestClient[Any]
WRITE_FILE = """- name: leave a mark on every host
  hosts: all
  gather_facts: false
  tasks:
    - name: write a file
      ansible.builtin.copy:
        dest: "/tmp/windflow-run-{{ mark }}"
        content: "{{ inventory_hostname }}\\n"
        mode: "0644"
"""
K8S = """- name: a ConfigMap through the API server
  hosts: all
  gather_facts: false
  tasks:
    - name: apply it
      kubernetes.core.k8s:
        kubeconfig: "{{ k8s_kubeconfig }}"
        state: present
        definition:
          apiVersion: v1
          kind: ConfigMap
          metadata:
            name: windflow-run
            namespace: default
          data:
            written_by: windflow
"""
REMOTE_SLEEP = """- name: a long remote task
  hosts: all
  gather_facts: false
  tasks:
    - name: sleep remotely
      ansible.builtin.command: sleep 317
      changed_when: false
"""


async def test_runs_reach_ssh_hosts_the_vm_a_container_and_kubernetes(
    admin_client: Client,
    lab_ssh_hosts: SshHosts,
    lab_vm: VirtualMachine,
    lab_docker: DockerEngine,
    lab_kubernetes: KubernetesCluster,
    target_container: str,  # noqa: F811
) -> None:
    key = await credential(admin_client, "lab key", "ssh_key", {"private_key": lab_key().private.read_text()})
    kube = await credential(admin_client, "cluster", "kubeconfig", {"kubeconfig": kubeconfig_text(lab_kubernetes)})
    python = {"ansible_python_interpreter": "/usr/bin/python3"}
    hosts = [
        {"name": "bm1", "address": lab_ssh_hosts.addresses[0], "port": lab_ssh_hosts.port, "vars": python},
        {"name": "vm1", "kind": "vm", "address": lab_vm.address, "port": lab_vm.port, "vars": python},
        {
            "name": "box",
            "kind": "docker",
            "docker_host": lab_docker.docker_host,
            "container": CONTAINER,
            "vars": python,
        },
    ]
    inventory = await make_inventory(admin_client, {"name": "lab", "user": "root", "credential": key, "hosts": hosts})
    playbook = await make_playbook(admin_client, WRITE_FILE, "mark")
    # A fresh path each time: the bare-metal hosts share this machine's /tmp with earlier sessions.
    mark = {"mark": uuid.uuid4().hex}
    run = await wait_finished(
        admin_client, (await launch(admin_client, playbook, inventory, extra_vars=mark))["id"], 240
    )
    assert run["status"] == "successful", run
    assert {host: stats["changed"] for host, stats in run["host_stats"].items()} == {"bm1": 1, "vm1": 1, "box": 1}
    again = await wait_finished(
        admin_client, (await launch(admin_client, playbook, inventory, extra_vars=mark))["id"], 240
    )
    await anyio.Path(f"/tmp/windflow-run-{mark['mark']}").unlink(missing_ok=True)  # noqa: S108 - bm1's file, here
    assert {host: stats["changed"] for host, stats in again["host_stats"].items()} == {"bm1": 0, "vm1": 0, "box": 0}

    cluster = await make_inventory(
        admin_client, {"name": "k8s", "hosts": [{"name": "cluster", "kind": "kubernetes", "credential": kube}]}
    )
    k8s_playbook = await make_playbook(admin_client, K8S, "configmap")
    run = await wait_finished(admin_client, (await launch(admin_client, k8s_playbook, cluster))["id"], 240)
    assert run["status"] == "successful", run
    assert lab_kubernetes.api_get("/api/v1/namespaces/default/configmaps/windflow-run")["data"] == {
        "written_by": "windflow"
    }


def remote_sleepers() -> list[int]:
    """The bare-metal lab hosts share this machine's process table: their commands are visible here."""
    return [p.pid for p in psutil.process_iter(["cmdline"]) if (p.info["cmdline"] or [])[:2] == ["sleep", "317"]]


async def test_cancel_stops_the_remote_task(admin_client: Client, lab_ssh_hosts: SshHosts) -> None:
    key = await credential(admin_client, "lab key", "ssh_key", {"private_key": lab_key().private.read_text()})
    host = {
        "name": "bm2",
        "address": lab_ssh_hosts.addresses[1],
        "port": lab_ssh_hosts.port,
        "vars": {"ansible_python_interpreter": "/usr/bin/python3"},
    }
    inventory = await make_inventory(admin_client, {"name": "one", "user": "root", "credential": key, "hosts": [host]})
    playbook = await make_playbook(admin_client, REMOTE_SLEEP, "remote sleep")
    run = await launch(admin_client, playbook, inventory)
    await wait_status(admin_client, run["id"], "running")
    for _ in range(200):
        if remote_sleepers():
            break
        await asyncio.sleep(0.1)
    current = (await admin_client.get(f"/api/v1/runs/{run['id']}")).json()
    assert remote_sleepers(), f"the remote command never started: {current}"
    assert (await admin_client.post(f"/api/v1/runs/{run['id']}/cancel")).status_code == 200
    ended = await wait_finished(admin_client, run["id"], 30)
    assert ended["status"] == "canceled"
    for _ in range(50):
        if not remote_sleepers():
            break
        await asyncio.sleep(0.1)
    assert remote_sleepers() == [], "the remote task outlived the cancel"
