"""Stack variables: parsing specs, resolving values, and the form schema the UI draws."""

from __future__ import annotations

import math
import random
from typing import Any

import jsonschema
import pytest

from server.errors import ValidationFailed
from server.stacks.form import form_schema
from server.stacks.variables import Variable, parse_variables, resolve, secret_names

PATH = "body.definition.variables"

EXAMPLE: dict[str, Any] = {
    "postgres_version": {
        "type": "string",
        "label": "Version",
        "default": "16",
        "enum": ["16", "15"],
        "required": True,
        "group": "General",
        "help": "The major version.",
        "description": "PostgreSQL release",
    },
    "postgres_password": {
        "type": "password",
        "label": "Password",
        "default": "{{ generate_password(24) }}",
        "required": True,
        "min_length": 12,
    },
    "host_port": {"type": "number", "label": "Host port", "default": 5432, "minimum": 1, "maximum": 65535},
    "enable_email": {"type": "boolean", "default": False},
    "email_host": {"type": "string", "default": "", "depends_on": {"enable_email": True}, "required": True},
    "domain": {"type": "string", "default": "example.com"},
    "from_email": {"type": "string", "default": "noreply@{{ domain }}"},
    "tier": {
        "type": "enum",
        "enum": ["small", "large"],
        "enum_labels": {"small": "Small (1 CPU)", "large": "Large"},
        "default": "small",
    },
    "smtp": {
        "type": "group",
        "label": "Mail",
        "description": "Outgoing mail.",
        "variables": {"smtp_host": {"type": "string"}, "smtp_port": {"type": "integer", "default": 25}},
    },
    "notes": {"type": "textarea", "default": "line one\nline two"},
}


def parse(raw: Any) -> dict[str, Variable]:
    return parse_variables(raw, PATH)


def errors_of(raw: Any) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as caught:
        parse(raw)
    return {e.field: e.message for e in caught.value.errors}


def resolve_errors(variables: dict[str, Variable], values: dict[str, Any], **kwargs: Any) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as caught:
        resolve(variables, values, **kwargs)
    return {e.field: e.message for e in caught.value.errors}


def one(spec: dict[str, Any], name: str = "v") -> dict[str, Variable]:
    return parse({name: spec})


# --- parsing ----------------------------------------------------------------------------------


def test_the_public_example_parses() -> None:
    variables = parse(EXAMPLE)
    assert list(variables) == [
        "postgres_version",
        "postgres_password",
        "host_port",
        "enable_email",
        "email_host",
        "domain",
        "from_email",
        "tier",
        "smtp_host",
        "smtp_port",
        "notes",
    ]
    assert [v.order for v in variables.values()] == list(range(11))
    version = variables["postgres_version"]
    assert (version.type, version.label, version.enum, version.required) == ("string", "Version", ("16", "15"), True)
    assert (version.group, version.help, version.description) == ("General", "The major version.", "PostgreSQL release")
    assert variables["enable_email"].label == "enable_email"
    assert variables["tier"].enum_labels == ("Small (1 CPU)", "Large")
    assert variables["email_host"].depends_on == {"enable_email": True}
    assert variables["smtp_host"].group == "Mail" and variables["smtp_host"].group_description == "Outgoing mail."
    assert variables["host_port"].minimum == 1 and variables["host_port"].maximum == 65535
    assert variables["postgres_password"].min_length == 12
    assert secret_names(variables) == ["postgres_password"]


def test_no_variables() -> None:
    assert parse(None) == {}
    assert parse({}) == {}
    assert errors_of(["a"]) == {PATH: "must be a mapping of variable name to spec"}


def test_groups_flatten_into_one_namespace() -> None:
    variables = parse(
        {
            "first": {"type": "string"},
            "db": {
                "type": "group",
                "variables": {
                    "db_host": {"type": "string"},
                    "db_port": {"type": "integer", "group": "Advanced"},
                },
            },
            "last": {"type": "boolean"},
        }
    )
    assert list(variables) == ["first", "db_host", "db_port", "last"]
    assert variables["db_host"].group == "db"  # the group's label defaults to its name
    assert variables["db_port"].group == "Advanced"
    assert variables["db_port"].order == 2


