"""Dynamic inventory sources: Docker containers and Kubernetes pods, synced on request.

``community.docker.docker_containers`` runs the real Ansible inventory plugin
(``ansible-inventory --list`` on a generated plugin file). ``kubernetes.core.k8s`` was removed
from the kubernetes.core collection in 6.0 (the ``ansible`` 12 bundle ships 6.x), so WindFlow
lists the pods itself through the Kubernetes API, in the shape that plugin gave: one host per
pod container reached with the ``kubectl`` connection, grouped by namespace and by label.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
import msgspec

from server.errors import FieldError, ValidationFailed
from server.inventories import spec
from server.inventories.render import Secret, render_inventory
from server.runs.executor import clean_env

DOCKER = "community.docker.docker_containers"
KUBERNETES = "kubernetes.core.k8s"
Namespace = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)]
SYNC_TIMEOUT = 60
# Variables a source reports that point at its temporary credential files: the typed fields
# (``docker_host``, ``credential``) bring them back, rendered afresh, for every run.
_DROP = re.compile(
    r"^(ansible_docker_(docker_host|tls|tls_hostname|validate_certs|ca_path|ca_cert|client_cert|client_key)|docker_host)$"
)


class Source(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    plugin: Literal["community.docker.docker_containers", "kubernetes.core.k8s"]
    credential: uuid.UUID | None = None
    docker_host: Annotated[str, msgspec.Meta(pattern=r"^(unix|tcp|ssh)://\S+$")] | None = None
    namespaces: list[Namespace] = msgspec.field(default_factory=list)
    context: Annotated[str, msgspec.Meta(min_length=1, max_length=255)] | None = None

    def credential_kinds(self) -> frozenset[str]:
        return frozenset({"docker_tls"} if self.plugin == DOCKER else {"kubeconfig"})


def check_source(source: Source, document: spec.Document, prefix: str, members_changed: bool) -> None:
    errors: list[FieldError] = []
    path = f"{prefix}.source"
    if members_changed and (document.hosts or document.groups):
        field = "hosts" if document.hosts else "groups"
        errors.append(FieldError(f"{prefix}.{field}", "an inventory with a source gets its hosts and groups by sync"))
    if source.plugin == DOCKER:
        if source.namespaces or source.context:
            errors.append(FieldError(f"{path}.namespaces", "namespaces and context are for kubernetes.core.k8s"))
    else:
        if source.docker_host:
            errors.append(FieldError(f"{path}.docker_host", "docker_host is for community.docker.docker_containers"))
        if source.credential is None:
            errors.append(FieldError(f"{path}.credential", "kubernetes.core.k8s needs a kubeconfig credential"))
    if errors:
        raise ValidationFailed(f"{errors[0].field}: {errors[0].message}", errors)


async def sync_source(
    source: Source, document: spec.Document, secrets: Mapping[uuid.UUID, Secret], work_dir: Path
) -> spec.Document:
    """The document with hosts and groups as the source reports them now (raises ``SyncFailed``)."""
    await anyio.Path(work_dir).mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = Path(await anyio.to_thread.run_sync(lambda: tempfile.mkdtemp(dir=work_dir, prefix="sync-")))
    try:
        if source.plugin == DOCKER:
            listing = await _docker_listing(source, secrets, tmp)
        elif source.credential is None:
            raise SyncFailed("kubernetes.core.k8s needs a kubeconfig credential")
        else:
            listing = await asyncio.to_thread(_kubernetes_listing, source, secrets[source.credential])
    finally:
        await anyio.to_thread.run_sync(shutil.rmtree, tmp, True)
    kind: spec.Kind = "docker" if source.plugin == DOCKER else "kubernetes"
    hosts, groups = _members(listing, kind)
    top: dict[str, Any] = {"kind": kind, "credential": source.credential}
    if source.plugin == DOCKER:
        top["docker_host"] = source.docker_host or "unix:///var/run/docker.sock"
    else:
        top["context"] = source.context
    return msgspec.structs.replace(document, hosts=hosts, groups=groups, **top)


class SyncFailed(Exception):
    """The source could not be listed; the message is shown to the user as the sync error."""


async def _docker_listing(source: Source, secrets: Mapping[uuid.UUID, Secret], tmp: Path) -> dict[str, Any]:
    config: dict[str, Any] = {
        "plugin": DOCKER,
        "docker_host": source.docker_host or "unix:///var/run/docker.sock",
        "verbose_output": False,
        "connection_type": "docker-api",
        "timeout": 20,
    }
    if source.credential is not None:
        tls = render_inventory(spec.Document(credential=source.credential, kind="docker"), secrets, tmp / "run")
        tls_vars = tls.credential_vars["all"]
        config["tls"] = True
        config["validate_certs"] = bool(tls_vars.get("docker_validate_certs", True))
        for option in ("ca_path", "client_cert", "client_key", "tls_hostname"):
            if f"docker_{option}" in tls_vars:
                config[option] = tls_vars[f"docker_{option}"]
    plugin_file = tmp / "windflow.docker.yml"
    plugin_file.write_text(json.dumps(config))
    plugin_file.chmod(0o600)
    process = await asyncio.create_subprocess_exec(
        "ansible-inventory",
        "-i",
        str(plugin_file),
        "--list",
        env=clean_env(tmp, ANSIBLE_INVENTORY_UNPARSED_FAILED="True", ANSIBLE_INVENTORY_ENABLED=DOCKER),
        cwd=tmp,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), SYNC_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise SyncFailed(f"the Docker engine did not answer within {SYNC_TIMEOUT} s") from None
    if process.returncode != 0:
        raise SyncFailed(_ansible_error(err.decode(errors="replace")))
    return dict(json.loads(out))


def _ansible_error(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    interesting = [line for line in lines if "error" in line.lower() or "failed" in line.lower()]
    return (interesting or lines or ["ansible-inventory failed"])[-1][:1000]


def _kubernetes_listing(source: Source, credential: Secret) -> dict[str, Any]:
    """Pods of the selected namespaces as an ``ansible-inventory --list`` structure."""
    import yaml
    from kubernetes import client, config

    try:
        kubeconfig = yaml.safe_load(credential.secret["kubeconfig"])
        context = source.context or credential.fields.get("context")
        api = client.CoreV1Api(config.new_client_from_config_dict(kubeconfig, context=context))  # type: ignore[no-untyped-call]
        pods: list[Any]
        if source.namespaces:
            pods = [p for ns in source.namespaces for p in api.list_namespaced_pod(ns, _request_timeout=20).items]
        else:
            pods = api.list_pod_for_all_namespaces(_request_timeout=20).items
    except Exception as exc:  # noqa: BLE001 - every failure becomes the sync error the user reads
        raise SyncFailed(_kubernetes_error(exc)) from None
    hostvars: dict[str, dict[str, Any]] = {}
    groups: dict[str, dict[str, list[str]]] = {}
    pod: Any
    for pod in pods:
        namespace, name = pod.metadata.namespace, pod.metadata.name
        for container in pod.spec.containers:
            host = f"{namespace}-{name}-{container.name}"
            hostvars[host] = {
                "ansible_connection": "kubernetes.core.kubectl",
                "ansible_kubectl_namespace": namespace,
                "ansible_kubectl_pod": name,
                "ansible_kubectl_container": container.name,
                "pod_name": name,
                "pod_ip": pod.status.pod_ip,
                "pod_phase": pod.status.phase,
                "container_image": container.image,
            }
            group_names = [f"namespace_{namespace}", f"namespace_{namespace}_pods"]
            group_names += [f"label_{k}_{v}" for k, v in sorted((pod.metadata.labels or {}).items())]
            for group in group_names:
                groups.setdefault(_safe(group), {"hosts": []})["hosts"].append(host)
    return {"_meta": {"hostvars": hostvars}, **groups, "all": {"children": sorted(groups)}}


def _kubernetes_error(exc: Exception) -> str:
    from server.inventories.check import explain

    return explain(str(exc), exc)[1]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def _members(listing: dict[str, Any], kind: spec.Kind) -> tuple[list[spec.Host], list[spec.Group]]:
    hostvars: dict[str, dict[str, Any]] = listing.get("_meta", {}).get("hostvars", {})
    names = set(hostvars)
    groups: list[spec.Group] = []
    for name, body in sorted(listing.items()):
        if name in ("_meta", "all", "ungrouped") or not isinstance(body, dict):
            continue
        names.update(body.get("hosts", []))
        groups.append(
            spec.Group(
                name=_safe(name),
                hosts=sorted(body.get("hosts", [])),
                children=sorted(_safe(c) for c in body.get("children", [])),
            )
        )
    hosts = [spec.Host(name=n, kind=kind, vars=_keep(hostvars.get(n, {}))) for n in sorted(names)]
    return hosts, groups


def _plain(value: Any) -> Any:
    """ansible-inventory marks plugin-supplied values ``{"__ansible_unsafe": v}``; keep ``v``."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return _plain(value["__ansible_unsafe"])
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _keep(variables: dict[str, Any]) -> dict[str, Any]:
    return {
        k: _plain(v)
        for k, v in variables.items()
        if spec.VAR_NAME.fullmatch(k) and not spec.SECRET_VAR.search(k) and not _DROP.match(k)
    }
