"""The lab's SSH key pair: one ed25519 key, generated once per lab directory with ``ssh-keygen``.

Every lab target (sshd hosts, containers, the VM) trusts its public half, and every lab inventory
names its private half. A second, untrusted key exists to prove that a wrong key is refused.
"""

from __future__ import annotations

import fcntl
from dataclasses import dataclass
from pathlib import Path

from tests.lab.paths import LAB_DIR
from tests.lab.procs import run

KEYS_DIR = LAB_DIR / "keys"


@dataclass(frozen=True)
class KeyPair:
    private: Path

    @property
    def public(self) -> Path:
        return self.private.with_name(self.private.name + ".pub")

    @property
    def public_text(self) -> str:
        return self.public.read_text().strip() + "\n"


def lab_key(name: str = "id_ed25519") -> KeyPair:
    """The key pair ``name`` under ``LAB_DIR/keys`` (mode 0600), made on first use."""
    KEYS_DIR.mkdir(parents=True, exist_ok=True)
    KEYS_DIR.chmod(0o700)
    pair = KeyPair(KEYS_DIR / name)
    if pair.private.exists() and pair.public.exists():
        return pair
    with (KEYS_DIR / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (pair.private.exists() and pair.public.exists()):
            pair.private.unlink(missing_ok=True)
            pair.public.unlink(missing_ok=True)
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"windflow-lab-{name}", "-f", str(pair.private)])
    pair.private.chmod(0o600)
    pair.public.chmod(0o600)
    return pair


def wrong_key() -> KeyPair:
    """A key no lab target trusts."""
    return lab_key("id_ed25519_untrusted")
