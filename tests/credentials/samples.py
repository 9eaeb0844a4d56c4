"""Real test material: SSH keys from ``ssh-keygen``, X.509 certificates, kubeconfigs, valid inputs."""

from __future__ import annotations

import datetime as dt
import subprocess  # noqa: S404
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class KeyPair:
    private_key: str
    public_key: str
    fingerprint: str  # as `ssh-keygen -lf` prints it


def ssh_keypair(tmp_path: Path, key_type: str = "ed25519", passphrase: str = "", pem: bool = False) -> KeyPair:
    path = tmp_path / f"id_{key_type}_{len(list(tmp_path.glob('id_*')))}"
    command = ["ssh-keygen", "-q", "-t", key_type, "-N", passphrase, "-C", "test@windflow", "-f", str(path)]
    if key_type == "rsa":
        command += ["-b", "2048"]
    if pem:
        command += ["-m", "PEM"]
    subprocess.run(command, check=True, capture_output=True, timeout=60)
    listed = subprocess.run(["ssh-keygen", "-lf", f"{path}.pub"], check=True, capture_output=True, text=True)
    return KeyPair(path.read_text(), Path(f"{path}.pub").read_text(), listed.stdout.split()[1])


@dataclass(frozen=True)
class Tls:
    cert: str
    key: str


def tls_pair(common_name: str = "client") -> Tls:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return Tls(cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode())


KUBE_TOKEN = "kube-token-s3cr3t-9f8e7d6c"


def kubeconfig(token: str = KUBE_TOKEN) -> str:
    return f"""\
apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: lab
  cluster:
    server: https://10.0.0.1:6443
    certificate-authority-data: ZmFrZQ==
- name: prod
  cluster:
    server: https://k8s.example.com
contexts:
- name: dev
  context: {{cluster: lab, user: admin, namespace: default}}
- name: prod
  context: {{cluster: prod, user: admin}}
users:
- name: admin
  user:
    token: {token}
"""


def valid_inputs(kind: str, tmp_path: Path) -> dict[str, Any]:
    """One valid set of inputs per kind, each secret a distinctive string to search for."""
    if kind == "ssh_key":
        return {"username": "deploy", "private_key": ssh_keypair(tmp_path).private_key}
    if kind == "docker_tls":
        ca, client = tls_pair("ca"), tls_pair("client")
        return {"ca_cert": ca.cert, "client_cert": client.cert, "client_key": client.key, "tls_hostname": "docker1"}
    if kind == "kubeconfig":
        return {"kubeconfig": kubeconfig(), "context": "prod"}
    return {
        "password": {"username": "root", "password": "pw-s3cr3t-password-1a2b"},
        "become": {"method": "su", "password": "pw-s3cr3t-become-3c4d"},
        "vault_password": {"vault_id": "prod", "password": "pw-s3cr3t-vault-5e6f"},
        "registry": {"url": "registry.example.com:5000", "username": "ci", "password": "pw-s3cr3t-registry-7a8b"},
        "llm_api_key": {"provider": "openai", "model": "gpt-4o", "api_key": "sk-s3cr3t-llm-9c0d"},
        "stack_secrets": {"values": '{"db_password": "pw-s3cr3t-stack-1e2f"}'},
    }[kind]


def secret_markers(inputs: dict[str, Any], secret_fields: list[str]) -> list[str]:
    """Strings that must never appear outside the encrypted column: each secret, or its key lines."""
    markers = []
    for name in secret_fields:
        value = str(inputs[name])
        if name == "kubeconfig":
            markers.append(KUBE_TOKEN)
        elif value.startswith("-----"):  # a key: its later base64 lines hold the private part
            lines = [line for line in value.splitlines() if line and not line.startswith("-----")]
            markers += lines[len(lines) // 2 :]
        else:
            markers.append(value)
    return markers
