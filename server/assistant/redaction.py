"""What is sent to an LLM provider leaves WindFlow without secrets.

A conversation carries playbooks, inventories and run output, any of which may hold a password
pasted by hand, a vaulted value or a key. Before a message goes out, :class:`Redactor` replaces
each secret it can recognise with a marker, so the model still sees that something was there:

``[REDACTED]``
    a credential's value (exact match, through :class:`~server.credentials.masking.Masker`), the
    value of a secret-looking key, a ``no_log`` result.
``[REDACTED:vault]``
    an Ansible Vault payload, bare or as a YAML ``!vault |`` block.
``[REDACTED:private-key]``
    a PEM (or OpenSSH, PGP) private key block.
``[REDACTED:token]``
    a well-known token shape (AWS, GitHub, Slack, OpenAI, JWT, ``Bearer``) or a high-entropy run.

Every marker starts with ``[REDACTED``; a value that already is one is left alone. The heuristics
lean towards keeping what a playbook needs to be understood: Jinja references, lookups, paths,
URLs without credentials, UUIDs, version strings and identifiers pass unchanged.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from server.credentials.masking import Masker, secret_values
from server.credentials.service import reveal
from server.db.tables import Credential

MARKER = "[REDACTED]"
VAULT = "[REDACTED:vault]"
PRIVATE_KEY = "[REDACTED:private-key]"
TOKEN = "[REDACTED:token]"  # noqa: S105 - a marker, not a password
MIN_ENTROPY = 4.0  # bits per character, for a run of at least MIN_RUN characters
MIN_RUN = 24
MIN_HEX = 48  # a git commit (40) passes; a sha256 digest (64) does not
WORD_SEGMENT = 10  # a name's parts up to this length are never "random" (pod hashes, short SHAs)

# Key names: the last part of the key (``db_password``, ``GITHUB_TOKEN``, ``apiKey``) decides.
SECRET_WORDS = frozenset(
    {"password", "passwd", "pass", "passphrase", "secret", "token", "apikey", "auth", "authorization"}
    | {"credential", "credentials", "passwords", "secrets", "tokens"}
)
SECRET_PAIRS = frozenset({"api_key", "private_key", "access_key", "secret_key", "client_secret"})
GLUED = ("password", "passwd", "passphrase", "secret", "token", "apikey", "credentials")  # ``PGPASSWORD``
NOT_SECRET_KEYS = frozenset({"update_password"})  # ansible.builtin.user: always / on_create

_PARTS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_KEY = r"[A-Za-z_][A-Za-z0-9_.-]*"
_DQ = r'"(?:[^"\\\n]|\\.)*"'
_SQ = r"'(?:[^'\\\n]|\\.|'')*'"

_PEM = re.compile(
    r"-----BEGIN (?P<label>[A-Z0-9 ]*?)PRIVATE KEY(?P<block>(?: BLOCK)?)-----"
    r".*?-----END (?P=label)PRIVATE KEY(?P=block)-----",
    re.S,
)
# A key cut short (no END line): its header and the base64 lines after it.
_PEM_DANGLING = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
    r"(?:(?:\r?\n|(?:\\r)?\\n)(?:[A-Za-z0-9+/=]*|(?:Proc-Type|DEK-Info|Comment|Version):[^\n\\]*))*"
)
_VAULT_BLOCK = re.compile(
    r"^(?P<head>(?P<indent>[ \t]*)[^\n]*?!vault[ \t]*[|>][-+0-9]*)[ \t]*\r?\n"
    r"(?P<body>(?:(?P=indent)[ \t]+[^\n]*(?:\n|$))+)",
    re.M,
)
_VAULT = re.compile(
    r"\$ANSIBLE_VAULT;1\.[12];AES256(?:;[^\s;\\\"']+)?"
    r"(?:[ \t]*(?:\r?\n|(?:\\r)?\\n)[ \t]*[0-9a-fA-F]+(?=[ \t]*(?:\r?\n|\\[rn]|$|[\"'},\]])))*"
)
_TOKEN_SHAPES = [
    re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Z0-9])"),
    re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b"),
    re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}"),
    re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    re.compile(r"\bsk-(?=[A-Za-z0-9_-]*[0-9])(?=[A-Za-z0-9_-]*[A-Za-z])[A-Za-z0-9_-]{20,}"),
    re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"),
    re.compile(r"\bAIza[0-9A-Za-z_-]{35}"),
    re.compile(r"\bhvs\.[A-Za-z0-9_-]{20,}"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"),
]
_AWS_SECRET = re.compile(r"(?i)(aws_secret_access_key[\"']?\s*[=:]\s*[\"']?)[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])")
_BEARER = re.compile(r"(?i)(\bbearer\s+)(?=[A-Za-z0-9._~+/=-]*[0-9])[A-Za-z0-9._~+/=-]{8,}")
_URL_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@'\"]+:)([^\s@/'\"]+)(?=@)")
# "password": "x" (JSON, Python reprs), also once escaped inside a JSON string.
_QUOTED = re.compile(rf"(?P<q>[\"'])(?P<key>{_KEY})(?P=q)(?P<sep>\s*:\s*)(?P<value>{_DQ}|{_SQ}|-?\d+(?:\.\d+)?\b)")
_ESCAPED = re.compile(rf'(?P<q>\\")(?P<key>{_KEY})\\"(?P<sep>\s*:\s*)(?P<value>\\"[^"\\]*\\")')
# password: x / - password: "x" (YAML: the rest of the line), PASSWORD = x (ini, env files).
_LINE = re.compile(
    rf"^(?P<lead>[ \t]*(?:-[ \t]+)?)(?P<key>{_KEY})(?P<sep>:[ \t]+)"
    rf"(?P<value>{_DQ}|{_SQ}|[^\n]*?)(?P<tail>[ \t]+#[^\n]*)?[ \t]*\r?$",
    re.M,
)
_ASSIGN = re.compile(
    rf"^(?P<lead>[ \t]*(?:export[ \t]+)?)(?P<key>{_KEY})(?P<sep>[ \t]+=[ \t]*|=[ \t]+)(?P<value>{_DQ}|{_SQ}|\S+)", re.M
)
_FLOW = re.compile(rf"(?P<lead>[{{,][ \t]*)(?P<key>{_KEY})(?P<sep>:[ \t]+)(?P<value>{_DQ}|{_SQ}|[^,}}\n]+)")
_BLOCK = re.compile(
    rf"^(?P<head>(?P<indent>[ \t]*)(?:-[ \t]+)?(?P<key>{_KEY}):[ \t]*[|>][-+0-9]*)[ \t]*(?:#[^\n]*)?\r?\n"
    r"(?P<body>(?:(?P=indent)[ \t]+[^\n]*(?:\n|$))+)",
    re.M,
)
_INLINE = re.compile(rf"(?<![\w.-])(?P<key>-{{0,2}}{_KEY})(?P<sep>=)(?P<value>{_DQ}|{_SQ}|[^\s&;\"'`]+)")
_FLAG = re.compile(rf"(?<![\w-])(?P<key>--{_KEY})(?P<sep>[ \t]+)(?P<value>{_DQ}|{_SQ}|(?![-<>|])[^\s\"'`;&|<>]+)")
_KEEP = re.compile(
    r"\{\{|\{%"  # Jinja
    r"|^(?:lookup|query|q)\("
    r"|^\[REDACTED|^\*+$|^\*[A-Za-z_][\w-]*$"  # a marker, a run's mask, a YAML alias
    r"|^!vault\b|^[|>][-+0-9]*$"  # handled by their own rules
    r"|^\$\{[A-Za-z_]\w*\}$|^\$[A-Z_][A-Z0-9_]*$"  # an environment reference
    r"|^(?:true|false|yes|no|on|off|null|none|~)$"
    r"|^(?:~|\.{1,2})?/[\w.@/-]*$"  # a path
    r"|^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"  # an id (an inventory's credential)
    r"|^[\[{]\s*[\]}]$",
    re.I,
)
_RUN = re.compile(rf"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{{{MIN_RUN},}}={{0,2}}(?![A-Za-z0-9+/=_-])")
_HEX = re.compile(rf"(?<![0-9A-Za-z])[0-9a-fA-F]{{{MIN_HEX},}}(?![0-9A-Za-z])")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_SSH_PUBLIC = re.compile(r"(?:ssh-[a-z0-9]+|ecdsa-sha2-nistp\d+|sk-ssh-ed25519@openssh\.com)[ \t]+$")
_PATH_WORD = re.compile(r"[a-z]{3,}|[A-Z]?[a-z]{3,}")
_PROSE = frozenset({"to", "or", "and", "the", "a", "an", "in", "on", "for", "with", "is", "as", "if", "when", "option"})
_NO_LOG_HIDE = frozenset({"res", "result", "task_args", "resolved_action_args"})  # as runs/events.py censors
_NO_LOG_KEEP = frozenset({"_ansible_no_log", "no_log", "changed", "failed", "skipped", "unreachable", "censored"})


def is_secret_key(key: str) -> bool:
    """``db_password``, ``GITHUB_TOKEN``, ``apiKey``, ``--password``: yes; ``password_file``: no."""
    name = key.strip("-\"'\\")
    if name.lower() in NOT_SECRET_KEYS:
        return False
    parts: list[str] = [part.lower() for part in _PARTS.findall(name)]
    while parts and parts[-1].isdigit():
        parts.pop()
    if not parts:
        return False
    last = parts[-1]
    if last in SECRET_WORDS or (len(parts) > 1 and f"{parts[-2]}_{last}" in SECRET_PAIRS):
        return True
    return last.endswith(GLUED)


def _unquoted(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value.strip('\\"')


def keeps(value: str) -> bool:
    """A value that is no secret itself: empty, a Jinja reference or lookup, a marker, a path, …"""
    inner = _unquoted(value)
    return not inner or bool(_KEEP.search(inner))


def _redacted_value(value: str, quote_bare: bool = False) -> str:
    stripped = value.strip()
    if stripped[:1] in "\"'" and stripped[-1:] == stripped[:1] and len(stripped) >= 2:
        return f"{stripped[0]}{MARKER}{stripped[0]}"
    if stripped.startswith('\\"'):
        return f'\\"{MARKER}\\"'
    return f'"{MARKER}"' if quote_bare else MARKER


def _keyed(quote_bare: bool) -> Callable[[re.Match[str]], str]:
    """A replacement for a match with ``key`` and ``value`` groups: the value goes if the key is secret.

    ``quote_bare``: a bare YAML value becomes ``"[REDACTED]"``, not a one-item flow sequence.
    """

    def replace(match: re.Match[str]) -> str:
        value = match["value"]
        if not is_secret_key(match["key"]) or keeps(value) or _in_jinja(match.string, match.start()):
            return match[0]
        start, end = match.span("value")
        redacted = _redacted_value(value, quote_bare)
        return match.string[match.start() : start] + redacted + match.string[end : match.end()]

    return replace


_by_key = _keyed(quote_bare=False)
_by_yaml_key = _keyed(quote_bare=True)


def _in_jinja(text: str, position: int) -> bool:
    """Inside ``{{ … }}`` on its line: a lookup's ``secret=kv/app:token`` names a path, not a value."""
    opened = text.rfind("{{", text.rfind("\n", 0, position) + 1, position)
    return opened != -1 and "}}" not in text[opened:position]


