"""Run Ansible against lab targets the way WindFlow will: ansible-runner, a clean environment."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import ansible_runner
import yaml

VENV_BIN = Path(sys.executable).parent


def clean_env(private_data_dir: Path, **extra: str) -> dict[str, str]:
    """An explicit environment: nothing of the caller's (no secrets) reaches Ansible."""
    control = private_data_dir / "cp"
    control.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": f"{VENV_BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(private_data_dir),
        "LANG": "C.UTF-8",
        "ANSIBLE_LOCAL_TEMP": str(private_data_dir / "tmp"),
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "1",
        # Short-lived SSH multiplexing in the run's own directory: no mux process outlives the run.
        "ANSIBLE_SSH_ARGS": "-o ControlMaster=auto -o ControlPersist=2s -o UserKnownHostsFile=/dev/null",
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control),
        **extra,
    }


def run_playbook(
    private_data_dir: Path,
    inventory: dict[str, Any],
    playbook: list[dict[str, Any]],
    *,
    limit: str | None = None,
    timeout: int = 300,
    **env: str,
) -> ansible_runner.Runner:
    private_data_dir.mkdir(parents=True, exist_ok=True)
    (private_data_dir / "project").mkdir(exist_ok=True)
    (private_data_dir / "inventory").mkdir(exist_ok=True)
    (private_data_dir / "project" / "main.yml").write_text(yaml.safe_dump(playbook, sort_keys=False))
    (private_data_dir / "inventory" / "hosts.yml").write_text(yaml.safe_dump(inventory, sort_keys=False))
    return ansible_runner.run(
        private_data_dir=str(private_data_dir),
        playbook="main.yml",
        limit=limit,
        envvars=clean_env(private_data_dir, **env),
        quiet=True,
        timeout=timeout,
    )


def host_stats(runner: ansible_runner.Runner) -> dict[str, dict[str, int]]:
    """Per host: ok, changed, failures, dark (unreachable), skipped."""
    stats = runner.stats or {}
    hosts: dict[str, dict[str, int]] = {}
    for key in ("ok", "changed", "failures", "dark", "skipped"):
        for host, count in (stats.get(key) or {}).items():
            hosts.setdefault(host, {})[key] = count
    return hosts
