"""``execute_run``: one run from ``pending`` to its final status, the same code in every worker.

The run is claimed with a conditional update (``pending`` → ``running``), so a job delivered twice
never runs twice, and a run whose worker died is never started again: recovery marks it failed.
Events are stored before they are published, and the final status is published last.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import msgspec

from server.auth.service import utcnow
from server.credentials.masking import Masker
from server.credentials.service import reveal
from server.db.engine import atomic, lock_organization
from server.db.tables import Inventory, PlaybookVersion, Run
from server.inventories import spec as inventory_spec
from server.inventories.render import Rendered, render_inventory, write_private
from server.playbooks.paths import roles_dir
from server.runs.events import EventSink, Publisher, SinkStats, publish_status
from server.runs.executor import PlaybookJob, PlaybookOutcome, run_playbook
from server.runs.metrics import RunMetrics
from server.runs.spec import RunOptions
from server.runs.status import FROM_RUNNER, RunStatus
from server.settings import Settings

log = logging.getLogger(__name__)
CANCEL_POLL = 0.25  # seconds between looks at ``cancel_requested``
HOST_WAIT = 0.5  # seconds between looks at busy hosts (WINDFLOW_RUN_ONE_PER_HOST)


def run_directory(settings: Settings, run_id: uuid.UUID | str) -> Path:
    """A run's private_data_dir, absolute: its processes are found by it (``kill_tree``)."""
    return Path(os.path.abspath(settings.data_dir)) / "runs" / str(run_id)


def worker_name(kind: str) -> str:
    return f"{kind}:{socket.gethostname()}:{os.getpid()}"


class PrepareFailed(Exception):
    """The run cannot start (its playbook or inventory is gone, a credential is unreadable)."""


@dataclass
class Prepared:
    directory: Path
    rendered: Rendered
    options: RunOptions
    masker: Masker = field(default_factory=Masker)  # the values of the run's credentials


