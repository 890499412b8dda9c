"""Daily image limits per user and per chat, counted in the database (UTC days)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from bot.services.errors import UserInputError
from bot.services.types import Who
from bot.storage.database import Database
from bot.storage.models import SubjectKind

if TYPE_CHECKING:  # storage_limit.py imports this module
    from bot.services.storage_limit import StorageLimit
    from bot.storage.repositories import Repo


@dataclass(frozen=True)
class Usage:
    used: int
    limit: int | None  # None: unlimited
    resets_at: datetime

    @property
    def left(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.used)


def subjects(who: Who) -> list[tuple[SubjectKind, int]]:
    """Whose limits a request counts against: its user, and its chat unless that is private."""
    if who.chat_type == "private":
        return [(SubjectKind.USER, who.user_id)]
    return [(SubjectKind.USER, who.user_id), (SubjectKind.CHAT, who.chat_id)]


def day_start(now: datetime | None = None) -> datetime:
    now = now or datetime.now(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


class QuotaExceededError(UserInputError):
    def __init__(self, scope: str, limit: int, resets_at: datetime) -> None:
        super().__init__(f"quota_{scope}", limit=limit, reset=resets_at.strftime("%H:%M UTC"))


class QuotaService:
    def __init__(
        self,
        database: Database,
        *,
        per_user: int,
        per_chat: int,
        exempt: frozenset[int] = frozenset(),
        storage: StorageLimit | None = None,
    ) -> None:
        self._db = database
        self._defaults = {SubjectKind.USER: per_user, SubjectKind.CHAT: per_chat}
        self._exempt = exempt
        # Checked at the same point as the image quota: before a job opens, under the guard.
        self.storage = storage
        self._locks: dict[tuple[str, int], _Lock] = {}
        # /quota overrides (subject_rules.daily_limit), read once; set_limit keeps them current.
        self._overrides: dict[tuple[str, int], int] | None = None

    async def _load_overrides(self) -> dict[tuple[str, int], int]:
        if self._overrides is None:
            async with self._db.read() as repo:
                self._overrides = await repo.daily_limit_overrides()
        return self._overrides

    async def limit(self, kind: SubjectKind, subject_id: int) -> int | None:
        override = (await self._load_overrides()).get((kind.value, subject_id))
        limit = override if override is not None else self._defaults[kind]
        return limit if limit > 0 else None

    async def set_limit(
        self, kind: SubjectKind, subject_id: int, limit: int | None, by: int
    ) -> None:
        overrides = await self._load_overrides()
        async with self._db.write() as repo:
            await repo.set_daily_limit(kind.value, subject_id, limit, by)
        if limit is None:
            overrides.pop((kind.value, subject_id), None)
        else:
            overrides[(kind.value, subject_id)] = limit

    async def used(self, kind: SubjectKind, subject_id: int) -> int:
        """Images made today, plus those that running jobs may still make."""
        async with self._db.read() as repo:
            return await repo.images_used(kind.value, subject_id, day_start())

    async def usage(self, kind: SubjectKind, subject_id: int) -> Usage:
        return Usage(
            await self.used(kind, subject_id),
            await self.limit(kind, subject_id),
            day_start() + timedelta(days=1),
        )

    @asynccontextmanager
    async def guard(self, who: Who) -> AsyncIterator[None]:
        """Hold while checking the quota and opening the job, so two requests of one user (or
        one group) can't both squeeze under its limit. Per subject, not one lock for all: with
        one global lock, 500 chats at once queued behind each other's database work (15 s)."""
        keys = sorted(subjects(who))  # one order everywhere: no deadlock between two
        counted: list[_Lock] = []
        acquired: list[_Lock] = []
        try:
            for key in keys:
                lock = self._locks.setdefault(key, _Lock(key))
                lock.users += 1
                counted.append(lock)
                await lock.acquire()
                acquired.append(lock)
            yield
        finally:
            for lock in reversed(acquired):
                lock.release()
            for lock in counted:
                lock.users -= 1
                if lock.users == 0:
                    del self._locks[lock.key]

    async def check(self, who: Who, n: int) -> None:
        """Raise QuotaExceededError when n more images would pass the user's or chat's limit
        (and StorageLimitError when the user has stored their day's bytes)."""
        if who.user_id in self._exempt:
            return
        for kind, subject in subjects(who):
            limit = await self.limit(kind, subject)
            if limit is None:
                continue  # unlimited: no need to count
            if await self.used(kind, subject) + n > limit:
                raise QuotaExceededError(kind.value, limit, day_start() + timedelta(days=1))
        if self.storage is not None:
            await self.storage.check(who.user_id)

    async def hold(self, repo: Repo, who: Who, n: int) -> None:
        """Inside the write that opens the job: where other processes write the same database
        (PostgreSQL), lock the limited subjects until it commits and count again, so two
        replicas can't both squeeze under a limit. SQLite: nothing more (the guard and check
        before it suffice, one process writing)."""
        if who.user_id in self._exempt:
            return
        limited = [(k, s, lim) for k, s in subjects(who) if (lim := await self.limit(k, s))]
        if not await repo.lock_subjects(*((k.value, s) for k, s, _ in limited)):
            return
        for kind, subject, limit in limited:
            if await repo.images_used(kind.value, subject, day_start()) + n > limit:
                raise QuotaExceededError(kind.value, limit, day_start() + timedelta(days=1))


class _Lock(asyncio.Lock):
    """A lock that knows how many tasks hold or wait for it (to drop it when none do)."""

    def __init__(self, key: tuple[str, int]) -> None:
        super().__init__()
        self.key, self.users = key, 0
