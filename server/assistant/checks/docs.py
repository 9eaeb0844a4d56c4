"""What the model may look up while it writes: the installed modules and each one's arguments.

The list is ``ansible-doc --list --json -t module`` (seconds of work), kept in memory and, when a
cache directory is given, in a file named after the installed Ansible versions, so that the next
process reads it at once and an upgrade makes a new one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess  # noqa: S404 - a fixed argv, never a shell
import tempfile
import threading
from importlib import metadata
from pathlib import Path
from typing import Any

import anyio

from server.assistant.checks import plugins
from server.runs.executor import VENV_BIN, clean_env, control_dir

LIST_TIMEOUT = 180
_lock = threading.Lock()
_lists: dict[str, dict[str, str]] = {}


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "none"


def cache_key() -> str:
    """ansible-core's version, and the collections' (the ``ansible`` package), as a file name part."""
    return f"{_version('ansible-core')}-{_version('ansible')}"


def _run_ansible_doc() -> dict[str, str]:
    workdir = Path(tempfile.mkdtemp(prefix="windflow-doc-"))
    try:
        (workdir / "ansible.cfg").write_text("", encoding="utf-8")
        env = clean_env(workdir, ANSIBLE_CONFIG=str(workdir / "ansible.cfg"), ANSIBLE_LOCAL_TEMP=str(workdir / "tmp"))
        program = VENV_BIN / "ansible-doc"
        command = [str(program) if program.exists() else "ansible-doc", "--list", "--json", "-t", "module"]
        result = subprocess.run(  # noqa: S603 - a fixed argv, never a shell
            command, cwd=workdir, env=env, capture_output=True, text=True, timeout=LIST_TIMEOUT, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"ansible-doc --list failed: {result.stderr.strip()[-500:]}")
        listed = json.loads(result.stdout)
        return {str(name): str(description or "") for name, description in listed.items()}
    finally:
        shutil.rmtree(control_dir(workdir), ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)


def _read(path: Path) -> dict[str, str] | None:
    try:
        listed = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return {str(k): str(v) for k, v in listed.items()} if isinstance(listed, dict) and listed else None


def _write(path: Path, listed: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=".modules-", dir=path.parent)
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump(listed, out, sort_keys=True)
    os.replace(name, path)


def installed_modules(cache_dir: Path | None = None) -> dict[str, str]:
    """FQCN → short description of every installed module (blocking: run it in a thread)."""
    key = cache_key()
    with _lock:
        if key in _lists:
            return _lists[key]
        path = cache_dir / f"ansible-modules-{key}.json" if cache_dir is not None else None
        listed = _read(path) if path is not None else None
        if listed is None:
            listed = _run_ansible_doc()
            if path is not None:
                with contextlib.suppress(OSError):  # the memory copy still serves this process
                    _write(path, listed)
        _lists[key] = listed
        return listed


def _rank(name: str, description: str, query: str) -> int | None:
    lowered = name.lower()
    short = lowered.rsplit(".", 1)[-1]
    if query in (lowered, short):
        return 0
    if lowered.startswith(query) or short.startswith(query):
        return 1
    if query in lowered:
        return 2
    if query in description.lower():
        return 3
    return None


async def list_modules(query: str = "", limit: int = 50, cache_dir: Path | None = None) -> list[dict[str, str]]:
    """Installed modules matching ``query`` (name or description): exact names, then prefixes."""
    listed = await anyio.to_thread.run_sync(installed_modules, cache_dir)
    wanted = query.strip().lower()
    ranked: list[tuple[int, str]] = []
    for name, description in listed.items():
        rank = _rank(name, description, wanted) if wanted else 0
        if rank is not None:
            ranked.append((rank, name))
    ranked.sort()
    return [{"name": name, "description": listed[name]} for _, name in ranked[: max(limit, 0)]]


async def module_doc(name: str, cache_dir: Path | None = None) -> dict[str, Any] | None:
    """A module's FQCN, descriptions, ``free_form`` and options; None when it is not installed.

    ``cache_dir`` is accepted for symmetry with :func:`list_modules`: docs come from the files
    in milliseconds and are kept in memory.
    """
    return await anyio.to_thread.run_sync(plugins.module_doc, name)
