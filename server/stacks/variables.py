"""The typed variables of a stack: their specs and the values a deployment resolves.

A definition's ``variables:`` maps a name to a spec (``type``, ``label``, ``default``, constraints…).
A ``group`` spec is a fieldset: its ``variables`` are flattened into the top level, so every
name is unique across the stack and templates see one flat namespace. A default may be a
sandboxed template (``"noreply@{{ domain }}"``, ``"{{ generate_password(24) }}"``) that reads
other variables; those are resolved first, and a default that calls a secret generator makes
the variable secret. An empty string counts as "no value": it satisfies any optional variable
and fails a required one.
"""

from __future__ import annotations

import dataclasses
import functools
import keyword
import math
import random
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from server.errors import FieldError, ValidationFailed
from server.stacks import generators, sandbox

TYPES = ("string", "number", "integer", "boolean", "password", "textarea", "enum", "group")
STRING_TYPES = frozenset({"string", "password", "textarea"})

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RESERVED_NAMES = frozenset(keyword.kwlist) | {"true", "false", "none", "self", "loop", "caller", "varargs", "kwargs"}
RESERVED_PREFIXES = ("windflow_", "ansible_")
SECRET_GENERATORS = frozenset({"generate_password", "generate_secret"})

_COMMON = frozenset({"type", "label", "description", "help", "group", "default", "required", "depends_on", "secret"})
_STRING_FIELDS = _COMMON | {"enum", "enum_labels", "pattern", "min_length", "max_length"}
_NUMBER_FIELDS = _COMMON | {"enum", "enum_labels", "minimum", "maximum"}
FIELDS_BY_TYPE: dict[str, frozenset[str]] = {
    "string": _STRING_FIELDS,
    "password": _STRING_FIELDS,
    "textarea": _STRING_FIELDS,
    "number": _NUMBER_FIELDS,
    "integer": _NUMBER_FIELDS,
    "boolean": _COMMON,
    "enum": _COMMON | {"enum", "enum_labels"},
    "group": frozenset({"type", "label", "description", "variables"}),
}
ALL_FIELDS = frozenset().union(*FIELDS_BY_TYPE.values())


@dataclass(frozen=True)
class Variable:
    """One variable, as parsed: ``enum_labels`` runs parallel to ``enum``."""

    name: str
    type: str
    label: str
    order: int
    description: str = ""
    help: str = ""
    group: str = ""
    group_description: str = ""
    default: Any = None
    required: bool = False
    pattern: str | None = None
    enum: tuple[Any, ...] | None = None
    enum_labels: tuple[str, ...] | None = None
    minimum: int | float | None = None
    maximum: int | float | None = None
    min_length: int | None = None
    max_length: int | None = None
    depends_on: dict[str, Any] = field(default_factory=dict)
    secret: bool = False

    @property
    def templated(self) -> bool:
        return isinstance(self.default, str) and sandbox.has_template(self.default)

    @property
    def generated(self) -> bool:
        """Whether the default calls a generator, so the server fills the value in."""
        return self.templated and sandbox.uses_generator(self.default, set(generators.GENERATORS))

    @property
    def references(self) -> set[str]:
        return sandbox.references(self.default) if self.templated else set()


class _Invalid(Exception):
    """A value that does not fit its variable; the message never repeats the value."""


# --- values -----------------------------------------------------------------------------------


