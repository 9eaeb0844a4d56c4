"""Re-encrypting every credential under a new secret key (``windflow secrets rotate``).

All or nothing: every credential is opened first, with the new key (already rotated) or the old
one; when any opens with neither, nothing is written. Otherwise all are re-sealed in one
transaction, and their keyed fingerprints are recomputed under the new key.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from server.credentials import crypto, kinds
from server.credentials.service import seal_secret, unseal_secret
from server.db.engine import atomic
from server.db.tables import Credential

KEYED_FINGERPRINT = "hmac-sha256:"


@dataclass(frozen=True)
class Rotation:
    rotated: int = 0
    current: int = 0
    unreadable: list[uuid.UUID] = field(default_factory=list)


def _key_of(token: str) -> str:
    try:
        return crypto.sealed_key_id(token)
    except crypto.SealedSecretError:
        return "unknown"


async def key_status() -> Counter[str]:
    """How many credentials each key id sealed."""
    rows = await Credential.select(Credential.secret)
    return Counter(_key_of(row["secret"]) for row in rows)


async def rotate(new_key: str, old_key: str) -> Rotation:
    """Re-seal under ``new_key`` every credential that ``old_key`` sealed."""
    async with atomic():
        rows = await Credential.select(Credential.id, Credential.kind, Credential.secret, Credential.fingerprint)
        opened: dict[uuid.UUID, dict[str, str]] = {}
        current, unreadable = 0, []
        for row in rows:
            try:
                unseal_secret(new_key, row["id"], row["secret"])
                current += 1
                continue
            except crypto.SealedSecretError:
                pass
            try:
                opened[row["id"]] = unseal_secret(old_key, row["id"], row["secret"])
            except crypto.SealedSecretError:
                unreadable.append(row["id"])
        if unreadable:
            return Rotation(current=current, unreadable=sorted(unreadable))
        for row in rows:
            secret = opened.get(row["id"])
            if secret is None:
                continue
            values: dict[Any, Any] = {Credential.secret: seal_secret(new_key, row["id"], secret)}
            if row["fingerprint"].startswith(KEYED_FINGERPRINT):
                values[Credential.fingerprint] = kinds.secret_fingerprint(new_key, row["kind"], secret)
            await Credential.update(values).where(Credential.id == row["id"])
    return Rotation(rotated=len(opened), current=current)