def test_group_problems() -> None:
    assert errors_of(
        {
            "a": {"type": "string"},
            "g": {"type": "group", "variables": {"a": {"type": "string"}, "g": {"type": "string"}}},
            "h": {"type": "group", "variables": {"inner": {"type": "group", "variables": {}}}},
            "empty": {"type": "group", "variables": {}},
            "odd": {"type": "group", "help": "x", "variables": {"z": {"type": "string"}}},
        }
    ) == {
        f"{PATH}.g.variables.a": f"the name 'a' is already used at {PATH}.a",
        f"{PATH}.g.variables.g": f"the name 'g' is already used at {PATH}.g",
        f"{PATH}.h.variables.inner.type": "groups do not nest",
        f"{PATH}.empty.variables": "a group needs a mapping of variables",
        f"{PATH}.odd.help": "does not apply to type 'group'",
    }


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("1abc", "a variable name is letters, digits and _, not starting with a digit"),
        ("with-dash", "a variable name is letters, digits and _, not starting with a digit"),
        ("a\n", "a variable name is letters, digits and _, not starting with a digit"),
        ("for", "'for' is a reserved word"),
        ("None", "'None' is a reserved word"),
        ("true", "'true' is a reserved word"),
        ("loop", "'loop' is a reserved word"),
        ("generate_password", "'generate_password' is the name of a template function"),
        ("uuid", "'uuid' is the name of a template function"),
        ("windflow_x", "names starting with windflow_ or ansible_ are reserved"),
        ("ansible_host", "names starting with windflow_ or ansible_ are reserved"),
        ("Ansible_Host", "names starting with windflow_ or ansible_ are reserved"),
    ],
)
def test_bad_names(name: str, message: str) -> None:
    assert errors_of({name: {"type": "string"}}) == {f"{PATH}.{name}": message}


def test_a_name_that_is_not_a_string() -> None:
    assert errors_of({5: {"type": "string"}}) == {
        f"{PATH}.5": "a variable name is letters, digits and _, not starting with a digit"
    }


def test_spec_shape_problems() -> None:
    assert errors_of(
        {
            "a": "string",
            "b": {"label": "B"},
            "c": {"type": "text"},
            "d": {"type": "string", "colour": "red", "minimum": 1},
            "e": {"type": "boolean", "enum": [True]},
            "f": {"type": "string", "label": 5, "required": "yes", "secret": 1, "help": ["x"]},
        }
    ) == {
        f"{PATH}.a": "must be a mapping with at least a type",
        f"{PATH}.b.type": "is required",
        f"{PATH}.c.type": "must be one of: string, number, integer, boolean, password, textarea, enum, group",
        f"{PATH}.d.colour": (
            "unknown field; expected one of: default, depends_on, description, enum, enum_labels, group, help, "
            "label, max_length, min_length, pattern, required, secret, type"
        ),
        f"{PATH}.d.minimum": "does not apply to type 'string'",
        f"{PATH}.e.enum": "does not apply to type 'boolean'",
        f"{PATH}.f.label": "must be a string",
        f"{PATH}.f.required": "must be true or false",
        f"{PATH}.f.secret": "must be true or false",
        f"{PATH}.f.help": "must be a string",
    }


def test_all_problems_are_reported_at_once_with_their_paths() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse({"port": {"type": "integer", "minimum": 10, "maximum": 1, "default": "x"}, "x": {"type": "nope"}})
    assert caught.value.detail == f"{PATH}.x.type: must be one of: " + ", ".join(
        ["string", "number", "integer", "boolean", "password", "textarea", "enum", "group"]
    )
    assert {e.field for e in caught.value.errors} == {f"{PATH}.x.type", f"{PATH}.port.minimum", f"{PATH}.port.default"}


