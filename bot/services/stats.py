"""Images and cost by day, user, chat and model, for admins."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, timedelta

from bot import charts
from bot.charts import DayCount, Words
from bot.services.quotas import Usage, day_start
from bot.storage.database import Database
from bot.storage.rows import StatRow

__all__ = ["StatRow", "Stats", "StatsService", "Words"]


@dataclass(frozen=True)
class Stats:
    days: int
    total: StatRow
    by_day: list[StatRow]
    by_user: list[StatRow]
    by_chat: list[StatRow]
    by_model: list[StatRow]


class StatsService:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def collect(self, days: int = 7, top: int = 10) -> Stats:
        since = day_start() - timedelta(days=days - 1)
        async with self._db.read() as repo:
            by_day = await repo.job_stats("day", since, days)
            by_user = await repo.job_stats("user", since, top)
            by_chat = await repo.job_stats("chat", since, top)
            by_model = await repo.job_stats("model", since, top)
            total = await repo.job_stats(None, since, 1)
        return Stats(
            days,
            total[0] if total else StatRow("all", 0, 0, 0.0),
            by_day,
            by_user,
            by_chat,
            by_model,
        )

    async def _daily(self, days: int, user_id: int | None) -> tuple[list[date], list[DayCount]]:
        since = day_start() - timedelta(days=days - 1)
        async with self._db.read() as repo:
            rows = await repo.daily_images(since, user_id)
        span = [since.date() + timedelta(days=i) for i in range(days)]
        return span, [DayCount(r.day, r.model, r.images, r.cost) for r in rows]

    async def stats_chart(self, days: int, title: Words, cost_title: Words) -> bytes:
        """A PNG: everyone's images per day by model, and the cost per day."""
        span, counts = await self._daily(days, None)
        return await asyncio.to_thread(
            charts.stats_chart, span, counts, title=title, cost_title=cost_title
        )

    async def usage_chart(
        self, user_id: int, today: Usage, title: Words, left_words: Words, days: int = 7
    ) -> bytes:
        """A PNG: one person's images per day this week, today's topped by what is left."""
        span, counts = await self._daily(days, user_id)
        return await asyncio.to_thread(
            charts.usage_chart,
            span,
            counts,
            title=title,
            used_today=today.used,
            left=today.left,
            left_words=left_words,
        )
