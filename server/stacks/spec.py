"""A stack definition: what to run (``template``), its typed ``variables``, and how it is described.

The format is the public WindFlow stack-definition format: ``metadata`` (name, semver version,
description, category, tags, the target kinds it supports), ``template`` (one container spec, or a
docker-compose document with ``services``, ``volumes`` and ``networks``), ``variables``,
``target_parameters`` (settings per target kind) and ``deployment_notes`` (Markdown). Every string
of the template may use ``{{ variable }}``; it is rendered in the sandbox (``sandbox.py``) only
when a stack is compiled, so parsing checks the template's shape, its Jinja syntax and that it
names only declared variables. A plain ``docker-compose.yml`` becomes a definition through
``compose.py``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from server.errors import FieldError, ValidationFailed
from server.stacks import sandbox
from server.stacks.variables import Variable, parse_variables

TARGETS: tuple[str, ...] = ("docker", "kubernetes", "vm", "bare-metal")
# The public format's ``target_type`` values, as target kinds.
LEGACY_TARGETS = {
    "docker": ("docker", "vm", "bare-metal"),
    "docker_compose": ("docker", "vm", "bare-metal"),
    "kubernetes": ("kubernetes",),
    "vm": ("vm",),
    "bare-metal": ("bare-metal",),
}
METADATA_FIELDS = frozenset(
    {
        "name",
        "version",
        "description",
        "category",
        "tags",
        "targets",
        "target_type",
        "author",
        "license",
        "icon_url",
        "documentation_url",
        "screenshots",
        "is_public",
        "deployment_name",
    }
)
TOP_FIELDS = frozenset({"metadata", "template", "variables", "target_parameters", "deployment_notes"})
COMPOSE_FIELDS = frozenset({"version", "name", "services", "volumes", "networks"})
SERVICE_FIELDS = frozenset(
    {
        "image",
        "command",
        "entrypoint",
        "environment",
        "ports",
        "expose",
        "volumes",
        "networks",
        "healthcheck",
        "depends_on",
        "restart",
        "restart_policy",
        "deploy",
        "replicas",
        "mem_limit",
        "cpus",
        "labels",
        "container_name",
        "hostname",
        "user",
        "working_dir",
        "init",
        "read_only",
        "cap_add",
        "cap_drop",
        "stop_grace_period",
    }
)
TARGET_PARAMETERS: dict[str, frozenset[str]] = {
    "docker": frozenset({"project", "pull", "bind_address"}),
    "kubernetes": frozenset(
        {"project", "namespace", "service_type", "storage_class", "storage_size", "image_pull_policy", "wait_timeout"}
    ),
    "vm": frozenset({"project", "pull", "bind_address", "packages", "user", "firewall", "become", "docker_host"}),
    "bare-metal": frozenset(
        {"project", "pull", "bind_address", "packages", "user", "firewall", "become", "docker_host"}
    ),
}
SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)
SERVICE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
RESOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
MAX_DEFINITION = 1024 * 1024
MAX_NODES = 100_000
MAX_DEPTH = 50
SINGLE_SERVICE = "app"


@dataclass(frozen=True)
class Metadata:
    name: str
    version: str
    description: str = ""
    category: str = ""
    tags: tuple[str, ...] = ()
    targets: tuple[str, ...] = TARGETS
    author: str = ""
    license: str = ""
    documentation_url: str = ""
    deployment_name: str = ""


@dataclass(frozen=True)
class Definition:
    metadata: Metadata
    template: dict[str, Any]  # always compose-shaped: services, volumes, networks
    variables: dict[str, Variable]
    target_parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    deployment_notes: str = ""
    source: dict[str, Any] = field(default_factory=dict)  # the document as given, for storage

    @property
    def checksum(self) -> str:
        return definition_checksum(self.source)


def definition_checksum(source: Mapping[str, Any]) -> str:
    text = json.dumps(source, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def semver_key(version: str) -> tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]:
    """Sort key of a semver string: releases after their pre-releases, as semver orders them."""
    match = SEMVER.match(version)
    if match is None:
        return (0, 0, 0, 0, ())
    major, minor, patch, pre = int(match[1]), int(match[2]), int(match[3]), match[4]
    if not pre:
        return (major, minor, patch, 1, ())
    parts = tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre.split("."))
    return (major, minor, patch, 0, parts)


class Problems:
    """Collects field errors with their paths; :meth:`raise_if_any` ends a validation."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def add(self, path: str, message: str) -> None:
        self.errors.append(FieldError(path, message))

    def extend(self, exc: ValidationFailed) -> None:
        self.errors.extend(exc.errors or [FieldError("body", exc.detail)])

    def raise_if_any(self) -> None:
        if self.errors:
            first = self.errors[0]
            raise ValidationFailed(f"{first.field}: {first.message}", self.errors[:100])