def _same(a: Any, b: Any) -> bool:
    """Equality that keeps booleans, numbers and strings apart (``True != 1``, ``"5" != 5``)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


def _typed(kind: str, value: Any) -> Any:
    """``value`` as a ``kind``, or :class:`_Invalid`."""
    if kind == "boolean":
        if not isinstance(value, bool):
            raise _Invalid("must be true or false")
    elif kind == "integer":
        integral = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        if isinstance(value, bool) or not integral:
            raise _Invalid("must be an integer")
        value = int(value)
    elif kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Invalid("must be a number")
        if isinstance(value, float) and not math.isfinite(value):
            raise _Invalid("must be a finite number")
    elif kind in STRING_TYPES:
        if not isinstance(value, str):
            raise _Invalid("must be a string")
        if kind != "textarea" and ("\n" in value or "\r" in value):
            raise _Invalid("must be a single line")
    elif kind == "enum" and (isinstance(value, bool) or not isinstance(value, str | int | float)):
        raise _Invalid("must be a string or a number")
    return value


@functools.lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _number(value: int | float) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def check_value(variable: Variable, value: Any) -> Any:
    """``value`` checked against ``variable`` and coerced (``5.0`` → ``5`` for an integer)."""
    value = _typed(variable.type, value)
    if value == "" and isinstance(value, str):
        return value
    if variable.enum is not None and not any(_same(value, option) for option in variable.enum):
        raise _Invalid("must be one of: " + ", ".join(str(option) for option in variable.enum))
    if isinstance(value, str):
        if variable.pattern is not None and not _regex(variable.pattern).fullmatch(value):
            raise _Invalid(f"must match the pattern {variable.pattern}")
        if variable.min_length is not None and len(value) < variable.min_length:
            raise _Invalid(f"must be at least {variable.min_length} characters long")
        if variable.max_length is not None and len(value) > variable.max_length:
            raise _Invalid(f"must be at most {variable.max_length} characters long")
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if variable.minimum is not None and value < variable.minimum:
            raise _Invalid(f"must be at least {_number(variable.minimum)}")
        if variable.maximum is not None and value > variable.maximum:
            raise _Invalid(f"must be at most {_number(variable.maximum)}")
    return value


# --- parsing ----------------------------------------------------------------------------------


@dataclass
class _Spec:
    name: str
    where: str
    raw: Any
    group: str = ""
    group_description: str = ""


def parse_variables(raw: Any, path: str) -> dict[str, Variable]:
    """Every variable of a definition, or :class:`ValidationFailed` listing all that is wrong."""
    errors: list[FieldError] = []
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ValidationFailed.for_field(path, "must be a mapping of variable name to spec")
    variables: dict[str, Variable] = {}
    where: dict[str, str] = {}
    for spec in _flatten(raw, path, errors):
        variable = _parse_spec(spec, len(variables), errors)
        if variable is not None:
            variables[spec.name] = variable
            where[spec.name] = spec.where
    errors += _relations(variables, where)
    if errors:
        raise ValidationFailed(f"{errors[0].field}: {errors[0].message}", errors)
    return variables


def _name_problem(name: Any) -> str | None:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        return "a variable name is letters, digits and _, not starting with a digit"
    if name in RESERVED_NAMES:
        return f"{name!r} is a reserved word"
    if name in generators.GENERATORS:
        return f"{name!r} is the name of a template function"
    if name.lower().startswith(RESERVED_PREFIXES):
        return "names starting with windflow_ or ansible_ are reserved"
    return None


def _flatten(raw: Mapping[Any, Any], path: str, errors: list[FieldError]) -> Iterator[_Spec]:
    """The specs in definition order, group members in place of their group."""
    seen: dict[str, str] = {}

    def claim(name: Any, where: str) -> bool:
        problem = _name_problem(name)
        if problem is None and name in seen:
            problem = f"the name {name!r} is already used at {seen[name]}"
        if problem is not None:
            errors.append(FieldError(where, problem))
            return False
        seen[name] = where
        return True

    for name, spec in raw.items():
        where = f"{path}.{name}"
        if not claim(name, where):
            continue
        if not (isinstance(spec, Mapping) and spec.get("type") == "group"):
            yield _Spec(name, where, spec)
            continue
        for key in spec:
            if key not in FIELDS_BY_TYPE["group"]:
                errors.append(FieldError(f"{where}.{key}", _unknown_field(key, "group")))
        label = _text(spec, "label", where, errors) or name
        description = _text(spec, "description", where, errors)
        members = spec.get("variables")
        if not isinstance(members, Mapping) or not members:
            errors.append(FieldError(f"{where}.variables", "a group needs a mapping of variables"))
            continue
        for member, member_spec in members.items():
            member_where = f"{where}.variables.{member}"
            if isinstance(member_spec, Mapping) and member_spec.get("type") == "group":
                errors.append(FieldError(f"{member_where}.type", "groups do not nest"))
            elif claim(member, member_where):
                yield _Spec(member, member_where, member_spec, label, description)


def _unknown_field(key: Any, kind: str) -> str:
    if key in ALL_FIELDS:
        return f"does not apply to type {kind!r}"
    return "unknown field; expected one of: " + ", ".join(sorted(FIELDS_BY_TYPE[kind]))


def _text(spec: Mapping[str, Any], key: str, where: str, errors: list[FieldError]) -> str:
    value = spec.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        errors.append(FieldError(f"{where}.{key}", "must be a string"))
        return ""
    return value


def _flag(spec: Mapping[str, Any], key: str, where: str, errors: list[FieldError]) -> bool | None:
    value = spec.get(key)
    if value is not None and not isinstance(value, bool):
        errors.append(FieldError(f"{where}.{key}", "must be true or false"))
        return None
    return value


def _count(spec: Mapping[str, Any], key: str, where: str, errors: list[FieldError]) -> int | None:
    value = spec.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        errors.append(FieldError(f"{where}.{key}", "must be a whole number, 0 or more"))
        return None
    return value


def _bound(spec: Mapping[str, Any], key: str, where: str, errors: list[FieldError]) -> int | float | None:
    value = spec.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        errors.append(FieldError(f"{where}.{key}", "must be a number"))
        return None
    return value


def _parse_spec(spec: _Spec, order: int, errors: list[FieldError]) -> Variable | None:
    raw, where = spec.raw, spec.where
    if not isinstance(raw, Mapping):
        errors.append(FieldError(where, "must be a mapping with at least a type"))
        return None
    kind = raw.get("type")
    if kind not in TYPES:
        message = "is required" if kind is None else "must be one of: " + ", ".join(TYPES)
        errors.append(FieldError(f"{where}.type", message))
        return None
    errors += [
        FieldError(f"{where}.{key}", _unknown_field(key, kind)) for key in raw if key not in FIELDS_BY_TYPE[kind]
    ]
    pattern = _pattern(raw, where, errors)
    enum, labels = _enum(raw, kind, where, errors)
    secret = _flag(raw, "secret", where, errors)
    if kind == "password" and secret is False:
        errors.append(FieldError(f"{where}.secret", "a password is always secret"))
    depends_on = raw.get("depends_on") or {}
    if not isinstance(depends_on, Mapping):
        errors.append(FieldError(f"{where}.depends_on", "must be a mapping of variable name to value"))
        depends_on = {}
    variable = Variable(
        name=spec.name,
        type=kind,
        label=_text(raw, "label", where, errors) or spec.name,
        order=order,
        description=_text(raw, "description", where, errors),
        help=_text(raw, "help", where, errors),
        group=_text(raw, "group", where, errors) or spec.group,
        group_description=spec.group_description if "group" not in raw else "",
        default=raw.get("default"),
        required=bool(_flag(raw, "required", where, errors)),
        pattern=pattern,
        enum=enum,
        enum_labels=labels,
        minimum=_bound(raw, "minimum", where, errors),
        maximum=_bound(raw, "maximum", where, errors),
        min_length=_count(raw, "min_length", where, errors),
        max_length=_count(raw, "max_length", where, errors),
        depends_on=dict(depends_on),
    )
    generated = variable.templated and _safe_uses(variable.default, SECRET_GENERATORS)
    return dataclasses.replace(variable, secret=kind == "password" or (generated if secret is None else secret))


def _pattern(raw: Mapping[str, Any], where: str, errors: list[FieldError]) -> str | None:
    pattern = raw.get("pattern")
    if pattern is None:
        return None
    if not isinstance(pattern, str):
        errors.append(FieldError(f"{where}.pattern", "must be a string"))
        return None
    try:
        _regex(pattern)
    except re.error as exc:
        errors.append(FieldError(f"{where}.pattern", f"not a valid regular expression: {exc}"))
        return None
    return pattern


def _safe_uses(text: str, names: set[str] | frozenset[str]) -> bool:
    try:
        return sandbox.uses_generator(text, set(names))
    except sandbox.TemplateError:
        return False  # reported with the default


def _enum(
    raw: Mapping[str, Any], kind: str, where: str, errors: list[FieldError]
) -> tuple[tuple[Any, ...] | None, tuple[str, ...] | None]:
    options = raw.get("enum")
    if options is None:
        if kind == "enum":
            errors.append(FieldError(f"{where}.enum", "an enum needs its list of values"))
        if "enum_labels" in raw:
            errors.append(FieldError(f"{where}.enum_labels", "needs enum"))
        return None, None
    if not isinstance(options, list) or not options:
        errors.append(FieldError(f"{where}.enum", "must be a non-empty list"))
        return None, None
    values: list[Any] = []
    for index, option in enumerate(options):
        try:
            value = _typed(kind, option)
        except _Invalid as exc:
            errors.append(FieldError(f"{where}.enum.{index}", str(exc)))
            continue
        if any(_same(value, seen) for seen in values):
            errors.append(FieldError(f"{where}.enum.{index}", "is listed twice"))
            continue
        values.append(value)
    return tuple(values), _enum_labels(raw.get("enum_labels"), values, where, errors)


def _enum_labels(raw: Any, values: list[Any], where: str, errors: list[FieldError]) -> tuple[str, ...] | None:
    if raw is None:
        return None
    path = f"{where}.enum_labels"
    if isinstance(raw, list):
        if len(raw) != len(values) or not all(isinstance(label, str) for label in raw):
            errors.append(FieldError(path, "must be a list of strings as long as enum, or a mapping"))
            return None
        return tuple(raw)
    if not isinstance(raw, Mapping):
        errors.append(FieldError(path, "must be a mapping of value to label, or a list as long as enum"))
        return None
    labels = {str(value): str(value) for value in values}
    for key, label in raw.items():
        match = next((str(v) for v in values if _same(key, v) or str(key) == str(v)), None)
        if match is None:
            errors.append(FieldError(f"{path}.{key}", "is not one of the enum values"))
        elif not isinstance(label, str):
            errors.append(FieldError(f"{path}.{key}", "must be a string"))
        else:
            labels[match] = label
    return tuple(labels[str(value)] for value in values)


def _relations(variables: Mapping[str, Variable], where: Mapping[str, str]) -> list[FieldError]:
    """What needs the other variables: ranges, defaults and their references, depends_on, cycles."""
    errors: list[FieldError] = []
    references: dict[str, list[str]] = {}
    for name, variable in variables.items():
        at = where[name]
        low, high = variable.minimum, variable.maximum
        if low is not None and high is not None and low > high:
            errors.append(FieldError(f"{at}.minimum", "must not be greater than maximum"))
        shortest, longest = variable.min_length, variable.max_length
        if shortest is not None and longest is not None and shortest > longest:
            errors.append(FieldError(f"{at}.min_length", "must not be greater than max_length"))
        errors += _default_problems(variable, variables, f"{at}.default", references)
        for target, expected in variable.depends_on.items():
            path = f"{at}.depends_on.{target}"
            if target == name:
                errors.append(FieldError(path, "a variable cannot depend on itself"))
            elif target not in variables:
                errors.append(FieldError(path, "no such variable"))
            else:
                try:
                    check_value(variables[target], expected)
                except _Invalid as exc:
                    errors.append(FieldError(path, f"never matches: {target} {exc}"))
    _, cycles = _walk(references)
    for cycle in cycles:
        message = "defaults refer to each other in a cycle: " + " -> ".join(cycle)
        errors.append(FieldError(f"{where[cycle[0]]}.default", message))
    conditions = {name: [t for t in v.depends_on if t in variables and t != name] for name, v in variables.items()}
    for cycle in _walk(conditions)[1]:
        errors.append(FieldError(f"{where[cycle[0]]}.depends_on", "depends_on forms a cycle: " + " -> ".join(cycle)))
    return errors


def _default_problems(
    variable: Variable, variables: Mapping[str, Variable], path: str, references: dict[str, list[str]]
) -> list[FieldError]:
    if variable.default is None:
        return []
    if not variable.templated:
        try:
            check_value(variable, variable.default)
        except _Invalid as exc:
            return [FieldError(path, str(exc))]
        return []
    try:
        names = sandbox.references(variable.default)
    except sandbox.TemplateError as exc:
        return [FieldError(path, f"invalid template: {exc.message}")]
    references[variable.name] = sorted(names & variables.keys(), key=lambda n: variables[n].order)
    return [FieldError(path, f"refers to {n!r}, which is not a variable") for n in sorted(names - variables.keys())]


def _walk(graph: Mapping[str, Sequence[str]]) -> tuple[list[str], list[list[str]]]:
    """Depth-first: the nodes with their dependencies first, and each cycle met (``[a, b, a]``)."""
    order: list[str] = []
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for root in graph:
        if root in state:
            continue
        path, stack = [root], [iter(graph[root])]
        state[root] = 1
        while stack:
            child = next(stack[-1], None)
            if child is None:
                node = path.pop()
                stack.pop()
                state[node] = 2
                order.append(node)
            elif state.get(child) == 1:
                cycles.append([*path[path.index(child) :], child])
            elif child not in state:
                state[child] = 1
                path.append(child)
                stack.append(iter(graph.get(child, ())))
    return order, cycles


# --- resolving --------------------------------------------------------------------------------


def resolve(
    variables: Mapping[str, Variable],
    values: Mapping[str, Any],
    path: str = "body.values",
    previous: Mapping[str, Any] | None = None,
    rng: random.Random | None = None,
) -> dict[str, Any]:
    """The value of every variable: given, else previous, else its rendered default, else None.

    A given ``None`` counts as not given. Defaults render in dependency order and see the values
    resolved so far; ``previous`` keeps what a former deployment generated (passwords).
    """
    errors = [FieldError(f"{path}.{name}", "no such variable") for name in values if name not in variables]
    previous = previous or {}
    resolved: dict[str, Any] = {}
    context: dict[str, Any] = {}
    failed: set[str] = set()
    for name in _walk(_dependencies(variables))[0]:
        variable = variables[name]
        try:
            if values.get(name) is not None:
                value = check_value(variable, values[name])
            elif previous.get(name) is not None:
                value = _previous(variable, previous[name])
            elif variable.default is not None and variable.references & failed:
                failed.add(name)  # its default reads a value that is already reported
                value = None
            elif variable.default is not None:
                value = _hidden_or(variables, resolved, name, lambda v=variable: _from_default(v, context, rng))
            else:
                value = None
        except _Invalid as exc:
            errors.append(FieldError(f"{path}.{name}", str(exc)))
            failed.add(name)
            value = None
        resolved[name] = value
        if value is not None:
            context[name] = value
    for name, variable in variables.items():
        empty = resolved[name] is None or resolved[name] == ""
        if variable.required and empty and name not in failed and visible(variables, resolved, name):
            errors.append(FieldError(f"{path}.{name}", "is required"))
    if errors:
        raise ValidationFailed(f"{errors[0].field}: {errors[0].message}", errors)
    return {name: resolved[name] for name in variables}


def _dependencies(variables: Mapping[str, Variable]) -> dict[str, list[str]]:
    """For each variable, what must be resolved first: what its default reads, what it depends on."""
    graph: dict[str, list[str]] = {}
    for name, variable in variables.items():
        needs = (variable.references | variable.depends_on.keys()) & variables.keys()
        graph[name] = sorted(needs - {name}, key=lambda n: variables[n].order)
    return graph


def _hidden_or(variables: Mapping[str, Variable], resolved: Mapping[str, Any], name: str, default: Any) -> Any:
    """The default's value; a hidden variable whose default fails is simply left empty."""
    try:
        return default()
    except _Invalid:
        if visible(variables, resolved, name):
            raise
        return None


