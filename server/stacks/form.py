"""The deployment form of a stack: a JSON Schema (2020-12) built from its variables.

Validation itself needs only standard keywords; what the UI needs beyond them (groups, order,
help, labels of enum values, which values the server generates, when a field is shown) rides
along as ``x-`` keywords. Secret and templated defaults are never put in the form.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from server.stacks.variables import Variable

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
JSON_TYPES = {"string": "string", "password": "string", "textarea": "string", "number": "number"}
JSON_TYPES |= {"integer": "integer", "boolean": "boolean"}


def _json_type(variable: Variable) -> str | None:
    if variable.type != "enum":
        return JSON_TYPES[variable.type]
    options = variable.enum or ()
    if all(isinstance(option, str) for option in options):
        return "string"
    if all(isinstance(option, int) for option in options):
        return "integer"
    if all(isinstance(option, int | float) for option in options):
        return "number"
    return None


def _property(variable: Variable) -> dict[str, Any]:
    prop: dict[str, Any] = {}
    if (kind := _json_type(variable)) is not None:
        prop["type"] = kind
    prop["title"] = variable.label
    if variable.description:
        prop["description"] = variable.description
    if variable.default is not None and not variable.templated and not variable.secret:
        prop["default"] = variable.default
    if variable.enum is not None:
        prop["enum"] = list(variable.enum)
        if variable.enum_labels is not None:
            prop["x-enum-labels"] = {
                str(v): label for v, label in zip(variable.enum, variable.enum_labels, strict=True)
            }
    keywords = {
        "minimum": variable.minimum,
        "maximum": variable.maximum,
        "minLength": variable.min_length,
        "maxLength": variable.max_length,
        "pattern": None if variable.pattern is None else f"^(?:{variable.pattern})$",
    }
    prop |= {key: value for key, value in keywords.items() if value is not None}
    if variable.secret:
        prop |= {"format": "password", "writeOnly": True}
    if variable.type == "textarea":
        prop["x-widget"] = "textarea"
    if variable.group:
        prop["x-group"] = variable.group
    if variable.help:
        prop["x-help"] = variable.help
    prop["x-order"] = variable.order
    if variable.generated:
        prop["x-generated"] = True
    if variable.depends_on:
        prop["x-depends-on"] = dict(variable.depends_on)
    return prop


def form_schema(variables: Mapping[str, Variable], title: str, description: str = "") -> dict[str, Any]:
    """The JSON Schema (2020-12) of the deployment form, with ``x-`` hints for the UI."""
    ordered = sorted(variables.values(), key=lambda v: v.order)
    required: list[str] = []
    conditional: list[dict[str, Any]] = []
    groups: dict[str, str] = {}
    for variable in ordered:
        if variable.group:
            groups.setdefault(variable.group, variable.group_description)
        if not variable.required or variable.default not in (None, ""):
            continue
        if not variable.depends_on:
            required.append(variable.name)
            continue
        condition = {name: {"const": value} for name, value in variable.depends_on.items()}
        conditional.append(
            {
                "if": {"properties": condition, "required": list(variable.depends_on)},
                "then": {"required": [variable.name]},
            }
        )
    schema: dict[str, Any] = {"$schema": SCHEMA_DIALECT, "title": title}
    if description:
        schema["description"] = description
    schema |= {
        "type": "object",
        "properties": {variable.name: _property(variable) for variable in ordered},
        "required": required,
        "additionalProperties": False,
        "x-groups": list(groups),
    }
    if conditional:
        schema["allOf"] = conditional
    if any(groups.values()):
        schema["x-group-descriptions"] = {label: text for label, text in groups.items() if text}
    return schema
