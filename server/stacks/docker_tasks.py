"""The ``docker`` target (and the container part of ``vm`` and ``bare-metal``): ``community.docker``.

Networks and volumes first, then the containers in ``depends_on`` order, named
``<project>-<service>-<n>`` and labelled with the project: a redeploy removes the containers the
stack no longer has (a service dropped, fewer replicas), and undeploy finds them all. Networks and
volumes marked ``external`` are used by name, never made or removed.
"""

from __future__ import annotations

from typing import Any

from server.stacks.layout import Builder, memory, seconds
from server.stacks.model import Health, Service


class DockerBuilder(Builder):
    """``community.docker``: networks, volumes, then containers in ``depends_on`` order."""

    def network(self, name: str) -> str:
        return name if name in self.app.external else f"{self.project}_{name}"

    def volume(self, name: str) -> str:
        return name if name in self.app.external else f"{self.project}_{name}"

    def deploy_tasks(self) -> list[dict[str, Any]]:
        tasks = []
        for network in self.app.networks:
            if network in self.app.external:
                continue
            network_args = {
                "name": self.network(network),
                "driver": "bridge",
                "internal": network in self.app.internal_networks or None,
                "labels": self.labels(),
            }
            tasks.append(self.task(f"Create network {network}", "community.docker.docker_network", network_args))
        for volume in self.app.volumes:
            if volume in self.app.external:
                continue
            volume_args = {"volume_name": self.volume(volume), "labels": self.labels()}
            tasks.append(self.task(f"Create volume {volume}", "community.docker.docker_volume", volume_args))
        healthy = self.app.needs_health
        for service in self.app.services:
            for replica in range(1, service.replicas + 1):
                args: dict[str, Any] = self.container(service, replica)
                if service.name in healthy:
                    args["state"] = "healthy"
                    args["healthy_wait_timeout"] = 300
                suffix = f" (replica {replica})" if service.replicas > 1 else ""
                verb = "Start and wait for" if service.name in healthy else "Start"
                tasks.append(
                    self.task(f"{verb} service {service.name}{suffix}", "community.docker.docker_container", args)
                )
        expected = [f"{self.project}-{s.name}-{n}" for s in self.app.services for n in range(1, s.replicas + 1)]
        tasks.append(self.find_containers())
        tasks.append(
            self.remove_containers(
                "Remove the containers the stack no longer has",
                when="(item.Names | first | regex_replace('^/', '')) not in stack_expected",
                vars={"stack_expected": expected},
            )
        )
        return tasks

    def find_containers(self) -> dict[str, Any]:
        project_filter = f"com.windflow.project={self.project}"
        return self.task(
            "Find the containers of this deployment",
            "community.docker.docker_host_info",
            {"containers": True, "containers_all": True, "containers_filters": {"label": project_filter}},
            register="stack_containers",
        )

    def remove_containers(self, name: str, **extra: Any) -> dict[str, Any]:
        return self.task(
            name,
            "community.docker.docker_container",
            {"name": "{{ item.Id }}", "state": "absent", "force_kill": True},
            raw=True,
            loop="{{ stack_containers.containers }}",
            loop_control={"label": "{{ item.Names | first }}"},
            **extra,
        )

    def container(self, service: Service, replica: int) -> dict[str, Any]:
        networks = [self.network(n) for n in (service.networks or ("default",))]
        bind = str(self.settings.get("bind_address") or "")
        ports = [
            (
                p if p.host_ip or not bind or p.published is None else type(p)(p.target, p.published, bind, p.protocol)
            ).docker()
            for p in service.ports
        ]
        mounts = [
            {
                "type": m.kind,
                "source": self.volume(m.source) if m.kind == "volume" else m.source,
                "target": m.target,
                "read_only": m.read_only,
            }
            for m in service.mounts
        ]
        return {
            "name": f"{self.project}-{service.name}-{replica}",
            "image": service.image,
            "pull": self.settings.get("pull", "missing"),
            "entrypoint": list(service.entrypoint) if service.entrypoint is not None else None,
            "command": list(service.command) if service.command is not None else None,
            "env": dict(service.environment),
            "published_ports": ports,
            "exposed_ports": [str(n) for n in service.expose],
            "mounts": mounts,
            "network_mode": networks[0],
            "networks": [{"name": n, "aliases": [service.name]} for n in networks],
            "healthcheck": docker_health(service.health) if service.health else None,
            "restart_policy": service.restart,
            "cpus": service.cpus,
            "memory": memory(service.memory) if service.memory else None,
            "hostname": service.hostname or None,
            "user": service.user or None,
            "working_dir": service.working_dir or None,
            "init": service.init or None,
            "read_only": service.read_only or None,
            "capabilities": list(service.cap_add) or None,
            "cap_drop": list(service.cap_drop) or None,
            "stop_timeout": service.stop_grace_period,
            "labels": {**service.labels, **self.labels(service)},
            "state": "started",
        }

    def undeploy_tasks(self, remove_volumes: bool) -> list[dict[str, Any]]:
        tasks = [self.find_containers(), self.remove_containers("Remove the containers")]
        for network in self.app.networks:
            if network in self.app.external:
                continue
            args = {"name": self.network(network), "state": "absent", "force": True}
            tasks.append(self.task(f"Remove network {network}", "community.docker.docker_network", args))
        for volume in self.app.volumes if remove_volumes else ():
            if volume in self.app.external:
                continue
            args = {"volume_name": self.volume(volume), "state": "absent"}
            tasks.append(self.task(f"Remove volume {volume}", "community.docker.docker_volume", args))
        return tasks


def docker_health(health: Health) -> dict[str, Any]:
    return {
        "test": list(health.test),
        "interval": seconds(health.interval),
        "timeout": seconds(health.timeout),
        "retries": health.retries,
        "start_period": seconds(health.start_period),
    }
