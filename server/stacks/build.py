"""The rendered template as a checked model: services in ``depends_on`` order, ports, mounts, health.

:func:`build_app` takes the template after its variables are rendered (compose shape) and
accepts what docker-compose accepts for the supported keys: short and long port and volume
syntax, environment as a mapping or ``KEY=value`` list, ``depends_on`` as a list or a mapping
with conditions, durations such as ``1m30s``, sizes such as ``256M``. Every problem is reported
with the path of the template field at fault; ``depends_on`` cycles and two services on one host
port are refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from server.stacks import fields
from server.stacks.model import App, Service
from server.stacks.spec import Problems


def build_app(template: Mapping[str, Any], path: str) -> App:
    """Check the rendered template and return the model; raises ValidationFailed with paths."""
    problems = Problems()
    declared_volumes = [str(v) for v in template.get("volumes") or {}]
    declared_networks = [str(n) for n in template.get("networks") or {}]
    services: dict[str, Service] = {}
    for name, spec in (template.get("services") or {}).items():
        services[name] = _service(str(name), spec, f"{path}.services.{name}", problems)
    uses_default = any(not s.networks for s in services.values())
    networks = declared_networks + (["default"] if uses_default and "default" not in declared_networks else [])
    volumes = list(declared_volumes)
    for service in services.values():
        where = f"{path}.services.{service.name}"
        for index, mount in enumerate(service.mounts):
            if mount.kind == "volume" and mount.source not in volumes:
                if len(services) == 1 and not declared_volumes:
                    volumes.append(mount.source)  # a single container spec declares its volumes by use
                else:
                    problems.add(f"{where}.volumes.{index}", f"volume {mount.source!r} is not declared under volumes")
        for network in service.networks:
            if network not in networks:
                problems.add(f"{where}.networks", f"network {network!r} is not declared under networks")
        for dep, condition in service.depends_on.items():
            if dep not in services:
                problems.add(f"{where}.depends_on.{dep}", f"no service named {dep!r}")
            elif condition == "service_healthy" and services[dep].health is None:
                problems.add(
                    f"{where}.depends_on.{dep}",
                    f"waits for {dep!r} to be healthy, but {dep!r} has no healthcheck",
                )
    internal, external = _options(template, path, problems)
    _check_ports(services, path, problems)
    problems.raise_if_any()
    order = _dependency_order(services, path, problems)
    problems.raise_if_any()
    return App(tuple(services[n] for n in order), tuple(volumes), tuple(networks), internal, external)


_OPTIONS = {"networks": {"driver": ("bridge",), "internal": (True, False), "external": (True, False)}}
_OPTIONS["volumes"] = {"driver": ("local",), "external": (True, False)}


def _options(template: Mapping[str, Any], path: str, problems: Problems) -> tuple[frozenset[str], frozenset[str]]:
    """The supported options of the declared networks and volumes: (internal networks, external names)."""
    internal: set[str] = set()
    external: set[str] = set()
    for section, allowed in _OPTIONS.items():
        for name, options in (template.get(section) or {}).items():
            for key, value in (options or {}).items():
                where = f"{path}.{section}.{name}.{key}"
                if key not in allowed:
                    problems.add(where, f"not supported; {section} take " + ", ".join(sorted(allowed)))
                elif value not in allowed[key] or isinstance(value, int) and not isinstance(value, bool):
                    problems.add(where, "must be " + " or ".join(str(v).lower() for v in allowed[key]))
                elif key == "internal" and value is True:
                    internal.add(str(name))
                elif key == "external" and value is True:
                    external.add(str(name))
    return frozenset(internal), frozenset(external)


def _service(name: str, spec: Mapping[str, Any], path: str, problems: Problems) -> Service:
    image = spec.get("image")
    if not isinstance(image, str) or not image.strip() or any(c.isspace() for c in image.strip()):
        problems.add(f"{path}.image", "must be an image reference such as nginx:1.27")
        image = ""
    replicas = spec.get(
        "replicas", (spec.get("deploy") or {}).get("replicas", 1) if isinstance(spec.get("deploy"), Mapping) else 1
    )
    if isinstance(replicas, bool) or not isinstance(replicas, int) or not 0 <= replicas <= 100:
        problems.add(f"{path}.replicas", "must be a whole number from 0 to 100")
        replicas = 1
    cpus, memory = fields.resources(spec, path, problems)
    health, disabled = fields.health(spec.get("healthcheck"), f"{path}.healthcheck", problems)
    ports = tuple(fields.ports(spec.get("ports") or [], f"{path}.ports", problems))
    if replicas > 1 and any(p.published is not None for p in ports):
        problems.add(f"{path}.ports", "a service with several replicas cannot publish a fixed host port")
    return Service(
        name=name,
        image=image.strip(),
        command=fields.argv(spec.get("command"), f"{path}.command", problems),
        entrypoint=fields.argv(spec.get("entrypoint"), f"{path}.entrypoint", problems),
        environment=fields.environment(spec.get("environment"), f"{path}.environment", problems),
        ports=ports,
        expose=tuple(fields.expose(spec.get("expose") or [], f"{path}.expose", problems)),
        mounts=tuple(fields.mounts(spec.get("volumes") or [], f"{path}.volumes", problems)),
        networks=fields.networks(spec.get("networks"), f"{path}.networks", problems),
        health=health,
        health_disabled=disabled,
        depends_on=fields.depends_on(spec.get("depends_on"), name, f"{path}.depends_on", problems),
        restart=fields.restart(spec, path, problems),
        replicas=replicas,
        cpus=cpus,
        memory=memory,
        labels=fields.string_map(spec.get("labels"), f"{path}.labels", problems),
        hostname=fields.plain_text(spec.get("hostname") or spec.get("container_name"), f"{path}.hostname", problems),
        user=fields.plain_text(spec.get("user"), f"{path}.user", problems),
        working_dir=fields.plain_text(spec.get("working_dir"), f"{path}.working_dir", problems),
        init=fields.flag(spec.get("init"), f"{path}.init", problems),
        read_only=fields.flag(spec.get("read_only"), f"{path}.read_only", problems),
        cap_add=fields.capabilities(spec.get("cap_add"), f"{path}.cap_add", problems),
        cap_drop=fields.capabilities(spec.get("cap_drop"), f"{path}.cap_drop", problems),
        stop_grace_period=fields.grace(spec.get("stop_grace_period"), f"{path}.stop_grace_period", problems),
    )


def _check_ports(services: Mapping[str, Service], path: str, problems: Problems) -> None:
    """Two services (or one twice) on the same host port and protocol would collide."""
    taken: dict[tuple[int, str], list[tuple[str, str]]] = {}
    for service in services.values():
        for index, port in enumerate(service.ports):
            if port.published is None:
                continue
            where = f"{path}.services.{service.name}.ports.{index}"
            for ip, other in taken.get((port.published, port.protocol), []):
                if not ip or not port.host_ip or ip == port.host_ip:
                    problems.add(where, f"host port {port.published}/{port.protocol} is already published by {other}")
                    break
            taken.setdefault((port.published, port.protocol), []).append((port.host_ip, service.name))


def _dependency_order(services: Mapping[str, Service], path: str, problems: Problems) -> list[str]:
    """Services with their dependencies first (definition order otherwise); a cycle is an error."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(name: str, trail: list[str]) -> bool:
        if state.get(name) == 2:
            return True
        if state.get(name) == 1:
            cycle = [*trail[trail.index(name) :], name]
            problems.add(f"{path}.services.{cycle[0]}.depends_on", "depends_on cycle: " + " -> ".join(cycle))
            return False
        state[name] = 1
        for dep in services[name].depends_on:
            if dep in services and not visit(dep, [*trail, name]):
                return False
        state[name] = 2
        order.append(name)
        return True

    for name in services:
        if not visit(name, []):
            break
    return order
