"""The whole lab as one thing: start every target in order, write the inventory, stop in reverse."""

from __future__ import annotations

import json
import time
from typing import Any

import yaml

from tests.lab.paths import LAB_DIR, ensure_dirs

INVENTORY = LAB_DIR / "inventory.yml"
STATUS = LAB_DIR / "status.json"
DOCKER_TARGET_IMAGE = "localhost/windflow/debian-py:bookworm"


class Lab:
    def __init__(self) -> None:
        from tests.lab.docker_engine import DockerEngine
        from tests.lab.kubernetes import KubernetesCluster
        from tests.lab.ssh_hosts import ContainerHosts, SshHosts
        from tests.lab.vm import VirtualMachine

        self.docker = DockerEngine()
        self.ssh_hosts = SshHosts()
        self.container_hosts = ContainerHosts(self.docker)
        self.vm = VirtualMachine()
        self.kubernetes = KubernetesCluster(self.docker)
        self.started: list[Any] = []
        self.timings: dict[str, float] = {}

    @property
    def targets(self) -> list[tuple[str, Any]]:
        return [
            ("docker", self.docker),
            ("ssh_hosts", self.ssh_hosts),
            ("container_hosts", self.container_hosts),
            ("vm", self.vm),
            ("kubernetes", self.kubernetes),
        ]

    def start(self) -> None:
        ensure_dirs()
        from tests.lab.images import ensure_images

        for name, target in self.targets:
            began = time.monotonic()
            target.start()
            self.started.append(target)
            if name == "docker":
                ensure_images(target)
                # A container with Python for the `docker` group (the docker_api connection).
                target.run_container(DOCKER_TARGET_IMAGE, "windflow-lab-docker1", hostname="docker1", init=True)
            self.timings[name] = round(time.monotonic() - began, 1)
        write_inventory(self.inventory())

    def stop(self) -> None:
        errors = []
        while self.started:
            target = self.started.pop()
            try:
                target.stop()
            except Exception as exc:  # noqa: BLE001 - keep stopping the others, then report
                errors.append(f"{type(target).__name__}: {exc}")
        INVENTORY.unlink(missing_ok=True)
        if errors:
            raise RuntimeError("lab teardown incomplete: " + "; ".join(errors))

    def inventory(self) -> dict[str, Any]:
        """One group per kind: ``docker``, ``kubernetes``, ``vm``, ``baremetal``."""
        baremetal = merge_groups(self.ssh_hosts.inventory(), self.container_hosts.inventory())
        children = {
            "docker": self.docker.inventory()["docker"],
            "kubernetes": self.kubernetes.inventory(),
            "vm": self.vm.inventory(),
            "baremetal": baremetal,
        }
        return {"all": {"children": children}}

    def status(self) -> dict[str, Any]:
        return {name: target.status() for name, target in self.targets} | {"startup_seconds": self.timings}


def merge_groups(*groups: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for group in groups:
        for key in ("hosts", "vars", "children"):
            if group.get(key):
                merged.setdefault(key, {}).update(group[key])
    return merged


def write_inventory(inventory: dict[str, Any]) -> None:
    INVENTORY.write_text(yaml.safe_dump(inventory, sort_keys=False))
    INVENTORY.chmod(0o600)


def write_status(status: dict[str, Any]) -> None:
    STATUS.write_text(json.dumps(status, indent=2, default=str))
