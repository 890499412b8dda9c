"""Images and cost by day, user, chat and model, for admins."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services.quotas import day_start
from bot.storage.models import Image, Job, JobStatus


@dataclass(frozen=True)
class StatRow:
    key: str
    jobs: int
    images: int
    cost: float


@dataclass(frozen=True)
class Stats:
    days: int
    total: StatRow
    by_day: list[StatRow]
    by_user: list[StatRow]
    by_chat: list[StatRow]
    by_model: list[StatRow]


class StatsService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def collect(self, days: int = 7, top: int = 10) -> Stats:
        since = day_start() - timedelta(days=days - 1)
        async with self._sessions() as s:
            by_day = await self._group(s, func.date(Job.created_at), since, days, by_key=True)
            by_user = await self._group(s, Job.user_id, since, top)
            by_chat = await self._group(s, Job.chat_id, since, top)
            by_model = await self._group(s, Job.model, since, top)
            total = await self._group(s, None, since, 1)
        return Stats(
            days,
            total[0] if total else StatRow("all", 0, 0, 0.0),
            by_day,
            by_user,
            by_chat,
            by_model,
        )

    async def _group(
        self, s: AsyncSession, column: Any, since: datetime, top: int, *, by_key: bool = False
    ) -> list[StatRow]:
        images = (
            select(Image.job_id, func.count(Image.id).label("n")).group_by(Image.job_id).subquery()
        )
        key = column if column is not None else func.min("all")
        stmt = (
            select(
                key,
                func.count(Job.id),
                func.coalesce(func.sum(images.c.n), 0),
                func.coalesce(func.sum(Job.cost), 0.0),
            )
            .outerjoin(images, images.c.job_id == Job.id)
            .where(Job.created_at >= since, Job.status == JobStatus.SUCCEEDED)
        )
        if column is not None:
            order = column.desc() if by_key else func.count(Job.id).desc()
            stmt = stmt.group_by(column).order_by(order).limit(top)
        rows = (await s.execute(stmt)).all()
        return [StatRow(str(k), int(j), int(i), float(c)) for k, j, i, c in rows if j]
