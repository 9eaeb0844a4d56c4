"""Compose fields as docker-compose accepts them, read into the model with the path of each problem.

Short and long port and volume syntax, environment as a mapping or ``KEY=value`` list,
``depends_on`` as a list or a mapping with conditions, durations such as ``1m30s``, sizes such as
``256M``. Each reader adds what is wrong to ``problems`` and returns what it could read.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from typing import Any

from server.stacks.model import Health, Mount, Port
from server.stacks.spec import RESOURCE_NAME, Problems

CONDITIONS = ("service_started", "service_healthy")
RESTART = {"no": "no", "always": "always", "on-failure": "on-failure", "unless-stopped": "unless-stopped"}
RESTART_ALIASES = {
    "never": "no",
    "none": "no",
    "false": "no",
    "on_failure": "on-failure",
    "unless_stopped": "unless-stopped",
}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)")
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([bkmgt]?)i?b?$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_PORT_NUMBER = re.compile(r"^\d{1,5}(-\d{1,5})?$")
_HOST_IP = re.compile(r"^(\d{1,3}(\.\d{1,3}){3}|[0-9A-Fa-f:]+)$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def grace(value: Any, path: str, problems: Problems) -> int | None:
    if value is None:
        return None
    seconds = duration(value)
    if seconds is None or seconds > 3600:
        problems.add(path, "must be a duration of at most 1h, such as 10s")
    return seconds


def plain_text(value: Any, path: str, problems: Problems) -> str:
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or "\n" in value:
        problems.add(path, "must be a single-line string")
        return ""
    return value


def flag(value: Any, path: str, problems: Problems) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        problems.add(path, "must be true or false")
        return False
    return value


def capabilities(value: Any, path: str, problems: Problems) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and re.fullmatch(r"[A-Z_]+", v) for v in value):
        problems.add(path, "must be a list of capability names such as NET_ADMIN")
        return ()
    return tuple(value)


def argv(value: Any, path: str, problems: Problems) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return tuple(shlex.split(value))
        except ValueError as exc:
            problems.add(path, f"cannot be split into arguments: {exc}")
            return None
    if isinstance(value, list) and all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in value):
        return tuple(str(v) for v in value)
    problems.add(path, "must be a string or a list of strings")
    return None


def _scalar_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    if value is None:
        return ""
    return None


def environment(value: Any, path: str, problems: Problems) -> dict[str, str]:
    if value is None:
        return {}
    pairs: list[tuple[str, Any, str]] = []
    if isinstance(value, Mapping):
        pairs = [(str(k), v, f"{path}.{k}") for k, v in value.items()]
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if not isinstance(item, str):
                problems.add(f"{path}.{index}", "must be KEY=value")
                continue
            name, _, setting = item.partition("=")
            pairs.append((name, setting, f"{path}.{index}"))
    else:
        problems.add(path, "must be a mapping or a list of KEY=value")
        return {}
    out: dict[str, str] = {}
    for key, raw, where in pairs:
        text = _scalar_text(raw)
        if not ENV_NAME.match(key):
            problems.add(where, f"{key!r} is not a valid environment variable name")
        elif text is None:
            problems.add(where, "must be a string, number or boolean")
        else:
            out[key] = text
    return out


def string_map(value: Any, path: str, problems: Problems) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, list):
        value = dict(str(item).partition("=")[::2] for item in value)
    if not isinstance(value, Mapping):
        problems.add(path, "must be a mapping")
        return {}
    out = {}
    for key, raw in value.items():
        text = _scalar_text(raw)
        if text is None:
            problems.add(f"{path}.{key}", "must be a string")
        else:
            out[str(key)] = text
    return out


def _port_number(text: str | None, path: str, problems: Problems) -> int | None:
    if text is None:
        return None
    number = int(text)
    if not 1 <= number <= 65535:
        problems.add(path, f"port {number} is outside 1-65535")
        return None
    return number


def ports(value: Any, path: str, problems: Problems) -> list[Port]:
    if not isinstance(value, list):
        problems.add(path, "must be a list")
        return []
    out: list[Port] = []
    for index, item in enumerate(value):
        where = f"{path}.{index}"
        if isinstance(item, Mapping):
            target, published = item.get("target"), item.get("published")
            protocol = str(item.get("protocol") or "tcp")
            if isinstance(target, bool) or not isinstance(target, int) or not 1 <= target <= 65535:
                problems.add(f"{where}.target", "must be a port number")
                continue
            if published is not None and (isinstance(published, bool) or not str(published).isdigit()):
                problems.add(f"{where}.published", "must be a port number")
                continue
            number = _port_number(str(published) if published is not None else None, f"{where}.published", problems)
            if protocol not in ("tcp", "udp", "sctp"):
                problems.add(f"{where}.protocol", "must be tcp, udp or sctp")
                continue
            out.append(Port(target, number, str(item.get("host_ip") or ""), protocol))
            continue
        if isinstance(item, int) and not isinstance(item, bool):
            item = str(item)
        parsed = _short_port(item) if isinstance(item, str) else None
        if parsed is None:
            problems.add(where, "must look like [host_ip:][host_port:]container_port[/tcp|udp]")
            continue
        ip, published_text, target_text, protocol = parsed
        if "-" in published_text or "-" in target_text:
            problems.add(where, "port ranges are not supported; list each port")
            continue
        target = _port_number(target_text, where, problems)
        published = _port_number(published_text or None, where, problems)
        if target is None or (published_text and published is None):
            continue
        out.append(Port(target, published, ip, protocol))
    return out


def _short_port(text: str) -> tuple[str, str, str, str] | None:
    """``[ip:][published:]target[/proto]`` as (ip, published, target, protocol), None when malformed."""
    text, _, protocol = text.strip().partition("/")
    protocol = protocol or "tcp"
    if protocol not in ("tcp", "udp", "sctp"):
        return None
    ip = ""
    if text.startswith("["):  # [v6 address]:published:target
        ip, bracket, text = text[1:].partition("]")
        if not bracket or not text.startswith(":"):
            return None
        text = text[1:]
    parts = text.split(":")
    if len(parts) == 3 and not ip:
        ip = parts.pop(0)
    if len(parts) == 1:
        parts.insert(0, "")
    if len(parts) != 2 or not _PORT_NUMBER.match(parts[1]) or (parts[0] and not _PORT_NUMBER.match(parts[0])):
        return None
    if ip and not _HOST_IP.match(ip):
        return None
    return ip, parts[0], parts[1], protocol


def expose(value: Any, path: str, problems: Problems) -> list[int]:
    out = []
    for index, item in enumerate(value if isinstance(value, list) else [None]):
        text = str(item).split("/")[0] if isinstance(item, str | int) and not isinstance(item, bool) else ""
        number = _port_number(text, f"{path}.{index}", problems) if text.isdigit() else None
        if number is None:
            if not text.isdigit():
                problems.add(f"{path}.{index}", "must be a port number")
            continue
        out.append(number)
    return out


def mounts(value: Any, path: str, problems: Problems) -> list[Mount]:
    if not isinstance(value, list):
        problems.add(path, "must be a list")
        return []
    out: list[Mount] = []
    for index, item in enumerate(value):
        where = f"{path}.{index}"
        if isinstance(item, Mapping):
            kind = str(item.get("type") or "volume")
            source, target = item.get("source"), item.get("target")
            read_only = bool(item.get("read_only", False))
        elif isinstance(item, str):
            parts = item.split(":")
            if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("ro", "rw", "z", "Z")):
                problems.add(where, "must be source:target[:ro] (an anonymous volume is not supported)")
                continue
            source, target = parts[0], parts[1]
            read_only = len(parts) == 3 and parts[2] == "ro"
            kind = "bind" if source.startswith(("/", ".", "~")) else "volume"
        else:
            problems.add(where, "must be source:target[:ro] or a mapping with type, source and target")
            continue
        if kind not in ("volume", "bind"):
            problems.add(f"{where}.type", "must be volume or bind")
            continue
        if not isinstance(target, str) or not target.startswith("/"):
            problems.add(where, "the target must be an absolute path in the container")
            continue
        if not isinstance(source, str) or not source:
            problems.add(where, "the source is required")
            continue
        if kind == "bind" and not source.startswith("/"):
            problems.add(where, "a bind mount's source must be an absolute path on the host")
            continue
        if kind == "volume" and not RESOURCE_NAME.match(source):
            problems.add(where, f"{source!r} is not a valid volume name")
            continue
        out.append(Mount(kind, source, target, read_only))
    return out


def networks(value: Any, path: str, problems: Problems) -> tuple[str, ...]:
    if value is None:
        return ()
    names = list(value) if isinstance(value, Mapping | list) else None
    if names is None or not all(isinstance(n, str) for n in names):
        problems.add(path, "must be a list of network names")
        return ()
    return tuple(dict.fromkeys(names))


def depends_on(value: Any, name: str, path: str, problems: Problems) -> dict[str, str]:
    if value is None:
        return {}
    out: dict[str, str] = {}
    if isinstance(value, list):
        for dep in value:
            if not isinstance(dep, str):
                problems.add(path, "must list service names")
                return {}
            out[dep] = "service_started"
    elif isinstance(value, Mapping):
        for dep, options in value.items():
            condition = (options or {}).get("condition", "service_started") if isinstance(options, Mapping) else None
            if condition not in CONDITIONS:
                problems.add(f"{path}.{dep}.condition", "must be one of: " + ", ".join(CONDITIONS))
                continue
            out[str(dep)] = condition
    else:
        problems.add(path, "must be a list of services or a mapping of service to {condition}")
    if name in out:
        problems.add(f"{path}.{name}", "a service cannot depend on itself")
        out.pop(name)
    return out


def restart(spec: Mapping[str, Any], path: str, problems: Problems) -> str:
    key = "restart" if "restart" in spec else "restart_policy"
    value = spec.get(key)
    if value is None:
        return "no"
    if value is False:
        return "no"
    text = str(value).split(":")[0]
    text = RESTART_ALIASES.get(text, text)
    if text not in RESTART:
        problems.add(f"{path}.{key}", "must be no, always, on-failure or unless-stopped")
        return "no"
    return text


def duration(value: Any) -> int | None:
    """Seconds (rounded up) of a compose duration (``1m30s``, ``500ms``, ``10``), None if invalid."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value) if value >= 0 else None
    if not isinstance(value, str) or not value:
        return None
    text = value.replace(" ", "")
    total, position = 0.0, 0
    for match in _DURATION.finditer(text):
        if match.start() != position:
            return None
        number, unit = float(match[1]), match[2]
        total += number * {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}[unit]
        position = match.end()
    if position != len(text):
        return None
    return max(1, int(-(-total // 1))) if total > 0 else 0


def health(value: Any, path: str, problems: Problems) -> tuple[Health | None, bool]:
    if value is None:
        return None, False
    if not isinstance(value, Mapping):
        problems.add(path, "must be a mapping with test, interval, timeout, retries, start_period")
        return None, False
    if value.get("disable") is True:
        return None, True
    test = value.get("test")
    if isinstance(test, str):
        argv: tuple[str, ...] = ("CMD-SHELL", test)
    elif isinstance(test, list) and test and all(isinstance(t, str) for t in test):
        argv = tuple(test)
        if argv[0] == "NONE":
            return None, True
        if argv[0] not in ("CMD", "CMD-SHELL") or len(argv) < 2:
            problems.add(f"{path}.test", 'must start with "CMD" or "CMD-SHELL" and have a command')
            return None, False
    else:
        problems.add(f"{path}.test", "must be a command string or a list such as [CMD, curl, -f, http://…]")
        return None, False
    times: dict[str, int | None] = {}
    for key in ("interval", "timeout", "start_period"):
        times[key] = duration(value[key]) if key in value else None
        if key in value and times[key] is None:
            problems.add(f"{path}.{key}", "must be a duration such as 10s or 1m30s")
    retries = value.get("retries")
    if retries is not None and (isinstance(retries, bool) or not isinstance(retries, int) or not 1 <= retries <= 100):
        problems.add(f"{path}.retries", "must be a whole number from 1 to 100")
        retries = None
    for key in value:
        if key not in ("test", "interval", "timeout", "retries", "start_period", "disable"):
            problems.add(f"{path}.{key}", "unknown healthcheck field")
    return Health(argv, times["interval"], times["timeout"], retries, times["start_period"]), False


def size(value: Any) -> int | None:
    """Bytes of a compose size (``256M``, ``1g``, ``512mb``, a number of bytes), None if invalid."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    match = _SIZE.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        return None
    return int(float(match[1]) * _UNITS[match[2].lower()]) or None


def resources(spec: Mapping[str, Any], path: str, problems: Problems) -> tuple[float | None, int | None]:
    deploy = spec.get("deploy") or {}
    if not isinstance(deploy, Mapping):
        problems.add(f"{path}.deploy", "must be a mapping (replicas, resources)")
        deploy = {}
    for key in deploy:
        if key not in ("replicas", "resources"):
            problems.add(f"{path}.deploy.{key}", "not supported; deploy takes replicas and resources")
    limits = (
        ((deploy.get("resources") or {}).get("limits") or {}) if isinstance(deploy.get("resources"), Mapping) else {}
    )
    cpus_raw = spec.get("cpus", limits.get("cpus"))
    memory_raw = spec.get("mem_limit", limits.get("memory"))
    cpus = None
    if cpus_raw is not None:
        try:
            cpus = float(cpus_raw)
        except (TypeError, ValueError):
            cpus = None
        if cpus is None or isinstance(cpus_raw, bool) or not 0 < cpus <= 1024:
            problems.add(f"{path}.deploy.resources.limits.cpus", "must be a number of CPUs such as 0.5")
            cpus = None
    memory = None
    if memory_raw is not None:
        memory = size(memory_raw)
        if memory is None or memory < 6 * 1024 * 1024:
            problems.add(f"{path}.deploy.resources.limits.memory", "must be a size of at least 6M, such as 256M")
            memory = None
    return cpus, memory
