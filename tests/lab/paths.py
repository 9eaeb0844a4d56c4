"""Where the lab keeps its state (per checkout) and its caches (per machine)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LAB_DIR = Path(os.environ.get("WINDFLOW_LAB_DIR", REPO / ".lab"))
CACHE_DIR = Path(os.environ.get("WINDFLOW_LAB_CACHE", Path.home() / ".cache" / "windflow"))
RUN_DIR = LAB_DIR / "run"  # pid files and logs of the lab's daemons


def ensure_dirs() -> None:
    for directory in (LAB_DIR, CACHE_DIR, RUN_DIR):
        directory.mkdir(parents=True, exist_ok=True)
