"""Daemons the lab starts: always children of the process that started them, always waited for.

PID 1 on these machines reaps nothing, so a daemon is never double-forked away: it is started with
``Popen`` and stopped with SIGTERM, a bounded wait, then SIGKILL, and its exit status is collected.
Each daemon gets its own process group, so its children go with it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.lab.paths import RUN_DIR


class LabError(RuntimeError):
    """A lab target could not be started; the message says what to look at."""


@dataclass
class Daemon:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def log_path(self) -> Path:
        return RUN_DIR / f"{self.name}.log"

    def start(self) -> Daemon:
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(  # noqa: S603 - argv built by the lab, never from input
                list(self.argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(self.env) if self.env is not None else None,
                cwd=self.cwd,
                start_new_session=True,
            )
        finally:
            log.close()
        (RUN_DIR / f"{self.name}.pid").write_text(str(self.process.pid))
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_until(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll ``ready`` (bounded); fail with the daemon's log if it dies or times out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise LabError(f"{self.name} exited while waiting for {what}:\n{self.log_tail()}")
            if ready():
                return
            time.sleep(0.1)
        raise LabError(f"{self.name}: no {what} after {timeout:.0f}s:\n{self.log_tail()}")

    def stop(self, timeout: float = 15) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            _signal_group(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        # Anything left in its group (children that outlived it) goes too.
        _signal_group(self.process.pid, signal.SIGKILL)
        (RUN_DIR / f"{self.name}.pid").unlink(missing_ok=True)
        self.process = None


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def run(
    argv: Sequence[str],
    *,
    timeout: float = 600,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion (bounded), raising with its output when it fails."""
    result = subprocess.run(  # noqa: S603 - argv built by the lab
        list(argv), capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd, check=False
    )
    if check and result.returncode != 0:
        output = f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        raise LabError(f"{' '.join(argv)} failed ({result.returncode}):\n{output}")
    return result
