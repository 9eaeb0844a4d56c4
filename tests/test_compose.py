"""docker-compose.yml and the Dockerfile agree with the settings, the CLI and each other."""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from server.cli import build_parser
from server.settings import Settings, documented_settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
HEALTH_PATH = "/api/v1/health"
DUMMY_SECRET = "compose-test-secret-0123456789-abcdefghijklmnopq"

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|(?P<bare>[A-Za-z_]\w*)|\{(?P<name>[A-Za-z_]\w*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\})"
)


def interpolate(value: str, environ: Mapping[str, str] | None = None) -> str:
    """Compose's `${VAR}` interpolation; a required `${VAR:?msg}` gets a dummy secret."""
    environ = environ or {}

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["bare"] or match["name"]
        op, arg = match["op"], match["arg"] or ""
        current = environ.get(name)
        missing = current is None or (current == "" and op is not None and op.startswith(":"))
        if not missing or op is None:
            return current or ""
        if op.endswith("-"):
            return arg
        return DUMMY_SECRET

    return _VARIABLE.sub(substitute, value)


def load_compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(document, dict), "docker-compose.yml is not a mapping"
    return document


def service(name: str) -> dict[str, Any]:
    services = load_compose()["services"]
    assert name in services, f"docker-compose.yml has no {name!r} service"
    definition = services[name]
    assert isinstance(definition, dict)
    return definition


def raw_environment(name: str) -> dict[str, str]:
    """A service's environment, as written (list or mapping form), before interpolation."""
    env = service(name).get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(key): "" if value is None else str(value) for key, value in env.items()}


def environment(name: str) -> dict[str, str]:
    return {key: interpolate(value) for key, value in raw_environment(name).items()}


def container_ports(name: str) -> set[int]:
    ports = set()
    for entry in service(name).get("ports", []):
        if isinstance(entry, dict):
            ports.add(int(entry["target"]))
        else:
            ports.add(int(str(entry).split("/")[0].rsplit(":", 1)[-1]))
    return ports


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    instructions, pending = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        pending += " " + stripped.removesuffix("\\").strip()
        if not stripped.endswith("\\"):
            keyword, _, arguments = pending.strip().partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
            pending = ""
    return instructions


def dockerfile_args(keyword: str) -> list[str]:
    return [arguments for found, arguments in dockerfile_instructions() if found == keyword]


def cli_verbs() -> set[str]:
    parser = build_parser()
    subparsers = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    assert subparsers, "the windflow parser has no sub-commands"
    return set(subparsers[0].choices)


def expected_port() -> int:
    env = environment("server")
    return int(env["WINDFLOW_PORT"]) if "WINDFLOW_PORT" in env else Settings().port


def test_compose_defines_the_distributed_services() -> None:
    assert {"postgres", "redis", "server", "worker"} <= set(load_compose()["services"])


