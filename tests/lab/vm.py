"""A real VM: Debian's kernel and the lab rootfs as an initramfs, under QEMU (TCG), sshd on 127.0.0.7.

Nothing is installed on this machine but QEMU: the kernel package is downloaded with the machine's
own apt configuration and unpacked with ``dpkg-deb -x`` into the cache. The root filesystem lives in
RAM (an uncompressed ``newc`` initramfs), so every boot starts from the same clean state. The base
initramfs is cached per machine; the lab key goes into a second, tiny archive appended per lab.

The guest's only network is QEMU's user-mode stack with ``restrict=on``: the host reaches its sshd
through one forwarded port, and the guest reaches one thing, the lab's Docker engine, as
``tcp://10.0.2.100:2375`` (a guestfwd to the engine's socket): its own engine cannot be installed
without a network, and stacks deployed to the VM need one.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.lab.install import ensure_packages
from tests.lab.keys import lab_key
from tests.lab.paths import CACHE_DIR, LAB_DIR
from tests.lab.procs import Daemon, LabError, run
from tests.lab.rootfs import debian_rootfs
from tests.lab.ssh_hosts import host_vars, ssh_banner

VM_CACHE = CACHE_DIR / "vm"
VM_DIR = LAB_DIR / "vm"
ADDRESS = "127.0.0.7"
PORT = 2222
ENGINE_ADDRESS = "10.0.2.100"  # inside the guest: the lab's Docker engine, through QEMU's guestfwd
ENGINE_PORT = 2375
HOSTNAME = "vm1"
MODULES = ("e1000",)
BOOT_TIMEOUT = 90
# Trimmed from the rootfs: not needed in a RAM-only guest, and the guest has 512 MB.
TRIM = ("usr/share/doc", "usr/share/man", "usr/share/locale", "usr/share/info", "var/cache/apt", "var/lib/apt/lists")

SSHD_DROP_IN = """\
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
"""

# The essential rootfs has no mount(8) (the ``mount`` package is not Essential): mount through libc.
MOUNTS = """\
#!/usr/bin/python3
import ctypes
import os

libc = ctypes.CDLL(None, use_errno=True)
for source, target, fstype, options in (
    ("proc", "/proc", "proc", ""),
    ("sysfs", "/sys", "sysfs", ""),
    ("devtmpfs", "/dev", "devtmpfs", ""),
    ("devpts", "/dev/pts", "devpts", ""),
    ("tmpfs", "/dev/shm", "tmpfs", "mode=1777"),
    ("tmpfs", "/run", "tmpfs", "mode=0755"),
):
    os.makedirs(target, exist_ok=True)
    if libc.mount(source.encode(), target.encode(), fstype.encode(), 0, options.encode() or None) != 0:
        print(f"mount {target}: {os.strerror(ctypes.get_errno())}", flush=True)
"""

INIT = """\
#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
/usr/local/sbin/windflow-lab-mounts
mkdir -p /run/sshd
echo {hostname} > /proc/sys/kernel/hostname
for module in {modules}; do insmod /lib/modules/{version}/$module; done
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key
echo "windflow-lab: $(hostname) up after $(cut -d" " -f1 /proc/uptime)s, starting sshd"
exec /usr/sbin/sshd -D -e -r
"""


@dataclass(frozen=True)
class Kernel:
    version: str  # e.g. 6.1.0-56-amd64
    root: Path  # the unpacked package

    @property
    def vmlinuz(self) -> Path:
        return self.root / "boot" / f"vmlinuz-{self.version}"

    @property
    def modules(self) -> Path:
        return self.root / "lib" / "modules" / self.version


def kernel_package() -> str:
    """The versioned package ``linux-image-amd64`` depends on, from the machine's apt cache."""
    result = run(["apt-cache", "depends", "linux-image-amd64"])
    for line in result.stdout.splitlines():
        name = line.strip().removeprefix("Depends:").strip()
        if line.strip().startswith("Depends:") and name.startswith("linux-image-"):
            return name
    raise LabError(f"no linux-image-* dependency of linux-image-amd64 in:\n{result.stdout}")


