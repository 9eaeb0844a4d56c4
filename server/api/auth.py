"""``/api/v1/auth``: login, refresh and logout."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from server.api.conventions import Body, Email, problems
from server.api.security import PUBLIC
from server.auth import service
from server.auth.limiter import LoginLimiter
from server.settings import Settings

Token = Annotated[str, msgspec.Meta(min_length=1, max_length=512)]


class LoginRequest(Body):
    email: Email
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


class RefreshRequest(Body):
    refresh_token: Token


class TokenResponse(msgspec.Struct):
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret


def _tokens(pair: service.TokenPair) -> TokenResponse:
    return TokenResponse(access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in)


class AuthController(Controller):
    path = "/auth"
    tags = ["auth"]
    opt = PUBLIC

    @post(
        "/login",
        operation_id="login",
        summary="Log in with email and password",
        status_code=200,
        responses=problems(400, 401, 413, 422, 429),
    )
    async def login(
        self,
        data: JSONBody[LoginRequest],
        request: Request[Any, Any, Any],
        settings: NamedDependency[Settings],
        login_limiter: NamedDependency[LoginLimiter],
    ) -> TokenResponse:
        client = request.client.host if request.client else "unknown"
        return _tokens(await service.login(settings, login_limiter, data.email, data.password, client))

    @post(
        "/refresh",
        operation_id="refreshToken",
        summary="Trade a refresh token for a new token pair",
        status_code=200,
        responses=problems(400, 401, 413, 422),
    )
    async def refresh(self, data: JSONBody[RefreshRequest], settings: NamedDependency[Settings]) -> TokenResponse:
        return _tokens(await service.refresh(settings, data.refresh_token))

    @post(
        "/logout",
        operation_id="logout",
        summary="Revoke the session a refresh token belongs to",
        status_code=204,
        responses=problems(400, 413, 422),
    )
    async def logout(self, data: JSONBody[RefreshRequest]) -> None:
        await service.logout(data.refresh_token)
