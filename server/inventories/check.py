"""Connectivity check: try every host for real and say, in plain words, what is wrong.

SSH hosts (``vm``, ``bare-metal``) get Ansible's ``ping`` module through ansible-runner, so the
check proves what a run needs (login, key, become settings, Python). Docker hosts get the engine's
``/_ping`` (and the container's state when the host is a container); Kubernetes hosts get the API
server's ``/version`` with the host's kubeconfig.
"""

from __future__ import annotations

import fnmatch
import re
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
import msgspec

from server.errors import ValidationFailed
from server.inventories import spec
from server.inventories.ansible_vars import level_vars
from server.inventories.render import Secret, render_inventory
from server.runs.executor import run_module

CONNECT_TIMEOUT = 10
PARALLEL_API_CHECKS = 10


class HostCheck(msgspec.Struct):
    name: str
    kind: str
    reachable: bool
    latency_ms: float | None = None
    error_code: str | None = None
    error: str | None = None


# (pattern, code, plain words); the first match wins, so specific causes come before general ones.
_CAUSES: tuple[tuple[str, str, str], ...] = (
    (
        r"load key|invalid format|incorrect passphrase|bad passphrase|error in libcrypto",
        "bad_key",
        "bad key: the private key cannot be used (wrong format or passphrase)",
    ),
    (
        r"permission denied|authentication failed|unauthorized|\b401\b|too many authentication failures",
        "auth_refused",
        "authentication refused: the host rejected the key, password or token",
    ),
    (r"\b403\b|forbidden", "auth_refused", "authentication refused: the credentials are not allowed to do this"),
    (
        r"missing sudo password|incorrect sudo password|a password is required|sorry, try again|become",
        "become_failed",
        "privilege escalation refused: the become password is wrong or missing",
    ),
    (
        r"certificate verify failed|certificate_verify_failed|ssl|tls|wrong version number|hostname mismatch|x509",
        "tls_mismatch",
        "TLS mismatch: the certificate or TLS settings were not accepted",
    ),
    (
        r"could not resolve|name or service not known|nodename nor servname|temporary failure in name resolution",
        "unknown_host",
        "unknown host: the name does not resolve",
    ),
    (r"connection refused", "refused", "connection refused: nothing listens at that address and port"),
    (
        r"timed out|timeout|no route to host|network is unreachable|host is unreachable|connection reset",
        "unreachable",
        "host unreachable: no answer in time",
    ),
    (
        r"no such file or directory.*(sock|docker)|(docker|sock).*no such file or directory|filenotfounderror",
        "no_engine",
        "no Docker engine: nothing answers at that docker_host",
    ),
    (
        r"python[0-9.]*: (command )?not found|no such file.*python|python.*no such file|interpreter|/usr/bin/python",
        "no_python",
        "no Python on the host: Ansible modules need python3 there",
    ),
)


def explain(message: str, exc: BaseException | None = None) -> tuple[str, str]:
    """Classify an error into (code, plain words with the technical detail after them)."""
    text = f"{type(exc).__name__ if exc else ''} {message}".lower()
    detail = " ".join(message.split())[:300]
    for pattern, code, words in _CAUSES:
        if re.search(pattern, text):
            return code, f"{words} ({detail})" if detail else words
    return "error", detail or "unknown error"


def select_hosts(document: spec.Document, limit: str | None, field: str = "query.limit") -> list[str]:
    """Hosts matching an Ansible-style limit: names, groups, ``*`` globs, ``!`` and ``&`` terms."""
    names = [h.name for h in document.hosts]
    if not limit:
        return names
    members = _group_members(document)
    selected: set[str] = set()
    first = True
    for raw in (t.strip() for t in limit.split(",")):
        if not raw:
            continue
        op, term = (raw[0], raw[1:]) if raw[0] in "!&" else ("", raw)
        matched = {n for n in names if fnmatch.fnmatchcase(n, term)}
        for group, hosts in members.items():
            if fnmatch.fnmatchcase(group, term):
                matched |= hosts
        if term == "all":
            matched = set(names)
        if op == "!":
            selected = (set(names) if first else selected) - matched
        elif op == "&":
            selected &= matched
        else:
            selected |= matched
        first = False
    chosen = [n for n in names if n in selected]
    if not chosen:
        raise ValidationFailed.for_field(field, f"{limit!r} matches no host of this inventory")
    return chosen


