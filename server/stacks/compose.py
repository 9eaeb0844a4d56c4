"""A plain docker-compose file as a stack definition.

Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?message}`` become variables (a name that
looks secret becomes a ``password`` variable, required); ``$$`` is a literal ``$``; text that looks
like Jinja stays text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from server.errors import ValidationFailed
from server.stacks.spec import TARGETS, Definition, load_text, parse_definition

_INTERPOLATION = re.compile(
    r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<default>[^}]*))?\}|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)
_SECRET_NAME = re.compile(r"(pass|password|passwd|secret|token|key)$", re.IGNORECASE)


def from_compose(text: str, name: str, path: str = "body.compose") -> Definition:
    """A plain docker-compose file as a stack: ``${VAR}`` and ``${VAR:-default}`` become variables."""
    data = load_text(text, path)
    if not isinstance(data, Mapping) or not isinstance(data.get("services"), Mapping):
        raise ValidationFailed.for_field(path, "is not a docker-compose document: it has no services mapping")
    variables: dict[str, dict[str, Any]] = {}

    def convert(value: Any) -> Any:
        if isinstance(value, str):
            return _interpolate(value, variables)
        if isinstance(value, Mapping):
            return {convert(k) if isinstance(k, str) else k: convert(v) for k, v in value.items()}
        if isinstance(value, list):
            return [convert(v) for v in value]
        return value

    template = {key: convert(value) for key, value in data.items() if key != "name"}
    definition = {
        "metadata": {
            "name": name,
            "version": "1.0.0",
            "description": "Imported from a docker-compose file.",
            "targets": list(TARGETS),
        },
        "template": template,
        "variables": variables,
    }
    return parse_definition(definition, path)


def _interpolate(text: str, variables: dict[str, dict[str, Any]]) -> str:
    def replace(match: re.Match[str]) -> str:
        var = (match["name"] or match["bare"]).lower()
        if var.startswith(("ansible_", "windflow_")):
            var = "compose_" + var
        spec = variables.setdefault(var, {"type": "password" if _SECRET_NAME.search(var) else "string"})
        spec.setdefault("label", match["name"] or match["bare"])
        op, default = match["op"], match["default"]
        if op in (":-", "-") and default is not None and "default" not in spec:
            spec["default"] = default
        elif op in (":?", "?"):
            spec["required"] = True
        elif "default" not in spec and spec["type"] != "password":
            spec["default"] = ""
        if spec["type"] == "password" and "default" not in spec:
            spec["required"] = True
        return "{{ " + var + " }}"

    escaped = text.replace("$$", "\x00")  # compose's escape for a literal $
    # Literal Jinja delimiters in a compose file are text, not templates.
    escaped = escaped.replace("{{", "{{ '{{' }}").replace("{%", "{{ '{%' }}").replace("{#", "{{ '{#' }}")
    return _INTERPOLATION.sub(replace, escaped).replace("\x00", "$")