def _flag(match: re.Match[str]) -> str:
    """``--password hunter2``, but not the prose of ``use --password to set it``."""
    return match[0] if match["value"].lower() in _PROSE else _by_key(match)


def _block(match: re.Match[str]) -> str:
    body = match["body"]
    if not is_secret_key(match["key"]) or body.strip().startswith("[REDACTED"):
        return match[0]
    indent = body[: len(body) - len(body.lstrip(" \t"))]
    return f"{match['head']}\n{indent}{MARKER}" + ("\n" if body.endswith("\n") else "")


def _vault_block(match: re.Match[str]) -> str:
    body = match["body"]
    indent = body[: len(body) - len(body.lstrip(" \t"))]
    return f"{match['head']}\n{indent}{VAULT}" + ("\n" if body.endswith("\n") else "")


def entropy(text: str) -> float:
    """Shannon entropy in bits per character."""
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def _wordish(segment: str) -> bool:
    """A part of a name or path (``releases``, ``v2``, ``7fb96c846b``), not a piece of random text."""
    if len(segment) <= WORD_SEGMENT:
        return True
    humps = _PARTS.findall(segment)
    return bool(humps) and len(segment) / len(humps) >= 4


def looks_random(run: str) -> bool:
    """A run of the base64 alphabet that is a token, not an identifier, a path or a UUID."""
    core = run.rstrip("=")
    if len(core) < MIN_RUN or _UUID.search(core):
        return False
    if not (any(c.isalpha() for c in core) and any(c.isdigit() for c in core)):
        return False
    if re.fullmatch(r"[0-9a-fA-F]+", core) and len(core) < MIN_HEX:
        return False  # a git commit, an md5: not secrets
    if all(_wordish(part) for part in re.split(r"[/_-]+", core) if part):
        return False
    return entropy(core) >= MIN_ENTROPY


