"""The Debian root filesystem shared by the Python+sshd image and the VM, built once per machine.

``mmdebstrap`` takes the machine's own apt sources (no mirror is named here), so it works with
whatever Debian mirror or proxy the machine is set up for.
"""

from __future__ import annotations

import fcntl
import hashlib
from pathlib import Path

from tests.lab.install import ensure_packages
from tests.lab.paths import CACHE_DIR
from tests.lab.procs import run

SUITE = "bookworm"
# python3-requests: community.docker's modules need it on a target (the VM deploys containers).
PACKAGES = (
    "python3",
    "python3-requests",
    "openssh-server",
    "iproute2",
    "sudo",
    "ca-certificates",
    "procps",
    "kmod",
)
APT_SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))


def _sources() -> str:
    for path in APT_SOURCES:
        if path.exists() and path.read_text().strip():
            return str(path)
    raise RuntimeError("no Debian apt sources found on this machine for mmdebstrap")


def debian_rootfs() -> Path:
    """A tar of a Debian rootfs with python3 and sshd; built on first use (~30 s), then cached."""
    digest = hashlib.sha256(",".join(PACKAGES).encode()).hexdigest()[:8]
    target = CACHE_DIR / "rootfs" / f"debian-py-{SUITE}-{digest}.tar"
    if target.exists():
        return target
    ensure_packages("ssh")
    target.parent.mkdir(parents=True, exist_ok=True)
    with (target.parent / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():
            return target
        partial = target.with_suffix(".partial.tar")
        run(
            [
                "mmdebstrap",
                "--variant=essential",
                "--include=" + ",".join(PACKAGES),
                "--dpkgopt=path-exclude=/usr/share/doc/*",
                "--dpkgopt=path-exclude=/usr/share/man/*",
                "--dpkgopt=path-exclude=/usr/share/locale/*",
                SUITE,
                str(partial),
                _sources(),
            ],
            timeout=900,
        )
        partial.rename(target)
    return target