def test_constraint_fields() -> None:
    assert errors_of(
        {
            "a": {"type": "string", "pattern": "(unclosed"},
            "b": {"type": "string", "pattern": 5},
            "c": {"type": "string", "min_length": 5, "max_length": 2},
            "d": {"type": "string", "min_length": -1, "max_length": 2.5},
            "e": {"type": "number", "minimum": "1", "maximum": True},
            "f": {"type": "number", "minimum": math.inf},
            "g": {"type": "integer", "minimum": 5, "maximum": 4},
        }
    ) == {
        f"{PATH}.a.pattern": "not a valid regular expression: missing ), unterminated subpattern at position 0",
        f"{PATH}.b.pattern": "must be a string",
        f"{PATH}.c.min_length": "must not be greater than max_length",
        f"{PATH}.d.min_length": "must be a whole number, 0 or more",
        f"{PATH}.d.max_length": "must be a whole number, 0 or more",
        f"{PATH}.e.minimum": "must be a number",
        f"{PATH}.e.maximum": "must be a number",
        f"{PATH}.f.minimum": "must be a number",
        f"{PATH}.g.minimum": "must not be greater than maximum",
    }


def test_enums() -> None:
    variables = parse(
        {
            "size": {"type": "integer", "enum": [1, 2.0, 4]},
            "ratio": {"type": "number", "enum": [0.5, 1]},
            "tier": {"type": "enum", "enum": ["s", "m"], "enum_labels": ["Small", "Medium"]},
            "mixed": {"type": "enum", "enum": ["auto", 1, 2]},
            "name": {"type": "string", "enum": ["a"], "enum_labels": {"a": "The A"}},
            "partial": {"type": "enum", "enum": [16, 15], "enum_labels": {16: "Sixteen"}},
        }
    )
    assert variables["size"].enum == (1, 2, 4)
    assert variables["tier"].enum_labels == ("Small", "Medium")
    assert variables["name"].enum_labels == ("The A",)
    assert variables["partial"].enum_labels == ("Sixteen", "15")
    assert errors_of(
        {
            "a": {"type": "enum"},
            "b": {"type": "enum", "enum": []},
            "c": {"type": "enum", "enum": "a,b"},
            "d": {"type": "integer", "enum": [1, "2", 2.5, True]},
            "e": {"type": "string", "enum": ["x", "x", 1]},
            "f": {"type": "enum", "enum": ["x", True, None, [1]]},
            "g": {"type": "enum", "enum": ["x", "y"], "enum_labels": ["X"]},
            "h": {"type": "enum", "enum": ["x"], "enum_labels": {"y": "Y", "x": 5}},
            "i": {"type": "string", "enum_labels": {"y": "Y"}},
            "j": {"type": "enum", "enum": ["x"], "enum_labels": "X"},
        }
    ) == {
        f"{PATH}.a.enum": "an enum needs its list of values",
        f"{PATH}.b.enum": "must be a non-empty list",
        f"{PATH}.c.enum": "must be a non-empty list",
        f"{PATH}.d.enum.1": "must be an integer",
        f"{PATH}.d.enum.2": "must be an integer",
        f"{PATH}.d.enum.3": "must be an integer",
        f"{PATH}.e.enum.1": "is listed twice",
        f"{PATH}.e.enum.2": "must be a string",
        f"{PATH}.f.enum.1": "must be a string or a number",
        f"{PATH}.f.enum.2": "must be a string or a number",
        f"{PATH}.f.enum.3": "must be a string or a number",
        f"{PATH}.g.enum_labels": "must be a list of strings as long as enum, or a mapping",
        f"{PATH}.h.enum_labels.y": "is not one of the enum values",
        f"{PATH}.h.enum_labels.x": "must be a string",
        f"{PATH}.i.enum_labels": "needs enum",
        f"{PATH}.j.enum_labels": "must be a mapping of value to label, or a list as long as enum",
    }


def test_defaults_must_fit_their_own_constraints() -> None:
    assert errors_of(
        {
            "a": {"type": "integer", "default": 5.5},
            "b": {"type": "number", "default": 70000, "maximum": 65535},
            "c": {"type": "string", "default": "abc", "pattern": "[0-9]+"},
            "d": {"type": "enum", "enum": ["x"], "default": "y"},
            "e": {"type": "boolean", "default": "false"},
            "f": {"type": "string", "default": "two\nlines"},
            "g": {"type": "password", "default": "short", "min_length": 12},
        }
    ) == {
        f"{PATH}.a.default": "must be an integer",
        f"{PATH}.b.default": "must be at most 65535",
        f"{PATH}.c.default": "must match the pattern [0-9]+",
        f"{PATH}.d.default": "must be one of: x",
        f"{PATH}.e.default": "must be true or false",
        f"{PATH}.f.default": "must be a single line",
        f"{PATH}.g.default": "must be at least 12 characters long",
    }


