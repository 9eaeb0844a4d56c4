"""A warm ansible-lint: imported once, forked for each playbook. Run as a script, never imported.

Importing ansible-lint, its rules and Ansible costs most of a second of every ``ansible-lint`` run.
This process pays it once: it imports them, then for every request forks a child that runs
ansible-lint's own command-line entry point, exactly as ``ansible-lint <argv>`` would, in the
request's directory, with its output in files there. The environment is the one this process
was started with (the client builds it), identical for every request, so a child sees what a
fresh ``ansible-lint`` would.

Protocol, one JSON object per line: ``{"id": 1, "dir": "...", "argv": [...]}`` starts a run,
``{"cancel": 1}`` ends one; each run is answered ``{"id": 1, "rc": 0}`` (``rc`` is null when it
was killed). A run past ``timeout`` seconds is killed. End of input ends the server and its runs.
Only the standard library is imported before the fork, besides ansible-lint itself.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import select
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import Any

POLL = 0.02


def warm_up() -> Any:
    """Import what every run needs; nothing is configured or run."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        main = importlib.import_module("ansiblelint.__main__")
        rules = Path(importlib.import_module("ansiblelint.rules").__file__ or "").parent
        sys.path.append(str(rules))
        try:
            for path in sorted(rules.glob("*.py")):
                if "__" not in path.stem and path.stem != "conftest":
                    importlib.import_module(path.stem)  # as ansible-lint loads them: by stem
        finally:
            sys.path.remove(str(rules))
        for name in ("app", "cli", "formatters", "runner", "transformer", "yaml_utils"):
            importlib.import_module(f"ansiblelint.{name}")
    return main


def _child(main: Any, workdir: Path, argv: list[str]) -> None:
    """In the forked child: become a plain ``ansible-lint`` run in ``workdir``; never returns."""
    code = 70
    try:
        os.setsid()
        for number in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
            signal.signal(number, signal.SIG_DFL)
        os.chdir(workdir / "project")
        for fd, name, flags in ((0, os.devnull, os.O_RDONLY), (1, "stdout", 0), (2, "stderr", 0)):
            target = name if name == os.devnull else str(workdir / name)
            opened = os.open(target, flags or os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(opened, fd)
            os.close(opened)
        sys.argv = argv
        try:
            code = int(main.main(argv) or 0)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: B036 - the child must exit, whatever happened
        with contextlib.suppress(Exception):
            import traceback

            traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _reply(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def serve(timeout: float) -> None:
    main = warm_up()
    running: dict[int, tuple[int, float]] = {}  # pid -> (request id, deadline)
    _reply({"ready": True})
    pending = b""
    open_input = True
    while open_input or running:
        # Idle, it sleeps until a request comes; while runs go on, it looks at them every POLL.
        if open_input and select.select([0], [], [], POLL if running else None)[0]:
            chunk = os.read(0, 65536)
            if not chunk:
                open_input = False
                _kill(running, None)
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line.strip():
                    _handle(main, json.loads(line), running, timeout)
        elif not open_input:
            time.sleep(POLL)
        _reap(running)


def _handle(main: Any, request: dict[str, Any], running: dict[int, tuple[int, float]], timeout: float) -> None:
    if "cancel" in request:
        _kill(running, int(request["cancel"]))
        return
    pid = os.fork()
    if pid == 0:
        _child(main, Path(request["dir"]), [str(part) for part in request["argv"]])
    running[pid] = (int(request["id"]), time.monotonic() + timeout)


def _kill(running: dict[int, tuple[int, float]], ident: int | None) -> None:
    """Kill the run ``ident`` (every run for None) with everything it started."""
    for pid, (run, _) in running.items():
        if ident is None or run == ident:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)  # the run's session: ansible-playbook and the rest
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)  # in case it was killed before it had its own session


def _reap(running: dict[int, tuple[int, float]]) -> None:
    now = time.monotonic()
    for pid, (ident, deadline) in list(running.items()):
        if now > deadline:
            _kill({pid: (ident, deadline)}, None)
    while running:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if pid in running:
            code = os.waitstatus_to_exitcode(status)
            _reply({"id": running.pop(pid)[0], "rc": code if code >= 0 else None})


if __name__ == "__main__":
    serve(float(sys.argv[1]) if len(sys.argv) > 1 else 120.0)
