"""What a stopped lab must not leave behind: processes, mounts, bridges, namespaces, chains."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.lab.mounts import mountpoints
from tests.lab.paths import CACHE_DIR, LAB_DIR

DAEMON_NAMES = ("dockerd", "containerd", "containerd-shim", "runc", "qemu-system", "etcd", "kube-", "kubelet", "pause")


def lab_processes() -> list[str]:
    """Live (not zombie) processes that belong to the lab."""
    found = []
    markers = (str(LAB_DIR), str(CACHE_DIR))
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state == "Z" or not cmdline:
            continue
        name = cmdline.split(" ", 1)[0].rsplit("/", 1)[-1]
        if any(m in cmdline for m in markers) or name.startswith(DAEMON_NAMES):
            found.append(f"{proc.name}: {cmdline[:160]}")
    return found


def lab_mounts() -> list[str]:
    return mountpoints(LAB_DIR, CACHE_DIR, "/var/lib/kubelet", "/run/docker")


def lab_links() -> list[str]:
    result = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=False)  # noqa: S607
    names = [line.split(":")[1].strip().split("@")[0] for line in result.stdout.splitlines()]
    return [n for n in names if n == "docker0" or n.startswith(("veth", "br-", "wf"))]


def lab_namespaces() -> list[str]:
    netns = Path("/run/netns")
    return sorted(p.name for p in netns.iterdir()) if netns.exists() else []


def lab_iptables_chains() -> list[str]:
    if shutil.which("iptables-save") is None:
        return []
    result = subprocess.run(["iptables-save"], capture_output=True, text=True, check=False)  # noqa: S607
    return [
        line for line in result.stdout.splitlines() if line.startswith(":") and ("KUBE-" in line or "DOCKER" in line)
    ]


def leftovers() -> dict[str, list[str]]:
    found = {
        "processes": lab_processes(),
        "mounts": lab_mounts(),
        "links": lab_links(),
        "namespaces": lab_namespaces(),
        "iptables": lab_iptables_chains(),
    }
    return {kind: items for kind, items in found.items() if items}
