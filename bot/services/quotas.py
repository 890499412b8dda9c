"""Daily image limits per user and per chat, counted in the database (UTC days)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services.errors import UserInputError
from bot.services.types import Who
from bot.storage.models import Image, Job, JobStatus, SubjectKind, SubjectRule
from bot.storage.repositories import Repo


@dataclass(frozen=True)
class Usage:
    used: int
    limit: int | None  # None: unlimited
    resets_at: datetime

    @property
    def left(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.used)


def day_start(now: datetime | None = None) -> datetime:
    now = now or datetime.now(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


class QuotaExceededError(UserInputError):
    def __init__(self, scope: str, limit: int, resets_at: datetime) -> None:
        super().__init__(f"quota_{scope}", limit=limit, reset=resets_at.strftime("%H:%M UTC"))


class QuotaService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        per_user: int,
        per_chat: int,
        exempt: frozenset[int] = frozenset(),
    ) -> None:
        self._sessions = sessions
        self._defaults = {SubjectKind.USER: per_user, SubjectKind.CHAT: per_chat}
        self._exempt = exempt
        self.lock = asyncio.Lock()  # check-then-open of a job is atomic within the process

    async def limit(self, kind: SubjectKind, subject_id: int) -> int | None:
        async with self._sessions() as s:
            rule = await s.get(SubjectRule, (kind.value, subject_id))
        limit = (
            rule.daily_limit
            if rule is not None and rule.daily_limit is not None
            else (self._defaults[kind])
        )
        return limit if limit > 0 else None

    async def set_limit(
        self, kind: SubjectKind, subject_id: int, limit: int | None, by: int
    ) -> None:
        async with self._sessions.begin() as s:
            rule = await Repo(s).subject_rule(kind.value, subject_id)
            rule.daily_limit, rule.updated_by = limit, by

    async def used(self, kind: SubjectKind, subject_id: int) -> int:
        """Images made today, plus those that running jobs may still make."""
        since = day_start()
        column = Job.user_id if kind == SubjectKind.USER else Job.chat_id
        async with self._sessions() as s:
            made = (
                await s.execute(
                    select(func.count(Image.id))
                    .join(Job, Job.id == Image.job_id)
                    .where(column == subject_id, Job.created_at >= since)
                )
            ).scalar_one()
            running = (
                await s.execute(
                    select(func.coalesce(func.sum(Job.n), 0)).where(
                        column == subject_id,
                        Job.created_at >= since,
                        Job.status == JobStatus.RUNNING,
                    )
                )
            ).scalar_one()
        return int(made) + int(running)

    async def usage(self, kind: SubjectKind, subject_id: int) -> Usage:
        return Usage(
            await self.used(kind, subject_id),
            await self.limit(kind, subject_id),
            day_start() + timedelta(days=1),
        )

    async def check(self, who: Who, n: int) -> None:
        """Raise QuotaExceededError when n more images would pass the user's or chat's limit."""
        if who.user_id in self._exempt:
            return
        scopes = [(SubjectKind.USER, who.user_id)]
        if who.chat_type != "private":
            scopes.append((SubjectKind.CHAT, who.chat_id))
        for kind, subject in scopes:
            usage = await self.usage(kind, subject)
            if usage.limit is not None and usage.used + n > usage.limit:
                raise QuotaExceededError(kind.value, usage.limit, usage.resets_at)
