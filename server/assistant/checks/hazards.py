"""Risky but legitimate patterns: destructive commands, deletions of data, root on every host at
once, and shell commands where Ansible has a module.

They are warnings, not failures: a playbook may mean to drop a database. The words say what the
task will do, so the person who approves it knows.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Mapping
from typing import Any

from server.assistant.checks import document
from server.assistant.checks.document import Task
from server.assistant.checks.findings import Finding

COMMAND_MODULES = frozenset(
    {
        "ansible.builtin.command",
        "ansible.builtin.shell",
        "ansible.builtin.raw",
        "ansible.windows.win_command",
        "ansible.windows.win_shell",
    }
)
QUERY_MODULES = {"community.postgresql.postgresql_query": "query", "community.mysql.mysql_query": "query"}
_SEGMENT = re.compile(r"&&|\|\||[;|\n]")
_DESTRUCTIVE = (
    (
        "`rm` with recursive and force flags",
        re.compile(
            r"\brm\b(?=[^;&|\n]*\s(?:-[a-zA-Z]*[rR][a-zA-Z]*|--recursive)\b)(?=[^;&|\n]*\s(?:-[a-zA-Z]*f[a-zA-Z]*|--force)\b)"
        ),
    ),
    ("`mkfs`, which formats a device", re.compile(r"\bmkfs(?:\.[a-z0-9]+)?\b")),
    ("`wipefs`, which erases signatures from a device", re.compile(r"\bwipefs\b")),
    ("`dd` writing to a device", re.compile(r"\bdd\b[^;&|\n]*\bof=/dev/")),
    ("SQL `DROP`", re.compile(r"\bDROP\s+(?:DATABASE|TABLE|SCHEMA)\b", re.IGNORECASE)),
)
# The module that does what a command does, and the first arguments that make it a change.
_INSTEAD: dict[str, tuple[str, frozenset[str] | None]] = {
    "apt": ("ansible.builtin.apt", frozenset({"install", "remove", "purge", "update", "upgrade", "dist-upgrade"})),
    "apt-get": ("ansible.builtin.apt", frozenset({"install", "remove", "purge", "update", "upgrade", "dist-upgrade"})),
    "yum": ("ansible.builtin.dnf or ansible.builtin.package", frozenset({"install", "remove", "erase", "update"})),
    "dnf": ("ansible.builtin.dnf or ansible.builtin.package", frozenset({"install", "remove", "erase", "upgrade"})),
    "systemctl": (
        "ansible.builtin.systemd or ansible.builtin.service",
        frozenset({"start", "stop", "restart", "reload", "enable", "disable", "daemon-reload", "mask", "unmask"}),
    ),
    "service": ("ansible.builtin.service", frozenset({"start", "stop", "restart", "reload"})),
    "mkdir": ("ansible.builtin.file (state: directory)", None),
    "chmod": ("ansible.builtin.file (mode)", None),
    "chown": ("ansible.builtin.file (owner, group)", None),
    "touch": ("ansible.builtin.file (state: touch)", None),
    "ln": ("ansible.builtin.file (state: link)", None),
    "rm": ("ansible.builtin.file (state: absent)", None),
    "cp": ("ansible.builtin.copy (remote_src: true)", None),
    "curl": ("ansible.builtin.get_url or ansible.builtin.uri", None),
    "wget": ("ansible.builtin.get_url", None),
    "useradd": ("ansible.builtin.user", None),
    "usermod": ("ansible.builtin.user", None),
    "userdel": ("ansible.builtin.user (state: absent)", None),
    "groupadd": ("ansible.builtin.group", None),
    "git": ("ansible.builtin.git", frozenset({"clone", "pull", "checkout"})),
    "unzip": ("ansible.builtin.unarchive", None),
    "pip": ("ansible.builtin.pip", frozenset({"install", "uninstall"})),
    "pip3": ("ansible.builtin.pip", frozenset({"install", "uninstall"})),
    "docker": ("community.docker.docker_container", frozenset({"run", "start", "stop", "rm", "create"})),
    "crontab": ("ansible.builtin.cron", None),
    "hostnamectl": ("ansible.builtin.hostname", frozenset({"set-hostname", "hostname"})),
    "firewall-cmd": ("ansible.posix.firewalld", None),
    "ufw": ("community.general.ufw", None),
}
_DOCKER = {"pull": "community.docker.docker_image", "network": "community.docker.docker_network"}
_DATA_MODULES = {
    "ansible.builtin.file": ("path", "dest", "name"),
    "community.postgresql.postgresql_db": ("name", "db"),
    "community.postgresql.postgresql_schema": ("name", "schema"),
    "community.postgresql.postgresql_table": ("table", "name"),
    "community.mysql.mysql_db": ("name", "db"),
    "community.docker.docker_volume": ("volume_name", "name"),
    "community.general.lvol": ("lv",),
    "community.general.lvg": ("vg",),
    "community.general.filesystem": ("dev", "device"),
    "community.general.zfs": ("name",),
}
_DATA_KINDS = frozenset({"namespace", "persistentvolumeclaim", "persistentvolume"})
_BROAD = frozenset({"all", "*", "~.*", "~.+"})


def command_text(module: str, action: document.Action, args: Mapping[str, Any]) -> str:
    """What a command-like task runs, as one line of text."""
    if action.text is not None:
        return action.text
    argv = args.get("argv")
    if isinstance(argv, list):
        return " ".join(str(part) for part in argv)
    for key in ("cmd", "_raw_params", "free_form"):
        if isinstance(args.get(key), str):
            return str(args[key])
    return ""


def _words(segment: str) -> list[str]:
    try:
        words = shlex.split(segment)
    except ValueError:
        words = segment.split()
    while words and (words[0] in ("sudo", "exec", "env", "nohup") or re.match(r"^[A-Za-z_]+=", words[0])):
        words = words[1:]
    if words:
        words[0] = words[0].rsplit("/", 1)[-1]
    return words


def _instead(text: str) -> Iterator[tuple[str, str]]:
    """Each command of ``text`` that a module does better, with that module."""
    for segment in _SEGMENT.split(text):
        words = _words(segment.strip())
        if not words:
            continue
        command, rest = words[0], words[1:]
        firsts = {word for word in rest[:2] if not word.startswith("-")}
        if command == "docker" and rest and rest[0] in _DOCKER:
            yield "docker " + rest[0], _DOCKER[rest[0]]
        elif command == "tar" and rest and re.match(r"^-?-?[a-zA-Z]*x|^--extract", rest[0]):
            yield "tar -x", "ansible.builtin.unarchive"
        elif command == "sed" and "-i" in rest:
            yield "sed -i", "ansible.builtin.lineinfile or ansible.builtin.replace"
        elif command in ("hostname", "mount") and any(not word.startswith("-") for word in rest):
            yield command, "ansible.builtin.hostname" if command == "hostname" else "ansible.posix.mount"
        elif command in _INSTEAD:
            module, changes = _INSTEAD[command]
            if changes is None or firsts & changes:
                yield command, module


def command_findings(task: Task, module: str, action: document.Action, args: Mapping[str, Any]) -> Iterator[Finding]:
    if module in QUERY_MODULES:
        text = args.get(QUERY_MODULES[module])
        if isinstance(text, str) and _DESTRUCTIVE[-1][1].search(text):
            message = f"{task.label} runs SQL `DROP` through {module}; make sure the data may go (a backup first)"
            yield Finding("destructive-command", "warning", task.title, task.line, message)
        return
    if module not in COMMAND_MODULES:
        return
    text = command_text(module, action, args)
    for what, pattern in _DESTRUCTIVE:
        if pattern.search(text):
            message = (
                f"{task.label} runs {what} through {module}; it destroys data with no undo: narrow it "
                "to exact paths or devices, guard it with a `when:` condition, or use a module"
            )
            yield Finding("destructive-command", "warning", task.title, task.line, message)
    if module.endswith((".command", ".shell")):
        seen: set[str] = set()
        for command, better in _instead(text):
            if command not in seen:
                seen.add(command)
                message = (
                    f"{task.label} runs `{command}` through {module}; use {better} instead: a module is "
                    "idempotent, reports what changed and works in check mode"
                )
                yield Finding("command-instead-of-module", "warning", task.title, task.line, message)


def deletion_findings(task: Task, module: str, args: Mapping[str, Any]) -> Iterator[Finding]:
    """Tasks that delete data: files, databases, volumes, namespaces and claims, disks."""
    absent = str(args.get("state", "")).strip().lower() == "absent"
    what = ""
    if absent and module in _DATA_MODULES:
        target = next((args[key] for key in _DATA_MODULES[module] if key in args), "")
        noun = "the path" if module == "ansible.builtin.file" else "the data of"
        what = f"{noun} {target}" if target else "data"
    elif absent and module in ("kubernetes.core.k8s", "community.kubernetes.k8s"):
        kinds = {str(args.get("kind", "")).lower()} | _definition_kinds(args.get("definition"))
        if kinds & _DATA_KINDS:
            what = "a Kubernetes " + ", ".join(sorted(kinds & _DATA_KINDS)) + " (and the data in it)"
    elif absent and module == "ansible.builtin.user" and document.truthy(args.get("remove")):
        what = f"the user {args.get('name', '')} with the home directory"
    elif module == "community.docker.docker_compose_v2" and absent and document.truthy(args.get("remove_volumes")):
        what = "the project's volumes"
    elif module == "community.docker.docker_prune" and document.truthy(args.get("volumes")):
        what = "every unused Docker volume"
    if what:
        message = (
            f"{task.label} deletes {what} ({module}, state: absent); make sure it is meant to, and guard it "
            "(a `when:` condition, a backup first, a check-mode run)"
        )
        yield Finding("deletes-data", "warning", task.title, task.line, message)


def _definition_kinds(definition: Any) -> set[str]:
    items = definition if isinstance(definition, list) else [definition]
    return {str(item.get("kind", "")).lower() for item in items if isinstance(item, Mapping)}


def broad(hosts: Any) -> bool:
    """Whether a host pattern takes every host (``all``, ``*``, ``all:!db``)."""
    patterns = hosts if isinstance(hosts, list) else [hosts]
    for pattern in patterns:
        if not isinstance(pattern, str) or document.is_template(pattern):
            continue
        for part in re.split(r"[:,]", pattern):
            if part.strip().lower() in _BROAD:
                return True
    return False


def play_findings(data: Any) -> Iterator[Finding]:
    """Plays that become root on every host at once."""
    for number, play in document.plays(data):
        if document.truthy(play.get("become")) and broad(play.get("hosts")) and "serial" not in play:
            line = play.line_of("become") if isinstance(play, document.Node) else None
            message = (
                f"play {number} runs every task as root (become: true) on all hosts at once; add `serial:` "
                "(such as 1 or '25%') to roll out in batches, or narrow `hosts:`"
            )
            yield Finding("become-all-hosts", "warning", "", line, message)
