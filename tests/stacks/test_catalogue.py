"""The stack catalogue: every organization gets it, and each strategy changes only what it should."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import pytest

from server.db.tables import Stack, StackVersion
from server.stacks.catalogue import read_catalogue, sync_catalogue
from tests.playbooks.test_library import organizations  # noqa: F401 - the fixture

ECHO = """
metadata:
  name: Echo
  version: "{version}"
  description: "{description}"
template:
  image: "busybox:{{{{ tag }}}}"
  command: [httpd, -f, -p, "8080"]
  ports: ["{{{{ port }}}}:8080"]
variables:
  tag: {{type: string, default: "1.36"}}
  port: {{type: integer, default: 18080}}
"""


def catalogue(tmp_path: Path, **files: str) -> Path:
    directory = tmp_path / "catalogue"
    directory.mkdir(exist_ok=True)
    for old in directory.glob("*.yml"):
        old.unlink()
    for name, text in files.items():
        (directory / f"{name}.yml").write_text(text)
    return directory


def echo(version: str, description: str = "an echo server") -> str:
    return ECHO.format(version=version, description=description)


async def state(organization_id: uuid.UUID) -> tuple[str, str, int, list[str]]:
    row = (
        await Stack.select(Stack.id, Stack.source, Stack.semver, Stack.latest_version)
        .where(Stack.organization == organization_id, Stack.name == "Echo")
        .first()
    )
    assert row is not None
    semvers = (
        await StackVersion.select(StackVersion.semver)
        .where(StackVersion.stack == row["id"])
        .order_by(StackVersion.version)
    )
    return row["source"], row["semver"], row["latest_version"], [v["semver"] for v in semvers]


async def test_strategies_skip_update_when_newer_and_force(
    organizations: list[uuid.UUID],  # noqa: F811
    tmp_path: Path,
) -> None:
    one, two = organizations
    directory = catalogue(tmp_path, echo=echo("1.0.0"))
    first = await sync_catalogue("update", directory=directory)
    assert first == {"created": 2, "updated": 0, "unchanged": 0, "skipped": 0}
    assert await sync_catalogue("update", directory=directory) == {
        "created": 0,
        "updated": 0,
        "unchanged": 2,
        "skipped": 0,
    }

    catalogue(tmp_path, echo=echo("1.1.0"))
    assert (await sync_catalogue("skip", directory=directory))["skipped"] == 2
    assert await state(one) == ("catalogue", "1.0.0", 1, ["1.0.0"])
    assert (await sync_catalogue("update", directory=directory))["updated"] == 2
    assert await state(one) == ("catalogue", "1.1.0", 2, ["1.0.0", "1.1.0"])

    # An older file does not replace a newer stack, unless forced.
    catalogue(tmp_path, echo=echo("1.0.5", "older"))
    assert (await sync_catalogue("update", directory=directory))["unchanged"] == 2
    # A stack a user edited is theirs: update leaves it, force takes it back.
    await Stack.update({Stack.source: "manual"}).where(Stack.organization == two)
    assert (await sync_catalogue("force", organization_id=one, directory=directory))["updated"] == 1
    assert await state(one) == ("catalogue", "1.0.5", 3, ["1.0.0", "1.1.0", "1.0.5"])
    catalogue(tmp_path, echo=echo("2.0.0"))
    assert (await sync_catalogue("update", organization_id=two, directory=directory))["skipped"] == 1
    assert (await sync_catalogue("force", organization_id=two, directory=directory))["updated"] == 1
    assert await state(two) == ("catalogue", "2.0.0", 3, ["1.0.0", "1.1.0", "2.0.0"])


def test_a_broken_file_is_logged_and_left_out(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    cycle = "metadata: {name: Loop, version: 1.0.0}\ntemplate:\n  services:\n    a: {image: x, depends_on: [a]}\n"
    directory = catalogue(tmp_path, echo=echo("1.0.0"), loop=cycle, broken="metadata: [")
    assert [entry.definition.metadata.name for entry in read_catalogue(directory)] == ["Echo"]
    assert sorted(r.file.rsplit("/", 1)[-1] for r in caplog.records if hasattr(r, "file")) == [  # type: ignore[attr-defined]
        "broken.yml",
        "loop.yml",
    ]
