"""Where the repository's own Ansible content lives: ``roles/`` and the ``playbooks/`` library."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import server

log = logging.getLogger(__name__)


@functools.cache
def repository_dir(name: str) -> Path | None:
    """``<repository>/<name>`` next to the ``server`` package, or None when it is not there.

    A checkout or an editable install has it; a wheel installed elsewhere does not, and then
    playbooks that use the bundled roles fail their syntax check instead of the server failing.
    """
    candidate = Path(server.__file__).resolve().parents[1] / name
    if candidate.is_dir():
        return candidate
    log.warning("bundled Ansible content not found", extra={"directory": str(candidate)})
    return None


def roles_dir() -> Path | None:
    return repository_dir("roles")


def library_dir() -> Path | None:
    return repository_dir("playbooks")
