"""What each kind of credential holds: public fields, secret fields, and how both are checked.

Public fields are stored and shown as they are; secret fields are encrypted and never shown again.
:func:`check` validates one credential's inputs and returns what to store: the public inputs, the
metadata derived from them (an SSH key's public half, a kubeconfig's contexts) and a fingerprint
that tells two secrets apart without revealing them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from server.credentials import formats
from server.credentials.crypto import keyed_digest
from server.errors import FieldError, ValidationFailed

SHORT = 255
URL = 2048
PEM = 65_536
PASSWORD = 4096
KUBECONFIG = 262_144
STACK_SECRETS = 262_144


@dataclass(frozen=True)
class Field:
    secret: bool = False
    required: bool = False
    boolean: bool = False
    default: str | bool | None = None
    choices: tuple[str, ...] = ()
    max_length: int = SHORT
    pattern: str = ""
    hint: str = ""
    pem: bool = False

    def clean(self, raw: Any) -> tuple[str | bool | None, str | None]:
        """(value, None) or (None, message); a missing optional field gives its default."""
        if isinstance(raw, str) and not self.secret:
            raw = raw.strip()
        if raw is None or raw == "":
            return (None, "is required") if self.required else (self.default, None)
        if self.boolean:
            return (raw, None) if isinstance(raw, bool) else (None, "must be true or false")
        if not isinstance(raw, str):
            return None, "must be a string"
        if "\x00" in raw:
            return None, "must not contain NUL characters"
        if len(raw) > self.max_length:
            return None, f"must be at most {self.max_length} characters"
        if self.choices and raw not in self.choices:
            return None, "must be one of: " + ", ".join(self.choices)
        if self.pattern and not re.fullmatch(self.pattern, raw):
            return None, self.hint
        return (formats.pem_text(raw) if self.pem else raw), None


@dataclass(frozen=True)
class Derived:
    metadata: dict[str, Any] = field(default_factory=dict)
    fingerprint: str | None = None


Public = dict[str, Any]
Secret = dict[str, str]
Deriver = Callable[[Public, Secret, list[FieldError]], Derived]


@dataclass(frozen=True)
class Kind:
    name: str
    fields: dict[str, Field]
    derive: Deriver | None = None

    @property
    def public_names(self) -> list[str]:
        return [name for name, spec in self.fields.items() if not spec.secret]

    @property
    def secret_names(self) -> list[str]:
        return [name for name, spec in self.fields.items() if spec.secret]


@dataclass(frozen=True)
class Checked:
    """A credential's validated inputs, ready to store."""

    inputs: Public
    metadata: dict[str, Any]
    secret: Secret = field(repr=False)
    fingerprint: str


def _path(name: str) -> str:
    return f"body.inputs.{name}"


def _derive_ssh_key(public: Public, secret: Secret, errors: list[FieldError]) -> Derived:
    try:
        key = formats.ssh_key(secret["private_key"], secret.get("passphrase"))
    except formats.PassphraseError as exc:
        errors.append(FieldError(_path("passphrase"), str(exc)))
        return Derived()
    except formats.FormatError as exc:
        errors.append(FieldError(_path("private_key"), str(exc)))
        return Derived()
    return Derived({"public_key": key.public_key, "key_type": key.key_type}, key.fingerprint)


def _derive_kubeconfig(public: Public, secret: Secret, errors: list[FieldError]) -> Derived:
    try:
        config = formats.kubeconfig(secret["kubeconfig"])
    except formats.FormatError as exc:
        errors.append(FieldError(_path("kubeconfig"), str(exc)))
        return Derived()
    context = public.get("context")
    if context is not None and context not in config.contexts:
        errors.append(FieldError(_path("context"), "the kubeconfig has no context of that name"))
    metadata = {"contexts": config.contexts, "clusters": config.clusters, "current_context": config.current_context}
    return Derived(metadata)


def _derive_docker_tls(public: Public, secret: Secret, errors: list[FieldError]) -> Derived:
    certs: dict[str, Any] = {}
    for name in ("ca_cert", "client_cert"):
        if name in public:
            try:
                certs[name] = formats.certificates(public[name])[0]
            except formats.FormatError as exc:
                errors.append(FieldError(_path(name), str(exc)))
    if "client_cert" in public and "client_key" not in secret:
        errors.append(FieldError(_path("client_key"), "is required when client_cert is given"))
    if "client_key" in secret and "client_cert" not in public:
        errors.append(FieldError(_path("client_cert"), "is required when client_key is given"))
    if "client_key" in secret:
        try:
            key = formats.load_private_key(secret["client_key"], None)
        except formats.PassphraseError:
            errors.append(FieldError(_path("client_key"), "the key is encrypted; Docker needs it unencrypted"))
        except formats.FormatError:
            errors.append(FieldError(_path("client_key"), "not a private key (expected PEM format)"))
        else:
            if "client_cert" in certs and not formats.key_matches(certs["client_cert"], key):
                errors.append(FieldError(_path("client_key"), "does not match client_cert"))
    return Derived()