@dataclass
class Engine:
    settings: Settings
    publisher: Publisher
    worker: str
    metrics: RunMetrics = field(default_factory=RunMetrics)
    active: dict[uuid.UUID, threading.Event] = field(default_factory=dict)
    interrupted: bool = False

    def interrupt_all(self) -> None:
        """Shutting down: stop every run of this worker (each ends ``canceled``, with the reason)."""
        self.interrupted = True
        for event in self.active.values():
            event.set()

    async def execute(self, run_id: uuid.UUID) -> str:
        """Run it if it is still pending; returns the final status (or ``skipped``)."""
        run = await self._claim(run_id)
        if run is None:
            return "skipped"
        await self._publish_status(run_id, RunStatus.running, "", 0)
        began = time.monotonic()
        try:
            prepared = await self._prepare(run)
        except PrepareFailed as exc:
            return await self._finish(run_id, RunStatus.failed, str(exc), {}, SinkStats(), began)
        except Exception as exc:  # noqa: BLE001 - a run that cannot start must still end, saying why
            log.exception("run could not be prepared", extra={"run_id": str(run_id)})
            reason = f"could not prepare the run ({type(exc).__name__})"
            return await self._finish(run_id, RunStatus.failed, reason, {}, SinkStats(), began)
        cancel = self.active.setdefault(run_id, threading.Event())
        watcher = asyncio.create_task(self._watch(run_id, cancel), name=f"watch {run_id}")
        sink = EventSink(run_id, self.publisher, on_batch=self.metrics.ingested, masker=prepared.masker)
        try:
            outcome = await anyio.to_thread.run_sync(self._run, prepared, sink, cancel)
        except Exception as exc:  # noqa: BLE001 - whatever breaks, the run must end with a status
            log.exception("run crashed", extra={"run_id": str(run_id)})
            outcome = PlaybookOutcome("error", None, {"error": f"{type(exc).__name__}: {exc}"})
        finally:
            watcher.cancel()
            self.active.pop(run_id, None)
            prepared.rendered.remove()  # keys, kubeconfigs and passwords leave with the run
        stats = await sink.close()
        status = FROM_RUNNER.get(outcome.status, RunStatus.failed)
        reason = _reason(status, outcome, prepared.options)
        if status == RunStatus.canceled and self.interrupted:
            reason = f"canceled: worker {self.worker} shut down"
        return await self._finish(run_id, status, reason, _host_stats(outcome.stats), stats, began)

    async def _claim(self, run_id: uuid.UUID) -> dict[str, Any] | None:
        if not self.settings.run_one_per_host:
            return await self._take(run_id)
        # Wait (holding this worker slot) while another run of the organization uses one of its
        # hosts; the check and the claim are one transaction, serialised per organization.
        while True:
            async with atomic():
                row = await Run.select(Run.organization, Run.targets, Run.status).where(Run.id == run_id).first()
                if row is None or row["status"] != RunStatus.pending:
                    return None
                await lock_organization(row["organization"])
                busy = await Run.select(Run.targets).where(
                    Run.organization == row["organization"], Run.status == RunStatus.running
                )
                mine = set(_json(row["targets"]))
                if not any(mine & set(_json(other["targets"])) for other in busy):
                    return await self._take(run_id)
            await asyncio.sleep(HOST_WAIT)

    async def _take(self, run_id: uuid.UUID) -> dict[str, Any] | None:
        now = utcnow()
        claimed = (
            await Run.update(
                {Run.status: RunStatus.running, Run.worker: self.worker, Run.started_at: now, Run.heartbeat_at: now}
            )
            .where(Run.id == run_id, Run.status == RunStatus.pending, Run.cancel_requested.eq(False))
            .returning(Run.id)
        )
        if not claimed:
            return None
        return await Run.select().where(Run.id == run_id).first()

    async def _prepare(self, run: dict[str, Any]) -> Prepared:
        options = msgspec.convert(_json(run["options"]), RunOptions)
        content = run["content"]
        if run["playbook_version"]:
            query = PlaybookVersion.select(PlaybookVersion.content)
            version = await query.where(PlaybookVersion.id == run["playbook_version"]).first()
            content = version["content"] if version else ""
        if not content:
            raise PrepareFailed("the playbook version was deleted before the run started")
        inventory = None
        if run["inventory"]:
            inventory = await Inventory.select(Inventory.document).where(Inventory.id == run["inventory"]).first()
        if inventory is None:
            raise PrepareFailed("the inventory was deleted before the run started")
        document = msgspec.json.decode(_text(inventory["document"]), type=inventory_spec.Document)
        ids = {ref[2] for ref in inventory_spec.credential_refs(document)} | set(options.credentials)
        try:
            secrets = await reveal(self.settings.secret_key, run["organization"], sorted(ids)) if ids else {}
        except Exception as exc:  # noqa: BLE001 - the reason is stored, the secret never is
            raise PrepareFailed(f"a credential could not be read: {type(exc).__name__}") from None
        missing = ids - set(secrets)
        if missing:
            raise PrepareFailed("a credential of this run was deleted: " + ", ".join(sorted(map(str, missing))))
        directory = run_directory(self.settings, run["id"])

        def write() -> Rendered:
            shutil.rmtree(directory, ignore_errors=True)
            (directory / "project").mkdir(parents=True, mode=0o700)
            (directory / "project" / "main.yml").write_text(content)
            rendered = render_inventory(document, secrets, directory, tuple(options.credentials))
            extra = {**options.extra_vars, **rendered.extra_vars}
            if extra:
                # runner passes env/extravars as ``-e @file``: values never reach a command line.
                rendered.secret_files.append(write_private(directory / "env" / "extravars", json.dumps(extra).encode()))
            return rendered

        rendered = await anyio.to_thread.run_sync(write)
        return Prepared(directory, rendered, options, Masker.of(secrets.values()))

    def _run(self, prepared: Prepared, sink: EventSink, cancel: threading.Event) -> PlaybookOutcome:
        options = prepared.options
        job = PlaybookJob(
            private_data_dir=prepared.directory,
            playbook="main.yml",
            on_event=sink.put_threadsafe,
            should_cancel=cancel.is_set,
            limit=options.limit,
            tags=list(options.tags),
            skip_tags=list(options.skip_tags),
            check=options.check,
            diff=options.diff,
            verbosity=options.verbosity,
            forks=options.forks,
            timeout=options.timeout,
            cmdline=prepared.rendered.cmdline,
            # Colours kept in stdout, as a terminal would show them; clients may strip them.
            env={"ANSIBLE_NOCOLOR": "0", "ANSIBLE_FORCE_COLOR": "1"}
            | ({"ANSIBLE_ROLES_PATH": str(roles)} if (roles := roles_dir()) else {}),
        )
        try:
            return run_playbook(job)
        finally:
            mask_artifacts(prepared.directory / "artifacts", prepared.masker)

    async def _watch(self, run_id: uuid.UUID, cancel: threading.Event) -> None:
        """Heart-beat, and notice a cancel request within ``CANCEL_POLL`` seconds."""
        last_beat = time.monotonic()
        while not cancel.is_set():
            await asyncio.sleep(CANCEL_POLL)
            try:
                row = await Run.select(Run.cancel_requested).where(Run.id == run_id).first()
                if row is None or row["cancel_requested"]:
                    cancel.set()
                if time.monotonic() - last_beat >= self.settings.run_heartbeat_interval:
                    await Run.update({Run.heartbeat_at: utcnow()}).where(Run.id == run_id)
                    last_beat = time.monotonic()
            except Exception:  # noqa: BLE001 - a database hiccup must not stop the run; try again
                log.warning("run watcher could not reach the database", extra={"run_id": str(run_id)})

    async def _finish(
        self,
        run_id: uuid.UUID,
        status: RunStatus,
        reason: str,
        host_stats: dict[str, dict[str, int]],
        stats: SinkStats,
        began: float,
    ) -> str:
        await Run.update(
            {
                Run.status: status,
                Run.reason: reason,
                Run.finished_at: utcnow(),
                Run.host_stats: json.dumps(host_stats),
            }
        ).where(Run.id == run_id)
        self.metrics.finished(status, time.monotonic() - began)
        await self._publish_status(run_id, status, reason, stats.last_counter)
        log.info("run finished", extra={"run_id": str(run_id), "status": status, "events": stats.stored})
        return str(status)

    async def _publish_status(self, run_id: uuid.UUID, status: RunStatus, reason: str, last_counter: int) -> None:
        await publish_status(self.publisher, run_id, status, reason, last_counter)


