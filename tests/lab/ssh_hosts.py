"""SSH targets: sshd daemons on 127.0.0.x that share this machine, and containers with their own.

``SshHosts`` are "bare metal" in the cheapest form: one ``sshd -D`` per loopback address, each with
its own config, host key and pid file under ``LAB_DIR/ssh``, all trusting the lab key.
``ContainerHosts`` run sshd in containers of the lab's Python image, so each has its own hostname
and filesystem, published on 127.0.0.x:22.

``inventory()`` returns the body of an Ansible group (``hosts``/``children``): the caller places it
(``{"all": {"children": {"baremetal": ...}}}``) and merges the two kinds.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import tarfile
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from tests.lab.install import ensure_packages
from tests.lab.keys import lab_key
from tests.lab.paths import LAB_DIR
from tests.lab.procs import Daemon, LabError, run

SSH_DIR = LAB_DIR / "ssh"
PYTHON = "/usr/bin/python3"
CONTAINER_IMAGE = "localhost/windflow/debian-py:bookworm"

SSHD_CONFIG = """\
ListenAddress {address}:{port}
HostKey {host_key}
PidFile {pid_file}
AuthorizedKeysFile {authorized_keys}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
MaxStartups 50:30:100
Subsystem sftp internal-sftp
"""


def ssh_banner(host: str, port: int, timeout: float = 1.0) -> str | None:
    """The server's identification line (``SSH-2.0-...``) or None if nothing answers like sshd."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.settimeout(timeout)
            data = conn.recv(256)
    except OSError:
        return None
    line = data.split(b"\r\n", 1)[0].decode(errors="replace")
    return line if line.startswith("SSH-") else None


def _answers(host: str, port: int) -> bool:
    return ssh_banner(host, port) is not None


def wait_for_banner(host: str, port: int, timeout: float, what: str, alive: Any = None) -> str:
    """Poll for an SSH banner (bounded); ``alive`` (optional) is checked to fail fast."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise LabError(f"{what} stopped before sshd answered on {host}:{port}")
        if banner := ssh_banner(host, port):
            return banner
        time.sleep(0.1)
    raise LabError(f"{what}: no SSH banner on {host}:{port} after {timeout:.0f}s")


def ssh_mux_processes(control_dir: Path) -> list[str]:
    """``ssh`` processes (ControlPersist masters included) whose command line names ``control_dir``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z" and cmdline.startswith(("ssh ", "/usr/bin/ssh ")) and str(control_dir) in cmdline:
            found.append(f"{proc.name}: {cmdline[:200]}")
    return found


def wait_no_ssh_mux(control_dir: Path, timeout: float = 10) -> list[str]:
    """Wait (bounded) for Ansible's ControlPersist masters to exit; return any still alive."""
    deadline = time.monotonic() + timeout
    while (left := ssh_mux_processes(control_dir)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def host_vars(address: str, port: int, private_key: Path) -> dict[str, Any]:
    return {
        "ansible_host": address,
        "ansible_port": port,
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(private_key),
        "ansible_python_interpreter": PYTHON,
    }


@dataclass
class SshHosts:
    """Three sshd daemons, ``bm1..bm3`` on 127.0.0.2-4; they share this machine's filesystem."""

    addresses: tuple[str, ...] = ("127.0.0.2", "127.0.0.3", "127.0.0.4")
    port: int = 2222
    daemons: dict[str, Daemon] = field(default_factory=dict, init=False)

    @property
    def names(self) -> list[str]:
        return [f"bm{i}" for i in range(1, len(self.addresses) + 1)]

    def start(self) -> None:
        ensure_packages("ssh")
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # sshd's privilege-separation directory
        key = lab_key()
        for name, address in zip(self.names, self.addresses, strict=True):
            config = self._configure(name, address, key.public_text)
            _stop_stale(SSH_DIR / name / "sshd.pid", config)
            daemon = Daemon(f"sshd-{name}", ["/usr/sbin/sshd", "-D", "-e", "-f", str(config)])
            self.daemons[name] = daemon.start()
        try:
            for name, address in zip(self.names, self.addresses, strict=True):
                self.daemons[name].wait_until(partial(_answers, address, self.port), 10, "an SSH banner")
        except LabError:
            self.stop()
            raise

    def _configure(self, name: str, address: str, public_key: str) -> Path:
        directory = SSH_DIR / name
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o700)
        host_key = directory / "ssh_host_ed25519_key"
        if not host_key.exists():
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(host_key)])
        authorized = directory / "authorized_keys"
        authorized.write_text(public_key)
        authorized.chmod(0o600)
        config = directory / "sshd_config"
        config.write_text(
            SSHD_CONFIG.format(
                address=address,
                port=self.port,
                host_key=host_key,
                pid_file=directory / "sshd.pid",
                authorized_keys=authorized,
            )
        )
        run(["/usr/sbin/sshd", "-t", "-f", str(config)])
        return config

    def stop(self) -> None:
        # sshd does not wait for its session children on SIGTERM, and PID 1 here reaps nothing:
        # let the sessions (ControlPersist masters, banner probes) end first, briefly.
        deadline = time.monotonic() + 5
        for daemon in self.daemons.values():
            if daemon.process is not None:
                _wait_childless(daemon.process.pid, deadline)
        for daemon in self.daemons.values():
            daemon.stop()
        self.daemons.clear()

    def status(self) -> dict[str, Any]:
        return {
            name: {
                "address": f"{address}:{self.port}",
                "running": name in self.daemons and self.daemons[name].alive(),
                "banner": ssh_banner(address, self.port),
            }
            for name, address in zip(self.names, self.addresses, strict=True)
        }

    def inventory(self, private_key: Path | None = None) -> dict[str, Any]:
        key = private_key or lab_key().private
        return {
            "hosts": {
                name: host_vars(address, self.port, key)
                for name, address in zip(self.names, self.addresses, strict=True)
            }
        }