def _random_run(match: re.Match[str]) -> str:
    run = match[0]
    if not looks_random(run) or _SSH_PUBLIC.search(match.string, max(0, match.start() - 48), match.start()):
        return run
    segments = run.split("/")
    if sum(bool(_PATH_WORD.fullmatch(segment)) for segment in segments) >= 2:
        # A URL's or a path's words around a random part (a webhook's secret): only that part goes.
        return "/".join(TOKEN if looks_random(segment) else segment for segment in segments)
    return TOKEN


def _hex_run(match: re.Match[str]) -> str:
    run = match[0]
    return TOKEN if any(c.isdigit() for c in run) and any(c.isalpha() for c in run) else run


def _url_password(match: re.Match[str]) -> str:
    return match[0] if keeps(match[2]) else match[1] + MARKER


class Redactor:
    """Removes secrets from text, structured data and chat messages; pure, and safe to share."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._masker = Masker(secrets, mask=MARKER)

    def text(self, value: str) -> str:
        if not value:
            return value
        value = self._masker.text(value)
        value = _PEM.sub(PRIVATE_KEY, value)
        value = _PEM_DANGLING.sub(PRIVATE_KEY, value)
        value = _VAULT_BLOCK.sub(_vault_block, value)
        value = _VAULT.sub(VAULT, value)
        for shape in _TOKEN_SHAPES:
            value = shape.sub(TOKEN, value)
        value = _AWS_SECRET.sub(lambda m: m[1] + TOKEN, value)
        value = _BEARER.sub(lambda m: m[1] + TOKEN, value)
        value = _URL_PASSWORD.sub(_url_password, value)
        value = _QUOTED.sub(_by_yaml_key, value)
        value = _ESCAPED.sub(_by_key, value)
        value = _BLOCK.sub(_block, value)
        value = _LINE.sub(_by_yaml_key, value)
        value = _ASSIGN.sub(_by_key, value)
        value = _FLOW.sub(_by_key, value)
        value = _INLINE.sub(_by_key, value)
        value = _FLAG.sub(_flag, value)
        value = _HEX.sub(_hex_run, value)
        return _RUN.sub(_random_run, value)

    def value(self, obj: Any) -> Any:
        """``obj`` redacted: strings as by :meth:`text`, and by key (``{"password": …}``) in mappings."""
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, list | tuple):
            return [self.value(item) for item in obj]
        if isinstance(obj, dict):
            return self._mapping(obj)
        return obj

    def _mapping(self, obj: dict[Any, Any]) -> dict[Any, Any]:
        hidden = _truthy(obj.get("no_log")) or _truthy(obj.get("_ansible_no_log"))
        is_result = hidden and not ({"res", "result"} & set(obj)) and _truthy(obj.get("_ansible_no_log"))
        out: dict[Any, Any] = {}
        for key, item in obj.items():
            if (hidden and key in _NO_LOG_HIDE) or (is_result and key not in _NO_LOG_KEEP):
                out[key] = MARKER
            elif isinstance(key, str) and is_secret_key(key):
                out[key] = self._secret_item(item)
            else:
                out[key] = self.value(item)
        return out

    def _secret_item(self, item: Any) -> Any:
        if isinstance(item, str):
            return item if keeps(item) else MARKER
        if isinstance(item, int | float) and not isinstance(item, bool):
            return MARKER
        if isinstance(item, list | tuple):
            return [self._secret_item(element) for element in item]
        return self.value(item)

    def messages(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """OpenAI-format chat messages, redacted: their text content and tool-call arguments."""
        return [self._message(message) for message in messages]

    def _message(self, message: dict[str, Any]) -> dict[str, Any]:
        out = dict(message)
        content = message.get("content")
        if isinstance(content, str):
            out["content"] = self._text_or_json(content)
        elif isinstance(content, list):
            out["content"] = [self._part(part) for part in content]
        if isinstance(message.get("tool_calls"), list):
            out["tool_calls"] = [self._tool_call(call) for call in message["tool_calls"]]
        if isinstance(message.get("function_call"), dict):
            out["function_call"] = self._function(message["function_call"])
        return out

    def _part(self, part: Any) -> Any:
        if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
            return {**part, "text": self._text_or_json(part["text"])}
        return part

    def _tool_call(self, call: Any) -> Any:
        if isinstance(call, dict) and isinstance(call.get("function"), dict):
            return {**call, "function": self._function(call["function"])}
        return call

    def _function(self, function: dict[str, Any]) -> dict[str, Any]:
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            return dict(function)
        return {**function, "arguments": self._text_or_json(arguments)}

    def _text_or_json(self, text: str) -> str:
        """JSON (tool arguments, tool results) is redacted as data, where keys tell what is secret."""
        if text.lstrip()[:1] in ("{", "["):
            try:
                parsed = json.loads(text)
            except ValueError:
                pass
            else:
                redacted = self.value(parsed)
                return text if redacted == parsed else json.dumps(redacted, ensure_ascii=False)
        return self.text(text)


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in ("true", "yes"))


async def organization_secrets(secret_key: str, organization_id: uuid.UUID) -> list[str]:
    """Every secret value of the organization's credentials, to build its :class:`Redactor`."""
    ids = await Credential.select(Credential.id).where(Credential.organization == organization_id).output(as_list=True)
    revealed = await reveal(secret_key, organization_id, list(ids))
    return list(dict.fromkeys(secret_values(revealed.values())))
