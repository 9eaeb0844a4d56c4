"""Sealing secrets: what opens, and everything that must not."""

from __future__ import annotations

import base64
import re

import pytest

from server.credentials import crypto

KEY_A = "key-a-0123456789-abcdefghijklmnopqrstuvwxyz"
KEY_B = "key-b-0123456789-abcdefghijklmnopqrstuvwxyz"
AAD = b"\x01" * 16


def test_a_sealed_value_opens_with_the_same_key_and_associated_data() -> None:
    token = crypto.seal(KEY_A, b"hunter2 and more", AAD)

    assert crypto.open_sealed(KEY_A, token, AAD) == b"hunter2 and more"
    assert re.fullmatch(r"wf1\.[0-9a-f]{12}\.[A-Za-z0-9_-]+", token)
    assert b"hunter2" not in token.encode()
    assert crypto.sealed_key_id(token) == crypto.key_id(KEY_A)


def test_every_seal_uses_a_fresh_nonce() -> None:
    assert crypto.seal(KEY_A, b"same", AAD) != crypto.seal(KEY_A, b"same", AAD)


def test_key_ids_tell_keys_apart_without_revealing_them() -> None:
    assert crypto.key_id(KEY_A) == crypto.key_id(KEY_A)
    assert crypto.key_id(KEY_A) != crypto.key_id(KEY_B)
    assert crypto.key_id(KEY_A) not in KEY_A


def _flip(token: str, position: int) -> str:
    header, body = token.rsplit(".", 1)
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    raw[position] ^= 0x01
    return f"{header}.{base64.urlsafe_b64encode(bytes(raw)).rstrip(b'=').decode()}"


@pytest.mark.parametrize("position", [0, 12, -1], ids=["nonce", "ciphertext", "tag"])
def test_a_tampered_value_does_not_open(position: int) -> None:
    token = crypto.seal(KEY_A, b"secret", AAD)

    with pytest.raises(crypto.SealedSecretError, match="altered"):
        crypto.open_sealed(KEY_A, _flip(token, position), AAD)


def test_a_value_copied_to_another_record_does_not_open() -> None:
    token = crypto.seal(KEY_A, b"secret", AAD)

    with pytest.raises(crypto.SealedSecretError, match="another record"):
        crypto.open_sealed(KEY_A, token, b"\x02" * 16)


def test_another_key_does_not_open_it() -> None:
    token = crypto.seal(KEY_A, b"secret", AAD)

    with pytest.raises(crypto.SealedSecretError, match="sealed under key"):
        crypto.open_sealed(KEY_B, token, AAD)


def test_a_relabelled_key_id_does_not_help() -> None:
    token = crypto.seal(KEY_A, b"secret", AAD)
    relabelled = token.replace(crypto.key_id(KEY_A), crypto.key_id(KEY_B), 1)

    with pytest.raises(crypto.SealedSecretError):
        crypto.open_sealed(KEY_B, relabelled, AAD)


@pytest.mark.parametrize(
    "token", ["", "plain text", "wf1..abc", "wf2.abc.def", "wf1.{kid}.!!!", "wf1.{kid}.AAAA", "a.b.c.d"]
)
def test_malformed_values_raise_the_domain_error(token: str) -> None:
    with pytest.raises(crypto.SealedSecretError):
        crypto.open_sealed(KEY_A, token.format(kid=crypto.key_id(KEY_A)), AAD)


def test_keyed_digests_depend_on_the_key() -> None:
    digest = crypto.keyed_digest(KEY_A, b"password")

    assert re.fullmatch(r"hmac-sha256:[0-9a-f]{16}", digest)
    assert digest == crypto.keyed_digest(KEY_A, b"password")
    assert digest != crypto.keyed_digest(KEY_B, b"password")
    assert digest != crypto.keyed_digest(KEY_A, b"passwore")


def test_no_secret_key_is_refused() -> None:
    with pytest.raises(crypto.SealedSecretError, match="no secret key"):
        crypto.seal("", b"secret", AAD)
