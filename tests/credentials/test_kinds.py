"""Each kind of credential: what it accepts, what it refuses (and where), what it derives."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest

from server.credentials import kinds
from server.errors import ValidationFailed
from tests.credentials.samples import KUBE_TOKEN, kubeconfig, ssh_keypair, tls_pair, valid_inputs

KEY = "kinds-test-secret-key-0123456789-abcdefghijkl"


def refused(kind: str, inputs: dict[str, Any]) -> dict[str, str]:
    """The field errors of ``inputs``, by path."""
    with pytest.raises(ValidationFailed) as caught:
        kinds.check(KEY, kind, inputs)
    return {error.field: error.message for error in caught.value.errors}


@pytest.mark.parametrize("kind", kinds.KIND_NAMES)
def test_every_kind_accepts_valid_inputs_and_keeps_secrets_apart(kind: str, tmp_path: Path) -> None:
    inputs = valid_inputs(kind, tmp_path)
    spec = kinds.KINDS[kind]

    checked = kinds.check(KEY, kind, inputs)

    assert set(checked.secret) <= set(spec.secret_names)
    assert set(checked.inputs) <= set(spec.public_names)
    assert set(checked.secret) | set(checked.inputs) >= set(inputs)
    assert all(inputs[name].strip() == value.strip() for name, value in checked.secret.items())
    assert re.fullmatch(r"SHA256:[A-Za-z0-9+/]{43}|hmac-sha256:[0-9a-f]{16}", checked.fingerprint)
    assert all(value not in repr(checked) for value in checked.secret.values())


# ssh_key


@pytest.mark.parametrize(
    ("key_type", "pem"), [("ed25519", False), ("ecdsa", False), ("rsa", False), ("rsa", True), ("ecdsa", True)]
)
def test_ssh_fingerprint_is_the_one_ssh_keygen_prints(key_type: str, pem: bool, tmp_path: Path) -> None:
    pair = ssh_keypair(tmp_path, key_type, pem=pem)

    checked = kinds.check(KEY, "ssh_key", {"private_key": pair.private_key})

    assert checked.fingerprint == pair.fingerprint
    assert checked.metadata["public_key"] == " ".join(pair.public_key.split()[:2])
    assert checked.metadata["key_type"] == pair.public_key.split()[0]
    assert "username" not in checked.inputs


def test_an_encrypted_ssh_key_needs_its_passphrase(tmp_path: Path) -> None:
    pair = ssh_keypair(tmp_path, passphrase="passphrase")

    checked = kinds.check(KEY, "ssh_key", {"private_key": pair.private_key, "passphrase": "passphrase"})
    assert checked.fingerprint == pair.fingerprint
    assert checked.secret["passphrase"] == "passphrase"

    wrong = refused("ssh_key", {"private_key": pair.private_key, "passphrase": "not-the-passphrase"})
    assert wrong == {"body.inputs.passphrase": "wrong passphrase for the private key"}
    missing = refused("ssh_key", {"private_key": pair.private_key})
    assert list(missing) == ["body.inputs.passphrase"]
    assert "encrypted" in missing["body.inputs.passphrase"]


def test_an_encrypted_pem_key_with_a_wrong_passphrase(tmp_path: Path) -> None:
    pair = ssh_keypair(tmp_path, "rsa", passphrase="pem-passphrase", pem=True)

    assert kinds.check(KEY, "ssh_key", {"private_key": pair.private_key, "passphrase": "pem-passphrase"})
    assert list(refused("ssh_key", {"private_key": pair.private_key, "passphrase": "nope"})) == [
        "body.inputs.passphrase"
    ]


def test_a_passphrase_for_an_unencrypted_key_is_refused(tmp_path: Path) -> None:
    pair = ssh_keypair(tmp_path)

    assert list(refused("ssh_key", {"private_key": pair.private_key, "passphrase": "x"})) == ["body.inputs.passphrase"]


@pytest.mark.parametrize(
    "text",
    [
        "hello",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKq test",
    ],
)
def test_text_that_is_not_a_private_key(text: str) -> None:
    errors = refused("ssh_key", {"private_key": text})

    assert list(errors) == ["body.inputs.private_key"]
    assert errors["body.inputs.private_key"].startswith("not a private key")


def test_a_public_key_or_certificate_is_not_a_private_key(tmp_path: Path) -> None:
    assert list(refused("ssh_key", {"private_key": ssh_keypair(tmp_path).public_key})) == ["body.inputs.private_key"]
    assert list(refused("ssh_key", {"private_key": tls_pair().cert})) == ["body.inputs.private_key"]


def test_a_key_pasted_with_windows_line_endings_is_stored_as_ssh_needs_it(tmp_path: Path) -> None:
    pair = ssh_keypair(tmp_path)

    checked = kinds.check(KEY, "ssh_key", {"private_key": "\n" + pair.private_key.replace("\n", "\r\n") + "  "})

    assert checked.secret["private_key"] == pair.private_key
    assert checked.fingerprint == pair.fingerprint


def test_an_ssh_key_type_ssh_cannot_use_is_refused() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import x25519

    pem = x25519.X25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    errors = refused("ssh_key", {"private_key": pem.decode()})
    assert errors == {"body.inputs.private_key": "not an SSH key type (use Ed25519, ECDSA or RSA)"}


# password, become, vault_password, registry, llm_api_key


def test_password_needs_username_and_password() -> None:
    assert refused("password", {}) == {"body.inputs.username": "is required", "body.inputs.password": "is required"}
    assert refused("password", {"username": "  ", "password": ""}).keys() == {
        "body.inputs.username",
        "body.inputs.password",
    }


def test_secret_values_are_kept_exactly_and_public_ones_trimmed() -> None:
    checked = kinds.check(KEY, "password", {"username": " root ", "password": " spaced out "})

    assert checked.inputs == {"username": "root"}
    assert checked.secret == {"password": " spaced out "}


def test_become_defaults_to_sudo_and_knows_its_methods() -> None:
    assert kinds.check(KEY, "become", {"password": "x"}).inputs == {"method": "sudo"}
    errors = refused("become", {"method": "magic", "password": "x"})
    assert list(errors) == ["body.inputs.method"]
    assert "sudo, su, doas, pbrun, pfexec, runas" in errors["body.inputs.method"]


@pytest.mark.parametrize(
    ("kind", "inputs", "field"),
    [
        ("vault_password", {"vault_id": "a@b", "password": "x"}, "vault_id"),
        ("vault_password", {"vault_id": "prod"}, "password"),
        ("registry", {"url": "not a url", "password": "x"}, "url"),
        ("registry", {"password": "x"}, "url"),
        ("llm_api_key", {"provider": "acme", "api_key": "x"}, "provider"),
        ("llm_api_key", {"provider": "openai", "api_key": "x", "api_base": "ftp://host"}, "api_base"),
        ("llm_api_key", {"provider": "openai"}, "api_key"),
    ],
)
def test_invalid_simple_kinds(kind: str, inputs: dict[str, Any], field: str) -> None:
    assert list(refused(kind, inputs)) == [f"body.inputs.{field}"]


@pytest.mark.parametrize(
    "url", ["docker.io", "registry.example.com:5000/team", "https://ghcr.io", "http://10.0.0.5:5000"]
)
def test_registry_urls(url: str) -> None:
    assert kinds.check(KEY, "registry", {"url": url, "password": "x"}).inputs["url"] == url


def test_llm_api_key_with_a_base_url() -> None:
    inputs = {"provider": "openai_compatible", "api_base": "http://127.0.0.1:8080/v1", "api_key": "k"}
    assert kinds.check(KEY, "llm_api_key", inputs).inputs["api_base"] == "http://127.0.0.1:8080/v1"


# kubeconfig


def test_kubeconfig_derives_contexts_and_clusters() -> None:
    checked = kinds.check(KEY, "kubeconfig", {"kubeconfig": kubeconfig(), "context": "prod"})

    assert checked.inputs == {"context": "prod"}
    assert checked.metadata == {
        "contexts": ["dev", "prod"],
        "clusters": [
            {"name": "lab", "server": "https://10.0.0.1:6443"},
            {"name": "prod", "server": "https://k8s.example.com"},
        ],
        "current_context": "dev",
    }
    assert KUBE_TOKEN not in repr(checked.metadata)


def test_kubeconfig_context_must_exist() -> None:
    assert list(refused("kubeconfig", {"kubeconfig": kubeconfig(), "context": "staging"})) == ["body.inputs.context"]


@pytest.mark.parametrize(
    "text",
    [
        f"users: [{{name: a, user: {{token: {KUBE_TOKEN}}}}}\nclusters: [",
        f"- {KUBE_TOKEN}",
        kubeconfig().replace("users:", "people:"),
        kubeconfig().replace("current-context: dev", "current-context: nowhere"),
        kubeconfig().replace("user: admin, namespace", "user: ghost, namespace"),
        "clusters: []\ncontexts: []\nusers: []",
    ],
)
def test_kubeconfig_that_is_not_one_is_refused_without_quoting_it(text: str) -> None:
    errors = refused("kubeconfig", {"kubeconfig": text})

    assert list(errors) == ["body.inputs.kubeconfig"]
    assert KUBE_TOKEN not in errors["body.inputs.kubeconfig"]


# docker_tls


def test_docker_tls_checks_certificates_and_the_key_pair() -> None:
    ca, client, other = tls_pair("ca"), tls_pair("client"), tls_pair("other")

    checked = kinds.check(KEY, "docker_tls", {"ca_cert": ca.cert, "client_cert": client.cert, "client_key": client.key})
    assert checked.inputs["verify"] is True
    assert checked.secret == {"client_key": client.key}
    assert kinds.check(KEY, "docker_tls", {"ca_cert": ca.cert + other.cert, "verify": False}).inputs["verify"] is False

    assert refused("docker_tls", {"client_cert": client.cert, "client_key": other.key}) == {
        "body.inputs.client_key": "does not match client_cert"
    }
    assert list(refused("docker_tls", {"client_cert": client.cert})) == ["body.inputs.client_key"]
    assert list(refused("docker_tls", {"client_key": client.key})) == ["body.inputs.client_cert"]
    errors = refused("docker_tls", {"ca_cert": client.key, "client_cert": client.cert, "client_key": client.cert})
    assert errors.keys() == {"body.inputs.ca_cert", "body.inputs.client_key"}


def test_docker_tls_checks_types_before_parsing_certificates() -> None:
    assert refused("docker_tls", {"ca_cert": "nope", "verify": "yes"}) == {
        "body.inputs.verify": "must be true or false"
    }
    assert refused("docker_tls", {"ca_cert": "nope"}) == {"body.inputs.ca_cert": "not a PEM certificate"}


# generic rules


def test_an_unknown_kind_is_named_on_body_kind() -> None:
    assert list(refused("telepathy", {})) == ["body.kind"]


def test_unknown_and_mistyped_inputs_are_each_named() -> None:
    errors = refused("password", {"username": 7, "password": ["x"], "pasword": "x", "notes": None})

    assert errors == {
        "body.inputs.pasword": "unknown field for kind password; expected one of: username, password",
        "body.inputs.notes": "unknown field for kind password; expected one of: username, password",
        "body.inputs.username": "must be a string",
        "body.inputs.password": "must be a string",
    }


def test_nul_characters_and_oversized_values_are_refused() -> None:
    errors = refused("password", {"username": "a\x00b", "password": "x" * 5000})

    assert errors == {
        "body.inputs.username": "must not contain NUL characters",
        "body.inputs.password": "must be at most 4096 characters",
    }


def test_keyed_fingerprints_tell_secrets_apart_but_are_not_plain_hashes() -> None:
    first = kinds.check(KEY, "password", {"username": "a", "password": "p1"}).fingerprint
    again = kinds.check(KEY, "password", {"username": "b", "password": "p1"}).fingerprint
    other = kinds.check(KEY, "password", {"username": "a", "password": "p2"}).fingerprint
    other_key = kinds.check(KEY + "x", "password", {"username": "a", "password": "p1"}).fingerprint

    assert first == again
    assert len({first, other, other_key}) == 3
    assert first.removeprefix("hmac-sha256:") not in hashlib.sha256(b"p1").hexdigest()


def test_error_messages_never_quote_secret_values(tmp_path: Path) -> None:
    pair = ssh_keypair(tmp_path, passphrase="right-passphrase")
    with pytest.raises(ValidationFailed) as caught:
        kinds.check(KEY, "ssh_key", {"private_key": pair.private_key, "passphrase": "wrong-passphrase-x1"})

    text = str(caught.value) + repr(caught.value.errors)
    assert "wrong-passphrase-x1" not in text
    assert pair.private_key.splitlines()[2] not in text