def _group_members(document: spec.Document) -> dict[str, set[str]]:
    """Each group's hosts, including those of its descendants."""
    lineage = spec.ancestors(document)
    members: dict[str, set[str]] = {g.name: set() for g in document.groups}
    for group in document.groups:
        for host in group.hosts:
            for ancestor in lineage[group.name]:
                members[ancestor].add(host)
    return members


def effective_vars(
    document: spec.Document, credential_vars: Mapping[str, dict[str, Any]], hosts: list[str]
) -> dict[str, dict[str, Any]]:
    """Each host's variables in Ansible's order: all, groups by depth then name, the host."""
    lineage = spec.ancestors(document)
    depth = {name: len(chain) for name, chain in lineage.items()}
    groups = {g.name: g for g in document.groups}
    direct = spec.group_parents(document)
    by_name = {h.name: h for h in document.hosts}
    base = {**level_vars(document, for_runner=True), **credential_vars.get("all", {})}
    out: dict[str, dict[str, Any]] = {}
    for name in hosts:
        chain = {g for parent in direct.get(name, []) for g in lineage[parent]}
        merged = dict(base)
        for group in sorted(chain, key=lambda g: (depth[g], g)):
            merged |= level_vars(groups[group], for_runner=True) | credential_vars.get(f"group:{group}", {})
        merged |= level_vars(by_name[name], for_runner=True) | credential_vars.get(f"host:{name}", {})
        out[name] = merged
    return out


async def check_inventory(
    document: spec.Document, secrets: Mapping[uuid.UUID, Secret], work_dir: Path, limit: str | None = None
) -> list[HostCheck]:
    selected = select_hosts(document, limit)
    kinds = spec.host_kinds(document)
    await anyio.Path(work_dir).mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = Path(await anyio.to_thread.run_sync(lambda: tempfile.mkdtemp(dir=work_dir, prefix="check-")))
    results: dict[str, HostCheck] = {}
    try:
        rendered = await anyio.to_thread.run_sync(render_inventory, document, secrets, tmp)
        variables = effective_vars(document, rendered.credential_vars, selected)
        ssh = [h for h in selected if kinds[h] in ("vm", "bare-metal")]
        limiter = anyio.CapacityLimiter(PARALLEL_API_CHECKS)

        async def api_check(name: str) -> None:
            probe = _docker_check if kinds[name] == "docker" else _kubernetes_check
            results[name] = await anyio.to_thread.run_sync(probe, name, variables[name], limiter=limiter)

        async with anyio.create_task_group() as group:
            if ssh:
                group.start_soon(_ssh_checks, tmp, ssh, kinds, results)
            for name in selected:
                if kinds[name] not in ("vm", "bare-metal"):
                    group.start_soon(api_check, name)
    finally:
        # Every key, kubeconfig and password file goes with the directory.
        await anyio.to_thread.run_sync(shutil.rmtree, tmp, True)
    return [results[name] for name in selected]


async def _ssh_checks(tmp: Path, hosts: list[str], kinds: dict[str, str], results: dict[str, HostCheck]) -> None:
    outcome = await anyio.to_thread.run_sync(
        lambda: run_module(tmp, "ping", hosts, forks=50, connect_timeout=CONNECT_TIMEOUT, timeout=120)
    )
    for name in hosts:
        event = outcome.hosts.get(name)
        if event is None:
            results[name] = HostCheck(name, kinds[name], False, error_code="error", error="Ansible gave no result")
            continue
        if event["outcome"] == "ok":
            latency = round(float(event["duration"] or 0) * 1000, 1)
            results[name] = HostCheck(name, kinds[name], True, latency_ms=latency)
            continue
        res = event["res"]
        message = " ".join(str(res.get(k) or "") for k in ("msg", "module_stderr", "module_stdout")).strip()
        code, words = explain(message)
        results[name] = HostCheck(name, kinds[name], False, error_code=code, error=words)


