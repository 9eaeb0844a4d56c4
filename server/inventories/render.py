"""Inventory + decrypted credentials → the inventory part of an ansible-runner ``private_data_dir``.

Layout written under the private data dir::

    inventory/hosts.json              hosts, groups and plain variables (no secret)
    inventory/group_vars/<g>.json     credential-derived variables of a group (0600)
    inventory/host_vars/<h>.json      credential-derived variables of a host (0600)
    credentials/<id>/...              key, kubeconfig, TLS and vault files (0600, dir 0700)

Secrets go to files only, never to a command line or the environment; ``Rendered.remove()``
deletes every one of them when the run ends.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import msgspec
from cryptography.hazmat.primitives import serialization

from server.inventories.ansible_vars import level_vars
from server.inventories.spec import Document, Level


class Secret(Protocol):
    """What rendering needs of a decrypted credential (``server.credentials.service.Revealed``)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def kind(self) -> str: ...
    @property
    def fields(self) -> dict[str, Any]: ...
    @property
    def secret(self) -> dict[str, str]: ...


@dataclass
class Rendered:
    private_data_dir: Path
    inventory_dir: Path
    credential_dir: Path
    secret_files: list[Path] = field(default_factory=list)
    cmdline: list[str] = field(default_factory=list)
    extra_vars: dict[str, Any] = field(default_factory=dict)
    # Credential-derived variables per level: "all", "group:<name>", "host:<name>".
    credential_vars: dict[str, dict[str, Any]] = field(default_factory=dict)

    def remove(self) -> None:
        """Delete every file that holds a secret (idempotent)."""
        for path in self.secret_files:
            path.unlink(missing_ok=True)
        shutil.rmtree(self.credential_dir, ignore_errors=True)


def private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)  # mkdir's mode is filtered by the umask and skips the parents


def write_private(path: Path, data: bytes) -> Path:
    private_dir(path.parent)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    return path


class _Writer:
    """Writes each credential's files once and returns the variables that point at them."""

    def __init__(self, rendered: Rendered, secrets: Mapping[uuid.UUID, Secret]) -> None:
        self.rendered = rendered
        self.secrets = secrets
        self.cache: dict[tuple[uuid.UUID, str], dict[str, Any]] = {}

    def file(self, credential: Secret, name: str, data: bytes) -> str:
        path = write_private(self.rendered.credential_dir / str(credential.id) / name, data)
        return str(path)

    def variables(self, credential_id: uuid.UUID, field_name: str) -> dict[str, Any]:
        key = (credential_id, field_name)
        if key not in self.cache:
            credential = self.secrets[credential_id]
            render = _BECOME if field_name == "become_credential" else _RENDERERS[credential.kind]
            self.cache[key] = render(self, credential)
        return self.cache[key]


def _ssh_key(writer: _Writer, credential: Secret) -> dict[str, Any]:
    key_text = credential.secret["private_key"].encode()
    passphrase = credential.secret.get("passphrase")
    if passphrase:
        # Ansible cannot answer a passphrase prompt without an agent: hand it the key decrypted,
        # in a 0600 file of this run only, removed with the run.
        key = serialization.load_ssh_private_key(key_text, passphrase.encode())
        key_text = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
    elif not key_text.endswith(b"\n"):
        key_text += b"\n"
    out: dict[str, Any] = {"ansible_ssh_private_key_file": writer.file(credential, "id_key", key_text)}
    if credential.fields.get("username"):
        out["ansible_user"] = credential.fields["username"]
    return out


def _password(writer: _Writer, credential: Secret) -> dict[str, Any]:
    return {"ansible_user": credential.fields["username"], "ansible_password": credential.secret["password"]}


def _become(writer: _Writer, credential: Secret) -> dict[str, Any]:
    out: dict[str, Any] = {"ansible_become_password": credential.secret["password"]}
    if credential.kind == "become":
        out["ansible_become_method"] = credential.fields.get("method") or "sudo"
        if credential.fields.get("username"):
            out["ansible_become_user"] = credential.fields["username"]
    return out


def _kubeconfig(writer: _Writer, credential: Secret) -> dict[str, Any]:
    path = writer.file(credential, "kubeconfig", credential.secret["kubeconfig"].encode())
    out: dict[str, Any] = {"k8s_kubeconfig": path, "ansible_kubectl_kubeconfig": path}
    if credential.fields.get("context"):
        out["k8s_context"] = credential.fields["context"]
        out["ansible_kubectl_context"] = credential.fields["context"]
    return out


def _docker_tls(writer: _Writer, credential: Secret) -> dict[str, Any]:
    verify = bool(credential.fields.get("verify", True))
    out: dict[str, Any] = {
        "docker_tls": True,
        "docker_validate_certs": verify,
        "ansible_docker_tls": True,
        "ansible_docker_validate_certs": verify,
    }
    files = {
        "ca_path": ("ca.pem", credential.fields.get("ca_cert")),
        "client_cert": ("cert.pem", credential.fields.get("client_cert")),
        "client_key": ("key.pem", credential.secret.get("client_key")),
    }
    for option, (name, content) in files.items():
        if content:
            path = writer.file(credential, name, content.encode())
            out[f"docker_{option}"] = path
            out[f"ansible_docker_{option}"] = path
    if credential.fields.get("tls_hostname"):
        out["docker_tls_hostname"] = out["ansible_docker_tls_hostname"] = credential.fields["tls_hostname"]
    return out


