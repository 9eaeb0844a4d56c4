"""Login throttling: attempts per client address and failures per account, in fixed windows.

Counters live in a Litestar store: in memory when embedded, in Redis when distributed, so every
server process sees the same counts.
"""

from __future__ import annotations

import hashlib

from litestar.stores.base import Store

from server.errors import AccountLocked, RateLimited
from server.settings import Settings


class LoginLimiter:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.window = settings.login_lockout_seconds
        self.max_failures = settings.login_max_failures
        self.max_ip_attempts = settings.login_ip_max_attempts

    @staticmethod
    def _account_key(email: str) -> str:
        return "login:acct:" + hashlib.sha256(email.encode()).hexdigest()

    async def _count(self, key: str) -> int:
        raw = await self.store.get(key)
        return int(raw) if raw else 0

    async def _bump(self, key: str) -> None:
        count = await self._count(key)
        remaining = await self.store.expires_in(key) if count else None
        await self.store.set(key, str(count + 1).encode(), expires_in=remaining or self.window)

    async def _retry_after(self, key: str) -> int:
        return max(1, await self.store.expires_in(key) or self.window)

    async def check(self, email: str, client: str) -> None:
        """Count this attempt; raise when the address or the account is over its limit."""
        ip_key = f"login:ip:{client}"
        if await self._count(ip_key) >= self.max_ip_attempts:
            wait = await self._retry_after(ip_key)
            raise RateLimited(f"too many login attempts from this address; try again in {wait} seconds", wait)
        await self._bump(ip_key)
        account_key = self._account_key(email)
        if await self._count(account_key) >= self.max_failures:
            wait = await self._retry_after(account_key)
            raise AccountLocked(
                f"this account is locked after {self.max_failures} failed login attempts; try again in {wait} seconds",
                wait,
            )

    async def failed(self, email: str) -> None:
        await self._bump(self._account_key(email))

    async def succeeded(self, email: str) -> None:
        await self.store.delete(self._account_key(email))
