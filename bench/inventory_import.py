"""How long importing a 10,000-host inventory takes, against ``ansible-inventory --list`` on the same file.

Run from the repository: ``.venv/bin/python bench/inventory_import.py``. Each figure is the best of a
few runs (Ansible's: one run each). To add a figure, add a ``Figure`` to the list ``main`` builds.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import bench_settings  # noqa: E402
from server.inventories import ansible_text, spec  # noqa: E402
from server.inventories.render import render_inventory  # noqa: E402

HOSTS = 10_000
REGIONS = 10  # each with 4 child groups: 50 groups, two levels
APPS = ("web", "api", "db", "cache")
REPEAT = 3
VENV_BIN = Path(sys.executable).parent


@dataclass
class Figure:
    name: str
    seconds: float
    baseline: str | None = None  # the name of the figure this one is compared with


def inventory(hosts: int = HOSTS) -> dict[str, Any]:
    """An Ansible YAML inventory: regions → apps → hosts, with vars at every level."""
    children: dict[str, Any] = {}
    leaves = [(f"region{r}", f"{app}_{r}") for r in range(REGIONS) for app in APPS]
    per_leaf = hosts // len(leaves)
    for index, (region, leaf) in enumerate(leaves):
        group = children.setdefault(region, {"vars": {"region": region, "ntp": [f"ntp.{region}.example.com"]}})
        members = {
            f"{leaf}-{n:04d}.example.com": {
                "ansible_host": f"10.{index}.{n // 250}.{n % 250 + 1}",
                "ansible_port": 22 + n % 3,
                "ansible_user": "deploy",
                "rack": f"r{n % 40}",
                "weight": n % 7 * 0.5,
            }
            for n in range(per_leaf)
        }
        group.setdefault("children", {})[leaf] = {"vars": {"app": leaf, "replicas": 3}, "hosts": members}
    return {"all": {"vars": {"env": "bench", "dns": ["10.0.0.2", "10.0.0.3"]}, "children": children}}


def best(action: Callable[[], object], repeat: int = REPEAT) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        action()
        times.append(time.perf_counter() - began)
    return min(times)


def ansible_inventory(path: Path, home: Path) -> float:
    """One ``ansible-inventory --list`` with only the plugin of the file's format."""
    env = {
        "PATH": f"{VENV_BIN}:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "ANSIBLE_INVENTORY_ENABLED": "ini" if path.suffix == ".ini" else "yaml",
        "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",
    }
    argv = [str(VENV_BIN / "ansible-inventory"), "-i", str(path), "--list", "--output", str(home / "out.json")]
    began = time.perf_counter()
    subprocess.run(argv, env=env, cwd=home, check=True, stdout=subprocess.DEVNULL)  # noqa: S603 - our own argv
    return time.perf_counter() - began


@dataclass(frozen=True)
class BenchSecret:
    id: uuid.UUID
    kind: str
    fields: dict[str, Any]
    secret: dict[str, str]


def render_seconds(document: spec.Document, directory: Path) -> float:
    """Rendering for the runner, with an SSH key credential on the inventory and a become one per group."""
    argv = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(directory / "key")]
    subprocess.run(argv, check=True)  # noqa: S603 - our own argv
    ssh = BenchSecret(uuid.uuid4(), "ssh_key", {"username": "deploy"}, {"private_key": (directory / "key").read_text()})
    become = BenchSecret(uuid.uuid4(), "become", {"method": "sudo"}, {"password": "bench-secret"})
    groups = [msgspec.structs.replace(g, become_credential=become.id) for g in document.groups]
    with_credentials = msgspec.structs.replace(document, credential=ssh.id, groups=groups)
    secrets = {ssh.id: ssh, become.id: become}
    runs = iter(range(REPEAT))
    return best(lambda: render_inventory(with_credentials, secrets, directory / f"run{next(runs)}"))


def api_import_seconds(text: str, fmt: str, directory: Path) -> float:
    """``POST /api/v1/inventories/import`` through the whole app (SQLite, a fresh name each time)."""
    from litestar.testing import AsyncTestClient

    from server.app import create_app

    settings = bench_settings(directory, max_body_size=256 * 1024 * 1024)

    async def run() -> float:
        async with AsyncTestClient(create_app(settings), timeout=120) as client:
            login = await client.post(
                "/api/v1/auth/login", json={"email": settings.admin_email, "password": settings.admin_password}
            )
            client.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
            times = []
            for attempt in range(REPEAT):
                body = {"name": f"{fmt}-{attempt}", "format": fmt, "content": text}
                began = time.perf_counter()
                response = await client.post("/api/v1/inventories/import", json=body)
                times.append(time.perf_counter() - began)
                if response.status_code != 201:
                    raise RuntimeError(f"import failed: {response.text[:500]}")
            return min(times)

    return asyncio.run(run())


def figures(directory: Path) -> list[Figure]:
    yaml_path, ini_path = directory / "inventory.yml", directory / "inventory.ini"
    yaml_path.write_text(yaml.dump(inventory(), Dumper=yaml.CSafeDumper, sort_keys=False))
    document = ansible_text.parse(yaml_path.read_text(), "yaml")
    ini_path.write_text(ansible_text.dump(document, "ini"))
    yaml_text, ini_text = yaml_path.read_text(), ini_path.read_text()
    return [
        Figure("parse + validate (yaml)", best(lambda: ansible_text.parse(yaml_text, "yaml"))),
        Figure("parse + validate (ini)", best(lambda: ansible_text.parse(ini_text, "ini"))),
        Figure("validate", best(lambda: spec.validate(document))),
        Figure("dump (yaml)", best(lambda: ansible_text.dump(document, "yaml"))),
        Figure("dump (ini)", best(lambda: ansible_text.dump(document, "ini"))),
        Figure("API import, HTTP to stored (yaml)", api_import_seconds(yaml_text, "yaml", directory / "api-yaml")),
        Figure("API import, HTTP to stored (ini)", api_import_seconds(ini_text, "ini", directory / "api-ini")),
        Figure("render for ansible-runner", render_seconds(document, directory)),
        Figure("ansible-inventory --list (yaml)", ansible_inventory(yaml_path, directory), "parse + validate (yaml)"),
        Figure("ansible-inventory --list (ini)", ansible_inventory(ini_path, directory), "parse + validate (ini)"),
    ]


def table(rows: list[Figure]) -> str:
    seconds = {row.name: row.seconds for row in rows}
    width = max(len(row.name) for row in rows)
    lines = [f"{'step':<{width}}  {'seconds':>8}  ratio", f"{'-' * width}  {'-' * 8}  -----"]
    for row in rows:
        ratio = f"{row.seconds / seconds[row.baseline]:.0f}x {row.baseline}" if row.baseline else ""
        lines.append(f"{row.name:<{width}}  {row.seconds:8.3f}  {ratio}")
    return "\n".join(lines)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="windflow-bench-") as directory:
        rows = figures(Path(directory))
        sizes = {p.name: os.path.getsize(p) for p in Path(directory).glob("inventory.*")}
    print(f"{HOSTS} hosts, {REGIONS * (len(APPS) + 1)} groups; files: {sizes} (bytes)")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
