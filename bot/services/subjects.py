"""The users and chats rows of requests, written when a request brings something new.

Every write of a request (an image taken in, a job opened, the current image set) needs the
user and chat rows to exist. Writing them on every request cost six statements per write
transaction, twice per photo job. Instead the process remembers what it last wrote for each
user and chat, and writes again only when Telegram reports a new name, username, language,
chat type or title, or when the user's `last_seen_at` is older than `LAST_SEEN_RESOLUTION`.
What is remembered is noted only after the transaction commits, so a rolled-back write is
never taken for a stored row.

One memory per database: services built on the same sessionmaker share it (`subjects_of`).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services.types import Who
from bot.storage.repositories import Repo

#: How stale `users.last_seen_at` may get while a user keeps making requests.
LAST_SEEN_RESOLUTION = 600.0  # seconds
#: Remembered users (and chats) before the memory starts over (it only saves writes).
MAX_REMEMBERED = 50_000

_UserValues = tuple[str, str | None, str | None]  # first_name, username, language_code
_ChatValues = tuple[str, str | None]  # type, title


def user_values(who: Who) -> _UserValues:
    return who.first_name[:256], who.username, who.language_code


def chat_values(chat_type: str, title: str | None) -> _ChatValues:
    return str(chat_type), title[:256] if title else None


class Subjects:
    """What this process last wrote to the users and chats tables."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._users: dict[int, tuple[_UserValues, float]] = {}
        self._chats: dict[int, _ChatValues] = {}

    def _user_is_current(self, user_id: int, values: _UserValues, now: float) -> bool:
        known = self._users.get(user_id)
        return known is not None and known[0] == values and now - known[1] < LAST_SEEN_RESOLUTION

    @asynccontextmanager
    async def begin(
        self, sessions: async_sessionmaker[AsyncSession], who: Who
    ) -> AsyncIterator[AsyncSession]:
        """A write transaction for a request of `who`, its user and chat rows written if due."""
        now = self._clock()
        user, chat = user_values(who), chat_values(who.chat_type, who.chat_title)
        write_user = not self._user_is_current(who.user_id, user, now)
        write_chat = self._chats.get(who.chat_id) != chat
        async with sessions.begin() as s:
            repo = Repo(s)
            if write_user:
                await repo.upsert_user(who.user_id, *user)
            if write_chat:
                await repo.upsert_chat(who.chat_id, *chat)
            yield s
        if write_user:  # committed
            _bounded(self._users)[who.user_id] = (user, now)
        if write_chat:
            self.chat_written(who.chat_id, *chat)

    def chat_written(self, chat_id: int, chat_type: str, title: str | None) -> None:
        """Note a chat row written (and committed) elsewhere."""
        _bounded(self._chats)[chat_id] = chat_values(chat_type, title)


V = TypeVar("V")


def _bounded(memory: dict[int, V]) -> dict[int, V]:
    if len(memory) >= MAX_REMEMBERED:
        memory.clear()  # forgetting only costs a write on the next request
    return memory


_BY_SESSIONS: weakref.WeakKeyDictionary[async_sessionmaker[AsyncSession], Subjects] = (
    weakref.WeakKeyDictionary()
)


def subjects_of(sessions: async_sessionmaker[AsyncSession]) -> Subjects:
    """The memory of the database these sessions open (shared by all its services)."""
    subjects = _BY_SESSIONS.get(sessions)
    if subjects is None:
        subjects = _BY_SESSIONS[sessions] = Subjects()
    return subjects
