"""Where ansible-lint runs: a warm fork server (``forkserver.py``), or else a fresh process.

Both run in a private home directory made for them: a copy of the repository's roles (ansible-lint
rewrites the roles a playbook uses when it fixes, and excluding them from linting is only a
setting), an empty Ansible configuration, ansible-lint's configuration, and a clean environment
in which ``HOME`` and the caches point there. Each playbook gets its own directory under
``jobs/``. The fork server lives as long as this process (its home too) and is started on first
use; if it cannot start or dies, the check runs ``ansible-lint`` as a fresh process, slower and
otherwise the same.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import itertools
import json
import logging
import os
import shutil
import signal
import subprocess  # noqa: S404 - fixed argv, never a shell
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import anyio
import yaml

from server.playbooks.paths import roles_dir
from server.runs.executor import VENV_BIN, clean_env, control_dir

log = logging.getLogger(__name__)
LINT_TIMEOUT = 120
FORKSERVER = Path(__file__).with_name("forkserver.py")
START_TIMEOUT = 60
_ids = itertools.count(1)


@dataclass(frozen=True)
class Home:
    """ansible-lint's private directory, its environment and its command line."""

    path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def config(self) -> Path:
        return self.path / "ansible-lint.yml"

    def argv(self, project: Path) -> list[str]:
        program = VENV_BIN / "ansible-lint"
        return [
            str(program) if program.exists() else "ansible-lint",
            "--offline",
            "--profile",
            "production",
            "--fix",
            "--format",
            "json",
            "--nocolor",
            "--config-file",
            str(self.config),
            "--project-dir",
            str(project),
            "main.yml",
        ]

    def new_job(self, content: str) -> Path:
        """A directory with ``project/main.yml`` holding ``content``."""
        job = Path(tempfile.mkdtemp(prefix="job-", dir=self.path / "jobs"))
        (job / "project").mkdir()
        (job / "project" / "main.yml").write_text(content, encoding="utf-8")
        return job

    def remove(self) -> None:
        shutil.rmtree(control_dir(self.path), ignore_errors=True)
        shutil.rmtree(self.path, ignore_errors=True)


def make_home() -> Home:
    path = Path(tempfile.mkdtemp(prefix="windflow-lint-"))
    roles = path / "roles"
    if (source := roles_dir()) is not None:
        shutil.copytree(source, roles)
    else:
        roles.mkdir()
    for name in ("jobs", "tmp", "cache", "config"):
        (path / name).mkdir()
    (path / "ansible.cfg").write_text("", encoding="utf-8")
    settings = {"offline": True, "profile": "production", "exclude_paths": [str(roles)]}
    (path / "ansible-lint.yml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    env = clean_env(
        path,
        ANSIBLE_ROLES_PATH=str(roles),
        ANSIBLE_CONFIG=str(path / "ansible.cfg"),
        ANSIBLE_LINT_SKIP_SCHEMA_UPDATE="1",
        XDG_CACHE_HOME=str(path / "cache"),
        XDG_CONFIG_HOME=str(path / "config"),
        TMPDIR=str(path / "tmp"),  # ansible-lint makes a temp dir at import and never removes it
        NO_COLOR="1",
    )
    return Home(path, env)


