"""Reading the keys, certificates and kubeconfigs that credentials hold.

Error messages never quote the input, nor the parser's own message (which may): the input is
secret. The parsers are CPU-bound (bcrypt for an encrypted OpenSSH key); callers run them in a thread.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any, cast

import yaml
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
    load_ssh_private_key,
)

OPENSSH_HEADER = b"-----BEGIN OPENSSH PRIVATE KEY-----"


class FormatError(ValueError):
    """The text is not what the field expects; the message is safe to show."""


class PassphraseError(FormatError):
    """The key is encrypted and the passphrase is missing or wrong, or it is not and one was given."""


@dataclass(frozen=True)
class SshKey:
    key_type: str
    public_key: str
    fingerprint: str


@dataclass(frozen=True)
class Kubeconfig:
    contexts: list[str]
    clusters: list[dict[str, str]]
    current_context: str | None


def pem_text(value: str) -> str:
    """One line ending style and a final newline, which ``ssh`` and TLS libraries insist on."""
    return value.replace("\r\n", "\n").strip() + "\n"


def load_private_key(text: str, passphrase: str | None) -> PrivateKeyTypes:
    """An OpenSSH or PEM private key, decrypted with ``passphrase`` when it is encrypted."""
    data = text.encode()
    # Typed loosely: cryptography's two loaders declare slightly different unions of key types.
    loader: Any = load_ssh_private_key if OPENSSH_HEADER in data else load_pem_private_key
    try:
        key: PrivateKeyTypes = loader(data, None)
    except TypeError:  # encrypted
        if not passphrase:
            raise PassphraseError("the private key is encrypted; give its passphrase") from None
        try:
            return cast(PrivateKeyTypes, loader(data, passphrase.encode()))
        except (ValueError, TypeError):
            raise PassphraseError("wrong passphrase for the private key") from None
        except UnsupportedAlgorithm:
            raise FormatError("the private key is encrypted with an unsupported cipher") from None
    except (ValueError, UnsupportedAlgorithm):
        raise FormatError("not a private key (expected OpenSSH or PEM format)") from None
    if passphrase:
        raise PassphraseError("the private key is not encrypted; leave the passphrase out")
    return key


def openssh_fingerprint(public_key: str) -> str:
    """``SHA256:<base64>`` of an OpenSSH public key line, as ``ssh-keygen -lf`` prints it."""
    blob = base64.b64decode(public_key.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def ssh_key(text: str, passphrase: str | None) -> SshKey:
    key = load_private_key(text, passphrase)
    try:
        line = key.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise FormatError("not an SSH key type (use Ed25519, ECDSA or RSA)") from None
    return SshKey(key_type=line.split()[0], public_key=line, fingerprint=openssh_fingerprint(line))


def certificates(text: str) -> list[x509.Certificate]:
    """One or more PEM certificates (a CA bundle may hold several)."""
    try:
        return x509.load_pem_x509_certificates(text.encode())
    except ValueError:
        raise FormatError("not a PEM certificate") from None


def key_matches(certificate: x509.Certificate, key: PrivateKeyTypes) -> bool:
    spki = (Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    try:
        return bool(certificate.public_key().public_bytes(*spki) == key.public_key().public_bytes(*spki))
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return False


def _names(doc: dict[str, Any], section: str) -> dict[str, dict[str, Any]]:
    entries = doc.get(section)
    if not isinstance(entries, list) or not entries:
        raise FormatError(f"not a kubeconfig: '{section}' is missing or empty")
    named: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"]:
            raise FormatError(f"not a kubeconfig: every entry of '{section}' needs a name")
        body = entry.get(section.removesuffix("s"))
        named[entry["name"]] = body if isinstance(body, dict) else {}
    return named


def kubeconfig(text: str) -> Kubeconfig:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        raise FormatError("not valid YAML") from None
    if not isinstance(doc, dict):
        raise FormatError("not a kubeconfig (expected a YAML mapping)")
    clusters, contexts, users = (_names(doc, section) for section in ("clusters", "contexts", "users"))
    for name, context in contexts.items():
        cluster, user = context.get("cluster"), context.get("user")
        if not isinstance(cluster, str) or cluster not in clusters or not isinstance(user, str) or user not in users:
            raise FormatError(f"context {name!r} names a cluster or user the kubeconfig does not define")
    current = doc.get("current-context") or None
    if current is not None and (not isinstance(current, str) or current not in contexts):
        raise FormatError("current-context names no context of the kubeconfig")
    servers = [{"name": name, "server": str(body.get("server", ""))} for name, body in clusters.items()]
    return Kubeconfig(contexts=list(contexts), clusters=servers, current_context=current)