def test_server_and_worker_build_from_the_dockerfile() -> None:
    for name in ("server", "worker"):
        build = service(name).get("build")
        assert build is not None, f"{name} does not build the image"
        if isinstance(build, str):
            build = {"context": build}
        assert (ROOT / build["context"]).resolve() == ROOT, f"{name} builds from {build['context']!r}"
        assert (ROOT / build["context"] / build.get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE
    assert DOCKERFILE.is_file()


def test_windflow_variables_are_real_settings() -> None:
    known = {name for name, _, _ in documented_settings()}
    for name in ("server", "worker"):
        used = {key for key in raw_environment(name) if key.startswith("WINDFLOW_")}
        assert used, f"{name} sets no WINDFLOW_ variable"
        assert used <= known, f"{name} sets unknown settings: {sorted(used - known)}"


def test_server_and_worker_share_one_environment() -> None:
    assert raw_environment("server") == raw_environment("worker")


def test_server_publishes_the_configured_port() -> None:
    assert expected_port() in container_ports("server")


def test_database_url_points_at_the_postgres_service() -> None:
    url = urlsplit(environment("server")["WINDFLOW_DATABASE_URL"])
    postgres = environment("postgres")
    assert url.scheme in ("postgresql", "postgres")
    assert url.hostname == "postgres"
    assert url.port == 5432
    assert url.username == postgres["POSTGRES_USER"]
    assert url.password == postgres["POSTGRES_PASSWORD"]
    assert url.path.lstrip("/") == postgres["POSTGRES_DB"]


def test_database_password_follows_the_same_variable() -> None:
    changed = {"POSTGRES_PASSWORD": "s3cret"}
    url = urlsplit(interpolate(raw_environment("server")["WINDFLOW_DATABASE_URL"], changed))
    assert url.password == interpolate(raw_environment("postgres")["POSTGRES_PASSWORD"], changed) == "s3cret"


def test_redis_url_points_at_the_redis_service() -> None:
    url = urlsplit(environment("server")["WINDFLOW_REDIS_URL"])
    assert url.scheme == "redis"
    assert url.hostname == "redis"
    assert url.port in (None, 6379)


def test_services_wait_for_healthy_dependencies() -> None:
    expected = {"server": {"postgres", "redis"}, "worker": {"server"}}
    for name, needed in expected.items():
        depends_on = service(name).get("depends_on")
        assert isinstance(depends_on, dict), f"{name}: depends_on needs conditions, not a list"
        for dependency in needed:
            assert depends_on.get(dependency, {}).get("condition") == "service_healthy", (name, dependency)


def test_every_service_has_a_healthcheck() -> None:
    for name, definition in load_compose()["services"].items():
        check = definition.get("healthcheck") or {}
        assert not check.get("disable"), f"{name} disables its healthcheck"
        test = check.get("test")
        assert test and test != ["NONE"], f"{name} has no healthcheck"


def test_server_healthcheck_probes_liveness() -> None:
    test = service("server")["healthcheck"]["test"]
    assert HEALTH_PATH in (test if isinstance(test, str) else " ".join(test))


def test_settings_accept_the_server_environment() -> None:
    settings = Settings.from_env(environment("server"))
    assert settings.secret_key_problem() is None
    assert not settings.is_development
    assert not settings.is_sqlite
    assert settings.redis_url
    assert settings.port == expected_port()
    assert settings.host == "0.0.0.0"  # noqa: S104 - inside the container
    volume_targets = {str(volume).split(":")[1] for volume in service("server").get("volumes", [])}
    assert settings.data_dir.as_posix() in volume_targets


def test_compose_refuses_to_start_without_a_secret_key() -> None:
    raw = raw_environment("server")["WINDFLOW_SECRET_KEY"]
    assert re.fullmatch(r"\$\{WINDFLOW_SECRET_KEY:?\?[^}]*\}", raw), raw


def test_compose_commands_are_cli_verbs() -> None:
    verbs = cli_verbs()
    assert "serve" in verbs
    assert "migrate" in verbs
    for name, verb in (("server", "serve"), ("worker", "worker")):
        command = service(name).get("command")
        words = command.split() if isinstance(command, str) else command
        assert words and words[0] == verb, f"{name} runs {command!r}"
        assert words[0] in verbs


def test_dockerfile_is_multi_stage() -> None:
    stages = [stage.split()[0] for stage in dockerfile_args("FROM")]
    assert len(stages) >= 3
    assert stages[0].startswith("node:20") and stages[-1] == "python:3.11-slim-bookworm"
    assert all(stage == "python:3.11-slim-bookworm" for stage in stages[1:])
    copies = dockerfile_args("COPY")
    assert any(arguments.startswith("--from=") for arguments in copies)
    assert "--from=web /web/dist ./web/dist" in copies  # the image serves the web app


def test_dockerfile_runs_as_a_non_root_user() -> None:
    users = dockerfile_args("USER")
    assert users, "the image runs as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")


def test_dockerfile_exposes_the_server_port() -> None:
    exposed = {int(port.split("/")[0]) for arguments in dockerfile_args("EXPOSE") for port in arguments.split()}
    assert expected_port() in exposed


def test_dockerfile_runs_the_windflow_cli() -> None:
    assert dockerfile_args("ENTRYPOINT")[-1] == '["windflow"]'
    assert dockerfile_args("CMD")[-1] == '["serve"]'
    assert HEALTH_PATH in dockerfile_args("HEALTHCHECK")[-1]


def test_dockerfile_data_dir_is_a_volume() -> None:
    env = " ".join(dockerfile_args("ENV"))
    data_dir = re.search(r"WINDFLOW_DATA_DIR=(\S+)", env)
    assert data_dir, "the image does not set WINDFLOW_DATA_DIR"
    assert data_dir[1] in " ".join(dockerfile_args("VOLUME"))
    assert data_dir[1] == environment("server")["WINDFLOW_DATA_DIR"]


def test_interpolation_follows_compose_rules() -> None:
    assert interpolate("${A:-x}", {}) == "x"
    assert interpolate("${A:-x}", {"A": ""}) == "x"
    assert interpolate("${A-x}", {"A": ""}) == ""
    assert interpolate("${A:?set A}", {"A": "given"}) == "given"
    assert interpolate("${A:?set A}", {}) == DUMMY_SECRET
    assert interpolate("$$A ${B}", {"B": "b"}) == "$A b"
    assert len(DUMMY_SECRET) == 48
