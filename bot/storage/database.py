"""The database as the services see it: units of work that hand out the repository."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.storage import db
from bot.storage.repositories import Repo
from bot.storage.subjects import Asker, Subjects


class Database:
    """Sessions of one database, and what this process remembers of its users and chats."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._inline = db.inline_engine(sessions)
        self._subjects = Subjects(clock)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Repo]:
        """A read-only unit of work (nothing it does is committed)."""
        if self._inline is not None:
            with self._inline.connect() as conn:
                yield Repo(conn)
            return
        async with self._sessions() as s:
            yield Repo(s)

    @asynccontextmanager
    async def write(self, asker: Asker | None = None) -> AsyncIterator[Repo]:
        """A transaction, committed when the block ends (rolled back if it raises). With
        `asker`, its user and chat rows are written first if this process has not already."""
        async with self._transaction() as repo:
            if asker is not None:
                await self._subjects.write_due(repo, asker)
            yield repo
        self._subjects.note(repo)  # committed

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Repo]:
        if self._inline is None:
            async with self._sessions.begin() as s:
                yield Repo(s)
            return
        async with db.write_turn(self._sessions):
            with self._inline.begin() as conn:
                yield Repo(conn)

    @property
    def shared(self) -> bool:
        """Whether other processes may use this database at once (PostgreSQL; a SQLite file
        is one process's)."""
        return db.is_shared(self._sessions)

    async def ping(self) -> str | None:
        """The schema revision, read through a real connection: raises when the database
        cannot answer."""
        async with self.read() as repo:
            return await repo.schema_version()

    def forget_user(self, user_id: int) -> None:
        """Call once a deleted user row is committed, so the next request writes it again."""
        self._subjects.forget(user_id)

    async def to_disk(self) -> None:
        """Every commit made so far is on disk when this returns (see db.to_disk)."""
        await db.to_disk(self._sessions)