_RENDERERS = {
    "ssh_key": _ssh_key,
    "password": _password,
    "become": _become,
    "kubeconfig": _kubeconfig,
    "docker_tls": _docker_tls,
}
_BECOME = _become


def _credential_vars(writer: _Writer, level: Level) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field_name in ("credential", "become_credential"):
        credential_id = getattr(level, field_name)
        if credential_id is not None:
            out.update(writer.variables(credential_id, field_name))
    return out


def inventory_tree(document: Document, *, for_runner: bool) -> dict[str, Any]:
    """The Ansible YAML/JSON inventory structure (``all`` with hosts, vars and nested children)."""
    grouped = {member for group in document.groups for member in group.hosts}
    hosts = {h.name: level_vars(h, for_runner=for_runner) for h in document.hosts}
    nested = {child for group in document.groups for child in group.children}
    groups: dict[str, dict[str, Any]] = {}
    for group in document.groups:
        body: dict[str, Any] = {}
        if group.hosts:
            body["hosts"] = {name: None for name in group.hosts}
        if variables := level_vars(group, for_runner=for_runner):
            body["vars"] = variables
        if group.children:
            body["children"] = {name: None for name in group.children}
        groups[group.name] = body
    root: dict[str, Any] = {}
    ungrouped = {name: hosts[name] or None for name in hosts if name not in grouped}
    grouped_hosts = {name: hosts[name] for name in hosts if name in grouped and hosts[name]}
    if ungrouped or grouped_hosts:
        # Host variables live on one entry under ``all``; group entries only name their members.
        root["hosts"] = {**ungrouped, **grouped_hosts}
    if variables := level_vars(document, for_runner=for_runner):
        root["vars"] = variables
    top = [g.name for g in document.groups if g.name not in nested]
    root["children"] = {name: groups[name] or None for name in top}
    tree: dict[str, Any] = {"all": root}
    for name, body in groups.items():
        if name in nested and body:
            tree[name] = body
    return tree


def render_inventory(
    document: Document,
    secrets: Mapping[uuid.UUID, Secret],
    private_data_dir: Path,
    run_credentials: tuple[uuid.UUID, ...] = (),
) -> Rendered:
    """Write the inventory and its credentials for one run (``secrets`` must hold every id used)."""
    inventory_dir = private_data_dir / "inventory"
    rendered = Rendered(private_data_dir, inventory_dir, private_data_dir / "credentials")
    for directory in (private_data_dir, inventory_dir, rendered.credential_dir):
        private_dir(directory)
    tree = inventory_tree(document, for_runner=True)
    (inventory_dir / "hosts.json").write_bytes(msgspec.json.encode(tree))
    writer = _Writer(rendered, secrets)
    # A run's own machine credentials (ssh_key, password, become, …) apply to every host, below
    # anything the inventory sets for a group or host, as AWX's machine credential does.
    defaults: dict[str, Any] = {}
    for credential_id in run_credentials:
        defaults |= _run_credential(rendered, writer, secrets[credential_id])
    levels: list[tuple[str, Path, Level]] = [("all", inventory_dir / "group_vars" / "all.json", document)]
    levels += [(f"group:{g.name}", inventory_dir / "group_vars" / f"{g.name}.json", g) for g in document.groups]
    levels += [(f"host:{h.name}", inventory_dir / "host_vars" / f"{h.name}.json", h) for h in document.hosts]
    for key, path, level in levels:
        variables = (defaults if key == "all" else {}) | _credential_vars(writer, level)
        if not variables:
            continue
        rendered.credential_vars[key] = variables
        rendered.secret_files.append(write_private(path, msgspec.json.encode(variables)))
    return rendered


def _run_credential(rendered: Rendered, writer: _Writer, credential: Secret) -> dict[str, Any]:
    """A credential given to the run itself; returns the variables it sets for every host."""
    if credential.kind == "vault_password":
        path = writer.file(credential, "vault_password", credential.secret["password"].encode())
        label = credential.fields.get("vault_id") or "default"
        rendered.cmdline += ["--vault-id", f"{label}@{path}"]
        return {}
    if credential.kind == "registry":
        rendered.extra_vars.update(
            registry_url=credential.fields["url"],
            registry_username=credential.fields.get("username", ""),
            registry_password=credential.secret["password"],
        )
        return {}
    if credential.kind == "stack_secrets":
        # A deployment's secret variables: read by the compiled playbook as windflow_secrets.
        rendered.extra_vars["windflow_secrets"] = json.loads(credential.secret["values"])
        return {}
    field_name = "become_credential" if credential.kind == "become" else "credential"
    return writer.variables(credential.id, field_name)


@contextmanager
def rendered_inventory(
    document: Document,
    secrets: Mapping[uuid.UUID, Secret],
    private_data_dir: Path,
    run_credentials: tuple[uuid.UUID, ...] = (),
) -> Iterator[Rendered]:
    """:func:`render_inventory`, with every secret file removed on the way out, whatever happens."""
    rendered = render_inventory(document, secrets, private_data_dir, run_credentials)
    try:
        yield rendered
    finally:
        rendered.remove()
