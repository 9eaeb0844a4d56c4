"""``python -m tests.lab up|down|status`` (``make lab-up`` / ``lab-down`` / ``lab-status``).

``up`` starts a supervisor process that owns every lab daemon (so each is waited for when it
stops: PID 1 here reaps nothing) and returns once the lab is ready. ``down`` asks the supervisor
to stop everything, waits for it, then checks that nothing is left behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.lab.lab import INVENTORY, STATUS, Lab, write_status
from tests.lab.leftovers import leftovers
from tests.lab.paths import RUN_DIR, ensure_dirs

SUPERVISOR_PID = RUN_DIR / "supervisor.pid"
SUPERVISOR_LOG = RUN_DIR / "supervisor.log"
UP_TIMEOUT = 1800  # a cold machine builds Kubernetes (~9 min) and the VM image first
DOWN_TIMEOUT = 180


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _supervisor() -> int | None:
    try:
        pid = int(SUPERVISOR_PID.read_text())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) else None


def _read_status() -> dict[str, object]:
    try:
        return dict(json.loads(STATUS.read_text()))
    except (OSError, ValueError):
        return {}


def up() -> int:
    ensure_dirs()
    supervisor: subprocess.Popen[bytes] | None = None
    if _supervisor() is None:
        STATUS.unlink(missing_ok=True)
        with SUPERVISOR_LOG.open("ab") as log:
            supervisor = subprocess.Popen(  # noqa: S603 - our own module
                [sys.executable, "-m", "tests.lab", "supervise"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
    deadline = time.monotonic() + UP_TIMEOUT
    while time.monotonic() < deadline:
        state = _read_status().get("state")
        if state == "ready":
            return status()
        exited = supervisor.poll() is not None if supervisor else _supervisor() is None
        if state == "failed" or exited:
            print(f"lab failed to start; see {SUPERVISOR_LOG}\n{_read_status().get('error', '')}", file=sys.stderr)
            return 1
        time.sleep(1)
    print(f"lab not ready after {UP_TIMEOUT}s; see {SUPERVISOR_LOG}", file=sys.stderr)
    return 1


def supervise() -> int:
    ensure_dirs()
    SUPERVISOR_PID.write_text(str(os.getpid()))
    stop_requested = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    lab = Lab()
    write_status({"state": "starting"})
    try:
        lab.start()
    except Exception as exc:  # noqa: BLE001 - report it, then tear down what did start
        write_status({"state": "failed", "error": f"{type(exc).__name__}: {exc}"})
        lab.stop()
        SUPERVISOR_PID.unlink(missing_ok=True)
        return 1
    write_status({"state": "ready", "inventory": str(INVENTORY), **lab.status()})
    while not stop_requested:
        time.sleep(0.5)
    try:
        lab.stop()
    finally:
        write_status({"state": "stopped"})
        SUPERVISOR_PID.unlink(missing_ok=True)
    return 0


def down() -> int:
    pid = _supervisor()
    if pid is not None:
        subprocess.run(["kill", "-TERM", str(pid)], check=False)  # noqa: S603, S607
        deadline = time.monotonic() + DOWN_TIMEOUT
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        if _alive(pid):
            print(f"the lab supervisor ({pid}) did not stop within {DOWN_TIMEOUT}s", file=sys.stderr)
            return 1
    left = leftovers()
    if left:
        print("left behind after lab-down:\n" + json.dumps(left, indent=2), file=sys.stderr)
        return 1
    print("lab is down; nothing left behind")
    return 0


def status() -> int:
    current = _read_status()
    if _supervisor() is None or current.get("state") != "ready":
        print(f"lab is down (state: {current.get('state', 'never started')})")
        return 0 if not leftovers() else 1
    print(json.dumps(current, indent=2, default=str))
    print(f"\nAnsible inventory: {INVENTORY}")
    return 0


COMMANDS = {"up": up, "down": down, "status": status, "supervise": supervise}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in COMMANDS:
        print("usage: python -m tests.lab up|down|status", file=sys.stderr)
        raise SystemExit(2)
    raise SystemExit(COMMANDS[sys.argv[1]]())
