"""How a compiled playbook is written: the YAML dumper, the layout templates, secrets and tasks.

The layout templates in ``templates/`` are trusted, with ``<< >>`` / ``<% %>`` delimiters so that
Ansible's own ``{{ }}`` is plain text in them. Secret variables stand for markers while the stack
is rendered; :class:`Secrets` turns every string holding one into an expression reading
``windflow_secrets``, and the task that carries it gets ``no_log``. Literal text that looks like
Jinja is wrapped in ``{% raw %}`` so Ansible uses it as it is.
"""

from __future__ import annotations

import functools
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
import yaml

from server.errors import ValidationFailed
from server.stacks.model import App, Service
from server.stacks.spec import Definition

MARK = "\ue000{}\ue001"
MARKS = re.compile("\ue000([A-Za-z_][A-Za-z0-9_]*)\ue001")
_JINJA = re.compile(r"\{\{|\{%|\{#")
TEMPLATES = Path(__file__).with_name("templates")


class _Dumper(yaml.SafeDumper):
    """Block style with sequences indented under their key, as yamllint (and ansible-lint) want."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data and not data.startswith((" ", "\t")) and not data.endswith(" ") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_presenter)


def to_yaml(value: Any, indent: int = 0) -> str:
    """``value`` as block YAML, each line indented by ``indent`` spaces (no trailing newline)."""
    text = yaml.dump(
        value, Dumper=_Dumper, default_flow_style=False, sort_keys=False, width=1_000_000, allow_unicode=True
    )
    if text.endswith("\n...\n"):  # a lone scalar's document end marker
        text = text[: -len("...\n")]
    pad = " " * indent
    return "\n".join(pad + line if line else line for line in text.rstrip("\n").split("\n"))


@functools.cache
def _layout() -> jinja2.Environment:
    env = jinja2.Environment(  # noqa: S701 - trusted templates of this package; output is YAML, not HTML
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        block_start_string="<%",
        block_end_string="%>",
        variable_start_string="<<",
        variable_end_string=">>",
        comment_start_string="<#",
        comment_end_string="#>",
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["to_yaml"] = to_yaml
    env.filters["quote"] = lambda text: to_yaml(str(text))
    return env


class Secrets:
    """Turns marker-bearing strings into Ansible expressions and remembers which secrets were used."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def text(self, value: str) -> tuple[str, bool]:
        parts = MARKS.split(value)
        literals = parts[::2]
        if any("\ue000" in part or "\ue001" in part for part in literals):
            raise ValidationFailed.for_field(
                "body.values", "a password variable went through a filter; insert password variables as they are"
            )
        if len(parts) == 1:
            return _literal(value), False
        out = []
        for index, part in enumerate(parts):
            if index % 2:
                self.used.add(part)
                out.append("{{ windflow_secrets['" + part + "'] }}")
            elif part:
                out.append(_literal(part))
        return "".join(out), True

    def data(self, value: Any) -> tuple[Any, bool]:
        """A task argument with every string made safe for Ansible; True when it reads a secret."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            secret = False
            out = {}
            for key, item in value.items():
                out[key], used = self.data(item)
                secret |= used
            return out, secret
        if isinstance(value, list | tuple):
            pairs = [self.data(item) for item in value]
            return [p[0] for p in pairs], any(p[1] for p in pairs)
        return value, False


def _literal(text: str) -> str:
    return "{% raw %}" + text + "{% endraw %}" if _JINJA.search(text) else text


def memory(size: int) -> str:
    for unit, factor in (("G", 1024**3), ("M", 1024**2), ("K", 1024)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


def seconds(value: int | None) -> str | None:
    return None if value is None else f"{value}s"


TEMPLATE_OF = {
    "docker": "docker.yml.j2",
    "kubernetes": "kubernetes.yml.j2",
    "vm": "host.yml.j2",
    "bare-metal": "host.yml.j2",
}


class Builder(ABC):
    def __init__(self, app: App, project: str, settings: Mapping[str, Any], secrets: Secrets) -> None:
        self.app = app
        self.project = project
        self.settings = settings
        self.secrets = secrets

    def task(
        self, name: str, module: str, args: Mapping[str, Any], *, raw: bool = False, **extra: Any
    ) -> dict[str, Any]:
        """One task; ``raw`` args are Ansible expressions written here, not text from the stack."""
        clean = {k: v for k, v in args.items() if v is not None and v != [] and v != {}}
        safe, secret = (clean, False) if raw else self.secrets.data(clean)
        task: dict[str, Any] = {"name": name, module: safe}
        for key, value in extra.items():
            if value is not None:
                task[key] = value
        if secret:
            task["no_log"] = True
        return task

    def labels(self, service: Service | None = None) -> dict[str, str]:
        out = {"com.windflow.project": self.project}
        if service is not None:
            out["com.windflow.service"] = service.name
        return out

    def render(self, target: str, action: str, header: str, remove_volumes: bool, definition: Definition) -> str:
        tasks = self.deploy_tasks() if action == "deploy" else self.undeploy_tasks(remove_volumes)
        template = _layout().get_template(TEMPLATE_OF[target])
        docker_host = self.settings.get("docker_host")
        return template.render(
            docker_host=f'"{{{{ docker_host | default({docker_host!r}) }}}}"' if docker_host else None,
            header=header,
            target=target,
            action=action,
            stack=definition.metadata,
            project=self.project,
            settings=self.settings,
            tasks=tasks,
            open_ports=[
                {"port": port, "proto": proto}
                for port, proto in sorted(
                    {(p.published, p.protocol) for s in self.app.services for p in s.ports if p.published is not None}
                )
            ],
        )

    @abstractmethod
    def deploy_tasks(self) -> list[dict[str, Any]]:
        """The tasks that make the stack run on the target."""

    @abstractmethod
    def undeploy_tasks(self, remove_volumes: bool) -> list[dict[str, Any]]:
        """The tasks that remove what the deploy tasks made (volumes only when asked)."""
