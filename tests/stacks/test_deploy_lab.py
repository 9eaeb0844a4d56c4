"""Stacks deployed for real on the lab: Docker, Kubernetes, an SSH host and the VM; redeploy, undeploy."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from litestar.testing import AsyncTestClient

from tests.factories import files_containing
from tests.inventories.test_check_lab import credential, kubeconfig_text
from tests.lab.docker_engine import DockerEngine
from tests.lab.images import BUSYBOX, DEBIAN_PY, ensure_images
from tests.lab.keys import lab_key
from tests.lab.kubernetes import KubernetesCluster
from tests.lab.ssh_hosts import SshHosts
from tests.lab.vm import ENGINE_ADDRESS, ENGINE_PORT, VirtualMachine
from tests.runs.test_launch import make_inventory, wait_finished

Client = AsyncTestClient[Any]
ADDRESS = "127.0.0.23"  # the published ports of the Docker deployment
HOST_ADDRESS = "127.0.0.24"  # the published ports of the SSH host's deployment
VM_ADDRESS = "127.0.0.25"  # the published ports of the VM's deployment
PYTHON_HEALTH = "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/', timeout=2)"

# Three services: a "database" with a volume and a health check, an API that waits for it to be
# healthy, and a web front that waits for the API and is published on the host. Local images only.
SHOP = f"""
metadata:
  name: Lab shop
  version: 1.0.0
  description: Three services with depends_on and health checks, made of the lab's images.
  targets: [docker, kubernetes, vm, bare-metal]
template:
  services:
    db:
      image: {DEBIAN_PY}
      entrypoint: [python3, -m, http.server, "5000", --directory, /data]
      environment:
        DB_PASSWORD: "{{{{ db_password }}}}"
      volumes: ["data:/data"]
      networks: [backend]
      healthcheck:
        test: [CMD, python3, -c, "{PYTHON_HEALTH}"]
        interval: 1s
        timeout: 3s
        retries: 60
      restart: unless-stopped
      init: true
      stop_grace_period: 1s
    api:
      image: {BUSYBOX}
      command: [sh, -c, "mkdir -p /srv && echo api-ok > /srv/index.html && exec httpd -f -p 8080 -h /srv"]
      environment:
        DATABASE_URL: "postgres://shop:{{{{ db_password }}}}@db:5000/shop"
      depends_on:
        db: {{condition: service_healthy}}
      networks: [backend, front]
      expose: [8080]
      healthcheck:
        test: [CMD, wget, -q, -O, /dev/null, "http://127.0.0.1:8080/"]
        interval: 1s
        retries: 60
      restart: unless-stopped
      init: true
      stop_grace_period: 1s
    web:
      image: {BUSYBOX}
      command: [sh, -c, "mkdir -p /srv && echo '{{{{ greeting }}}}' > /srv/index.html && exec httpd -f -p 80 -h /srv"]
      depends_on: [api]
      networks: [front]
      ports: ["{{{{ web_port }}}}:80"]
      restart: unless-stopped
      init: true
      stop_grace_period: 1s
  volumes:
    data: {{}}
  networks:
    backend: {{}}
    front: {{}}
variables:
  greeting: {{type: string, default: "hello from the shop", max_length: 100}}
  web_port: {{type: integer, default: 18080, minimum: 1024, maximum: 65535}}
  db_password: {{type: password, default: "{{{{ generate_password(20) }}}}", min_length: 12}}
target_parameters:
  kubernetes: {{image_pull_policy: Never, wait_timeout: 240}}
deployment_notes: |
  The shop answers on port {{{{ web_port }}}}.
