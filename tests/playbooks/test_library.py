"""The built-in library: every organization gets it, and a sync changes only what it should."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from server.db.engine import close_engine, open_engine
from server.db.tables import Organization, Playbook, PlaybookVersion
from server.playbooks.library import read_library_file, sync_library

ALPHA = """\
---
# description: The first test play.
- name: Alpha
  hosts: all
  gather_facts: false
  tasks:
    - name: Ping
      ansible.builtin.ping:
"""
BETA = "- hosts: all\n  gather_facts: false\n  tasks: []\n"


@pytest.fixture
async def organizations(clean_database: None, make_settings: Any) -> AsyncIterator[list[uuid.UUID]]:
    engine = await open_engine(make_settings())
    try:
        ids = []
        for name in ("One", "Two"):
            organization = Organization(name=name)
            await organization.save()
            ids.append(organization.id)
        yield ids
    finally:
        await close_engine(engine)


def library(tmp_path: Path, **files: str) -> Path:
    directory = tmp_path / "library"
    directory.mkdir(exist_ok=True)
    for name, content in files.items():
        (directory / f"{name}.yml").write_text(content)
    return directory


async def versions(organization_id: uuid.UUID, name: str) -> list[str]:
    playbook = (
        await Playbook.select(Playbook.id)
        .where(Playbook.organization == organization_id, Playbook.name == name)
        .first()
    )
    assert playbook is not None
    rows = (
        await PlaybookVersion.select(PlaybookVersion.content)
        .where(PlaybookVersion.playbook == playbook["id"])
        .order_by(PlaybookVersion.version)
    )
    return [row["content"] for row in rows]


def test_name_and_description_come_from_the_file(tmp_path: Path) -> None:
    directory = library(tmp_path, alpha=ALPHA, beta=BETA)
    alpha = read_library_file(directory / "alpha.yml")
    assert (alpha.name, alpha.description) == ("Alpha", "The first test play.")
    beta = read_library_file(directory / "beta.yml")
    assert (beta.name, beta.description) == ("beta", "")


async def test_every_organization_gets_the_library_once(organizations: list[uuid.UUID], tmp_path: Path) -> None:
    directory = library(tmp_path, alpha=ALPHA, beta=BETA)
    first = await sync_library(directory)
    assert first == {"created": 4, "updated": 0, "unchanged": 0, "skipped": 0, "invalid": 0}
    second = await sync_library(directory)
    assert second == {"created": 0, "updated": 0, "unchanged": 4, "skipped": 0, "invalid": 0}
    rows = (
        await Playbook.select(Playbook.name, Playbook.source, Playbook.description, Playbook.latest_version)
        .where(Playbook.organization == organizations[1])
        .order_by(Playbook.name)
    )
    assert rows == [
        {"name": "Alpha", "source": "library", "description": "The first test play.", "latest_version": 1},
        {"name": "beta", "source": "library", "description": "", "latest_version": 1},
    ]


async def test_a_changed_file_is_a_new_version_with_update_and_not_with_skip(
    organizations: list[uuid.UUID], tmp_path: Path
) -> None:
    directory = library(tmp_path, alpha=ALPHA, beta=BETA)
    await sync_library(directory)
    changed = ALPHA.replace("name: Ping\n", "name: Ping again\n")
    library(tmp_path, alpha=changed)

    skipped = await sync_library(directory, "skip")
    assert skipped == {"created": 0, "updated": 0, "unchanged": 2, "skipped": 2, "invalid": 0}
    assert await versions(organizations[0], "Alpha") == [ALPHA]

    updated = await sync_library(directory, "update")
    assert updated == {"created": 0, "updated": 2, "unchanged": 2, "skipped": 0, "invalid": 0}
    assert await versions(organizations[0], "Alpha") == [ALPHA, changed]
    assert await versions(organizations[1], "Alpha") == [ALPHA, changed]
    assert (await sync_library(directory, "update"))["unchanged"] == 4


async def test_a_users_playbook_is_left_alone_unless_forced(organizations: list[uuid.UUID], tmp_path: Path) -> None:
    directory = library(tmp_path, alpha=ALPHA)
    await sync_library(directory)
    await Playbook.update({Playbook.source: "manual"}).where(Playbook.organization == organizations[0])
    library(tmp_path, alpha=ALPHA + "\n")

    assert (await sync_library(directory, "update")) == {
        "created": 0,
        "updated": 1,
        "unchanged": 0,
        "skipped": 1,
        "invalid": 0,
    }
    assert await versions(organizations[0], "Alpha") == [ALPHA]
    forced = await sync_library(directory, "force")
    assert (forced["updated"], forced["unchanged"]) == (1, 1)
    assert await versions(organizations[0], "Alpha") == [ALPHA, ALPHA + "\n"]
    sources = await Playbook.select(Playbook.source).where(Playbook.organization == organizations[0])
    assert sources == [{"source": "library"}]


async def test_a_broken_file_is_logged_and_skipped(
    organizations: list[uuid.UUID], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = "- hosts: all\n  tasks:\n    - name: Nope\n      windflow.nowhere.nothing:\n"
    directory = library(tmp_path, alpha=ALPHA, broken=broken, worse="- hosts: [unclosed\n")
    with caplog.at_level(logging.WARNING, logger="server.playbooks.library"):
        counts = await sync_library(directory)
    assert counts["created"] == 2 and counts["invalid"] == 2
    assert sum("library playbook invalid" in record.getMessage() for record in caplog.records) == 2
    names = await Playbook.select(Playbook.name).where(Playbook.organization == organizations[0])
    assert names == [{"name": "Alpha"}]


async def test_one_organization_only(organizations: list[uuid.UUID], tmp_path: Path) -> None:
    directory = library(tmp_path, alpha=ALPHA)
    assert (await sync_library(directory, organization_id=organizations[1]))["created"] == 1
    assert await Playbook.count().where(Playbook.organization == organizations[0]) == 0
