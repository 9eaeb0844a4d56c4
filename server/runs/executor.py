"""The one place that drives ansible-runner: a clean, explicit environment and its events.

Nothing of the server's own environment (secret key, database URL, LLM keys) reaches Ansible:
the environment is built from scratch for every call.
"""

from __future__ import annotations

import contextlib
import hashlib
import shlex
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VENV_BIN = Path(sys.executable).parent


def control_dir(private_data_dir: Path) -> Path:
    """Where SSH keeps its multiplexing sockets for one run.

    A Unix socket path must fit in 108 bytes; a deep data directory would not leave room for
    OpenSSH's name, so long paths move to a short, per-run directory under the system temp dir.
    """
    inside = private_data_dir / "cp"
    if len(str(inside)) <= 60:
        return inside
    digest = hashlib.sha256(str(private_data_dir.resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"windflow-cp-{digest}"


def clean_env(private_data_dir: Path, **extra: str) -> dict[str, str]:
    """The whole environment Ansible sees (runner adds nothing of ours to it)."""
    control = control_dir(private_data_dir)
    control.mkdir(parents=True, exist_ok=True)
    control.chmod(0o700)
    return {
        "PATH": f"{VENV_BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(private_data_dir),
        "LANG": "C.UTF-8",
        "ANSIBLE_LOCAL_TEMP": str(private_data_dir / "tmp"),
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_DEPRECATION_WARNINGS": "False",
        # cryptography's warning about DSA, raised by Ansible's own import, is noise in every message.
        "PYTHONWARNINGS": "ignore:::ansible._internal._ssh._ssh_agent",
        # Short-lived SSH multiplexing inside the run's directory: no mux process outlives it.
        "ANSIBLE_SSH_ARGS": (
            "-o ControlMaster=auto -o ControlPersist=2s -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
        ),
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control),
        **extra,
    }


@dataclass
class ModuleResult:
    """Per host, the last event of an ad-hoc module call and how long it took."""

    status: str  # runner's final status
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)


_OUTCOMES = {"runner_on_ok": "ok", "runner_on_failed": "failed", "runner_on_unreachable": "unreachable"}


def run_module(
    private_data_dir: Path,
    module: str,
    hosts: list[str],
    *,
    forks: int = 20,
    timeout: int = 120,
    connect_timeout: int = 10,
    cmdline: list[str] | None = None,
) -> ModuleResult:
    """Run one module on ``hosts`` (blocking: call it from a worker thread)."""
    import ansible_runner  # type: ignore[import-untyped]

    result = ModuleResult(status="")

    def on_event(event: dict[str, Any]) -> bool:
        outcome = _OUTCOMES.get(event.get("event", ""))
        data = event.get("event_data") or {}
        if outcome and data.get("host"):
            result.hosts[data["host"]] = {
                "outcome": outcome,
                "res": data.get("res") or {},
                "duration": data.get("duration"),
            }
        return True

    limit_file = private_data_dir / "limit"
    limit_file.write_text("".join(f"{name}\n" for name in hosts))
    runner = ansible_runner.run(
        private_data_dir=str(private_data_dir),
        host_pattern="all",
        limit=f"@{limit_file}",
        module=module,
        forks=max(1, min(forks, len(hosts) or 1)),
        envvars=clean_env(private_data_dir, ANSIBLE_TIMEOUT=str(connect_timeout)),
        cmdline=" ".join(cmdline) if cmdline else None,
        quiet=True,
        timeout=timeout,
        event_handler=on_event,
        rotate_artifacts=1,
    )
    shutil.rmtree(control_dir(private_data_dir), ignore_errors=True)
    result.status = str(runner.status)
    return result


@dataclass
class PlaybookJob:
    """One ``ansible-playbook`` through ansible-runner, with WindFlow's callbacks."""

    private_data_dir: Path
    playbook: str
    on_event: Callable[[dict[str, Any]], None]
    should_cancel: Callable[[], bool]
    limit: str = ""
    tags: list[str] = field(default_factory=list)
    skip_tags: list[str] = field(default_factory=list)
    check: bool = False
    diff: bool = False
    verbosity: int = 0
    forks: int = 5
    timeout: int = 0
    cmdline: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class PlaybookOutcome:
    status: str  # runner's: successful, failed, canceled, timeout, error
    rc: int | None
    stats: dict[str, Any]


def run_playbook(job: PlaybookJob) -> PlaybookOutcome:
    """Run it to the end (blocking: call it from a worker thread)."""
    import ansible_runner

    def cancel() -> bool:
        if not job.should_cancel():
            return False
        # Runner kills ansible-playbook's process group; its forked workers and their SSH
        # children may sit elsewhere, so end the whole tree first.
        kill_tree(job.private_data_dir)
        return True

    def on_event(event: dict[str, Any]) -> bool:
        job.on_event(event)
        # Events live in the database; runner keeps on disk only the one its ``stats`` reads.
        return event.get("event") == "playbook_on_stats"

    cmdline = [*job.cmdline, *(["--check"] if job.check else []), *(["--diff"] if job.diff else [])]
    runner = ansible_runner.run(
        private_data_dir=str(job.private_data_dir),
        playbook=job.playbook,
        limit=job.limit or None,
        tags=",".join(job.tags) or None,
        skip_tags=",".join(job.skip_tags) or None,
        verbosity=job.verbosity or None,
        forks=job.forks,
        cmdline=" ".join(shlex.quote(part) for part in cmdline) or None,
        envvars=clean_env(job.private_data_dir, **job.env),
        settings={"pexpect_timeout": 0.2},  # how often cancel is asked: stops within ~0.3 s
        timeout=job.timeout or None,
        event_handler=on_event,
        cancel_callback=cancel,
        quiet=True,
        ident="run",
    )
    if runner.status != "successful":
        # On a timeout or cancel runner only kills ansible-playbook's process group; what the run
        # started elsewhere (module processes, their commands) goes now, so nothing outlives it. A
        # successful run is left alone: its ``async`` tasks may run on by design.
        kill_tree(job.private_data_dir, orphans=True)
    shutil.rmtree(control_dir(job.private_data_dir), ignore_errors=True)
    return PlaybookOutcome(status=str(runner.status), rc=runner.rc, stats=dict(runner.stats or {}))


def kill_tree(private_data_dir: Path, *, orphans: bool = False) -> int:
    """Kill every process of this run, and its descendants.

    A process belongs to the run when its command line names the run's directory or its ``HOME``
    is that directory (``clean_env`` sets it, and what Ansible starts locally inherits it). Our own
    children by default; with ``orphans``, any process on this machine: a worker that was killed
    leaves Ansible and its commands behind, adopted by PID 1.
    """
    import psutil  # type: ignore[import-untyped]

    marker = str(private_data_dir)
    victims: list[psutil.Process] = []
    candidates = psutil.process_iter() if orphans else psutil.Process().children(recursive=True)
    for child in candidates:
        try:
            if any(marker in part for part in child.cmdline()) or child.environ().get("HOME") == marker:
                victims += [child, *child.children(recursive=True)]
        except psutil.Error:
            continue
    for process in victims:
        with contextlib.suppress(psutil.Error):
            process.kill()
    return len(victims)
