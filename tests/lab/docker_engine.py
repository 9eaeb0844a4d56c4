"""A real Docker engine on a unix socket of the lab: Debian's ``dockerd``, no iptables, no registry.

Images live in the cache directory so they survive between runs (see ``tests.lab.images``); the
socket, exec root and logs live in the lab directory. dockerd's default runtime is a wrapper that
clamps a negative ``oomScoreAdj`` to 0 before calling ``runc``: root here lacks
``CAP_SYS_RESOURCE``, and kubelet asks for -998 on its pause containers.

Nothing is pulled: dockerd's proxy points at a closed loopback port, so a stray pull fails at once
instead of reaching a registry, and containers get ``127.0.0.1`` (their own loopback) as DNS.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import time
from pathlib import Path
from typing import Any

import docker

from tests.lab.install import ensure_packages
from tests.lab.mounts import mountpoints, unmount_under
from tests.lab.paths import CACHE_DIR, LAB_DIR
from tests.lab.procs import Daemon, LabError, run

LABEL = "windflow.lab"  # every container the lab starts carries it
PYTHON_LABEL = "windflow.lab.python"  # images with Python say where (inherited by their containers)
BRIDGE = "docker0"
BRIDGE_CIDR = "10.213.0.1/24"
CLOSED_PORT_PROXY = "http://127.0.0.1:9"  # discard port, nothing listens: any pull fails locally

RUNTIME_WRAPPER = '''#!/usr/bin/python3 -I
"""runc, but a negative process.oomScoreAdj in the bundle's config.json becomes 0 (no CAP_SYS_RESOURCE)."""
import json
import os
import sys

RUNC = "/usr/sbin/runc"
VALUED = {"--root", "--log", "--log-format", "--criu", "--rootless"}


def command(args):
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in VALUED:
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def bundle(args):
    for i, arg in enumerate(args):
        if arg in ("--bundle", "-b") and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(("--bundle=", "-b=")):
            return arg.split("=", 1)[1]
    return "."


args = sys.argv[1:]
if command(args) in ("create", "run"):
    path = os.path.join(bundle(args), "config.json")
    with open(path) as f:
        spec = json.load(f)
    process = spec.get("process") or {}
    if process.get("oomScoreAdj", 0) < 0:
        process["oomScoreAdj"] = 0
        with open(path, "w") as f:
            json.dump(spec, f)
