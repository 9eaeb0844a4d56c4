"""Session-scoped lab targets for any test: each starts once per session, and only when a test asks.

Registered for the whole suite by ``pytest_plugins`` in ``tests/conftest.py``, so one lab serves
every directory (a second definition would start a second, clashing lab)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


def running(target: Any) -> Iterator[Any]:
    """Start ``target`` for the session and stop it (waiting for its daemons) afterwards."""
    target.start()
    try:
        yield target
    finally:
        target.stop()


@pytest.fixture(scope="session")
def lab_docker() -> Iterator[Any]:
    from tests.lab.docker_engine import DockerEngine

    yield from running(DockerEngine())


@pytest.fixture(scope="session")
def lab_ssh_hosts() -> Iterator[Any]:
    """sshd hosts on 127.0.0.x that share this machine's filesystem (bare metal)."""
    from tests.lab.ssh_hosts import SshHosts

    yield from running(SshHosts())


@pytest.fixture(scope="session")
def lab_container_hosts(lab_docker: Any) -> Iterator[Any]:
    """sshd hosts with their own filesystem and hostname: containers published on 127.0.0.x:22."""
    from tests.lab.ssh_hosts import ContainerHosts

    yield from running(ContainerHosts(lab_docker))


@pytest.fixture(scope="session")
def lab_vm() -> Iterator[Any]:
    from tests.lab.vm import VirtualMachine

    yield from running(VirtualMachine())


@pytest.fixture(scope="session")
def lab_kubernetes(lab_docker: Any) -> Iterator[Any]:
    from tests.lab.kubernetes import KubernetesCluster

    yield from running(KubernetesCluster(lab_docker))