def load_text(text: str, path: str) -> Any:
    """YAML (JSON is YAML) into plain data; a syntax error names the line."""
    if len(text.encode()) > MAX_DEFINITION:
        raise ValidationFailed.for_field(path, "must be at most 1 MiB")
    try:
        data = yaml.load(text, Loader=yaml.CSafeLoader)  # noqa: S506 - the C safe loader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1})" if mark else ""
        raise ValidationFailed.for_field(path, f"invalid YAML: {exc.problem or exc.context}{where}") from None
    except yaml.YAMLError as exc:
        raise ValidationFailed.for_field(path, f"invalid YAML: {exc}") from None
    except RecursionError:
        raise ValidationFailed.for_field(path, "nests too deeply") from None
    check_size(data, path)
    return data


def check_size(data: Any, path: str) -> None:
    """Refuse documents past MAX_NODES values (anchors counted as expanded) or MAX_DEPTH levels,
    and text holding a NUL character (no database stores one).

    YAML aliases share one object, so a small text can stand for billions of values; everything
    after this (rendering, JSON) walks them expanded. The walk stops as soon as a limit is passed.
    """
    count = 0
    stack: list[tuple[Any, int, str]] = [(data, 0, path)]
    while stack:
        value, depth, where = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise ValidationFailed.for_field(path, f"holds more than {MAX_NODES} values (anchors expanded)")
        if depth > MAX_DEPTH:
            raise ValidationFailed.for_field(path, f"nests more than {MAX_DEPTH} levels deep")
        if isinstance(value, str) and "\x00" in value:
            raise ValidationFailed.for_field(where, "must not contain NUL characters")
        if isinstance(value, Mapping):
            for key, item in value.items():
                stack.append((key, depth + 1, where))
                stack.append((item, depth + 1, f"{where}.{key}"))
        elif isinstance(value, list):
            stack.extend((item, depth + 1, f"{where}.{index}") for index, item in enumerate(value))


def parse_definition(raw: str | Mapping[str, Any], path: str = "body.definition") -> Definition:
    """Validate a definition (YAML/JSON text or the parsed object) and normalise its template."""
    data = load_text(raw, path) if isinstance(raw, str) else raw
    if not isinstance(raw, str):
        check_size(raw, path)
    if not isinstance(data, Mapping):
        raise ValidationFailed.for_field(path, "must be a mapping with metadata, template and variables")
    problems = Problems()
    for key in data:
        if key not in TOP_FIELDS:
            problems.add(f"{path}.{key}", "unknown field; expected " + ", ".join(sorted(TOP_FIELDS)))
    metadata = _metadata(data.get("metadata"), f"{path}.metadata", problems)
    variables: dict[str, Variable] = {}
    try:
        variables = parse_variables(data.get("variables") or {}, f"{path}.variables")
    except ValidationFailed as exc:
        problems.extend(exc)
    template = _template(data.get("template"), f"{path}.template", problems)
    parameters = _target_parameters(data.get("target_parameters"), f"{path}.target_parameters", problems)
    notes = data.get("deployment_notes") or ""
    if not isinstance(notes, str):
        problems.add(f"{path}.deployment_notes", "must be Markdown text")
        notes = ""
    problems.raise_if_any()
    known = set(variables)
    # ``deployment_name`` (the project a deployment is named by) is there for the template and notes.
    named = known | {"deployment_name"}
    _check_templates(template, f"{path}.template", named, problems)
    _check_templates(parameters, f"{path}.target_parameters", known, problems)
    _check_templates(notes, f"{path}.deployment_notes", named, problems)
    _check_templates(metadata.deployment_name, f"{path}.metadata.deployment_name", known, problems)
    problems.raise_if_any()
    source = json.loads(json.dumps(dict(data), default=str))
    return Definition(metadata, template, variables, parameters, notes, source)


def _text(value: Any, path: str, problems: Problems, *, required: bool = False, limit: int = 255) -> str:
    if value is None or value == "":
        if required:
            problems.add(path, "is required")
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        problems.add(path, "must be text")
        return ""
    text = str(value).strip() if not isinstance(value, str) else value
    if len(text) > limit:
        problems.add(path, f"must be at most {limit} characters")
    return text


def _metadata(raw: Any, path: str, problems: Problems) -> Metadata:
    if not isinstance(raw, Mapping):
        problems.add(path, "is required: a mapping with at least name and version")
        return Metadata(name="", version="0.0.0")
    for key in raw:
        if key not in METADATA_FIELDS:
            problems.add(f"{path}.{key}", "unknown field; expected " + ", ".join(sorted(METADATA_FIELDS)))
    name = _text(raw.get("name"), f"{path}.name", problems, required=True, limit=100).strip()
    version = _text(raw.get("version"), f"{path}.version", problems, required=True, limit=64)
    if version and not SEMVER.match(version):
        problems.add(f"{path}.version", "must be a semantic version such as 1.2.0")
    tags = raw.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) and 0 < len(t) <= 50 for t in tags):
        problems.add(f"{path}.tags", "must be a list of short strings")
        tags = []
    return Metadata(
        name=name,
        version=version,
        description=_text(raw.get("description"), f"{path}.description", problems, limit=20_000),
        category=_text(raw.get("category"), f"{path}.category", problems, limit=100),
        tags=tuple(dict.fromkeys(tags)),
        targets=_targets(raw, path, problems),
        author=_text(raw.get("author"), f"{path}.author", problems),
        license=_text(raw.get("license"), f"{path}.license", problems),
        documentation_url=_text(raw.get("documentation_url"), f"{path}.documentation_url", problems, limit=2048),
        deployment_name=_text(raw.get("deployment_name"), f"{path}.deployment_name", problems),
    )


