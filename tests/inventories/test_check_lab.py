"""Connectivity checks and dynamic sources against the lab: all four kinds, for real."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from litestar.testing import AsyncTestClient

from tests.credentials.samples import tls_pair
from tests.factories import files_containing
from tests.lab.docker_engine import DockerEngine
from tests.lab.images import DEBIAN_PY, ensure_images
from tests.lab.keys import lab_key, wrong_key
from tests.lab.kubernetes import KubernetesCluster
from tests.lab.ssh_hosts import SshHosts
from tests.lab.vm import VirtualMachine

Client = AsyncTestClient[Any]
CONTAINER = "windflow-inventory-target"


@pytest.fixture
def target_container(lab_docker: DockerEngine) -> Iterator[str]:
    """A container with Python, for the Docker kind's container hosts."""
    ensure_images(lab_docker)
    container = lab_docker.run_container(DEBIAN_PY, CONTAINER, hostname="target", init=True)
    yield CONTAINER
    container.remove(force=True)


async def credential(client: Client, name: str, kind: str, inputs: dict[str, Any]) -> str:
    response = await client.post("/api/v1/credentials", json={"name": name, "kind": kind, "inputs": inputs})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def kubeconfig_text(cluster: KubernetesCluster, ca_pem: bytes | None = None) -> str:
    """The lab's kubeconfig with its CA embedded (a credential carries no paths), or another CA."""
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    entry = config["clusters"][0]["cluster"]
    ca_path = Path(entry.pop("certificate-authority"))
    entry["certificate-authority-data"] = base64.b64encode(ca_pem or ca_path.read_bytes()).decode()
    return yaml.safe_dump(config)


async def test_every_kind_is_checked_for_real_and_a_wrong_key_is_named(
    admin_client: Client,
    lab_ssh_hosts: SshHosts,
    lab_vm: VirtualMachine,
    lab_docker: DockerEngine,
    lab_kubernetes: KubernetesCluster,
    target_container: str,
) -> None:
    key = await credential(admin_client, "lab key", "ssh_key", {"private_key": lab_key().private.read_text()})
    stranger = await credential(admin_client, "wrong key", "ssh_key", {"private_key": wrong_key().private.read_text()})
    kube = await credential(admin_client, "lab cluster", "kubeconfig", {"kubeconfig": kubeconfig_text(lab_kubernetes)})
    bad_ca = await credential(
        admin_client,
        "other CA",
        "kubeconfig",
        {"kubeconfig": kubeconfig_text(lab_kubernetes, tls_pair("not the lab").cert.encode())},
    )
    python = {"ansible_python_interpreter": "/usr/bin/python3"}
    ssh = [
        {"name": f"bm{i}", "address": address, "port": lab_ssh_hosts.port, "vars": python}
        for i, address in enumerate(lab_ssh_hosts.addresses, 1)
    ]
    body = {
        "name": "lab",
        "hosts": [
            *ssh,
            {
                "name": "vm1",
                "kind": "vm",
                "hypervisor": "qemu",
                "address": lab_vm.address,
                "port": lab_vm.port,
                "vars": python,
            },
            {
                "name": "intruder",
                "address": lab_ssh_hosts.addresses[0],
                "port": lab_ssh_hosts.port,
                "credential": stranger,
            },
            {
                "name": "nopython",
                "address": lab_ssh_hosts.addresses[1],
                "port": lab_ssh_hosts.port,
                "user": "root",
                "credential": key,
                "vars": {"ansible_python_interpreter": "/nonexistent/python3"},
            },
            {"name": "engine", "kind": "docker", "docker_host": lab_docker.docker_host},
            {"name": "target", "kind": "docker", "docker_host": lab_docker.docker_host, "container": CONTAINER},
            {"name": "gone", "kind": "docker", "docker_host": lab_docker.docker_host, "container": "no-such-thing"},
            {"name": "k8s", "kind": "kubernetes", "credential": kube, "namespace": "default"},
            {"name": "k8s-wrong-ca", "kind": "kubernetes", "credential": bad_ca},
        ],
        "groups": [
            {
                "name": "ssh",
                "kind": "bare-metal",
                "user": "root",
                "credential": key,
                "hosts": ["bm1", "bm2", "bm3"],
                "children": ["vms"],
            },
            {"name": "vms", "kind": "vm", "hosts": ["vm1"]},
        ],
    }
    created = await admin_client.post("/api/v1/inventories", json=body)
    assert created.status_code == 201, created.text
    inventory = created.json()

    response = await admin_client.post(f"/api/v1/inventories/{inventory['id']}/check")
    assert response.status_code == 200, response.text
    hosts = {h["name"]: h for h in response.json()["hosts"]}
    for name in ("bm1", "bm2", "bm3", "vm1", "engine", "target", "k8s"):
        assert hosts[name]["reachable"], (name, hosts[name]["error"])
        assert hosts[name]["latency_ms"] > 0
    assert hosts["vm1"]["kind"] == "vm" and hosts["k8s"]["kind"] == "kubernetes"
    assert hosts["intruder"]["error_code"] == "auth_refused", hosts["intruder"]
    assert "rejected the key" in hosts["intruder"]["error"]
    assert hosts["gone"]["error_code"] == "no_container"
    assert hosts["nopython"]["error_code"] == "no_python", hosts["nopython"]
    assert hosts["k8s-wrong-ca"]["error_code"] == "tls_mismatch", hosts["k8s-wrong-ca"]
    assert response.json()["reachable"] == 7 and response.json()["unreachable"] == 4

    # Nothing secret is left in the data directory once the check is over.
    key_body = lab_key().private.read_text().splitlines()[1]
    assert files_containing(Path(admin_client.app.state.settings.data_dir), key_body) == []


