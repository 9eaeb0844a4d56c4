"""Run Ansible against lab targets the way WindFlow will: ansible-runner, a clean environment."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import ansible_runner
import yaml

from server.runs.executor import clean_env

VENV_BIN = Path(sys.executable).parent


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
