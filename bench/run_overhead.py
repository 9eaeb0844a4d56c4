"""What a run costs on top of Ansible: ``POST /api/v1/runs`` to its final status ÷ ``ansible-playbook``.

Run from the repository: ``.venv/bin/python bench/run_overhead.py``. Both sides run the same playbook
on the same inventory (rendered by ``render_inventory``) with the same clean environment
(``clean_env``); each figure is the best of three rounds, each round raw Ansible first, then
ansible-runner alone (the engine's ``run_playbook``), then WindFlow. WindFlow runs embedded, in this
process, as ``windflow serve`` runs it: uvicorn on a free 127.0.0.1 port (SQLite, or PostgreSQL when
``WINDFLOW_BENCH_DATABASE_URL`` is set). The client launches with ``POST /api/v1/runs`` and follows
the run's WebSocket stream, which sends the final status as soon as it is published.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    Served,
    bench_settings,
    database_kinds,
    debug_playbook,
    final_status,
    launch_body,
    local_inventory,
    machine,
    scratch_database,
    served,
    table,
)
from server.inventories import spec  # noqa: E402
from server.inventories.render import render_inventory  # noqa: E402
from server.runs.executor import VENV_BIN, PlaybookJob, clean_env, run_playbook  # noqa: E402

REPEAT = 3


@dataclass(frozen=True)
class Case:
    name: str
    tasks: int
    hosts: int
    forks: int
    goal: float  # the ratio to stay under


CASES = (
    Case("1 debug task, localhost", tasks=1, hosts=1, forks=5, goal=1.2),
    Case("200 debug tasks, 10 local hosts", tasks=200, hosts=10, forks=10, goal=1.05),
)


def private_data_dir(case: Case, directory: Path) -> Path:
    """A runner-shaped directory: ``project/main.yml`` and the rendered ``inventory/``."""
    shutil.rmtree(directory, ignore_errors=True)
    (directory / "project").mkdir(parents=True)
    (directory / "project" / "main.yml").write_text(debug_playbook(case.tasks))
    body = local_inventory(case.hosts)
    render_inventory(msgspec.convert({"hosts": body["hosts"]}, spec.Document), {}, directory)
    return directory


def cpu_seconds() -> float:
    """User + system time of this process and of its children that ended (Ansible's processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@dataclass
class Timing:
    seconds: float  # wall time
    cpu: float  # CPU seconds, Ansible's included
    row_seconds: float = 0.0  # WindFlow only: the run's own created_at → finished_at
    events: int = 0


def ansible_playbook(case: Case, directory: Path) -> Timing:
    """``ansible-playbook`` itself, its output thrown away."""
    root = private_data_dir(case, directory)
    argv = [str(VENV_BIN / "ansible-playbook"), "-i", str(root / "inventory"), "-f", str(case.forks), "main.yml"]
    began, cpu = time.perf_counter(), cpu_seconds()
    subprocess.run(argv, env=clean_env(root), cwd=root / "project", check=True, stdout=subprocess.DEVNULL)  # noqa: S603
    return Timing(time.perf_counter() - began, cpu_seconds() - cpu)


def runner_alone(case: Case, directory: Path) -> Timing:
    """The engine's ``run_playbook`` (ansible-runner, its artifacts and callback), events dropped."""
    root = private_data_dir(case, directory)
    job = PlaybookJob(root, "main.yml", on_event=lambda event: None, should_cancel=lambda: False, forks=case.forks)
    began, cpu = time.perf_counter(), cpu_seconds()
    outcome = run_playbook(job)
    timing = Timing(time.perf_counter() - began, cpu_seconds() - cpu)
    if outcome.status != "successful":
        raise RuntimeError(f"ansible-runner: {outcome}")
    return timing


async def windflow_run(app: Served, body: dict[str, Any]) -> Timing:
    """One run: ``POST /runs``, then its stream until the final status arrives."""
    began, cpu = time.perf_counter(), cpu_seconds()
    response = await app.http.post("/api/v1/runs", json=body)
    if response.status_code != 201:
        raise RuntimeError(f"launch failed: {response.text[:300]}")
    _, seen = await final_status(app.stream_url(response.json()["id"]))
    cpu = cpu_seconds() - cpu
    run = (await app.http.get(f"/api/v1/runs/{response.json()['id']}")).json()
    if run["status"] != "successful":
        raise RuntimeError(f"the run ended {run['status']}: {run['reason']}")
    own = dt.datetime.fromisoformat(run["finished_at"]) - dt.datetime.fromisoformat(run["created_at"])
    return Timing(seen - began, cpu, own.total_seconds(), run["event_count"])


async def measure(case: Case, directory: Path, database_url: str) -> tuple[list[object], str]:
    """Rounds of raw Ansible, runner alone, then WindFlow: a load spike on the machine hits all three."""
    raw, runner, through = [], [], []
    async with served(bench_settings(directory, database_url)) as app:
        body = await launch_body(app.http, case.tasks, case.hosts, forks=case.forks)
        for attempt in range(REPEAT):
            raw.append(await asyncio.to_thread(ansible_playbook, case, directory / f"raw{attempt}"))
            runner.append(await asyncio.to_thread(runner_alone, case, directory / f"runner{attempt}"))
            through.append(await windflow_run(app, body))
    best = [min(timings, key=lambda t: t.seconds) for timings in (raw, runner, through)]
    cpu = [min(t.cpu for t in timings) for timings in (raw, runner, through)]
    ratio = best[2].seconds / best[0].seconds
    wall = [f"{t.seconds:.3f}" for t in best] + [f"{best[2].row_seconds:.3f}", f"{ratio:.3f}"]
    row = [case.name, *wall, f"<= {case.goal}", "yes" if ratio <= case.goal else "NO"]
    row += ["/".join(f"{c:.2f}" for c in cpu), f"{cpu[2] / cpu[0]:.2f}", best[2].events]
    spread = "; ".join(
        f"{name} {' '.join(f'{t.seconds:.2f}' for t in timings)}"
        for name, timings in (("ansible-playbook", raw), ("runner", runner), ("WindFlow", through))
    )
    return row, f"{case.name}, every attempt (s): {spread}"


def main() -> int:
    headers = ["case", "ansible-playbook s", "runner alone s", "WindFlow s", "run row s", "ratio", "goal", "met"]
    headers += ["CPU s ansible/runner/WindFlow", "CPU ratio", "events"]
    rows, spreads = [], []
    with tempfile.TemporaryDirectory(prefix="windflow-bench-") as directory:
        kind = database_kinds()[-1]
        with scratch_database(Path(directory), kind) as database_url:
            for number, case in enumerate(CASES):
                row, spread = asyncio.run(measure(case, Path(directory) / f"case{number}", database_url))
                rows.append(row)
                spreads.append(spread)
    print(f"best of {REPEAT} rounds; embedded mode on {kind}; {machine()}")
    print(table(headers, rows))
    print("\n".join(spreads))
    print(
        "ratio = WindFlow s / ansible-playbook s (the goal). WindFlow s: POST /runs until the run's WebSocket"
        " stream brings the final status; run row s: the run's own created_at → finished_at. runner alone: the"
        " engine's run_playbook, no database, events dropped. CPU s: user + system of this process and Ansible's"
        " (less sensitive to other load than wall time); CPU ratio = WindFlow / ansible-playbook."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
