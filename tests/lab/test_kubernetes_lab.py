"""The lab cluster runs real pods: Ansible's ``kubernetes.core.k8s`` deploys, the API confirms."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from tests.lab.ansible import host_stats, run_playbook
from tests.lab.images import BUSYBOX, ensure_images

NAMESPACE = "windflow-lab"


def deployment(image: str) -> dict[str, Any]:
    labels = {"app": "web"}
    container = {
        "name": "httpd",
        "image": image,
        "imagePullPolicy": "Never",
        "command": ["busybox", "httpd", "-f", "-p", "8080", "-h", "/www"],
        "ports": [{"containerPort": 8080}],
        # The kubelet fetches the page over the lab's Docker bridge: the pod really serves.
        "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": NAMESPACE},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                # No grace: the namespace controller removes the pods at once instead of retrying
                # (with backoff) until the kubelet has reported them stopped.
                "spec": {"containers": [container], "terminationGracePeriodSeconds": 0},
            },
        },
    }


def k8s_task(title: str, **args: Any) -> dict[str, Any]:
    return {"name": title, "kubernetes.core.k8s": {"kubeconfig": "{{ kubeconfig }}", **args}}


def deploy_playbook(image: str) -> list[dict[str, Any]]:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    tasks = [
        k8s_task("namespace", state="present", definition=namespace),
        k8s_task(
            "deployment",
            state="present",
            definition=deployment(image),
            wait=True,
            wait_condition={"type": "Available", "status": "True"},
            wait_timeout=180,
        ),
    ]
    return [{"name": "deploy", "hosts": "k8s", "gather_facts": False, "tasks": tasks}]


def delete_playbook() -> list[dict[str, Any]]:
    task = k8s_task(
        "delete namespace", state="absent", kind="Namespace", name=NAMESPACE, wait=True, wait_sleep=1, wait_timeout=180
    )
    return [{"name": "delete", "hosts": "k8s", "gather_facts": False, "tasks": [task]}]


def run(cluster: Any, directory: Path, playbook: list[dict[str, Any]]) -> dict[str, int]:
    inventory = {"all": {"children": {"kubernetes": cluster.inventory()}}}
    runner = run_playbook(directory, inventory, playbook, timeout=400)
    assert runner.status == "successful", runner.stdout.read()
    return host_stats(runner)["k8s"]


@pytest.fixture
def api(lab_kubernetes: Any) -> Any:
    api_client = k8s_config.new_client_from_config(config_file=str(lab_kubernetes.kubeconfig))
    with contextlib.closing(api_client):
        yield api_client


def test_the_node_is_ready(lab_kubernetes: Any, api: Any) -> None:
    nodes = k8s.CoreV1Api(api).list_node().items
    assert [node.metadata.name for node in nodes] == ["localhost"]
    ready = {c.type: c.status for c in nodes[0].status.conditions}["Ready"]
    assert ready == "True"
    assert lab_kubernetes.status()["running"]


def test_ansible_deploys_a_deployment_idempotently(
    lab_kubernetes: Any, lab_docker: Any, api: Any, tmp_path: Path
) -> None:
    ensure_images(lab_docker)
    image = BUSYBOX

    began = time.monotonic()
    first = run(lab_kubernetes, tmp_path / "first", deploy_playbook(image))
    lab_kubernetes.timings["first_deployment_available_seconds"] = round(time.monotonic() - began, 1)
    assert first["changed"] == 2

    status = k8s.AppsV1Api(api).read_namespaced_deployment("web", NAMESPACE).status
    assert status.available_replicas == 2
    pods = k8s.CoreV1Api(api).list_namespaced_pod(NAMESPACE, label_selector="app=web").items
    assert len(pods) == 2
    for pod in pods:
        assert pod.spec.node_name == "localhost"
        assert {c.type: c.status for c in pod.status.conditions}["Ready"] == "True"
        # Logs come from the kubelet itself: the API server's client certificate is accepted there.
        assert isinstance(k8s.CoreV1Api(api).read_namespaced_pod_log(pod.metadata.name, NAMESPACE), str)

    second = run(lab_kubernetes, tmp_path / "second", deploy_playbook(image))
    assert second.get("changed", 0) == 0

    began = time.monotonic()
    run(lab_kubernetes, tmp_path / "delete", delete_playbook())
    lab_kubernetes.timings["namespace_deleted_seconds"] = round(time.monotonic() - began, 1)
    names = [ns.metadata.name for ns in k8s.CoreV1Api(api).list_namespace().items]
    assert NAMESPACE not in names
    print("kubernetes lab timings:", lab_kubernetes.timings)  # shown with -s / -rP