def _wait_childless(pid: int, deadline: float) -> None:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    while time.monotonic() < deadline:
        try:
            if not children.read_text().strip():
                return
        except OSError:
            return
        time.sleep(0.05)


def _stop_stale(pid_file: Path, config: Path) -> None:
    """An sshd a previous, crashed lab session left on our config: end it (it holds our address)."""
    try:
        pid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return
    if b"/usr/sbin/sshd" in cmdline[:1] and str(config).encode() in cmdline:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    pid_file.unlink(missing_ok=True)


@dataclass
class ContainerHosts:
    """``node1``/``node2``: sshd in containers of the lab image, published on 127.0.0.5/6:22.

    They are labelled ``windflow.lab.ssh``, not ``windflow.lab``: they are SSH hosts, so the Docker
    engine's own inventory (containers reached through the Docker API) leaves them out.
    """

    engine: Any
    addresses: tuple[str, ...] = ("127.0.0.5", "127.0.0.6")
    image: str = CONTAINER_IMAGE
    port: int = 22
    containers: dict[str, str] = field(default_factory=dict, init=False)  # host name -> container id

    @property
    def names(self) -> list[str]:
        return [f"node{i}" for i in range(1, len(self.addresses) + 1)]

    @staticmethod
    def container_name(name: str) -> str:
        return f"windflow-lab-{name}"

    def start(self) -> None:
        from tests.lab.images import ensure_images

        ensure_images(self.engine)
        keys = _authorized_keys_tar(lab_key().public_text)
        with contextlib.closing(self.engine.client()) as client:
            for name, address in zip(self.names, self.addresses, strict=True):
                _remove(client, self.container_name(name))
                container = client.containers.create(
                    self.image,
                    name=self.container_name(name),
                    hostname=name,
                    ports={"22/tcp": (address, self.port)},
                    init=True,
                    detach=True,
                    labels={"windflow.lab.ssh": name},
                )
                container.put_archive("/root", keys)
                container.start()
                self.containers[name] = container.id
        try:
            for name, address in zip(self.names, self.addresses, strict=True):
                wait_for_banner(address, self.port, 30, f"container {name}")
        except LabError:
            self.stop()
            raise

    def exec(self, name: str, argv: list[str]) -> tuple[int, str]:
        """Run ``argv`` in host ``name``'s container (not over SSH): exit code and output."""
        with contextlib.closing(self.engine.client()) as client:
            result = client.containers.get(self.containers[name]).exec_run(argv)
        return result.exit_code, result.output.decode(errors="replace")

    def stop(self) -> None:
        if not self.containers:
            return
        with contextlib.closing(self.engine.client()) as client:
            for name in self.containers:
                _remove(client, self.container_name(name))
        self.containers.clear()

    def status(self) -> dict[str, Any]:
        return {
            name: {
                "address": f"{address}:{self.port}",
                "container": self.container_name(name),
                "running": name in self.containers,
                "banner": ssh_banner(address, self.port),
            }
            for name, address in zip(self.names, self.addresses, strict=True)
        }

    def inventory(self, private_key: Path | None = None) -> dict[str, Any]:
        """A ``containers`` child group, to sit under ``baremetal``."""
        key = private_key or lab_key().private
        hosts = {
            name: host_vars(address, self.port, key) for name, address in zip(self.names, self.addresses, strict=True)
        }
        return {"children": {"containers": {"hosts": hosts}}}


def _remove(client: Any, container: str) -> None:
    import docker.errors

    with contextlib.suppress(docker.errors.NotFound):
        client.containers.get(container).remove(force=True)


def _authorized_keys_tar(public_key: str) -> bytes:
    """``.ssh/authorized_keys`` owned by root with the modes sshd's StrictModes wants."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        directory = tarfile.TarInfo(".ssh")
        directory.type = tarfile.DIRTYPE
        directory.mode = 0o700
        tar.addfile(directory)
        data = public_key.encode()
        entry = tarfile.TarInfo(".ssh/authorized_keys")
        entry.size = len(data)
        entry.mode = 0o600
        tar.addfile(entry, io.BytesIO(data))
    return buffer.getvalue()
