"""The services of a stack as checked data: ports, mounts, health checks, dependencies.

``build.py`` makes an :class:`App` from a rendered template (with ``fields.py`` reading each
compose field); the targets' task builders read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Port:
    target: int
    published: int | None = None
    host_ip: str = ""
    protocol: str = "tcp"

    def docker(self) -> str:
        """``[ip:][published:]target/proto`` as docker_container's ``published_ports`` takes it."""
        ip = f"{self.host_ip}:" if self.host_ip else ""
        published = f"{self.published}:" if self.published is not None else ("" if not ip else ":")
        return f"{ip}{published}{self.target}/{self.protocol}"


@dataclass(frozen=True)
class Mount:
    kind: str  # volume | bind
    source: str
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class Health:
    test: tuple[str, ...]
    interval: int | None = None  # seconds
    timeout: int | None = None
    retries: int | None = None
    start_period: int | None = None


@dataclass(frozen=True)
class Service:
    name: str
    image: str
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    environment: dict[str, str] = field(default_factory=dict)
    ports: tuple[Port, ...] = ()
    expose: tuple[int, ...] = ()
    mounts: tuple[Mount, ...] = ()
    networks: tuple[str, ...] = ()
    health: Health | None = None
    health_disabled: bool = False
    depends_on: dict[str, str] = field(default_factory=dict)
    restart: str = "no"
    replicas: int = 1
    cpus: float | None = None
    memory: int | None = None  # bytes
    labels: dict[str, str] = field(default_factory=dict)
    hostname: str = ""
    user: str = ""
    working_dir: str = ""
    init: bool = False
    read_only: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    stop_grace_period: int | None = None  # seconds

    @property
    def container_ports(self) -> tuple[tuple[int, str], ...]:
        """Every port the service listens on (published or exposed), once each, in order."""
        seen: dict[tuple[int, str], None] = {}
        for port in self.ports:
            seen[(port.target, port.protocol)] = None
        for number in self.expose:
            seen.setdefault((number, "tcp"), None)
        return tuple(seen)


@dataclass(frozen=True)
class App:
    services: tuple[Service, ...]  # dependencies first
    volumes: tuple[str, ...]
    networks: tuple[str, ...]
    internal_networks: frozenset[str] = frozenset()  # no route out of the network (compose's internal)
    external: frozenset[str] = frozenset()  # networks and volumes that exist already: used, never made or removed

    @property
    def needs_health(self) -> frozenset[str]:
        """Services that another one waits for until healthy."""
        return frozenset(
            dep for s in self.services for dep, condition in s.depends_on.items() if condition == "service_healthy"
        )
