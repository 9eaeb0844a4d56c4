"""Authenticated encryption of secrets at rest, with keys derived from ``WINDFLOW_SECRET_KEY``.

A sealed value is ``wf1.<key id>.<base64url(nonce + ciphertext)>``: AES-256-GCM under a key that
HKDF-SHA256 derives from the secret key. The caller's associated data (a row id) is bound in, so a
ciphertext copied to another row does not open; the header is bound in as well. The key id tells
which key sealed a value without trying to open it, which is what key rotation needs.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from server.errors import WindFlowError

VERSION = "wf1"
ENCRYPTION_INFO = b"windflow credentials v1"
FINGERPRINT_INFO = b"windflow fingerprints v1"
NONCE_SIZE = 12
KEY_ID_LENGTH = 12


class SealedSecretError(WindFlowError):
    """A sealed value cannot be opened: another key sealed it, or it was altered."""

    code = "SECRET_UNREADABLE"
    title = "Secret cannot be decrypted"


@functools.lru_cache(maxsize=16)
def derive_key(secret_key: str, info: bytes = ENCRYPTION_INFO) -> bytes:
    """A 256-bit key for one purpose (``info``), so no two purposes share key material."""
    if not secret_key:
        raise SealedSecretError("no secret key is configured")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info)
    return hkdf.derive(secret_key.encode())


@functools.lru_cache(maxsize=16)
def key_id(secret_key: str) -> str:
    """A short public name of the encryption key: equal for equal keys, revealing nothing else."""
    return hmac.new(derive_key(secret_key), b"windflow key id", hashlib.sha256).hexdigest()[:KEY_ID_LENGTH]


def keyed_digest(secret_key: str, data: bytes) -> str:
    """``hmac-sha256:<16 hex>``: tells secrets apart without allowing offline guessing of them."""
    digest = hmac.new(derive_key(secret_key, FINGERPRINT_INFO), data, hashlib.sha256).hexdigest()
    return f"hmac-sha256:{digest[:16]}"


def _header(kid: str) -> str:
    return f"{VERSION}.{kid}"


def _associated(header: str, aad: bytes) -> bytes:
    return header.encode() + b"\x00" + aad


def seal(secret_key: str, plaintext: bytes, aad: bytes) -> str:
    """Encrypt ``plaintext`` bound to ``aad`` (e.g. the id of the row that stores it)."""
    header = _header(key_id(secret_key))
    nonce = os.urandom(NONCE_SIZE)
    ciphertext = AESGCM(derive_key(secret_key)).encrypt(nonce, plaintext, _associated(header, aad))
    body = base64.urlsafe_b64encode(nonce + ciphertext).rstrip(b"=").decode()
    return f"{header}.{body}"


def sealed_key_id(token: str) -> str:
    """The id of the key that sealed ``token``."""
    return _split(token)[1]


def _split(token: str) -> tuple[str, str, str]:
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != VERSION or not parts[1]:
        raise SealedSecretError(f"not a sealed value (expected {VERSION}.<key id>.<data>)")
    return parts[0], parts[1], parts[2]


def open_sealed(secret_key: str, token: str, aad: bytes) -> bytes:
    """Decrypt a value made by :func:`seal` with the same key and ``aad``, or raise."""
    _, kid, body = _split(token)
    current = key_id(secret_key)
    if kid != current:
        raise SealedSecretError(f"sealed under key {kid}, not the current key {current}")
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise SealedSecretError("the sealed value is damaged") from None
    if len(raw) <= NONCE_SIZE:
        raise SealedSecretError("the sealed value is damaged")
    try:
        return AESGCM(derive_key(secret_key)).decrypt(
            raw[:NONCE_SIZE], raw[NONCE_SIZE:], _associated(_header(kid), aad)
        )
    except InvalidTag:
        raise SealedSecretError("the sealed value was altered or belongs to another record") from None