def _previous(variable: Variable, value: Any) -> Any:
    try:
        return check_value(variable, value)
    except _Invalid as exc:
        raise _Invalid(f"the value kept from the last deployment no longer fits: {exc}; give a new one") from None


def _from_default(variable: Variable, context: Mapping[str, Any], rng: random.Random | None) -> Any:
    value = variable.default
    if variable.templated:
        try:
            # A string variable gets the text; others keep the type of a lone "{{ expression }}".
            if variable.type in STRING_TYPES:
                value = sandbox.render(value, context, rng)
            else:
                value = sandbox.render_value(value, context, rng)
        except sandbox.TemplateError as exc:
            raise _Invalid(f"the default could not be rendered: {exc.message}") from None
    try:
        return check_value(variable, value)
    except _Invalid as exc:
        raise _Invalid(f"{exc} (the value comes from the default)") from None


def visible(variables: Mapping[str, Variable], values: Mapping[str, Any], name: str) -> bool:
    """Whether ``name`` is shown: each depends_on target is visible and has the expected value."""
    seen: set[str] = set()
    pending = [name]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        for target, expected in variables[current].depends_on.items():
            if target not in variables or not _same(values.get(target), expected):
                return False
            pending.append(target)
    return True


def secret_names(variables: Mapping[str, Variable]) -> list[str]:
    return [name for name, variable in variables.items() if variable.secret]