def debian_kernel() -> Kernel:
    """Debian's kernel package, downloaded and unpacked once per machine (not installed).

    A kernel already in the cache is used as it is (delete ``CACHE_DIR/vm`` to take a newer one):
    boots stay reproducible and need no apt index.
    """
    for root in sorted(VM_CACHE.glob("linux-image-*"), reverse=True):
        cached = Kernel(root.name.removeprefix("linux-image-"), root)
        if root.is_dir() and not root.name.endswith(".partial") and cached.vmlinuz.exists():
            return cached
    package = kernel_package()
    kernel = Kernel(package.removeprefix("linux-image-"), VM_CACHE / package)
    if kernel.vmlinuz.exists():
        return kernel
    VM_CACHE.mkdir(parents=True, exist_ok=True)
    with (VM_CACHE / ".kernel.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if kernel.vmlinuz.exists():
            return kernel
        download = VM_CACHE / "download"
        shutil.rmtree(download, ignore_errors=True)
        download.mkdir()
        run(["apt-get", "download", "-q", package], cwd=download, timeout=600)
        (deb,) = download.glob("*.deb")
        partial = kernel.root.with_name(kernel.root.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        run(["dpkg-deb", "-x", str(deb), str(partial)], timeout=600)
        partial.rename(kernel.root)
        shutil.rmtree(download)
    return kernel


def module_files(kernel: Kernel, names: tuple[str, ...]) -> list[str]:
    """Paths (relative to the modules directory) of ``names`` and their dependencies, in load order.

    The package ships no ``modules.dep`` (``depmod`` makes it on install), so dependencies come from
    each module's own ``.modinfo`` (``depends=a,b``) and paths from ``modules.order``.
    """
    paths = {}
    for line in (kernel.modules / "modules.order").read_text().splitlines():
        paths[Path(line).name.split(".ko")[0].replace("-", "_")] = line.strip()
    ordered: list[str] = []

    def add(name: str, depth: int = 0) -> None:
        path = paths.get(name.replace("-", "_"))
        if path is None or depth > 20:
            raise LabError(f"module {name} not found in {kernel.modules / 'modules.order'}")
        for dep in _depends(kernel.modules / path):
            add(dep, depth + 1)
        if path not in ordered:
            ordered.append(path)

    for name in names:
        add(name)
    return ordered


def _depends(module: Path) -> list[str]:
    data = module.read_bytes()
    at = data.find(b"\0depends=")
    if at < 0:
        return []
    value = data[at + len(b"\0depends=") : data.index(b"\0", at + 1)].decode()
    return [name for name in value.split(",") if name]


def _stamp(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


def base_initramfs(kernel: Kernel) -> Path:
    """rootfs + modules + ``/init`` as an uncompressed newc cpio; built once per inputs (~1 min)."""
    rootfs = debian_rootfs()
    modules = module_files(kernel, MODULES)
    init = INIT.format(hostname=HOSTNAME, modules=" ".join(modules), version=kernel.version)
    stat = rootfs.stat()
    stamp = _stamp(kernel.version, str(stat.st_size), str(stat.st_mtime_ns), init, MOUNTS, SSHD_DROP_IN, *TRIM)
    target = VM_CACHE / f"initramfs-{kernel.version}-{stamp}.cpio"
    if target.exists():
        return target
    ensure_packages("vm")
    with (VM_CACHE / ".initramfs.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():
            return target
        build = VM_CACHE / "initramfs.build"
        shutil.rmtree(build, ignore_errors=True)
        build.mkdir()
        try:
            run(["tar", "-xf", str(rootfs), "--numeric-owner", "-C", str(build)], timeout=300)
            for trimmed in TRIM:
                shutil.rmtree(build / trimmed, ignore_errors=True)
            for host_key in build.glob("etc/ssh/ssh_host_*"):
                host_key.unlink()  # made at boot: every VM gets its own
            for module in modules:
                destination = build / "lib" / "modules" / kernel.version / module
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(kernel.modules / module, destination)
            (build / "etc" / "ssh" / "sshd_config.d" / "windflow-lab.conf").write_text(SSHD_DROP_IN)
            (build / "etc" / "hostname").write_text(f"{HOSTNAME}\n")
            with (build / "etc" / "hosts").open("a") as hosts:
                hosts.write(f"127.0.1.1 {HOSTNAME}\n")
            mounts = build / "usr" / "local" / "sbin" / "windflow-lab-mounts"
            mounts.parent.mkdir(parents=True, exist_ok=True)
            mounts.write_text(MOUNTS)
            mounts.chmod(0o755)
            (build / "init").write_text(init)
            (build / "init").chmod(0o755)
            partial = target.with_suffix(".partial")
            _pack(build, partial)
            partial.rename(target)
        finally:
            shutil.rmtree(build, ignore_errors=True)
    for old in VM_CACHE.glob("initramfs-*.cpio"):
        if old != target:
            old.unlink(missing_ok=True)
    return target


def _pack(directory: Path, target: Path) -> None:
    """``find | cpio -o -H newc`` in a stable order."""
    names: list[str] = []
    for parent, dirs, files in os.walk(directory):  # symlinks to directories are listed, not followed
        relative = Path(parent).relative_to(directory)
        names.extend(str(relative / name) for name in (*dirs, *files))
    names.sort()
    with target.open("wb") as out:
        subprocess.run(
            ["cpio", "--quiet", "-o", "-H", "newc", "--null"],
            input="\0".join(names).encode() + b"\0",
            stdout=out,
            cwd=directory,
            check=True,
            timeout=300,
        )


def newc(entries: list[tuple[str, int, bytes]]) -> bytes:
    """A small newc archive of (name, mode, data) entries owned by root: the per-lab part."""
    out = io.BytesIO()

    def pad() -> None:
        out.write(b"\0" * (-out.tell() % 4))

    for ino, (name, mode, data) in enumerate([*entries, ("TRAILER!!!", 0, b"")], start=1):
        encoded = name.encode() + b"\0"
        fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0)
        out.write(b"070701" + b"".join(b"%08X" % value for value in fields))
        out.write(encoded)
        pad()
        out.write(data)
        pad()
    return out.getvalue()


def lab_initramfs(base: Path) -> Path:
    """The base initramfs with root's ``authorized_keys`` (the lab key) appended."""
    public = lab_key().public_text.encode()
    keys = newc([("root/.ssh", 0o040700, b""), ("root/.ssh/authorized_keys", 0o100600, public)])
    VM_DIR.mkdir(parents=True, exist_ok=True)
    target = VM_DIR / "initrd.cpio"
    stamp = VM_DIR / "initrd.stamp"
    wanted = f"{base.name} {hashlib.sha256(keys).hexdigest()}"
    if target.exists() and stamp.exists() and stamp.read_text() == wanted:
        return target
    partial = target.with_suffix(".partial")
    shutil.copyfile(base, partial)
    with partial.open("ab") as out:
        out.write(keys)
    partial.rename(target)
    stamp.write_text(wanted)
    return target


@dataclass
class VirtualMachine:
    """``vm1``: QEMU (TCG, 512 MB) with sshd reachable on 127.0.0.7:2222 and no network beyond."""

    address: str = ADDRESS
    port: int = PORT
    memory_mb: int = 512
    engine_socket: Path = LAB_DIR / "docker" / "docker.sock"
    daemon: Daemon | None = field(default=None, init=False)
    timings: dict[str, float] = field(default_factory=dict, init=False)

    def argv(self, kernel: Kernel, initrd: Path) -> list[str]:
        return [
            "qemu-system-x86_64",
            "-accel",
            "tcg",
            "-m",
            str(self.memory_mb),
            "-nographic",
            "-kernel",
            str(kernel.vmlinuz),
            "-initrd",
            str(initrd),
            "-append",
            "console=ttyS0 quiet panic=-1 rootfstype=ramfs",
            "-nic",
            f"user,model=e1000,restrict=on,hostfwd=tcp:{self.address}:{self.port}-:22,"
            # The guest's one way out: 10.0.2.100:2375 is the lab's Docker engine (a socat per
            # connection to its socket), so stacks can run containers from inside the VM.
            f"guestfwd=tcp:{ENGINE_ADDRESS}:{ENGINE_PORT}-cmd:socat STDIO UNIX-CONNECT:{self.engine_socket}",
            "-no-reboot",
        ]

    def prepare(self) -> tuple[Kernel, Path]:
        """Kernel and initramfs, from the cache when present."""
        ensure_packages("vm")
        began = time.monotonic()
        kernel = debian_kernel()
        self.timings["kernel_s"] = round(time.monotonic() - began, 1)
        began = time.monotonic()
        initrd = lab_initramfs(base_initramfs(kernel))
        self.timings["initramfs_s"] = round(time.monotonic() - began, 1)
        return kernel, initrd

    def start(self) -> None:
        kernel, initrd = self.prepare()
        if ssh_banner(self.address, self.port) is not None:
            raise LabError(f"something already answers SSH on {self.address}:{self.port}; is another lab VM running?")
        began = time.monotonic()
        daemon = Daemon("vm", self.argv(kernel, initrd))
        daemon.log_path.parent.mkdir(parents=True, exist_ok=True)
        daemon.log_path.write_bytes(b"")  # the serial console of this boot only
        self.daemon = daemon.start()
        try:
            self.daemon.wait_until(
                # sshd re-executes itself per connection: slow under TCG, so give the banner time.
                lambda: ssh_banner(self.address, self.port, timeout=10) is not None,
                BOOT_TIMEOUT,
                "SSH banner from vm1",
            )
        except LabError:
            self.stop()
            raise
        self.timings["boot_to_ssh_s"] = round(time.monotonic() - began, 1)

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.stop(timeout=10)
            self.daemon = None

    def status(self) -> dict[str, Any]:
        return {
            "address": f"{self.address}:{self.port}",
            "running": self.daemon is not None and self.daemon.alive(),
            "banner": ssh_banner(self.address, self.port),
            "serial_log": str(Daemon("vm", []).log_path),
            **self.timings,
        }

    def inventory(self, private_key: Path | None = None) -> dict[str, Any]:
        return {"hosts": {HOSTNAME: host_vars(self.address, self.port, private_key or lab_key().private)}}