def _timed(name: str, kind: str, probe: Any) -> HostCheck:
    began = time.perf_counter()
    try:
        problem = probe()
    except Exception as exc:  # noqa: BLE001 - every failure is reported for its host
        code, words = explain(str(exc), exc)
        return HostCheck(name, kind, False, error_code=code, error=words)
    latency = round((time.perf_counter() - began) * 1000, 1)
    if problem:
        return HostCheck(name, kind, False, latency_ms=latency, error_code=problem[0], error=problem[1])
    return HostCheck(name, kind, True, latency_ms=latency)


def _docker_check(name: str, variables: dict[str, Any]) -> HostCheck:
    import docker  # type: ignore[import-untyped]

    base_url = (
        variables.get("ansible_docker_docker_host") or variables.get("docker_host") or "unix:///var/run/docker.sock"
    )
    tls: Any = False
    if variables.get("docker_tls"):
        cert = (
            (variables["docker_client_cert"], variables["docker_client_key"])
            if "docker_client_key" in variables
            else None
        )
        tls = docker.tls.TLSConfig(
            client_cert=cert,
            ca_cert=variables.get("docker_ca_path"),
            verify=bool(variables.get("docker_validate_certs")),
        )
    container = (
        variables.get("ansible_host") if variables.get("ansible_connection", "").endswith("docker_api") else None
    )

    def probe() -> tuple[str, str] | None:
        if str(base_url).startswith("unix://") and (problem := _unix_socket_problem(str(base_url)[len("unix://") :])):
            return problem
        # A fixed API version: "auto" would query the engine in the constructor, outside our error handling.
        client = docker.APIClient(base_url=str(base_url), tls=tls, timeout=CONNECT_TIMEOUT, version="1.41")
        try:
            client.ping()
            if container:
                state = client.inspect_container(container)["State"]
                if not state.get("Running"):
                    return "container_stopped", f"container {container!r} is {state.get('Status', 'not running')}"
        except docker.errors.NotFound:
            return "no_container", f"no container named {container!r} on this engine"
        finally:
            client.close()
        return None

    return _timed(name, "docker", probe)


def _unix_socket_problem(path: str) -> tuple[str, str] | None:
    """Look before the Docker SDK leaps: it leaks its socket when the connection fails."""
    if not Path(path).exists():
        return "no_engine", f"no Docker engine: {path} does not exist"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(CONNECT_TIMEOUT)
        try:
            probe.connect(path)
        except OSError as exc:
            return "no_engine", f"no Docker engine answers at {path} ({exc.strerror or exc})"
    return None


def _kubernetes_check(name: str, variables: dict[str, Any]) -> HostCheck:
    path = next(
        (
            variables[k]
            for k in ("k8s_kubeconfig", "kubeconfig", "k8s_auth_kubeconfig", "ansible_kubectl_kubeconfig")
            if variables.get(k)
        ),
        None,
    )
    if path is None:
        return HostCheck(
            name,
            "kubernetes",
            False,
            error_code="no_credential",
            error="no kubeconfig: attach a kubeconfig credential to this host or one of its groups",
        )
    context = variables.get("k8s_context") or variables.get("ansible_kubectl_context")

    def probe() -> None:
        from kubernetes import client, config

        api = config.new_client_from_config(config_file=str(path), context=context)  # type: ignore[no-untyped-call]
        try:
            client.VersionApi(api).get_code(_request_timeout=CONNECT_TIMEOUT)
        finally:
            api.close()

    return _timed(name, "kubernetes", probe)
