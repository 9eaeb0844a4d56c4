"""Stacks: the definition, its compile, then the playbook stages on what it compiled to."""

from __future__ import annotations

from server.assistant.checks import StackChecked, check_stack
from server.assistant.checks.stack import placeholder
from server.assistant.evidence import STACK_STAGES
from server.stacks.catalogue import CATALOGUE
from server.stacks.variables import parse_variables

COMPOSE = """\
services:
  web:
    image: nginx:1.27
    ports:
      - "${WEB_PORT:-8080}:80"
    environment:
      DB_PASSWORD: ${DB_PASSWORD}
  db:
    image: postgres:16
    environment:
      POSTGRES_PASSWORD: ${DB_PASSWORD}
    volumes:
      - dbdata:/var/lib/postgresql/data
volumes:
  dbdata: {}
"""
DOCKER_ONLY = """\
metadata:
  name: Whoami
  version: 1.0.0
  targets: [docker]
template:
  image: traefik/whoami:v1.10
  ports:
    - "{{ port }}:80"
variables:
  port:
    type: integer
    label: Port
    default: 8080
"""


def statuses(checked: StackChecked) -> dict[str, str]:
    return {e.stage: e.status for e in checked.evidence}


async def test_a_catalogue_stack_passes_for_docker() -> None:
    source = (CATALOGUE / "redis.yml").read_text(encoding="utf-8")
    checked = await check_stack(source, target="docker")
    assert [e.stage for e in checked.evidence] == list(STACK_STAGES)
    assert statuses(checked) == dict.fromkeys(STACK_STAGES, "passed"), checked.problems()
    assert checked.passed
    assert (checked.target, checked.name) == ("docker", "Redis")
    assert checked.content == source
    compiled = checked.evidence[1]
    assert compiled.data["target"] == "docker"
    assert compiled.data["playbook"] == checked.playbook
    assert "community.docker.docker_container" in checked.playbook
    assert checked.evidence[0].data["format"] == "windflow"


async def test_a_compose_document_is_imported_with_placeholders_for_what_it_requires() -> None:
    checked = await check_stack(COMPOSE)
    assert statuses(checked) == dict.fromkeys(STACK_STAGES, "passed"), checked.problems()
    stack, compiled = checked.evidence[:2]
    assert stack.data["format"] == "compose"
    assert "docker-compose" in stack.detail
    assert checked.name == "web" and checked.target == "docker"  # named after its first service
    assert compiled.data["placeholders"] == ["db_password"]
    assert "db_password" in compiled.detail and "placeholder" in compiled.detail
    # A secret, placeholder or not, never enters the playbook: the run reads it from windflow_secrets.
    assert "DB_PASSWORD: '{{ windflow_secrets[''db_password''] }}'" in checked.playbook


async def test_an_invalid_stack_fails_the_stack_stage_and_skips_the_rest() -> None:
    checked = await check_stack("metadata:\n  version: one\ntemplate:\n  image: nginx\nextra: 1\n")
    assert statuses(checked) == {"stack": "failed", **dict.fromkeys(STACK_STAGES[1:], "skipped")}
    stack = checked.evidence[0]
    fields = {e["field"] for e in stack.data["errors"]}
    assert {"extra", "metadata.name", "metadata.version"} <= fields
    assert "- metadata.name: is required" in stack.detail
    assert checked.playbook == "" and checked.name == ""


async def test_a_stack_in_invalid_yaml_names_the_line() -> None:
    checked = await check_stack("metadata:\n  name: x\n template: [\n")
    assert checked.evidence[0].status == "failed"
    assert "invalid YAML" in checked.evidence[0].detail and "line" in checked.evidence[0].detail


async def test_a_target_the_stack_does_not_support_fails_the_compile() -> None:
    checked = await check_stack(DOCKER_ONLY, target="kubernetes")
    assert statuses(checked) == {
        "stack": "passed",
        "compile": "failed",
        **dict.fromkeys(STACK_STAGES[2:], "skipped"),
    }
    assert "supports docker, not kubernetes" in checked.evidence[1].detail
    assert checked.target == "kubernetes" and checked.name == "Whoami"
    unknown = await check_stack(DOCKER_ONLY, target="mars")
    assert unknown.evidence[1].status == "failed" and "must be one of" in unknown.evidence[1].detail


async def test_a_truncated_stack_never_passes() -> None:
    checked = await check_stack(DOCKER_ONLY, truncated=True)
    assert statuses(checked) == {"stack": "failed", **dict.fromkeys(STACK_STAGES[1:], "skipped")}
    assert checked.evidence[0].detail.startswith("truncated")
    assert checked.evidence[0].data == {"truncated": True}


def test_placeholders_fit_their_variables() -> None:
    variables = parse_variables(
        {
            "domain": {"type": "string", "label": "Domain", "required": True, "pattern": r"^[a-z.]+\.[a-z]+$"},
            "email": {"type": "string", "label": "Mail", "required": True, "pattern": ".+@.+"},
            "token": {"type": "password", "label": "Token", "required": True, "min_length": 32},
            "workers": {"type": "integer", "label": "Workers", "required": True, "minimum": 2, "maximum": 8},
            "debug": {"type": "boolean", "label": "Debug", "required": True},
            "size": {"type": "enum", "label": "Size", "required": True, "enum": ["small", "large"]},
        },
        "variables",
    )
    values = {name: placeholder(variable) for name, variable in variables.items()}
    assert values == {
        "domain": "example.com",
        "email": "admin@example.com",
        "token": "example" + "x" * 25,
        "workers": 2,
        "debug": False,
        "size": "small",
    }