"""

# Version 1.1.0 drops the web service: a redeploy must remove what it had.
SHOP_WITHOUT_WEB = (SHOP[: SHOP.index("    web:\n")] + SHOP[SHOP.index("  volumes:\n") :]).replace("1.0.0", "1.1.0")


def free_port(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


async def get_text(url: str, attempts: int = 100) -> str:
    async with httpx.AsyncClient() as http:
        for _ in range(attempts):
            with contextlib.suppress(httpx.TransportError):
                response = await http.get(url, timeout=2)
                if response.status_code == 200:
                    return response.text
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never answered")


async def make_stack(client: Client, text: str = SHOP) -> dict[str, Any]:
    response = await client.post("/api/v1/stacks", json={"definition": text})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def deploy(client: Client, stack: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(f"/api/v1/stacks/{stack['id']}/deploy", json=body)
    assert response.status_code == 201, response.text
    launched = response.json()
    run = await wait_finished(client, launched["run"]["id"], 400)
    assert run["status"] == "successful", await stdout(client, run["id"])
    return {"deployment": launched["deployment"], "run": run}


async def stdout(client: Client, run_id: str) -> str:
    return str((await client.get(f"/api/v1/runs/{run_id}/stdout", params={"ansi": "false"})).text)


async def follow(
    client: Client, stack: dict[str, Any], deployment: dict[str, Any], action: str, body: dict[str, Any]
) -> dict[str, Any]:
    url = f"/api/v1/stacks/{stack['id']}/deployments/{deployment['id']}/{action}"
    response = await client.post(url, json=body)
    assert response.status_code == 201, response.text
    run = await wait_finished(client, response.json()["run"]["id"], 400)
    assert run["status"] == "successful", await stdout(client, run["id"])
    return dict(run)


def project_objects(engine: DockerEngine, project: str) -> dict[str, list[str]]:
    """What the Docker engine holds for a project: containers (by label), networks and volumes (by name)."""
    client = docker.DockerClient(base_url=engine.docker_host)
    try:
        label = f"com.windflow.project={project}"
        return {
            "containers": sorted(c.name for c in client.containers.list(all=True, filters={"label": label})),
            "networks": sorted(n.name for n in client.networks.list() if n.name.startswith(f"{project}_")),
            "volumes": sorted(v.name for v in client.volumes.list() if v.name.startswith(f"{project}_")),
        }
    finally:
        client.close()


def changed(run: dict[str, Any]) -> dict[str, int]:
    return {host: stats["changed"] for host, stats in run["host_stats"].items()}


async def test_a_three_service_stack_on_docker_deploys_redeploys_unchanged_and_undeploys(
    admin_client: Client, lab_docker: DockerEngine
) -> None:
    ensure_images(lab_docker)
    stack = await make_stack(admin_client)
    inventory = await make_inventory(
        admin_client,
        {"name": "engine", "hosts": [{"name": "engine", "kind": "docker", "docker_host": lab_docker.docker_host}]},
    )
    port = free_port(ADDRESS)
    project = f"shop-{uuid.uuid4().hex[:6]}"
    body = {
        "inventory_id": inventory["id"],
        "target": "docker",
        "name": project,
        "values": {"web_port": port, "greeting": "hello docker"},
        "parameters": {"bind_address": ADDRESS, "pull": "never"},
    }
    with removed_afterwards(lab_docker, project):
        first = await deploy(admin_client, stack, body)
        assert await get_text(f"http://{ADDRESS}:{port}/") == "hello docker\n"
        objects = project_objects(lab_docker, project)
        assert objects["containers"] == [f"{project}-api-1", f"{project}-db-1", f"{project}-web-1"]
        assert objects["networks"] == [f"{project}_backend", f"{project}_front"]
        assert objects["volumes"] == [f"{project}_data"]
        deployment = first["deployment"]
        # The generated password reached the containers but nothing WindFlow shows or stores in clear.
        client = docker.DockerClient(base_url=lab_docker.docker_host)
        env = dict(e.split("=", 1) for e in client.containers.get(f"{project}-db-1").attrs["Config"]["Env"])
        api_env = dict(e.split("=", 1) for e in client.containers.get(f"{project}-api-1").attrs["Config"]["Env"])
        client.close()
        password = env["DB_PASSWORD"]
        assert len(password) == 20 and api_env["DATABASE_URL"] == f"postgres://shop:{password}@db:5000/shop"
        shown = (await admin_client.get(f"/api/v1/stacks/{stack['id']}/deployments/{deployment['id']}")).text
        events = (await admin_client.get(f"/api/v1/runs/{first['run']['id']}/events", params={"size": 500})).text
        playbook = (await admin_client.get(f"/api/v1/playbooks/{deployment['playbook_id']}")).text
        assert password not in shown + events + playbook + await stdout(admin_client, first["run"]["id"])
        assert files_containing(Path(admin_client.app.state.settings.data_dir), password) == []

        second = await follow(admin_client, stack, deployment, "redeploy", {})
        assert changed(second) == {"engine": 0}, await stdout(admin_client, second["id"])
        listed = (await admin_client.get(f"/api/v1/stacks/{stack['id']}/deployments")).json()
        assert [(d["name"], d["status"], d["last_run_id"]) for d in listed["items"]] == [
            (project, "deployed", second["id"])
        ]

        # Version 2 of the stack drops the web service: the redeploy removes its container.
        patched = await admin_client.patch(f"/api/v1/stacks/{stack['id']}", json={"definition": SHOP_WITHOUT_WEB})
        assert patched.json()["latest_version"] == 2, patched.text
        third = await follow(admin_client, stack, deployment, "redeploy", {})
        assert project_objects(lab_docker, project)["containers"] == [f"{project}-api-1", f"{project}-db-1"]
        assert changed(third) == {"engine": 1}, await stdout(admin_client, third["id"])

        await follow(admin_client, stack, deployment, "undeploy", {})
        assert project_objects(lab_docker, project) == {
            "containers": [],
            "networks": [],
            "volumes": [f"{project}_data"],
        }
        await follow(admin_client, stack, deployment, "undeploy", {"remove_volumes": True})
        assert project_objects(lab_docker, project) == {"containers": [], "networks": [], "volumes": []}
        gone = await admin_client.delete(f"/api/v1/stacks/{stack['id']}/deployments/{deployment['id']}")
        assert gone.status_code == 204, gone.text


async def test_the_stack_deploys_to_kubernetes_and_undeploys(
    admin_client: Client, lab_docker: DockerEngine, lab_kubernetes: KubernetesCluster
) -> None:
    ensure_images(lab_docker)
    stack = await make_stack(admin_client)
    kube = await credential(admin_client, "cluster", "kubeconfig", {"kubeconfig": kubeconfig_text(lab_kubernetes)})
    inventory = await make_inventory(
        admin_client, {"name": "k8s", "hosts": [{"name": "cluster", "kind": "kubernetes", "credential": kube}]}
    )
    project = f"shop-{uuid.uuid4().hex[:6]}"
    # The lab has no storage provisioner: a hostPath volume of its own class takes the claim.
    api = k8s.CoreV1Api(k8s_config.new_client_from_config(str(lab_kubernetes.kubeconfig)))
    api.create_persistent_volume(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": f"{project}-pv"},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": "windflow-lab",
                "persistentVolumeReclaimPolicy": "Delete",
                "hostPath": {"path": f"/tmp/windflow-lab-pv-{project}", "type": "DirectoryOrCreate"},  # noqa: S108
            },
        }
    )
    try:
        await _deploy_to_kubernetes(admin_client, stack, inventory, project, lab_kubernetes)
    finally:
        with contextlib.suppress(k8s.ApiException):
            api.delete_persistent_volume(f"{project}-pv")


async def _deploy_to_kubernetes(
    admin_client: Client,
    stack: dict[str, Any],
    inventory: dict[str, Any],
    project: str,
    lab_kubernetes: KubernetesCluster,
) -> None:
    body = {
        "inventory_id": inventory["id"],
        "target": "kubernetes",
        "name": project,
        "values": {"greeting": "hello kubernetes"},
        "parameters": {"storage_class": "windflow-lab"},
    }
    first = await deploy(admin_client, stack, body)
    for name in ("db", "api", "web"):
        deployment = lab_kubernetes.api_get(f"/apis/apps/v1/namespaces/{project}/deployments/{name}")
        assert deployment["status"].get("availableReplicas") == 1, deployment["status"]
    pods = lab_kubernetes.api_get(f"/api/v1/namespaces/{project}/pods")["items"]
    assert sorted(p["metadata"]["labels"]["app.kubernetes.io/name"] for p in pods) == ["api", "db", "web"]
    assert all(c["ready"] for p in pods for c in p["status"]["containerStatuses"])
    secret = lab_kubernetes.api_get(f"/api/v1/namespaces/{project}/secrets/db-env")
    assert set(secret["data"]) == {"DB_PASSWORD"}

    again = await follow(admin_client, stack, first["deployment"], "redeploy", {})
    assert changed(again) == {"cluster": 0}, await stdout(admin_client, again["id"])
    # Version 2 drops the web service: the redeploy removes its Deployment and its Service.
    await admin_client.patch(f"/api/v1/stacks/{stack['id']}", json={"definition": SHOP_WITHOUT_WEB})
    await follow(admin_client, stack, first["deployment"], "redeploy", {})
    names = [
        d["metadata"]["name"]
        for d in lab_kubernetes.api_get(f"/apis/apps/v1/namespaces/{project}/deployments")["items"]
    ]
    assert sorted(names) == ["api", "db"]

    await follow(admin_client, stack, first["deployment"], "undeploy", {"remove_volumes": True})
    for _ in range(600):
        namespaces = lab_kubernetes.api_get("/api/v1/namespaces")["items"]
        if project not in [n["metadata"]["name"] for n in namespaces]:
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail(f"namespace {project} is still there")


@contextlib.contextmanager
def removed_afterwards(engine: DockerEngine, project: str) -> Iterator[None]:
    """Whatever the test's outcome, the project's containers do not outlive it."""
    try:
        yield
    finally:
        client = docker.DockerClient(base_url=engine.docker_host)
        for container in client.containers.list(all=True, filters={"label": f"com.windflow.project={project}"}):
            container.remove(force=True)
        client.close()


async def deploy_on_a_host(
    client: Client, engine: DockerEngine, host: dict[str, Any], target: str, address: str, docker_host: str
) -> None:
    """Deploy, check the page, redeploy (changed=0), undeploy: the flow of both host kinds."""
    ensure_images(engine)
    stack = await make_stack(client)
    key = await credential(client, "lab key", "ssh_key", {"private_key": lab_key().private.read_text()})
    host = {**host, "vars": {"ansible_python_interpreter": "/usr/bin/python3"}}
    inventory = await make_inventory(client, {"name": target, "user": "root", "credential": key, "hosts": [host]})
    port = free_port(address)
    project = f"shop-{uuid.uuid4().hex[:6]}"
    body = {
        "inventory_id": inventory["id"],
        "target": target,
        "name": project,
        "values": {"web_port": port, "greeting": f"hello {target}"},
        "parameters": {"bind_address": address, "pull": "never", "become": False, "docker_host": docker_host},
    }
    with removed_afterwards(engine, project):
        first = await deploy(client, stack, body)
        assert await get_text(f"http://{address}:{port}/") == f"hello {target}\n"
        again = await follow(client, stack, first["deployment"], "redeploy", {})
        assert changed(again) == {host["name"]: 0}, await stdout(client, again["id"])
        await follow(client, stack, first["deployment"], "undeploy", {"remove_volumes": True})
        assert project_objects(engine, project) == {"containers": [], "networks": [], "volumes": []}


async def test_the_stack_deploys_to_an_ssh_host_with_its_engine(
    admin_client: Client, lab_docker: DockerEngine, lab_ssh_hosts: SshHosts
) -> None:
    """A bare-metal host (it shares this machine): prepared by the roles, then the containers."""
    host = {"name": "bm1", "address": lab_ssh_hosts.addresses[0], "port": lab_ssh_hosts.port}
    await deploy_on_a_host(admin_client, lab_docker, host, "bare-metal", HOST_ADDRESS, lab_docker.docker_host)


async def test_the_stack_deploys_from_the_vm(
    admin_client: Client, lab_docker: DockerEngine, lab_vm: VirtualMachine
) -> None:
    """The VM is prepared by the roles and runs the deploy; its engine is the lab's, over guestfwd.

    The guest has no network to install an engine from: ``docker_engine`` finds the one it is
    given (``tcp://10.0.2.100:2375``) answering and installs nothing; the containers' published
    ports are then on this machine.
    """
    host = {"name": "vm1", "kind": "vm", "address": lab_vm.address, "port": lab_vm.port}
    await deploy_on_a_host(admin_client, lab_docker, host, "vm", VM_ADDRESS, f"tcp://{ENGINE_ADDRESS}:{ENGINE_PORT}")
