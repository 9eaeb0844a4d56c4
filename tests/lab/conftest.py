"""Session-scoped lab targets: each starts once per test session, and only when a test asks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def lab_docker() -> Iterator[Any]:
    from tests.lab.docker_engine import DockerEngine

    engine = DockerEngine()
    engine.start()
    try:
        yield engine
    finally:
        engine.stop()


@pytest.fixture(scope="session")
def lab_ssh_hosts() -> Iterator[Any]:
    """sshd hosts on 127.0.0.x that share this machine's filesystem (bare metal)."""
    from tests.lab.ssh_hosts import SshHosts

    hosts = SshHosts()
    hosts.start()
    try:
        yield hosts
    finally:
        hosts.stop()


@pytest.fixture(scope="session")
def lab_container_hosts(lab_docker: Any) -> Iterator[Any]:
    """sshd hosts with their own filesystem and hostname: containers published on 127.0.0.x:22."""
    from tests.lab.ssh_hosts import ContainerHosts

    hosts = ContainerHosts(lab_docker)
    hosts.start()
    try:
        yield hosts
    finally:
        hosts.stop()


@pytest.fixture(scope="session")
def lab_vm() -> Iterator[Any]:
    from tests.lab.vm import VirtualMachine

    vm = VirtualMachine()
    vm.start()
    try:
        yield vm
    finally:
        vm.stop()


@pytest.fixture(scope="session")
def lab_kubernetes(lab_docker: Any) -> Iterator[Any]:
    from tests.lab.kubernetes import KubernetesCluster

    cluster = KubernetesCluster(lab_docker)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