os.execv(RUNC, [RUNC, *args])
'''


class DockerEngine:
    """``start()`` / ``stop()`` / ``status()`` of the lab's dockerd, plus clients and inventory."""

    def __init__(self, lab_dir: Path = LAB_DIR, cache_dir: Path = CACHE_DIR) -> None:
        self.dir = lab_dir / "docker"
        self.data_root = cache_dir / "docker-data"
        self.exec_root = self.dir / "exec"
        self.socket = self.dir / "docker.sock"
        self.pidfile = self.dir / "dockerd.pid"
        self.runtime = self.dir / "runc-wrapper"
        self.daemon: Daemon | None = None
        self.start_seconds: float | None = None

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket}"

    def argv(self) -> list[str]:
        config = self.dir / "daemon.json"
        return [
            "dockerd",
            f"--host={self.docker_host}",
            f"--config-file={config}",
            f"--data-root={self.data_root}",
            f"--exec-root={self.exec_root}",
            f"--pidfile={self.pidfile}",
            "--storage-driver=overlay2",
            "--iptables=false",
            "--ip-masq=false",
            "--ip-forward=false",
            f"--bip={BRIDGE_CIDR}",
            "--dns=127.0.0.1",
            "--oom-score-adjust=0",
            "--exec-opt=native.cgroupdriver=cgroupfs",  # what kubelet's --cgroup-driver expects
            f"--add-runtime=lab-runc={self.runtime}",
            "--default-runtime=lab-runc",
            "--log-level=warn",
        ]

    def start(self) -> DockerEngine:
        if self.daemon is not None and self.daemon.alive():
            return self
        if self.ping():
            raise LabError(f"a dockerd already answers on {self.socket}: stop it first (another lab session?)")
        ensure_packages("docker")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.data_root.mkdir(parents=True, exist_ok=True)
        (self.dir / "daemon.json").write_text("{}\n")
        self.runtime.write_text(RUNTIME_WRAPPER)
        self.runtime.chmod(0o755)
        self.socket.unlink(missing_ok=True)
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(self.dir),
            "HTTP_PROXY": CLOSED_PORT_PROXY,
            "HTTPS_PROXY": CLOSED_PORT_PROXY,
            "NO_PROXY": "",
        }
        began = time.monotonic()
        self.daemon = Daemon("dockerd", self.argv(), env=env, cwd=self.dir).start()
        try:
            self.daemon.wait_until(self.ping, timeout=60, what=f"answer on {self.socket}")
        except LabError:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - began
        return self

    def ping(self) -> bool:
        """``GET /_ping`` over the unix socket, without any client library."""
        if not self.socket.exists():
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(2)
                sock.connect(str(self.socket))
                sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
                answer = sock.recv(4096)
        except OSError:
            return False
        return answer.startswith(b"HTTP/1.") and b" 200 " in answer.split(b"\r\n", 1)[0]

    def client(self, timeout: int = 120) -> docker.DockerClient:
        """A Docker SDK client on the lab socket; close it (``contextlib.closing``)."""
        return docker.DockerClient(base_url=self.docker_host, timeout=timeout)

    def run_container(self, image: str, name: str, **kwargs: Any) -> Any:
        """``containers.run(detach=True)`` with the lab label, so ``stop()`` removes it."""
        labels = {LABEL: "1", **kwargs.pop("labels", {})}
        with contextlib.closing(self.client()) as client:
            return client.containers.run(image, name=name, detach=True, labels=labels, **kwargs)

    def remove_containers(self, *, everything: bool = False) -> int:
        """Force-remove the lab's containers (or all of them); returns how many went."""
        filters = {} if everything else {"label": LABEL}
        with contextlib.closing(self.client()) as client:
            containers = client.containers.list(all=True, filters=filters)
            for container in containers:
                container.remove(force=True, v=True)
        return len(containers)

    def status(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "target": "docker",
            "running": self.ping(),
            "docker_host": self.docker_host,
            "pid": self.daemon.process.pid if self.daemon and self.daemon.process else None,
            "data_root": str(self.data_root),
            "start_seconds": self.start_seconds,
        }
        if info["running"]:
            with contextlib.closing(self.client(timeout=10)) as client:
                info["version"] = client.version().get("Version")
                info["containers"] = [
                    {"name": c.name, "image": c.attrs["Config"]["Image"], "status": c.status}
                    for c in client.containers.list(all=True)
                ]
                info["images"] = sorted(tag for image in client.images.list() for tag in image.tags)
        return info

    def inventory(self) -> dict[str, Any]:
        """Group ``docker``: one host per running lab container, reached through the Docker API.

        Containers without Python (busybox) are listed too; only ``raw`` tasks work on them.
        """
        hosts: dict[str, dict[str, Any]] = {}
        if self.ping():
            with contextlib.closing(self.client(timeout=10)) as client:
                for container in client.containers.list(filters={"label": LABEL}):
                    host = {
                        "ansible_connection": "community.docker.docker_api",
                        "ansible_docker_docker_host": self.docker_host,
                        "ansible_host": container.name,
                    }
                    if python := container.labels.get(PYTHON_LABEL):
                        host["ansible_python_interpreter"] = python
                    hosts[container.name] = host
        return {"docker": {"hosts": hosts, "vars": {"docker_host": self.docker_host}}}

    def stop(self) -> None:
        """Remove all containers, stop dockerd, then delete the bridge and leftover mounts."""
        if self.daemon is None:
            return
        if self.daemon.alive() and self.ping():
            with contextlib.suppress(docker.errors.DockerException):  # dockerd stops them on exit anyway
                self.remove_containers(everything=True)
        self.daemon.stop(timeout=30)
        self.daemon = None
        self._stop_containerd()
        self._clean_host()

    def _stop_containerd(self) -> None:
        """dockerd runs containerd in its own process group and stops it on SIGTERM; make sure."""
        pidfile = self.exec_root / "containerd" / "containerd.pid"
        try:
            pid = int(pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return
        if str(self.exec_root).encode() not in cmdline:
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGKILL)

    def _mounts(self) -> list[str]:
        return mountpoints(self.exec_root, self.data_root)

    def _clean_host(self) -> None:
        if Path(f"/sys/class/net/{BRIDGE}").exists():
            run(["ip", "link", "delete", BRIDGE], check=False)
        if leftovers := unmount_under(self.exec_root, self.data_root):
            raise LabError(f"still mounted after dockerd stopped: {leftovers}")
        shutil.rmtree(self.exec_root, ignore_errors=True)  # nothing is mounted there any more
        self.socket.unlink(missing_ok=True)
        self.pidfile.unlink(missing_ok=True)
