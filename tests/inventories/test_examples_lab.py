"""The example inventories in ``inventories/`` work against the lab, used as a person would use them.

Each runs the real ``ansible`` from the repository root (the examples' paths are relative to it)
in a clean environment: ``ping`` on every host, and a module that talks to the engine or the
cluster for the Docker engine and Kubernetes hosts.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.lab.ansible import VENV_BIN, clean_env
from tests.lab.images import DEBIAN_PY, ensure_images
from tests.lab.paths import LAB_DIR, REPO
from tests.lab.ssh_hosts import wait_no_ssh_mux

RESULT = re.compile(r"^(\S+) \| (SUCCESS|CHANGED|FAILED!|UNREACHABLE!)", re.MULTILINE)
SSH_HOSTS = {"bm1", "bm2", "bm3", "node1", "node2"}
DOCKER_INFO = ("community.docker.docker_host_info", "docker_host={{ docker_host }}")
K8S_INFO = ("kubernetes.core.k8s_cluster_info", "kubeconfig={{ kubeconfig }}")


def ansible(tmp_path: Path, inventory: str, pattern: str, module: str = "ping", args: str = "") -> dict[str, str]:
    """Run an ad-hoc module; every matched host's outcome (``SUCCESS``, ``FAILED!``, …)."""
    assert LAB_DIR == REPO / ".lab", "the examples name the lab under the repository's .lab/"
    argv = [str(VENV_BIN / "ansible"), "-i", f"inventories/{inventory}", pattern, "-m", module, "-o"]
    if args:
        argv += ["-a", args]
    env = clean_env(tmp_path, ANSIBLE_DEPRECATION_WARNINGS="False")
    result = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    outcomes = dict(RESULT.findall(result.stdout))
    assert result.returncode == 0, result.stdout + result.stderr
    assert wait_no_ssh_mux(tmp_path) == []
    return outcomes


def succeeded(*hosts: str) -> dict[str, str]:
    return dict.fromkeys(hosts, "SUCCESS")


@pytest.fixture(scope="module")
def docker1(lab_docker: Any) -> Iterator[str]:
    """The container the lab runs for the Docker kind (``make lab-up`` starts the same)."""
    ensure_images(lab_docker)
    container = lab_docker.run_container(DEBIAN_PY, "windflow-lab-docker1", hostname="docker1", init=True)
    yield container.name
    container.remove(force=True)


def test_local(tmp_path: Path) -> None:
    assert ansible(tmp_path, "local.yml", "all") == succeeded("localhost")


def test_ssh(lab_ssh_hosts: Any, lab_container_hosts: Any, tmp_path: Path) -> None:
    assert ansible(tmp_path, "ssh.yml", "all") == succeeded(*SSH_HOSTS)


def test_vm(lab_vm: Any, tmp_path: Path) -> None:
    assert ansible(tmp_path, "vm.yml", "all") == succeeded("vm1")


def test_docker(docker1: str, tmp_path: Path) -> None:
    assert ansible(tmp_path, "docker.yml", "engines", *DOCKER_INFO) == succeeded("docker-engine")
    assert ansible(tmp_path, "docker.yml", "containers") == succeeded("docker1")


def test_kubernetes(lab_kubernetes: Any, tmp_path: Path) -> None:
    assert ansible(tmp_path, "kubernetes.yml", "all", *K8S_INFO) == succeeded("k8s")


def test_the_whole_lab_in_ini(
    lab_ssh_hosts: Any, lab_container_hosts: Any, lab_vm: Any, lab_kubernetes: Any, docker1: str, tmp_path: Path
) -> None:
    everything = {"localhost", "docker-engine", "docker1", "k8s", "vm1", *SSH_HOSTS}
    assert ansible(tmp_path / "ping", "lab.ini", "all") == succeeded(*everything)
    assert ansible(tmp_path / "docker", "lab.ini", "engines", *DOCKER_INFO) == succeeded("docker-engine")
    assert ansible(tmp_path / "k8s", "lab.ini", "kubernetes", *K8S_INFO) == succeeded("k8s")