def test_templated_defaults_are_checked_for_syntax_and_references() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse(
            {
                "a": {"type": "string", "default": "{{ b }}-{{ nope }}-{{ also_nope }}"},
                "b": {"type": "string", "default": "{{ unclosed "},
                "c": {"type": "string", "default": "{% include 'x' %}"},
            }
        )
    assert [(e.field, e.message) for e in caught.value.errors] == [
        (f"{PATH}.a.default", "refers to 'also_nope', which is not a variable"),
        (f"{PATH}.a.default", "refers to 'nope', which is not a variable"),
        (
            f"{PATH}.b.default",
            "invalid template: unexpected end of template, expected 'end of print statement' (line 1)",
        ),
        (f"{PATH}.c.default", "invalid template: templates cannot include, import or extend other templates (line 1)"),
    ]


def test_reference_cycles_are_named() -> None:
    assert errors_of(
        {
            "a": {"type": "string", "default": "{{ b }}"},
            "b": {"type": "string", "default": "x{{ c }}"},
            "c": {"type": "string", "default": "{{ a|upper }}"},
            "d": {"type": "string", "default": "{{ d }}"},
            "e": {"type": "string", "default": "{{ a }}"},
        }
    ) == {
        f"{PATH}.a.default": "defaults refer to each other in a cycle: a -> b -> c -> a",
        f"{PATH}.d.default": "defaults refer to each other in a cycle: d -> d",
    }


def test_depends_on() -> None:
    variables = parse({"on": {"type": "boolean"}, "host": {"type": "string", "depends_on": {"on": True}}})
    assert variables["host"].depends_on == {"on": True}
    assert errors_of(
        {
            "on": {"type": "boolean"},
            "tier": {"type": "enum", "enum": ["s", "l"]},
            "a": {"type": "string", "depends_on": {"a": True, "missing": 1, "on": "yes", "tier": "huge"}},
            "b": {"type": "string", "depends_on": ["on"]},
            "c": {"type": "string", "depends_on": {"d": "x"}},
            "d": {"type": "string", "depends_on": {"c": "x"}},
        }
    ) == {
        f"{PATH}.a.depends_on.a": "a variable cannot depend on itself",
        f"{PATH}.a.depends_on.missing": "no such variable",
        f"{PATH}.a.depends_on.on": "never matches: on must be true or false",
        f"{PATH}.a.depends_on.tier": "never matches: tier must be one of: s, l",
        f"{PATH}.b.depends_on": "must be a mapping of variable name to value",
        f"{PATH}.c.depends_on": "depends_on forms a cycle: c -> d -> c",
    }


def test_which_variables_are_secret() -> None:
    variables = parse(
        {
            "password": {"type": "password"},
            "flagged": {"type": "string", "secret": True},
            "generated": {"type": "string", "default": "{{ generate_password() }}"},
            "token": {"type": "string", "default": "tok-{{ generate_secret(40) }}"},
            "ident": {"type": "string", "default": "{{ uuid() }}"},
            "suffix": {"type": "string", "default": "{{ generate_secret(8) }}", "secret": False},
            "plain": {"type": "string", "default": "generate_password()"},
        }
    )
    assert secret_names(variables) == ["password", "flagged", "generated", "token"]
    assert errors_of({"p": {"type": "password", "secret": False}}) == {
        f"{PATH}.p.secret": "a password is always secret"
    }


