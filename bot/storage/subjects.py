"""What this process last wrote to the users and chats tables, so a request writes them only
when something changed.

Every write of a request (an image taken in, a job opened, the current image set) needs the
user and chat rows to exist. Writing them on every request cost six statements per write
transaction, twice per photo job. Instead the process remembers what it last wrote for each
user and chat, and writes again only when Telegram reports a new name, username, language,
chat type or title, or when the user's `last_seen_at` is older than `LAST_SEEN_RESOLUTION`.
What is remembered is noted only after the transaction commits, so a rolled-back write is
never taken for a stored row. One memory per `Database`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from cachetools import LRUCache, TTLCache

from bot.storage.chats import ChatQueries, ChatValues, UserValues, chat_values, user_values

#: How stale `users.last_seen_at` may get while a user keeps making requests.
LAST_SEEN_RESOLUTION = 600.0  # seconds
#: Remembered users (and chats); the least recently used go first (forgetting costs a write).
MAX_REMEMBERED = 50_000


class Asker(Protocol):
    """Who makes a request, and where (bot.services.types.Who is one)."""

    @property
    def user_id(self) -> int: ...
    @property
    def first_name(self) -> str: ...
    @property
    def username(self) -> str | None: ...
    @property
    def language_code(self) -> str | None: ...
    @property
    def chat_id(self) -> int: ...
    @property
    def chat_type(self) -> str: ...
    @property
    def chat_title(self) -> str | None: ...


class Subjects:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        # A user's entry expires with LAST_SEEN_RESOLUTION: then last_seen_at is written again.
        self._users: TTLCache[int, UserValues] = TTLCache(
            MAX_REMEMBERED, LAST_SEEN_RESOLUTION, timer=clock
        )
        self._chats: LRUCache[int, ChatValues] = LRUCache(MAX_REMEMBERED)

    async def write_due(self, repo: ChatQueries, asker: Asker) -> None:
        """Write the asker's user and chat rows unless what they hold is remembered."""
        user = user_values(asker.first_name, asker.username, asker.language_code)
        if self._users.get(asker.user_id) != user:
            await repo.upsert_user(asker.user_id, *user)
        chat = chat_values(asker.chat_type, asker.chat_title)
        if self._chats.get(asker.chat_id) != chat:
            await repo.upsert_chat(asker.chat_id, *chat)

    def note(self, repo: ChatQueries) -> None:
        """Remember the rows a committed unit of work wrote."""
        self._users.update(repo.written_users)
        self._chats.update(repo.written_chats)

    def forget(self, user_id: int) -> None:
        """The user's row is gone: the next request writes it again."""
        self._users.pop(user_id, None)