def _targets(raw: Mapping[str, Any], path: str, problems: Problems) -> tuple[str, ...]:
    if "targets" in raw:
        targets = raw["targets"]
        if not isinstance(targets, list) or not targets or not all(t in TARGETS for t in targets):
            problems.add(f"{path}.targets", "must be a non-empty list of: " + ", ".join(TARGETS))
            return TARGETS
        return tuple(t for t in TARGETS if t in targets)
    if "target_type" in raw:
        legacy = LEGACY_TARGETS.get(str(raw["target_type"]))
        if legacy is None:
            problems.add(f"{path}.target_type", "must be one of: " + ", ".join(LEGACY_TARGETS))
            return TARGETS
        return legacy
    return TARGETS


def _template(raw: Any, path: str, problems: Problems) -> dict[str, Any]:
    """The template in compose shape; a single container spec becomes the one service ``app``."""
    if not isinstance(raw, Mapping) or not raw:
        problems.add(path, "is required: a container spec (image, …) or a compose document with services")
        return {"services": {}}
    if "services" not in raw:
        service = dict(raw)
        _service_fields(service, path, problems)
        return {"services": {SINGLE_SERVICE: service}, "volumes": {}, "networks": {}}
    for key in raw:
        if key not in COMPOSE_FIELDS:
            problems.add(
                f"{path}.{key}", "not supported; a compose template may have " + ", ".join(sorted(COMPOSE_FIELDS))
            )
    services = raw.get("services")
    if not isinstance(services, Mapping) or not services:
        problems.add(f"{path}.services", "must map at least one service name to its spec")
        return {"services": {}}
    for name, spec in services.items():
        where = f"{path}.services.{name}"
        if not isinstance(name, str) or not SERVICE_NAME.match(name):
            problems.add(where, "a service name is lower-case letters, digits, '-' and '_' (at most 63)")
        if not isinstance(spec, Mapping):
            problems.add(where, "must be a mapping (image, ports, …)")
            continue
        _service_fields(spec, where, problems)
    out: dict[str, Any] = {"services": {str(k): dict(v) for k, v in services.items() if isinstance(v, Mapping)}}
    for section in ("volumes", "networks"):
        value = raw.get(section) or {}
        if isinstance(value, list):  # a list of names is a common shorthand
            value = {str(v): {} for v in value}
        if not isinstance(value, Mapping):
            problems.add(f"{path}.{section}", "must map names to their options")
            value = {}
        for name, options in value.items():
            where = f"{path}.{section}.{name}"
            if not isinstance(name, str) or not RESOURCE_NAME.match(name):
                problems.add(where, "a name is letters, digits, '_', '.' and '-' (at most 63)")
            if options is not None and not isinstance(options, Mapping):
                problems.add(where, "must be a mapping of options (or empty)")
        out[section] = {str(k): dict(v or {}) for k, v in value.items() if v is None or isinstance(v, Mapping)}
    return out


def _service_fields(spec: Mapping[str, Any], path: str, problems: Problems) -> None:
    for key in spec:
        if key not in SERVICE_FIELDS:
            problems.add(f"{path}.{key}", "not supported in a service; supported: " + ", ".join(sorted(SERVICE_FIELDS)))
    if "image" not in spec:
        problems.add(f"{path}.image", "is required")


def _target_parameters(raw: Any, path: str, problems: Problems) -> dict[str, dict[str, Any]]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        problems.add(path, "must map target kinds to their parameters")
        return {}
    out: dict[str, dict[str, Any]] = {}
    for kind, parameters in raw.items():
        if kind not in TARGET_PARAMETERS:
            problems.add(f"{path}.{kind}", "not a target kind; expected " + ", ".join(TARGETS))
            continue
        if not isinstance(parameters, Mapping):
            problems.add(f"{path}.{kind}", "must be a mapping")
            continue
        for key in parameters:
            if key not in TARGET_PARAMETERS[kind]:
                allowed = ", ".join(sorted(TARGET_PARAMETERS[kind]))
                problems.add(f"{path}.{kind}.{key}", f"unknown parameter; {kind} takes {allowed}")
        out[kind] = dict(parameters)
    return out


def walk_strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string in a nested structure (keys included) with its dotted path."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str):
                yield f"{path}.{key}", key
            yield from walk_strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk_strings(item, f"{path}.{index}")


def _check_templates(value: Any, path: str, known: set[str], problems: Problems) -> None:
    for where, text in walk_strings(value, path):
        if not sandbox.has_template(text):
            continue
        try:
            names = sandbox.references(text)
        except sandbox.TemplateError as exc:
            problems.add(where, f"invalid template: {exc.message}")
            continue
        for name in sorted(names - known):
            problems.add(where, f"uses {name!r}, which is not a declared variable")