# --- resolving --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "given", "expected"),
    [
        ({"type": "integer"}, 5, 5),
        ({"type": "integer"}, 5.0, 5),
        ({"type": "integer"}, -3, -3),
        ({"type": "number"}, 5, 5),
        ({"type": "number"}, 2.5, 2.5),
        ({"type": "boolean"}, False, False),
        ({"type": "boolean"}, True, True),
        ({"type": "string"}, "text", "text"),
        ({"type": "string"}, "", ""),
        ({"type": "password"}, "s3cret-enough", "s3cret-enough"),
        ({"type": "textarea"}, "a\nb\r\nc", "a\nb\r\nc"),
        ({"type": "enum", "enum": ["a", 2]}, 2, 2),
        ({"type": "enum", "enum": ["a", 2]}, 2.0, 2.0),
        ({"type": "enum", "enum": ["a", 2]}, "a", "a"),
        ({"type": "string", "enum": ["16", "15"]}, "15", "15"),
        ({"type": "integer", "enum": [1, 2]}, 2.0, 2),
        ({"type": "string", "pattern": "[a-z]+"}, "abc", "abc"),
        ({"type": "string", "pattern": "[a-z]+", "min_length": 3}, "", ""),  # empty means no value
        ({"type": "string", "min_length": 2, "max_length": 3}, "abc", "abc"),
        ({"type": "number", "minimum": 1, "maximum": 2}, 1.5, 1.5),
        ({"type": "integer", "minimum": 1, "maximum": 2}, 2, 2),
    ],
)
def test_given_values_are_checked_and_coerced(spec: dict[str, Any], given: Any, expected: Any) -> None:
    value = resolve(one(spec), {"v": given})["v"]
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("spec", "given", "message"),
    [
        ({"type": "integer"}, True, "must be an integer"),
        ({"type": "integer"}, "5", "must be an integer"),
        ({"type": "integer"}, 5.5, "must be an integer"),
        ({"type": "integer"}, math.nan, "must be an integer"),
        ({"type": "number"}, False, "must be a number"),
        ({"type": "number"}, "1", "must be a number"),
        ({"type": "number"}, math.inf, "must be a finite number"),
        ({"type": "boolean"}, 1, "must be true or false"),
        ({"type": "boolean"}, "true", "must be true or false"),
        ({"type": "string"}, 5, "must be a string"),
        ({"type": "string"}, ["a"], "must be a string"),
        ({"type": "string"}, "a\nb", "must be a single line"),
        ({"type": "password"}, "a\rb", "must be a single line"),
        ({"type": "textarea"}, 5, "must be a string"),
        ({"type": "enum", "enum": ["a", 2]}, "2", "must be one of: a, 2"),
        ({"type": "enum", "enum": ["a", 2]}, True, "must be a string or a number"),
        ({"type": "string", "enum": ["16", "15"]}, "14", "must be one of: 16, 15"),
        ({"type": "integer", "enum": [1, 2]}, 3, "must be one of: 1, 2"),
        ({"type": "string", "pattern": "[a-z]+"}, "abc1", "must match the pattern [a-z]+"),
        ({"type": "string", "pattern": "[a-z]+"}, "ABC", "must match the pattern [a-z]+"),
        ({"type": "string", "min_length": 4}, "abc", "must be at least 4 characters long"),
        ({"type": "string", "max_length": 2}, "abc", "must be at most 2 characters long"),
        ({"type": "number", "minimum": 1.5}, 1, "must be at least 1.5"),
        ({"type": "integer", "maximum": 65535}, 65536, "must be at most 65535"),
        ({"type": "number", "minimum": 1.0}, 0, "must be at least 1"),
    ],
)
def test_invalid_values_are_refused(spec: dict[str, Any], given: Any, message: str) -> None:
    assert resolve_errors(one(spec), {"v": given}) == {"body.values.v": message}


def test_error_messages_never_repeat_a_secret_value() -> None:
    variables = one({"type": "password", "pattern": "[a-z]+", "max_length": 30})
    errors = resolve_errors(variables, {"v": "Hunter2-Secret"})
    assert "Hunter2" not in str(errors)


def test_unknown_values_and_a_custom_path() -> None:
    variables = parse({"a": {"type": "string"}})
    assert resolve_errors(variables, {"a": 1, "b": 2, "c": None}, path="body.deployment.values") == {
        "body.deployment.values.a": "must be a string",
        "body.deployment.values.b": "no such variable",
        "body.deployment.values.c": "no such variable",
    }


def test_the_example_resolves() -> None:
    variables = parse(EXAMPLE)
    values = resolve(variables, {"host_port": 15432.0, "smtp_host": "mail"})
    password = values.pop("postgres_password")
    assert len(password) == 24
    assert values == {
        "postgres_version": "16",
        "host_port": 15432.0,
        "enable_email": False,
        "email_host": "",
        "domain": "example.com",
        "from_email": "noreply@example.com",
        "tier": "small",
        "smtp_host": "mail",
        "smtp_port": 25,
        "notes": "line one\nline two",
    }
    assert list(resolve(variables, {})) == list(variables)


