"""The lab's Docker engine, driven by real Ansible: community.docker modules and the docker_api connection."""

from __future__ import annotations

import contextlib
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.lab.ansible import host_stats, run_playbook
from tests.lab.docker_engine import LABEL, DockerEngine
from tests.lab.images import BUSYBOX, BUSYBOX_INDEX, DEBIAN_PY, ensure_images

HTTP_ADDRESS = "127.0.0.21"


@pytest.fixture
def images(lab_docker: DockerEngine) -> dict[str, str]:
    return ensure_images(lab_docker)


def free_port(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def get_with_retries(url: str, attempts: int = 50) -> httpx.Response:
    for _ in range(attempts):
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            time.sleep(0.1)
    return httpx.get(url, timeout=2)


def httpd_play(engine: DockerEngine, name: str, port: int, state: str) -> list[dict[str, Any]]:
    container: dict[str, Any] = {"name": name, "state": state, "docker_host": engine.docker_host}
    if state == "started":
        container |= {
            "image": BUSYBOX,
            "pull": "never",
            "init": True,  # busybox httpd as PID 1 would ignore SIGTERM: removal would wait 10 s
            "command": ["busybox", "httpd", "-f", "-p", "80", "-h", "/www"],
            "published_ports": [f"{HTTP_ADDRESS}:{port}:80"],
            "labels": {LABEL: "1"},
        }
    return [{"hosts": "localhost", "gather_facts": False, "tasks": [{"community.docker.docker_container": container}]}]


LOCALHOST = {
    "all": {"hosts": {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}
}


def test_docker_container_module_serves_http_and_is_idempotent(
    lab_docker: DockerEngine, images: dict[str, str], tmp_path: Path
) -> None:
    name, port = f"wf-httpd-{uuid.uuid4().hex[:8]}", free_port(HTTP_ADDRESS)
    try:
        first = run_playbook(tmp_path / "first", LOCALHOST, httpd_play(lab_docker, name, port, "started"))
        assert first.status == "successful", first.stdout.read()
        assert host_stats(first)["localhost"].get("changed") == 1

        answer = get_with_retries(f"http://{HTTP_ADDRESS}:{port}/")
        assert answer.status_code == 200
        assert answer.text == BUSYBOX_INDEX

        second = run_playbook(tmp_path / "second", LOCALHOST, httpd_play(lab_docker, name, port, "started"))
        assert second.status == "successful", second.stdout.read()
        assert host_stats(second)["localhost"].get("changed", 0) == 0

        gone = run_playbook(tmp_path / "gone", LOCALHOST, httpd_play(lab_docker, name, port, "absent"))
        assert gone.status == "successful", gone.stdout.read()
        assert host_stats(gone)["localhost"].get("changed") == 1
        with contextlib.closing(lab_docker.client()) as client:
            assert client.containers.list(all=True, filters={"name": f"^{name}$"}) == []
    finally:
        with contextlib.closing(lab_docker.client()) as client:
            for container in client.containers.list(all=True, filters={"name": f"^{name}$"}):
                container.remove(force=True)


def test_docker_api_connection_runs_modules_inside_a_container(
    lab_docker: DockerEngine, images: dict[str, str], tmp_path: Path
) -> None:
    name = f"wf-py-{uuid.uuid4().hex[:8]}"
    container = lab_docker.run_container(DEBIAN_PY, name, init=True)
    try:
        inventory = lab_docker.inventory()
        assert inventory["docker"]["hosts"][name]["ansible_docker_docker_host"] == lab_docker.docker_host
        play = {
            "hosts": "docker",
            "gather_facts": False,
            "tasks": [
                {"ansible.builtin.ping": {}},
                {"ansible.builtin.copy": {"content": "written by {{ inventory_hostname }}\n", "dest": "/srv/wf.txt"}},
                {"ansible.builtin.command": {"cmd": "cat /srv/wf.txt"}, "register": "read", "changed_when": False},
                {"ansible.builtin.assert": {"that": ["read.stdout == 'written by ' ~ inventory_hostname"]}},
            ],
        }
        runner = run_playbook(tmp_path, inventory, [play], limit=name, ANSIBLE_PIPELINING="True")
        assert runner.status == "successful", runner.stdout.read()
        assert host_stats(runner)[name] == {"ok": 4, "changed": 1}

        exit_code, output = container.exec_run(["cat", "/srv/wf.txt"])
        assert (exit_code, output) == (0, f"written by {name}\n".encode())
    finally:
        container.remove(force=True)


def test_images_are_built_once_then_cached(lab_docker: DockerEngine, images: dict[str, str]) -> None:
    began = time.monotonic()
    again = ensure_images(lab_docker)
    assert again == images
    assert time.monotonic() - began < 5


def test_runtime_clamps_negative_oom_score_adj(lab_docker: DockerEngine, images: dict[str, str]) -> None:
    """kubelet gives pause containers -998; without CAP_SYS_RESOURCE runc would fail on it."""
    with contextlib.closing(lab_docker.client()) as client:
        output = client.containers.run(
            BUSYBOX, ["cat", "/proc/self/oom_score_adj"], oom_score_adj=-998, remove=True, labels={LABEL: "1"}
        )
    assert output.strip() == b"0"