class ForkServer:
    """The client side of ``forkserver.py``: one process, many runs (thread-safe)."""

    def __init__(self) -> None:
        self.home = make_home()
        self._lock = threading.Lock()
        self._waiting: dict[int, concurrent.futures.Future[int | None]] = {}
        with (self.home.path / "forkserver.log").open("wb") as log_file:
            self.process = subprocess.Popen(  # noqa: S603 - our own script, fixed argv
                [sys.executable, str(FORKSERVER), str(LINT_TIMEOUT)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log_file,
                cwd=self.home.path,
                env=self.home.env,
                start_new_session=True,
            )
        stdout: IO[bytes] = self.process.stdout  # type: ignore[assignment]
        ready = _read_line(stdout, START_TIMEOUT)
        if not ready.startswith(b'{"ready": true}'):
            errors = (self.home.path / "forkserver.log").read_text(errors="replace")[-1000:]
            self.close()
            raise RuntimeError(f"the ansible-lint fork server did not start: {errors}")
        threading.Thread(target=self._read, args=(stdout,), name="ansible-lint-replies", daemon=True).start()

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def submit(self, job: Path) -> tuple[int, concurrent.futures.Future[int | None]]:
        ident = next(_ids)
        future: concurrent.futures.Future[int | None] = concurrent.futures.Future()
        with self._lock:
            self._waiting[ident] = future
            try:
                self._send({"id": ident, "dir": str(job), "argv": self.home.argv(job / "project")})
            except OSError:
                del self._waiting[ident]
                raise
        return ident, future

    def cancel(self, ident: int) -> None:
        with self._lock, contextlib.suppress(OSError):
            self._send({"cancel": ident})

    def _send(self, message: dict[str, object]) -> None:
        stdin: IO[bytes] = self.process.stdin  # type: ignore[assignment]
        stdin.write((json.dumps(message) + "\n").encode())
        stdin.flush()

    def _read(self, stdout: IO[bytes]) -> None:
        """Hand each reply to its waiting run; when the server ends, fail the runs still waiting."""
        with contextlib.suppress(OSError, ValueError):  # closed under us: the server is going away
            for line in stdout:
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    reply = json.loads(line)
                    with self._lock:
                        future = self._waiting.pop(int(reply["id"]), None)
                    if future is not None:
                        _settle(future, reply.get("rc"))
        with self._lock:
            waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            _settle(future, RuntimeError("the ansible-lint fork server ended"))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self.process.stdin:
                self.process.stdin.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()
        self.home.remove()


def _settle(future: concurrent.futures.Future[int | None], outcome: int | None | Exception) -> None:
    """Set a run's outcome unless its waiter gave up (a cancelled future takes none)."""
    with contextlib.suppress(concurrent.futures.InvalidStateError):
        if isinstance(outcome, Exception):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


def _read_line(stream: IO[bytes], timeout: float) -> bytes:
    result: list[bytes] = []
    reader = threading.Thread(target=lambda: result.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return result[0] if result else b""


_server: ForkServer | None = None
_server_lock = threading.Lock()


def fork_server() -> ForkServer:
    """The running fork server, started when there is none (blocking: call it in a thread)."""
    global _server
    with _server_lock:
        if _server is None or not _server.alive:
            if _server is not None:
                _server.close()
            _server = ForkServer()
        return _server


@atexit.register
def stop_fork_server() -> None:
    global _server
    with _server_lock:
        if _server is not None:
            _server.close()
            _server = None


@dataclass(frozen=True)
class Outcome:
    returncode: int | None  # None: killed at the timeout
    stdout: str
    stderr: str
    fixed: str  # main.yml after ansible-lint's fixes


def _collect(job: Path, returncode: int | None) -> Outcome:
    def read(path: Path) -> str:
        try:
            return path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    return Outcome(returncode, read(job / "stdout"), read(job / "stderr"), read(job / "project" / "main.yml"))


async def _warm(content: str) -> Outcome:
    server = await anyio.to_thread.run_sync(fork_server)
    job = await anyio.to_thread.run_sync(server.home.new_job, content)
    try:
        ident, future = server.submit(job)
        try:
            returncode = await asyncio.wait_for(asyncio.wrap_future(future), LINT_TIMEOUT + 10)
        except BaseException:
            server.cancel(ident)
            raise
        return await anyio.to_thread.run_sync(_collect, job, returncode)
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(lambda: shutil.rmtree(job, ignore_errors=True))


async def _fresh(content: str) -> Outcome:
    home = await anyio.to_thread.run_sync(make_home)
    try:
        job = await anyio.to_thread.run_sync(home.new_job, content)
        process = await asyncio.create_subprocess_exec(
            *home.argv(job / "project"),
            cwd=job / "project",
            env=home.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own session: a timeout ends ansible-playbook too
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), LINT_TIMEOUT)
        except BaseException as exc:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            with anyio.CancelScope(shield=True):
                await process.wait()
            if not isinstance(exc, TimeoutError):
                raise
            return Outcome(None, "", "", "")
        fixed = await anyio.to_thread.run_sync(_collect, job, process.returncode)
        return Outcome(process.returncode, out.decode(errors="replace"), err.decode(errors="replace"), fixed.fixed)
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(home.remove)


async def run_lint(content: str, *, warm: bool = True) -> Outcome:
    """ansible-lint on ``content``: in the fork server, or in a fresh process when it is unavailable."""
    if warm:
        try:
            return await _warm(content)
        except (RuntimeError, OSError) as exc:
            log.warning("ansible-lint fork server unavailable; running a fresh process", extra={"error": str(exc)})
    return await _fresh(content)
