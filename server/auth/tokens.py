"""Token material: signed access tokens (JWT, HS256) and opaque refresh and API tokens.

Opaque tokens are random, shown once and stored as SHA-256 digests: a database leak yields
nothing usable. Keys are derived from ``WINDFLOW_SECRET_KEY`` per purpose, so the same secret
never signs two kinds of thing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass

import jwt

from server.errors import AuthInvalid

ACCESS_ALGORITHM = "HS256"
API_TOKEN_PREFIX = "wfp_"  # noqa: S105 - a visible prefix, not a secret
REFRESH_TOKEN_PREFIX = "wfr_"  # noqa: S105


def derive_key(secret_key: str, purpose: str) -> bytes:
    return hmac.new(secret_key.encode(), f"windflow:{purpose}".encode(), hashlib.sha256).digest()


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_opaque_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    expires_at: int


def issue_access_token(secret_key: str, user_id: uuid.UUID, ttl: int, now: float | None = None) -> str:
    issued = int(now if now is not None else time.time())
    claims = {"sub": str(user_id), "iat": issued, "exp": issued + ttl, "typ": "access", "jti": uuid.uuid4().hex}
    return jwt.encode(claims, derive_key(secret_key, "access-token"), algorithm=ACCESS_ALGORITHM)


def read_access_token(secret_key: str, token: str) -> AccessClaims:
    try:
        claims = jwt.decode(
            token,
            derive_key(secret_key, "access-token"),
            algorithms=[ACCESS_ALGORITHM],
            options={"require": ["sub", "exp", "typ"]},
        )
        if claims["typ"] != "access":
            raise AuthInvalid("the token is not an access token")
        return AccessClaims(user_id=uuid.UUID(claims["sub"]), expires_at=int(claims["exp"]))
    except jwt.ExpiredSignatureError:
        raise AuthInvalid("the access token has expired; refresh it or log in again") from None
    except (jwt.InvalidTokenError, ValueError):
        raise AuthInvalid("the access token is invalid") from None