def test_defaults_render_in_dependency_order_and_keep_native_types() -> None:
    variables = parse(
        {
            "url": {"type": "string", "default": "http://{{ host }}:{{ port }}"},
            "port": {"type": "integer", "default": "{{ base + 1 }}"},
            "label": {"type": "string", "default": "{{ port }}"},
            "ratio": {"type": "number", "default": "{{ port / 2 }}"},
            "fast": {"type": "boolean", "default": "{{ port > 8000 }}"},
            "mode": {"type": "enum", "enum": [2, 8081], "default": "{{ port }}"},
            "host": {"type": "string", "default": "{{ 'db' if fast else 'slow' }}"},
            "base": {"type": "integer", "default": 8080},
        }
    )
    assert resolve(variables, {}) == {
        "url": "http://db:8081",
        "port": 8081,
        "label": "8081",  # a string variable gets the rendered text
        "ratio": 4040.5,
        "fast": True,
        "mode": 8081,
        "host": "db",
        "base": 8080,
    }
    assert resolve(variables, {"base": 1})["url"] == "http://slow:2"


def test_a_rendered_default_is_validated_like_a_given_value() -> None:
    variables = parse(
        {
            "base": {"type": "integer", "default": 65535},
            "port": {"type": "integer", "default": "{{ base + 1 }}", "maximum": 65535},
            "text": {"type": "integer", "default": "{{ base }}0"},
            "name": {"type": "string", "default": "{{ prefix }}-x", "pattern": "[a-z-]+"},
            "prefix": {"type": "string", "default": "A"},
        }
    )
    assert resolve_errors(variables, {}) == {
        "body.values.port": "must be at most 65535 (the value comes from the default)",
        "body.values.text": "must be an integer (the value comes from the default)",
        "body.values.name": "must match the pattern [a-z-]+ (the value comes from the default)",
    }


def test_a_default_that_cannot_render() -> None:
    raw = {
        "domain": {"type": "string"},
        "email": {"type": "string", "default": "noreply@{{ domain }}"},
        "safe": {"type": "string", "default": "noreply@{{ domain|default('localhost') }}"},
        "guarded": {"type": "string", "default": "{{ domain if domain is defined else 'none' }}"},
        "bad": {"type": "integer", "default": "{{ 1 // 0 }}"},
    }
    assert resolve_errors(parse(raw), {}) == {
        "body.values.email": "the default could not be rendered: 'domain' is undefined",
        "body.values.bad": "the default could not be rendered: integer division or modulo by zero",
    }
    del raw["bad"]
    values = resolve(parse(raw), {"domain": "a.io"})
    assert values["email"] == values["safe"] == "noreply@a.io" and values["guarded"] == "a.io"
    assert resolve(parse({k: v for k, v in raw.items() if k != "email"}), {})["safe"] == "noreply@localhost"


def test_an_invalid_value_does_not_cascade_into_defaults_that_read_it() -> None:
    variables = parse(
        {
            "port": {"type": "integer"},
            "url": {"type": "string", "default": "http://x:{{ port }}", "required": True},
        }
    )
    assert resolve_errors(variables, {"port": "80"}) == {"body.values.port": "must be an integer"}


def test_previous_values_are_kept_on_redeploy() -> None:
    variables = parse(EXAMPLE)
    first = resolve(variables, {})
    again = resolve(variables, {}, previous=first)
    assert again["postgres_password"] == first["postgres_password"]
    assert resolve(variables, {}, previous={})["postgres_password"] != first["postgres_password"]
    given = resolve(variables, {"postgres_password": "a-new-long-password"}, previous=first)
    assert given["postgres_password"] == "a-new-long-password"
    kept = resolve(variables, {"domain": "b.io"}, previous={"domain": "a.io", "from_email": "x@a.io"})
    assert kept["domain"] == "b.io" and kept["from_email"] == "x@a.io"
    assert resolve(variables, {"host_port": None}, previous={"host_port": 6000})["host_port"] == 6000