async def test_docker_and_kubernetes_sources_sync(
    admin_client: Client, lab_docker: DockerEngine, lab_kubernetes: KubernetesCluster, target_container: str
) -> None:
    source = {"plugin": "community.docker.docker_containers", "docker_host": lab_docker.docker_host}
    created = (await admin_client.post("/api/v1/inventories", json={"name": "containers", "source": source})).json()
    assert created["synced_at"] is None and created["host_count"] == 0
    synced = await admin_client.post(f"/api/v1/inventories/{created['id']}/sync")
    assert synced.status_code == 200, synced.text
    body = synced.json()
    assert body["sync_status"] == "successful", body["sync_error"]
    assert body["synced_at"] is not None
    hosts = {h["name"]: h for h in body["hosts"]}
    assert hosts[CONTAINER]["kind"] == "docker"
    assert hosts[CONTAINER]["vars"]["ansible_connection"] == "community.docker.docker_api"
    checked = await admin_client.post(f"/api/v1/inventories/{created['id']}/check", params={"limit": CONTAINER})
    assert checked.json()["hosts"][0]["reachable"], checked.text

    kubeconfig = kubeconfig_text(lab_kubernetes)
    kube = await credential(admin_client, "cluster", "kubeconfig", {"kubeconfig": kubeconfig})
    api = k8s_client.CoreV1Api(k8s_config.new_client_from_config_dict(yaml.safe_load(kubeconfig)))
    pod = {
        "metadata": {"name": "inventory-probe", "labels": {"app": "probe"}},
        "spec": {
            "containers": [
                {"name": "main", "image": DEBIAN_PY, "imagePullPolicy": "Never", "command": ["sleep", "300"]}
            ]
        },
    }
    api.create_namespaced_pod("default", pod)
    try:
        source = {"plugin": "kubernetes.core.k8s", "credential": kube, "namespaces": ["default"]}
        created = (await admin_client.post("/api/v1/inventories", json={"name": "pods", "source": source})).json()
        body = (await admin_client.post(f"/api/v1/inventories/{created['id']}/sync")).json()
        assert body["sync_status"] == "successful", body["sync_error"]
        names = [h["name"] for h in body["hosts"]]
        assert "default-inventory-probe-main" in names
        groups = {g["name"]: g["hosts"] for g in body["groups"]}
        assert groups["label_app_probe"] == ["default-inventory-probe-main"]
        assert body["credential"] == kube and body["kind"] == "kubernetes"
    finally:
        api.delete_namespaced_pod("inventory-probe", "default", grace_period_seconds=0)
