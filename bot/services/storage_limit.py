"""How many bytes of pictures one user may store per UTC day (their photos and their results).

Without it one person could fill DATA_DIR: every photo is kept, and so is every result.
"""

from __future__ import annotations

from datetime import timedelta

from bot.services.errors import UserInputError
from bot.services.quotas import day_start
from bot.storage.database import Database

MB = 1024 * 1024


class StorageLimitError(UserInputError):
    def __init__(self, limit_mb: int) -> None:
        reset = (day_start() + timedelta(days=1)).strftime("%H:%M UTC")
        super().__init__("storage_user", limit=limit_mb, reset=reset)


class StorageLimit:
    def __init__(
        self,
        database: Database,
        *,
        mb_per_day: int,
        exempt: frozenset[int] = frozenset(),
    ) -> None:
        self._db = database
        self._limit_mb = mb_per_day
        self._exempt = exempt

    async def used(self, user_id: int) -> int:
        """Bytes stored for this user since the start of the UTC day."""
        async with self._db.read() as repo:
            return await repo.stored_bytes_since(user_id, day_start())

    async def check(self, user_id: int, adding: int = 0) -> None:
        """Raise StorageLimitError if storing ``adding`` more bytes would pass the day's limit;
        with ``adding`` 0 (a job about to open), once the limit is reached."""
        if self._limit_mb <= 0 or user_id in self._exempt:
            return
        used = await self.used(user_id)
        limit = self._limit_mb * MB
        if used + adding > limit or (adding == 0 and used >= limit):
            raise StorageLimitError(self._limit_mb)
