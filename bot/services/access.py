"""Who may use the bot: allow-lists from settings, plus /allow and /deny kept in the database.

Rules, in order: a denied user or chat is refused; an admin is allowed; with both allow-lists
empty the bot is open; otherwise the user or the chat must be allowed (by settings or /allow).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bot.storage.database import Database
from bot.storage.models import SubjectKind


@dataclass(frozen=True)
class AccessLists:
    allowed_users: frozenset[int]
    allowed_chats: frozenset[int]
    admins: frozenset[int]

    @property
    def open(self) -> bool:
        return not self.allowed_users and not self.allowed_chats


class AccessService:
    def __init__(
        self, database: Database, lists: AccessLists, *, max_age: float | None = None
    ) -> None:
        self._db = database
        self.lists = lists
        self._rules: dict[tuple[str, int], bool] | None = None
        # Several replicas: another one's /deny reaches this one within `max_age` seconds
        # (None: this process writes every rule, so what it read stays true).
        self._max_age = max_age
        self._loaded = 0.0

    def is_admin(self, user_id: int) -> bool:
        return user_id in self.lists.admins

    async def _load(self) -> dict[tuple[str, int], bool]:
        stale = self._max_age is not None and time.monotonic() - self._loaded > self._max_age
        if self._rules is None or stale:
            loaded = time.monotonic()
            async with self._db.read() as repo:
                self._rules = await repo.access_rules()
            self._loaded = loaded
        return self._rules

    async def allowed(self, user_id: int, chat_id: int) -> bool:
        rules = await self._load()
        if rules.get((SubjectKind.USER, user_id)) is False:
            return False
        if rules.get((SubjectKind.CHAT, chat_id)) is False:
            return False
        if self.is_admin(user_id) or self.lists.open:
            return True
        return (
            user_id in self.lists.allowed_users
            or chat_id in self.lists.allowed_chats
            or rules.get((SubjectKind.USER, user_id)) is True
            or rules.get((SubjectKind.CHAT, chat_id)) is True
        )

    async def set_allowed(self, kind: SubjectKind, subject_id: int, allowed: bool, by: int) -> None:
        async with self._db.write() as repo:
            await repo.set_allowed(kind.value, subject_id, allowed, by)
        rules = await self._load()
        rules[(kind.value, subject_id)] = allowed

    async def owner_of(self, kind: str, row_id: int, chat_id: int) -> tuple[bool, int | None]:
        """(whether the `job` or `image` with this id is the chat's, who owns it if known)."""
        async with self._db.read() as repo:
            if kind == "job":
                return await repo.job_owner_in_chat(row_id, chat_id)
            return await repo.image_owner_in_chat(row_id, chat_id)
