"""How a level's typed connection fields become Ansible variables (for export and for the runner).

Explicit ``vars`` always win over what the typed fields produce, so an imported inventory (all
plain variables) exports to exactly what it was.
"""

from __future__ import annotations

from typing import Any

from server.inventories.spec import Level

PLAIN = {
    "address": "ansible_host",
    "port": "ansible_port",
    "user": "ansible_user",
    "connection": "ansible_connection",
    "become": "ansible_become",
    "become_method": "ansible_become_method",
    "become_user": "ansible_become_user",
    "hypervisor": "windflow_hypervisor",
    "context": "k8s_context",
    "namespace": "k8s_namespace",
}
DOCKER_CONNECTION = "community.docker.docker_api"
LOCAL_CONNECTIONS = frozenset({"local", "ansible.builtin.local"})
DOCKER_CONNECTIONS = frozenset(
    {"docker", "community.docker.docker", "docker_api", "community.docker.docker_api", "community.docker.nsenter"}
)
KUBERNETES_CONNECTIONS = frozenset({"kubectl", "kubernetes.core.kubectl", "community.kubernetes.kubectl"})


def level_vars(level: Level, *, for_runner: bool = False) -> dict[str, Any]:
    """The Ansible variables for one level (inventory, group or host), typed fields first."""
    out: dict[str, Any] = {}
    for field, var in PLAIN.items():
        value = getattr(level, field)
        if value is not None:
            out[var] = value
    if level.docker_host is not None:
        out["docker_host"] = level.docker_host
        out["ansible_docker_docker_host"] = level.docker_host
    if level.container is not None:
        out["ansible_connection"] = DOCKER_CONNECTION
        out["ansible_host"] = level.container
    elif level.kind in ("docker", "kubernetes") and "ansible_connection" not in level.vars:
        # The engine or the API server is driven from the controller, with its Python and libraries.
        out.setdefault("ansible_connection", "local")
    if (
        for_runner
        and out.get("ansible_connection") in LOCAL_CONNECTIONS
        and "ansible_python_interpreter" not in level.vars
    ):
        out["ansible_python_interpreter"] = "{{ ansible_playbook_python }}"
    out.update(level.vars)
    return out


def kind_of_vars(variables: dict[str, Any]) -> str | None:
    """The kind an imported host or group's own variables imply, if any."""
    connection = variables.get("ansible_connection")
    if connection in DOCKER_CONNECTIONS:
        return "docker"
    if connection in KUBERNETES_CONNECTIONS:
        return "kubernetes"
    return None
