"""Is this a playbook? First our own quick look at its YAML, then Ansible's ``--syntax-check``.

The quick look gives precise, cheap answers (line numbers, which play); the syntax check is the
real judge (unknown modules, missing roles, bad keywords) and runs as ``ansible-playbook`` in a
throw-away project directory, with a clean environment and never through a shell.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

import anyio
import yaml

from server.errors import ValidationFailed
from server.playbooks.paths import roles_dir
from server.runs.executor import VENV_BIN, clean_env, control_dir

MAX_CONTENT_BYTES = 1024 * 1024
SYNTAX_CHECK_TIMEOUT = 60
MAX_MESSAGE = 2000
IMPORT_KEYS = ("import_playbook", "ansible.builtin.import_playbook")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_PREFIX = re.compile(r"^(ERROR! |\[ERROR\]: )")
_NOISE = re.compile(r"^\[(WARNING|DEPRECATION WARNING)\]")


class _Loader(yaml.CSafeLoader):
    """The C safe loader that also takes Ansible's own tags (``!unsafe``, ``!vault``) as plain data."""


def _any_tag(loader: _Loader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_Loader.add_multi_constructor("!", _any_tag)


def _parse(content: str, field: str) -> Any:
    try:
        return yaml.load(content, Loader=_Loader)  # noqa: S506 - a safe loader (CSafeLoader) with two tags added
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}: " if mark else ""
        raise ValidationFailed.for_field(field, f"{where}invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ValidationFailed.for_field(field, f"invalid YAML: {exc}") from None
    except RecursionError:
        raise ValidationFailed.for_field(field, "invalid YAML: it nests too deeply") from None


def _play_problem(play: Any) -> str | None:
    if not isinstance(play, dict):
        return f"is a {type(play).__name__}, not a mapping with `hosts` and tasks or roles"
    for key in IMPORT_KEYS:
        if key in play:
            target = play[key]
            if not isinstance(target, str) or not target.strip():
                return f"`{key}` must name a playbook"
            path = PurePosixPath(target)
            if path.is_absolute() or ".." in path.parts:
                return f"`{key}` must not point outside the project (no absolute path, no `..`)"
            return None
    if "hosts" not in play:
        return "has neither `hosts` nor `import_playbook`"
    return None


def check_structure(content: str, field: str = "body.content") -> None:
    """A non-empty list of plays, each a mapping with ``hosts`` or ``import_playbook``.

    Plays are counted from 1 in messages (``play 2`` is the second), like lines are.
    """
    data = _parse(content, field)
    if data is None:
        raise ValidationFailed.for_field(field, "the playbook is empty")
    if not isinstance(data, list):
        raise ValidationFailed.for_field(field, f"a playbook is a YAML list of plays, not a {type(data).__name__}")
    if not data:
        raise ValidationFailed.for_field(field, "the playbook has no play")
    for number, play in enumerate(data, start=1):
        if problem := _play_problem(play):
            raise ValidationFailed.for_field(field, f"play {number}: {problem}")


def ansible_message(output: str, workdir: Path) -> str:
    """Ansible's error without the noise: colours, warnings, the ``ERROR!`` prefix, our temp paths."""
    project = workdir / "project"
    text = _ANSI.sub("", output).replace(f"{project}/", "").replace(str(project), ".").replace(str(workdir), "~")
    roles = roles_dir()
    if roles is not None:
        text = text.replace(str(roles), "roles")
    lines = [_PREFIX.sub("", line.rstrip()) for line in text.splitlines() if not _NOISE.match(line)]
    message = "\n".join(lines).strip() or "ansible-playbook --syntax-check failed"
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 1] + "…"


def _prepare(workdir: Path, content: str) -> tuple[list[str], dict[str, str]]:
    """Write the throw-away project; return the command and its environment."""
    project = workdir / "project"
    project.mkdir()
    (workdir / "tmp").mkdir()
    (project / "main.yml").write_text(content, encoding="utf-8")
    extra = {"ANSIBLE_ROLES_PATH": str(roles)} if (roles := roles_dir()) else {}
    env = clean_env(workdir, **extra)
    program = VENV_BIN / "ansible-playbook"
    command = [str(program) if program.exists() else "ansible-playbook"]
    return [*command, "--syntax-check", "-i", "localhost,", "main.yml"], env


async def syntax_check(content: str, field: str = "body.content") -> None:
    """``ansible-playbook --syntax-check`` on ``content``; its complaint becomes the field error."""
    workdir = Path(await anyio.to_thread.run_sync(tempfile.mkdtemp, "", "windflow-check-"))
    try:
        command, env = await anyio.to_thread.run_sync(_prepare, workdir, content)
        process = await asyncio.create_subprocess_exec(
            *command,
            cwd=workdir / "project",
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), SYNTAX_CHECK_TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()
            message = f"ansible-playbook --syntax-check did not finish within {SYNTAX_CHECK_TIMEOUT} s"
            raise ValidationFailed.for_field(field, message) from None
        if process.returncode != 0:
            output = err.decode(errors="replace") or out.decode(errors="replace")
            raise ValidationFailed.for_field(field, ansible_message(output, workdir))
    finally:
        await anyio.to_thread.run_sync(_remove, workdir)


def _remove(workdir: Path) -> None:
    shutil.rmtree(control_dir(workdir), ignore_errors=True)
    shutil.rmtree(workdir, ignore_errors=True)


async def validate_playbook(content: str, field: str = "body.content") -> None:
    """Raise :class:`ValidationFailed` on ``field`` unless ``content`` is a playbook Ansible accepts."""
    try:
        size = len(content.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValidationFailed.for_field(field, "is not valid UTF-8 text") from None
    if size > MAX_CONTENT_BYTES:
        raise ValidationFailed.for_field(field, f"a playbook may be at most {MAX_CONTENT_BYTES} bytes")
    await anyio.to_thread.run_sync(check_structure, content, field)
    await syntax_check(content, field)
