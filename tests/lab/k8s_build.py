"""Kubernetes 1.20.2 binaries and the pause image, built offline from Debian's source package.

No registry ships kube-apiserver here, but bookworm's ``kubernetes`` source package carries the
whole tree with ``vendor/``: fetch it through a private deb-src list derived from this machine's
own APT sources, apply ``debian/patches`` and ``make``. The binaries are cached per machine and
built once; a lock file keeps two processes from building at the same time.
"""

from __future__ import annotations

import fcntl
import io
import os
import re
import shutil
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

from tests.lab.install import ensure_packages
from tests.lab.paths import CACHE_DIR
from tests.lab.procs import LabError, run

VERSION = "1.20.2"
BIN_DIR = CACHE_DIR / f"k8s-{VERSION}"
BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kubectl")
PAUSE_IMAGE = "k8s.gcr.io/pause:3.2"
APT_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")  # deb822, as Debian 12 installs it
APT_SOURCES_LIST = Path("/etc/apt/sources.list")  # the one-line format of older installs
BUILD_TIMEOUT = 3600


def binaries_present() -> bool:
    return all((BIN_DIR / name).is_file() for name in (*BINARIES, "pause"))


def build_binaries() -> Path:
    """Return the directory holding the binaries (and the static ``pause``), building them once."""
    if binaries_present():
        return BIN_DIR
    ensure_packages("kubernetes")
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with (CACHE_DIR / f"k8s-{VERSION}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if binaries_present():  # another process built them while we waited
            return BIN_DIR
        work = CACHE_DIR / f"k8s-{VERSION}-build"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        started = time.monotonic()
        tree = fetch_source(work)
        apply_patches(tree)
        staging = work / "bin"
        staging.mkdir()
        _make(tree, work)
        for name in BINARIES:
            shutil.copy2(tree / "_output" / "bin" / name, staging / name)
        _compile_pause(tree, staging / "pause")
        BIN_DIR.mkdir(parents=True, exist_ok=True)
        for binary in staging.iterdir():
            os.replace(binary, BIN_DIR / binary.name)
        (BIN_DIR / "build-seconds").write_text(f"{time.monotonic() - started:.0f}\n")
        shutil.rmtree(work, ignore_errors=True)
    return BIN_DIR


def deb_src_sources(text: str) -> str:
    """The machine's deb822 APT sources with every ``Types: deb`` turned into ``deb-src``."""
    return re.sub(r"(?m)^Types:\s*deb\s*$", "Types: deb-src", text)


def deb_src_list(text: str) -> str:
    """The machine's one-line APT sources with every ``deb`` line turned into ``deb-src``."""
    return re.sub(r"(?m)^\s*deb\s", "deb-src ", text)


def _write_deb_src(apt: Path) -> Path:
    """A private deb-src list derived from this machine's own APT sources (no mirror named here)."""
    if APT_SOURCES.is_file():
        sources = apt / "deb-src.sources"
        sources.write_text(deb_src_sources(APT_SOURCES.read_text()))
    elif APT_SOURCES_LIST.is_file():
        sources = apt / "deb-src.list"
        sources.write_text(deb_src_list(APT_SOURCES_LIST.read_text()))
    else:
        raise LabError(f"no APT sources to derive a deb-src list from ({APT_SOURCES}, {APT_SOURCES_LIST})")
    return sources


def fetch_source(work: Path) -> Path:
    """Download and unpack the ``kubernetes`` source package; return the tree (patches not applied)."""
    apt = work / "apt"
    for sub in ("lists/partial", "cache/archives/partial"):
        (apt / sub).mkdir(parents=True)
    sources = _write_deb_src(apt)
    options = [
        f"-oDir::Etc::SourceList={sources}",
        "-oDir::Etc::SourceParts=/dev/null",
        f"-oDir::State::Lists={apt / 'lists'}",
        f"-oDir::Cache={apt / 'cache'}",
        "-oAPT::Sandbox::User=root",
    ]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", *options, "update", "-qq"], env=env, timeout=600)
    download = work / "download"
    download.mkdir()
    run(["apt-get", *options, "source", "--download-only", "-qq", "kubernetes"], env=env, cwd=download, timeout=1800)
    dsc = next(download.glob("kubernetes_*.dsc"))
    tree = work / "kubernetes"
    run(["dpkg-source", "--no-check", "--skip-patches", "-x", str(dsc), str(tree)], cwd=download, timeout=900)
    return tree


def apply_patches(tree: Path) -> None:
    """Apply ``debian/patches`` quilt-style: in ``series`` order, ``patch -p1``."""
    series = tree / "debian" / "patches" / "series"
    if not series.is_file():
        return
    for line in series.read_text().splitlines():
        entry = line.split("#", 1)[0].split()
        if not entry:
            continue
        strip = entry[1] if len(entry) > 1 and entry[1].startswith("-p") else "-p1"
        patch = tree / "debian" / "patches" / entry[0]
        run(["patch", strip, "--forward", "--batch", "-i", str(patch)], cwd=tree, timeout=120)


def _make(tree: Path, work: Path) -> None:
    env = {
        "PATH": "/usr/lib/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(work),
        "LANG": "C.UTF-8",
        "GOPATH": str(work / "gopath"),
        "GOCACHE": str(work / "gocache"),
        "GOFLAGS": "-mod=vendor",
        "GOPROXY": "off",
        "GOTOOLCHAIN": "local",
        "CGO_ENABLED": "0",
    }
    what = " ".join(f"cmd/{name}" for name in BINARIES)
    log = work / "make.log"
    with log.open("wb") as out:
        result = subprocess.run(  # noqa: S603
            ["make", f"WHAT={what}"],  # noqa: S607
            cwd=tree,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=BUILD_TIMEOUT,
            check=False,
        )
    if result.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        raise LabError(f"building Kubernetes failed ({result.returncode}), see {log}:\n{tail}")


def _compile_pause(tree: Path, target: Path) -> None:
    source = next(tree.glob("build/pause/**/pause.c"), None)
    if source is None:
        raise LabError(f"no pause.c under {tree / 'build' / 'pause'}")
    run(["gcc", "-static", "-O2", "-o", str(target), str(source)], timeout=120)
    run(["strip", str(target)], timeout=60)


def pause_image_tar() -> bytes:
    """A root filesystem holding only ``/pause``, as a tar for ``docker import``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tar.gettarinfo(str(BIN_DIR / "pause"), arcname="pause")
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mode = 0o755
        with (BIN_DIR / "pause").open("rb") as binary:
            tar.addfile(info, binary)
    return buffer.getvalue()


def import_pause_image(client: Any) -> None:
    """Import ``k8s.gcr.io/pause:3.2`` into a Docker engine (an SDK client) unless it is there."""
    if client.images.list(name=PAUSE_IMAGE):
        return
    repository, tag = PAUSE_IMAGE.rsplit(":", 1)
    client.api.import_image_from_data(
        pause_image_tar(), repository=repository, tag=tag, changes=['ENTRYPOINT ["/pause"]']
    )


if __name__ == "__main__":
    print(build_binaries())