def mask_artifacts(directory: Path, masker: Masker) -> None:
    """Mask the run's secret values in what runner keeps on disk (its stdout, the stats event).

    Those files outlive the run (``WINDFLOW_RUN_RETENTION_DAYS``) and repeat what the events hold.
    """
    if not masker or not directory.is_dir():
        return
    for path in directory.rglob("*"):
        if path.is_symlink() or not path.is_file():
            continue
        try:
            text = path.read_bytes().decode("utf-8", "surrogateescape")
            masked = masker.text(text)
            if masked != text:
                path.write_bytes(masked.encode("utf-8", "surrogateescape"))
        except OSError:
            # The events are masked already; an unreadable leftover must not fail the run. Say so.
            log.warning("could not mask a run artifact; deleting it", extra={"path": str(path)})
            with contextlib.suppress(OSError):
                path.unlink()


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def _text(value: Any) -> str | bytes:
    return value if isinstance(value, str | bytes) else json.dumps(value)


HOST_STAT_KEYS = {
    "ok": "ok",
    "changed": "changed",
    "failures": "failed",
    "dark": "unreachable",
    "skipped": "skipped",
    "rescued": "rescued",
    "ignored": "ignored",
}


def _host_stats(stats: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Runner's per-key host counts → per host: ok, changed, failed, unreachable, skipped, rescued, ignored."""
    hosts: dict[str, dict[str, int]] = {}
    for key, name in HOST_STAT_KEYS.items():
        for host, count in (stats.get(key) or {}).items():
            hosts.setdefault(host, dict.fromkeys(HOST_STAT_KEYS.values(), 0))[name] = int(count)
    return hosts


def _reason(status: RunStatus, outcome: PlaybookOutcome, options: RunOptions) -> str:
    if status == RunStatus.timeout:
        return f"stopped after the run's timeout of {options.timeout} s"
    if status == RunStatus.canceled:
        return "canceled on request"
    if outcome.status == "error":
        return str(outcome.stats.get("error") or "ansible-runner could not run the playbook")
    if status == RunStatus.failed:
        return f"ansible-playbook exited with status {outcome.rc}"
    return ""
