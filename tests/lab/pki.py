"""The lab cluster's certificates and keys, made with openssl: a CA, the API server's serving
certificate, its client certificate for the kubelet, and the service-account key pair."""

from __future__ import annotations

from pathlib import Path

from tests.lab.procs import run

LOOPBACK = "127.0.0.1"
SERVICE_IP = "10.214.0.1"


def make_pki(pki: Path) -> None:
    def openssl(*args: str) -> None:
        run(["openssl", *args], cwd=pki, timeout=60)

    openssl("req", "-x509", "-new", "-nodes", "-newkey", "rsa:2048", "-sha256", "-days", "30",
            "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=windflow-lab-ca")  # fmt: skip
    openssl("genrsa", "-out", "sa.key", "2048")
    openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub")
    names = (
        f"IP:{LOOPBACK},DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:{SERVICE_IP}"
    )
    leaves = {
        "apiserver": ("/CN=kube-apiserver", f"subjectAltName={names}\nextendedKeyUsage=serverAuth\n"),
        "kubelet-client": ("/O=system:masters/CN=kube-apiserver-kubelet-client", "extendedKeyUsage=clientAuth\n"),
    }
    for name, (subject, extensions) in leaves.items():
        (pki / f"{name}.ext").write_text("keyUsage=critical,digitalSignature,keyEncipherment\n" + extensions)
        openssl(
            "req",
            "-new",
            "-nodes",
            "-newkey",
            "rsa:2048",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            "-subj",
            subject,
        )
        openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-sha256", "-days", "30", "-extfile", f"{name}.ext", "-out", f"{name}.crt",
        )  # fmt: skip
    for key in pki.glob("*.key"):
        key.chmod(0o600)
