"""Mount points the lab's daemons leave behind, found in /proc/mounts and unmounted deepest first."""

from __future__ import annotations

import subprocess
from pathlib import Path


def mountpoints(*roots: Path | str) -> list[str]:
    """Mount points at or below any of ``roots``, in /proc/mounts order (octal escapes decoded)."""
    prefixes = tuple(str(root) for root in roots)
    points = []
    for line in Path("/proc/mounts").read_text().splitlines():
        fields = line.split()
        point = fields[1].encode().decode("unicode_escape") if len(fields) > 1 else ""
        if point in prefixes or point.startswith(tuple(prefix + "/" for prefix in prefixes)):
            points.append(point)
    return points


def unmount_under(*roots: Path | str) -> list[str]:
    """Unmount everything below ``roots``; returns what is still mounted (should be nothing)."""
    for _ in range(3):  # bounded: a mount can hide another at the same point
        points = mountpoints(*roots)
        if not points:
            return []
        for point in reversed(points):
            subprocess.run(["umount", point], check=False, capture_output=True)  # noqa: S603, S607
            if point in mountpoints(*roots):
                subprocess.run(["umount", "-l", point], check=False, capture_output=True)  # noqa: S603, S607
    return mountpoints(*roots)
