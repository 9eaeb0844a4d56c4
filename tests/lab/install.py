"""Install what the lab needs from Debian, idempotently (``apt-get`` only when something is missing)."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess

from tests.lab.paths import CACHE_DIR

PACKAGES = {
    "docker": ["docker.io", "busybox-static", "iptables", "mmdebstrap"],
    "ssh": ["openssh-server", "openssh-client", "mmdebstrap"],
    "vm": ["qemu-system-x86", "qemu-utils", "cpio", "mmdebstrap", "openssh-client", "socat"],
    "kubernetes": ["golang-go", "make", "rsync", "etcd-server", "etcd-client", "dpkg-dev", "openssl", "patch"],
    "llm": ["cmake", "g++", "make"],  # llama-cpp-python builds llama.cpp from source
    "browser": ["chromium", "fonts-dejavu-core"],  # the web app's end-to-end tests (never a downloaded browser)
}


def _installed(package: str) -> bool:
    result = subprocess.run(  # noqa: S603
        ["dpkg-query", "-W", "-f=${Status}", package],
        capture_output=True,
        text=True,
        check=False,  # noqa: S607
    )
    return result.stdout.strip() == "install ok installed"


def ensure_packages(*groups: str) -> None:
    """Install the Debian packages of ``groups``; serialised across processes by a lock file."""
    wanted = sorted({p for group in groups for p in PACKAGES[group]})
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with (CACHE_DIR / "apt.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        missing = [p for p in wanted if not _installed(p)]
        if not missing:
            return
        if shutil.which("apt-get") is None:
            raise RuntimeError(f"the lab needs these Debian packages and apt-get is missing: {missing}")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)  # noqa: S603, S607
        subprocess.run(  # noqa: S603
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],  # noqa: S607
            check=True,
            env=env,
        )
