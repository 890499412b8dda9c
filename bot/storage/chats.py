"""Queries of users, chats, a chat's state (current image, waiting album) and its preferences."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.images import IMAGE_COLUMNS
from bot.storage.models import Chat, ChatPrefs, ChatState, Image, User, utcnow
from bot.storage.queries import Queries, table_of
from bot.storage.rows import ChatInputs, ChatRow, PrefsRow, StoredImage, UserRow, from_row

_USERS = table_of(User)
_CHATS = table_of(Chat)
_STATES = table_of(ChatState)
_PREFS = table_of(ChatPrefs)
_IMAGES = table_of(Image)

_THIS_STATE = (_STATES.c.chat_id == bindparam("_chat")) & (
    _STATES.c.thread_id == bindparam("_thread")
)
_USER = select(_USERS.c.id, _USERS.c.first_name, _USERS.c.username, _USERS.c.language_code).where(
    _USERS.c.id == bindparam("_id")
)
_CHAT = select(_CHATS.c.id, _CHATS.c.type, _CHATS.c.title).where(_CHATS.c.id == bindparam("_id"))
#: A text's inputs in one read: the waiting album, and the current image's columns.
_CHAT_INPUTS = (
    select(_STATES.c.pending_album, *IMAGE_COLUMNS)
    .select_from(_STATES.outerjoin(_IMAGES, _IMAGES.c.id == _STATES.c.current_image_id))
    .where(_THIS_STATE)
)
_CURRENT_IMAGE = (
    select(*IMAGE_COLUMNS)
    .select_from(_STATES.join(_IMAGES, _IMAGES.c.id == _STATES.c.current_image_id))
    .where(_THIS_STATE)
)
_DROP_ALBUM = update(_STATES).where(_THIS_STATE).values(pending_album=None)
_FORGET_CURRENT = (
    update(_STATES).where(_THIS_STATE).values(current_image_id=None, pending_album=None)
)
_PREFS_COLUMNS = tuple(_PREFS.c[name] for name in PrefsRow.__dataclass_fields__)
_PREFS_OF_CHAT = select(*_PREFS_COLUMNS).where(_PREFS.c.chat_id == bindparam("_chat"))

UserValues = tuple[str, str | None, str | None]  # first_name, username, language_code
ChatValues = tuple[str, str | None]  # type, title


class ChatQueries(Queries):
    """Users and chats are written through here only, so a unit of work knows which it wrote
    (`written_users`, `written_chats`): `Database.write()` remembers them once committed."""

    def __init__(self, session: AsyncSession | Connection) -> None:
        super().__init__(session)
        self.written_users: dict[int, UserValues] = {}
        self.written_chats: dict[int, ChatValues] = {}

    # -- users and chats -------------------------------------------------------------------
    async def upsert_user(
        self, user_id: int, first_name: str, username: str | None, language_code: str | None
    ) -> None:
        """One statement: the user's row with these names, seen now."""
        now = utcnow()
        values = user_values(first_name, username, language_code)
        row = {
            "id": user_id,
            "first_name": values[0],
            "username": values[1],
            "language_code": values[2],
            "created_at": now,
            "last_seen_at": now,
        }
        await self.core(self._upsert(_USERS, ["id"], row, keep=["created_at"]), row)
        self.written_users[user_id] = values

    async def upsert_chat(self, chat_id: int, chat_type: str, title: str | None) -> None:
        """One statement: the chat's row with this type and title."""
        values = chat_values(chat_type, title)
        row = {"id": chat_id, "type": values[0], "title": values[1], "created_at": utcnow()}
        await self.core(self._upsert(_CHATS, ["id"], row, keep=["created_at"]), row)
        self.written_chats[chat_id] = values

    async def user(self, user_id: int) -> UserRow | None:
        row = (await self.core(_USER, {"_id": user_id})).first()
        return from_row(UserRow, row) if row is not None else None

    async def chat(self, chat_id: int) -> ChatRow | None:
        row = (await self.core(_CHAT, {"_id": chat_id})).first()
        return from_row(ChatRow, row) if row is not None else None

    # -- a chat's (or topic's) state -------------------------------------------------------
    async def chat_inputs(self, chat_id: int, thread_id: int) -> ChatInputs | None:
        """The waiting album's image ids and the current image, in one read (None: no state)."""
        row = (await self.core(_CHAT_INPUTS, {"_chat": chat_id, "_thread": thread_id})).first()
        if row is None:
            return None
        album = json.loads(row.pending_album) if row.pending_album else None
        current = from_row(StoredImage, row) if row.id is not None else None
        return ChatInputs(album, current)

    async def current_image(self, chat_id: int, thread_id: int) -> StoredImage | None:
        row = (await self.core(_CURRENT_IMAGE, {"_chat": chat_id, "_thread": thread_id})).first()
        return from_row(StoredImage, row) if row is not None else None

    async def set_current_image(
        self, chat_id: int, thread_id: int, image_id: int | None, *, drop_album: bool = False
    ) -> None:
        """One statement: the chat's current image (and no waiting album, if `drop_album`)."""
        row: dict[str, Any] = {
            "chat_id": chat_id,
            "thread_id": thread_id,
            "current_image_id": image_id,
            "updated_at": utcnow(),
        }
        if drop_album:
            row["pending_album"] = None
        await self.core(self._upsert(_STATES, ["chat_id", "thread_id"], row), row)

    async def keep_album(self, chat_id: int, thread_id: int, image_ids: list[int]) -> None:
        """One statement: these images wait for the chat's next text (the current one stays)."""
        row = {
            "chat_id": chat_id,
            "thread_id": thread_id,
            "pending_album": json.dumps(image_ids),
            "updated_at": utcnow(),
        }
        await self.core(self._upsert(_STATES, ["chat_id", "thread_id"], row), row)

    async def drop_album(self, chat_id: int, thread_id: int) -> None:
        await self.core(_DROP_ALBUM, {"_chat": chat_id, "_thread": thread_id})

    async def forget_current(self, chat_id: int, thread_id: int) -> None:
        """No current image and no waiting album: the next text draws anew."""
        await self.core(_FORGET_CURRENT, {"_chat": chat_id, "_thread": thread_id})

    # -- preferences -----------------------------------------------------------------------
    async def prefs_of_chat(self, chat_id: int) -> PrefsRow | None:
        row = (await self.core(_PREFS_OF_CHAT, {"_chat": chat_id})).first()
        return from_row(PrefsRow, row) if row is not None else None

    async def update_prefs(self, chat_id: int, changes: dict[str, Any]) -> PrefsRow:
        """One statement: the chat's preferences with these changes (the row made if missing)."""
        row = {"chat_id": chat_id, "refine": True, "reply_mode": "photo"}
        row.update(changes, updated_at=utcnow())
        keep = [k for k in row if k not in changes and k != "updated_at"]
        stmt = self._upsert(_PREFS, ["chat_id"], row, keep=keep).returning(*_PREFS_COLUMNS)
        return from_row(PrefsRow, (await self.core(stmt, row)).one())


def user_values(first_name: str, username: str | None, language_code: str | None) -> UserValues:
    """A user's columns as stored, each cut to its column's length (PostgreSQL refuses more)."""
    return (
        first_name[:256],
        username[:64] if username else username,
        language_code[:16] if language_code else language_code,
    )


def chat_values(chat_type: str, title: str | None) -> ChatValues:
    """A chat's columns as stored, each cut to its column's length (PostgreSQL refuses more)."""
    return str(chat_type)[:16], title[:256] if title else None
