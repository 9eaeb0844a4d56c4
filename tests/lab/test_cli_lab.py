"""``make lab-up`` gives an inventory of all four kinds; ``make lab-down`` leaves nothing behind.

This module runs first in the session (``tests/conftest.py`` puts it there), while no lab fixture
has started anything, because it starts the whole lab itself through the Makefile.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from tests.lab.lab import INVENTORY
from tests.lab.leftovers import leftovers
from tests.lab.paths import REPO

VENV_BIN = Path(sys.executable).parent


def make(target: str, timeout: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", target], cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
    )


def hosts_of(groups: dict[str, dict[str, list[str]]], name: str) -> list[str]:
    group = groups.get(name, {})
    return group.get("hosts", []) + [h for child in group.get("children", []) for h in hosts_of(groups, child)]


def test_lab_up_inventory_then_down_leaves_nothing() -> None:
    assert leftovers() == {}, "something of an earlier lab is still around"
    try:
        up = make("lab-up", timeout=2400)
        assert up.returncode == 0, up.stdout + up.stderr
        assert "inventory" in up.stdout
        inventory = yaml.safe_load(INVENTORY.read_text())
        assert set(inventory["all"]["children"]) == {"docker", "kubernetes", "vm", "baremetal"}
        listed = subprocess.run(
            [str(VENV_BIN / "ansible-inventory"), "-i", str(INVENTORY), "--list"],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        groups = json.loads(listed.stdout)
        for kind in ("docker", "kubernetes", "vm", "baremetal"):
            assert hosts_of(groups, kind), f"no hosts in group {kind}"
        status = make("lab-status", timeout=60)
        assert status.returncode == 0 and '"state": "ready"' in status.stdout
    finally:
        down = make("lab-down", timeout=600)
    assert down.returncode == 0, down.stdout + down.stderr
    assert leftovers() == {}
    assert not INVENTORY.exists()
