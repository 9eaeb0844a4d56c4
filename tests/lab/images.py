"""The lab's container images, made offline from Debian packages and cached in dockerd's data root.

Nothing comes from a registry: ``busybox`` is imported from a tar of Debian's busybox-static, and
``debian-py`` from the shared mmdebstrap rootfs (``tests.lab.rootfs``). Both are built once per
machine: an image that ``docker image inspect`` finds is kept as it is.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import tarfile
import time
from pathlib import Path

import docker

from tests.lab.docker_engine import PYTHON_LABEL, DockerEngine
from tests.lab.install import ensure_packages
from tests.lab.procs import LabError
from tests.lab.rootfs import debian_rootfs

BUSYBOX = "localhost/windflow/busybox:1"
DEBIAN_PY = "localhost/windflow/debian-py:bookworm"
DEBIAN_BASE = "localhost/windflow/debian-py:bookworm-base"  # the bare import DEBIAN_PY is committed on
BUSYBOX_INDEX = "<html><body><h1>windflow lab busybox</h1></body></html>\n"

SSHD_ENTRY = """#!/bin/sh
# The lab's sshd container: host keys on first boot, an optional root key, sshd in the foreground.
set -e
mkdir -p /run/sshd /root/.ssh
chmod 700 /root/.ssh
if [ -n "${LAB_AUTHORIZED_KEY:-}" ]; then
    printf '%s\\n' "$LAB_AUTHORIZED_KEY" > /root/.ssh/authorized_keys
    chmod 600 /root/.ssh/authorized_keys
fi
ssh-keygen -A >/dev/null
exec /usr/sbin/sshd -D -e "$@"
"""
# PAM's loginuid module needs CAP_AUDIT_CONTROL, which containers lack: key-only root logins.
SSHD_CONFIG = """UsePAM no
PermitRootLogin prohibit-password
PasswordAuthentication no
UseDNS no
"""


def ensure_images(engine: DockerEngine) -> dict[str, str]:
    """Build the images that are missing; returns ``{name: image id}`` for all of them."""
    with contextlib.closing(engine.client()) as client:
        ids = {}
        for name, build in ((BUSYBOX, _build_busybox), (DEBIAN_PY, _build_debian_py)):
            ids[name] = _image_id(client, name) or build(client)
    return ids


def _image_id(client: docker.DockerClient, name: str) -> str | None:
    try:
        return str(client.images.get(name).id)
    except docker.errors.ImageNotFound:
        return None


def _add_file(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, int(time.time())
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, mode, int(time.time())
    tar.addfile(info)


def busybox_rootfs() -> bytes:
    """A tar of a rootfs holding /bin/busybox, a symlink per applet and /www/index.html."""
    ensure_packages("docker")
    busybox = Path("/bin/busybox")
    applets = subprocess.run(  # noqa: S603 - fixed argv
        [str(busybox), "--list-full"], capture_output=True, text=True, check=True
    ).stdout.split()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for directory in ("bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "root", "www", "proc", "sys", "dev"):
            _add_dir(tar, directory)
        _add_dir(tar, "tmp", 0o1777)
        _add_file(tar, "bin/busybox", busybox.read_bytes(), 0o755)
        for applet in applets:
            if applet != "bin/busybox":
                link = tarfile.TarInfo(applet)
                link.type, link.linkname = tarfile.SYMTYPE, "/bin/busybox"
                tar.addfile(link)
        _add_file(tar, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
        _add_file(tar, "etc/group", b"root:x:0:\nnogroup:x:65534:\n")
        _add_file(tar, "www/index.html", BUSYBOX_INDEX.encode())
    return buffer.getvalue()


def _build_busybox(client: docker.DockerClient) -> str:
    repository, tag = BUSYBOX.rsplit(":", 1)
    client.api.import_image_from_data(busybox_rootfs(), repository=repository, tag=tag, changes=['CMD ["/bin/sh"]'])
    return _built(client, BUSYBOX)


def _build_debian_py(client: docker.DockerClient) -> str:
    """Import the rootfs, then commit the sshd entry point and config on top of it."""
    repository, tag = DEBIAN_BASE.rsplit(":", 1)
    if _image_id(client, DEBIAN_BASE) is None:
        client.api.import_image_from_file(str(debian_rootfs()), repository=repository, tag=tag)
    container = client.containers.create(DEBIAN_BASE, command=["/bin/true"])
    try:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            _add_file(tar, "usr/local/sbin/lab-sshd", SSHD_ENTRY.encode(), 0o755)
            _add_file(tar, "etc/ssh/sshd_config.d/windflow-lab.conf", SSHD_CONFIG.encode())
        container.put_archive("/", buffer.getvalue())
        repository, tag = DEBIAN_PY.rsplit(":", 1)
        container.commit(
            repository=repository,
            tag=tag,
            changes=['CMD ["/usr/local/sbin/lab-sshd"]', "EXPOSE 22", f"LABEL {PYTHON_LABEL}=/usr/bin/python3"],
        )
    finally:
        container.remove(force=True)
    return _built(client, DEBIAN_PY)


def _built(client: docker.DockerClient, name: str) -> str:
    image_id = _image_id(client, name)
    if image_id is None:
        raise LabError(f"{name} was imported but docker does not know it")
    return image_id
