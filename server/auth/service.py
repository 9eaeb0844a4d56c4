"""Login, token refresh and rotation, logout, API tokens, and resolving a bearer token to a caller."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from server import audit
from server.auth.limiter import LoginLimiter
from server.auth.passwords import hash_password, needs_rehash, verify_password
from server.auth.principal import Principal, Role
from server.auth.tokens import (
    API_TOKEN_PREFIX,
    REFRESH_TOKEN_PREFIX,
    digest,
    issue_access_token,
    new_opaque_token,
    read_access_token,
)
from server.db.engine import atomic
from server.db.tables import ApiToken, Membership, Organization, RefreshToken, User
from server.errors import AuthInvalid, NotFound
from server.settings import Settings

API_TOKEN_TOUCH_INTERVAL = dt.timedelta(minutes=1)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def normalize_email(email: str) -> str:
    return email.strip().lower()


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


async def _issue_pair(settings: Settings, user_id: uuid.UUID, family_id: uuid.UUID) -> TokenPair:
    refresh = new_opaque_token(REFRESH_TOKEN_PREFIX)
    await RefreshToken.insert(
        RefreshToken(
            user=user_id,
            token_hash=digest(refresh),
            family_id=family_id,
            expires_at=utcnow() + dt.timedelta(seconds=settings.refresh_token_ttl),
        )
    )
    access = issue_access_token(settings.secret_key, user_id, settings.access_token_ttl)
    return TokenPair(access_token=access, refresh_token=refresh, expires_in=settings.access_token_ttl)


async def login(settings: Settings, limiter: LoginLimiter, email: str, password: str, client: str) -> TokenPair:
    email = normalize_email(email)
    await limiter.check(email, client)
    user = await User.objects().where(User.email == email).first()
    ok = await verify_password(user.password_hash if user else None, password)
    if not user or not ok or not user.is_active:
        await limiter.failed(email)
        await audit.record("auth.login_failed", actor=None, actor_email=email, target_type="user")
        raise AuthInvalid("wrong email or password")
    await limiter.succeeded(email)
    changes: dict[Any, Any] = {User.last_login_at: utcnow()}
    if needs_rehash(user.password_hash):
        changes[User.password_hash] = await hash_password(password)
    async with atomic():
        await User.update(changes).where(User.id == user.id)
        pair = await _issue_pair(settings, user.id, uuid.uuid4())
        await audit.record("auth.login", actor=None, actor_email=email, target_type="user", target_id=user.id)
    return pair


async def refresh(settings: Settings, refresh_token: str) -> TokenPair:
    """Trade a refresh token for a new pair; a token used twice revokes its whole family."""
    row = await RefreshToken.objects().where(RefreshToken.token_hash == digest(refresh_token)).first()
    if row is None:
        raise AuthInvalid("the refresh token is invalid")
    now = utcnow()
    if row.revoked_at is not None:
        raise AuthInvalid("the refresh token has been revoked; log in again")
    if row.expires_at <= now:
        raise AuthInvalid("the refresh token has expired; log in again")
    async with atomic():
        claimed = (
            await RefreshToken.update({RefreshToken.used_at: now})
            .where((RefreshToken.id == row.id) & RefreshToken.used_at.is_null())
            .returning(RefreshToken.id)
        )
        if claimed:
            user = await User.objects().where((User.id == row.user) & (User.is_active == True)).first()  # noqa: E712
            if user is None:
                raise AuthInvalid("the account is disabled")
            return await _issue_pair(settings, user.id, row.family_id)
    async with atomic():
        await _revoke_family(row.family_id, now)
        await audit.record("auth.refresh_reused", actor=None, target_type="user", target_id=row.user)
    raise AuthInvalid("the refresh token was already used; every session of that login is now revoked")


async def _revoke_family(family_id: uuid.UUID, now: dt.datetime) -> None:
    await RefreshToken.update({RefreshToken.revoked_at: now}).where(
        (RefreshToken.family_id == family_id) & RefreshToken.revoked_at.is_null()
    )


async def logout(refresh_token: str) -> None:
    """Revoke the login session the refresh token belongs to; unknown tokens are ignored."""
    row = await RefreshToken.objects().where(RefreshToken.token_hash == digest(refresh_token)).first()
    if row is not None:
        await _revoke_family(row.family_id, utcnow())
        await audit.record("auth.logout", actor=None, target_type="user", target_id=row.user)


async def revoke_user_sessions(user_id: uuid.UUID) -> None:
    await RefreshToken.update({RefreshToken.revoked_at: utcnow()}).where(
        (RefreshToken.user == user_id) & RefreshToken.revoked_at.is_null()
    )


async def authenticate(settings: Settings, token: str, organization_hint: str | None) -> Principal:
    """Resolve a bearer token (access token or API token) to the calling principal."""
    token_id: uuid.UUID | None = None
    if token.startswith(API_TOKEN_PREFIX):
        row = await ApiToken.objects().where(ApiToken.token_hash == digest(token)).first()
        now = utcnow()
        if row is None or row.revoked_at is not None:
            raise AuthInvalid("the API token is invalid or revoked")
        if row.expires_at is not None and row.expires_at <= now:
            raise AuthInvalid("the API token has expired")
        if row.last_used_at is None or now - row.last_used_at > API_TOKEN_TOUCH_INTERVAL:
            await ApiToken.update({ApiToken.last_used_at: now}).where(ApiToken.id == row.id)
        user_id, via, token_id = row.user, "api_token", row.id
    else:
        user_id, via = read_access_token(settings.secret_key, token).user_id, "access_token"
    user = await User.objects().where(User.id == user_id).first()
    if user is None or not user.is_active:
        raise AuthInvalid("the account is disabled or no longer exists")
    memberships = await Membership.select(Membership.organization, Membership.role).where(Membership.user == user.id)
    roles = {m["organization"]: Role.parse(m["role"]) for m in memberships}
    organization_id = await _current_organization(user, roles, organization_hint)
    return Principal(
        user_id=user.id,
        email=user.email,
        is_superadmin=user.is_superadmin,
        organization_id=organization_id,
        roles=roles,
        via=via,
        token_id=token_id,
    )


async def _current_organization(user: User, roles: dict[uuid.UUID, Role], hint: str | None) -> uuid.UUID | None:
    if hint:
        try:
            wanted = uuid.UUID(hint)
        except ValueError:
            raise NotFound("organization not found (X-Organization-ID is not a UUID)") from None
        if wanted in roles or (user.is_superadmin and await Organization.exists().where(Organization.id == wanted)):
            return wanted
        raise NotFound("organization not found")
    if user.current_organization in roles or (user.is_superadmin and user.current_organization is not None):
        return user.current_organization  # type: ignore[no-any-return]
    if roles:
        first = await (
            Membership.select(Membership.organization)
            .where(Membership.user == user.id)
            .order_by(Membership.created_at)
            .first()
        )
        return first["organization"] if first else None
    return None


async def create_api_token(principal: Principal, name: str, expires_in_days: int | None) -> tuple[ApiToken, str]:
    token = new_opaque_token(API_TOKEN_PREFIX)
    expires_at = utcnow() + dt.timedelta(days=expires_in_days) if expires_in_days else None
    row = ApiToken(
        user=principal.user_id,
        name=name,
        token_hash=digest(token),
        prefix=token[: len(API_TOKEN_PREFIX) + 6],
        expires_at=expires_at,
    )
    async with atomic():
        await row.save()
        await audit.record(
            "api_token.create", actor=principal, target_type="api_token", target_id=row.id, detail={"name": name}
        )
    return row, token


async def list_api_tokens(principal: Principal, page: int, size: int) -> tuple[list[ApiToken], int]:
    query = ApiToken.user == principal.user_id
    total = await ApiToken.count().where(query)
    rows = (
        await ApiToken.objects()
        .where(query)
        .order_by(ApiToken.created_at, ascending=False)
        .offset((page - 1) * size)
        .limit(size)
    )
    return rows, total


async def revoke_api_token(principal: Principal, token_id: uuid.UUID) -> None:
    row = await ApiToken.objects().where((ApiToken.id == token_id) & (ApiToken.user == principal.user_id)).first()
    if row is None:
        raise NotFound("API token not found")
    if row.revoked_at is None:
        await ApiToken.update({ApiToken.revoked_at: utcnow()}).where(ApiToken.id == token_id)
        await audit.record("api_token.revoke", actor=principal, target_type="api_token", target_id=token_id)
