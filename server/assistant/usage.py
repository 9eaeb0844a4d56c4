"""Tokens spent per organization and UTC day, and the daily budget that stops a turn before it starts.

Usage is its own table, not a sum over messages, so deleting conversations never refunds a budget.
"""

from __future__ import annotations

import datetime as dt
import uuid

from server.assistant.config import AssistantConfig
from server.auth.service import utcnow
from server.db.engine import atomic
from server.db.tables import AssistantUsage
from server.errors import BudgetExceeded


def today() -> str:
    return utcnow().date().isoformat()


def _seconds_to_midnight() -> int:
    now = utcnow()
    midnight = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    return max(1, int((midnight - now).total_seconds()))


async def spent_today(organization_id: uuid.UUID) -> int:
    row = (
        await AssistantUsage.select(AssistantUsage.tokens_in, AssistantUsage.tokens_out)
        .where(AssistantUsage.organization == organization_id, AssistantUsage.day == today())
        .first()
    )
    return 0 if row is None else int(row["tokens_in"]) + int(row["tokens_out"])


async def check_budget(config: AssistantConfig, organization_id: uuid.UUID) -> None:
    """Refuse a new turn once today's tokens reached the organization's budget (0 = no budget)."""
    if config.daily_token_budget <= 0:
        return
    spent = await spent_today(organization_id)
    if spent >= config.daily_token_budget:
        raise BudgetExceeded(
            f"this organization used {spent} of its {config.daily_token_budget} assistant tokens today (UTC); "
            "the budget resets at midnight UTC, or an admin can raise daily_token_budget",
            retry_after=_seconds_to_midnight(),
        )


async def record_usage(organization_id: uuid.UUID, tokens_in: int, tokens_out: int) -> None:
    day = today()
    async with atomic():
        row = (
            await AssistantUsage.select(AssistantUsage.id)
            .where(AssistantUsage.organization == organization_id, AssistantUsage.day == day)
            .first()
        )
        if row is None:
            await AssistantUsage.insert(
                AssistantUsage(
                    organization=organization_id, day=day, requests=1, tokens_in=tokens_in, tokens_out=tokens_out
                )
            )
            return
        await AssistantUsage.update(
            {
                AssistantUsage.requests: AssistantUsage.requests + 1,
                AssistantUsage.tokens_in: AssistantUsage.tokens_in + tokens_in,
                AssistantUsage.tokens_out: AssistantUsage.tokens_out + tokens_out,
            }
        ).where(AssistantUsage.id == row["id"])
