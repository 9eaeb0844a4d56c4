"""Rendering for ansible-runner: what Ansible reads, file modes, and that secrets leave with the run."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pytest

from server.inventories.check import effective_vars
from server.inventories.render import render_inventory, rendered_inventory
from server.inventories.spec import Document

ANSIBLE_INVENTORY = str(Path(sys.executable).parent / "ansible-inventory")


@dataclass(frozen=True)
class FakeSecret:
    id: uuid.UUID
    kind: str
    fields: dict[str, Any] = field(default_factory=dict)
    secret: dict[str, str] = field(default_factory=dict)


def ssh_key(tmp_path: Path, passphrase: str = "") -> str:
    path = tmp_path / f"key{len(passphrase)}"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-f", str(path)], check=True)
    return path.read_text()


def ansible_list(inventory: Path, home: Path) -> dict[str, Any]:
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "ANSIBLE_LOCAL_TEMP": str(home / "tmp")}
    out = subprocess.run([ANSIBLE_INVENTORY, "-i", str(inventory), "--list"], env=env, capture_output=True, check=True)
    return dict(json.loads(out.stdout))


def make_world(tmp_path: Path) -> tuple[Document, dict[uuid.UUID, FakeSecret]]:
    key = FakeSecret(
        uuid.uuid4(),
        "ssh_key",
        {"username": "deploy"},
        {"private_key": ssh_key(tmp_path, "open sesame"), "passphrase": "open sesame"},
    )
    become = FakeSecret(uuid.uuid4(), "become", {"method": "sudo"}, {"password": "become-secret-1"})
    kube = FakeSecret(uuid.uuid4(), "kubeconfig", {"context": "lab"}, {"kubeconfig": "apiVersion: v1\nkind: Config\n"})
    document = msgspec.convert(
        {
            "vars": {"tier": "all", "depth": 0},
            "credential": str(key.id),
            "hosts": [
                {"name": "web1", "address": "127.0.0.2", "port": 2222},
                {"name": "web2", "address": "127.0.0.3", "vars": {"depth": 9}},
                {"name": "k8s", "kind": "kubernetes", "credential": str(kube.id), "namespace": "apps"},
            ],
            "groups": [
                {"name": "site", "children": ["web"], "vars": {"depth": 1, "tier": "site"}},
                {
                    "name": "web",
                    "hosts": ["web1", "web2"],
                    "become": True,
                    "become_credential": str(become.id),
                    "vars": {"depth": 2},
                },
                {"name": "other", "hosts": ["web2"], "vars": {"tier": "other"}},
            ],
        },
        Document,
    )
    return document, {s.id: s for s in (key, become, kube)}


def test_ansible_reads_what_we_render_and_secrets_stay_in_private_files(tmp_path: Path) -> None:
    document, secrets = make_world(tmp_path)
    run_dir = tmp_path / "run"
    rendered = render_inventory(document, secrets, run_dir)
    listing = ansible_list(rendered.inventory_dir, tmp_path)
    web1 = listing["_meta"]["hostvars"]["web1"]
    assert web1["ansible_host"] == "127.0.0.2" and web1["ansible_port"] == 2222
    assert web1["ansible_user"] == "deploy" and web1["ansible_become"] is True
    assert web1["ansible_become_password"] == "become-secret-1" and web1["depth"] == 2
    assert listing["site"]["children"] == ["web"] and sorted(listing["web"]["hosts"]) == ["web1", "web2"]
    k8s = listing["_meta"]["hostvars"]["k8s"]
    assert k8s["ansible_connection"] == "local" and k8s["k8s_namespace"] == "apps" and k8s["k8s_context"] == "lab"
    assert Path(k8s["k8s_kubeconfig"]).read_text().startswith("apiVersion: v1")

    # The key was handed over decrypted (no passphrase prompt), in a 0600 file under a 0700 directory.
    key_file = Path(web1["ansible_ssh_private_key_file"])
    check = subprocess.run(["ssh-keygen", "-y", "-P", "", "-f", str(key_file)], capture_output=True)
    assert check.returncode == 0, check.stderr
    for path in [*rendered.secret_files, key_file, Path(k8s["k8s_kubeconfig"])]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(rendered.credential_dir.stat().st_mode) == 0o700
    hosts_file = (rendered.inventory_dir / "hosts.json").read_text()
    assert "become-secret-1" not in hosts_file and "PRIVATE KEY" not in hosts_file

    rendered.remove()
    assert not rendered.credential_dir.exists()
    assert not any(p.exists() for p in rendered.secret_files)
    leftovers = "".join(p.read_text() for p in run_dir.rglob("*") if p.is_file())
    assert "become-secret-1" not in leftovers and "PRIVATE KEY" not in leftovers


def test_our_merge_order_is_ansibles(tmp_path: Path) -> None:
    """The connectivity check computes host variables itself; they must match Ansible's."""
    document, secrets = make_world(tmp_path)
    rendered = render_inventory(document, secrets, tmp_path / "run")
    listing = ansible_list(rendered.inventory_dir, tmp_path)["_meta"]["hostvars"]
    ours = effective_vars(document, rendered.credential_vars, ["web1", "web2", "k8s"])
    for host in ("web1", "web2", "k8s"):
        theirs = {k: v for k, v in listing[host].items()}
        assert {k: ours[host][k] for k in theirs} == theirs, host
    # Same depth: groups apply by name, so "site" (depth 1) wins over "other" (depth 1).
    assert ours["web2"]["depth"] == 9 and ours["web2"]["tier"] == "site"


def test_secrets_are_removed_even_when_the_run_fails(tmp_path: Path) -> None:
    document, secrets = make_world(tmp_path)
    with pytest.raises(RuntimeError), rendered_inventory(document, secrets, tmp_path / "run") as rendered:
        assert rendered.secret_files
        raise RuntimeError("the run blew up")
    assert not rendered.credential_dir.exists()
    assert not any(p.exists() for p in rendered.secret_files)


def test_run_credentials_go_to_files_not_the_command_line(tmp_path: Path) -> None:
    vault = FakeSecret(uuid.uuid4(), "vault_password", {"vault_id": "prod"}, {"password": "vault-secret-1"})
    registry = FakeSecret(uuid.uuid4(), "registry", {"url": "127.0.0.1:5000", "username": "ci"}, {"password": "reg-1"})
    secrets = {vault.id: vault, registry.id: registry}
    rendered = render_inventory(Document(), secrets, tmp_path / "run", (vault.id, registry.id))
    assert rendered.cmdline[0] == "--vault-id" and rendered.cmdline[1].startswith("prod@")
    assert "vault-secret-1" not in " ".join(rendered.cmdline)
    assert Path(rendered.cmdline[1].split("@", 1)[1]).read_text() == "vault-secret-1"
    assert rendered.extra_vars["registry_password"] == "reg-1"


def test_a_runs_machine_credential_is_a_default_the_inventory_overrides(tmp_path: Path) -> None:
    document, secrets = make_world(tmp_path)
    machine = FakeSecret(uuid.uuid4(), "password", {"username": "machine"}, {"password": "machine-secret-1"})
    secrets[machine.id] = machine
    rendered = render_inventory(document, secrets, tmp_path / "run", (machine.id,))
    hostvars = ansible_list(rendered.inventory_dir, tmp_path)["_meta"]["hostvars"]
    # The inventory's own key (username deploy) wins; the machine password is there for every host.
    assert hostvars["web1"]["ansible_user"] == "deploy"
    assert hostvars["k8s"]["ansible_password"] == "machine-secret-1"
    assert "machine-secret-1" not in (rendered.inventory_dir / "hosts.json").read_text()
