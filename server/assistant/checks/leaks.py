"""Secrets written into a playbook: literal passwords, private keys, tokens of well-known shapes.

A value counts as a literal secret when its key looks secret (``db_password``, ``API_KEY``,
``client_secret``…) and the value is text rather than a variable, an expression or a vaulted
string. Keys that only name a secret (``password_file``, ``secret_name``, ``token_type``) or set
a module's behaviour (``update_password``) do not count. Token shapes and private keys are found
anywhere in the text, whatever key holds them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from server.assistant.checks import document
from server.assistant.checks.document import Node, Task
from server.assistant.checks.findings import Finding

_SECRET_WORDS = re.compile(
    r"password|passwd|passphrase|secret|token|apikey|privatekey|accesskey|secretkey|clientsecret|authkey|credential"
)
_SHORT_WORDS = re.compile(r"(^|_)(pass|pwd|pw|psk)($|_)")
_NOT_SECRET_ENDINGS = (
    "file",
    "path",
    "dir",
    "length",
    "len",
    "type",
    "mode",
    "policy",
    "format",
    "lock",
    "name",
    "id",
    "url",
    "uri",
    "ref",
    "prompt",
    "scheme",
    "expire",
    "min",
    "max",
    "warn",
    "enabled",
    "required",
    "src",
    "source",
    "var",
    "env",
    "inactive",
    "rotation",
)
_NOT_SECRET_KEYS = frozenset({"update_password", "no_log", "password_lock", "generate_ssh_key", "ssh_key_bits"})
_PLACEHOLDERS = frozenset({"!", "*", "!!", "x", "omit"})
PRIVATE_KEY = re.compile(r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY( BLOCK)?-----")
TOKENS = (
    ("an AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("a GitHub token", re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}\b|\bgithub_pat_[A-Za-z0-9_]{22,}")),
    ("a Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("an OpenAI-style API key", re.compile(r"\bsk-(?:proj-|ant-)?(?=[A-Za-z0-9_-]*\d)[A-Za-z0-9_-]{20,}")),
    ("a Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    ("a Stripe secret key", re.compile(r"\b[sr]k_live_[0-9A-Za-z]{16,}")),
)
_URL_CREDENTIALS = re.compile(r"\b[a-z][a-z0-9+.-]*://([^\s/:@{}'\"<>$]+):([^\s/@{}'\"<>$]+)@", re.IGNORECASE)
ADVICE = "move the value into a variable filled from a credential or Ansible Vault and mark the task `no_log: true`"


def secret_key(key: Any) -> bool:
    """Whether a key names a secret value (not a file, a name or a setting about one)."""
    if not isinstance(key, str) or document.is_template(key):
        return False
    lowered = key.lower()
    if lowered in _NOT_SECRET_KEYS:
        return False
    compact = re.sub(r"[^a-z0-9]", "", lowered)
    if compact.endswith(_NOT_SECRET_ENDINGS):
        return False
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key).lower().replace("-", "_")
    return bool(_SECRET_WORDS.search(compact) or _SHORT_WORDS.search(snake))


def literal(value: Any) -> bool:
    """A value written out in the playbook, not one Ansible fills in."""
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, int | float):
        return True
    if not isinstance(value, str) or document.is_vaulted(value) or document.is_template(value):
        return False
    return bool(value.strip()) and value.strip() not in _PLACEHOLDERS


def _pairs(value: Any) -> Iterator[tuple[str, Any, int | None]]:
    """Every key, value and key line of nested mappings (through lists)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            line = value.line_of(str(key)) if isinstance(value, Node) else None
            yield str(key), item, line
            yield from _pairs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _pairs(item)


def _literal_findings(value: Any, where: str, task: str, fallback: int | None) -> Iterator[Finding]:
    for key, item, line in _pairs(value):
        if secret_key(key) and literal(item):
            at = f" (line {line})" if line else ""
            message = f"{where}: `{key}`{at} holds a literal secret; {ADVICE}"
            yield Finding("literal-secret", "failed", task, line or fallback, message)


def play_findings(data: Any) -> Iterator[Finding]:
    """Literal secrets in the plays' own ``vars``, ``environment`` and ``module_defaults``."""
    for number, play in document.plays(data):
        line = document.line_of(play)
        for section in ("vars", "environment", "module_defaults"):
            yield from _literal_findings(play.get(section), f"play {number} `{section}`", "", line)


def task_findings(task: Task, args: Mapping[str, Any], module: str | None) -> Iterator[Finding]:
    """Literal secrets in a task's arguments, vars and environment; secrets it passes unhidden."""
    for section in ("vars", "environment", "module_defaults"):
        yield from _literal_findings(task.data.get(section), f"{task.label} `{section}`", task.title, task.line)
    if task.is_block:
        return
    literal_keys: set[str] = set()
    for key, item, line in _pairs(args):
        if not secret_key(key):
            continue
        if literal(item):
            literal_keys.add(key)
            at = f" (line {line})" if line else ""
            message = f"{task.label}: argument `{key}`{at} of {module} is a literal secret; {ADVICE}"
            yield Finding("literal-secret", "failed", task.title, line or task.line, message)
        elif not task.no_log and (document.is_template(item) or document.is_vaulted(item)):
            message = (
                f"{task.label} passes the secret `{key}` to {module} without `no_log: true`; "
                "Ansible may print it in the run's output: add `no_log: true` to the task"
            )
            yield Finding("secret-without-no-log", "warning", task.title, line or task.line, message)


def text_findings(content: str, data: Any) -> Iterator[Finding]:
    """Private keys, tokens of known shapes and passwords in URLs, wherever they are."""
    for number, text in enumerate(content.splitlines(), start=1):
        found = _text_finding(text)
        if found is None:
            continue
        rule, message = found
        task = document.task_at(data, number)
        where = f"{task.title} (line {number}): " if task else f"line {number}: "
        yield Finding(rule, "failed", task.title if task else "", number, where + message)


def _text_finding(text: str) -> tuple[str, str] | None:
    if PRIVATE_KEY.search(text):
        return "private-key", f"private key material is written into the playbook; {ADVICE}"
    for what, pattern in TOKENS:
        if pattern.search(text):
            return "token", f"{what} is written into the playbook; revoke it if it is real, and {ADVICE}"
    match = _URL_CREDENTIALS.search(text)
    if match and not document.is_template(match[0]):
        return "url-credentials", f"a URL carries a user name and password; {ADVICE}"
    return None