_USERNAME = Field()
_PASSWORD = Field(secret=True, required=True, max_length=PASSWORD)
_URL_PATTERN = r"https?://[^\s/?#@]+(/\S*)?"

KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind(
            "ssh_key",
            {
                "username": _USERNAME,
                "private_key": Field(secret=True, required=True, max_length=PEM, pem=True),
                "passphrase": Field(secret=True, max_length=PASSWORD),
            },
            _derive_ssh_key,
        ),
        Kind("password", {"username": Field(required=True), "password": _PASSWORD}),
        Kind(
            "become",
            {
                "method": Field(default="sudo", choices=("sudo", "su", "doas", "pbrun", "pfexec", "runas")),
                "username": _USERNAME,
                "password": _PASSWORD,
            },
        ),
        Kind(
            "kubeconfig",
            {"context": Field(), "kubeconfig": Field(secret=True, required=True, max_length=KUBECONFIG)},
            _derive_kubeconfig,
        ),
        Kind(
            "docker_tls",
            {
                "ca_cert": Field(max_length=PEM, pem=True),
                "client_cert": Field(max_length=PEM, pem=True),
                "verify": Field(boolean=True, default=True),
                "tls_hostname": Field(pattern=r"[A-Za-z0-9.:\[\]-]+", hint="must be a host name"),
                "client_key": Field(secret=True, max_length=PEM, pem=True),
            },
            _derive_docker_tls,
        ),
        Kind(
            "vault_password",
            {"vault_id": Field(pattern=r"[^@\s]+", hint="must not contain '@' or spaces"), "password": _PASSWORD},
        ),
        Kind(
            "registry",
            {
                "url": Field(
                    required=True,
                    max_length=URL,
                    pattern=r"(https?://)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:\d{1,5})?(/\S*)?",
                    hint="must be a registry host (registry.example.com[:port][/path]) or an http(s) URL",
                ),
                "username": Field(),
                "password": _PASSWORD,
            },
        ),
        Kind(
            # The secret values of a stack deployment, as JSON; written by the stacks service.
            "stack_secrets",
            {"values": Field(secret=True, required=True, max_length=STACK_SECRETS)},
        ),
        Kind(
            "llm_api_key",
            {
                "provider": Field(
                    required=True, choices=("openai", "anthropic", "azure", "ollama", "openai_compatible")
                ),
                "api_base": Field(max_length=URL, pattern=_URL_PATTERN, hint="must be an http(s) URL"),
                "model": Field(),
                "api_key": Field(secret=True, required=True, max_length=PASSWORD),
            },
        ),
    )
}
KIND_NAMES: tuple[str, ...] = tuple(KINDS)


def kind_of(name: str) -> Kind:
    kind = KINDS.get(name)
    if kind is None:
        raise ValidationFailed.for_field("body.kind", "unknown kind; expected one of: " + ", ".join(KIND_NAMES))
    return kind


def secret_fingerprint(secret_key: str, kind: str, secret: Mapping[str, str]) -> str:
    """A keyed digest of the secret values: equal for equal secrets, useless for guessing them."""
    canonical = json.dumps({"kind": kind, "secret": dict(secret)}, sort_keys=True, separators=(",", ":"))
    return keyed_digest(secret_key, canonical.encode())


def _clean(kind: Kind, inputs: Mapping[str, Any]) -> tuple[Public, Secret]:
    errors = [
        FieldError(_path(name), f"unknown field for kind {kind.name}; expected one of: {', '.join(kind.fields)}")
        for name in inputs
        if name not in kind.fields
    ]
    public: Public = {}
    secret: Secret = {}
    for name, spec in kind.fields.items():
        value, message = spec.clean(inputs.get(name))
        if message is not None:
            errors.append(FieldError(_path(name), message))
        elif value is not None and spec.secret:
            secret[name] = str(value)
        elif value is not None:
            public[name] = value
    if errors:
        raise ValidationFailed("; ".join(f"{e.field}: {e.message}" for e in errors), errors)
    return public, secret


def check(secret_key: str, kind_name: str, inputs: Mapping[str, Any]) -> Checked:
    """Validate ``inputs`` for ``kind_name``, or raise :class:`ValidationFailed` naming each bad field."""
    kind = kind_of(kind_name)
    public, secret = _clean(kind, inputs)
    derived = Derived()
    if kind.derive is not None:
        errors: list[FieldError] = []
        derived = kind.derive(public, secret, errors)
        if errors:
            raise ValidationFailed("; ".join(f"{e.field}: {e.message}" for e in errors), errors)
    fingerprint = derived.fingerprint or secret_fingerprint(secret_key, kind.name, secret)
    return Checked(inputs=public, metadata=derived.metadata, secret=secret, fingerprint=fingerprint)