def test_a_previous_value_that_no_longer_fits() -> None:
    variables = parse({"size": {"type": "enum", "enum": ["s", "m"]}})
    assert resolve_errors(variables, {}, previous={"size": "xl"}) == {
        "body.values.size": "the value kept from the last deployment no longer fits: must be one of: s, m; "
        "give a new one"
    }
    assert resolve(variables, {"size": "m"}, previous={"size": "xl"}) == {"size": "m"}


def test_generated_values_follow_the_seed_except_secrets() -> None:
    variables = parse(
        {
            "port": {"type": "integer", "default": "{{ random_port(30000, 40000) }}"},
            "ident": {"type": "string", "default": "{{ uuid() }}"},
            "password": {"type": "password", "default": "{{ generate_password(16) }}"},
        }
    )
    first = resolve(variables, {}, rng=random.Random(3))
    second = resolve(variables, {}, rng=random.Random(3))
    assert (first["port"], first["ident"]) == (second["port"], second["ident"])
    assert 30000 <= first["port"] <= 40000 and isinstance(first["port"], int)
    assert first["password"] != second["password"] and len(first["password"]) == 16


def test_required_values() -> None:
    variables = parse(
        {
            "name": {"type": "string", "required": True},
            "empty": {"type": "string", "required": True, "default": ""},
            "count": {"type": "integer", "required": True},
            "zero": {"type": "integer", "required": True, "default": 0},
            "off": {"type": "boolean", "required": True, "default": False},
            "optional": {"type": "string"},
        }
    )
    assert resolve_errors(variables, {"name": ""}) == {
        "body.values.name": "is required",
        "body.values.empty": "is required",
        "body.values.count": "is required",
    }
    assert resolve(variables, {"name": "n", "empty": "e", "count": 0}) == {
        "name": "n",
        "empty": "e",
        "count": 0,
        "zero": 0,
        "off": False,
        "optional": None,
    }


def test_hidden_fields_are_never_required() -> None:
    variables = parse(
        {
            "enable_email": {"type": "boolean", "default": False},
            "email_host": {"type": "string", "required": True, "depends_on": {"enable_email": True}},
            "email_tls": {"type": "boolean", "default": True, "depends_on": {"enable_email": True}},
            "email_ca": {"type": "textarea", "required": True, "depends_on": {"email_tls": True}},
            "tier": {"type": "enum", "enum": ["s", "l"], "default": "s"},
            "disks": {"type": "integer", "required": True, "depends_on": {"tier": "l"}},
        }
    )
    assert resolve(variables, {})["email_host"] is None  # email_ca's condition holds, but email_tls is hidden
    assert resolve_errors(variables, {"enable_email": True, "tier": "l"}) == {
        "body.values.email_host": "is required",
        "body.values.email_ca": "is required",
        "body.values.disks": "is required",
    }
    assert resolve(variables, {"enable_email": True, "email_host": "m", "email_tls": False})["email_ca"] is None


def test_visibility_follows_every_condition_once() -> None:
    variables = parse(
        {
            "d": {"type": "boolean", "default": True},
            "b": {"type": "boolean", "default": True, "depends_on": {"d": True}},
            "c": {"type": "boolean", "default": True, "depends_on": {"d": True}},
            "a": {"type": "string", "required": True, "depends_on": {"b": True, "c": True}},
        }
    )
    assert resolve_errors(variables, {}) == {"body.values.a": "is required"}
    assert resolve(variables, {"d": False})["a"] is None


def test_a_hidden_field_whose_default_cannot_render_stays_empty() -> None:
    variables = parse(
        {
            "email_from": {"type": "string", "default": "noreply@{{ email_domain }}", "depends_on": {"on": True}},
            "on": {"type": "boolean", "default": False},
            "email_domain": {"type": "string", "depends_on": {"on": True}},
        }
    )
    assert resolve(variables, {})["email_from"] is None
    assert resolve_errors(variables, {"on": True}) == {
        "body.values.email_from": "the default could not be rendered: 'email_domain' is undefined"
    }
    assert resolve(variables, {"on": True, "email_domain": "a.io"})["email_from"] == "noreply@a.io"


