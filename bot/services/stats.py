"""Images and cost by day, user, chat and model, for admins."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from bot.services.quotas import day_start
from bot.storage.database import Database
from bot.storage.rows import StatRow

__all__ = ["StatRow", "Stats", "StatsService"]


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
