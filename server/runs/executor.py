"""The one place that drives ansible-runner: a clean, explicit environment and its events.

Nothing of the server's own environment (secret key, database URL, LLM keys) reaches Ansible:
the environment is built from scratch for every call.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VENV_BIN = Path(sys.executable).parent


def control_dir(private_data_dir: Path) -> Path:
    """Where SSH keeps its multiplexing sockets for one run.

    A Unix socket path must fit in 108 bytes; a deep data directory would not leave room for
    OpenSSH's name, so long paths move to a short, per-run directory under the system temp dir.
    """
    inside = private_data_dir / "cp"
    if len(str(inside)) <= 60:
        return inside
    digest = hashlib.sha256(str(private_data_dir.resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"windflow-cp-{digest}"


def clean_env(private_data_dir: Path, **extra: str) -> dict[str, str]:
    """The whole environment Ansible sees (runner adds nothing of ours to it)."""
    control = control_dir(private_data_dir)
    control.mkdir(parents=True, exist_ok=True)
    control.chmod(0o700)
    return {
        "PATH": f"{VENV_BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(private_data_dir),
        "LANG": "C.UTF-8",
        "ANSIBLE_LOCAL_TEMP": str(private_data_dir / "tmp"),
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_DEPRECATION_WARNINGS": "False",
        # Short-lived SSH multiplexing inside the run's directory: no mux process outlives it.
        "ANSIBLE_SSH_ARGS": (
            "-o ControlMaster=auto -o ControlPersist=2s -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
        ),
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control),
        **extra,
    }


@dataclass
class ModuleResult:
    """Per host, the last event of an ad-hoc module call and how long it took."""

    status: str  # runner's final status
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)


_OUTCOMES = {"runner_on_ok": "ok", "runner_on_failed": "failed", "runner_on_unreachable": "unreachable"}


def run_module(
    private_data_dir: Path,
    module: str,
    hosts: list[str],
    *,
    forks: int = 20,
    timeout: int = 120,
    connect_timeout: int = 10,
    cmdline: list[str] | None = None,
) -> ModuleResult:
    """Run one module on ``hosts`` (blocking: call it from a worker thread)."""
    import ansible_runner  # type: ignore[import-untyped]

    result = ModuleResult(status="")

    def on_event(event: dict[str, Any]) -> bool:
        outcome = _OUTCOMES.get(event.get("event", ""))
        data = event.get("event_data") or {}
        if outcome and data.get("host"):
            result.hosts[data["host"]] = {
                "outcome": outcome,
                "res": data.get("res") or {},
                "duration": data.get("duration"),
            }
        return True

    limit_file = private_data_dir / "limit"
    limit_file.write_text("".join(f"{name}\n" for name in hosts))
    runner = ansible_runner.run(
        private_data_dir=str(private_data_dir),
        host_pattern="all",
        limit=f"@{limit_file}",
        module=module,
        forks=max(1, min(forks, len(hosts) or 1)),
        envvars=clean_env(private_data_dir, ANSIBLE_TIMEOUT=str(connect_timeout)),
        cmdline=" ".join(cmdline) if cmdline else None,
        quiet=True,
        timeout=timeout,
        event_handler=on_event,
        rotate_artifacts=1,
    )
    shutil.rmtree(control_dir(private_data_dir), ignore_errors=True)
    result.status = str(runner.status)
    return result