# --- the form ---------------------------------------------------------------------------------


def test_form_schema_shape() -> None:
    variables = parse(
        {
            **EXAMPLE,
            "admin": {"type": "string", "required": True, "pattern": "[a-z]+", "min_length": 2, "max_length": 9},
            "api_key": {"type": "string", "secret": True, "default": "fixed-but-secret"},
            "size": {"type": "integer", "enum": [1, 2], "enum_labels": ["One", "Two"], "default": 1},
        }
    )
    schema = form_schema(variables, "Postgres", "A database.")
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert (schema["title"], schema["description"], schema["type"]) == ("Postgres", "A database.", "object")
    assert schema["additionalProperties"] is False
    assert list(schema["properties"]) == list(variables)
    assert schema["required"] == ["admin"]
    assert schema["allOf"] == [
        {
            "if": {"properties": {"enable_email": {"const": True}}, "required": ["enable_email"]},
            "then": {"required": ["email_host"]},
        }
    ]
    assert schema["x-groups"] == ["General", "Mail"]
    assert schema["x-group-descriptions"] == {"Mail": "Outgoing mail."}
    props = schema["properties"]
    assert props["postgres_version"] == {
        "type": "string",
        "title": "Version",
        "description": "PostgreSQL release",
        "default": "16",
        "enum": ["16", "15"],
        "x-group": "General",
        "x-help": "The major version.",
        "x-order": 0,
    }
    assert props["postgres_password"] == {
        "type": "string",
        "title": "Password",
        "minLength": 12,
        "format": "password",
        "writeOnly": True,
        "x-order": 1,
        "x-generated": True,
    }
    assert props["host_port"] == {
        "type": "number",
        "title": "Host port",
        "default": 5432,
        "minimum": 1,
        "maximum": 65535,
        "x-order": 2,
    }
    assert props["email_host"]["x-depends-on"] == {"enable_email": True}
    assert "default" not in props["from_email"] and "x-generated" not in props["from_email"]
    assert props["tier"]["type"] == "string"
    assert props["tier"]["x-enum-labels"] == {"small": "Small (1 CPU)", "large": "Large"}
    assert props["smtp_port"] == {
        "type": "integer",
        "title": "smtp_port",
        "default": 25,
        "x-group": "Mail",
        "x-order": 9,
    }
    assert props["notes"]["x-widget"] == "textarea"
    assert props["admin"]["pattern"] == "^(?:[a-z]+)$"
    assert (props["admin"]["minLength"], props["admin"]["maxLength"]) == (2, 9)
    assert props["api_key"]["writeOnly"] is True and "default" not in props["api_key"]
    assert props["size"]["x-enum-labels"] == {"1": "One", "2": "Two"}


def test_form_schema_without_extras() -> None:
    schema = form_schema(parse({"a": {"type": "string"}}), "Plain")
    assert "description" not in schema and "allOf" not in schema and "x-group-descriptions" not in schema
    assert schema["x-groups"] == [] and schema["required"] == []


def test_form_schema_types_of_enums() -> None:
    schema = form_schema(
        parse(
            {
                "i": {"type": "enum", "enum": [1, 2]},
                "n": {"type": "enum", "enum": [1, 2.5]},
                "m": {"type": "enum", "enum": ["a", 1]},
            }
        ),
        "Enums",
    )
    props = schema["properties"]
    assert (props["i"]["type"], props["n"]["type"]) == ("integer", "number")
    assert "type" not in props["m"]


def test_form_schema_is_valid_json_schema() -> None:
    variables = parse(EXAMPLE)
    schema = form_schema(variables, "Postgres")
    # jsonschema comes with ansible-lint, a dependency
    validator = jsonschema.Draft202012Validator
    validator.check_schema(schema)
    is_valid = validator(schema).is_valid
    assert is_valid({})
    assert is_valid({"postgres_version": "15", "host_port": 80, "enable_email": True, "email_host": "mail"})
    assert not is_valid({"enable_email": True})  # email_host becomes required
    assert not is_valid({"postgres_version": "14"})
    assert not is_valid({"host_port": 0})
    assert not is_valid({"unknown": 1})
    assert not is_valid({"smtp_port": 2.5})
