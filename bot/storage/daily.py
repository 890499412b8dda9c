"""Queries of images and cost per UTC day, for the charts of /usage and /stats."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import func, select

from bot.storage.models import Image, Job, JobStatus
from bot.storage.queries import Queries, table_of
from bot.storage.rows import DailyRow

_JOBS = table_of(Job)
_IMAGES = table_of(Image)


class DailyQueries(Queries):
    async def daily_images(self, since: datetime, user_id: int | None = None) -> list[DailyRow]:
        """Images of successful jobs and their cost per day and model since `since` (one
        user's, or everyone's), oldest day first."""
        images = (
            select(_IMAGES.c.job_id, func.count(_IMAGES.c.id).label("n"))
            .group_by(_IMAGES.c.job_id)
            .subquery()
        )
        day = func.date(_JOBS.c.created_at)
        stmt = (
            select(
                day,
                _JOBS.c.model,
                func.coalesce(func.sum(images.c.n), 0),
                func.coalesce(func.sum(_JOBS.c.cost), 0.0),
            )
            .select_from(_JOBS)
            .outerjoin(images, images.c.job_id == _JOBS.c.id)
            .where(_JOBS.c.created_at >= since, _JOBS.c.status == JobStatus.SUCCEEDED)
            .group_by(day, _JOBS.c.model)
            .order_by(day, _JOBS.c.model)
        )
        if user_id is not None:
            stmt = stmt.where(_JOBS.c.user_id == user_id)
        rows = (await self.core(stmt)).all()
        return [DailyRow(_day(d), str(m), int(i), float(c)) for d, m, i, c in rows]


def _day(value: object) -> date:
    """SQLite's date() is text, PostgreSQL's a date."""
    return value if isinstance(value, date) else date.fromisoformat(str(value))
